import pino, { type Logger } from 'pino';

/** Paths pino blanks in every log line, wherever a secret could end up in bindings. */
const REDACT = [
  'password',
  'token',
  '*.password',
  '*.token',
  '*.*.password',
  '*.*.token',
  'headers.authorization',
];

/** JSON lines on stdout, one per lifecycle event; secrets never printed. */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { name: 'magwatch', level, redact: { paths: REDACT, censor: '***' }, base: { pid: process.pid } },
    // Synchronous: lifecycle lines are few, and none may be lost when the process exits right after them.
    destination ?? pino.destination({ sync: true }),
  );
}

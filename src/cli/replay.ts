import { readFile } from 'node:fs/promises';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { MagwatchError } from '../errors.js';
import { readLongRows } from '../ingest/files.js';
import { redactUrl } from '../ingest/mqtt.js';
import {
  buildMessages,
  type PublishFormat,
  type PublishSummary,
  publishMessages,
} from '../ingest/publish.js';
import { choice, integer, number, timestamp } from './options.js';

export interface ReplayOptions {
  input: string[];
  broker: string;
  format: PublishFormat;
  /** Topic template; default per format (see DEFAULT_PUBLISH_TOPICS). */
  topic?: string;
  speed: number;
  batch: number;
  qos: 0 | 1 | 2;
  /** impf publication level. */
  level: number;
  from?: number;
  to?: number;
  clientId?: string;
  username?: string;
  password?: string;
}

/**
 * Publishes files to MQTT in an ingest format, paced by their timestamps, and writes one summary line.
 * Progress goes to `progress` when it is a terminal.
 */
export async function replay(
  options: ReplayOptions,
  out: NodeJS.WritableStream = process.stdout,
  progress: NodeJS.WriteStream = process.stderr,
): Promise<PublishSummary> {
  const rows = await readLongRows(options.input, { from: options.from, to: options.to });
  const messages = buildMessages(rows, {
    format: options.format,
    topic: options.topic,
    batch: options.batch,
    level: options.level,
  });

  const bar = progress.isTTY
    ? new SingleBar(
        {
          stream: progress,
          format: ' replay |{bar}| {value}/{total} messages',
          hideCursor: true,
        },
        Presets.shades_classic,
      )
    : undefined;
  bar?.start(messages.length, 0);
  let summary: PublishSummary;
  try {
    summary = await publishMessages(messages, {
      url: options.broker,
      qos: options.qos,
      speed: options.speed,
      clientId: options.clientId,
      username: options.username,
      password: options.password,
      onProgress: (published) => bar?.update(published),
    });
  } finally {
    bar?.stop();
  }
  out.write(
    `replay: published ${summary.messages} messages, ${summary.samples} samples (${options.format}) ` +
      `to ${redactUrl(options.broker)} in ${(summary.elapsedMs / 1000).toFixed(1)} s\n`,
  );
  return summary;
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('publish files to MQTT in an ingest format, at real time x --speed')
    .requiredOption('--input <files...>', 'long CSV, wide CSV or IAGA-2002 files (gzip too)')
    .requiredOption('--broker <url>', 'MQTT broker, e.g. mqtt://127.0.0.1:1883')
    .option(
      '--format <format>',
      'magwatch or impf',
      choice('--format', ['magwatch', 'impf'] as const),
      'magwatch',
    )
    .option(
      '--topic <template>',
      'topic with {sensor} (impf also {iaga} {cadence} {level} {elements}); ' +
        'default magwatch/raw/{sensor} or impf/{iaga}/{cadence}/{level}/{elements}',
    )
    .option(
      '--speed <x>',
      'data time per wall time: 1 real time, 10 ten times faster, 0 as fast as the broker takes it',
      number('--speed', (x) => x >= 0, 'a number >= 0'),
      1,
    )
    .option('--batch <n>', 'samples per message', integer('--batch', 1), 1)
    .option('--qos <n>', 'publish QoS 0, 1 or 2', choice('--qos', ['0', '1', '2'] as const), '1')
    .option(
      '--level <n>',
      'impf publication level 1 (raw) to 4 (definitive)',
      choice('--level', ['1', '2', '3', '4'] as const),
      '1',
    )
    .option('--from <time>', 'first sample time to publish (ISO 8601)', timestamp('--from'))
    .option('--to <time>', 'end of the time range, exclusive (ISO 8601)', timestamp('--to'))
    .option('--client-id <id>', 'MQTT client id (default: random)')
    .option('--username <name>', 'MQTT username; the password comes from MAGWATCH_MQTT_PASSWORD(_FILE)')
    .action(async (options) => {
      await replay({
        input: options.input,
        broker: options.broker,
        format: options.format,
        topic: options.topic,
        speed: options.speed,
        batch: options.batch,
        qos: Number(options.qos) as 0 | 1 | 2,
        level: Number(options.level),
        from: options.from,
        to: options.to,
        clientId: options.clientId,
        username: options.username ?? process.env['MAGWATCH_MQTT_USERNAME'],
        password: await passwordFromEnvironment(),
      });
    });
}

/** Passwords stay off the command line, where `ps` and shell history would show them. */
async function passwordFromEnvironment(): Promise<string | undefined> {
  const file = process.env['MAGWATCH_MQTT_PASSWORD_FILE'];
  if (!file) return process.env['MAGWATCH_MQTT_PASSWORD'];
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw new MagwatchError(
      'MW_MQTT_PASSWORD_FILE',
      `cannot read MAGWATCH_MQTT_PASSWORD_FILE ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}); check the path`,
    );
  }
}

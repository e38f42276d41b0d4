/**
 * Every failure a user can fix is a MagwatchError: a stable code (listed in docs/errors.md, never reused)
 * and a one-line message that names the file, field or topic, what was expected and what to do.
 */
export class MagwatchError extends Error {
  override readonly name = 'MagwatchError';

  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isMagwatchError(error: unknown): error is MagwatchError {
  return error instanceof MagwatchError;
}

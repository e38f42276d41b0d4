import { MagwatchError } from '../errors.js';
import { parseTimestamp } from '../ingest/files.js';

/** Parsers for commander options that fail with a one-line MagwatchError naming the option. */
export function integer(option: string, min: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) {
      throw new MagwatchError('MW_CLI_BAD_OPTION', `${option} must be an integer >= ${min}, got '${text}'`);
    }
    return value;
  };
}

export function number(option: string, check: (n: number) => boolean, expected: string) {
  return (text: string): number => {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value) || !check(value)) {
      throw new MagwatchError('MW_CLI_BAD_OPTION', `${option} must be ${expected}, got '${text}'`);
    }
    return value;
  };
}

export function timestamp(option: string) {
  return (text: string): number => {
    const value = parseTimestamp(text);
    if (value === undefined) {
      throw new MagwatchError(
        'MW_CLI_BAD_OPTION',
        `${option} must be an ISO 8601 time such as 2016-01-18T00:00:00Z, got '${text}'`,
      );
    }
    return value;
  };
}

export function choice<T extends string>(option: string, choices: readonly T[]) {
  return (text: string): T => {
    if (!choices.includes(text as T)) {
      throw new MagwatchError(
        'MW_CLI_BAD_OPTION',
        `${option} must be one of ${choices.join(', ')}, got '${text}'`,
      );
    }
    return text as T;
  };
}

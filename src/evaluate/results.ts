import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { MagwatchError } from '../errors.js';
import { parseTimestamp } from '../ingest/csv.js';
import { splitCsvLine } from '../sim/csv.js';

/** The column `magwatch detect` (and the reference) writes the final vote into. */
export const DEFAULT_FLAG_COLUMN = 'final_cross_obs_flag';

/** The two columns of a results CSV that evaluation needs. */
export interface FlagSeries {
  /** Epoch ms, non-decreasing. */
  readonly timestamps: Float64Array;
  /** 0 or 1 per sample. */
  readonly flags: Uint8Array;
}

/** Flag cells as detect writes them (0/1) and as pandas writes a boolean column (True/False). */
const FLAG_VALUES = new Map([
  ['0', 0],
  ['1', 1],
  ['0.0', 0],
  ['1.0', 1],
  ['false', 0],
  ['true', 1],
]);

/**
 * Reads the `timestamp` column and one 0/1 flag column of a results CSV (gzip when the name ends in `.gz`),
 * line by line, keeping only those two columns in memory.
 *
 * @throws MagwatchError `MW_INPUT_NOT_FOUND`, `MW_INPUT_EMPTY`, `MW_INPUT_MISSING_COLUMN`,
 *   `MW_INPUT_BAD_TIMESTAMP`, `MW_INPUT_BAD_VALUE`, `MW_INPUT_UNSORTED`.
 */
export async function readFlagSeries(path: string, column = DEFAULT_FLAG_COLUMN): Promise<FlagSeries> {
  const file = createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    file.once('open', () => resolve());
    file.once('error', reject);
  });
  try {
    await opened;
  } catch (error) {
    throw new MagwatchError('MW_INPUT_NOT_FOUND', `${path}: cannot read the results file; check --results`, {
      cause: error,
    });
  }

  const source = path.endsWith('.gz') ? file.pipe(createGunzip()) : file;
  const lines = createInterface({ input: source, crlfDelay: Number.POSITIVE_INFINITY });
  const timestamps: number[] = [];
  const flags: number[] = [];
  let timeAt = -1;
  let flagAt = -1;
  let lineNumber = 0;

  try {
    for await (const line of lines) {
      lineNumber++;
      if (lineNumber === 1) {
        const header = splitCsvLine(line.replace(/^\uFEFF/, ''));
        timeAt = header.indexOf('timestamp');
        flagAt = header.indexOf(column);
        if (timeAt < 0 || flagAt < 0) throw missingColumn(path, timeAt < 0 ? 'timestamp' : column, header);
        continue;
      }
      if (line.trim() === '') continue;

      const cells = splitCsvLine(line);
      const where = `${path}:${lineNumber}`;
      const time = parseTimestamp(cells[timeAt] ?? '');
      if (time === undefined) {
        throw new MagwatchError(
          'MW_INPUT_BAD_TIMESTAMP',
          `${where}: timestamp '${cells[timeAt] ?? ''}' is not a time; use ISO 8601 like 2026-01-15T00:00:00Z`,
        );
      }
      if (timestamps.length > 0 && time < timestamps[timestamps.length - 1]!) {
        throw new MagwatchError(
          'MW_INPUT_UNSORTED',
          `${where}: timestamp goes back in time; sort the results by time`,
        );
      }
      const flag = FLAG_VALUES.get((cells[flagAt] ?? '').toLowerCase());
      if (flag === undefined) {
        throw new MagwatchError(
          'MW_INPUT_BAD_VALUE',
          `${where}: ${column} '${cells[flagAt] ?? ''}' is not a flag; expected 0 or 1 (or True/False)`,
        );
      }
      timestamps.push(time);
      flags.push(flag);
    }
  } catch (error) {
    if (error instanceof MagwatchError) throw error;
    throw new MagwatchError(
      'MW_INPUT_UNREADABLE',
      `${path}: cannot read the results file (${String(error)})`,
      {
        cause: error,
      },
    );
  } finally {
    lines.close();
    file.destroy();
  }

  if (timestamps.length === 0) {
    throw new MagwatchError(
      'MW_INPUT_EMPTY',
      `${path}: no result rows; run magwatch detect to produce results`,
    );
  }
  return { timestamps: Float64Array.from(timestamps), flags: Uint8Array.from(flags) };
}

function missingColumn(path: string, name: string, header: readonly string[]): MagwatchError {
  const flagColumns = header.filter((cell) => cell.endsWith('_flag'));
  const hint =
    flagColumns.length > 0
      ? `flag columns here: ${flagColumns.slice(0, 5).join(', ')}`
      : 'is it a results CSV?';
  return new MagwatchError('MW_INPUT_MISSING_COLUMN', `${path}: no '${name}' column; ${hint}`);
}

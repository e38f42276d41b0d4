import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { MagwatchError } from '../errors.js';
import { parseCsv } from './csv.js';
import { isIaga2002, parseIaga2002 } from './iaga2002.js';
import type { LongRow, WideTable } from './table.js';
import { buildWideTable } from './wide.js';

export { parseTimestamp } from './csv.js';

const gunzipAsync = promisify(gunzip);

/** A time selection, `from <= t < to`; either end may be left open. */
export interface InputRange {
  /** First time kept, epoch milliseconds (inclusive). */
  readonly from?: number;
  /** End of the selection, epoch milliseconds (exclusive). */
  readonly to?: number;
}

/**
 * Reads input files into one wide table (see `buildWideTable` for the reference construction).
 *
 * Each file may be a long CSV, a wide CSV or IAGA-2002 (its sensor is its IAGA code), and any of them
 * gzip-compressed. Rows of all files are merged in the order given, so several files can be several
 * sensors or several days of one sensor; where two rows of a sensor share a timestamp the earlier wins.
 * The time selection is applied to the rows before the table is built, so filling never reaches across it.
 *
 * @throws MagwatchError with an `MW_INPUT_*` code; see docs/errors.md.
 */
export async function readInputs(paths: readonly string[], options: InputRange = {}): Promise<WideTable> {
  const rows = await readLongRows(paths, options);
  return buildWideTable(rows, paths.join(', '));
}

/**
 * Reads input files into long rows, file after file in the order given, each in file order, keeping only
 * rows with `from <= timestamp < to`. Missing values are NaN: nothing is aligned or filled here.
 *
 * @throws MagwatchError `MW_INPUT_EMPTY_RANGE` when the selection keeps no row, naming each file's time range.
 */
export async function readLongRows(paths: readonly string[], options: InputRange = {}): Promise<LongRow[]> {
  if (paths.length === 0) {
    throw new MagwatchError('MW_INPUT_NO_FILES', 'no input files given; pass one or more files with --input');
  }
  const from = options.from ?? Number.NEGATIVE_INFINITY;
  const to = options.to ?? Number.POSITIVE_INFINITY;

  const selected: LongRow[] = [];
  const ranges: string[] = [];
  for (const path of paths) {
    const text = await readText(path);
    const rows = isIaga2002(text) ? parseIaga2002(text, path).rows : parseCsv(text, path);

    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const row of rows) {
      if (row.timestamp < first) first = row.timestamp;
      if (row.timestamp > last) last = row.timestamp;
      if (row.timestamp >= from && row.timestamp < to) selected.push(row);
    }
    ranges.push(`${path} covers ${isoTime(first)} to ${isoTime(last)}`);
  }

  if (selected.length === 0) {
    const since = options.from === undefined ? '' : ` from ${isoTime(from)}`;
    const before = options.to === undefined ? '' : ` before ${isoTime(to)}`;
    throw new MagwatchError(
      'MW_INPUT_EMPTY_RANGE',
      `no samples${since}${before}: ${ranges.join('; ')}; choose --from/--to inside that range`,
    );
  }
  return selected;
}

/** Reads a file as UTF-8 text, gunzipping it when it starts with the gzip magic bytes; zip is refused. */
async function readText(path: string): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new MagwatchError(
        'MW_INPUT_NOT_FOUND',
        `${path}: no such file; check the path given to --input`,
        {
          cause: error,
        },
      );
    }
    const why = code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? (error as Error).message})`;
    throw new MagwatchError('MW_INPUT_UNREADABLE', `${path}: ${why}; give a readable data file`, {
      cause: error,
    });
  }

  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    throw new MagwatchError(
      'MW_INPUT_UNSUPPORTED',
      `${path}: a zip archive, which is not read; extract it (unzip) and pass the files inside, or gzip them`,
    );
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (error) {
      throw new MagwatchError(
        'MW_INPUT_BAD_GZIP',
        `${path}: starts like gzip but cannot be decompressed (${(error as Error).message}); ` +
          `check the file is complete`,
        { cause: error },
      );
    }
  }

  const text = bytes.toString('utf8');
  if (text.replace(/^\uFEFF/, '').trim() === '') {
    throw new MagwatchError(
      'MW_INPUT_EMPTY',
      `${path}: the file is empty; give a file with a header and data rows`,
    );
  }
  return text;
}

/** ISO 8601 in UTC, without milliseconds when they are zero. */
function isoTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace('.000Z', 'Z');
}

import { MagwatchError } from '../errors.js';
import { parseTimestamp, parseValue } from './csv.js';
import type { LongRow } from './table.js';

/** IAGA-2002 marks a missing value with 99999 and an element the observatory does not record with 88888. */
const MISSING_MARKER = 99999;
const NOT_RECORDED_MARKER = 88888;

/** Header keys are in the first 24 characters of a header line, values after them (fixed width). */
const HEADER_KEY_WIDTH = 24;

/** How far into a file to look for the IAGA-2002 signature. */
const SIGNATURE_SEARCH_CHARS = 4096;

/** One IAGA-2002 file: an observatory's elements over time. */
export interface Iaga2002File {
  /** The observatory's IAGA code (`IAGA Code` header), else the prefix of the first element column. */
  readonly sensor: string;
  /** Element names in column order with the IAGA code removed, e.g. `['H', 'E', 'Z', 'F']`. */
  readonly components: string[];
  /** Header fields as written (`Data Interval Type`, …) with trimmed values; comment lines are left out. */
  readonly header: Readonly<Record<string, string>>;
  /** One row per data line, in file order; 99999 and 88888 are NaN. */
  readonly rows: LongRow[];
}

/** Whether the text starts like an IAGA-2002 file (a `Format IAGA-2002` or `IAGA Code` header line). */
export function isIaga2002(text: string): boolean {
  return /IAGA-2002|IAGA Code/i.test(text.slice(0, SIGNATURE_SEARCH_CHARS));
}

/**
 * Reads an IAGA-2002 file: header lines (`<key> <value> |`), comment lines (` # …`), the column header line
 * (`DATE TIME DOY <code><element>… |`), then one data line per sample. Times are UTC.
 *
 * @param text the file's content.
 * @param file names the file in error messages.
 * @throws MagwatchError with an `MW_INPUT_*` code naming the file and, for a data line, its row (file line).
 */
export function parseIaga2002(text: string, file: string): Iaga2002File {
  const header: Record<string, string> = {};
  const rows: LongRow[] = [];
  let columns: { sensor: string; components: string[]; width: number } | undefined;

  let position = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let row = 0;
  while (position < text.length) {
    let end = text.indexOf('\n', position);
    if (end < 0) end = text.length;
    const line = text.slice(position, end > position && text.charCodeAt(end - 1) === 13 ? end - 1 : end);
    position = end + 1;
    row++;

    const trimmed = line.trim();
    if (trimmed === '') continue;
    if (columns !== undefined) {
      rows.push(readDataLine(trimmed, columns, file, row));
      continue;
    }
    if (trimmed.startsWith('#')) continue;
    if (/^DATE\s+TIME\b/i.test(trimmed)) {
      columns = readColumnHeader(trimmed, header, file, row);
      continue;
    }
    const fields = line.replace(/\|\s*$/, '');
    const key = fields.slice(0, HEADER_KEY_WIDTH).trim();
    if (key !== '') header[key] = fields.slice(HEADER_KEY_WIDTH).trim();
  }

  if (columns === undefined) {
    throw new MagwatchError(
      'MW_INPUT_IAGA_NO_DATA_HEADER',
      `${file}: IAGA-2002 file without the column header line 'DATE TIME DOY …'; check the file is complete`,
    );
  }
  if (rows.length === 0) {
    throw new MagwatchError(
      'MW_INPUT_EMPTY',
      `${file}: IAGA-2002 file without data lines; give a file with data`,
    );
  }
  return { sensor: columns.sensor, components: columns.components, header, rows };
}

function readColumnHeader(
  line: string,
  header: Record<string, string>,
  file: string,
  row: number,
): { sensor: string; components: string[]; width: number } {
  const names = line
    .replace(/\|\s*$/, '')
    .trim()
    .split(/\s+/);
  const doyAt = names.findIndex((name) => name.toUpperCase() === 'DOY');
  const elements = names.slice(doyAt >= 0 ? doyAt + 1 : 2);
  if (elements.length === 0) {
    throw new MagwatchError(
      'MW_INPUT_NO_CHANNELS',
      `${file}, row ${row}: the column header names no elements after 'DATE TIME DOY'; check the file is complete`,
    );
  }

  const code = headerValue(header, 'IAGA Code') || elements[0]!.slice(0, 3);
  const components = elements.map((name) => {
    if (name.length > code.length && name.toUpperCase().startsWith(code.toUpperCase())) {
      return name.slice(code.length);
    }
    return name.length > 3 ? name.slice(3) : name;
  });
  return { sensor: code, components, width: names.length };
}

function readDataLine(
  line: string,
  columns: { sensor: string; components: string[]; width: number },
  file: string,
  row: number,
): LongRow {
  const fields = splitOnBlanks(line);
  if (fields.length !== columns.width) {
    throw new MagwatchError(
      'MW_INPUT_FIELD_COUNT',
      `${file}, row ${row}: ${fields.length} fields where the column header has ${columns.width}; fix or delete the line`,
    );
  }

  const timestamp = parseTimestamp(`${fields[0]} ${fields[1]}`);
  if (timestamp === undefined) {
    throw new MagwatchError(
      'MW_INPUT_BAD_TIMESTAMP',
      `${file}, row ${row}, columns DATE TIME: cannot read "${fields[0]} ${fields[1]}" as a time; ` +
        `IAGA-2002 needs 'YYYY-MM-DD HH:MM:SS.fff'`,
    );
  }

  const values: Record<string, number> = {};
  const first = columns.width - columns.components.length;
  columns.components.forEach((component, index) => {
    const cell = fields[first + index]!;
    const value = parseValue(cell);
    if (value === undefined) {
      throw new MagwatchError(
        'MW_INPUT_BAD_VALUE',
        `${file}, row ${row}, column ${component}: ${JSON.stringify(cell)} is not a number; ` +
          `write a number, or 99999.00 for a missing value`,
      );
    }
    values[component] = value === MISSING_MARKER || value === NOT_RECORDED_MARKER ? Number.NaN : value;
  });
  return { timestamp, sensor: columns.sensor, values };
}

/** Splits a trimmed line at runs of spaces and tabs; a regular expression split costs more on every row. */
function splitOnBlanks(line: string): string[] {
  const fields: string[] = [];
  let start = -1;
  for (let at = 0; at <= line.length; at++) {
    const code = at < line.length ? line.charCodeAt(at) : 32;
    const blank = code === 32 || code === 9;
    if (blank && start >= 0) {
      fields.push(line.slice(start, at));
      start = -1;
    } else if (!blank && start < 0) {
      start = at;
    }
  }
  return fields;
}

/** Header keys are matched in any letter case: observatories write `IAGA CODE` as well as `IAGA Code`. */
function headerValue(header: Record<string, string>, key: string): string {
  const wanted = key.toLowerCase();
  for (const [name, value] of Object.entries(header)) {
    if (name.toLowerCase() === wanted) return value;
  }
  return '';
}

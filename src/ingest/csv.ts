import { MagwatchError } from '../errors.js';
import { type LongRow, parseChannel } from './table.js';

/** Above this, a numeric timestamp is epoch milliseconds, below it epoch seconds (1e11 ms is 1973-03-03). */
const EPOCH_MS_ABOVE = 1e11;

const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?\s*(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;
const EPOCH_TIME = /^[+-]?(?:\d+\.?\d*|\.\d+)$/;
const DECIMAL = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** Cells pandas reads as missing by default; the reference's users may have written any of them. */
const MISSING_CELLS = new Set([
  '',
  '#N/A',
  '#N/A N/A',
  '#NA',
  '-1.#IND',
  '-1.#QNAN',
  '-NaN',
  '-nan',
  '1.#IND',
  '1.#QNAN',
  '<NA>',
  'N/A',
  'NA',
  'NULL',
  'NaN',
  'None',
  'n/a',
  'nan',
  'null',
]);

/** The reference's component columns: a header with these but no `sensor_id` is a long CSV missing it. */
const REFERENCE_COMPONENTS = new Set(['b_x', 'b_y', 'b_z']);

const TIMESTAMP_HELP =
  "use ISO 8601 (2016-01-18T21:57:00Z), 'YYYY-MM-DD HH:MM:SS' (read as UTC) or epoch seconds/milliseconds";

/**
 * Reads a time as epoch milliseconds (rounded to 1 ms), or `undefined` when the text is not a time.
 *
 * Accepted: ISO 8601 `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` with `Z`, `±HH`, `±HHMM` or `±HH:MM`, the
 * same with a space instead of `T`; no zone means UTC. A plain number is epoch seconds, or epoch milliseconds
 * when its magnitude is above 1e11.
 */
export function parseTimestamp(text: string): number | undefined {
  const trimmed = text.trim();
  const fixed = parseFixedIsoTime(trimmed);
  if (fixed !== null) return fixed;

  if (EPOCH_TIME.test(trimmed)) {
    const epoch = Number(trimmed);
    if (!Number.isFinite(epoch)) return undefined;
    return Math.round(Math.abs(epoch) > EPOCH_MS_ABOVE ? epoch : epoch * 1000);
  }

  const match = ISO_TIME.exec(trimmed);
  if (match === null) return undefined;
  const [
    ,
    year,
    month,
    day,
    hour = '0',
    minute = '0',
    second = '0',
    fraction,
    ,
    sign,
    offsetHour,
    offsetMinute,
  ] = match;
  const epochMs = utcTime(
    Number(year),
    Number(month),
    Number(day),
    Number(hour),
    Number(minute),
    Number(second),
  );
  if (epochMs === undefined) return undefined;
  const fractionMs = fraction === undefined ? 0 : Math.round(Number(`0.${fraction}`) * 1000);
  if (sign === undefined) return epochMs + fractionMs;

  const oh = Number(offsetHour);
  const om = Number(offsetMinute ?? '0');
  if (oh > 23 || om > 59) return undefined;
  return epochMs + fractionMs - (sign === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
}

/**
 * The common `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z]` read without a regular expression, because files repeat it on
 * every row (86,400 times in a day of 1-second IAGA-2002 data); `null` hands other layouts to the full parser.
 */
function parseFixedIsoTime(text: string): number | undefined | null {
  const length = text.length;
  if (length < 19) return null;
  const separator = text.charCodeAt(10);
  if (
    text.charCodeAt(4) !== 45 ||
    text.charCodeAt(7) !== 45 ||
    (separator !== 84 && separator !== 32 && separator !== 116) ||
    text.charCodeAt(13) !== 58 ||
    text.charCodeAt(16) !== 58
  ) {
    return null;
  }
  let end = length;
  const last = text.charCodeAt(length - 1);
  if (last === 90 || last === 122) end--;

  let fractionMs = 0;
  if (end > 19) {
    if (text.charCodeAt(19) !== 46 || end === 20 || end > 29) return null;
    const fraction = digitsAt(text, 20, end - 20);
    if (fraction < 0) return null;
    fractionMs = Math.round(fraction / 10 ** (end - 20 - 3));
  }

  const year = digitsAt(text, 0, 4);
  const month = digitsAt(text, 5, 2);
  const day = digitsAt(text, 8, 2);
  const hour = digitsAt(text, 11, 2);
  const minute = digitsAt(text, 14, 2);
  const second = digitsAt(text, 17, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return null;
  const epochMs = utcTime(year, month, day, hour, minute, second);
  return epochMs === undefined ? undefined : epochMs + fractionMs;
}

/** The decimal number written by `count` digits at `from`, or -1 if any of them is not a digit. */
function digitsAt(text: string, from: number, count: number): number {
  let value = 0;
  for (let at = from; at < from + count; at++) {
    const digit = text.charCodeAt(at) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** Epoch milliseconds of a UTC calendar time, or `undefined` when a field is out of range. */
function utcTime(year: number, month: number, day: number, hour: number, minute: number, second: number) {
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  return ((daysSinceEpoch(year, month, day) * 24 + hour) * 60 + minute) * 60_000 + second * 1000;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days from 1970-01-01 to a proleptic Gregorian date, by arithmetic: Date.UTC costs more per row. */
function daysSinceEpoch(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/**
 * Reads a sample value: a decimal number, or NaN for an empty cell or one of pandas' missing markers
 * (`NaN`, `NA`, `null`, …); `undefined` for any other text.
 */
export function parseValue(text: string): number | undefined {
  // Number() alone would take '' as 0 and '0x10' as 16: the pattern keeps to plain decimals.
  const value = Number(text);
  if (!Number.isNaN(value) && DECIMAL.test(text)) return value;
  return MISSING_CELLS.has(text.trim()) ? Number.NaN : undefined;
}

/**
 * Reads a CSV file into long rows, in file order.
 *
 * - long CSV (a `sensor_id` column): `timestamp,sensor_id,b_x,b_y,b_z`; every other column is a numeric
 *   component of the row's sensor.
 * - wide CSV (no `sensor_id`): `timestamp,<sensor>__<component>,…`; a column without `__` is sensor
 *   `<column>`, component `value`. Each data row becomes one long row per sensor.
 *
 * The header is required; `timestamp` and `sensor_id` match in any letter case, and the timestamp column may
 * be anywhere. Quoted fields (RFC 4180), CRLF line ends and a UTF-8 byte-order mark are accepted; blank rows
 * are skipped. An empty cell is a missing value (NaN); other non-numeric text is an error.
 *
 * @param text the file's content.
 * @param file names the file in error messages.
 * @throws MagwatchError with an `MW_INPUT_*` code naming the file, and the row (file line) or column at fault.
 */
export function parseCsv(text: string, file: string): LongRow[] {
  const rows: LongRow[] = [];
  let readRow: ((fields: string[], row: number) => void) | undefined;

  forEachRecord(text, file, (fields, row) => {
    if (readRow === undefined) readRow = rowReader(fields, `${file}, row ${row}`, file, rows);
    else readRow(fields, row);
  });

  if (readRow === undefined) {
    throw new MagwatchError(
      'MW_INPUT_EMPTY',
      `${file}: the file is empty; give a CSV with a header and data rows`,
    );
  }
  if (rows.length === 0) {
    throw new MagwatchError(
      'MW_INPUT_EMPTY',
      `${file}: a header but no data rows; give a CSV with data rows`,
    );
  }
  return rows;
}

/**
 * Checks the header and returns the reader of one data row for its layout.
 * `where` names the header's file and row in messages.
 */
function rowReader(
  header: string[],
  where: string,
  file: string,
  rows: LongRow[],
): (fields: string[], row: number) => void {
  const names = header.map((name) => name.trim());
  checkHeaderNames(names, where);

  const timestampAt = names.findIndex((name) => name.toLowerCase() === 'timestamp');
  if (timestampAt < 0) {
    throw new MagwatchError(
      'MW_INPUT_MISSING_COLUMN',
      `${where}: no 'timestamp' column in the header (${describeHeader(names)}); name the time column 'timestamp'`,
    );
  }
  const sensorAt = names.findIndex((name) => name.toLowerCase() === 'sensor_id');
  const valueColumns = names.map((_, at) => at).filter((at) => at !== timestampAt && at !== sensorAt);
  if (sensorAt < 0 && valueColumns.some((at) => REFERENCE_COMPONENTS.has(names[at]!))) {
    throw new MagwatchError(
      'MW_INPUT_MISSING_COLUMN',
      `${where}: a long CSV needs a 'sensor_id' column (${describeHeader(names)}); add it, ` +
        `or name wide columns '<sensor>__<component>'`,
    );
  }
  if (valueColumns.length === 0) {
    throw new MagwatchError(
      'MW_INPUT_NO_CHANNELS',
      `${where}: no value columns besides 'timestamp'${sensorAt < 0 ? '' : " and 'sensor_id'"}; ` +
        `add numeric columns such as b_x,b_y,b_z`,
    );
  }

  const readTimestamp = timestampReader(file, names[timestampAt]!);
  const checkWidth = (fields: string[], row: number) => {
    if (fields.length !== names.length) {
      throw new MagwatchError(
        'MW_INPUT_FIELD_COUNT',
        `${file}, row ${row}: ${fields.length} fields where the header has ${names.length}; ` +
          `fix the row (quote values that contain commas)`,
      );
    }
  };
  const readValue = (fields: string[], at: number, row: number): number => {
    const cell = fields[at]!;
    const value = parseValue(cell);
    if (value === undefined) {
      throw new MagwatchError(
        'MW_INPUT_BAD_VALUE',
        `${file}, row ${row}, column '${names[at]}': ${quote(cell)} is not a number; ` +
          `write a number, or leave the cell empty for a missing value`,
      );
    }
    return value;
  };

  if (sensorAt >= 0) {
    return (fields, row) => {
      checkWidth(fields, row);
      const sensor = fields[sensorAt]!.trim();
      if (sensor === '') {
        throw new MagwatchError(
          'MW_INPUT_BAD_VALUE',
          `${file}, row ${row}, column '${names[sensorAt]}': empty sensor id; give every row its sensor`,
        );
      }
      const values: Record<string, number> = {};
      for (const at of valueColumns) values[names[at]!] = readValue(fields, at, row);
      rows.push({ timestamp: readTimestamp(fields[timestampAt]!, row), sensor, values });
    };
  }

  // Wide: gather each sensor's columns once, in order of first appearance.
  const sensors = new Map<string, { component: string; at: number }[]>();
  for (const at of valueColumns) {
    const { sensor, component } = parseChannel(names[at]!);
    let columns = sensors.get(sensor);
    if (columns === undefined) {
      columns = [];
      sensors.set(sensor, columns);
    }
    // `S1` and `S1__value` name the same channel.
    const twin = columns.find((column) => column.component === component);
    if (twin !== undefined) {
      throw new MagwatchError(
        'MW_INPUT_BAD_HEADER',
        `${where}: columns '${names[twin.at]}' and '${names[at]}' are both channel ${sensor}__${component}; ` +
          `rename or delete one of them`,
      );
    }
    columns.push({ component, at });
  }
  return (fields, row) => {
    checkWidth(fields, row);
    const timestamp = readTimestamp(fields[timestampAt]!, row);
    for (const [sensor, columns] of sensors) {
      const values: Record<string, number> = {};
      for (const { component, at } of columns) values[component] = readValue(fields, at, row);
      rows.push({ timestamp, sensor, values });
    }
  };
}

function checkHeaderNames(names: string[], where: string): void {
  const seen = new Set<string>();
  names.forEach((name, at) => {
    if (name === '') {
      throw new MagwatchError(
        'MW_INPUT_BAD_HEADER',
        `${where}: column ${at + 1} has no name; name it or delete the column ` +
          `(pandas writes an unnamed index column unless to_csv(index=False))`,
      );
    }
    if (seen.has(name)) {
      throw new MagwatchError(
        'MW_INPUT_BAD_HEADER',
        `${where}: column '${name}' appears twice in the header; rename or delete one of them`,
      );
    }
    seen.add(name);
  });
}

/** Parses a timestamp cell, reusing the last result: a long CSV repeats each time once per sensor. */
function timestampReader(file: string, column: string): (cell: string, row: number) => number {
  let lastCell: string | undefined;
  let lastTimestamp = 0;
  return (cell, row) => {
    if (cell === lastCell) return lastTimestamp;
    const timestamp = parseTimestamp(cell);
    if (timestamp === undefined) {
      throw new MagwatchError(
        'MW_INPUT_BAD_TIMESTAMP',
        `${file}, row ${row}, column '${column}': cannot read ${quote(cell)} as a time; ${TIMESTAMP_HELP}`,
      );
    }
    lastCell = cell;
    lastTimestamp = timestamp;
    return timestamp;
  };
}

/**
 * Splits CSV text into records and calls `onRecord` with each record's fields and the file line it starts
 * on (1-based). Blank lines and rows of empty fields (spreadsheet leftovers) are skipped.
 */
function forEachRecord(text: string, file: string, onRecord: (fields: string[], row: number) => void): void {
  let position = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 0;
  const nextLine = (): string => {
    let end = text.indexOf('\n', position);
    if (end < 0) end = text.length;
    const content = text.slice(position, end > position && text.charCodeAt(end - 1) === 13 ? end - 1 : end);
    position = end + 1;
    line++;
    return content;
  };

  while (position < text.length) {
    let record = nextLine();
    const row = line;
    let fields: string[] | undefined;
    if (!record.includes('"')) {
      fields = record.split(',');
    } else {
      fields = splitQuoted(record);
      // An open quote continues the field on the next line.
      while (fields === undefined) {
        if (position >= text.length) {
          throw new MagwatchError(
            'MW_INPUT_BAD_QUOTE',
            `${file}, row ${row}: a quoted field is never closed; add the closing '"'`,
          );
        }
        record += `\n${nextLine()}`;
        fields = splitQuoted(record);
      }
    }
    if (fields.every((field) => field.trim() === '')) continue;
    onRecord(fields, row);
  }
}

/** Splits one record with RFC 4180 quoting; `undefined` when a quoted field is still open at its end. */
function splitQuoted(record: string): string[] | undefined {
  const fields: string[] = [];
  let at = 0;
  for (;;) {
    let field = '';
    if (record[at] === '"') {
      at++;
      for (;;) {
        const close = record.indexOf('"', at);
        if (close < 0) return undefined;
        field += record.slice(at, close);
        if (record[close + 1] === '"') {
          field += '"';
          at = close + 2;
        } else {
          at = close + 1;
          break;
        }
      }
    }
    // Text after a closing quote, or an unquoted field, runs to the next comma.
    let comma = record.indexOf(',', at);
    if (comma < 0) comma = record.length;
    field += record.slice(at, comma);
    fields.push(field);
    if (comma >= record.length) return fields;
    at = comma + 1;
  }
}

function describeHeader(names: string[]): string {
  const shown = names.slice(0, 6).join(',');
  return `found ${names.length > 6 ? `${shown},…` : shown}`;
}

/** Quotes user text for a one-line message: escaped, and cut at 40 characters. */
function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCsv, parseTimestamp, parseValue } from '../../src/ingest/csv.js';
import { thrown } from '../helpers/errors.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/ingest/${name}`, import.meta.url));
const T0 = Date.UTC(2024, 2, 1);

describe('parseTimestamp', () => {
  it.each([
    ['2024-03-01T00:00:00Z', T0],
    ['2024-03-01T00:00:00z', T0],
    ['2024-03-01T00:00:00', T0],
    ['2024-03-01t00:00:00', T0],
    ['2024-03-01T00:00', T0],
    ['2024-03-01', T0],
    ['2024-03-01 00:00:00', T0],
    ['2024-03-01 00:00:00.250', T0 + 250],
    ['2024-03-01T00:00:00.1234567Z', T0 + 123],
    ['2024-03-01T00:00:00,5Z', T0 + 500],
    ['2024-03-01T02:00:00+02:00', T0],
    ['2024-03-01T02:00:00+0200', T0],
    ['2024-03-01T02:00:00+02', T0],
    ['2024-02-29T21:30:00-02:30', T0],
    ['2024-03-01 00:00:00+00:00', T0],
    ['  2024-03-01T00:00:00Z  ', T0],
    ['1709251200', T0],
    ['1709251200.5', T0 + 500],
    ['1709251200000', T0],
    ['1709251200250', T0 + 250],
    ['0', 0],
  ])('reads %j', (text, expected) => {
    expect(parseTimestamp(text)).toBe(expected);
  });

  it.each([
    '',
    'yesterday',
    '2024-13-01',
    '2024-02-30',
    '2023-02-29T00:00:00Z',
    '2024-03-01T24:00:00Z',
    '2024-03-01T00:60:00Z',
    '2024-03-01T00:00:61Z',
    '2024-03-01T00:00:00+25:00',
    '2024-03-01T00:00:00 UTC',
    '01/03/2024 00:00',
    '1e9',
  ])('rejects %j', (text) => {
    expect(parseTimestamp(text)).toBeUndefined();
  });
});

describe('parseValue', () => {
  it('reads decimal numbers with signs and exponents', () => {
    expect(parseValue('40000')).toBe(40000);
    expect(parseValue(' -20.5 ')).toBe(-20.5);
    expect(parseValue('+.5')).toBe(0.5);
    expect(parseValue('1.5e3')).toBe(1500);
  });

  it('reads an empty cell and pandas missing markers as NaN', () => {
    for (const cell of ['', '  ', 'NaN', 'nan', 'NA', 'null', 'None', '#N/A']) {
      expect(parseValue(cell), cell).toBeNaN();
    }
  });

  it('rejects other text', () => {
    for (const cell of ['abc', '0x10', '1,5', 'Infinity', '12 nT']) {
      expect(parseValue(cell), cell).toBeUndefined();
    }
  });
});

describe('parseCsv', () => {
  it('reads a long CSV into rows in file order', () => {
    const rows = parseCsv(readFileSync(fixture('long.csv'), 'utf8'), 'long.csv');
    expect(rows).toHaveLength(5);
    expect(rows[0]).toEqual({
      timestamp: T0,
      sensor: 'S2_OBS2_1',
      values: { b_x: 101.5, b_y: -21, b_z: 40001 },
    });
    expect(rows[2]!.sensor).toBe('S1_OBS1_1');
    expect(rows[2]!.timestamp).toBe(T0 + 1000);
    expect(rows[2]!.values['b_y']).toBeNaN();
    expect(rows[3]!.values['b_x']).toBe(999);
  });

  it('keeps extra numeric columns of a long CSV as components, in column order', () => {
    const text = 'sensor_id,b_x,b_y,b_z,timestamp,temperature\nS1,1,2,3,2024-03-01T00:00:00Z,21.5\n';
    const [row] = parseCsv(text, 'extra.csv');
    expect(row).toEqual({
      timestamp: T0,
      sensor: 'S1',
      values: { b_x: 1, b_y: 2, b_z: 3, temperature: 21.5 },
    });
    expect(Object.keys(row!.values)).toEqual(['b_x', 'b_y', 'b_z', 'temperature']);
  });

  it('reads a wide CSV as one row per sensor and time', () => {
    const rows = parseCsv(readFileSync(fixture('wide.csv'), 'utf8'), 'wide.csv');
    expect(rows).toHaveLength(9);
    expect(rows.slice(0, 3)).toEqual([
      { timestamp: T0, sensor: 'S1_OBS1_1', values: { b_z: 40000, b_x: 100.5 } },
      { timestamp: T0, sensor: 'temperature', values: { value: 20.5 } },
      { timestamp: T0, sensor: 'S2_OBS2_1', values: { b_x: Number.NaN } },
    ]);
    expect(rows[3]!.values['b_z']).toBeNaN();
    expect(rows[8]).toEqual({ timestamp: T0 + 2000, sensor: 'S2_OBS2_1', values: { b_x: 101.7 } });
  });

  it('accepts a byte-order mark, CRLF line ends, quoted fields and blank rows', () => {
    const text =
      '\uFEFFTimestamp,"Sensor_ID",b_x,b_y,b_z\r\n' +
      '"2024-03-01 00:00:00","station ""north"", 1",1.5,"2",3\r\n' +
      '\r\n' +
      ',,,,\r\n' +
      '2024-03-01T00:00:01Z,"multi\r\nline",4,5,6\r\n';
    const rows = parseCsv(text, 'quoted.csv');
    expect(rows).toEqual([
      { timestamp: T0, sensor: 'station "north", 1', values: { b_x: 1.5, b_y: 2, b_z: 3 } },
      { timestamp: T0 + 1000, sensor: 'multi\nline', values: { b_x: 4, b_y: 5, b_z: 6 } },
    ]);
  });

  it('reads every timestamp format in one file', () => {
    const text = [
      'timestamp,sensor_id,b_x',
      '2024-03-01T00:00:00Z,S1,1',
      '2024-03-01T01:00:01+01:00,S1,2',
      '2024-03-01 00:00:02.000,S1,3',
      '1709251203,S1,4',
      '1709251204000,S1,5',
    ].join('\n');
    expect(parseCsv(text, 'times.csv').map((row) => row.timestamp)).toEqual([
      T0,
      T0 + 1000,
      T0 + 2000,
      T0 + 3000,
      T0 + 4000,
    ]);
  });

  describe('bad input', () => {
    const header = 'timestamp,sensor_id,b_x,b_y,b_z\n';
    const cases: [string, string, string, string[]][] = [
      ['an empty file', '', 'MW_INPUT_EMPTY', []],
      ['a header without data rows', header, 'MW_INPUT_EMPTY', []],
      [
        'a missing timestamp column',
        'time,sensor_id,b_x\n1,S1,2\n',
        'MW_INPUT_MISSING_COLUMN',
        ['row 1', 'timestamp'],
      ],
      [
        'a long CSV without sensor_id',
        'timestamp,b_x,b_y,b_z\n1,2,3,4\n',
        'MW_INPUT_MISSING_COLUMN',
        ['row 1', 'sensor_id'],
      ],
      ['no value columns', 'timestamp,sensor_id\n1,S1\n', 'MW_INPUT_NO_CHANNELS', ['row 1']],
      [
        'an unnamed column',
        ',timestamp,sensor_id,b_x\n0,1,S1,2\n',
        'MW_INPUT_BAD_HEADER',
        ['row 1', 'column 1'],
      ],
      [
        'a repeated column',
        'timestamp,S1__b_x,S1__b_x\n1,2,3\n',
        'MW_INPUT_BAD_HEADER',
        ['row 1', "'S1__b_x'"],
      ],
      [
        'two columns for one channel',
        'timestamp,S1,S1__value\n1,2,3\n',
        'MW_INPUT_BAD_HEADER',
        ['row 1', "'S1'", "'S1__value'", 'S1__value'],
      ],
      [
        'a header after blank lines without a timestamp',
        '\n\ntime,b\n1,2\n',
        'MW_INPUT_MISSING_COLUMN',
        ['row 3', 'timestamp'],
      ],
      [
        'an unreadable timestamp',
        `${header}2024-03-01T00:00:00Z,S1,1,2,3\nsoon,S1,1,2,3\n`,
        'MW_INPUT_BAD_TIMESTAMP',
        ['row 3', "'timestamp'", '"soon"'],
      ],
      [
        'a short row',
        `${header}2024-03-01T00:00:00Z,S1,1,2\n`,
        'MW_INPUT_FIELD_COUNT',
        ['row 2', '4 fields', '5'],
      ],
      [
        'a long row',
        `${header}2024-03-01T00:00:00Z,S1,1,2,3,4\n`,
        'MW_INPUT_FIELD_COUNT',
        ['row 2', '6 fields'],
      ],
      [
        'a non-numeric value',
        `${header}\n2024-03-01T00:00:00Z,S1,1,n/t,3\n`,
        'MW_INPUT_BAD_VALUE',
        ['row 3', "column 'b_y'", '"n/t"'],
      ],
      [
        'an empty sensor id',
        `${header}2024-03-01T00:00:00Z, ,1,2,3\n`,
        'MW_INPUT_BAD_VALUE',
        ['row 2', "'sensor_id'"],
      ],
      ['an unclosed quote', `${header}2024-03-01T00:00:00Z,"S1,1,2,3\n`, 'MW_INPUT_BAD_QUOTE', ['row 2']],
      [
        'a non-numeric value in a wide CSV',
        'timestamp,S1__b_x\n2024-03-01T00:00:00Z,12nT\n',
        'MW_INPUT_BAD_VALUE',
        ['row 2', "column 'S1__b_x'", '"12nT"'],
      ],
    ];

    it.each(cases)('reports %s with its code, the file and the place', (_, text, code, parts) => {
      const error = thrown(() => parseCsv(text, 'input/bad.csv'));
      expect(error.code).toBe(code);
      expect(error.message.startsWith('input/bad.csv')).toBe(true);
      for (const part of parts) expect(error.message).toContain(part);
      expect(error.message).not.toContain('\n');
    });
  });
});

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Iaga2002File, isIaga2002, parseIaga2002 } from '../../src/ingest/iaga2002.js';
import type { WideTable } from '../../src/ingest/table.js';
import { buildWideTable } from '../../src/ingest/wide.js';
import { REAL_DATA } from '../helpers/cli.js';
import { thrown } from '../helpers/errors.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/ingest/${name}`, import.meta.url));

function column(table: WideTable, channel: string): Float64Array {
  const at = table.channels.indexOf(channel);
  expect(at, `channel ${channel}`).toBeGreaterThanOrEqual(0);
  return table.values[at]!;
}

const HEADER = [
  ' Format                 IAGA-2002                                    |',
  ' IAGA Code              TST                                          |',
  ' # a comment line                                                    |',
];
const COLUMNS = 'DATE       TIME         DOY     TSTX      TSTY      TSTZ      TSTF   |';

describe('parseIaga2002', () => {
  const mini = parseIaga2002(readFileSync(fixture('mini.min'), 'utf8'), 'mini.min');

  it('takes the sensor from the IAGA code and components from the column names', () => {
    expect(mini.sensor).toBe('MIN');
    expect(mini.components).toEqual(['X', 'Y', 'Z', 'F']);
    expect(mini.header['Data Interval Type']).toBe('1-minute');
    expect(mini.header['Reported']).toBe('XYZF');
    expect(Object.keys(mini.header)).not.toContain('#');
  });

  it('reads every data line with its UTC time and values', () => {
    expect(mini.rows).toHaveLength(4);
    expect(mini.rows[0]!.timestamp).toBe(Date.UTC(2020, 5, 1, 0, 0));
    expect(mini.rows[3]!.timestamp).toBe(Date.UTC(2020, 5, 1, 0, 3));
    expect(mini.rows[0]!.sensor).toBe('MIN');
    expect(mini.rows[1]!.values).toMatchObject({ X: 20000.4, Y: -100.5, Z: 45000.6 });
  });

  it('reads 99999 (missing) and 88888 (not recorded) as NaN', () => {
    for (const component of ['X', 'Y', 'Z', 'F']) expect(mini.rows[2]!.values[component]).toBeNaN();
    for (const row of mini.rows) expect(row.values['F']).toBeNaN();
  });

  it('fills the missing sample and drops the unrecorded element in the wide table', () => {
    const table = buildWideTable(mini.rows, 'mini.min');
    expect(table.channels).toEqual(['MIN__X', 'MIN__Y', 'MIN__Z']);
    expect([...column(table, 'MIN__X')]).toEqual([20000.1, 20000.4, 20000.4, 20001]);
  });

  it('falls back to the column prefix when the header has no IAGA code', () => {
    const text = [' Format                 IAGA-2002 |', COLUMNS, '2020-06-01 00:00:00.000 153 1 2 3 4'].join(
      '\n',
    );
    const file = parseIaga2002(text, 'nocode.min');
    expect(file.sensor).toBe('TST');
    expect(file.rows[0]!.values).toEqual({ X: 1, Y: 2, Z: 3, F: 4 });
  });

  it('recognises the format from its header', () => {
    expect(isIaga2002(readFileSync(fixture('mini.min'), 'utf8'))).toBe(true);
    expect(isIaga2002(' IAGA CODE              BOU |\n')).toBe(true);
    expect(isIaga2002(readFileSync(fixture('long.csv'), 'utf8'))).toBe(false);
  });

  describe('bad input', () => {
    const cases: [string, string, string, string[]][] = [
      ['a file without the column header', HEADER.join('\n'), 'MW_INPUT_IAGA_NO_DATA_HEADER', ['DATE TIME']],
      ['a file without data lines', [...HEADER, COLUMNS].join('\n'), 'MW_INPUT_EMPTY', []],
      [
        'a short data line',
        [...HEADER, COLUMNS, '2020-06-01 00:00:00.000 153 1 2 3'].join('\n'),
        'MW_INPUT_FIELD_COUNT',
        ['row 5', '6 fields', '7'],
      ],
      [
        'an unreadable time',
        [
          ...HEADER,
          COLUMNS,
          '2020-06-01 00:00:00.000 153 1 2 3 4',
          '2020-06-31 00:01:00.000 153 1 2 3 4',
        ].join('\n'),
        'MW_INPUT_BAD_TIMESTAMP',
        ['row 6', '2020-06-31 00:01:00.000'],
      ],
      [
        'a non-numeric value',
        [...HEADER, COLUMNS, '2020-06-01 00:00:00.000 153 1 2 x 4'].join('\n'),
        'MW_INPUT_BAD_VALUE',
        ['row 5', 'column Z', '"x"'],
      ],
    ];

    it.each(cases)('reports %s with its code, the file and the place', (_, text, code, parts) => {
      const error = thrown(() => parseIaga2002(text, 'obs/tst.min'));
      expect(error.code).toBe(code);
      expect(error.message.startsWith('obs/tst.min')).toBe(true);
      for (const part of parts) expect(error.message).toContain(part);
      expect(error.message).not.toContain('\n');
    });
  });
});

describe('real IAGA-2002 recordings', () => {
  describe('BOU, January 2016, 1-minute', () => {
    const path = join(REAL_DATA, 'bou-2016-01', 'BOU201601vmin.min');
    let file: Iaga2002File;
    let table: WideTable;
    beforeAll(() => {
      file = parseIaga2002(readFileSync(path, 'utf8'), path);
      table = buildWideTable(file.rows, path);
    });

    it('reads every row, first to last', () => {
      expect(file.sensor).toBe('BOU');
      expect(file.components).toEqual(['H', 'E', 'Z', 'F']);
      expect(file.rows).toHaveLength(41_592);
      expect(file.rows[0]!.timestamp).toBe(Date.UTC(2016, 0, 1, 0, 0));
      expect(file.rows.at(-1)!.timestamp).toBe(Date.UTC(2016, 0, 29, 21, 11));
    });

    it('matches the values in the file text', () => {
      // 2016-01-01 00:00:00.000 001     20735.93    -99.77  47370.21  52248.63
      expect(file.rows[0]!.values).toEqual({ H: 20735.93, E: -99.77, Z: 47370.21, F: 52248.63 });
      // The storm sudden commencement: 2016-01-18 21:58:00.000 018  20846.54  -110.39  47331.08  52255.50
      const ssc = Date.UTC(2016, 0, 18, 21, 58);
      const at = table.timestamps.indexOf(ssc);
      expect(at).toBe(25_798);
      expect(column(table, 'BOU__H')[at]).toBe(20846.54);
      expect(column(table, 'BOU__E')[at]).toBe(-110.39);
      expect(column(table, 'BOU__Z')[at]).toBe(47331.08);
      expect(column(table, 'BOU__F')[at]).toBe(52255.5);
    });

    it('builds one channel per element over a 1-minute timeline', () => {
      expect(table.channels).toEqual(['BOU__H', 'BOU__E', 'BOU__Z', 'BOU__F']);
      expect(table.timestamps).toHaveLength(41_592);
      expect(table.timestamps[1]! - table.timestamps[0]!).toBe(60_000);
      expect(column(table, 'BOU__H').at(-1)).toBe(20821.17);
    });
  });

  describe('WIC, 2018-08-02, 1-second', () => {
    let workdir: string;
    let file: Iaga2002File;
    beforeAll(() => {
      workdir = mkdtempSync(join(tmpdir(), 'magwatch-wic-'));
      execFileSync('python3', [
        '-m',
        'zipfile',
        '-e',
        join(REAL_DATA, 'wic-2018-08-02', 'example1.zip'),
        workdir,
      ]);
      const path = join(workdir, 'wic20180802vsec.sec');
      file = parseIaga2002(readFileSync(path, 'utf8'), path);
    });
    afterAll(() => rmSync(workdir, { recursive: true, force: true }));

    it('reads every row, first to last', () => {
      expect(file.sensor).toBe('WIC');
      expect(file.components).toEqual(['E', 'H', 'Z', 'F']);
      expect(file.rows).toHaveLength(86_400);
      expect(file.rows[0]!.timestamp).toBe(Date.UTC(2018, 7, 2, 0, 0, 0));
      expect(file.rows.at(-1)!.timestamp).toBe(Date.UTC(2018, 7, 2, 23, 59, 59));
    });

    it('matches the values in the file text', () => {
      // 2018-08-02 12:00:00.000 214       -24.64  21066.78  43828.90  88888.00
      const noon = file.rows[12 * 3600]!;
      expect(noon.timestamp).toBe(Date.UTC(2018, 7, 2, 12));
      expect(noon.values).toMatchObject({ E: -24.64, H: 21066.78, Z: 43828.9 });
    });

    it('reads the missing vector sample as NaN and fills it from the second before', () => {
      const missingAt = 1 * 3600 + 58 * 60 + 29;
      const missing = file.rows[missingAt]!;
      expect(missing.timestamp).toBe(Date.UTC(2018, 7, 2, 1, 58, 29));
      for (const component of ['E', 'H', 'Z']) expect(missing.values[component]).toBeNaN();

      const table = buildWideTable(file.rows, 'wic20180802vsec.sec');
      // 01:58:28 reads 13.20  21059.65  43841.16
      expect(column(table, 'WIC__E')[missingAt]).toBe(13.2);
      expect(column(table, 'WIC__H')[missingAt]).toBe(21059.65);
      expect(column(table, 'WIC__Z')[missingAt]).toBe(43841.16);
    });

    it('drops the F element, which is never recorded', () => {
      expect(file.rows.every((row) => Number.isNaN(row.values['F']))).toBe(true);
      const table = buildWideTable(file.rows, 'wic20180802vsec.sec');
      expect(table.channels).toEqual(['WIC__E', 'WIC__H', 'WIC__Z']);
      expect(table.timestamps).toHaveLength(86_400);
    });
  });
});

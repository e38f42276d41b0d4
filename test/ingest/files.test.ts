import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MagwatchError } from '../../src/errors.js';
import { parseTimestamp, readInputs, readLongRows } from '../../src/ingest/files.js';
import type { WideTable } from '../../src/ingest/table.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/ingest/${name}`, import.meta.url));
const T0 = Date.UTC(2024, 2, 1);

function columns(table: WideTable): Record<string, number[]> {
  return Object.fromEntries(table.channels.map((channel, at) => [channel, [...table.values[at]!]]));
}

async function rejection(promise: Promise<unknown>): Promise<MagwatchError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(MagwatchError);
    return error as MagwatchError;
  }
  throw new Error('expected a MagwatchError');
}

describe('readInputs', () => {
  let workdir: string;
  const write = (name: string, content: string | Buffer): string => {
    const path = join(workdir, name);
    writeFileSync(path, content);
    return path;
  };
  beforeAll(() => {
    workdir = mkdtempSync(join(tmpdir(), 'magwatch-ingest-'));
  });
  afterAll(() => rmSync(workdir, { recursive: true, force: true }));

  it('builds the wide table of a long CSV', async () => {
    const table = await readInputs([fixture('long.csv')]);
    expect([...table.timestamps]).toEqual([T0, T0 + 1000, T0 + 2000]);
    expect(columns(table)).toEqual({
      S1_OBS1_1__b_x: [100.5, 100.6, 100.6],
      S1_OBS1_1__b_y: [-20, -20, -20],
      S1_OBS1_1__b_z: [40000, 40002, 40002],
      S2_OBS2_1__b_x: [101.5, 101.5, 101.7],
      S2_OBS2_1__b_y: [-21, -21, -23],
      S2_OBS2_1__b_z: [40001, 40001, 40003],
    });
    expect(table.channels[0]).toBe('S1_OBS1_1__b_x');
  });

  it('builds the wide table of a wide CSV', async () => {
    const table = await readInputs([fixture('wide.csv')]);
    expect(table.channels).toEqual([
      'S1_OBS1_1__b_x',
      'S1_OBS1_1__b_z',
      'S2_OBS2_1__b_x',
      'temperature__value',
    ]);
    expect(columns(table)).toEqual({
      S1_OBS1_1__b_x: [100.5, 100.6, 100.7],
      S1_OBS1_1__b_z: [40000, 40000, 40002],
      S2_OBS2_1__b_x: [101.6, 101.6, 101.7],
      temperature__value: [20.5, 20.4, 20.4],
    });
  });

  it('recognises IAGA-2002 by its header, plain and gzip-compressed', async () => {
    const plain = await readInputs([fixture('mini.min')]);
    const packed = await readInputs([write('mini.min.gz', gzipSync(readFileSync(fixture('mini.min'))))]);
    expect(plain.channels).toEqual(['MIN__X', 'MIN__Y', 'MIN__Z']);
    expect(packed).toEqual(plain);
  });

  it('reads a gzip-compressed CSV whatever its name', async () => {
    const path = write('long-data.bin', gzipSync(readFileSync(fixture('long.csv'))));
    expect(await readInputs([path])).toEqual(await readInputs([fixture('long.csv')]));
  });

  it('merges several files into one timeline, sensors in id order', async () => {
    const table = await readInputs([fixture('long.csv'), fixture('mini.min')]);
    expect(table.channels.slice(0, 4)).toEqual(['MIN__X', 'MIN__Y', 'MIN__Z', 'S1_OBS1_1__b_x']);
    expect(table.timestamps).toHaveLength(3 + 4);
    // The CSV's sensors start in 2024, after the IAGA minutes of 2020: back-filled until then.
    expect(columns(table)['S1_OBS1_1__b_x']).toEqual([100.5, 100.5, 100.5, 100.5, 100.5, 100.6, 100.6]);
    expect(columns(table)['MIN__X']!.slice(3)).toEqual([20001, 20001, 20001, 20001]);
  });

  it('keeps the earlier file where days of one sensor overlap', async () => {
    const day1 = write(
      'day1.csv',
      'timestamp,sensor_id,b_x\n2024-03-01T00:00:00Z,S1,1\n2024-03-01T00:00:01Z,S1,2\n',
    );
    const day2 = write(
      'day2.csv',
      'timestamp,sensor_id,b_x\n2024-03-01T00:00:01Z,S1,20\n2024-03-01T00:00:02Z,S1,3\n',
    );
    expect(columns(await readInputs([day1, day2]))).toEqual({ S1__b_x: [1, 2, 3] });
    expect(columns(await readInputs([day2, day1]))).toEqual({ S1__b_x: [1, 20, 3] });
  });

  it('selects from <= t < to before building, so filling never reaches across the edge', async () => {
    const table = await readInputs([fixture('long.csv')], { from: T0 + 1000, to: T0 + 3000 });
    expect([...table.timestamps]).toEqual([T0 + 1000, T0 + 2000]);
    // S1 b_y has its only value at T0, outside the selection: the channel is empty and dropped.
    expect(columns(table)).toEqual({
      S1_OBS1_1__b_x: [100.6, 100.6],
      S1_OBS1_1__b_z: [40002, 40002],
      S2_OBS2_1__b_x: [101.7, 101.7],
      S2_OBS2_1__b_y: [-23, -23],
      S2_OBS2_1__b_z: [40003, 40003],
    });
    const head = await readInputs([fixture('long.csv')], { to: T0 + 2000 });
    expect([...head.timestamps]).toEqual([T0, T0 + 1000]);
  });

  it('reports an empty selection with the time range of each file', async () => {
    const error = await rejection(
      readInputs([fixture('long.csv'), fixture('mini.min')], { from: Date.UTC(2025, 0, 1) }),
    );
    expect(error.code).toBe('MW_INPUT_EMPTY_RANGE');
    expect(error.message).toContain('no samples from 2025-01-01T00:00:00Z:');
    expect(error.message).toContain(
      `${fixture('long.csv')} covers 2024-03-01T00:00:00Z to 2024-03-01T00:00:02Z`,
    );
    expect(error.message).toContain(
      `${fixture('mini.min')} covers 2020-06-01T00:00:00Z to 2020-06-01T00:03:00Z`,
    );

    const early = await rejection(readInputs([fixture('long.csv')], { to: T0 }));
    expect(early.code).toBe('MW_INPUT_EMPTY_RANGE');
    expect(early.message).toContain('no samples before 2024-03-01T00:00:00Z:');
    const inverted = await rejection(readInputs([fixture('long.csv')], { from: T0 + 2000, to: T0 }));
    expect(inverted.message).toContain('no samples from 2024-03-01T00:00:02Z before 2024-03-01T00:00:00Z:');
  });

  describe('bad files', () => {
    it('reports a missing file', async () => {
      const path = join(workdir, 'absent.csv');
      const error = await rejection(readInputs([path]));
      expect(error.code).toBe('MW_INPUT_NOT_FOUND');
      expect(error.message).toContain(path);
    });

    it('reports a directory given as a file', async () => {
      const error = await rejection(readInputs([workdir]));
      expect(error.code).toBe('MW_INPUT_UNREADABLE');
      expect(error.message).toContain(workdir);
    });

    it('reports an empty or blank file', async () => {
      for (const content of ['', '\uFEFF \n\n']) {
        const path = write('empty.csv', content);
        const error = await rejection(readInputs([path]));
        expect(error.code).toBe('MW_INPUT_EMPTY');
        expect(error.message).toContain(path);
      }
    });

    it('reports a broken gzip file', async () => {
      const path = write('broken.csv.gz', gzipSync(readFileSync(fixture('long.csv'))).subarray(0, 30));
      const error = await rejection(readInputs([path]));
      expect(error.code).toBe('MW_INPUT_BAD_GZIP');
      expect(error.message).toContain(path);
    });

    it('refuses a zip archive with a hint to extract it', async () => {
      const path = write('data.zip', Buffer.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x00]));
      const error = await rejection(readInputs([path]));
      expect(error.code).toBe('MW_INPUT_UNSUPPORTED');
      expect(error.message).toContain(path);
      expect(error.message).toContain('extract');
    });

    it('reports a file whose every value is missing', async () => {
      const path = write('blank-values.csv', 'timestamp,sensor_id,b_x\n2024-03-01T00:00:00Z,S1,\n');
      const error = await rejection(readInputs([path]));
      expect(error.code).toBe('MW_INPUT_NO_CHANNELS');
      expect(error.message).toContain(path);
    });

    it('names the file and row of a parse error inside a gzip file', async () => {
      const path = write('bad.csv.gz', gzipSync('timestamp,sensor_id,b_x\n2024-03-01T00:00:00Z,S1,abc\n'));
      const error = await rejection(readInputs([path]));
      expect(error.code).toBe('MW_INPUT_BAD_VALUE');
      expect(error.message).toContain(`${path}, row 2, column 'b_x'`);
    });

    it('reports a call without files', async () => {
      expect((await rejection(readInputs([]))).code).toBe('MW_INPUT_NO_FILES');
    });
  });
});

describe('readLongRows', () => {
  it('returns the selected rows in file order with missing values as NaN', async () => {
    const rows = await readLongRows([fixture('long.csv')], { from: T0 + 1000 });
    expect(rows.map((row) => [row.timestamp - T0, row.sensor])).toEqual([
      [1000, 'S1_OBS1_1'],
      [1000, 'S1_OBS1_1'],
      [2000, 'S2_OBS2_1'],
    ]);
    expect(rows[0]!.values['b_y']).toBeNaN();
  });
});

describe('parseTimestamp', () => {
  it('is shared with the command line for --from and --to', () => {
    expect(parseTimestamp('2016-01-18T21:57:00Z')).toBe(Date.UTC(2016, 0, 18, 21, 57));
    expect(parseTimestamp('2016-01-18')).toBe(Date.UTC(2016, 0, 18));
  });
});

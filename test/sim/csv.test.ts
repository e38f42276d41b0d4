import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { MagwatchError } from '../../src/errors.js';
import { formatLongCsv, formatLongRow, formatTime, splitCsvLine, writeLongCsv } from '../../src/sim/csv.js';
import { formatLabelsCsv, parseLabelsCsv } from '../../src/sim/labels.js';
import { simulate } from '../../src/sim/simulate.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'magwatch-sim-csv-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const run = simulate({
  observatories: 1,
  sensorsPerObservatory: 2,
  rateHz: 10,
  start: Date.UTC(2026, 0, 15, 12),
  durationS: 30,
  seed: 3,
  anomalies: 'default',
});

describe('long CSV', () => {
  test('writes ISO 8601 UTC times with milliseconds only when the time has them', () => {
    expect(formatTime(Date.UTC(2026, 0, 15, 12, 30, 5))).toBe('2026-01-15T12:30:05Z');
    expect(formatTime(Date.UTC(2026, 0, 15, 12, 30, 5, 100))).toBe('2026-01-15T12:30:05.100Z');
  });

  test('writes values with a fixed number of decimals', () => {
    const row = {
      timestamp: Date.UTC(2026, 0, 1),
      sensor: 'S1_OBS1_1',
      values: { b_x: 20000.12345, b_y: -3, b_z: 45000.5 },
    };
    expect(formatLongRow(row)).toBe('2026-01-01T00:00:00Z,S1_OBS1_1,20000.123,-3.000,45000.500');
    expect(formatLongRow(row, 1)).toBe('2026-01-01T00:00:00Z,S1_OBS1_1,20000.1,-3.0,45000.5');
  });

  test('streams to a file the same bytes it formats in memory', async () => {
    const path = join(dir, 'data.csv');
    await writeLongCsv(path, run.rows);
    const text = await readFile(path, 'utf8');
    expect(text).toBe(formatLongCsv(run.rows));
    expect(text.split('\n')[0]).toBe('timestamp,sensor_id,b_x,b_y,b_z');
    expect(text.split('\n')).toHaveLength(run.rows.length + 2);
  });

  test('splits quoted cells with commas and escaped quotes', () => {
    expect(splitCsvLine('a, "b,c" ,"say ""hi"""')).toEqual(['a', 'b,c', 'say "hi"']);
  });
});

describe('labels CSV', () => {
  test('reads back what it writes', () => {
    const text = formatLabelsCsv(run.labels);
    expect(text.split('\n')[0]).toBe('start,end,kind,sensors,components');
    expect(text.split('\n')[1]).toMatch(
      /^2026-01-15T12:00:03Z,2026-01-15T12:00:07\.\d00Z,storm,S1_OBS1_1;S2_OBS1_2,b_x;b_y;b_z$/,
    );
    expect(parseLabelsCsv(text, 'labels.csv')).toEqual(run.labels);
  });

  test('reads hand-written labels with columns in any order and no sensors', () => {
    const labels = parseLabelsCsv(
      'kind,end,start\nmanual,2026-01-15 00:10:00,2026-01-15T00:05:00Z\n',
      'mine.csv',
    );
    expect(labels).toEqual([
      {
        start: Date.UTC(2026, 0, 15, 0, 5),
        end: Date.UTC(2026, 0, 15, 0, 10),
        kind: 'manual',
        groups: [],
        sensors: [],
        components: [],
      },
    ]);
  });

  test('names the file, line and field of a bad label', () => {
    const error = (text: string) => {
      try {
        parseLabelsCsv(text, 'labels.csv');
      } catch (caught) {
        return caught as MagwatchError;
      }
      throw new Error('no error');
    };
    expect(error('start,kind\n').code).toBe('MW_LABELS_MISSING_COLUMN');
    const badTime = error('start,end,kind\n2026-01-15T00:00:00Z,soon,storm\n');
    expect(badTime.code).toBe('MW_LABELS_BAD_TIME');
    expect(badTime.message).toContain("labels.csv:2: end 'soon'");
    expect(error('start,end,kind\n2026-01-15T01:00:00Z,2026-01-15T00:00:00Z,storm\n').code).toBe(
      'MW_LABELS_BAD_INTERVAL',
    );
  });
});

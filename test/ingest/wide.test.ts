import { describe, expect, it } from 'vitest';
import type { LongRow, WideTable } from '../../src/ingest/table.js';
import { buildWideTable } from '../../src/ingest/wide.js';
import { thrown } from '../helpers/errors.js';

const missing = Number.NaN;

function column(table: WideTable, channel: string): number[] {
  const at = table.channels.indexOf(channel);
  expect(at, `channel ${channel}`).toBeGreaterThanOrEqual(0);
  return [...table.values[at]!];
}

describe('buildWideTable', () => {
  // Rows in file order; the expected columns below were worked out by hand from the reference's rules.
  const rows: LongRow[] = [
    { timestamp: 3000, sensor: 'S2', values: { b_z: 43, b_x: 23, b_y: 33 } },
    { timestamp: 1000, sensor: 'S1', values: { b_x: 1, b_y: missing, b_z: 5 } },
    { timestamp: 2000, sensor: 'S1', values: { b_x: 2, b_y: 12, b_z: missing } },
    { timestamp: 2000, sensor: 'S1', values: { b_x: 99, b_y: 99, b_z: 99 } },
    { timestamp: 4000, sensor: 'S1', values: { b_x: 4, b_y: 14, b_z: 6 } },
    { timestamp: 2000, sensor: 'S2', values: { b_x: 22, b_y: missing, b_z: 42, temperature: missing } },
    { timestamp: 1000, sensor: 'S10', values: { b_z: 7, b_x: 8 } },
    { timestamp: 4000, sensor: 'A0', values: { H: 1, E: 2 } },
  ];
  const table = buildWideTable(rows, 'rows.csv');

  it('uses the sorted union of all timestamps as the timeline', () => {
    expect([...table.timestamps]).toEqual([1000, 2000, 3000, 4000]);
  });

  it('orders channels by sensor id, then b_x, b_y, b_z, then other components as first seen', () => {
    expect(table.channels).toEqual([
      'A0__H',
      'A0__E',
      'S1__b_x',
      'S1__b_y',
      'S1__b_z',
      'S10__b_x',
      'S10__b_z',
      'S2__b_x',
      'S2__b_y',
      'S2__b_z',
    ]);
    expect(table.values).toHaveLength(table.channels.length);
  });

  it('keeps the first row of a duplicate timestamp, even where its value is missing', () => {
    expect(column(table, 'S1__b_x')).toEqual([1, 2, 2, 4]);
    // The duplicate at 2000 carries 99 where the first row has NaN: the NaN is filled from 1000 instead.
    expect(column(table, 'S1__b_z')).toEqual([5, 5, 5, 6]);
  });

  it('forward-fills, then back-fills each channel on the global timeline', () => {
    expect(column(table, 'S1__b_y')).toEqual([12, 12, 12, 14]);
    expect(column(table, 'S2__b_x')).toEqual([22, 22, 23, 23]);
    expect(column(table, 'S2__b_y')).toEqual([33, 33, 33, 33]);
    expect(column(table, 'S2__b_z')).toEqual([42, 42, 43, 43]);
    expect(column(table, 'S10__b_x')).toEqual([8, 8, 8, 8]);
    expect(column(table, 'A0__E')).toEqual([2, 2, 2, 2]);
  });

  it('drops a channel that has no value anywhere', () => {
    expect(table.channels).not.toContain('S2__temperature');
  });

  it('rejects an empty row list, naming the source', () => {
    const error = thrown(() => buildWideTable([], 'empty.csv'));
    expect(error.code).toBe('MW_INPUT_EMPTY');
    expect(error.message).toContain('empty.csv');
  });

  it('rejects rows whose channels are all empty', () => {
    const error = thrown(() =>
      buildWideTable([{ timestamp: 0, sensor: 'WIC', values: { F: missing } }], 'wic.sec'),
    );
    expect(error.code).toBe('MW_INPUT_NO_CHANNELS');
    expect(error.message).toContain('wic.sec');
  });

  it('aligns a day of 1-second samples from several sensors', () => {
    const day = 86_400;
    const many: LongRow[] = [];
    for (const sensor of ['S3', 'S1', 'S2']) {
      // Each sensor misses a different second, so the union covers the whole day.
      const skipped = Number(sensor.slice(1)) * 1000;
      for (let second = 0; second < day; second++) {
        if (second === skipped) continue;
        many.push({ timestamp: second * 1000, sensor, values: { b_x: second, b_y: -second, b_z: 1 } });
      }
    }
    const wide = buildWideTable(many, 'day.csv');
    expect(wide.timestamps).toHaveLength(day);
    expect(wide.channels).toHaveLength(9);
    const s2x = wide.values[wide.channels.indexOf('S2__b_x')]!;
    expect(s2x[2000]).toBe(1999);
    expect(s2x[2001]).toBe(2001);
  });
});

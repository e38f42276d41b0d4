import { MagwatchError } from '../errors.js';
import { channelName, type LongRow, type WideTable } from './table.js';

/** The reference's components, which lead every sensor's channels in this order. */
const REFERENCE_COMPONENTS = ['b_x', 'b_y', 'b_z'];

/** One sensor's columns on the global timeline while the table is being built. */
interface SensorColumns {
  /** Component to column; NaN where the sensor has no value. */
  readonly columns: Map<string, Float64Array>;
  /** 1 where a row of this sensor already landed, so later duplicates are dropped. */
  readonly taken: Uint8Array;
}

/**
 * Builds the wide table exactly as the reference does:
 *
 * - one channel `<sensor>__<component>` per sensor and component found in `rows`;
 * - the timeline is the sorted union of the timestamps of all rows;
 * - a second row of a sensor at a timestamp it already has is dropped (the first row in `rows` order wins,
 *   even where its values are NaN);
 * - every channel is aligned to the timeline (NaN where its sensor has no row), then forward-filled, then
 *   back-filled;
 * - a channel that is NaN everywhere (e.g. an IAGA-2002 element recorded as 88888) is dropped.
 *
 * Channel order: sensors sorted by id (code-unit order, as pandas sorts its pivoted columns), and within a
 * sensor `b_x`, `b_y`, `b_z` first, then any other component in order of first appearance in `rows`
 * (for a file, its column order).
 *
 * @param rows long rows in file order; a component a row lacks is NaN for that row.
 * @param source names the input in error messages (a file, or a list of files).
 * @throws MagwatchError `MW_INPUT_EMPTY` when there are no rows, `MW_INPUT_NO_CHANNELS` when no channel has a value.
 */
export function buildWideTable(rows: readonly LongRow[], source: string): WideTable {
  if (rows.length === 0) {
    throw new MagwatchError(
      'MW_INPUT_EMPTY',
      `${source}: no data rows; give a file with at least one sample`,
    );
  }

  const timestamps = unionTimeline(rows);
  const n = timestamps.length;

  const sensors = new Map<string, SensorColumns>();
  const componentRank = new Map<string, number>(
    REFERENCE_COMPONENTS.map((component, rank) => [component, rank]),
  );

  for (const row of rows) {
    let sensor = sensors.get(row.sensor);
    if (sensor === undefined) {
      sensor = { columns: new Map(), taken: new Uint8Array(n) };
      sensors.set(row.sensor, sensor);
    }
    const at = indexOf(timestamps, row.timestamp);
    if (sensor.taken[at] === 1) continue;
    sensor.taken[at] = 1;

    for (const component in row.values) {
      let column = sensor.columns.get(component);
      if (column === undefined) {
        column = new Float64Array(n).fill(Number.NaN);
        sensor.columns.set(component, column);
        if (!componentRank.has(component)) componentRank.set(component, componentRank.size);
      }
      column[at] = row.values[component]!;
    }
  }

  const channels: string[] = [];
  const values: Float64Array[] = [];
  const sensorIds = [...sensors.keys()].sort(byCodeUnits);
  for (const sensorId of sensorIds) {
    const { columns } = sensors.get(sensorId)!;
    const components = [...columns.keys()].sort((a, b) => componentRank.get(a)! - componentRank.get(b)!);
    for (const component of components) {
      const column = columns.get(component)!;
      if (!fillGaps(column)) continue;
      channels.push(channelName(sensorId, component));
      values.push(column);
    }
  }

  if (channels.length === 0) {
    throw new MagwatchError(
      'MW_INPUT_NO_CHANNELS',
      `${source}: every channel is empty (all values missing); give a file with numeric values`,
    );
  }
  return { timestamps, channels, values };
}

/** Sorted, de-duplicated timestamps of all rows. */
function unionTimeline(rows: readonly LongRow[]): Float64Array {
  const all = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) all[i] = rows[i]!.timestamp;
  all.sort();
  let unique = 0;
  for (let i = 0; i < all.length; i++) {
    if (i === 0 || all[i] !== all[unique - 1]) all[unique++] = all[i]!;
  }
  return all.slice(0, unique);
}

/** Index of `timestamp` in the sorted timeline, which is known to hold it. */
function indexOf(timeline: Float64Array, timestamp: number): number {
  let low = 0;
  let high = timeline.length - 1;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (timeline[middle]! < timestamp) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Forward-fills, then back-fills the column in place; false when it holds no value at all. */
function fillGaps(column: Float64Array): boolean {
  let first = -1;
  for (let i = 0; i < column.length; i++) {
    if (!Number.isNaN(column[i]!)) {
      first = i;
      break;
    }
  }
  if (first < 0) return false;

  // Back-filling only ever reaches the stretch before the first value: ffill has closed every later gap.
  column.fill(column[first]!, 0, first);
  for (let i = first + 1; i < column.length; i++) {
    if (Number.isNaN(column[i]!)) column[i] = column[i - 1]!;
  }
  return true;
}

function byCodeUnits(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}

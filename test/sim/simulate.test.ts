import { describe, expect, test } from 'vitest';
import { MagwatchError } from '../../src/errors.js';
import { groupOf, type LongRow } from '../../src/ingest/table.js';
import { COMPONENTS, type Label } from '../../src/sim/anomalies.js';
import { formatLongCsv } from '../../src/sim/csv.js';
import { type SimulateOptions, sensorLayout, simulate, simulateStream } from '../../src/sim/simulate.js';

const START = Date.UTC(2026, 2, 1, 9);

const base: SimulateOptions = {
  observatories: 2,
  sensorsPerObservatory: 2,
  rateHz: 2,
  start: START,
  durationS: 300,
  seed: 7,
};

/** Anomaly part of every value: the same run minus the same run without anomalies, by sensor/component. */
function disturbance(options: SimulateOptions): Map<string, number[]> {
  const withAnomalies = simulate(options).rows;
  const quiet = simulate({ ...options, anomalies: [] }).rows;
  const byChannel = new Map<string, number[]>();
  withAnomalies.forEach((row, i) => {
    for (const component of COMPONENTS) {
      const channel = `${row.sensor}__${component}`;
      const list = byChannel.get(channel) ?? [];
      list.push(row.values[component]! - quiet[i]!.values[component]!);
      byChannel.set(channel, list);
    }
  });
  return byChannel;
}

function covers(label: Label, channel: string): boolean {
  const [sensor, component] = channel.split('__');
  return label.sensors.includes(sensor!) && label.components.includes(component!);
}

function timesOf(rows: readonly LongRow[]): number[] {
  return [...new Set(rows.map((row) => row.timestamp))];
}

describe('simulate', () => {
  test('gives the same bytes for the same seed and different bytes for another', () => {
    const options: SimulateOptions = { ...base, anomalies: 'default' };
    const first = formatLongCsv(simulate(options).rows);
    expect(formatLongCsv(simulate(options).rows)).toBe(first);
    expect(formatLongCsv(simulate({ ...options, seed: 8 }).rows)).not.toBe(first);
  });

  test('streams the same rows as the in-memory run, in time order', () => {
    const options: SimulateOptions = { ...base, anomalies: 'default' };
    const streamed = [...simulateStream(options)];
    expect(streamed).toEqual(simulate(options).rows);
    for (let i = 1; i < streamed.length; i++) {
      expect(streamed[i]!.timestamp).toBeGreaterThanOrEqual(streamed[i - 1]!.timestamp);
    }
  });

  test('names sensors S<k>_OBS<o>_<i>, so that the reference groups them by observatory', () => {
    const layout = sensorLayout(2, [2, 1]);
    expect(layout.sensors).toEqual(['S1_OBS1_1', 'S2_OBS1_2', 'S3_OBS2_1']);
    expect(layout.sensors.map(groupOf)).toEqual(['OBS1', 'OBS1', 'OBS2']);
  });

  test('writes one row per sensor and sample on whole milliseconds, even at 3 Hz', () => {
    const { rows } = simulate({ ...base, rateHz: 3, durationS: 2 });
    const times = timesOf(rows);
    expect(rows).toHaveLength(6 * 4);
    expect(times.map((time) => time - START)).toEqual([0, 333, 667, 1000, 1333, 1667]);
  });

  test('produces a field near mid-latitude levels with noise about noiseNt', () => {
    const { rows } = simulate({ ...base, durationS: 600, noiseNt: 0.3 });
    const sensor = rows.filter((row) => row.sensor === 'S1_OBS1_1');
    const mean = (component: string) =>
      sensor.reduce((sum, row) => sum + row.values[component]!, 0) / sensor.length;
    expect(Math.abs(mean('b_x') - 20_000)).toBeLessThan(1_000);
    expect(Math.abs(mean('b_y') - 1_500)).toBeLessThan(500);
    expect(Math.abs(mean('b_z') - 45_000)).toBeLessThan(2_000);

    // At 2 Hz the slow field barely moves between samples, so differences are noise: std sqrt(2) x noise.
    const steps = sensor.slice(1).map((row, i) => row.values['b_x']! - sensor[i]!.values['b_x']!);
    const std = Math.sqrt(steps.reduce((sum, step) => sum + step * step, 0) / steps.length) / Math.SQRT2;
    expect(std).toBeGreaterThan(0.2);
    expect(std).toBeLessThan(0.4);
  });

  test('differs slightly between sensors of one observatory and more between observatories', () => {
    const { rows } = simulate(base);
    const first = (sensor: string) => rows.find((row) => row.sensor === sensor)!.values['b_z']!;
    const sameObservatory = Math.abs(first('S1_OBS1_1') - first('S2_OBS1_2'));
    expect(sameObservatory).toBeGreaterThan(0);
    expect(sameObservatory).toBeLessThan(10);
    expect(Math.abs(first('S1_OBS1_1') - first('S3_OBS2_1'))).toBeGreaterThan(sameObservatory);
  });

  test('labels every default anomaly exactly where it changes the data', () => {
    const options: SimulateOptions = { ...base, anomalies: 'default' };
    const { labels } = simulate(options);
    expect(labels.map((label) => label.kind)).toEqual(['storm', 'object', 'glitch', 'spike', 'step', 'ramp']);
    const times = timesOf(simulate(options).rows);

    for (const [channel, diff] of disturbance(options)) {
      diff.forEach((value, i) => {
        const inside = labels.some(
          (label) => covers(label, channel) && times[i]! >= label.start && times[i]! <= label.end,
        );
        if (!inside) expect(value, `${channel} at sample ${i}`).toBe(0);
      });
      for (const label of labels.filter((candidate) => covers(candidate, channel))) {
        const during = diff.filter((_, i) => times[i]! >= label.start && times[i]! <= label.end);
        expect(Math.max(...during.map(Math.abs)), `${label.kind} on ${channel}`).toBeGreaterThan(10);
      }
    }
  });

  test('leaves out default anomalies that a very short run cannot hold', () => {
    // Two samples, at 0 and 0.5 s: the ramp at 0.82 s would start at sample round(1.64) = 2.
    const { labels } = simulate({ ...base, rateHz: 2, durationS: 1, anomalies: 'default' });
    expect(labels.map((label) => label.kind)).toEqual(['storm', 'object', 'glitch', 'spike', 'step']);
  });

  test('keeps a glitch on its one sensor and component', () => {
    const options: SimulateOptions = {
      ...base,
      anomalies: [{ kind: 'glitch', atS: 100, durationS: 20, sensors: ['S2_OBS1_2'], components: ['b_y'] }],
    };
    const [label] = simulate(options).labels;
    expect(label).toMatchObject({
      kind: 'glitch',
      sensors: ['S2_OBS1_2'],
      components: ['b_y'],
      groups: ['OBS1'],
    });
    expect(label!.start).toBe(START + 100_000);
    expect(label!.end).toBe(START + 119_500);

    const deviating = [...disturbance(options)].filter(([, diff]) => diff.some((value) => value !== 0));
    expect(deviating.map(([channel]) => channel)).toEqual(['S2_OBS1_2__b_y']);
    expect(deviating[0]![1].filter((value) => value !== 0)).toHaveLength(40);
  });

  test('puts a storm on every channel of every observatory and an object on one observatory', () => {
    const options: SimulateOptions = {
      ...base,
      anomalies: [
        { kind: 'storm', atS: 20, durationS: 60 },
        { kind: 'object', atS: 150, durationS: 60, observatory: 2 },
      ],
    };
    const [storm, object] = simulate(options).labels;
    expect(storm).toMatchObject({
      groups: ['OBS1', 'OBS2'],
      sensors: ['S1_OBS1_1', 'S2_OBS1_2', 'S3_OBS2_1', 'S4_OBS2_2'],
    });
    expect(object).toMatchObject({ groups: ['OBS2'], sensors: ['S3_OBS2_1', 'S4_OBS2_2'] });

    const deviating = [...disturbance(options)].filter(([, diff]) =>
      diff.slice(300).some((value) => value !== 0),
    );
    expect(deviating.map(([channel]) => channel.split('__')[0])).toEqual([
      ...Array(3).fill('S3_OBS2_1'),
      ...Array(3).fill('S4_OBS2_2'),
    ]);
  });

  test('rejects impossible options with a one-line error naming the option', () => {
    const code = (options: SimulateOptions) => {
      try {
        simulateStream(options);
      } catch (error) {
        expect(error).toBeInstanceOf(MagwatchError);
        expect((error as Error).message).not.toContain('\n');
        return (error as MagwatchError).code;
      }
      return 'no error';
    };
    expect(code({ ...base, rateHz: 0 })).toBe('MW_SIM_BAD_OPTION');
    expect(code({ ...base, sensorsPerObservatory: [1] })).toBe('MW_SIM_BAD_OPTION');
    expect(code({ ...base, anomalies: [{ kind: 'storm', atS: 400, durationS: 5 }] })).toBe(
      'MW_SIM_BAD_ANOMALY',
    );
    expect(
      code({ ...base, anomalies: [{ kind: 'glitch', atS: 1, durationS: 5, components: ['b_x', 'b_y'] }] }),
    ).toBe('MW_SIM_BAD_ANOMALY');
    expect(code({ ...base, anomalies: [{ kind: 'spike', atS: 1, sensors: ['S9_OBS1_1'] }] })).toBe(
      'MW_SIM_BAD_ANOMALY',
    );
  });
});

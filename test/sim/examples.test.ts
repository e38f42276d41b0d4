import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { EXAMPLE_ANOMALY_SAMPLES, EXAMPLE_NORMAL_SAMPLES, exampleFiles } from '../../src/sim/examples.js';
import { parseLabelsCsv } from '../../src/sim/labels.js';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
const WINDOW = 64;
const files = exampleFiles();

/** Channel → values, from a long CSV of the examples. */
function channels(text: string): Map<string, number[]> {
  const byChannel = new Map<string, number[]>();
  for (const line of text.trim().split('\n').slice(1)) {
    const [, sensor, ...values] = line.split(',');
    values.forEach((value, c) => {
      const channel = `${sensor}__b_${'xyz'[c]}`;
      const list = byChannel.get(channel) ?? [];
      list.push(Number(value));
      byChannel.set(channel, list);
    });
  }
  return byChannel;
}

describe('example data set', () => {
  test('is committed exactly as the generator writes it now', async () => {
    expect([...files.keys()]).toEqual(['normal.csv', 'anomalies.csv', 'anomalies.labels.csv']);
    for (const [name, content] of files) {
      expect(
        await readFile(join(EXAMPLES, name), 'utf8'),
        `examples/${name} is stale: run npm run examples`,
      ).toBe(content);
      expect(Buffer.byteLength(content)).toBeLessThan(1_000_000);
    }
  });

  test('has three sensors over two observatories and whole windows of samples', () => {
    const normal = channels(files.get('normal.csv')!);
    const anomalies = channels(files.get('anomalies.csv')!);
    expect([...normal.keys()].filter((channel) => channel.endsWith('__b_x'))).toEqual([
      'S1_OBS1_1__b_x',
      'S2_OBS1_2__b_x',
      'S3_OBS2_1__b_x',
    ]);
    expect(normal.size).toBe(9);
    for (const values of normal.values()) expect(values).toHaveLength(EXAMPLE_NORMAL_SAMPLES);
    for (const values of anomalies.values()) expect(values).toHaveLength(EXAMPLE_ANOMALY_SAMPLES);
    expect(EXAMPLE_NORMAL_SAMPLES % WINDOW).toBe(0);
    expect(EXAMPLE_ANOMALY_SAMPLES % WINDOW).toBe(0);
  });

  test('labels anomalies on whole windows: a storm on 9 channels, an object on 6, a glitch on 1', () => {
    const labels = parseLabelsCsv(files.get('anomalies.labels.csv')!, 'anomalies.labels.csv');
    const first = Date.parse(files.get('anomalies.csv')!.split('\n')[1]!.split(',')[0]!);
    const layout = labels.map((label) => ({
      kind: label.kind,
      channels: label.sensors.length * label.components.length,
      samples: [(label.start - first) / 1000, (label.end - first) / 1000],
    }));
    expect(layout).toEqual([
      { kind: 'storm', channels: 9, samples: [192, 383] },
      { kind: 'object', channels: 6, samples: [576, 703] },
      { kind: 'glitch', channels: 1, samples: [832, 895] },
    ]);
  });

  test('keeps normal windows of anomalies.csv inside the training range and anomalous ones far outside', () => {
    const normal = channels(files.get('normal.csv')!);
    const anomalies = channels(files.get('anomalies.csv')!);
    const labels = parseLabelsCsv(files.get('anomalies.labels.csv')!, 'anomalies.labels.csv');
    const first = Date.parse(files.get('anomalies.csv')!.split('\n')[1]!.split(',')[0]!);

    for (const [channel, training] of normal) {
      // The scaler of the reference: mean and population std of the training data.
      const mean = training.reduce((sum, value) => sum + value, 0) / training.length;
      const std = Math.sqrt(training.reduce((sum, value) => sum + (value - mean) ** 2, 0) / training.length);
      const scaled = (value: number) => (value - mean) / std;
      const trainingPeak = Math.max(...training.map((value) => Math.abs(scaled(value))));

      for (let w = 0; w < EXAMPLE_ANOMALY_SAMPLES / WINDOW; w++) {
        const start = first + w * WINDOW * 1000;
        const end = start + (WINDOW - 1) * 1000;
        const [sensor, component] = channel.split('__');
        const anomalous = labels.some(
          (label) =>
            label.sensors.includes(sensor!) &&
            label.components.includes(component!) &&
            label.start <= end &&
            label.end >= start,
        );
        const window = anomalies.get(channel)!.slice(w * WINDOW, (w + 1) * WINDOW);
        const peak = Math.max(...window.map((value) => Math.abs(scaled(value))));
        if (anomalous) expect(peak, `${channel} window ${w}`).toBeGreaterThan(20);
        else expect(peak, `${channel} window ${w}`).toBeLessThanOrEqual(trainingPeak);
      }
    }
  });
});

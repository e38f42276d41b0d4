import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AnomalySpec } from './anomalies.js';
import { formatLongCsv } from './csv.js';
import { formatLabelsCsv } from './labels.js';
import { createRandom } from './random.js';
import { type SimulationStream, simulate, simulateStream } from './simulate.js';

/** Samples per sensor of `normal.csv` (24 windows of 64) and `anomalies.csv` (16 windows of 64), at 1 Hz. */
export const EXAMPLE_NORMAL_SAMPLES = 1536;
export const EXAMPLE_ANOMALY_SAMPLES = 1024;

/** 2026-01-15T00:00:00Z: local night at every observatory, so the quiet-day variation is flat. */
const EXAMPLE_START = Date.UTC(2026, 0, 15);
const EXAMPLE_SEED = 20260115;

/** Where an example anomaly sits, in samples from the start of `anomalies.csv`. */
const at = (sample: number): number => EXAMPLE_NORMAL_SAMPLES + sample;

/**
 * The example anomalies, each covering whole 64-sample windows of `anomalies.csv` and hundreds of nT,
 * far above the few nT of quiet variation the scaler sees in training:
 *
 * - a storm over all 9 channels, samples 192-383 (windows 3-5);
 * - an object at OBS1 on its 6 channels, samples 576-703 (windows 9-10);
 * - a glitch on `S1_OBS1_1__b_z` only, samples 832-895 (window 13), which a vote of 5 must not report.
 */
const EXAMPLE_ANOMALIES: AnomalySpec[] = [
  { kind: 'storm', atS: at(192), durationS: 192, amplitudeNt: 300 },
  { kind: 'object', atS: at(576), durationS: 128, amplitudeNt: 250, observatory: 1 },
  {
    kind: 'glitch',
    atS: at(832),
    durationS: 64,
    amplitudeNt: 200,
    sensors: ['S1_OBS1_1'],
    components: ['b_z'],
  },
];

/**
 * The example data set as file name → content: `normal.csv` for training, `anomalies.csv` continuing it in
 * time, and `anomalies.labels.csv`. Three sensors at 1 Hz: `S1_OBS1_1` and `S2_OBS1_2` at OBS1, `S3_OBS2_1`
 * at OBS2. Deterministic: the same bytes on every run.
 */
export function exampleFiles(): Map<string, string> {
  const { rows, labels } = simulate({
    observatories: 2,
    sensorsPerObservatory: [2, 1],
    rateHz: 1,
    start: EXAMPLE_START,
    durationS: EXAMPLE_NORMAL_SAMPLES + EXAMPLE_ANOMALY_SAMPLES,
    seed: EXAMPLE_SEED,
    anomalies: EXAMPLE_ANOMALIES,
  });
  const split = EXAMPLE_START + EXAMPLE_NORMAL_SAMPLES * 1000;

  return new Map([
    ['normal.csv', formatLongCsv(rows.filter((row) => row.timestamp < split))],
    ['anomalies.csv', formatLongCsv(rows.filter((row) => row.timestamp >= split))],
    ['anomalies.labels.csv', formatLabelsCsv(labels)],
  ]);
}

/** Writes {@link exampleFiles} into `dir` (created if missing); returns the paths written. */
export async function writeExamples(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (const [name, content] of exampleFiles()) {
    const path = join(dir, name);
    await writeFile(path, content);
    paths.push(path);
  }
  return paths;
}

/**
 * The example network running on after its training stretch, for the demo and live tests: the background of
 * `normal.csv` (so the example model fits it) with the example anomalies repeated every 1,024 s. `seed` moves
 * each anomaly by up to 16 s, so runs differ while every anomaly stays whole and in place.
 */
export function exampleScenario(options: { durationS: number; seed: number }): SimulationStream {
  const random = createRandom(options.seed, 'demo-schedule');
  const cycle = EXAMPLE_ANOMALY_SAMPLES;
  const anomalies: AnomalySpec[] = [];
  for (let offset = 0; offset < options.durationS; offset += cycle) {
    for (const spec of EXAMPLE_ANOMALIES) {
      const atS = spec.atS + offset + Math.round(random.uniform(-16, 16));
      if (atS + (spec.durationS ?? 0) <= EXAMPLE_NORMAL_SAMPLES + options.durationS)
        anomalies.push({ ...spec, atS });
    }
  }
  const stream = simulateStream({
    observatories: 2,
    sensorsPerObservatory: [2, 1],
    rateHz: 1,
    start: EXAMPLE_START,
    durationS: EXAMPLE_NORMAL_SAMPLES + options.durationS,
    seed: EXAMPLE_SEED,
    anomalies,
  });
  return skipSeconds(stream, EXAMPLE_NORMAL_SAMPLES);
}

/** The same stream without its first `seconds` (the training stretch), labels included. */
function skipSeconds(stream: SimulationStream, seconds: number): SimulationStream {
  const from = EXAMPLE_START + seconds * 1000;
  return {
    ...stream,
    labels: stream.labels.filter((label) => label.end >= from),
    samples: stream.samples - seconds,
    timeOf: (index: number) => stream.timeOf(index + seconds),
    *[Symbol.iterator]() {
      for (const row of stream) if (row.timestamp >= from) yield row;
    },
  };
}

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AnomalySpec } from './anomalies.js';
import { formatLongCsv } from './csv.js';
import { formatLabelsCsv } from './labels.js';
import { simulate } from './simulate.js';

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

import { MagwatchError } from '../errors.js';
import type { LongRow } from '../ingest/table.js';
import {
  type ActiveAnomaly,
  type AnomalySpec,
  COMPONENTS,
  defaultAnomalies,
  type Label,
  type Layout,
  resolveAnomalies,
  type SampleGrid,
} from './anomalies.js';
import { createBackgrounds } from './background.js';
import { createRandom } from './random.js';

/** What to simulate. */
export interface SimulateOptions {
  /** Number of observatories (groups `OBS1`, `OBS2`, …); at least 1. */
  readonly observatories: number;
  /** Sensors per observatory: one count for all, or one count per observatory. */
  readonly sensorsPerObservatory: number | readonly number[];
  /** Samples per second per sensor. */
  readonly rateHz: number;
  /** Epoch ms of the first sample. */
  readonly start: number;
  /** Length of the run in seconds; the run has `round(durationS * rateHz)` samples per sensor. */
  readonly durationS: number;
  /** Seed of every random draw: the same options give the same rows, bit for bit. */
  readonly seed: number;
  /** Std of the sensors' white noise in nT (each sensor within ±20 % of it); default 0.2. */
  readonly noiseNt?: number;
  /** Anomalies to inject; `'default'` places one of each kind; default none. */
  readonly anomalies?: readonly AnomalySpec[] | 'default';
}

/** A simulation whose rows are computed as they are iterated, in time order, sensor by sensor. */
export interface SimulationStream extends Iterable<LongRow> {
  /** Sensor ids in row order within a time step. */
  readonly sensors: readonly string[];
  /** Ground truth of the injected anomalies, ordered by start. */
  readonly labels: readonly Label[];
  /** Samples per sensor. */
  readonly samples: number;
  /** Epoch ms of sample `index`. */
  readonly timeOf: (index: number) => number;
}

/** A whole simulation in memory. */
export interface Simulation {
  readonly rows: LongRow[];
  readonly labels: Label[];
}

export const DEFAULT_NOISE_NT = 0.2;

/**
 * Sensor ids of a network, following the reference's convention `S<k>_OBS<o>_<i>`: `k` counts sensors
 * over the whole network, `o` is the observatory and `i` the sensor within it (e.g. `S3_OBS2_1`).
 */
export function sensorLayout(
  observatories: number,
  sensorsPerObservatory: number | readonly number[],
): Layout {
  if (!Number.isInteger(observatories) || observatories < 1) {
    throw badOption(`observatories must be a whole number of at least 1, got ${observatories}`);
  }
  const counts =
    typeof sensorsPerObservatory === 'number'
      ? Array.from({ length: observatories }, () => sensorsPerObservatory)
      : [...sensorsPerObservatory];
  if (counts.length !== observatories) {
    throw badOption(`sensorsPerObservatory lists ${counts.length} counts for ${observatories} observatories`);
  }

  const layout: string[][] = [];
  let k = 0;
  counts.forEach((count, o) => {
    if (!Number.isInteger(count) || count < 1) {
      throw badOption(`sensors per observatory must be a whole number of at least 1, got ${count}`);
    }
    layout.push(Array.from({ length: count }, (_, i) => `S${++k}_OBS${o + 1}_${i + 1}`));
  });
  return { observatories: layout, sensors: layout.flat() };
}

/** Streams a simulation without holding it in memory; each iteration starts again from the seed. */
export function simulateStream(options: SimulateOptions): SimulationStream {
  const { rateHz, start, durationS, seed } = options;
  const noiseNt = options.noiseNt ?? DEFAULT_NOISE_NT;
  if (!(rateHz > 0) || !Number.isFinite(rateHz))
    throw badOption(`rateHz must be a positive number, got ${rateHz}`);
  if (!(durationS > 0) || !Number.isFinite(durationS)) {
    throw badOption(`durationS must be a positive number of seconds, got ${durationS}`);
  }
  if (!Number.isFinite(start)) throw badOption(`start must be epoch milliseconds, got ${start}`);
  if (!Number.isFinite(seed)) throw badOption(`seed must be a number, got ${seed}`);
  if (!(noiseNt >= 0)) throw badOption(`noiseNt must be zero or more, got ${noiseNt}`);

  const layout = sensorLayout(options.observatories, options.sensorsPerObservatory);
  const samples = Math.max(1, Math.round(durationS * rateHz));
  // Whole milliseconds, as every input format carries them; a rate like 3 Hz rounds each time, not the step.
  const timeOf = (index: number): number => start + Math.round((index * 1000) / rateHz);
  const grid: SampleGrid = { start, rateHz, samples, timeOf };

  const specs =
    options.anomalies === 'default' ? defaultAnomalies(durationS, rateHz, layout) : (options.anomalies ?? []);
  const anomalies = resolveAnomalies(specs, layout, grid, seed).sort((a, b) => a.first - b.first);
  const labels = anomalies.map((anomaly) => anomaly.label);

  return {
    sensors: layout.sensors,
    labels,
    samples,
    timeOf,
    [Symbol.iterator]: () => generateRows(layout, grid, anomalies, seed, noiseNt),
  };
}

/** Simulates a whole run in memory; {@link simulateStream} is the same rows one at a time. */
export function simulate(options: SimulateOptions): Simulation {
  const stream = simulateStream(options);
  return { rows: [...stream], labels: [...stream.labels] };
}

function* generateRows(
  layout: Layout,
  grid: SampleGrid,
  anomalies: readonly ActiveAnomaly[],
  seed: number,
  noiseNt: number,
): Generator<LongRow> {
  const backgrounds = createBackgrounds(seed, layout.observatories, grid.start, noiseNt);
  // Noise has its own stream, so the background is the same whatever anomalies are injected.
  const noise = createRandom(seed, 'noise');
  const sensorCount = layout.sensors.length;
  const disturbance = new Float64Array(sensorCount * COMPONENTS.length);

  for (let i = 0; i < grid.samples; i++) {
    const time = grid.timeOf(i);
    disturbance.fill(0);
    for (const anomaly of anomalies) {
      if (i < anomaly.first || i > anomaly.last) continue;
      const span = anomaly.last - anomaly.first;
      const u = span === 0 ? 0.5 : (i - anomaly.first) / span;
      const shape = anomaly.shape(u, (time - grid.start) / 1000);
      for (let w = 0; w < disturbance.length; w++) disturbance[w]! += anomaly.weights[w]! * shape;
    }

    for (let s = 0; s < sensorCount; s++) {
      const background = backgrounds[s]!;
      const values: Record<string, number> = {};
      COMPONENTS.forEach((component, c) => {
        values[component] =
          background.field(c, time) +
          background.noiseNt * noise.normal() +
          disturbance[s * COMPONENTS.length + c]!;
      });
      yield { timestamp: time, sensor: layout.sensors[s]!, values };
    }
  }
}

function badOption(message: string): MagwatchError {
  return new MagwatchError('MW_SIM_BAD_OPTION', message);
}

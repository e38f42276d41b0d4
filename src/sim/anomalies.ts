import { MagwatchError } from '../errors.js';
import { groupOf } from '../ingest/table.js';
import { createRandom } from './random.js';

/** The components every simulated sensor reports, in the reference's column order. */
export const COMPONENTS = ['b_x', 'b_y', 'b_z'] as const;
export type Component = (typeof COMPONENTS)[number];

/**
 * What a simulated anomaly looks like and who sees it:
 *
 * - `spike`: a short burst at full amplitude (default one second) on the target sensors;
 * - `step`: a level shift held for the duration, then reset (an instrument offset later corrected);
 * - `ramp`: a linear rise to the amplitude, then reset (a drifting sensor recalibrated);
 * - `object`: a smooth bump on every sensor of one observatory, each sensor and axis scaled differently,
 *   like a magnetic object passing nearby;
 * - `storm`: a geomagnetic storm on every sensor of every observatory: sudden commencement, main phase
 *   (X down by the amplitude), recovery, with pulsations on top;
 * - `glitch`: one component of one sensor only, an instrument fault that a majority vote must not report.
 */
export type AnomalyKind = 'spike' | 'step' | 'ramp' | 'object' | 'storm' | 'glitch';
export const ANOMALY_KINDS: readonly AnomalyKind[] = ['spike', 'step', 'ramp', 'object', 'storm', 'glitch'];

/** Peak amplitude in nT of each kind when a spec gives none. */
export const DEFAULT_AMPLITUDE_NT: Readonly<Record<AnomalyKind, number>> = {
  spike: 60,
  step: 30,
  ramp: 40,
  object: 30,
  storm: 200,
  glitch: 60,
};

/** One anomaly to inject. Times are relative to the simulation's start. */
export interface AnomalySpec {
  readonly kind: AnomalyKind;
  /** Start in seconds after the simulation start; rounded to the nearest sample. */
  readonly atS: number;
  /** Length in seconds; at least one sample. Default: 1 s for a spike, required otherwise. */
  readonly durationS?: number;
  /** Peak amplitude in nT; default {@link DEFAULT_AMPLITUDE_NT}. */
  readonly amplitudeNt?: number;
  /** 1-based observatory of an `object` (and of `spike`, `step`, `ramp` without `sensors`); default 1. */
  readonly observatory?: number;
  /** Sensors of a `spike`, `step`, `ramp` or `glitch` (exactly one for a glitch; default the first sensor). */
  readonly sensors?: readonly string[];
  /** Components it shows on; default all three, and `b_z` alone for a glitch, which takes exactly one. */
  readonly components?: readonly Component[];
}

/** A ground-truth record of one injected anomaly. */
export interface Label {
  /** Epoch ms of the first and the last affected sample (both inclusive). */
  readonly start: number;
  readonly end: number;
  /** An {@link AnomalyKind} for simulated labels; a hand-written labels file may use its own words. */
  readonly kind: string;
  /** Observatory groups of the affected sensors (`OBS<n>`), sorted. */
  readonly groups: readonly string[];
  readonly sensors: readonly string[];
  readonly components: readonly string[];
}

/** The sensors of a simulation, by observatory. */
export interface Layout {
  /** `observatories[o]` lists the sensor ids of observatory `o + 1`. */
  readonly observatories: readonly (readonly string[])[];
  /** Every sensor id, observatory by observatory. */
  readonly sensors: readonly string[];
}

/** An anomaly resolved against a layout and a sample grid, ready to add to the background. */
export interface ActiveAnomaly {
  readonly label: Label;
  /** Indexes of the first and last affected sample. */
  readonly first: number;
  readonly last: number;
  /** nT at unit shape, per sensor (layout order) and component: `weights[sensor * 3 + component]`. */
  readonly weights: Float64Array;
  /** Shape at position `u` in [0, 1] through the anomaly, `seconds` after the simulation start. */
  readonly shape: (u: number, seconds: number) => number;
}

/**
 * The default schedule: one anomaly of each kind, placed at fixed fractions of the run so that any
 * duration shows all of them, and each far enough from the others for a window to separate them.
 * A run too short to hold one (it would start after the last sample) leaves it out.
 */
export function defaultAnomalies(durationS: number, rateHz: number, layout: Layout): AnomalySpec[] {
  const lastSensor = layout.sensors[layout.sensors.length - 1]!;
  const samples = Math.max(1, Math.round(durationS * rateHz));
  const at = (fraction: number): number => fraction * durationS;
  const schedule: AnomalySpec[] = [
    { kind: 'storm', atS: at(0.1), durationS: at(0.14) },
    { kind: 'object', atS: at(0.32), durationS: at(0.08), observatory: 1 },
    { kind: 'glitch', atS: at(0.47), durationS: at(0.05), sensors: [lastSensor], components: ['b_z'] },
    { kind: 'spike', atS: at(0.59), durationS: Math.min(1, at(0.03)), observatory: 1 },
    { kind: 'step', atS: at(0.68), durationS: at(0.07), observatory: 1 },
    { kind: 'ramp', atS: at(0.82), durationS: at(0.1), observatory: 1 },
  ];
  return schedule.filter((spec) => Math.round(spec.atS * rateHz) < samples);
}

/** The grid the anomalies land on. */
export interface SampleGrid {
  /** Epoch ms of sample 0. */
  readonly start: number;
  readonly rateHz: number;
  /** Number of samples per sensor. */
  readonly samples: number;
  /** Epoch ms of sample `index`. */
  readonly timeOf: (index: number) => number;
}

function invalid(message: string): MagwatchError {
  return new MagwatchError('MW_SIM_BAD_ANOMALY', message);
}

/**
 * Checks every spec against the layout and grid and resolves it. Each spec's random factors come from its
 * own stream (seed and position in the list), so the background's noise is the same with or without it.
 *
 * @throws MagwatchError `MW_SIM_BAD_ANOMALY` naming the spec by position and kind.
 */
export function resolveAnomalies(
  specs: readonly AnomalySpec[],
  layout: Layout,
  grid: SampleGrid,
  seed: number,
): ActiveAnomaly[] {
  return specs.map((spec, index) => resolveAnomaly(spec, index, layout, grid, seed));
}

function resolveAnomaly(
  spec: AnomalySpec,
  index: number,
  layout: Layout,
  grid: SampleGrid,
  seed: number,
): ActiveAnomaly {
  const where = `anomaly ${index + 1} (${spec.kind})`;
  if (!ANOMALY_KINDS.includes(spec.kind)) {
    throw invalid(`${where}: unknown kind; use one of ${ANOMALY_KINDS.join(', ')}`);
  }
  const durationS = spec.durationS ?? (spec.kind === 'spike' ? 1 : undefined);
  if (durationS === undefined || !(durationS > 0)) {
    throw invalid(`${where}: durationS must be a positive number of seconds, got ${spec.durationS}`);
  }
  const first = Math.round(spec.atS * grid.rateHz);
  if (!Number.isFinite(first) || first < 0 || first >= grid.samples) {
    throw invalid(`${where}: atS ${spec.atS} s is outside the run of ${grid.samples / grid.rateHz} s`);
  }
  const last = Math.min(grid.samples - 1, first + Math.max(1, Math.round(durationS * grid.rateHz)) - 1);
  const amplitude = spec.amplitudeNt ?? DEFAULT_AMPLITUDE_NT[spec.kind];
  if (!Number.isFinite(amplitude)) throw invalid(`${where}: amplitudeNt must be a number, got ${amplitude}`);

  const sensors = targetSensors(spec, where, layout);
  const components = targetComponents(spec, where);
  const random = createRandom(seed, `anomaly:${index}`);
  const weights = new Float64Array(layout.sensors.length * COMPONENTS.length);

  // Per-sensor and per-axis factors make a disturbance look physical: the same event, seen from
  // different places and orientations, never has the same size on every channel.
  const observatoryFactor = layout.observatories.map(() => random.uniform(0.85, 1.15));
  const direction = COMPONENTS.map(() => random.sign() * random.uniform(0.5, 1));
  for (const sensor of sensors) {
    const s = layout.sensors.indexOf(sensor);
    const observatory = layout.observatories.findIndex((ids) => ids.includes(sensor));
    const distance = random.uniform(0.5, 1);
    for (const component of components) {
      const c = COMPONENTS.indexOf(component);
      weights[s * COMPONENTS.length + c] =
        amplitude * axisWeight(spec.kind, c, direction, distance, observatoryFactor[observatory]!);
    }
  }

  const label: Label = {
    start: grid.timeOf(first),
    end: grid.timeOf(last),
    kind: spec.kind,
    groups: [...new Set(sensors.map(groupOf))].sort(),
    sensors,
    components,
  };
  return { label, first, last, weights, shape: shapeOf(spec.kind, random.uniform(40, 90)) };
}

/** Storm response per axis: X carries the main phase, Y and Z follow with a part of it. */
const STORM_AXES = [1, 0.45, -0.55];

function axisWeight(
  kind: AnomalyKind,
  component: number,
  direction: readonly number[],
  distance: number,
  observatoryFactor: number,
): number {
  switch (kind) {
    case 'storm':
      return STORM_AXES[component]! * observatoryFactor;
    case 'object':
      return direction[component]! * distance;
    default:
      return 1;
  }
}

function targetSensors(spec: AnomalySpec, where: string, layout: Layout): string[] {
  const observatory = spec.observatory ?? 1;
  if (!Number.isInteger(observatory) || observatory < 1 || observatory > layout.observatories.length) {
    throw invalid(
      `${where}: observatory must be 1 to ${layout.observatories.length}, got ${spec.observatory}`,
    );
  }
  for (const sensor of spec.sensors ?? []) {
    if (!layout.sensors.includes(sensor)) {
      throw invalid(`${where}: unknown sensor '${sensor}'; the simulation has ${layout.sensors.join(', ')}`);
    }
  }

  switch (spec.kind) {
    case 'storm':
      if (spec.sensors !== undefined || spec.observatory !== undefined) {
        throw invalid(`${where}: a storm affects every sensor; drop 'sensors' and 'observatory'`);
      }
      return [...layout.sensors];
    case 'object':
      if (spec.sensors !== undefined) {
        throw invalid(`${where}: an object affects a whole observatory; give 'observatory', not 'sensors'`);
      }
      return [...layout.observatories[observatory - 1]!];
    case 'glitch': {
      const sensors = spec.sensors ?? [layout.sensors[0]!];
      if (sensors.length !== 1) {
        throw invalid(`${where}: a glitch affects exactly one sensor, got ${sensors.length}`);
      }
      return [...sensors];
    }
    default:
      if (spec.sensors !== undefined && spec.sensors.length === 0) {
        throw invalid(`${where}: 'sensors' is empty; name at least one sensor or give 'observatory'`);
      }
      return spec.sensors !== undefined
        ? [...new Set(spec.sensors)]
        : [...layout.observatories[observatory - 1]!];
  }
}

function targetComponents(spec: AnomalySpec, where: string): Component[] {
  const components = spec.components ?? (spec.kind === 'glitch' ? ['b_z'] : COMPONENTS);
  for (const component of components) {
    if (!COMPONENTS.includes(component)) {
      throw invalid(`${where}: unknown component '${component}'; use ${COMPONENTS.join(', ')}`);
    }
  }
  if (components.length === 0) throw invalid(`${where}: 'components' is empty; name at least one`);
  if (spec.kind === 'glitch' && components.length !== 1) {
    throw invalid(`${where}: a glitch affects exactly one component, got ${components.length}`);
  }
  return [...new Set(components)];
}

/** Smooth interpolation from `from` to `to` as `u` goes 0 → 1. */
function ease(from: number, to: number, u: number): number {
  return from + (to - from) * (0.5 - 0.5 * Math.cos(Math.PI * u));
}

/** The storm's course as a fraction of its amplitude: sudden commencement, main phase, recovery. */
function stormCourse(u: number): number {
  const commencementEnd = 0.03;
  const mainPhaseEnd = 0.45;
  if (u < commencementEnd) return ease(0, 0.3, u / commencementEnd);
  if (u < mainPhaseEnd) return ease(0.3, -1, (u - commencementEnd) / (mainPhaseEnd - commencementEnd));
  return ease(-1, 0, (u - mainPhaseEnd) / (1 - mainPhaseEnd));
}

function shapeOf(kind: AnomalyKind, pulsationPeriodS: number): ActiveAnomaly['shape'] {
  switch (kind) {
    case 'ramp':
      return (u) => u;
    case 'object':
      return (u) => Math.sin(Math.PI * u) ** 2;
    case 'storm':
      // Storm-time pulsations ride on the main course and fade out at both ends.
      return (u, seconds) =>
        stormCourse(u) + 0.08 * Math.sin(Math.PI * u) * Math.sin((2 * Math.PI * seconds) / pulsationPeriodS);
    default:
      return () => 1;
  }
}

import { COMPONENTS } from './anomalies.js';
import { createRandom, type Random } from './random.js';

const HOUR_MS = 3_600_000;
const DAY_HOURS = 24;

/** Mean field per component in nT, near a mid-latitude observatory (X north, Y east, Z down). */
const MAIN_FIELD_NT = [20_000, 1_500, 45_000];
/** How far observatories' main fields differ, in nT per component. */
const MAIN_FIELD_SPREAD_NT = [400, 150, 800];
/** Quiet-day (Sq) daytime variation amplitude in nT per component. */
const SQ_AMPLITUDE_NT = [25, 12, 15];
/** Pc5 pulsations (periods 150-600 s) on every component: this many sinusoids each. */
const PULSATIONS = 3;

/** One sensor's quiet field, as closed-form functions of time plus its own noise stream. */
export interface SensorBackground {
  /** Field in nT for component `c` at `time` (epoch ms), without noise. */
  field(c: number, time: number): number;
  /** Std of this sensor's white noise in nT. */
  readonly noiseNt: number;
}

/** What the sensors of one observatory share: the local geomagnetic field. */
interface ObservatoryField {
  readonly level: number[];
  /** Offset of local time from UTC in hours (longitude / 15). */
  readonly localHours: number;
  readonly pulsationScale: number;
  /** Delay of the network-wide pulsations at this observatory, in seconds. */
  readonly pulsationDelayS: number;
}

interface Pulsation {
  readonly amplitudeNt: number;
  readonly periodS: number;
  readonly phase: number;
}

/**
 * The quiet field of every sensor of a simulated network.
 *
 * Per observatory: a main-field level, a daytime Sq variation (zero at night, X and Z lowest at local noon,
 * Y swinging east in the morning and west in the afternoon) and network-wide pulsations of a few nT with
 * periods of minutes. Per sensor: a calibration offset of a few nT, a gain error of ~0.1 %, a linear drift
 * of a fraction of a nT per hour and white noise of about `noiseNt`.
 */
export function createBackgrounds(
  seed: number,
  observatories: readonly (readonly string[])[],
  start: number,
  noiseNt: number,
): SensorBackground[] {
  const random = createRandom(seed, 'background');
  const pulsations = COMPONENTS.map(() => drawPulsations(random));
  const backgrounds: SensorBackground[] = [];

  for (const sensors of observatories) {
    const observatory: ObservatoryField = {
      level: MAIN_FIELD_NT.map((level, c) => level + random.uniform(-1, 1) * MAIN_FIELD_SPREAD_NT[c]!),
      localHours: random.uniform(-1, 1),
      pulsationScale: random.uniform(0.85, 1.15),
      pulsationDelayS: random.uniform(0, 5),
    };
    for (const _sensor of sensors) {
      const offset = COMPONENTS.map(() => random.uniform(-3, 3));
      const gain = COMPONENTS.map(() => 1 + random.uniform(-1e-3, 1e-3));
      const driftPerHour = COMPONENTS.map(() => random.uniform(-0.3, 0.3));
      const sensorNoise = noiseNt * random.uniform(0.8, 1.2);

      backgrounds.push({
        noiseNt: sensorNoise,
        field(c, time) {
          const variation =
            sqVariation(c, time, observatory.localHours) +
            observatory.pulsationScale *
              pulsationSum(pulsations[c]!, time / 1000 - observatory.pulsationDelayS);
          return (
            observatory.level[c]! +
            offset[c]! +
            gain[c]! * variation +
            (driftPerHour[c]! * (time - start)) / HOUR_MS
          );
        },
      });
    }
  }
  return backgrounds;
}

function drawPulsations(random: Random): Pulsation[] {
  return Array.from({ length: PULSATIONS }, () => ({
    amplitudeNt: random.uniform(0.5, 2),
    periodS: random.uniform(150, 600),
    phase: random.uniform(0, 2 * Math.PI),
  }));
}

function pulsationSum(pulsations: readonly Pulsation[], seconds: number): number {
  let sum = 0;
  for (const { amplitudeNt, periodS, phase } of pulsations) {
    sum += amplitudeNt * Math.sin((2 * Math.PI * seconds) / periodS + phase);
  }
  return sum;
}

/** The Sq variation in nT: a daytime bump, flat between local 18:00 and 06:00. */
function sqVariation(c: number, time: number, localHours: number): number {
  const hours = (((time / HOUR_MS + localHours) % DAY_HOURS) + DAY_HOURS) % DAY_HOURS;
  const fromNoon = (2 * Math.PI * (hours - 12)) / DAY_HOURS;
  const daylight = Math.max(0, Math.cos(fromNoon));
  const amplitude = SQ_AMPLITUDE_NT[c]!;
  if (c === 1) return -amplitude * daylight * Math.sin(2 * fromNoon);
  return -amplitude * daylight;
}

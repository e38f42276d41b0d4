/**
 * Scores of a flag series against labelled events, point-wise and event-wise. Pure functions over arrays,
 * so that the command, the tests and a notebook compute the same numbers.
 *
 * A ratio whose denominator is zero (precision with nothing flagged, recall with no events) is `null`:
 * "undefined" is not the same as 0, and JSON has no NaN.
 */

const DAY_MS = 86_400_000;

/** A labelled event: epoch ms of its first and last sample, both inclusive. */
export interface Interval {
  readonly start: number;
  readonly end: number;
}

/** Point-wise confusion counts and scores: a sample is positive when inside any event. */
export interface PointScores {
  readonly truePositives: number;
  readonly falsePositives: number;
  readonly falseNegatives: number;
  readonly trueNegatives: number;
  readonly precision: number | null;
  readonly recall: number | null;
  readonly f1: number | null;
}

/**
 * Event-wise scores. An event is found when a flagged sample falls inside it. A flagged region is a
 * maximal run of consecutive flagged samples; it is true when one of its samples falls inside an event.
 */
export interface EventScores {
  readonly events: number;
  readonly found: number;
  readonly regions: number;
  readonly trueRegions: number;
  readonly falseRegions: number;
  readonly precision: number | null;
  readonly recall: number | null;
  readonly f1: number | null;
}

/** From an event's start to the first flagged sample inside it, over found events; null when none was found. */
export interface DetectionDelay {
  readonly meanSamples: number | null;
  readonly maxSamples: number | null;
  readonly meanS: number | null;
  readonly maxS: number | null;
}

export interface Evaluation {
  readonly samples: number;
  /** Span of the results in seconds: last minus first time plus one median sample step. */
  readonly durationS: number;
  readonly point: PointScores;
  readonly event: EventScores;
  readonly delay: DetectionDelay;
  /** False regions per day of results; null when the results span no time. */
  readonly falseAlarmsPerDay: number | null;
}

/** `numerator / denominator`, or null when the denominator is 0. */
export function ratio(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : numerator / denominator;
}

/**
 * Harmonic mean of precision and recall. A null side counts as 0 (it only happens when the other side is
 * 0 or null too: no regions means nothing found, no events means no true region); both null gives null.
 */
export function f1Score(precision: number | null, recall: number | null): number | null {
  if (precision === null && recall === null) return null;
  const p = precision ?? 0;
  const r = recall ?? 0;
  return p + r === 0 ? 0 : (2 * p * r) / (p + r);
}

/** For each sample, whether it falls inside any of `events`. */
export function insideEvents(timestamps: ArrayLike<number>, events: readonly Interval[]): Uint8Array {
  const inside = new Uint8Array(timestamps.length);
  for (const { start, end } of events) {
    for (let i = lowerBound(timestamps, start); i < timestamps.length && timestamps[i]! <= end; i++)
      inside[i] = 1;
  }
  return inside;
}

/** Point-wise scores of `flags` against `truth` (both 0/1 per sample). */
export function pointScores(flags: ArrayLike<number>, truth: ArrayLike<number>): PointScores {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  for (let i = 0; i < flags.length; i++) {
    const flagged = flags[i] !== 0;
    const positive = truth[i] !== 0;
    if (flagged && positive) tp++;
    else if (flagged) fp++;
    else if (positive) fn++;
    else tn++;
  }
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  return {
    truePositives: tp,
    falsePositives: fp,
    falseNegatives: fn,
    trueNegatives: tn,
    precision,
    recall,
    // 2TP / (2TP + FP + FN) is the harmonic mean, and stays defined when one side is undefined.
    f1: ratio(2 * tp, 2 * tp + fp + fn),
  };
}

/** Maximal runs of flagged samples, as index ranges `[first, last]` (both inclusive). */
export function flaggedRegions(flags: ArrayLike<number>): Array<[number, number]> {
  const regions: Array<[number, number]> = [];
  let first = -1;
  for (let i = 0; i <= flags.length; i++) {
    const flagged = i < flags.length && flags[i] !== 0;
    if (flagged && first < 0) first = i;
    if (!flagged && first >= 0) {
      regions.push([first, i - 1]);
      first = -1;
    }
  }
  return regions;
}

/**
 * Evaluates a flag series against labelled events.
 *
 * @param timestamps sample times in epoch ms, increasing.
 * @param flags 0/1 per sample (any non-zero is flagged).
 * @param events the events a detector should find; an event with no sample inside it still counts and
 *   cannot be found, so the caller decides whether to keep events outside the results' span.
 */
export function evaluateFlags(
  timestamps: ArrayLike<number>,
  flags: ArrayLike<number>,
  events: readonly Interval[],
): Evaluation {
  const n = timestamps.length;
  const truth = insideEvents(timestamps, events);
  const point = pointScores(flags, truth);

  const regions = flaggedRegions(flags);
  let trueRegions = 0;
  for (const [first, last] of regions) {
    for (let i = first; i <= last; i++) {
      if (truth[i] === 1) {
        trueRegions++;
        break;
      }
    }
  }
  const falseRegions = regions.length - trueRegions;

  const delaysSamples: number[] = [];
  const delaysS: number[] = [];
  for (const { start, end } of events) {
    const firstInside = lowerBound(timestamps, start);
    for (let i = firstInside; i < n && timestamps[i]! <= end; i++) {
      if (flags[i] === 0) continue;
      delaysSamples.push(i - firstInside);
      delaysS.push((timestamps[i]! - start) / 1000);
      break;
    }
  }
  const found = delaysSamples.length;
  const eventPrecision = ratio(trueRegions, regions.length);
  const eventRecall = ratio(found, events.length);

  const durationMs = n === 0 ? 0 : timestamps[n - 1]! - timestamps[0]! + medianStep(timestamps);
  return {
    samples: n,
    durationS: durationMs / 1000,
    point,
    event: {
      events: events.length,
      found,
      regions: regions.length,
      trueRegions,
      falseRegions,
      precision: eventPrecision,
      recall: eventRecall,
      f1: f1Score(eventPrecision, eventRecall),
    },
    delay: {
      meanSamples: mean(delaysSamples),
      maxSamples: found === 0 ? null : Math.max(...delaysSamples),
      meanS: mean(delaysS),
      maxS: found === 0 ? null : Math.max(...delaysS),
    },
    falseAlarmsPerDay: durationMs > 0 ? falseRegions / (durationMs / DAY_MS) : null,
  };
}

/** Index of the first time at or after `time` (binary search; `timestamps` increasing). */
function lowerBound(timestamps: ArrayLike<number>, time: number): number {
  let low = 0;
  let high = timestamps.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (timestamps[mid]! < time) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The median spacing of samples in ms, so one sample's worth of time counts in the duration; 0 for n < 2. */
function medianStep(timestamps: ArrayLike<number>): number {
  const steps: number[] = [];
  for (let i = 1; i < timestamps.length; i++) steps.push(timestamps[i]! - timestamps[i - 1]!);
  if (steps.length === 0) return 0;
  steps.sort((a, b) => a - b);
  return steps[steps.length >> 1]!;
}

function mean(values: readonly number[]): number | null {
  return values.length === 0 ? null : values.reduce((sum, value) => sum + value, 0) / values.length;
}

/**
 * Peaks-over-threshold (POT) thresholds, as in SPOT (Siffer et al., "Anomaly detection in streams with
 * extreme value theory", KDD 2017): the excesses of a score over a high initial quantile t follow, by the
 * Pickands-Balkema-de Haan theorem, a generalised Pareto distribution (GPD) whatever the score's own
 * distribution; fitting it lets a threshold be set at a small risk q (the probability that a normal window
 * exceeds it) beyond the range the calibration data itself covers, instead of at a fixed `k * MAD`.
 *
 * GPD with shape gamma and scale sigma: P(Y > y) = (1 + gamma * y / sigma)^(-1 / gamma), exp(-y / sigma) at
 * gamma = 0.
 */
import { quantile } from './reference.js';

export interface GpdFit {
  /** Shape: > 0 a heavy tail, 0 exponential, < 0 a tail bounded at sigma / -gamma. */
  readonly gamma: number;
  /** Scale, > 0. */
  readonly sigma: number;
}

/**
 * Method-of-moments fit: the GPD's mean is sigma / (1 - gamma) and its variance
 * sigma^2 / ((1 - gamma)^2 (1 - 2 gamma)); solved with the excesses' mean m and unbiased variance s^2,
 * gamma = (1 - m^2 / s^2) / 2 and sigma = m (1 + m^2 / s^2) / 2. Needs at least two distinct excesses.
 */
export function fitGpdMoments(excesses: ArrayLike<number>): GpdFit {
  const n = excesses.length;
  if (n < 2) throw new RangeError(`a GPD moment fit needs at least 2 excesses, got ${n}`);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += excesses[i]!;
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (excesses[i]! - mean) ** 2;
  const variance = squares / (n - 1);
  if (!(variance > 0)) throw new RangeError('a GPD moment fit needs excesses that are not all equal');
  const ratio = (mean * mean) / variance;
  return { gamma: (1 - ratio) / 2, sigma: (mean * (1 + ratio)) / 2 };
}

/** GPD log-likelihood of the excesses; -Infinity where an excess lies beyond a bounded tail's end. */
export function gpdLogLikelihood(excesses: ArrayLike<number>, fit: GpdFit): number {
  const { gamma, sigma } = fit;
  const n = excesses.length;
  if (!(sigma > 0)) return Number.NEGATIVE_INFINITY;
  let total = -n * Math.log(sigma);
  for (let i = 0; i < n; i++) {
    const y = excesses[i]!;
    if (gamma === 0) {
      total -= y / sigma;
      continue;
    }
    const z = (gamma * y) / sigma;
    if (!(z > -1)) return Number.NEGATIVE_INFINITY;
    // log1p keeps (1 + 1 / gamma) * log(1 + z) exact as gamma nears 0, where it tends to y / sigma.
    total -= (1 + 1 / gamma) * Math.log1p(z);
  }
  return total;
}

/** Grid points per search interval for Grimshaw's roots; sign changes between them are then bisected. */
const GRIMSHAW_GRID = 400;
const BISECTIONS = 100;

/**
 * Maximum-likelihood fit by Grimshaw's reduction (1993), as SPOT uses it: with x = gamma / sigma, the
 * likelihood equations reduce to one equation u(x) v(x) = 1, where u(x) = mean(1 / (1 + x Y)) and
 * v(x) = 1 + mean(log(1 + x Y)); a root gives gamma = v(x) - 1 and sigma = gamma / x. The roots lie in
 * (-1 / max Y, 0) and (0, 2 (mean Y - min Y) / min Y^2); x = 0 is always a root and stands for the
 * exponential fit (gamma = 0, sigma = mean Y). Of every root found and the exponential fit, the one with the
 * highest likelihood wins. Roots are found by sign changes on a grid dense near both ends of each interval,
 * then bisection, so the fit is deterministic.
 */
export function fitGpdGrimshaw(excesses: ArrayLike<number>): GpdFit {
  const n = excesses.length;
  if (n < 2) throw new RangeError(`a GPD fit needs at least 2 excesses, got ${n}`);
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const y = excesses[i]!;
    if (!(y > 0)) throw new RangeError(`GPD excesses must be > 0, got ${y}`);
    min = Math.min(min, y);
    max = Math.max(max, y);
    sum += y;
  }
  const mean = sum / n;
  const w = (x: number) => {
    let u = 0;
    let v = 0;
    for (let i = 0; i < n; i++) {
      const z = x * excesses[i]!;
      u += 1 / (1 + z);
      v += Math.log1p(z);
    }
    return (u / n) * (1 + v / n) - 1;
  };
  const candidates: GpdFit[] = [{ gamma: 0, sigma: mean }];
  const addRoot = (x: number) => {
    let v = 0;
    for (let i = 0; i < n; i++) v += Math.log1p(x * excesses[i]!);
    const gamma = v / n;
    const sigma = gamma / x;
    if (Number.isFinite(gamma) && sigma > 0) candidates.push({ gamma, sigma });
  };
  // Both open intervals, each as (from, to) with the grid packed towards both ends, where roots gather.
  const intervals: Array<[number, number]> = [[-1 / max, 0]];
  if (max > min) intervals.push([0, (2 * (mean - min)) / (min * min)]);
  for (const [from, to] of intervals) {
    const span = to - from;
    const grid: number[] = [];
    for (let g = 1; g < GRIMSHAW_GRID; g++) {
      const s = g / GRIMSHAW_GRID;
      grid.push(s, s ** 4, 1 - (1 - s) ** 4);
    }
    const points = [...new Set(grid)]
      .sort((a, b) => a - b)
      .map((s) => from + s * span)
      .filter((x) => x !== 0 && x > from && x < to);
    let previous = points[0]!;
    let previousW = w(previous);
    for (const x of points.slice(1)) {
      const value = w(x);
      if (Number.isFinite(value) && Number.isFinite(previousW) && Math.sign(value) !== Math.sign(previousW)) {
        let low = previous;
        let high = x;
        let lowW = previousW;
        for (let b = 0; b < BISECTIONS; b++) {
          const middle = (low + high) / 2;
          const middleW = w(middle);
          if (Math.sign(middleW) === Math.sign(lowW)) {
            low = middle;
            lowW = middleW;
          } else high = middle;
        }
        addRoot((low + high) / 2);
      }
      previous = x;
      previousW = value;
    }
  }
  let best = candidates[0]!;
  let bestLikelihood = gpdLogLikelihood(excesses, best);
  for (const candidate of candidates.slice(1)) {
    const likelihood = gpdLogLikelihood(excesses, candidate);
    if (likelihood > bestLikelihood) {
      best = candidate;
      bestLikelihood = likelihood;
    }
  }
  return best;
}

/**
 * The score exceeded with probability `risk`, from a tail fit over the initial threshold `initial` that
 * `peaks` of `count` calibration scores exceeded: initial + (sigma / gamma) ((risk * count / peaks)^-gamma - 1),
 * or initial - sigma * log(risk * count / peaks) for gamma = 0.
 */
export function gpdRiskThreshold(
  initial: number,
  fit: GpdFit,
  risk: number,
  count: number,
  peaks: number,
): number {
  const r = (risk * count) / peaks;
  if (!(r > 0 && r < 1)) {
    throw new RangeError(
      `risk ${risk} must be rarer than the initial threshold's exceedance rate ${peaks}/${count}`,
    );
  }
  if (fit.gamma === 0) return initial - fit.sigma * Math.log(r);
  return initial + (fit.sigma / fit.gamma) * (r ** -fit.gamma - 1);
}

export interface PotOptions {
  /** Quantile of the calibration scores taken as the initial threshold t; default 0.95. */
  readonly initialQuantile?: number;
  /** Probability that a normal score exceeds the threshold; default 1e-3. */
  readonly risk?: number;
  /** Fewest excesses over t to fit a tail to; default 10. */
  readonly minPeaks?: number;
  /** `grimshaw` (maximum likelihood, SPOT's choice) or `moments`; default `grimshaw`. */
  readonly method?: 'grimshaw' | 'moments';
}

export const POT_DEFAULTS = { initialQuantile: 0.95, risk: 1e-3, minPeaks: 10, method: 'grimshaw' } as const;

export type PotResult =
  | {
      readonly kind: 'pot';
      readonly threshold: number;
      readonly initial: number;
      readonly count: number;
      readonly peaks: number;
      readonly fit: GpdFit;
    }
  /** Too few calibration scores above the initial threshold for a tail: the caller must use another rule. */
  | { readonly kind: 'too-few'; readonly count: number; readonly peaks: number; readonly needed: number };

/** A POT threshold from calibration scores, or `too-few` when they hold too small a tail to fit. */
export function potThreshold(scores: ArrayLike<number>, options: PotOptions = {}): PotResult {
  const initialQuantile = options.initialQuantile ?? POT_DEFAULTS.initialQuantile;
  const risk = options.risk ?? POT_DEFAULTS.risk;
  const needed = Math.max(2, options.minPeaks ?? POT_DEFAULTS.minPeaks);
  const method = options.method ?? POT_DEFAULTS.method;
  const count = scores.length;
  const initial = count > 0 ? quantile(scores, initialQuantile) : Number.NaN;
  const excesses: number[] = [];
  for (let i = 0; i < count; i++) if (scores[i]! > initial) excesses.push(scores[i]! - initial);
  const distinct = new Set(excesses).size;
  if (excesses.length < needed || distinct < 2)
    return { kind: 'too-few', count, peaks: excesses.length, needed };
  const fit = method === 'moments' ? fitGpdMoments(excesses) : fitGpdGrimshaw(excesses);
  return {
    kind: 'pot',
    threshold: gpdRiskThreshold(initial, fit, risk, count, excesses.length),
    initial,
    count,
    peaks: excesses.length,
    fit,
  };
}

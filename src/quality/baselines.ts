/**
 * Two simple detectors to measure the autoencoder against, computed per channel and per sample, then put
 * through the same cross-channel vote as the reference. Pure functions over arrays: no model, no training.
 */
import { countVotes, median, requiredVotes, type VoteRule } from '../detector/reference.js';

/** The consistency constant that makes a MAD estimate the standard deviation of normal noise. */
export const MAD_TO_STD = 1.4826;

export interface RobustZOptions {
  /** Trailing window in samples, the current sample excluded; default 64. */
  readonly window?: number;
  /** A sample is flagged when its robust z-score is above this; default 6. */
  readonly z?: number;
}

export const ROBUST_Z_DEFAULTS = { window: 64, z: 6 } as const;

/**
 * Rolling robust z-score: `|x - median| / (1.4826 * MAD) > z`, with the median and the MAD of the `window`
 * samples before each one. The first `window` samples have no full history and are never flagged. Where the
 * MAD is 0 (a flat history) any departure from the median is flagged and a repeat of it is not.
 */
export function robustZFlags(values: ArrayLike<number>, options: RobustZOptions = {}): Uint8Array {
  const window = options.window ?? ROBUST_Z_DEFAULTS.window;
  const z = options.z ?? ROBUST_Z_DEFAULTS.z;
  const flags = new Uint8Array(values.length);
  const history = new Float64Array(window);
  const deviations = new Float64Array(window);
  for (let i = window; i < values.length; i++) {
    for (let j = 0; j < window; j++) history[j] = values[i - window + j]!;
    const center = median(history);
    for (let j = 0; j < window; j++) deviations[j] = Math.abs(history[j]! - center);
    const scale = MAD_TO_STD * median(deviations);
    const deviation = Math.abs(values[i]! - center);
    if (scale === 0 ? deviation > 0 : deviation / scale > z) flags[i] = 1;
  }
  return flags;
}

export interface EwmaOptions {
  /** Smoothing factor of the level and of the residual variance, in (0, 1]; default 2 / (64 + 1). */
  readonly alpha?: number;
  /** A sample is flagged when `|residual| > k * std`; default 6. */
  readonly k?: number;
  /** Samples that only warm the averages up and are never flagged; default 64. */
  readonly warmup?: number;
}

export const EWMA_DEFAULTS = { alpha: 2 / 65, k: 6, warmup: 64 } as const;

/**
 * EWMA residual detector. The residual of sample i is `x[i] - level[i-1]` (the one-step forecast error); the
 * level is `level[i] = level[i-1] + alpha * residual[i]` from `level[0] = x[0]`; the residual variance is the
 * exponentially weighted mean of squared residuals, `var[i] = (1 - alpha) * var[i-1] + alpha * residual[i]^2`
 * from 0. Sample i is flagged when `|residual[i]| > k * sqrt(var[i-1])`, judged before the sample updates
 * the variance so that an outlier cannot hide itself.
 */
export function ewmaFlags(values: ArrayLike<number>, options: EwmaOptions = {}): Uint8Array {
  const alpha = options.alpha ?? EWMA_DEFAULTS.alpha;
  const k = options.k ?? EWMA_DEFAULTS.k;
  const warmup = options.warmup ?? EWMA_DEFAULTS.warmup;
  const flags = new Uint8Array(values.length);
  if (values.length === 0) return flags;
  let level = values[0]!;
  let variance = 0;
  for (let i = 1; i < values.length; i++) {
    const residual = values[i]! - level;
    if (i >= warmup && Math.abs(residual) > k * Math.sqrt(variance)) flags[i] = 1;
    level += alpha * residual;
    variance = (1 - alpha) * variance + alpha * residual * residual;
  }
  return flags;
}

/** Per-channel flags and the reference's global vote over them. */
export interface VotedFlags {
  readonly flags: Uint8Array[];
  readonly votes: Int32Array;
  readonly required: number;
  readonly final: Uint8Array;
}

/** The reference's global vote: a sample is final when at least `requiredVotes(rule, channels)` channels flag it. */
export function voteFlags(flags: readonly Uint8Array[], length: number, rule: VoteRule): VotedFlags {
  const votes = countVotes(flags, length);
  const required = requiredVotes(rule, flags.length);
  return {
    flags: [...flags],
    votes,
    required,
    final: Uint8Array.from(votes, (v) => (v >= required ? 1 : 0)),
  };
}

export type BaselineName = 'robust-z' | 'ewma';

/** Runs one baseline over every channel of a wide table (or anything with per-channel columns) and votes. */
export function baselineDetect(
  table: { readonly values: readonly ArrayLike<number>[]; readonly timestamps: ArrayLike<number> },
  baseline: BaselineName,
  rule: VoteRule,
  options: RobustZOptions & EwmaOptions = {},
): VotedFlags {
  const flags = table.values.map((column) =>
    baseline === 'robust-z' ? robustZFlags(column, options) : ewmaFlags(column, options),
  );
  return voteFlags(flags, table.timestamps.length, rule);
}

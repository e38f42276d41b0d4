/**
 * The reference algorithm's rules, one small function each, exactly as the Python/Keras application
 * computes them (DESIGN section 1). Offline detection and the live path both build on these.
 */

export interface Scaler {
  readonly mean: number;
  readonly scale: number;
}

/** Mean and population standard deviation (ddof 0), like scikit-learn's StandardScaler. */
export function fitScaler(values: ArrayLike<number>): Scaler {
  const n = values.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i]!;
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) {
    const d = values[i]! - mean;
    squares += d * d;
  }
  const std = Math.sqrt(squares / n);
  // scikit-learn treats a scale this close to zero as a constant channel and divides by 1 instead.
  return { mean, scale: std < 10 * Number.EPSILON * Math.max(1, Math.abs(mean)) ? 1 : std };
}

/** The channel scaled to float32, as the model sees it. */
export function applyScaler(values: ArrayLike<number>, scaler: Scaler): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = (values[i]! - scaler.mean) / scaler.scale;
  return out;
}

/** Window starts `0, step, 2*step, …` while `start + window <= length`. */
export function windowStarts(length: number, window: number, step: number): number[] {
  const starts: number[] = [];
  for (let start = 0; start + window <= length; start += step) starts.push(start);
  return starts;
}

/** Copies the windows at `starts` into one contiguous batch (`starts.length * window` values). */
export function gatherWindows(scaled: Float32Array, starts: readonly number[], window: number): Float32Array {
  const out = new Float32Array(starts.length * window);
  starts.forEach((start, w) => {
    out.set(scaled.subarray(start, start + window), w * window);
  });
  return out;
}

/** Window preprocessing beyond the reference: `none` is the reference (scaler only). */
export type WindowPreprocess = 'none' | 'window-mean';

/**
 * Subtracts from each window of `windows` (back to back, `window` values each) its own mean, in place. The mean
 * is summed in float64 over the float32 values in order and each result rounded back to float32, exactly as
 * the live batcher does, so that offline and live scores agree bit for bit. Removing the level makes a score
 * depend on the window's shape, not on where the slow daily variation has carried the field.
 */
export function subtractWindowMeans(windows: Float32Array, window: number): Float32Array {
  for (let offset = 0; offset + window <= windows.length; offset += window) {
    let sum = 0;
    for (let i = offset; i < offset + window; i++) sum += windows[i]!;
    const mean = sum / window;
    for (let i = offset; i < offset + window; i++) windows[i] = windows[i]! - mean;
  }
  return windows;
}

/** NumPy's median: the mean of the two middle values for an even count. */
export function median(values: ArrayLike<number>): number {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `median + k * MAD`, where MAD is the unscaled median of absolute deviations. */
export function madThreshold(rmse: ArrayLike<number>, k: number): number {
  const center = median(rmse);
  const deviations = Array.from(rmse as ArrayLike<number>, (r) => Math.abs(r - center));
  return center + k * median(deviations);
}

/** Linear-interpolated quantile (NumPy's default), for the training summary. */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort();
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

/**
 * Per-sample flags and RMSE of one channel from its window scores: a window is anomalous when
 * `rmse > threshold` (strict), and every sample of an anomalous window is anomalous. A sample's RMSE is the
 * largest of the windows covering it (NaN where no window covers it, e.g. the tail after the last window).
 */
export function expandWindows(
  length: number,
  starts: readonly number[],
  rmse: ArrayLike<number>,
  window: number,
  threshold: number,
): { flags: Uint8Array; sampleRmse: Float64Array } {
  const flags = new Uint8Array(length);
  const sampleRmse = new Float64Array(length).fill(Number.NaN);
  starts.forEach((start, w) => {
    const score = rmse[w]!;
    const anomalous = score > threshold;
    for (let i = start; i < start + window; i++) {
      if (anomalous) flags[i] = 1;
      if (!(sampleRmse[i]! >= score)) sampleRmse[i] = score;
    }
  });
  return { flags, sampleRmse };
}

export type VoteRule = { minChannels: number } | { fraction: number };

/** Votes needed out of `channels`: the absolute count, or `ceil(channels * fraction)`. */
export function requiredVotes(rule: VoteRule, channels: number): number {
  if ('minChannels' in rule) return rule.minChannels;
  // Plain IEEE product as in the reference's Python, so 10 * 0.3 = 3.0000000000000004 needs 4 votes there too.
  return Math.ceil(channels * rule.fraction);
}

/** Number of flagged channels at each sample. */
export function countVotes(flags: readonly Uint8Array[], length: number): Int32Array {
  const votes = new Int32Array(length);
  for (const channel of flags) for (let i = 0; i < length; i++) votes[i]! += channel[i]!;
  return votes;
}

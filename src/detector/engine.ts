/**
 * The inference contract every engine implements. Windows arrive already scaled; an engine returns the
 * reconstruction error (RMSE) of each window, and optionally the reconstructions themselves.
 */
export interface WindowBatch {
  /** Channel of each window, in batch order; selects the channel's model through the bundle manifest. */
  readonly channels: readonly string[];
  /** Scaled samples, window after window: `channels.length * window` values. */
  readonly data: Float32Array;
}

export interface Engine {
  /** `onnx` or `tfjs`. */
  readonly name: string;
  /** What actually runs: `cpu`, `cuda`, `wasm`, `tensorflow`, … */
  readonly backend: string;
  /**
   * True when batches are scored on other threads: a call returns to the event loop at once, so a caller
   * can send the next batch before it handles this one's scores.
   */
  readonly offThread?: boolean;
  /** Worker threads that score for it, when it runs off the event loop; in the start-up log. */
  readonly threads?: number;
  /** RMSE between every window and its reconstruction, in batch order. */
  score(batch: WindowBatch): Promise<Float32Array>;
  /** Reconstructions, same layout as `batch.data`. */
  reconstruct(batch: WindowBatch): Promise<Float32Array>;
  /** Releases native sessions and tensors; the engine must not be used afterwards. */
  dispose(): Promise<void>;
}

/** Throws RangeError unless the batch holds exactly one window of `window` values per channel. */
export function checkBatchShape(batch: WindowBatch, window: number): void {
  const count = batch.channels.length;
  if (batch.data.length !== count * window) {
    throw new RangeError(
      `window batch of ${count} channels needs ${count * window} values (W=${window}), got ${batch.data.length}`,
    );
  }
}

/** RMSE of each window against its reconstruction, computed in float64 like the reference's NumPy. */
export function windowRmse(data: Float32Array, reconstruction: Float32Array, window: number): Float32Array {
  const count = data.length / window;
  const out = new Float32Array(count);
  for (let w = 0; w < count; w++) {
    let sum = 0;
    const base = w * window;
    for (let i = 0; i < window; i++) {
      const d = data[base + i]! - reconstruction[base + i]!;
      sum += d * d;
    }
    out[w] = Math.sqrt(sum / window);
  }
  return out;
}

/** The arrays back to back in one new array (pooled windows, stacked weights). */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

import * as tf from '@tensorflow/tfjs';
import { concatFloat32 } from '../engine.js';
import type { AutoencoderWeights, LstmWeights } from '../model.js';

/**
 * How the models of a batch run. `batched`: all models as one computation, weights stacked along a
 * leading model axis and every product a rank-3 `matMul`. `per-model`: the same computation once per
 * model (model axis of size 1). The `wasm` backend sends rank-3 products with more than one matrix to a
 * generic loop about ten times slower than its XNNPACK path, so there `per-model` beats `batched`.
 * `block-diagonal`: groups of up to `BLOCK_MODELS` models merged into one wider model whose weight
 * matrices are block-diagonal, so one pass of rank-2 products serves the whole group; it multiplies by
 * the zero blocks too (a group of g models does g times the arithmetic) but dispatches g times fewer
 * operations. `adaptive`: per call and per group, `block-diagonal` while the group's windows per model
 * are few, `per-model` passes beyond (see `mergedPassPays`).
 */
export type ProductStrategy = 'batched' | 'per-model' | 'block-diagonal' | 'adaptive';

/** The product strategy that is fastest on a TensorFlow.js backend. */
export function productStrategyFor(backend: string): ProductStrategy {
  return backend === 'wasm' ? 'adaptive' : 'batched';
}

/**
 * Models merged into one block-diagonal pass at most. A group's weights and its arithmetic per window
 * grow with the square of its size (3 reference models: 2.2 MB; 9: about 20 MB), the operations it saves
 * only linearly; 3 was fastest for 9 models at 4 windows each on wasm (see `mergedPassPays`).
 */
export const BLOCK_MODELS = 3;

/** The four gates of one LSTM layer, i, f, c, o in Keras order, one matrix each. */
type Gates = [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];

/**
 * One LSTM layer for every slot of a set, Keras weights regrouped per gate (see `gateMatrices`). A layer
 * fed a new input at each step keeps `fused`; the decoder, whose input repeats, keeps `input` and
 * `recurrent`.
 */
interface LayerWeights {
  readonly units: number;
  /** `[slots, in+u+1, u]`: kernel rows, recurrent rows, bias row; multiplies `[x, h, 1]`. */
  readonly fused?: Gates;
  /** `[slots, in+1, u]`: kernel rows, bias row; multiplies `[x, 1]`. */
  readonly input?: Gates;
  /** `[slots, u, u]`. */
  readonly recurrent?: Gates;
}

/** The weights of a set of slots, stacked along the slot axis; a slot is one model or a merged group. */
interface WeightSet {
  readonly slots: number;
  /** Models merged into each slot: the input and output columns. */
  readonly outputs: number;
  readonly lstm: [LayerWeights, LayerWeights, LayerWeights, LayerWeights];
  /** `[slots, outputs*64+1, outputs]`: Dense(1) kernel rows (block-diagonal when merged), bias row. */
  readonly dense: tf.Tensor3D;
}

/** What one slot is made of before it becomes tensors: a model, or a group of models merged. */
interface SlotWeights {
  readonly lstm: AutoencoderWeights['lstm'];
  /** `[outputs*64+1, outputs]`, row-major: kernel rows, bias row. */
  readonly dense: Float32Array;
}

/** Rows `[first, first+count)` restricted to columns `[col, col+width)` of a row-major matrix. */
function block(matrix: Float32Array, cols: number, first: number, count: number, col: number, width: number) {
  const out = new Float32Array(count * width);
  for (let r = 0; r < count; r++)
    out.set(matrix.subarray((first + r) * cols + col, (first + r) * cols + col + width), r * width);
  return out;
}

/** Gate `k` of a Keras LSTM (columns k*u..(k+1)*u of kernel, recurrent kernel and bias) as the three matrices. */
function gateMatrices(layer: LstmWeights, k: number) {
  const { units: u, inputSize: n } = layer;
  const kernel = block(layer.kernel, 4 * u, 0, n, k * u, u);
  const recurrent = block(layer.recurrentKernel, 4 * u, 0, u, k * u, u);
  const bias = layer.bias.slice(k * u, (k + 1) * u);
  return { kernel, recurrent, bias };
}

/**
 * Several LSTM layers as one with their units side by side: within each gate's columns model 0's units,
 * then model 1's, and so on; inputs likewise. Kernel and recurrent kernel are block-diagonal, so each
 * model's units see only its own inputs and state, and the layer computes exactly what the models would.
 */
function mergeLstm(layers: readonly LstmWeights[]): LstmWeights {
  const { units: u, inputSize: n } = layers[0]!;
  const units = layers.length * u;
  const inputSize = layers.length * n;
  const kernel = new Float32Array(inputSize * 4 * units);
  const recurrentKernel = new Float32Array(units * 4 * units);
  const bias = new Float32Array(4 * units);
  layers.forEach((layer, m) => {
    for (let k = 0; k < 4; k++) {
      const from = k * u;
      const to = k * units + m * u;
      for (let r = 0; r < n; r++) {
        const row = layer.kernel.subarray(r * 4 * u + from, r * 4 * u + from + u);
        kernel.set(row, (m * n + r) * 4 * units + to);
      }
      for (let r = 0; r < u; r++) {
        const row = layer.recurrentKernel.subarray(r * 4 * u + from, r * 4 * u + from + u);
        recurrentKernel.set(row, (m * u + r) * 4 * units + to);
      }
      bias.set(layer.bias.subarray(from, from + u), to);
    }
  });
  return { units, inputSize, kernel, recurrentKernel, bias };
}

function modelSlot(model: AutoencoderWeights): SlotWeights {
  return { lstm: model.lstm, dense: concatFloat32([model.dense.kernel, model.dense.bias]) };
}

/** A group of models as one slot whose output column m is model m's reconstruction. */
function mergedSlot(models: readonly AutoencoderWeights[]): SlotWeights {
  const count = models.length;
  const outer = models[0]!.lstm[3].units;
  const dense = new Float32Array((count * outer + 1) * count);
  models.forEach((model, m) => {
    for (let j = 0; j < outer; j++) dense[(m * outer + j) * count + m] = model.dense.kernel[j]!;
    dense[count * outer * count + m] = model.dense.bias[0]!;
  });
  const lstm = [0, 1, 2, 3].map((index) => mergeLstm(models.map((model) => model.lstm[index]!)));
  return { lstm: lstm as SlotWeights['lstm'], dense };
}

function stackSlots(parts: Float32Array[], rows: number, cols: number): tf.Tensor3D {
  return tf.tensor3d(concatFloat32(parts), [parts.length, rows, cols]);
}

function buildWeightSet(slots: readonly SlotWeights[], outputs: number): WeightSet {
  const lstm = [0, 1, 2, 3].map((index): LayerWeights => {
    const layers = slots.map((slot) => slot.lstm[index]!);
    const { units: u, inputSize: n } = layers[0]!;
    const gates = (pick: (g: ReturnType<typeof gateMatrices>) => Float32Array, rows: number) =>
      [0, 1, 2, 3].map((k) =>
        stackSlots(
          layers.map((layer) => pick(gateMatrices(layer, k))),
          rows,
          u,
        ),
      ) as Gates;
    // The decoder (layer 2) sees the same input at every step; see `forward`.
    return index === 2
      ? {
          units: u,
          input: gates((g) => concatFloat32([g.kernel, g.bias]), n + 1),
          recurrent: gates((g) => g.recurrent, u),
        }
      : { units: u, fused: gates((g) => concatFloat32([g.kernel, g.recurrent, g.bias]), n + u + 1) };
  }) as WeightSet['lstm'];
  const dense = stackSlots(
    slots.map((slot) => slot.dense),
    slots[0]!.dense.length / outputs,
    outputs,
  );
  return { slots: slots.length, outputs, lstm, dense };
}

function weightTensors(set: WeightSet): tf.Tensor[] {
  return [
    ...set.lstm.flatMap((l) => [...(l.fused ?? []), ...(l.input ?? []), ...(l.recurrent ?? [])]),
    set.dense,
  ];
}

/**
 * Whether one block-diagonal pass over a group of `groupSize` models is expected to beat per-model
 * passes over its `active` models, given the most windows one model of the group has (`rows`) and their
 * sum (`totalRows`). A pass costs a fixed `PASS_MS` of operation dispatch plus `ROW_MS` per window per
 * model's worth of weights: a merged pass multiplies each of its rows by all groupSize² blocks. With a
 * full group of 3 the merged pass wins below about 20 windows per model.
 */
export function mergedPassPays(groupSize: number, active: number, rows: number, totalRows: number): boolean {
  const merged = PASS_MS + ROW_MS * rows * groupSize * groupSize;
  const perModel = active * PASS_MS + ROW_MS * totalRows;
  return merged < perModel;
}

// Fitted on wasm (2-core x86 under load, W=64, latent 32): one model's pass took 18-20 ms at 1 to 4
// windows and about 0.3-0.5 ms more per window; merged passes of 2 to 9 models, 0.2-0.5 ms per window
// and model². Groups of 3 to 5 did best at 4 windows per model (78 ms for 9 models against 163 ms per
// model and 107 ms merged as one group of 9).
/** Fixed cost of one forward pass on wasm, ms (about 1,300 operations). */
const PASS_MS = 18;
/** Arithmetic of one window through one model's weights on wasm, ms. */
const ROW_MS = 0.3;

/**
 * Several reference autoencoders of the same shape run together. The LSTM maths is Keras':
 * z = x·K + h·R + b, gates i, f, c, o; c = σ(f)·c + σ(i)·tanh(c̃); h = σ(o)·tanh(c). Each gate has its
 * own product with `[x, h, 1]`, so no step slices a tensor: the wasm backend's slice copies its whole
 * input on every call, which made per-step slicing (of gates, or of a precomputed sequence projection)
 * cost more than the products themselves.
 */
export class StackedAutoencoder {
  readonly models: number;
  readonly window: number;
  readonly latent: number;
  readonly products: ProductStrategy;
  /** `batched`: all models as the slots of one set. */
  private readonly batched: WeightSet | null;
  /** `per-model` and `adaptive`: one set per model. */
  private readonly single: WeightSet[];
  /**
   * `block-diagonal` and `adaptive`: one set per group of `BLOCK_MODELS` consecutive models, merged;
   * null for a group of one under `adaptive`, which its model's own set serves at the same cost.
   */
  private readonly merged: Array<WeightSet | null>;
  private disposed = false;

  constructor(weights: readonly AutoencoderWeights[], products: ProductStrategy = 'batched') {
    if (weights.length === 0) throw new Error('a stacked autoencoder needs at least one model');
    const { window, latent } = weights[0]!;
    for (const w of weights) {
      if (w.window !== window || w.latent !== latent) {
        throw new Error(
          `models disagree in shape: window ${w.window}/latent ${w.latent} vs ${window}/${latent}`,
        );
      }
    }
    this.models = weights.length;
    this.window = window;
    this.latent = latent;
    this.products = products;
    this.batched = products === 'batched' ? buildWeightSet(weights.map(modelSlot), 1) : null;
    this.single =
      products === 'per-model' || products === 'adaptive'
        ? weights.map((w) => buildWeightSet([modelSlot(w)], 1))
        : [];
    this.merged = [];
    if (products === 'block-diagonal' || products === 'adaptive') {
      for (let first = 0; first < weights.length; first += BLOCK_MODELS) {
        const group = weights.slice(first, first + BLOCK_MODELS);
        const alone = group.length === 1 && this.single.length > 0;
        this.merged.push(alone ? null : buildWeightSet([mergedSlot(group)], group.length));
      }
    }
  }

  /**
   * Reconstructs windows of any mix of models. `modelOf[i]` is the model of window `i`; `data` holds the
   * windows one after another; the reconstructions come back in batch order. `batched`: windows are
   * grouped by model and each group padded with zero windows to the largest group, models absent from
   * the batch left out; `per-model`: each model runs on exactly its own windows; `block-diagonal`: row r
   * of a group's pass holds the r-th window of each of its models, zero where a model has fewer.
   */
  async reconstruct(modelOf: ArrayLike<number>, data: Float32Array): Promise<Float32Array> {
    if (this.disposed) throw new Error('the stacked autoencoder has been disposed');
    const { window } = this;
    const count = modelOf.length;
    if (data.length !== count * window) {
      throw new Error(`batch of ${count} windows needs ${count * window} values, got ${data.length}`);
    }
    // members[m]: the batch positions of model m's windows, in batch order.
    const members: number[][] = Array.from({ length: this.models }, () => []);
    for (let i = 0; i < count; i++) {
      const m = modelOf[i]!;
      if (!(m >= 0 && m < this.models))
        throw new Error(`window ${i} names model ${m}; there are ${this.models}`);
      members[m]!.push(i);
    }
    const active = members.flatMap((list, m) => (list.length > 0 ? [m] : []));
    const out = new Float32Array(count * window);
    if (this.batched) {
      if (active.length === 0) return out;
      const all = active.length === this.models;
      const set = all ? this.batched : selectModels(this.batched, active);
      try {
        await this.run(
          set,
          active.map((m) => [members[m]!]),
          data,
          out,
        );
      } finally {
        if (!all) tf.dispose(weightTensors(set));
      }
    } else if (this.merged.length === 0) {
      for (const m of active) await this.run(this.single[m]!, [[members[m]!]], data, out);
    } else {
      for (const [g, set] of this.merged.entries()) {
        const group = members.slice(g * BLOCK_MODELS, (g + 1) * BLOCK_MODELS);
        const inGroup = group.flatMap((list, k) => (list.length > 0 ? [g * BLOCK_MODELS + k] : []));
        if (inGroup.length === 0) continue;
        const rows = Math.max(...group.map((list) => list.length));
        const total = group.reduce((n, list) => n + list.length, 0);
        if (set && (this.single.length === 0 || mergedPassPays(group.length, inGroup.length, rows, total))) {
          await this.run(set, [group], data, out);
        } else {
          for (const m of inGroup) await this.run(this.single[m]!, [[members[m]!]], data, out);
        }
      }
    }
    return out;
  }

  /**
   * Runs `set` on windows: `lanes[s][c]` lists the batch positions that go through slot s's output
   * column c, one per row, lists padded with zero windows to the longest; writes each reconstruction to
   * its position in `out`.
   */
  private async run(
    set: WeightSet,
    lanes: number[][][],
    data: Float32Array,
    out: Float32Array,
  ): Promise<void> {
    const { window } = this;
    const slots = lanes.length;
    const cols = set.outputs;
    const rows = Math.max(...lanes.flatMap((slot) => slot.map((list) => list.length)));
    // Step t's inputs `[slots, rows, cols]`, laid out in JS so that no tensor has to be sliced per step.
    const steps = Array.from({ length: window }, () => new Float32Array(slots * rows * cols));
    lanes.forEach((slot, s) => {
      slot.forEach((list, c) => {
        list.forEach((i, r) => {
          const at = (s * rows + r) * cols + c;
          for (let t = 0; t < window; t++) steps[t]![at] = data[i * window + t]!;
        });
      });
    });
    const inputs = steps.map((step) => tf.tensor3d(step, [slots, rows, cols]));
    const output = this.forward(set, inputs);
    tf.dispose(inputs);
    // `[slots, W*rows, cols]`, time-major within each slot.
    const values = (await output.data()) as Float32Array;
    output.dispose();
    lanes.forEach((slot, s) => {
      slot.forEach((list, c) => {
        list.forEach((i, r) => {
          for (let t = 0; t < window; t++)
            out[i * window + t] = values[((s * window + t) * rows + r) * cols + c]!;
        });
      });
    });
  }

  /** The forward pass on one `[slots, rows, cols]` input per step; returns `[slots, W*rows, cols]`, time-major. */
  private forward(set: WeightSet, inputs: tf.Tensor3D[]): tf.Tensor3D {
    return tf.tidy(() => {
      const [slots, rows] = inputs[0]!.shape;
      const ones = tf.ones([slots, rows, 1]) as tf.Tensor3D;
      const [encoder, bottleneck, decoder, outer] = set.lstm;
      const encoded = this.recurrence(encoder, (t) => inputs[t]!, ones, true);
      const latent = this.recurrence(bottleneck, (t) => encoded[t]!, ones, false)[0]!;
      tf.dispose(encoded);
      // RepeatVector: the decoder sees the same latent vector at every step, so its input term is computed once.
      const withBias = tf.concat([latent, ones], 2);
      const constant = decoder.input!.map((gate) => tf.matMul(withBias, gate)) as Gates;
      const decoded = this.recurrence(decoder, constant, ones, true);
      const hidden = this.recurrence(outer, (t) => decoded[t]!, ones, true);
      tf.dispose(decoded);
      const sequence = tf.concat(hidden, 1);
      tf.dispose(hidden);
      const withOnes = tf.concat([sequence, tf.ones([slots, this.window * rows, 1])], 2);
      return tf.matMul(withOnes, set.dense) as tf.Tensor3D;
    });
  }

  /**
   * Runs one LSTM layer over `window` steps and returns every step's hidden state (`sequence`) or only
   * the last. `input` gives step t's input `[slots, rows, in]`, or is the four gates' input terms when
   * they are the same at every step. Each step is its own tidy scope and states no longer needed are
   * freed at once, so memory stays at a few steps' worth.
   */
  private recurrence(
    layer: LayerWeights,
    input: ((t: number) => tf.Tensor3D) | Gates,
    ones: tf.Tensor3D,
    sequence: boolean,
  ): tf.Tensor3D[] {
    const [slots, rows] = ones.shape;
    const states: tf.Tensor3D[] = [];
    let h = tf.zeros([slots, rows, layer.units]) as tf.Tensor3D;
    let c: tf.Tensor3D | null = null;
    for (let t = 0; t < this.window; t++) {
      const [hNext, cNext] = tf.tidy(() => {
        let z: tf.Tensor3D[];
        if (typeof input === 'function') {
          const xh = tf.concat([input(t), h, ones], 2);
          z = layer.fused!.map((gate) => tf.matMul(xh, gate));
        } else {
          // The initial state is zero, so the first step has no recurrent term.
          z = t === 0 ? input : layer.recurrent!.map((gate, k) => tf.add(input[k]!, tf.matMul(h, gate)));
        }
        const candidate = tf.mul(tf.sigmoid(z[0]!), tf.tanh(z[2]!));
        const cell = c ? tf.add(tf.mul(tf.sigmoid(z[1]!), c), candidate) : candidate;
        return [tf.mul(tf.sigmoid(z[3]!), tf.tanh(cell)), cell] as tf.Tensor3D[];
      });
      c?.dispose();
      if (!sequence || t === 0) h.dispose();
      h = hNext!;
      c = cNext!;
      if (sequence) states.push(h);
    }
    c?.dispose();
    return sequence ? states : [h];
  }

  /** Frees every weight tensor; the autoencoder cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const set of [this.batched, ...this.single, ...this.merged]) if (set) tf.dispose(weightTensors(set));
  }
}

/** The models at `active` of a batched set, in that order, as a new set the caller disposes. */
function selectModels(set: WeightSet, active: readonly number[]): WeightSet {
  const indices = tf.tensor1d(active as number[], 'int32');
  const pick = (gates: Gates | undefined) =>
    gates?.map((t) => tf.gather(t, indices) as tf.Tensor3D) as Gates | undefined;
  try {
    return {
      slots: active.length,
      outputs: set.outputs,
      lstm: set.lstm.map((layer) => ({
        units: layer.units,
        fused: pick(layer.fused),
        input: pick(layer.input),
        recurrent: pick(layer.recurrent),
      })) as WeightSet['lstm'],
      dense: tf.gather(set.dense, indices) as tf.Tensor3D,
    };
  } finally {
    indices.dispose();
  }
}

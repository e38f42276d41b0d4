import * as tf from '@tensorflow/tfjs';
import { concatFloat32 } from '../engine.js';
import type { AutoencoderWeights, LstmWeights } from '../model.js';
import { Kernels } from './kernels.js';

/**
 * How the models of a batch run. `batched`: all models as one computation, weights stacked along a
 * leading model axis and every product a rank-3 `matMul`. `per-model`: the same computation once per
 * model (model axis of size 1). The `wasm` backend sends rank-3 products with more than one matrix to a
 * generic loop about ten times slower than its XNNPACK path, so there `per-model` beats `batched`.
 * `block-diagonal`: groups of up to `BLOCK_MODELS` models merged into one wider model whose weight
 * matrices are block-diagonal, so one pass of rank-2 products serves the whole group; it multiplies by
 * the zero blocks too (a group of g models does g times the arithmetic) but makes g times fewer
 * kernel calls. `adaptive`: per call and per group, `block-diagonal` while the group's windows per model
 * are few, `per-model` passes beyond (see `mergedPassPays`).
 */
export type ProductStrategy = 'batched' | 'per-model' | 'block-diagonal' | 'adaptive';

/** The product strategy that is fastest on a TensorFlow.js backend. */
export function productStrategyFor(backend: string): ProductStrategy {
  return backend === 'wasm' ? 'adaptive' : 'batched';
}

/**
 * Models merged into one block-diagonal pass at most. A group's weights and its arithmetic per window
 * grow with the square of its size (3 reference models: 3.4 MB; 9: about 30 MB), the kernel calls it
 * saves only linearly; of groups of 2 to 5 and 9, 3 was fastest for 9 models at one window each on wasm
 * (see `mergedPassPays`).
 */
export const BLOCK_MODELS = 3;

/** The four gates of one LSTM layer, i, f, c, o in Keras order, one matrix each. */
type Gates = [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];

/**
 * Two consecutive LSTM layers run as one layer whose units are the lower layer's followed by the upper
 * layer's (see `wavePairGate`). Wave t computes the lower layer's step t and the upper layer's step t-1,
 * which needs only what wave t-1 left, so W+1 waves do the work of 2W steps.
 */
interface WavePair {
  /** Units of both layers together. */
  readonly units: number;
  /** Units of the lower layer: the first columns of the state. */
  readonly lowerUnits: number;
  /** `[slots, in+1, units]`: wave 0, where the upper layer has not started and its columns are zero. */
  readonly first: Gates;
  /** `[slots, in+units+1, units]`: input rows, state rows, bias row; every later wave. */
  readonly wave: Gates;
}

/** The weights of a set of slots, stacked along the slot axis; a slot is one model or a merged group. */
interface WeightSet {
  readonly slots: number;
  /** Models merged into each slot: the input and output columns. */
  readonly outputs: number;
  /** Encoder and bottleneck; the bottleneck's last state is the latent vector. */
  readonly encode: WavePair;
  /** Decoder (its input, the latent vector, repeats) and the outer layer. */
  readonly decode: WavePair;
  /**
   * `[slots, decoder units + outputs*64 + 1, outputs]`: zero rows for the decoder's units, Dense(1)
   * kernel rows, bias row; it multiplies the decode pair's states as they are.
   */
  readonly dense: tf.Tensor3D;
}

/** What one slot is made of before it becomes tensors: a model, or a group of models merged. */
interface SlotWeights {
  readonly lstm: AutoencoderWeights['lstm'];
  /** `[outputs*64+1, outputs]`, row-major: kernel rows, bias row. */
  readonly dense: Float32Array;
}

/**
 * Gate `k` of two stacked Keras LSTM layers as the matrices of one wider layer (see `WavePair`). Its state
 * is `[lower h, upper h]`; its input `[x, state, 1]`. Lower columns: kernel on x, recurrent kernel on the
 * lower state, bias. Upper columns: the upper kernel on the lower state (the lower layer's previous
 * output, which is the upper layer's input), recurrent kernel on the upper state, bias. The first wave's
 * matrix has only the input and bias rows and leaves the upper columns zero, which keeps the upper
 * layer's state and cell exactly zero until its first step.
 */
function wavePairGate(lower: LstmWeights, upper: LstmWeights, k: number) {
  const { units: low, inputSize: n } = lower;
  const up = upper.units;
  const units = low + up;
  const wave = new Float32Array((n + units + 1) * units);
  const first = new Float32Array((n + 1) * units);
  // Rows of a Keras `[rows, 4u]` matrix, gate k's columns, written at (row, col) of `target`.
  const put = (target: Float32Array, row: number, col: number, source: Float32Array, u: number) => {
    for (let r = 0; r < source.length / (4 * u); r++)
      target.set(source.subarray(r * 4 * u + k * u, r * 4 * u + (k + 1) * u), (row + r) * units + col);
  };
  put(wave, 0, 0, lower.kernel, low);
  put(wave, n, 0, lower.recurrentKernel, low);
  put(wave, n, low, upper.kernel, up);
  put(wave, n + low, low, upper.recurrentKernel, up);
  put(wave, n + units, 0, lower.bias, low);
  put(wave, n + units, low, upper.bias, up);
  put(first, 0, 0, lower.kernel, low);
  put(first, n, 0, lower.bias, low);
  return { first, wave };
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

function buildWavePair(slots: readonly SlotWeights[], lowerIndex: 0 | 2): WavePair {
  const pairs = slots.map((slot) => [slot.lstm[lowerIndex], slot.lstm[lowerIndex + 1]!] as const);
  const [lower, upper] = pairs[0]!;
  const units = lower.units + upper.units;
  const n = lower.inputSize;
  const gates = [0, 1, 2, 3].map((k) => pairs.map(([l, u]) => wavePairGate(l, u, k)));
  const stack = (pick: 'first' | 'wave', rows: number) =>
    gates.map((perSlot) =>
      stackSlots(
        perSlot.map((g) => g[pick]),
        rows,
        units,
      ),
    ) as Gates;
  return { units, lowerUnits: lower.units, first: stack('first', n + 1), wave: stack('wave', n + units + 1) };
}

function buildWeightSet(slots: readonly SlotWeights[], outputs: number): WeightSet {
  const encode = buildWavePair(slots, 0);
  const decode = buildWavePair(slots, 2);
  const decoderRows = new Float32Array(decode.lowerUnits * outputs);
  const dense = stackSlots(
    slots.map((slot) => concatFloat32([decoderRows, slot.dense])),
    decode.units + 1,
    outputs,
  );
  return { slots: slots.length, outputs, encode, decode, dense };
}

function weightTensors(set: WeightSet): tf.Tensor[] {
  return [...set.encode.first, ...set.encode.wave, ...set.decode.first, ...set.decode.wave, set.dense];
}

/**
 * Whether one block-diagonal pass over a group of `groupSize` models is expected to beat per-model
 * passes over its `active` models, given the most windows one model of the group has (`rows`) and their
 * sum (`totalRows`). A pass costs a fixed `PASS_MS` of kernel calls plus `ROW_MS` per window per
 * model's worth of weights: a merged pass multiplies each of its rows by all groupSize² blocks. With a
 * full group of 3 the merged pass wins at one window per model and loses from two on.
 */
export function mergedPassPays(groupSize: number, active: number, rows: number, totalRows: number): boolean {
  const merged = PASS_MS + ROW_MS * rows * groupSize * groupSize;
  const perModel = active * PASS_MS + ROW_MS * totalRows;
  return merged < perModel;
}

// Fitted on wasm (2-core x86, W=64, latent 32, one thread): one model's pass took 4.2-5.2 ms at 1 to 4
// windows, 18 ms at 28 and 60 ms at 114; 9 models at one window each took 34 ms in three merged passes
// against 41 ms in nine, at two windows each 59 ms against 54 ms.
/** Fixed cost of one forward pass on wasm, ms (130 waves of 13 kernel calls). */
const PASS_MS = 4.5;
/** Arithmetic of one window through one model's weights on wasm, ms. */
const ROW_MS = 0.5;

/**
 * Several reference autoencoders of the same shape run together. The LSTM maths is Keras':
 * z = x·K + h·R + b, gates i, f, c, o; c = σ(f)·c + σ(i)·tanh(c̃); h = σ(o)·tanh(c). A pass is bound by
 * the number of kernel calls until its tensors hold thousands of values, so it makes few: layers run in
 * pairs as waves (`WavePair`), the kernels are called directly (`Kernels`), and each gate has its own
 * product with `[x, h, 1]` so that no wave slices a tensor: the wasm backend's slice copies its whole
 * input on every call, which made per-step slicing (of gates, or of a precomputed sequence projection)
 * cost more than the products themselves. The pairs cost about 1.5 times the arithmetic of four separate
 * layers (zero blocks, and the decoder's input product repeated every wave); even at 114 windows a pass
 * was no slower for it.
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
   * Known shortcoming: with the per-model sets that makes 1.5 MB per reference model, 6x its weights.
   */
  private readonly merged: Array<WeightSet | null>;
  private readonly kernels: Kernels;
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
    this.kernels = new Kernels();
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
    const ones = [tf.ones([slots, rows, 1]), tf.ones([slots, window * rows, 1])] as const;
    let output: tf.TensorInfo | null = null;
    let values: Float32Array;
    try {
      output = this.forward(set, inputs, ...ones);
      // `[slots, W*rows, cols]`, time-major within each slot.
      values = await this.kernels.read(output);
    } finally {
      this.kernels.free(output);
      tf.dispose([...inputs, ...ones]);
    }
    lanes.forEach((slot, s) => {
      slot.forEach((list, c) => {
        list.forEach((i, r) => {
          for (let t = 0; t < window; t++)
            out[i * window + t] = values[((s * window + t) * rows + r) * cols + c]!;
        });
      });
    });
  }

  /**
   * The forward pass on one `[slots, rows, cols]` input per step; returns `[slots, W*rows, cols]`,
   * time-major, for the caller to free. `ones` and `timeOnes` are `[slots, rows, 1]` and
   * `[slots, W*rows, 1]` of ones, the bias inputs.
   */
  private forward(
    set: WeightSet,
    inputs: tf.Tensor3D[],
    ones: tf.Tensor,
    timeOnes: tf.Tensor,
  ): tf.TensorInfo {
    const k = this.kernels;
    const { encode, decode, dense } = set;
    const [slots, rows] = inputs[0]!.shape;
    // The last wave only finishes the bottleneck; what the encoder computes there is never read.
    const [encoded] = this.waves(encode, (t) => inputs[Math.min(t, this.window - 1)]!, ones, false);
    return k.scoped((keep) => {
      keep(encoded!);
      const latentUnits = encode.units - encode.lowerUnits;
      const latent = keep(k.slice(encoded!, [0, 0, encode.lowerUnits], [slots, rows, latentUnits]));
      // RepeatVector: the decoder's input is the latent vector at every step.
      const decoded = this.waves(decode, () => latent, ones, true).map(keep);
      const sequence = keep(k.concat(decoded, 1));
      return k.matMul(keep(k.concat([sequence, timeOnes], 2)), dense);
    });
  }

  /**
   * Runs a pair of layers over `window`+1 waves and returns the states of waves 1..W, whose upper columns
   * are the upper layer's steps 0..W-1 (`sequence`), or only the last wave's; the caller frees them.
   * `input(t)` is the lower layer's input at wave t. States no longer needed are freed at once, so memory
   * stays at a few waves' worth.
   */
  private waves(
    pair: WavePair,
    input: (t: number) => tf.TensorInfo,
    ones: tf.TensorInfo,
    sequence: boolean,
  ): tf.TensorInfo[] {
    const k = this.kernels;
    const states: tf.TensorInfo[] = [];
    let h: tf.TensorInfo | null = null;
    let c: tf.TensorInfo | null = null;
    try {
      for (let t = 0; t <= this.window; t++) {
        const state: tf.TensorInfo | null = h;
        const previous: tf.TensorInfo | null = c;
        const [next, cell] = k.scoped((keep): [tf.TensorInfo, tf.TensorInfo] => {
          // The initial state is zero, so the first wave has no state rows and no cell term.
          const xh = keep(k.concat(state ? [input(t), state, ones] : [input(t), ones], 2));
          // The three sigmoid gates take their activation in the product's call; the first wave has no
          // cell to forget.
          const [inputGate, forgetGate, candidateGate, outputGate] = state ? pair.wave : pair.first;
          const gate = (weights: tf.TensorInfo) => keep(k.matMulSigmoid(xh, weights));
          const candidate = k.mul(gate(inputGate), keep(k.tanh(keep(k.matMul(xh, candidateGate)))));
          const cell: tf.TensorInfo = previous
            ? k.add(keep(k.mul(gate(forgetGate), previous)), keep(candidate))
            : candidate;
          return [k.mul(gate(outputGate), keep(k.tanh(cell))), cell];
        });
        k.free(c);
        c = cell;
        // In a sequence every state from wave 1 on is returned; wave 0's is not.
        if (!sequence || t === 1) k.free(h);
        h = next;
        if (sequence && t > 0) states.push(h);
      }
    } catch (error) {
      k.free(c, ...states, ...(states.includes(h!) ? [] : [h]));
      throw error;
    }
    k.free(c);
    return sequence ? states : [h!];
  }

  /** Frees every weight tensor; the autoencoder cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.kernels.dispose();
    for (const set of [this.batched, ...this.single, ...this.merged]) if (set) tf.dispose(weightTensors(set));
  }
}

/** The models at `active` of a batched set, in that order, as a new set the caller disposes. */
function selectModels(set: WeightSet, active: readonly number[]): WeightSet {
  const indices = tf.tensor1d(active as number[], 'int32');
  const pick = (t: tf.Tensor3D) => tf.gather(t, indices) as tf.Tensor3D;
  const pickPair = (pair: WavePair): WavePair => ({
    ...pair,
    first: pair.first.map(pick) as Gates,
    wave: pair.wave.map(pick) as Gates,
  });
  try {
    return {
      slots: active.length,
      outputs: set.outputs,
      encode: pickPair(set.encode),
      decode: pickPair(set.decode),
      dense: pick(set.dense),
    };
  } finally {
    indices.dispose();
  }
}

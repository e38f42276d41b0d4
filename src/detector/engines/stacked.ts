import * as tf from '@tensorflow/tfjs';
import { concatFloat32 } from '../engine.js';
import type { AutoencoderWeights, LstmWeights } from '../model.js';

/**
 * How the models of a batch run. `batched`: all models as one computation, weights stacked along a
 * leading model axis and every product a rank-3 `matMul`. `per-model`: the same computation once per
 * model (model axis of size 1). The `wasm` backend sends rank-3 products with more than one matrix to a
 * generic loop about ten times slower than its XNNPACK path, so there `per-model` wins.
 */
export type ProductStrategy = 'batched' | 'per-model';

/** The product strategy that is fastest on a TensorFlow.js backend. */
export function productStrategyFor(backend: string): ProductStrategy {
  return backend === 'wasm' ? 'per-model' : 'batched';
}

/** One gate of one LSTM layer for every model of a set, Keras weights regrouped (see `gateMatrices`). */
interface GateWeights {
  /** `[models, in+u+1, u]`: kernel rows, recurrent rows, bias row; multiplies `[x, h, 1]`. */
  readonly fused: tf.Tensor3D;
  /** `[models, in+1, u]`: kernel rows, bias row; multiplies `[x, 1]`. */
  readonly input: tf.Tensor3D;
  /** `[models, u, u]`. */
  readonly recurrent: tf.Tensor3D;
}

interface LayerWeights {
  readonly units: number;
  /** Gates i, f, c, o, in Keras order. */
  readonly gates: [GateWeights, GateWeights, GateWeights, GateWeights];
}

/** The weights of a set of models, stacked along the model axis. */
interface WeightSet {
  readonly models: number;
  readonly lstm: [LayerWeights, LayerWeights, LayerWeights, LayerWeights];
  /** `[models, 65, 1]`: Dense(1) kernel rows, bias row. */
  readonly dense: tf.Tensor3D;
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
  return {
    fused: concatFloat32([kernel, recurrent, bias]),
    input: concatFloat32([kernel, bias]),
    recurrent,
  };
}

function stackModels(parts: Float32Array[], rows: number, cols: number): tf.Tensor3D {
  return tf.tensor3d(concatFloat32(parts), [parts.length, rows, cols]);
}

function buildWeightSet(models: readonly AutoencoderWeights[]): WeightSet {
  const lstm = [0, 1, 2, 3].map((index) => {
    const layers = models.map((m) => m.lstm[index]!);
    const { units: u, inputSize: n } = layers[0]!;
    const gates = [0, 1, 2, 3].map((k) => {
      const parts = layers.map((layer) => gateMatrices(layer, k));
      return {
        fused: stackModels(
          parts.map((p) => p.fused),
          n + u + 1,
          u,
        ),
        input: stackModels(
          parts.map((p) => p.input),
          n + 1,
          u,
        ),
        recurrent: stackModels(
          parts.map((p) => p.recurrent),
          u,
          u,
        ),
      };
    }) as LayerWeights['gates'];
    return { units: u, gates };
  }) as WeightSet['lstm'];
  const outer = lstm[3].units;
  const dense = stackModels(
    models.map((m) => concatFloat32([m.dense.kernel, m.dense.bias])),
    outer + 1,
    1,
  );
  return { models: models.length, lstm, dense };
}

function weightTensors(set: WeightSet): tf.Tensor[] {
  return [...set.lstm.flatMap((l) => l.gates.flatMap((g) => [g.fused, g.input, g.recurrent])), set.dense];
}

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
  /** `batched`: one set of all models; `per-model`: one set per model. */
  private readonly sets: WeightSet[];
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
    this.sets = products === 'batched' ? [buildWeightSet(weights)] : weights.map((w) => buildWeightSet([w]));
  }

  /**
   * Reconstructs windows of any mix of models. `modelOf[i]` is the model of window `i`; `data` holds the
   * windows one after another; the reconstructions come back in batch order. `batched`: windows are
   * grouped by model and each group padded with zero windows to the largest group, models absent from
   * the batch left out; `per-model`: each model runs on exactly its own windows.
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
    if (this.products === 'per-model') {
      for (const m of active) await this.run(this.sets[m]!, [members[m]!], data, out);
    } else if (active.length > 0) {
      const all = active.length === this.models;
      const set = all ? this.sets[0]! : selectModels(this.sets[0]!, active);
      try {
        await this.run(
          set,
          active.map((m) => members[m]!),
          data,
          out,
        );
      } finally {
        if (!all) tf.dispose(weightTensors(set));
      }
    }
    return out;
  }

  /**
   * Runs `set` on its models' windows: `groups[s]` lists the batch positions of slot s's windows, padded
   * to the largest group with zero windows; writes each reconstruction to its position in `out`.
   */
  private async run(
    set: WeightSet,
    groups: number[][],
    data: Float32Array,
    out: Float32Array,
  ): Promise<void> {
    const { window } = this;
    const slots = groups.length;
    const rows = Math.max(...groups.map((g) => g.length));
    // Step t's inputs `[slots, rows, 1]`, laid out in JS so that no tensor has to be sliced per step.
    const steps = Array.from({ length: window }, () => new Float32Array(slots * rows));
    groups.forEach((group, s) => {
      group.forEach((i, r) => {
        for (let t = 0; t < window; t++) steps[t]![s * rows + r] = data[i * window + t]!;
      });
    });
    const inputs = steps.map((step) => tf.tensor3d(step, [slots, rows, 1]));
    const output = this.forward(set, inputs);
    tf.dispose(inputs);
    // `[slots, W*rows, 1]`, time-major within each slot.
    const values = (await output.data()) as Float32Array;
    output.dispose();
    groups.forEach((group, s) => {
      group.forEach((i, r) => {
        for (let t = 0; t < window; t++) out[i * window + t] = values[(s * window + t) * rows + r]!;
      });
    });
  }

  /** The forward pass on one `[slots, rows, 1]` input per step; returns `[slots, W*rows, 1]`, time-major. */
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
      const constant = decoder.gates.map((gate) => tf.matMul(withBias, gate.input)) as Gates;
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
          z = layer.gates.map((gate) => tf.matMul(xh, gate.fused));
        } else {
          // The initial state is zero, so the first step has no recurrent term.
          z = t === 0 ? input : layer.gates.map((gate, k) => tf.add(input[k]!, tf.matMul(h, gate.recurrent)));
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
    for (const set of this.sets) tf.dispose(weightTensors(set));
  }
}

type Gates = [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];

/** The models at `active` of a batched set, in that order, as a new set the caller disposes. */
function selectModels(set: WeightSet, active: readonly number[]): WeightSet {
  const indices = tf.tensor1d(active as number[], 'int32');
  const pick = (t: tf.Tensor3D) => tf.gather(t, indices) as tf.Tensor3D;
  try {
    return {
      models: active.length,
      lstm: set.lstm.map((layer) => ({
        units: layer.units,
        gates: layer.gates.map((g) => ({
          fused: pick(g.fused),
          input: pick(g.input),
          recurrent: pick(g.recurrent),
        })) as LayerWeights['gates'],
      })) as WeightSet['lstm'],
      dense: pick(set.dense),
    };
  } finally {
    indices.dispose();
  }
}

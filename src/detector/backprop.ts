import type { AutoencoderWeights, LstmWeights } from './model.js';

/**
 * The reference autoencoder's training pass written out on typed arrays: forward, backpropagation through
 * time and Adam, the same arithmetic as TensorFlow.js's `model.fit` (Keras LSTM gates i, f, c, o; sigmoid and
 * tanh; MSE; Adam as `tf.train.adam`). `fit` dispatches about ten thousand small tensor operations per batch
 * and spends most of its time between them (1.5 GFLOP/s on wasm); here every product is one loop over
 * whole matrices (about 4 GFLOP/s on one core) and the buffers are allocated once, so the garbage collector
 * has next to nothing to do (with `fit` it kept a second core busy).
 */

/**
 * `c[M×N] += a[M×K] · b[N×K]ᵀ`, all row-major from the given offsets. Tiles of 2 rows by 4 columns keep eight
 * sums in registers, which is what makes plain JavaScript reach a few GFLOP/s.
 */
export function gemmNT(
  M: number,
  N: number,
  K: number,
  a: Float32Array,
  ao: number,
  b: Float32Array,
  bo: number,
  c: Float32Array,
  co: number,
): void {
  let i = 0;
  for (; i + 1 < M; i += 2) {
    const a0 = ao + i * K;
    const a1 = a0 + K;
    const c0 = co + i * N;
    const c1 = c0 + N;
    let j = 0;
    for (; j + 3 < N; j += 4) {
      const b0 = bo + j * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = a[a0 + k]!;
        const x1 = a[a1 + k]!;
        const y0 = b[b0 + k]!;
        const y1 = b[b1 + k]!;
        const y2 = b[b2 + k]!;
        const y3 = b[b3 + k]!;
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
      }
      c[c0 + j] = c[c0 + j]! + s00;
      c[c0 + j + 1] = c[c0 + j + 1]! + s01;
      c[c0 + j + 2] = c[c0 + j + 2]! + s02;
      c[c0 + j + 3] = c[c0 + j + 3]! + s03;
      c[c1 + j] = c[c1 + j]! + s10;
      c[c1 + j + 1] = c[c1 + j + 1]! + s11;
      c[c1 + j + 2] = c[c1 + j + 2]! + s12;
      c[c1 + j + 3] = c[c1 + j + 3]! + s13;
    }
    for (; j < N; j++) {
      const bj = bo + j * K;
      let s0 = 0;
      let s1 = 0;
      for (let k = 0; k < K; k++) {
        s0 += a[a0 + k]! * b[bj + k]!;
        s1 += a[a1 + k]! * b[bj + k]!;
      }
      c[c0 + j] = c[c0 + j]! + s0;
      c[c1 + j] = c[c1 + j]! + s1;
    }
  }
  if (i < M) {
    const ai = ao + i * K;
    const ci = co + i * N;
    for (let j = 0; j < N; j++) {
      const bj = bo + j * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += a[ai + k]! * b[bj + k]!;
      c[ci + j] = c[ci + j]! + s;
    }
  }
}

/** `out[cols×rows] = m[rows×cols]ᵀ`. */
function transpose(m: Float32Array, rows: number, cols: number, out: Float32Array): Float32Array {
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = m[r * cols + c]!;
  return out;
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** One trainable array with its gradient and Adam moments. */
class Parameter {
  readonly grad: Float32Array;
  readonly m: Float32Array;
  readonly v: Float32Array;
  constructor(readonly value: Float32Array) {
    this.grad = new Float32Array(value.length);
    this.m = new Float32Array(value.length);
    this.v = new Float32Array(value.length);
  }
}

/**
 * One LSTM layer's weights and, for the batch in hand, its time-major activations: `gates[t][b][4u]` after
 * their activations, `c[t][b][u]`, `h[t][b][u]`.
 */
class Layer {
  readonly units: number;
  readonly inputSize: number;
  readonly kernel: Parameter;
  readonly recurrent: Parameter;
  readonly bias: Parameter;
  /** Transposed copies for the forward products, refreshed after each update. */
  readonly kernelT: Float32Array;
  readonly recurrentT: Float32Array;
  readonly gates: Float32Array;
  readonly c: Float32Array;
  readonly h: Float32Array;
  /** Pre-activations, then their gradients, `[t][b][4u]`. */
  readonly z: Float32Array;
  /** The cell state's gradient flowing back from the next step, `[b][u]`. */
  private readonly dc: Float32Array;

  constructor(weights: LstmWeights, window: number, batch: number) {
    this.units = weights.units;
    this.inputSize = weights.inputSize;
    this.kernel = new Parameter(Float32Array.from(weights.kernel));
    this.recurrent = new Parameter(Float32Array.from(weights.recurrentKernel));
    this.bias = new Parameter(Float32Array.from(weights.bias));
    const u = this.units;
    this.kernelT = new Float32Array(this.inputSize * 4 * u);
    this.recurrentT = new Float32Array(u * 4 * u);
    this.gates = new Float32Array(window * batch * 4 * u);
    this.z = new Float32Array(window * batch * 4 * u);
    this.c = new Float32Array(window * batch * u);
    this.h = new Float32Array(window * batch * u);
    this.dc = new Float32Array(batch * u);
    this.refresh();
  }

  get parameters(): Parameter[] {
    return [this.kernel, this.recurrent, this.bias];
  }

  refresh(): void {
    transpose(this.kernel.value, this.inputSize, 4 * this.units, this.kernelT);
    transpose(this.recurrent.value, this.units, 4 * this.units, this.recurrentT);
  }

  /**
   * Runs the layer over `steps` steps of `batch` rows. `input` holds `[t][b][n]`, or one `[b][n]` block
   * that every step sees (`repeated`, the decoder after RepeatVector).
   */
  forward(input: Float32Array, steps: number, batch: number, repeated: boolean): void {
    const u = this.units;
    const g4 = 4 * u;
    const n = this.inputSize;
    const z = this.z;
    const bias = this.bias.value;
    // Input projections of every step at once (one step when the input repeats).
    const projected = repeated ? 1 : steps;
    z.fill(0, 0, projected * batch * g4);
    gemmNT(projected * batch, g4, n, input, 0, this.kernelT, 0, z, 0);
    for (let r = 0; r < projected * batch; r++)
      for (let k = 0; k < g4; k++) z[r * g4 + k] = z[r * g4 + k]! + bias[k]!;
    if (repeated) for (let t = 1; t < steps; t++) z.copyWithin(t * batch * g4, 0, batch * g4);

    const { gates, c, h } = this;
    for (let t = 0; t < steps; t++) {
      const zo = t * batch * g4;
      if (t > 0) gemmNT(batch, g4, u, h, (t - 1) * batch * u, this.recurrentT, 0, z, zo);
      for (let b = 0; b < batch; b++) {
        const row = zo + b * g4;
        const state = (t * batch + b) * u;
        const previous = state - batch * u;
        for (let k = 0; k < u; k++) {
          const i = sigmoid(z[row + k]!);
          const f = sigmoid(z[row + u + k]!);
          const g = Math.tanh(z[row + 2 * u + k]!);
          const o = sigmoid(z[row + 3 * u + k]!);
          gates[row + k] = i;
          gates[row + u + k] = f;
          gates[row + 2 * u + k] = g;
          gates[row + 3 * u + k] = o;
          const cell = (t > 0 ? f * c[previous + k]! : 0) + i * g;
          c[state + k] = cell;
          h[state + k] = o * Math.tanh(cell);
        }
      }
    }
  }

  /**
   * Backpropagation through time. `dh` holds the gradient of the loss with respect to each step's output
   * (`[t][b][u]`, consumed). Accumulates the parameter gradients and writes the gradient with respect to the
   * input into `dInput` (`[t][b][n]`, or `[b][n]` summed over steps when the input repeats), unless null.
   * `scratch` needs `(n + 4u) * steps * batch` values.
   */
  backward(
    input: Float32Array,
    dh: Float32Array,
    steps: number,
    batch: number,
    repeated: boolean,
    dInput: Float32Array | null,
    scratch: Float32Array,
  ): void {
    const u = this.units;
    const g4 = 4 * u;
    const n = this.inputSize;
    const { gates, c, h, z: dz } = this;
    const dc = this.dc.fill(0, 0, batch * u);
    for (let t = steps - 1; t >= 0; t--) {
      const zo = t * batch * g4;
      for (let b = 0; b < batch; b++) {
        const row = zo + b * g4;
        const state = (t * batch + b) * u;
        for (let k = 0; k < u; k++) {
          const i = gates[row + k]!;
          const f = gates[row + u + k]!;
          const g = gates[row + 2 * u + k]!;
          const o = gates[row + 3 * u + k]!;
          const tc = Math.tanh(c[state + k]!);
          const dhk = dh[state + k]!;
          const dck = dc[b * u + k]! + dhk * o * (1 - tc * tc);
          const previous = t > 0 ? c[state - batch * u + k]! : 0;
          dz[row + k] = dck * g * i * (1 - i);
          dz[row + u + k] = dck * previous * f * (1 - f);
          dz[row + 2 * u + k] = dck * i * (1 - g * g);
          dz[row + 3 * u + k] = dhk * tc * o * (1 - o);
          dc[b * u + k] = dck * f;
        }
      }
      // The recurrent path: dh(t-1) += dz(t) · Rᵀ.
      if (t > 0) gemmNT(batch, u, g4, dz, zo, this.recurrent.value, 0, dh, (t - 1) * batch * u);
    }

    const rows = steps * batch;
    const bias = this.bias.grad;
    for (let r = 0; r < rows; r++) for (let k = 0; k < g4; k++) bias[k] = bias[k]! + dz[r * g4 + k]!;

    // dR = Σ_t h(t-1)ᵀ · dz(t), as one product over all steps but the first (h(-1) = 0).
    const later = (steps - 1) * batch;
    const dzT = transpose(dz.subarray(batch * g4, rows * g4), later, g4, scratch.subarray(0, later * g4));
    const hT = transpose(h.subarray(0, later * u), later, u, scratch.subarray(later * g4, later * (g4 + u)));
    gemmNT(u, g4, later, hT, 0, dzT, 0, this.recurrent.grad, 0);

    if (repeated) {
      // The same input at every step: sum dz over the steps first.
      const dzSum = scratch.subarray(0, batch * g4).fill(0);
      for (let t = 0; t < steps; t++)
        for (let r = 0; r < batch * g4; r++) dzSum[r] = dzSum[r]! + dz[t * batch * g4 + r]!;
      const sumT = transpose(dzSum, batch, g4, scratch.subarray(batch * g4, 2 * batch * g4));
      const inT = transpose(input.subarray(0, batch * n), batch, n, scratch.subarray(2 * batch * g4));
      gemmNT(n, g4, batch, inT, 0, sumT, 0, this.kernel.grad, 0);
      if (dInput) {
        dInput.fill(0, 0, batch * n);
        gemmNT(batch, n, g4, dzSum, 0, this.kernel.value, 0, dInput, 0);
      }
      return;
    }
    const allT = transpose(dz.subarray(0, rows * g4), rows, g4, scratch.subarray(0, rows * g4));
    const inT = transpose(input.subarray(0, rows * n), rows, n, scratch.subarray(rows * g4, rows * (g4 + n)));
    gemmNT(n, g4, rows, inT, 0, allT, 0, this.kernel.grad, 0);
    if (dInput) {
      dInput.fill(0, 0, rows * n);
      gemmNT(rows, n, g4, dz, 0, this.kernel.value, 0, dInput, 0);
    }
  }
}

/** Adam as TensorFlow.js applies it (`tf.train.adam(learningRate, beta1, beta2, epsilon)`). */
export interface AdamOptions {
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
}

export const KERAS_ADAM: AdamOptions = { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

/**
 * The reference autoencoder (see `buildAutoencoder`) as plain arrays, trainable a batch at a time on windows
 * of `window` samples, at most `maxBatch` per batch.
 */
export class AutoencoderTrainer {
  private readonly layers: [Layer, Layer, Layer, Layer];
  private readonly denseKernel: Parameter;
  private readonly denseBias: Parameter;
  private readonly window: number;
  private readonly latent: number;
  private readonly maxBatch: number;
  /** The batch and its reconstruction, time-major `[t][b]`. */
  private readonly x: Float32Array;
  private readonly y: Float32Array;
  private readonly dOuter: Float32Array;
  private readonly dInner: Float32Array;
  private readonly dLatent: Float32Array;
  private readonly scratch: Float32Array;
  private step = 0;

  constructor(
    initial: AutoencoderWeights,
    maxBatch: number,
    private readonly adam: AdamOptions = KERAS_ADAM,
  ) {
    const { window } = initial;
    this.window = window;
    this.latent = initial.latent;
    this.maxBatch = maxBatch;
    this.layers = initial.lstm.map(
      (weights) => new Layer(weights, window, maxBatch),
    ) as AutoencoderTrainer['layers'];
    this.denseKernel = new Parameter(Float32Array.from(initial.dense.kernel));
    this.denseBias = new Parameter(Float32Array.from(initial.dense.bias));
    const outer = this.layers[3].units;
    const rows = window * maxBatch;
    this.x = new Float32Array(rows);
    this.y = new Float32Array(rows);
    this.dOuter = new Float32Array(rows * outer);
    this.dInner = new Float32Array(rows * Math.max(this.latent, outer));
    this.dLatent = new Float32Array(maxBatch * this.latent);
    const widest = Math.max(
      ...this.layers.map((layer) => 4 * layer.units + Math.max(layer.inputSize, layer.units)),
    );
    this.scratch = new Float32Array(rows * widest);
  }

  private get parameters(): Parameter[] {
    return [...this.layers.flatMap((layer) => layer.parameters), this.denseKernel, this.denseBias];
  }

  /** Copies windows `indices` of `windows` (back to back, W values each) into the batch, time-major. */
  private load(windows: Float32Array, indices: ArrayLike<number>): number {
    const batch = indices.length;
    if (batch > this.maxBatch) throw new RangeError(`batch of ${batch} windows, more than ${this.maxBatch}`);
    const W = this.window;
    for (let b = 0; b < batch; b++) {
      const source = indices[b]! * W;
      for (let t = 0; t < W; t++) this.x[t * batch + b] = windows[source + t]!;
    }
    return batch;
  }

  /** Forward pass of the loaded batch; returns the sum of squared errors. */
  private forward(batch: number): number {
    const [l1, l2, l3, l4] = this.layers;
    const W = this.window;
    l1.forward(this.x, W, batch, false);
    l2.forward(l1.h, W, batch, false);
    // The decoder sees the latent vector at every step.
    l3.forward(this.latentOf(batch), W, batch, true);
    l4.forward(l3.h, W, batch, false);
    const outer = l4.units;
    const kernel = this.denseKernel.value;
    const bias = this.denseBias.value[0]!;
    let squared = 0;
    for (let r = 0; r < W * batch; r++) {
      let value = bias;
      for (let k = 0; k < outer; k++) value += l4.h[r * outer + k]! * kernel[k]!;
      this.y[r] = value;
      const error = value - this.x[r]!;
      squared += error * error;
    }
    return squared;
  }

  /** The latent vectors `[b][latent]`: the encoder's last output. */
  private latentOf(batch: number): Float32Array {
    const size = batch * this.latent;
    return this.layers[1].h.subarray((this.window - 1) * size, this.window * size);
  }

  /** Mean squared error of windows `indices`, without training. */
  loss(windows: Float32Array, indices: ArrayLike<number>): number {
    const batch = this.load(windows, indices);
    return this.forward(batch) / (batch * this.window);
  }

  /** The loss of windows `indices` and the gradient of every parameter, in Keras's weight order. */
  gradients(windows: Float32Array, indices: ArrayLike<number>): { loss: number; gradients: Float32Array[] } {
    const loss = this.lossAndGradients(windows, indices);
    return { loss, gradients: this.parameters.map((parameter) => Float32Array.from(parameter.grad)) };
  }

  private lossAndGradients(windows: Float32Array, indices: ArrayLike<number>): number {
    const batch = this.load(windows, indices);
    const W = this.window;
    const rows = W * batch;
    const loss = this.forward(batch) / rows;
    for (const parameter of this.parameters) parameter.grad.fill(0);

    const [l1, l2, l3, l4] = this.layers;
    const outer = l4.units;
    const kernel = this.denseKernel.value;
    const dKernel = this.denseKernel.grad;
    let dBias = 0;
    const dh4 = this.dOuter;
    for (let r = 0; r < rows; r++) {
      const dy = (2 * (this.y[r]! - this.x[r]!)) / rows;
      dBias += dy;
      for (let k = 0; k < outer; k++) {
        dKernel[k] = dKernel[k]! + l4.h[r * outer + k]! * dy;
        dh4[r * outer + k] = dy * kernel[k]!;
      }
    }
    this.denseBias.grad[0] = dBias;

    const dh3 = this.dInner;
    l4.backward(l3.h, dh4, W, batch, false, dh3, this.scratch);
    l3.backward(this.latentOf(batch), dh3, W, batch, true, this.dLatent, this.scratch);
    // Only the encoder's last step reaches the latent vector.
    const dh2 = this.dInner.fill(0, 0, rows * this.latent);
    dh2.set(this.dLatent.subarray(0, batch * this.latent), (W - 1) * batch * this.latent);
    const dh1 = this.dOuter;
    l2.backward(l1.h, dh2, W, batch, false, dh1, this.scratch);
    l1.backward(this.x, dh1, W, batch, false, null, this.scratch);
    return loss;
  }

  /** One Adam step on windows `indices`; returns their loss before the step. */
  trainBatch(windows: Float32Array, indices: ArrayLike<number>): number {
    const loss = this.lossAndGradients(windows, indices);
    this.step++;
    const { learningRate, beta1, beta2, epsilon } = this.adam;
    // Float32 like TensorFlow.js's scalars, so that the steps match its own.
    const correction1 = Math.fround(1 - Math.fround(beta1 ** this.step));
    const correction2 = Math.fround(1 - Math.fround(beta2 ** this.step));
    for (const { value, grad, m, v } of this.parameters) {
      for (let i = 0; i < value.length; i++) {
        const g = grad[i]!;
        const mi = beta1 * m[i]! + (1 - beta1) * g;
        const vi = beta2 * v[i]! + (1 - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        value[i] =
          value[i]! - (learningRate * (m[i]! / correction1)) / (Math.sqrt(v[i]! / correction2) + epsilon);
      }
    }
    for (const layer of this.layers) layer.refresh();
    return loss;
  }

  /** The current weights, in the layout `extractWeights` gives. */
  weights(): AutoencoderWeights {
    return {
      window: this.window,
      latent: this.latent,
      lstm: this.layers.map((layer) => ({
        units: layer.units,
        inputSize: layer.inputSize,
        kernel: Float32Array.from(layer.kernel.value),
        recurrentKernel: Float32Array.from(layer.recurrent.value),
        bias: Float32Array.from(layer.bias.value),
      })) as AutoencoderWeights['lstm'],
      dense: {
        kernel: Float32Array.from(this.denseKernel.value),
        bias: Float32Array.from(this.denseBias.value),
      },
    };
  }
}

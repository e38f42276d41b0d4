import * as tf from '@tensorflow/tfjs';
import { createRandom } from '../sim/random.js';

/** Shape of the reference LSTM autoencoder. */
export interface ModelShape {
  /** Window length W in samples. */
  readonly window: number;
  /** Width of the bottleneck LSTM. */
  readonly latent: number;
}

/** Width of the outer LSTM layers; fixed by the reference. */
export const OUTER_UNITS = 64;

/**
 * The reference autoencoder, layer for layer:
 * Input(W,1) → LSTM(64, seq) → LSTM(latent) → RepeatVector(W) → LSTM(latent, seq) → LSTM(64, seq)
 * → TimeDistributed(Dense(1)).
 * Keras defaults are spelled out where TensorFlow.js differs (its recurrent activation is hard sigmoid).
 */
export function buildAutoencoder(shape: ModelShape, seed = 1): tf.Sequential {
  const { window, latent } = shape;
  let next = seed * 7919;
  const recurrentSeeds: number[] = [];
  // Each initialiser gets its own seed so that a run is reproducible and layers still differ. The recurrent
  // kernels start as zeros and are replaced below: tfjs's orthogonal initialiser takes seconds per matrix.
  const init = () => {
    const kernelSeed = next++;
    recurrentSeeds.push(next++);
    return {
      kernelInitializer: tf.initializers.glorotUniform({ seed: kernelSeed }),
      recurrentInitializer: 'zeros' as const,
      unitForgetBias: true,
      activation: 'tanh' as const,
      recurrentActivation: 'sigmoid' as const,
    };
  };
  const model = tf.sequential({ name: 'magwatch_autoencoder' });
  model.add(
    tf.layers.lstm({ units: OUTER_UNITS, returnSequences: true, inputShape: [window, 1], ...init() }),
  );
  model.add(tf.layers.lstm({ units: latent, returnSequences: false, ...init() }));
  model.add(tf.layers.repeatVector({ n: window }));
  model.add(tf.layers.lstm({ units: latent, returnSequences: true, ...init() }));
  model.add(tf.layers.lstm({ units: OUTER_UNITS, returnSequences: true, ...init() }));
  model.add(
    tf.layers.timeDistributed({
      layer: tf.layers.dense({
        units: 1,
        kernelInitializer: tf.initializers.glorotUniform({ seed: next++ }),
      }),
    }),
  );
  [0, 1, 3, 4].forEach((index, i) => {
    const layer = model.layers[index]! as tf.layers.RNN & { cell: { recurrentInitializer: unknown } };
    const [kernel, recurrent, bias] = layer.getWeights();
    const [units, fourUnits] = recurrent!.shape as [number, number];
    const values = orthogonalMatrix(units, fourUnits, recurrentSeeds[i]!);
    const orthogonal = tf.tensor2d(values, [units, fourUnits]);
    layer.setWeights([kernel!, orthogonal, bias!]);
    orthogonal.dispose();
    // What the saved topology reports, so that it reads as the Keras model it is.
    layer.cell.recurrentInitializer = tf.initializers.orthogonal({ seed: recurrentSeeds[i]! });
  });
  return model;
}

/**
 * Keras's orthogonal initialiser (gain 1): the Q of a QR decomposition of a standard normal matrix of shape
 * (max(rows, cols), min(rows, cols)), with the signs of R's diagonal folded into Q, transposed when
 * rows < cols. Modified Gram-Schmidt yields exactly that Q (the unique one with a positive R diagonal).
 */
export function orthogonalMatrix(rows: number, cols: number, seed: number): Float32Array {
  const m = Math.max(rows, cols);
  const n = Math.min(rows, cols);
  const random = createRandom(seed, 'orthogonal');
  // Column-major: column j is q[j*m .. j*m+m).
  const q = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) q[j * m + i] = random.normal();
  for (let j = 0; j < n; j++) {
    const column = q.subarray(j * m, (j + 1) * m);
    for (let k = 0; k < j; k++) {
      const previous = q.subarray(k * m, (k + 1) * m);
      let dot = 0;
      for (let i = 0; i < m; i++) dot += previous[i]! * column[i]!;
      for (let i = 0; i < m; i++) column[i]! -= dot * previous[i]!;
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += column[i]! * column[i]!;
    norm = Math.sqrt(norm);
    for (let i = 0; i < m; i++) column[i]! /= norm;
  }
  // Row-major (rows, cols) output: q is (m, n); transpose it when rows < cols.
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] = rows >= cols ? q[c * m + r]! : q[r * m + c]!;
  }
  return out;
}

/** Raw weights of one LSTM layer in Keras layout: kernel [in, 4u], recurrent [u, 4u], bias [4u]; gates i, f, c, o. */
export interface LstmWeights {
  readonly units: number;
  readonly inputSize: number;
  readonly kernel: Float32Array;
  readonly recurrentKernel: Float32Array;
  readonly bias: Float32Array;
}

/** All weights of one autoencoder, in layer order, independent of any engine. */
export interface AutoencoderWeights {
  readonly window: number;
  readonly latent: number;
  readonly lstm: [LstmWeights, LstmWeights, LstmWeights, LstmWeights];
  /** Dense(1) kernel [64] and bias [1]. */
  readonly dense: { readonly kernel: Float32Array; readonly bias: Float32Array };
}

/** Reads a trained TensorFlow.js autoencoder's weights into plain arrays (Keras layout). */
export function extractWeights(model: tf.LayersModel): AutoencoderWeights {
  const layers = model.layers;
  const lstm = [0, 1, 3, 4].map((index) => {
    const [kernel, recurrentKernel, bias] = layers[index]!.getWeights();
    const [inputSize, fourUnits] = kernel!.shape as [number, number];
    return {
      units: fourUnits / 4,
      inputSize,
      kernel: kernel!.dataSync() as Float32Array,
      recurrentKernel: recurrentKernel!.dataSync() as Float32Array,
      bias: bias!.dataSync() as Float32Array,
    };
  }) as AutoencoderWeights['lstm'];
  const [denseKernel, denseBias] = layers[5]!.getWeights();
  const window = (model.inputs[0]!.shape[1] as number) ?? 0;
  return {
    window,
    latent: lstm[1].units,
    lstm,
    dense: { kernel: denseKernel!.dataSync() as Float32Array, bias: denseBias!.dataSync() as Float32Array },
  };
}

/** Writes weights in the layout `extractWeights` gives back into a model of the same shape. */
export function loadWeights(model: tf.LayersModel, weights: AutoencoderWeights): void {
  const layers = model.layers;
  [0, 1, 3, 4].forEach((index, i) => {
    const { units, inputSize, kernel, recurrentKernel, bias } = weights.lstm[i]!;
    const tensors = [
      tf.tensor2d(kernel, [inputSize, 4 * units]),
      tf.tensor2d(recurrentKernel, [units, 4 * units]),
      tf.tensor1d(bias),
    ];
    layers[index]!.setWeights(tensors);
    tf.dispose(tensors);
  });
  const dense = [
    tf.tensor2d(weights.dense.kernel, [weights.dense.kernel.length, 1]),
    tf.tensor1d(weights.dense.bias),
  ];
  layers[5]!.setWeights(dense);
  tf.dispose(dense);
}

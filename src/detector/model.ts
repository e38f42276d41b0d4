import * as tf from '@tensorflow/tfjs';

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
  // Each initialiser gets its own seed so that a run is reproducible and layers still differ.
  const init = () => ({
    kernelInitializer: tf.initializers.glorotUniform({ seed: next++ }),
    recurrentInitializer: tf.initializers.orthogonal({ seed: next++ }),
    unitForgetBias: true,
    activation: 'tanh' as const,
    recurrentActivation: 'sigmoid' as const,
  });
  const model = tf.sequential({ name: 'magwatch_autoencoder' });
  model.add(tf.layers.lstm({ units: OUTER_UNITS, returnSequences: true, inputShape: [window, 1], ...init() }));
  model.add(tf.layers.lstm({ units: latent, returnSequences: false, ...init() }));
  model.add(tf.layers.repeatVector({ n: window }));
  model.add(tf.layers.lstm({ units: latent, returnSequences: true, ...init() }));
  model.add(tf.layers.lstm({ units: OUTER_UNITS, returnSequences: true, ...init() }));
  model.add(
    tf.layers.timeDistributed({
      layer: tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: next++ }) }),
    }),
  );
  return model;
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

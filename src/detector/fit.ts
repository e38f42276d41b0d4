import * as tf from '@tensorflow/tfjs';
import { createRandom, type Random } from '../sim/random.js';
import { buildAutoencoder, type ModelShape } from './model.js';

export interface FitOptions {
  readonly epochs: number;
  readonly batchSize: number;
  /** Fraction of windows, taken from the end before shuffling as Keras does, used for validation only. */
  readonly validationSplit: number;
  readonly seed: number;
}

export interface EpochReport {
  readonly epoch: number;
  readonly loss: number;
  readonly valLoss: number | undefined;
}

export interface FitResult {
  readonly model: tf.LayersModel;
  readonly loss: number[];
  readonly valLoss: number[];
  /** Reconstruction RMSE of every window, training and validation ones alike, as the reference computes it. */
  readonly rmse: Float32Array;
}

function shuffled(count: number, random: Random): Int32Array {
  const order = Int32Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/**
 * Trains one reference autoencoder on `count` windows (`windows` holds them back to back) with Adam and MSE,
 * the Keras way: the last `validationSplit` of the windows validate, the rest are reshuffled every epoch.
 * Epochs run one `fit` call each so that the shuffle is seeded and progress is reported per epoch.
 */
export async function fitAutoencoder(
  windows: Float32Array,
  shape: ModelShape,
  options: FitOptions,
  onEpoch?: (report: EpochReport) => void,
): Promise<FitResult> {
  const { window } = shape;
  const count = windows.length / window;
  const splitAt = Math.floor(count * (1 - options.validationSplit));
  const model = buildAutoencoder(shape, options.seed);
  model.compile({ optimizer: tf.train.adam(0.001, 0.9, 0.999, 1e-7), loss: 'meanSquaredError' });

  // Seeded, unlike Math.random, so that the same --seed trains the same model.
  const random = createRandom(options.seed, 'shuffle');
  const validation =
    splitAt < count
      ? tf.tensor3d(windows.subarray(splitAt * window), [count - splitAt, window, 1])
      : undefined;
  const loss: number[] = [];
  const valLoss: number[] = [];
  const epochData = new Float32Array(splitAt * window);
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    const order = shuffled(splitAt, random);
    order.forEach((source, target) => {
      epochData.set(windows.subarray(source * window, (source + 1) * window), target * window);
    });
    const x = tf.tensor3d(epochData, [splitAt, window, 1]);
    const history = await model.fit(x, x, {
      epochs: 1,
      batchSize: options.batchSize,
      shuffle: false,
      verbose: 0,
      ...(validation ? { validationData: [validation, validation] as [tf.Tensor, tf.Tensor] } : {}),
    });
    x.dispose();
    loss.push(history.history.loss![0] as number);
    const val = history.history.val_loss?.[0] as number | undefined;
    if (val !== undefined) valLoss.push(val);
    onEpoch?.({ epoch: epoch + 1, loss: loss[epoch]!, valLoss: val });
  }
  validation?.dispose();
  return { model, loss, valLoss, rmse: await predictRmse(model, windows, window) };
}

/** RMSE of every window against the layers model's reconstruction, in chunks to bound memory. */
export async function predictRmse(
  model: tf.LayersModel,
  windows: Float32Array,
  window: number,
): Promise<Float32Array> {
  const count = windows.length / window;
  const rmse = new Float32Array(count);
  const chunk = 256;
  for (let first = 0; first < count; first += chunk) {
    const n = Math.min(chunk, count - first);
    const scores = tf.tidy(() => {
      const x = tf.tensor3d(windows.subarray(first * window, (first + n) * window), [n, window, 1]);
      const y = model.predict(x) as tf.Tensor;
      return tf.sqrt(tf.mean(tf.square(tf.sub(x, y)), [1, 2]));
    });
    rmse.set((await scores.data()) as Float32Array, first);
    scores.dispose();
  }
  return rmse;
}

import * as tf from '@tensorflow/tfjs';
import { createRandom, type Random } from '../sim/random.js';
import { AutoencoderTrainer } from './backprop.js';
import { buildAutoencoder, extractWeights, loadWeights, type ModelShape } from './model.js';

/**
 * Who runs the training pass: `builtin`, magwatch's own on typed arrays (`backprop.ts`); `tfjs`,
 * TensorFlow.js's `model.fit`. Both do the same arithmetic; `auto` takes `tfjs` where its native backend
 * runs (libtensorflow, perhaps on a GPU) and `builtin` otherwise, 1.8-2.4 times faster than `fit` on wasm.
 */
export type Trainer = 'auto' | 'builtin' | 'tfjs';

export interface FitOptions {
  readonly epochs: number;
  readonly batchSize: number;
  /** Fraction of windows, taken from the end before shuffling as Keras does, used for validation only. */
  readonly validationSplit: number;
  readonly seed: number;
  /** Default `auto`. */
  readonly trainer?: Trainer;
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
  /** `builtin`, or the TensorFlow.js backend `fit` ran on. */
  readonly trainedWith: string;
}

function shuffled(count: number, random: Random): Int32Array {
  const order = Int32Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}

/** What both training passes share: the split, the seeded shuffle of every epoch, the loss curves. */
interface Plan {
  readonly windows: Float32Array;
  readonly window: number;
  readonly count: number;
  /** Windows `[0, splitAt)` train, the rest validate. */
  readonly splitAt: number;
  readonly options: FitOptions;
  /** The training windows' order in each epoch. */
  order(): Int32Array;
}

interface Curves {
  readonly loss: number[];
  readonly valLoss: number[];
}

/** Resolves `auto`: `fit` where TensorFlow.js runs natively, the built-in pass elsewhere. */
export function resolveTrainer(trainer: Trainer | undefined, backend: string): 'builtin' | 'tfjs' {
  if (trainer === 'builtin' || trainer === 'tfjs') return trainer;
  return backend === 'tensorflow' ? 'tfjs' : 'builtin';
}

/**
 * Trains one reference autoencoder on `count` windows (`windows` holds them back to back) with Adam and MSE,
 * the Keras way: the last `validationSplit` of the windows validate, the rest are reshuffled every epoch by a
 * seeded generator, so that the same --seed trains the same model.
 */
export async function fitAutoencoder(
  windows: Float32Array,
  shape: ModelShape,
  options: FitOptions,
  onEpoch?: (report: EpochReport) => void,
): Promise<FitResult> {
  const { window } = shape;
  const count = windows.length / window;
  const random = createRandom(options.seed, 'shuffle');
  const splitAt = Math.floor(count * (1 - options.validationSplit));
  const plan: Plan = { windows, window, count, splitAt, options, order: () => shuffled(splitAt, random) };
  const model = buildAutoencoder(shape, options.seed);
  const trainer = resolveTrainer(options.trainer, tf.getBackend());
  const curves =
    trainer === 'tfjs' ? await fitLayers(model, plan, onEpoch) : await fitBuiltin(model, plan, onEpoch);
  return {
    model,
    ...curves,
    rmse: await predictRmse(model, windows, window),
    trainedWith: trainer === 'tfjs' ? tf.getBackend() : 'builtin',
  };
}

/** `model.fit`, one call per epoch so that the shuffle is seeded and progress is reported per epoch. */
async function fitLayers(
  model: tf.LayersModel,
  plan: Plan,
  onEpoch?: (report: EpochReport) => void,
): Promise<Curves> {
  const { windows, window, count, splitAt, options } = plan;
  model.compile({ optimizer: tf.train.adam(0.001, 0.9, 0.999, 1e-7), loss: 'meanSquaredError' });
  const validation =
    splitAt < count
      ? tf.tensor3d(windows.subarray(splitAt * window), [count - splitAt, window, 1])
      : undefined;
  const loss: number[] = [];
  const valLoss: number[] = [];
  const epochData = new Float32Array(splitAt * window);
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    plan.order().forEach((source, target) => {
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
  return { loss, valLoss };
}

/**
 * The built-in pass over the same batches as `fit` (epoch loss: the batches' losses weighted by their sizes,
 * as Keras logs it), with the trained weights written back into `model`.
 */
async function fitBuiltin(
  model: tf.LayersModel,
  plan: Plan,
  onEpoch?: (report: EpochReport) => void,
): Promise<Curves> {
  const { windows, count, splitAt, options } = plan;
  const { batchSize } = options;
  const trainer = new AutoencoderTrainer(extractWeights(model), Math.min(batchSize, count));
  const validation = Int32Array.from({ length: count - splitAt }, (_, i) => splitAt + i);
  const loss: number[] = [];
  const valLoss: number[] = [];
  const meanOver = (indices: Int32Array, lossOf: (batch: Int32Array) => number) => {
    let sum = 0;
    for (let first = 0; first < indices.length; first += batchSize) {
      const batch = indices.subarray(first, first + batchSize);
      sum += lossOf(batch) * batch.length;
    }
    return sum / indices.length;
  };
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    loss.push(meanOver(plan.order(), (batch) => trainer.trainBatch(windows, batch)));
    const val =
      validation.length > 0 ? meanOver(validation, (batch) => trainer.loss(windows, batch)) : undefined;
    if (val !== undefined) valLoss.push(val);
    onEpoch?.({ epoch: epoch + 1, loss: loss[epoch]!, valLoss: val });
    // An epoch is one long computation: let signals and progress through between epochs.
    await new Promise((resolve) => setImmediate(resolve));
  }
  loadWeights(model, trainer.weights());
  return { loss, valLoss };
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

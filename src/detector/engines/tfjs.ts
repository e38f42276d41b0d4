import * as tf from '@tensorflow/tfjs';
import { MagwatchError } from '../../errors.js';
import { type BackendAttempt, type BackendLoader, selectTfBackend } from '../backend.js';
import { type Bundle, loadLayersModel } from '../bundle.js';
import { checkBatchShape, type Engine, type WindowBatch, windowRmse } from '../engine.js';
import { extractWeights } from '../model.js';
import { type ProductStrategy, productStrategyFor, StackedAutoencoder } from './stacked.js';

/**
 * `layers`: the reference path, each model's `predict` on its own windows.
 * `stacked`: a hand-written forward pass on the models' regrouped weights, the models of a batch stacked,
 * merged block-diagonally or run one by one, whichever the backend runs fastest (src/detector/engines/stacked.ts).
 */
export type TfjsMode = 'layers' | 'stacked';

export interface TfjsEngineOptions {
  /** TensorFlow.js backend to try first (`tensorflow`, `wasm`, `cpu`); default: the fastest that works. */
  backend?: string;
  /** Default `stacked`. */
  mode?: TfjsMode;
  /** Stacked mode only; default: the fastest for the backend (see `productStrategyFor`). */
  products?: ProductStrategy;
  /** Replaces how backend packages are imported; for checking the fallback order. */
  loader?: BackendLoader;
}

export interface TfjsEngine extends Engine {
  readonly name: 'tfjs';
  readonly mode: TfjsMode;
  /** Backends tried before (and including) the one in use, with why each failed. */
  readonly tried: readonly BackendAttempt[];
}

/**
 * Maps each window of a batch to the index of its channel's model in `bundle.models`, and checks the
 * batch's size; throws MagwatchError for a channel the bundle does not know.
 */
export function modelIndices(bundle: Bundle, batch: WindowBatch): Int32Array {
  checkBatchShape(batch, bundle.manifest.window);
  const index = new Map(bundle.models.map((model, i) => [model, i]));
  const out = new Int32Array(batch.channels.length);
  batch.channels.forEach((channel, i) => {
    const entry = bundle.manifest.channels[channel];
    if (!entry) {
      throw new MagwatchError(
        'MW_ENGINE_UNKNOWN_CHANNEL',
        `channel '${channel}' is not in the model bundle ${bundle.dir}; train a bundle that includes it or drop it from the input`,
      );
    }
    out[i] = index.get(entry.model)!;
  });
  return out;
}

/** A TensorFlow.js engine for a bundle's layers-format models, on the fastest backend that works here. */
export async function createTfjsEngine(bundle: Bundle, options: TfjsEngineOptions = {}): Promise<TfjsEngine> {
  const mode = options.mode ?? 'stacked';
  const { backend, tried } = await selectTfBackend(options.backend, options.loader);
  const layers = await Promise.all(bundle.models.map((model) => loadLayersModel(bundle.dir, model)));
  const window = bundle.manifest.window;
  for (const [i, model] of layers.entries()) {
    const shape = model.inputs[0]!.shape;
    if (shape[1] !== window) {
      for (const m of layers) m.dispose();
      throw new MagwatchError(
        'MW_BUNDLE_MISMATCH',
        `${bundle.dir}: model '${bundle.models[i]}' takes windows of ${shape[1]} samples but manifest.json says ${window}; retrain the bundle`,
      );
    }
  }
  // Engines share TensorFlow.js's one active backend; switch back if another engine changed it meanwhile.
  const useBackend = async () => {
    if (tf.getBackend() !== backend) await tf.setBackend(backend);
  };

  let reconstructIndexed: (modelOf: Int32Array, data: Float32Array) => Promise<Float32Array>;
  let release: () => void;
  if (mode === 'stacked') {
    const stacked = new StackedAutoencoder(
      layers.map((model) => extractWeights(model)),
      options.products ?? productStrategyFor(backend),
    );
    for (const model of layers) model.dispose();
    reconstructIndexed = (modelOf, data) => stacked.reconstruct(modelOf, data);
    release = () => stacked.dispose();
  } else {
    reconstructIndexed = (modelOf, data) => predictByModel(layers, modelOf, data, window);
    release = () => {
      for (const model of layers) model.dispose();
    };
  }

  let disposed = false;
  const reconstruct = async (batch: WindowBatch) => {
    if (disposed) throw new Error('the tfjs engine has been disposed');
    const modelOf = modelIndices(bundle, batch);
    await useBackend();
    return reconstructIndexed(modelOf, batch.data);
  };
  return {
    name: 'tfjs',
    backend,
    mode,
    tried,
    reconstruct,
    async score(batch) {
      return windowRmse(batch.data, await reconstruct(batch), window);
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      release();
    },
  };
}

/** The reference path: each model predicts its own windows in one sub-batch; results return in batch order. */
async function predictByModel(
  models: readonly tf.LayersModel[],
  modelOf: Int32Array,
  data: Float32Array,
  window: number,
): Promise<Float32Array> {
  const out = new Float32Array(data.length);
  for (const [m, model] of models.entries()) {
    const members: number[] = [];
    modelOf.forEach((owner, i) => {
      if (owner === m) members.push(i);
    });
    if (members.length === 0) continue;
    const input = new Float32Array(members.length * window);
    for (const [k, i] of members.entries())
      input.set(data.subarray(i * window, (i + 1) * window), k * window);
    const x = tf.tensor3d(input, [members.length, window, 1]);
    const y = model.predict(x, { batchSize: members.length }) as tf.Tensor;
    const values = (await y.data()) as Float32Array;
    x.dispose();
    y.dispose();
    for (const [k, i] of members.entries())
      out.set(values.subarray(k * window, (k + 1) * window), i * window);
  }
  return out;
}

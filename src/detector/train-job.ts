import { saveLayersModel } from './bundle.js';
import { type EpochReport, type FitOptions, fitAutoencoder } from './fit.js';
import type { ModelShape } from './model.js';

/** One model to train: the unit of work handed to a training worker. */
export interface TrainJob {
  readonly model: string;
  readonly windows: Float32Array;
  readonly shape: ModelShape;
  readonly fit: FitOptions;
  /** Bundle directory (staging) the trained model is saved into. */
  readonly bundleDir: string;
}

export interface TrainJobResult {
  readonly model: string;
  readonly loss: number[];
  readonly valLoss: number[];
  readonly rmse: Float32Array;
  readonly seconds: number;
  /** `builtin`, or the TensorFlow.js backend `fit` ran on. */
  readonly trainedWith: string;
}

/** Trains and saves one model; runs in a worker thread or in-process alike. */
export async function runTrainJob(
  job: TrainJob,
  onEpoch: (report: EpochReport) => void,
): Promise<TrainJobResult> {
  const started = performance.now();
  const result = await fitAutoencoder(job.windows, job.shape, job.fit, onEpoch);
  await saveLayersModel(job.bundleDir, job.model, result.model);
  result.model.dispose();
  return {
    model: job.model,
    loss: result.loss,
    valLoss: result.valLoss,
    rmse: result.rmse,
    trainedWith: result.trainedWith,
    seconds: (performance.now() - started) / 1000,
  };
}

import { rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { MagwatchError } from '../errors.js';
import { groupOf, parseChannel, type WideTable } from '../ingest/table.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  commitStaging,
  type Manifest,
  type Scalers,
  type Thresholds,
  writeBundleJson,
} from './bundle.js';
import { concatFloat32 } from './engine.js';
import type { EpochReport, Trainer } from './fit.js';
import {
  applyScaler,
  fitScaler,
  gatherWindows,
  madThreshold,
  quantile,
  subtractWindowMeans,
  type VoteRule,
  type WindowPreprocess,
  windowStarts,
} from './reference.js';
import { useTrainingBackend } from './train-backend.js';
import { runTrainJob, type TrainJob, type TrainJobResult } from './train-job.js';

export interface TrainOptions {
  /** Window length W in samples (reference: 64). */
  readonly window: number;
  /** Samples between window starts (reference: W). */
  readonly step: number;
  readonly latent: number;
  readonly epochs: number;
  readonly batchSize: number;
  /** Threshold = median + k * MAD of the training RMSE (reference: 6). */
  readonly k: number;
  readonly seed: number;
  /** One model for all channels instead of one per channel. */
  readonly shared: boolean;
  readonly validationSplit: number;
  readonly vote: VoteRule;
  /**
   * Window preprocessing before fitting and scoring; `none` is the reference. `window-mean` is recorded in
   * the manifest, so that offline detection and the live batcher do the same.
   */
  readonly preprocess?: WindowPreprocess;
  /** The training pass (`fit.ts`); default `auto`: the built-in one unless TensorFlow.js runs natively. */
  readonly trainer?: Trainer;
  /** Worker threads; 0 trains in this thread. Default: `trainingWorkers` for the models and cores. */
  readonly workers?: number;
  /** Names of the input files, recorded in training.json and error messages. */
  readonly inputs: readonly string[];
}

export const TRAIN_DEFAULTS = {
  window: 64,
  latent: 32,
  epochs: 10,
  batchSize: 64,
  k: 6,
  seed: 1,
  shared: false,
  validationSplit: 0.05,
  vote: { minChannels: 5 },
  // The one default beyond the reference: the quality suite chose it (docs/quality.md); `none` is the reference.
  preprocess: 'window-mean',
} as const satisfies Partial<TrainOptions>;

export interface TrainHooks {
  /** A model started (first epoch pending). */
  onStart?(model: string, channels: readonly string[]): void;
  onEpoch?(model: string, report: EpochReport): void;
  onModelDone?(model: string, seconds: number): void;
}

export interface TrainSummary {
  readonly dir: string;
  readonly channels: number;
  readonly models: number;
  readonly samples: number;
  readonly windowsPerChannel: number;
  readonly seconds: number;
  readonly backend: string;
  readonly workers: number;
}

/** Model names become directory names: keep them to a safe alphabet and unique. */
function modelNames(channels: readonly string[]): string[] {
  const used = new Set<string>();
  return channels.map((channel) => {
    const base = channel.replace(/[^A-Za-z0-9_.-]/g, '_');
    let name = base;
    for (let n = 2; used.has(name); n++) name = `${base}_${n}`;
    used.add(name);
    return name;
  });
}

/**
 * Fits scalers, trains the autoencoder(s), computes the MAD thresholds and writes a complete bundle to `out`.
 * Everything is written to a staging directory beside `out` first, so a failed run leaves `out` untouched.
 */
export async function trainBundle(
  table: WideTable,
  out: string,
  options: TrainOptions,
  hooks: TrainHooks = {},
): Promise<TrainSummary> {
  const started = performance.now();
  const { window, step } = options;
  const samples = table.timestamps.length;
  const inputs = options.inputs.join(', ');
  if (samples < window) {
    throw new MagwatchError(
      'MW_TRAIN_TOO_SHORT',
      `${inputs}: ${samples} samples, fewer than one window of ${window}; give more data or a smaller --window`,
    );
  }
  const starts = windowStarts(samples, window, step);
  if (starts.length < 2) {
    throw new MagwatchError(
      'MW_TRAIN_TOO_SHORT',
      `${inputs}: ${starts.length} window of ${window} samples; training needs at least 2 (one validates), give more data`,
    );
  }

  const scalers: Scalers = {};
  const perChannelWindows = table.channels.map((channel, c) => {
    const scaler = fitScaler(table.values[c]!);
    scalers[channel] = scaler;
    const windows = gatherWindows(applyScaler(table.values[c]!, scaler), starts, window);
    return options.preprocess === 'window-mean' ? subtractWindowMeans(windows, window) : windows;
  });

  const names = options.shared ? table.channels.map(() => 'shared') : modelNames(table.channels);
  const staging = join(dirname(out), `.${basename(out)}.staging-${process.pid}`);
  const shape = { window, latent: options.latent };
  const fit = {
    epochs: options.epochs,
    batchSize: options.batchSize,
    validationSplit: options.validationSplit,
    seed: options.seed,
    ...(options.trainer === undefined ? {} : { trainer: options.trainer }),
  };
  const jobs: TrainJob[] = options.shared
    ? [{ model: 'shared', windows: concatFloat32(perChannelWindows), shape, fit, bundleDir: staging }]
    : table.channels.map((_, c) => ({
        model: names[c]!,
        windows: perChannelWindows[c]!,
        shape,
        fit: { ...fit, seed: options.seed + c },
        bundleDir: staging,
      }));

  try {
    await rm(staging, { recursive: true, force: true });
    const workers =
      options.workers === undefined
        ? trainingWorkers(jobs.length, availableParallelism())
        : Math.min(options.workers, jobs.length);
    for (const job of jobs) {
      hooks.onStart?.(
        job.model,
        options.shared ? table.channels : [table.channels[names.indexOf(job.model)]!],
      );
    }
    const { results, backend } = await runJobs(jobs, workers, hooks);

    const thresholds: Thresholds = {};
    const training: Record<string, unknown> = {};
    const channels: Manifest['channels'] = {};
    table.channels.forEach((channel, c) => {
      const result = results.get(names[c]!)!;
      const rmse = options.shared
        ? result.rmse.subarray(c * starts.length, (c + 1) * starts.length)
        : result.rmse;
      thresholds[channel] = madThreshold(rmse, options.k);
      const { sensor, component } = parseChannel(channel);
      channels[channel] = { model: names[c]!, sensor, component, group: groupOf(sensor) };
      training[channel] = {
        model: names[c],
        samples,
        windows: starts.length,
        loss: result.loss,
        valLoss: result.valLoss,
        seconds: Number(result.seconds.toFixed(2)),
        rmseQuantiles: Object.fromEntries(
          [0, 0.5, 0.9, 0.99, 1].map((q) => [
            q === 0 ? 'min' : q === 1 ? 'max' : `p${q * 100}`,
            quantile(rmse, q),
          ]),
        ),
      };
    });

    const manifest: Manifest = {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      window,
      step,
      latent: options.latent,
      k: options.k,
      vote: options.vote,
      channels,
      // Only written when it differs from the reference, so reference bundles stay as they were.
      ...(options.preprocess === 'window-mean' ? { preprocess: 'window-mean' as const } : {}),
      ...cadenceOf(table.timestamps),
      createdAt: new Date().toISOString(),
      training: {
        inputs: options.inputs,
        from: new Date(table.timestamps[0]!).toISOString(),
        to: new Date(table.timestamps[samples - 1]!).toISOString(),
        epochs: options.epochs,
        batchSize: options.batchSize,
        validationSplit: options.validationSplit,
        seed: options.seed,
        shared: options.shared,
        backend,
      },
    };
    await writeBundleJson(staging, { manifest, scalers, thresholds, training });
    await commitStaging(staging, out);
    return {
      dir: out,
      channels: table.channels.length,
      models: jobs.length,
      samples,
      windowsPerChannel: starts.length,
      seconds: (performance.now() - started) / 1000,
      backend,
      workers,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Worker threads for `models` equal training jobs on `cores`: the count, from one per core up to two per core,
 * that finishes soonest when the system shares the cores fairly among the workers. One per core leaves cores
 * idle while the last round runs whenever the models do not divide evenly: 9 models on 2 cores train as 5 + 4,
 * at best 1.8 times one core, where 3 workers train 3 rounds of 3 on both cores, at best 2 times.
 */
export function trainingWorkers(models: number, cores: number): number {
  const lowest = Math.max(1, Math.min(cores, models));
  let best = lowest;
  let bestTime = Number.POSITIVE_INFINITY;
  for (let workers = lowest; workers <= Math.min(models, 2 * cores); workers++) {
    const time = Math.ceil(models / workers) * Math.max(1, workers / cores);
    if (time < bestTime - 1e-9) {
      best = workers;
      bestTime = time;
    }
  }
  return best;
}

/** Runs the jobs on a pool of worker threads (or in this thread when `workers` is 0). */
async function runJobs(
  jobs: readonly TrainJob[],
  workers: number,
  hooks: TrainHooks,
): Promise<{ results: Map<string, TrainJobResult>; backend: string }> {
  const results = new Map<string, TrainJobResult>();
  // Compiled code trains in worker threads; from TypeScript sources (tests) there is no worker file to start.
  const inProcess = workers <= 1 || import.meta.url.endsWith('.ts');
  let backend = 'unknown';
  if (inProcess) {
    await useTrainingBackend();
    for (const job of jobs) {
      const result = await runTrainJob(job, (report) => hooks.onEpoch?.(job.model, report));
      results.set(job.model, result);
      backend = result.trainedWith;
      hooks.onModelDone?.(job.model, result.seconds);
    }
    return { results, backend };
  }

  const queue = [...jobs];
  const pool: Worker[] = [];
  const runWorker = () =>
    new Promise<void>((resolve, reject) => {
      const worker = new Worker(new URL('./train-worker.js', import.meta.url));
      pool.push(worker);
      const next = () => {
        const job = queue.shift();
        if (job) worker.postMessage(job);
        else void worker.terminate().then(() => resolve());
      };
      worker.on('message', (message) => {
        if (message.type === 'epoch') hooks.onEpoch?.(message.model, message);
        else if (message.type === 'done') {
          backend = message.result.trainedWith;
          results.set(message.result.model, message.result);
          hooks.onModelDone?.(message.result.model, message.result.seconds);
          next();
        } else if (message.type === 'error') {
          void worker.terminate();
          reject(
            new MagwatchError(
              'MW_TRAIN_FAILED',
              `training model '${message.model}' failed: ${message.message}`,
            ),
          );
        }
      });
      worker.on('error', reject);
      next();
    });
  try {
    await Promise.all(Array.from({ length: workers }, runWorker));
  } catch (error) {
    await Promise.all(pool.map((worker) => worker.terminate()));
    throw error;
  }
  return { results, backend };
}

/** `{ cadenceMs }`: the median interval between consecutive timestamps, or nothing when there is none. */
function cadenceOf(timestamps: ArrayLike<number>): { cadenceMs?: number } {
  const intervals = new Float64Array(Math.max(0, timestamps.length - 1));
  for (let i = 1; i < timestamps.length; i++) intervals[i - 1] = timestamps[i]! - timestamps[i - 1]!;
  const cadenceMs = quantile(intervals, 0.5);
  return cadenceMs > 0 ? { cadenceMs } : {};
}

import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadBundle } from '../detector/bundle.js';
import { heldOutThresholds, sliceTable } from '../detector/detect.js';
import { createEngine } from '../detector/engines/index.js';
import { exportBundleOnnx } from '../detector/onnx/export.js';
import { TRAIN_DEFAULTS, trainBundle } from '../detector/train.js';
import { MagwatchError } from '../errors.js';
import { readInputs } from '../ingest/files.js';
import type { WideTable } from '../ingest/table.js';
import { choice, integer, number, timestamp } from './options.js';
import { trainProgress } from './progress.js';

/** Replaces the training thresholds of a finished bundle with thresholds from held-out data. */
async function useHeldOutThresholds(dir: string, heldOut: WideTable, k: number): Promise<void> {
  const bundle = await loadBundle(dir);
  const engine = await createEngine(bundle, {});
  try {
    const thresholds = await heldOutThresholds(heldOut, bundle, engine, k);
    const manifest = {
      ...bundle.manifest,
      thresholds: { from: 'held-out', samples: heldOut.timestamps.length },
    };
    await writeJsonAtomically(join(dir, 'thresholds.json'), thresholds);
    await writeJsonAtomically(join(dir, 'manifest.json'), manifest);
  } catch (error) {
    // A bundle whose thresholds are not what was asked for is worse than none.
    await rm(dir, { recursive: true, force: true });
    throw error;
  } finally {
    await engine.dispose();
  }
}

async function writeJsonAtomically(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.partial`, `${JSON.stringify(value, null, 2)}\n`);
  await rename(`${path}.partial`, path);
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('fit scalers, train the LSTM autoencoder(s), compute thresholds and write a model bundle')
    .requiredOption('--input <files...>', 'long CSV, wide CSV or IAGA-2002 files (gzip too)')
    .requiredOption('--out <dir>', 'model bundle directory to write (replaced when complete)')
    .option('--from <time>', 'first sample time to use (ISO 8601)', timestamp('--from'))
    .option('--to <time>', 'end of the time range, exclusive (ISO 8601)', timestamp('--to'))
    .option('--window <n>', 'window length W in samples', integer('--window', 2), TRAIN_DEFAULTS.window)
    .option('--step <n>', 'samples between window starts (default: W)', integer('--step', 1))
    .option('--latent <n>', 'bottleneck LSTM width', integer('--latent', 1), TRAIN_DEFAULTS.latent)
    .option('--epochs <n>', 'training epochs', integer('--epochs', 1), TRAIN_DEFAULTS.epochs)
    .option('--batch-size <n>', 'training batch size', integer('--batch-size', 1), TRAIN_DEFAULTS.batchSize)
    .option(
      '--k <k>',
      'threshold = median + k * MAD',
      number('--k', (k) => k >= 0, 'a number >= 0'),
      TRAIN_DEFAULTS.k,
    )
    .option('--seed <n>', 'random seed (weights and shuffling)', integer('--seed', 0), TRAIN_DEFAULTS.seed)
    .option('--shared', 'one model for all channels instead of one per channel', false)
    .option('--min-channels <n>', 'votes needed, absolute (default 5)', integer('--min-channels', 1))
    .option(
      '--vote-fraction <f>',
      'votes needed as a fraction of the channels, rounded up',
      number('--vote-fraction', (f) => f > 0 && f <= 1, 'a number in (0, 1]'),
    )
    .option(
      '--preprocess <how>',
      "window-mean: remove each window's mean, so the daily variation is not an anomaly; none: the reference",
      choice('--preprocess', ['none', 'window-mean'] as const),
      TRAIN_DEFAULTS.preprocess,
    )
    .option(
      '--holdout <fraction>',
      'keep this last fraction of the input out of training and take the thresholds from it (default 0: the reference)',
      number('--holdout', (f) => f >= 0 && f < 1, 'a number in [0, 1)'),
      0,
    )
    .option(
      '--workers <n>',
      'training worker threads (default: one per core, or a few more when that finishes sooner)',
      integer('--workers', 0),
    )
    .option(
      '--trainer <which>',
      "builtin: magwatch's own training pass; tfjs: TensorFlow.js model.fit; auto: tfjs where it runs natively, else builtin",
      choice('--trainer', ['auto', 'builtin', 'tfjs'] as const),
      'auto',
    )
    .option('--no-onnx', 'skip the ONNX copy of the models')
    .action(async (options) => {
      const all = await readInputs(options.input, { from: options.from, to: options.to });
      const split = Math.round(all.timestamps.length * (1 - options.holdout));
      const table = options.holdout > 0 ? sliceTable(all, 0, split) : all;
      const heldOut = options.holdout > 0 ? sliceTable(all, split, all.timestamps.length) : undefined;
      if (heldOut && heldOut.timestamps.length < 2 * options.window) {
        throw new MagwatchError(
          'MW_TRAIN_TOO_SHORT',
          `${options.input.join(', ')}: --holdout ${options.holdout} leaves ${heldOut.timestamps.length} samples, fewer than two windows of ${options.window}; hold out more or give more data`,
        );
      }
      const progress = trainProgress();
      const vote =
        options.voteFraction !== undefined
          ? { fraction: options.voteFraction as number }
          : { minChannels: (options.minChannels as number | undefined) ?? TRAIN_DEFAULTS.vote.minChannels };
      let summary: Awaited<ReturnType<typeof trainBundle>>;
      try {
        summary = await trainBundle(
          table,
          options.out,
          {
            window: options.window,
            step: options.step ?? options.window,
            latent: options.latent,
            epochs: options.epochs,
            batchSize: options.batchSize,
            k: options.k,
            seed: options.seed,
            shared: options.shared,
            validationSplit: TRAIN_DEFAULTS.validationSplit,
            vote,
            preprocess: options.preprocess,
            trainer: options.trainer,
            workers: options.workers,
            inputs: options.input,
          },
          {
            onStart: (model) => progress.start(model, options.epochs),
            onEpoch: (model, report) => progress.epoch(model, report.epoch, report.loss, report.valLoss),
          },
        );
      } finally {
        progress.stop();
      }
      const onnx = options.onnx ? await exportBundleOnnx(options.out) : [];
      if (heldOut) await useHeldOutThresholds(options.out, heldOut, options.k);
      process.stderr.write(
        `train: ${summary.channels} channels, ${summary.samples} samples, ${summary.windowsPerChannel} windows per channel, ` +
          `${summary.models} model(s) on ${summary.backend} with ${Math.max(summary.workers, 1)} worker(s) in ` +
          `${summary.seconds.toFixed(1)} s${onnx.length ? `, ${onnx.length} ONNX file(s)` : ''} -> ${options.out}\n`,
      );
    });
}

import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRAIN_DEFAULTS, trainBundle, trainingWorkers } from '../detector/train.js';
import { buildWideTable } from '../ingest/wide.js';
import { simulate } from '../sim/simulate.js';

export interface TrainBenchRow {
  readonly kind: 'train';
  /**
   * `fit`: plain TensorFlow.js model.fit, one model after another in this thread; `builtin`: magwatch's
   * training pass, likewise; `parallel`: what `magwatch train` does, the built-in pass in worker threads.
   */
  readonly variant: 'fit' | 'builtin' | 'parallel';
  readonly workers: number;
  readonly channels: number;
  readonly windowsPerChannel: number;
  readonly epochs: number;
  readonly seconds: number;
  /** Window-epochs trained per second, over all channels. */
  readonly windowsPerSec: number;
  /** windowsPerSec over the plain `fit` run of the same bundle. */
  readonly speedup: number;
}

/**
 * Trains the same per-channel bundle three ways (see `TrainBenchRow.variant`) on a simulated network of
 * `channels / 3` sensors, and reports the throughput of each.
 */
export async function runTrainBench(options: {
  channels: number;
  windowsPerChannel: number;
  epochs: number;
  onRow: (row: TrainBenchRow) => void;
}): Promise<void> {
  const sensors = Math.max(1, Math.ceil(options.channels / 3));
  const window = TRAIN_DEFAULTS.window;
  const { rows } = simulate({
    observatories: 1,
    sensorsPerObservatory: sensors,
    rateHz: 1,
    start: Date.UTC(2026, 0, 1),
    durationS: options.windowsPerChannel * window,
    seed: 1,
  });
  const table = buildWideTable(rows, 'simulated');
  const channels = table.channels.slice(0, options.channels);
  const trimmed = { ...table, channels, values: table.values.slice(0, options.channels) };
  const dir = await mkdtemp(join(tmpdir(), 'magwatch-bench-train-'));
  try {
    const work = channels.length * options.windowsPerChannel * options.epochs;
    const run = async (variant: TrainBenchRow['variant'], workers: number) => {
      const started = performance.now();
      await trainBundle(trimmed, join(dir, variant), {
        ...TRAIN_DEFAULTS,
        step: window,
        epochs: options.epochs,
        trainer: variant === 'fit' ? 'tfjs' : 'builtin',
        workers,
        inputs: ['simulated'],
      });
      return (performance.now() - started) / 1000;
    };
    const workers = trainingWorkers(channels.length, availableParallelism());
    const parallel = await run('parallel', workers);
    const builtin = await run('builtin', 0);
    const fit = await run('fit', 0);
    const row = (variant: TrainBenchRow['variant'], used: number, seconds: number): TrainBenchRow => ({
      kind: 'train',
      variant,
      workers: used,
      channels: channels.length,
      windowsPerChannel: options.windowsPerChannel,
      epochs: options.epochs,
      seconds,
      windowsPerSec: work / seconds,
      speedup: fit / seconds,
    });
    options.onRow(row('fit', 0, fit));
    options.onRow(row('builtin', 0, builtin));
    options.onRow(row('parallel', workers, parallel));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

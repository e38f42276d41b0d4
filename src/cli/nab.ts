import type { Command } from 'commander';
import { TRAIN_DEFAULTS } from '../detector/train.js';
import { exportNab, readNabWindows } from '../quality/nab.js';
import { integer } from './options.js';

export function registerNab(program: Command): void {
  program
    .command('nab')
    .description(
      "score a Numenta Anomaly Benchmark data folder: train on each file's first 15 %, write NAB results files",
    )
    .requiredOption('--data <dir>', "NAB data folder (every .csv below it, 'timestamp,value')")
    .requiredOption(
      '--out <dir>',
      'results folder; files go to <out>/<detector>/<subdir>/<detector>_<file>.csv',
    )
    .option('--labels <file>', "NAB's labels/combined_windows.json for the label column (default: all 0)")
    .option('--detector <name>', 'detector name in the results tree', 'magwatch')
    .option('--window <n>', 'window length W in samples', integer('--window', 2), TRAIN_DEFAULTS.window)
    .option('--epochs <n>', 'training epochs per file', integer('--epochs', 1), TRAIN_DEFAULTS.epochs)
    .option('--seed <n>', 'random seed (weights and shuffling)', integer('--seed', 0), TRAIN_DEFAULTS.seed)
    .option('--workers <n>', 'training worker threads (default: one per core)', integer('--workers', 0))
    .action(async (options) => {
      const labels = options.labels ? await readNabWindows(options.labels) : undefined;
      const started = performance.now();
      const results = await exportNab(options.data, options.out, {
        detector: options.detector,
        labels,
        window: options.window,
        epochs: options.epochs,
        seed: options.seed,
        workers: options.workers,
        onFile: (file, index, total) => process.stderr.write(`nab: ${index + 1}/${total} ${file}\n`),
      });
      process.stderr.write(
        `nab: ${results.length} file(s) scored in ${((performance.now() - started) / 1000).toFixed(1)} s -> ${options.out}\n`,
      );
    });
}

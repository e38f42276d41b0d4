import type { Command } from 'commander';
import { BENCH_TFJS_BACKENDS, type BenchRow, runInferenceBench } from '../bench/inference.js';
import { runTrainBench } from '../bench/train.js';
import { MagwatchError } from '../errors.js';
import { integer, number } from './options.js';

const ENGINES = ['onnx', 'tfjs'] as const;

function list<T>(option: string, parse: (item: string) => T) {
  return (text: string): T[] => {
    const items = text.split(',').map((item) => item.trim());
    if (items.some((item) => item === '')) {
      throw new MagwatchError('MW_CLI_BAD_OPTION', `${option} must be a comma-separated list, got '${text}'`);
    }
    return items.map(parse);
  };
}

const engineName = (text: string) => {
  if (!(ENGINES as readonly string[]).includes(text)) {
    throw new MagwatchError('MW_CLI_BAD_OPTION', `--engines must list ${ENGINES.join(', ')}, got '${text}'`);
  }
  return text;
};

const COLUMNS: Array<[string, (row: BenchRow) => string]> = [
  ['engine', (r) => r.engine],
  ['backend', (r) => r.backend],
  ['variant', (r) => r.variant],
  ['mode', (r) => `${r.mode} (${r.models})`],
  ['batch', (r) => String(r.batch)],
  ['windows/s', (r) => r.windowsPerSec.toFixed(0)],
  ['p50 ms', (r) => r.p50Ms.toFixed(1)],
  ['p99 ms', (r) => r.p99Ms.toFixed(1)],
  ['calls', (r) => String(r.calls)],
  ['speedup', (r) => `${r.speedup.toFixed(2)}x`],
];
const WIDTHS = [7, 11, 8, 17, 6, 10, 9, 9, 6, 8];

function tableLine(cells: string[]): string {
  return cells.map((cell, i) => (i < 4 ? cell.padEnd(WIDTHS[i]!) : cell.padStart(WIDTHS[i]!))).join(' ');
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(
      'inference throughput and latency of each engine on this machine, against the TensorFlow.js layers reference (wasm)',
    )
    .option('--json', 'one JSON object per measurement on stdout instead of a table')
    .option('--engines <list>', 'engines to time besides the reference', list('--engines', engineName), [
      ...ENGINES,
    ])
    .option(
      '--batches <list>',
      'windows per inference call, besides one window per channel',
      list('--batches', integer('--batches', 1)),
      [1, 32, 256, 1024],
    )
    .option(
      '--seconds <s>',
      'time budget per engine and batch size',
      number('--seconds', (s) => s > 0, 'a positive number'),
      2,
    )
    .option('--channels <n>', 'channels, and models of the per-channel bundle', integer('--channels', 1), 9)
    .option(
      '--backends <list>',
      `TensorFlow.js backends to time the stacked engine on (default: each of ${BENCH_TFJS_BACKENDS.join(', ')} that starts here)`,
      list('--backends', (name) => name),
    )
    .option(
      '--threads <n>',
      'worker threads sharing each batch, for both engines (default: one per core, at most 4)',
      integer('--threads', 1),
    )
    .option(
      '--train',
      'instead: training throughput of a per-channel bundle: magwatch train, its training pass in one thread, plain model.fit',
    )
    .option('--epochs <n>', 'epochs of the --train run', integer('--epochs', 1), 3)
    .option('--windows <n>', 'training windows per channel of the --train run', integer('--windows', 2), 24)
    .action(async (options) => {
      const json = Boolean(options.json);
      if (options.train) {
        await runTrainBench({
          channels: options.channels,
          windowsPerChannel: options.windows,
          epochs: options.epochs,
          onRow: (row) =>
            process.stdout.write(
              json
                ? `${JSON.stringify(row)}\n`
                : `train ${row.variant.padEnd(8)} workers ${row.workers} channels ${row.channels} ` +
                    `${row.seconds.toFixed(1)} s ${row.windowsPerSec.toFixed(1)} windows/s ${row.speedup.toFixed(2)}x\n`,
            ),
        });
        return;
      }
      if (!json) {
        process.stdout.write(`${tableLine(COLUMNS.map(([title]) => title))}\n`);
      }
      await runInferenceBench(
        {
          engines: options.engines,
          batches: options.batches,
          seconds: options.seconds,
          channels: options.channels,
          tfjsBackends: options.backends,
          threads: options.threads,
        },
        (row) => {
          process.stdout.write(
            json ? `${JSON.stringify(row)}\n` : `${tableLine(COLUMNS.map(([, cell]) => cell(row)))}\n`,
          );
        },
        (line) => process.stderr.write(`bench: ${line}\n`),
      );
      if (!json) {
        process.stdout.write(
          'speedup: windows/s over the layers reference at the same batch size, measured in this run\n',
        );
      }
    });
}

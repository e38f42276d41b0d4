import type { Command } from 'commander';
import { loadBundle } from '../detector/bundle.js';
import { detectTable, flaggedRegions } from '../detector/detect.js';
import { createEngine } from '../detector/engines/index.js';
import { writeResultsCsv } from '../detector/results.js';
import { readInputs } from '../ingest/files.js';
import { choice, integer, number, timestamp } from './options.js';

export function registerDetect(program: Command): void {
  program
    .command('detect')
    .description('offline detection on files: flags, votes and the results CSV')
    .requiredOption('--model <dir>', 'model bundle directory (from magwatch train)')
    .requiredOption('--input <files...>', 'long CSV, wide CSV or IAGA-2002 files (gzip too)')
    .requiredOption('--out <file>', 'results CSV to write')
    .option('--from <time>', 'first sample time to use (ISO 8601)', timestamp('--from'))
    .option('--to <time>', 'end of the time range, exclusive (ISO 8601)', timestamp('--to'))
    .option(
      '--min-channels <n>',
      "votes needed, absolute (default: the bundle's rule)",
      integer('--min-channels', 1),
    )
    .option(
      '--vote-fraction <f>',
      'votes needed as a fraction of the channels, rounded up',
      number('--vote-fraction', (f) => f > 0 && f <= 1, 'a number in (0, 1]'),
    )
    .option(
      '--engine <name>',
      'auto, onnx or tfjs',
      choice('--engine', ['auto', 'onnx', 'tfjs'] as const),
      'auto',
    )
    .option('--backend <name>', 'TensorFlow.js backend for --engine tfjs (tensorflow, wasm, cpu)')
    .action(async (options) => {
      const bundle = await loadBundle(options.model);
      const table = await readInputs(options.input, { from: options.from, to: options.to });
      const engine = await createEngine(bundle, { engine: options.engine, backend: options.backend });
      const vote =
        options.voteFraction !== undefined
          ? { fraction: options.voteFraction as number }
          : options.minChannels !== undefined
            ? { minChannels: options.minChannels as number }
            : undefined;
      try {
        const result = await detectTable(table, bundle, engine, { vote, source: options.input.join(', ') });
        await writeResultsCsv(options.out, result);
        const flagged = result.final.reduce((n, f) => n + f, 0);
        const perGroup = result.groups
          .map((g) => `${g.group} ${flaggedRegions(g.votes.map((v) => (v >= g.required ? 1 : 0))).length}`)
          .join(', ');
        const ignored = result.ignored.length
          ? `; ignored channels without a model: ${result.ignored.join(', ')}`
          : '';
        process.stderr.write(
          `detect: ${result.channels.length} channels, ${result.timestamps.length} samples, ${flagged} flagged samples, ` +
            `${flaggedRegions(result.final).length} flagged region(s) (required votes ${result.required}); ` +
            `regions per group: ${perGroup}; engine ${engine.name}/${engine.backend}${ignored} -> ${options.out}\n`,
        );
      } finally {
        await engine.dispose();
      }
    });
}

import type { Command } from 'commander';
import { MagwatchError } from '../errors.js';
import { evaluateFiles, formatReport } from '../evaluate/report.js';
import { DEFAULT_FLAG_COLUMN } from '../evaluate/results.js';

interface EvaluateFlags {
  results: string;
  labels: string;
  column: string;
  includeKinds?: string;
  json?: boolean;
}

/** `magwatch evaluate`: point and event scores of a results CSV against a labels CSV. */
export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description(
      'score a results CSV against labelled anomalies: point and event precision, recall, F1, delay',
    )
    .requiredOption('--results <file>', 'results CSV from magwatch detect (.gz too)')
    .requiredOption(
      '--labels <file>',
      'labels CSV: start,end,kind,sensors,components (as magwatch simulate writes)',
    )
    .option('--column <name>', 'flag column to score', DEFAULT_FLAG_COLUMN)
    .option(
      '--include-kinds <kinds>',
      'comma-separated label kinds that count as events (default: every kind but glitch)',
    )
    .option('--json', 'print one JSON object instead of a table')
    .action(async (flags: EvaluateFlags) => {
      process.stdout.write(await runEvaluate(flags));
    });
}

/** Runs the command on parsed flags and returns what it prints. */
export async function runEvaluate(flags: EvaluateFlags): Promise<string> {
  const includeKinds = flags.includeKinds === undefined ? undefined : parseKinds(flags.includeKinds);
  const report = await evaluateFiles({
    results: flags.results,
    labels: flags.labels,
    column: flags.column,
    ...(includeKinds === undefined ? {} : { includeKinds }),
  });
  return flags.json ? `${JSON.stringify(report)}\n` : formatReport(report);
}

function parseKinds(text: string): string[] {
  const kinds = text
    .split(',')
    .map((kind) => kind.trim())
    .filter((kind) => kind !== '');
  if (kinds.length === 0) {
    throw new MagwatchError(
      'MW_CLI_BAD_OPTION',
      `--include-kinds must list label kinds, e.g. storm,object; got '${text}'`,
    );
  }
  return kinds;
}

#!/usr/bin/env node
// Detection quality bench (npm run bench:quality): the reference settings, magwatch's defaults chosen by the
// printed evidence, and two baselines, on the simulated scenario suite and the real Boulder month.
// Usage: node scripts/bench-quality.mjs [--quick] [--json] [--epochs N] [--no-real]
// Imports the compiled modules: run `npm run build` first.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const dist = new URL('../dist/quality/bench.js', import.meta.url);
if (!existsSync(dist)) {
  process.stderr.write('bench-quality: dist/quality/bench.js is missing; run `npm run build` first\n');
  process.exit(2);
}
const { formatBenchReport, runQualityBench } = await import(dist.href);
const boulder = fileURLToPath(
  new URL('../../shared/data/real/bou-2016-01/BOU201601vmin.min', import.meta.url),
);
const epochs = value('--epochs') === undefined ? undefined : Number(value('--epochs'));
if (epochs !== undefined && !(Number.isInteger(epochs) && epochs >= 1)) {
  process.stderr.write(`bench-quality: --epochs must be an integer >= 1, got '${value('--epochs')}'\n`);
  process.exit(2);
}
const useReal = !flag('--no-real') && existsSync(boulder);
if (!flag('--no-real') && !useReal)
  process.stderr.write(`bench-quality: ${boulder} not found; real data left out\n`);

const report = await runQualityBench({
  quick: flag('--quick'),
  epochs,
  boulder: useReal ? boulder : undefined,
  log: (line) => process.stderr.write(`bench-quality: ${line}\n`),
});
process.stdout.write(flag('--json') ? `${JSON.stringify(report, null, 2)}\n` : formatBenchReport(report));
process.exit(0);

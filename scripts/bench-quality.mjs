#!/usr/bin/env node
// Detection quality bench (npm run bench:quality): the reference settings, the setting chosen by the printed
// evidence among those `magwatch train` can make (and the best bench-only candidate), and two baselines, on the
// simulated scenario suite, the real Boulder month and the real WIC 1-second day (labelled by MagPy's outlier
// flags).
// Usage: node scripts/bench-quality.mjs [--quick] [--json] [--epochs N] [--no-real] [--no-wic]
// Imports the compiled modules: run `npm run build` first.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
if (flag('--help')) {
  process.stdout.write(
    [
      'usage: node scripts/bench-quality.mjs [--quick] [--json] [--epochs N] [--no-real] [--no-wic]',
      '  --quick     2 epochs, 3 base scenarios (real data kept)',
      '  --json      the report as JSON instead of text tables',
      '  --epochs N  training epochs (default 10, 2 with --quick)',
      '  --no-real   leave out the real recordings (Boulder month and WIC day)',
      '  --no-wic    leave out the WIC 1-second day only',
      '',
    ].join('\n'),
  );
  process.exit(0);
}
const dist = new URL('../dist/quality/bench.js', import.meta.url);
if (!existsSync(dist)) {
  process.stderr.write('bench-quality: dist/quality/bench.js is missing; run `npm run build` first\n');
  process.exit(2);
}
const { formatBenchReport, runQualityBench } = await import(dist.href);
const boulder = fileURLToPath(
  new URL('../../shared/data/real/bou-2016-01/BOU201601vmin.min', import.meta.url),
);
const wicDir = new URL('../../shared/data/real/wic-2018-08-02/', import.meta.url);
const wic = {
  zip: fileURLToPath(new URL('example1.zip', wicDir)),
  flags: fileURLToPath(new URL('flagging_example.json', wicDir)),
};
const epochs = value('--epochs') === undefined ? undefined : Number(value('--epochs'));
if (epochs !== undefined && !(Number.isInteger(epochs) && epochs >= 1)) {
  process.stderr.write(`bench-quality: --epochs must be an integer >= 1, got '${value('--epochs')}'\n`);
  process.exit(2);
}
const useReal = !flag('--no-real') && existsSync(boulder);
if (!flag('--no-real') && !useReal)
  process.stderr.write(`bench-quality: ${boulder} not found; real data left out\n`);
const useWic = !flag('--no-real') && !flag('--no-wic') && existsSync(wic.zip) && existsSync(wic.flags);
if (!flag('--no-real') && !flag('--no-wic') && !useWic)
  process.stderr.write(`bench-quality: ${wic.zip} or ${wic.flags} not found; the WIC day left out\n`);

const report = await runQualityBench({
  quick: flag('--quick'),
  epochs,
  boulder: useReal ? boulder : undefined,
  wic: useWic ? wic : undefined,
  log: (line) => process.stderr.write(`bench-quality: ${line}\n`),
});
process.stdout.write(flag('--json') ? `${JSON.stringify(report, null, 2)}\n` : formatBenchReport(report));
process.exit(0);

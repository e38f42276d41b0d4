/**
 * Corrupt or mismatched bundles, configurations and CSV files through the command line: one line on stderr
 * naming the file and the field, a non-zero exit, and nothing written.
 */
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliRun, runCli } from '../helpers/cli.js';
import { BUNDLE, EXAMPLE_ANOMALIES } from './helpers.js';

let dir: string;

/** A copy of the example bundle with `edit` applied to one of its JSON files. */
async function brokenBundle(name: string, file: string, edit: (text: string) => string): Promise<string> {
  const bundle = join(dir, name);
  await cp(BUNDLE, bundle, { recursive: true });
  await writeFile(join(bundle, file), edit(await readFile(join(bundle, file), 'utf8')));
  return bundle;
}

/** Exactly one `magwatch:` line on stderr, nothing on stdout but log lines, and a non-zero exit. */
function expectOneLineError(run: CliRun, ...mentions: RegExp[]): string {
  expect(run.code, run.stderr).not.toBe(0);
  const lines = run.stderr.trim().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^magwatch: /);
  for (const mention of mentions) expect(lines[0]).toMatch(mention);
  return lines[0]!;
}

async function runConfig(name: string, yaml: string): Promise<{ run: CliRun; out: string }> {
  const out = join(dir, `${name}-out`);
  await rm(out, { recursive: true, force: true });
  await mkdir(out);
  const config = join(dir, `${name}.yaml`);
  await writeFile(config, yaml);
  // No broker listens on port 9: a run that got past validation would fail later, for another reason.
  const run = await runCli(['run', '--config', config], { cwd: out, timeoutMs: 30_000 });
  return { run, out };
}

const baseConfig = () =>
  `mqtt:\n  url: mqtt://127.0.0.1:9\nmodel:\n  path: ${BUNDLE}\n  engine: tfjs\ninflux:\n  file: points.lp\nhttp:\n  port: 0\n`;

describe('corrupt and mismatched input through the command line', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'magwatch-bad-input-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names the manifest of a bundle that is not JSON, for run and detect, and writes nothing', async () => {
    const bundle = await brokenBundle('bad-json', 'manifest.json', (text) => text.slice(0, text.length / 2));
    const out = join(dir, 'bad-json.csv');
    const detect = await runCli(['detect', '--model', bundle, '--input', EXAMPLE_ANOMALIES, '--out', out]);
    expectOneLineError(detect, /manifest\.json/, /not valid JSON/);
    await expect(readFile(out)).rejects.toThrow();

    const { run, out: runDir } = await runConfig('bad-json', baseConfig().replace(BUNDLE, bundle));
    expectOneLineError(run, /manifest\.json/);
    expect(await readdir(runDir)).toEqual([]);
  });

  it('names the thresholds file and the channel without a threshold', async () => {
    const bundle = await brokenBundle('no-threshold', 'thresholds.json', (text) => {
      const thresholds = JSON.parse(text) as Record<string, number>;
      delete thresholds['S2_OBS1_2__b_y'];
      return JSON.stringify(thresholds);
    });
    const out = join(dir, 'no-threshold.csv');
    const detect = await runCli(['detect', '--model', bundle, '--input', EXAMPLE_ANOMALIES, '--out', out]);
    expectOneLineError(detect, /thresholds\.json/, /S2_OBS1_2__b_y/);
    await expect(readFile(out)).rejects.toThrow();
  });

  it('names the input and the channel it lacks', async () => {
    const text = await readFile(EXAMPLE_ANOMALIES, 'utf8');
    const input = join(dir, 'two-sensors.csv');
    await writeFile(
      input,
      text
        .split('\n')
        .filter((line) => !line.includes('S3_OBS2_1'))
        .join('\n'),
    );
    const out = join(dir, 'two-sensors-results.csv');
    const detect = await runCli(['detect', '--model', BUNDLE, '--input', input, '--out', out]);
    expectOneLineError(detect, /two-sensors\.csv/, /S3_OBS2_1__b_x/);
    await expect(readFile(out)).rejects.toThrow();
  });

  it('names the row and the column of a CSV value that is not a number', async () => {
    const lines = (await readFile(EXAMPLE_ANOMALIES, 'utf8')).split('\n');
    lines[5] = lines[5]!.replace(/,[^,]+$/, ',12x4');
    const input = join(dir, 'bad-value.csv');
    await writeFile(input, lines.join('\n'));
    const out = join(dir, 'bad-value-results.csv');
    const detect = await runCli(['detect', '--model', BUNDLE, '--input', input, '--out', out]);
    expectOneLineError(detect, /bad-value\.csv/, /b_z/, /\b6\b/);
    await expect(readFile(out)).rejects.toThrow();
  });

  it('names an unknown configuration key and its file, and starts nothing', async () => {
    const { run, out } = await runConfig('unknown-key', `${baseConfig()}stream:\n  maxBatchSize: 10\n`);
    expectOneLineError(run, /unknown-key\.yaml/, /stream\.maxBatchSize: unknown key/);
    expect(await readdir(out)).toEqual([]);
  });

  it('names a configuration key of the wrong type, and starts nothing', async () => {
    const { run, out } = await runConfig('wrong-type', baseConfig().replace('port: 0', 'port: "eighty"'));
    expectOneLineError(run, /wrong-type\.yaml/, /http\.port/);
    expect(await readdir(out)).toEqual([]);
  });
});

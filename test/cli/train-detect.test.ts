import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseCsv, ROOT, runCli } from '../helpers/cli.js';

const examples = join(ROOT, 'examples');

function within(rows: Array<Record<string, string>>, label: Record<string, string>) {
  const start = Date.parse(label.start!);
  const end = Date.parse(label.end!);
  return rows.filter((r) => Date.parse(r.timestamp!) >= start && Date.parse(r.timestamp!) <= end);
}
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'magwatch-e2e-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('train then detect on the example data', () => {
  let results: Array<Record<string, string>>;
  let labels: Array<Record<string, string>>;

  beforeAll(async () => {
    const bundle = join(dir, 'bundle');
    const train = await runCli(['train', '--input', join(examples, 'normal.csv'), '--out', bundle], {
      timeoutMs: 240_000,
    });
    expect(train.stderr).toMatch(/train: 9 channels/);
    expect(train.code).toBe(0);
    const detect = await runCli([
      'detect',
      '--model',
      bundle,
      '--input',
      join(examples, 'anomalies.csv'),
      '--out',
      join(dir, 'results.csv'),
    ]);
    expect(detect.stderr).toMatch(/detect: 9 channels/);
    expect(detect.code).toBe(0);
    results = parseCsv(await readFile(join(dir, 'results.csv'), 'utf8'));
    labels = parseCsv(await readFile(join(examples, 'anomalies.labels.csv'), 'utf8'));
  }, 300_000);

  test('writes a complete bundle', async () => {
    const bundle = join(dir, 'bundle');
    const files = await readdir(bundle);
    expect(files.sort()).toEqual([
      'manifest.json',
      'models',
      'scalers.json',
      'thresholds.json',
      'training.json',
    ]);
    const manifest = JSON.parse(await readFile(join(bundle, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({
      format: 'magwatch-bundle',
      version: 1,
      window: 64,
      step: 64,
      latent: 32,
      k: 6,
      // magwatch's default beyond the reference; `--preprocess none` leaves the key out.
      preprocess: 'window-mean',
      // The example's 1-second samples; the live detector sizes its time settings from it.
      cadenceMs: 1000,
    });
    expect(Object.keys(manifest.channels)).toHaveLength(9);
    for (const entry of Object.values(manifest.channels) as Array<{ model: string }>) {
      expect((await stat(join(bundle, 'models', entry.model, 'model.json'))).isFile()).toBe(true);
      expect((await stat(join(bundle, 'models', `${entry.model}.onnx`))).isFile()).toBe(true);
    }
  });

  test('flags every group-wide anomaly in the final vote', () => {
    const counted = labels.filter((l) => l.kind !== 'glitch');
    expect(counted.length).toBeGreaterThan(0);
    for (const label of counted) {
      const inside = within(results, label);
      expect(
        inside.some((r) => r.final_cross_obs_flag === '1'),
        `${label.kind} at ${label.start}`,
      ).toBe(true);
    }
  });

  test('leaves samples far from every anomaly unflagged', () => {
    // A flag may spread over the rest of the anomaly's window (64 samples at 1 Hz) on either side.
    const marginMs = 64_000;
    const near = (t: number) =>
      labels.some((l) => t >= Date.parse(l.start!) - marginMs && t <= Date.parse(l.end!) + marginMs);
    const falseFlags = results.filter(
      (r) => r.final_cross_obs_flag === '1' && !near(Date.parse(r.timestamp!)),
    );
    expect(falseFlags).toEqual([]);
  });

  test('does not carry the single-sensor glitch into the final vote', () => {
    for (const label of labels.filter((l) => l.kind === 'glitch')) {
      const inside = within(results, label);
      expect(inside.every((r) => r.final_cross_obs_flag === '0')).toBe(true);
    }
  });

  test('writes the results columns in the documented order', () => {
    const columns = Object.keys(results[0]!);
    expect(columns[0]).toBe('timestamp');
    expect(columns.slice(-2)).toEqual(['global_votes', 'final_cross_obs_flag']);
    const flagAt = columns.findIndex((c) => c.endsWith('_flag') && c !== 'final_cross_obs_flag');
    const rmseAt = columns.findIndex((c) => c.endsWith('_rmse'));
    const votesAt = columns.findIndex((c) => c.endsWith('_votes'));
    expect(flagAt).toBe(10);
    expect(rmseAt).toBe(19);
    expect(votesAt).toBeGreaterThan(rmseAt);
  });
});

describe('train --holdout', () => {
  test('takes the thresholds from the held-out end of the input and records it in the manifest', async () => {
    const out = join(dir, 'held-out');
    const run = await runCli(
      [
        'train',
        '--input',
        join(examples, 'normal.csv'),
        '--out',
        out,
        '--holdout',
        '0.25',
        '--shared',
        '--epochs',
        '1',
      ],
      { timeoutMs: 180_000 },
    );
    expect(run.code, run.stderr).toBe(0);
    // 1,536 samples: 1,152 train (18 windows), 384 held out (6 windows).
    expect(run.stderr).toMatch(/1152 samples, 18 windows per channel/);
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.thresholds).toEqual({ from: 'held-out', samples: 384 });
    const thresholds = JSON.parse(await readFile(join(out, 'thresholds.json'), 'utf8'));
    const training = JSON.parse(await readFile(join(out, 'training.json'), 'utf8'));
    for (const channel of Object.keys(manifest.channels)) {
      expect(Number.isFinite(thresholds[channel])).toBe(true);
      // The training summary keeps what the training windows alone would have given.
      expect(training[channel].windows).toBe(18);
    }
  }, 200_000);
});

describe('bad input', () => {
  test('a missing input file exits non-zero with one line naming the file', async () => {
    const run = await runCli([
      'detect',
      '--model',
      join(dir, 'none'),
      '--input',
      'nope.csv',
      '--out',
      join(dir, 'r.csv'),
    ]);
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/none/);
  });

  test('an invalid option value names the option', async () => {
    const run = await runCli(['train', '--input', 'x.csv', '--out', join(dir, 'b'), '--window', 'abc']);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/--window must be an integer >= 2, got 'abc'/);
  });

  test('too little data for one window leaves no bundle behind', async () => {
    const out = join(dir, 'short-bundle');
    const run = await runCli([
      'train',
      '--input',
      join(examples, 'normal.csv'),
      '--out',
      out,
      '--window',
      '100000',
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/fewer than one window of 100000/);
    await expect(stat(out)).rejects.toThrow();
  });
});

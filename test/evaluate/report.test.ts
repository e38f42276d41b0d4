import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { registerEvaluate, runEvaluate } from '../../src/cli/evaluate.js';
import { evaluateFiles, formatReport } from '../../src/evaluate/report.js';
import { readFlagSeries } from '../../src/evaluate/results.js';
import { formatTime } from '../../src/sim/csv.js';

/** 1,024 samples at 1 Hz, like examples/anomalies.csv. */
const START = Date.UTC(2026, 0, 15, 0, 25, 36);
const SAMPLES = 1024;
const at = (sample: number) => formatTime(START + sample * 1000);

const LABELS = [
  'start,end,kind,sensors,components',
  `${at(192)},${at(383)},storm,S1_OBS1_1;S2_OBS1_2;S3_OBS2_1,b_x;b_y;b_z`,
  `${at(576)},${at(703)},object,S1_OBS1_1;S2_OBS1_2,b_x;b_y;b_z`,
  `${at(832)},${at(895)},glitch,S1_OBS1_1,b_z`,
  `${at(5000)},${at(5100)},storm,S1_OBS1_1,b_x`,
].join('\n');

/** Flags as a window-expanded vote would set them: the storm's and object's windows, and window 14. */
function flagAt(sample: number): number {
  const window = Math.floor(sample / 64);
  return [3, 4, 5, 9, 10, 14].includes(window) ? 1 : 0;
}

function resultsCsv(flag: (sample: number) => string = (sample) => String(flagAt(sample))): string {
  const lines = ['timestamp,S1_OBS1_1__b_x,S1_OBS1_1__b_x_flag,global_votes,final_cross_obs_flag'];
  for (let i = 0; i < SAMPLES; i++) lines.push(`${at(i)},20000.5,${flagAt(i)},${9 * flagAt(i)},${flag(i)}`);
  return `${lines.join('\n')}\n`;
}

let dir: string;
const path = (name: string) => join(dir, name);
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'magwatch-evaluate-'));
  await writeFile(path('results.csv'), resultsCsv());
  await writeFile(path('results.csv.gz'), gzipSync(resultsCsv()));
  await writeFile(path('labels.csv'), LABELS);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('evaluateFiles', () => {
  test('counts every kind but glitch by default and skips labels outside the results', async () => {
    const report = await evaluateFiles({ results: path('results.csv'), labels: path('labels.csv') });
    expect(report.labels).toEqual({ total: 4, counted: 2, excluded: { glitch: 1 }, outside: 1 });
    // 320 labelled samples all flagged, plus window 14 (64 samples) as the one false region.
    expect(report.point).toMatchObject({ truePositives: 320, falsePositives: 64, falseNegatives: 0 });
    expect(report.point.precision).toBeCloseTo(320 / 384);
    expect(report.event).toMatchObject({ events: 2, found: 2, regions: 3, trueRegions: 2, falseRegions: 1 });
    expect(report.delay).toEqual({ meanSamples: 0, maxSamples: 0, meanS: 0, maxS: 0 });
    expect(report.falseAlarmsPerDay).toBeCloseTo(86_400 / 1024);
    expect(report.start).toBe('2026-01-15T00:25:36Z');
  });

  test('counts the kinds it is given, so a missed glitch lowers recall', async () => {
    const report = await evaluateFiles({
      results: path('results.csv'),
      labels: path('labels.csv'),
      includeKinds: ['storm', 'object', 'glitch'],
    });
    expect(report.event).toMatchObject({ events: 3, found: 2 });
    expect(report.event.recall).toBeCloseTo(2 / 3);
  });

  test('scores another flag column, and reads gzip', async () => {
    const report = await evaluateFiles({
      results: path('results.csv.gz'),
      labels: path('labels.csv'),
      column: 'S1_OBS1_1__b_x_flag',
    });
    expect(report.column).toBe('S1_OBS1_1__b_x_flag');
    expect(report.event).toMatchObject({ found: 2, regions: 3 });
  });

  test('prints a table with point and event scores, delay and false alarms', async () => {
    const text = formatReport(
      await evaluateFiles({ results: path('results.csv'), labels: path('labels.csv') }),
    );
    const lines = text.split('\n');
    expect(lines[1]).toBe(
      'events        2 counted of 4 labels (not counted: 1 glitch, 1 outside the results)',
    );
    expect(lines[4]).toBe('point             0.833   1.000   0.909  tp 320, fp 64, fn 0');
    expect(lines[5]).toBe(
      'event             0.667   1.000   0.800  2 of 2 events found, 2 of 3 flagged regions true',
    );
    expect(lines[7]).toBe('delay         mean 0.0 s (0.0 samples), max 0.0 s (0 samples)');
    expect(lines[8]).toBe('false alarms  1 regions, 84.38 per day');
  });
});

describe('magwatch evaluate', () => {
  test('prints one JSON object with --json and takes --include-kinds as a list', async () => {
    const output = await runEvaluate({
      results: path('results.csv'),
      labels: path('labels.csv'),
      column: 'final_cross_obs_flag',
      includeKinds: 'storm, glitch',
      json: true,
    });
    const report = JSON.parse(output);
    // The storm inside the results and the glitch count; the object region becomes a false alarm.
    expect(report.labels).toEqual({ total: 4, counted: 2, excluded: { object: 1 }, outside: 1 });
    expect(report.event).toMatchObject({ events: 2, found: 1, trueRegions: 1, falseRegions: 2 });
  });

  test('registers its options with the flag column defaulting to final_cross_obs_flag', async () => {
    let parsed: Record<string, unknown> | undefined;
    const program = new Command('magwatch').exitOverride();
    registerEvaluate(program);
    program.commands[0]!.action((flags: Record<string, unknown>) => {
      parsed = flags;
    });
    await program.parseAsync(['node', 'magwatch', 'evaluate', '--results', 'r.csv', '--labels', 'l.csv']);
    expect(parsed).toEqual({ results: 'r.csv', labels: 'l.csv', column: 'final_cross_obs_flag' });
  });
});

describe('readFlagSeries', () => {
  test.each([
    [
      'a missing flag column',
      'timestamp,x_flag\n2026-01-15T00:00:00Z,1\n',
      'MW_INPUT_MISSING_COLUMN',
      'x_flag',
    ],
    ['a bad flag', 'timestamp,final_cross_obs_flag\n2026-01-15T00:00:00Z,yes\n', 'MW_INPUT_BAD_VALUE', ':2:'],
    ['a bad time', 'timestamp,final_cross_obs_flag\nnoon,1\n', 'MW_INPUT_BAD_TIMESTAMP', "'noon'"],
    [
      'time going back',
      'timestamp,final_cross_obs_flag\n2026-01-15T00:00:01Z,1\n2026-01-15T00:00:00Z,0\n',
      'MW_INPUT_UNSORTED',
      ':3:',
    ],
    ['no rows', 'timestamp,final_cross_obs_flag\n', 'MW_INPUT_EMPTY', 'no result rows'],
  ])('reports %s in one line', async (_case, text, code, fragment) => {
    await writeFile(path('bad.csv'), text);
    const error = await readFlagSeries(path('bad.csv')).catch((caught: Error) => caught);
    expect(error).toMatchObject({ code });
    expect((error as Error).message).toContain(fragment);
    expect((error as Error).message).not.toContain('\n');
  });

  test('reads True/False flags as pandas writes them', async () => {
    await writeFile(
      path('bool.csv'),
      'timestamp,final_cross_obs_flag\n2026-01-15 00:00:00,True\n2026-01-15 00:00:01,False\n',
    );
    const series = await readFlagSeries(path('bool.csv'));
    expect([...series.flags]).toEqual([1, 0]);
    expect([...series.timestamps]).toEqual([Date.UTC(2026, 0, 15), Date.UTC(2026, 0, 15, 0, 0, 1)]);
  });

  test('names the file it cannot open', async () => {
    await expect(readFlagSeries(path('nowhere.csv'))).rejects.toMatchObject({ code: 'MW_INPUT_NOT_FOUND' });
  });
});

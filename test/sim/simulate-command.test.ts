import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  describeAnomaly,
  registerSimulate,
  runSimulate,
  type SimulateFlags,
} from '../../src/cli/simulate.js';
import { formatLongCsv } from '../../src/sim/csv.js';
import { formatLabelsCsv } from '../../src/sim/labels.js';
import { simulate } from '../../src/sim/simulate.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'magwatch-simulate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const START = Date.UTC(2026, 0, 15, 6);

/** Parses a `magwatch simulate …` command line and returns the flags it would run with. */
async function parse(args: string[]): Promise<SimulateFlags> {
  let parsed: SimulateFlags | undefined;
  const program = new Command('magwatch').exitOverride();
  registerSimulate(program);
  program.commands[0]!.action((flags: SimulateFlags) => {
    parsed = flags;
  });
  await program.parseAsync(['node', 'magwatch', 'simulate', ...args]);
  return parsed!;
}

describe('magwatch simulate', () => {
  test('writes the data and labels CSV the simulator produces for the same options', async () => {
    const flags = await parse([
      '--observatories',
      '1',
      '--sensors',
      '2',
      '--rate',
      '5',
      '--duration',
      '40',
      '--seed',
      '9',
      '--start',
      '2026-01-15T06:00:00Z',
      '--out',
      join(dir, 'data.csv'),
      '--labels',
      join(dir, 'labels.csv'),
    ]);
    const lines: string[] = [];
    await runSimulate(flags, { stdout: new PassThrough(), log: (line) => lines.push(line) });

    const expected = simulate({
      observatories: 1,
      sensorsPerObservatory: 2,
      rateHz: 5,
      durationS: 40,
      seed: 9,
      start: START,
      anomalies: 'default',
    });
    expect(await readFile(join(dir, 'data.csv'), 'utf8')).toBe(formatLongCsv(expected.rows));
    expect(await readFile(join(dir, 'labels.csv'), 'utf8')).toBe(formatLabelsCsv(expected.labels));
    expect(lines).toEqual([]);
  });

  test('writes the CSV to stdout without --out or --broker, and no anomalies with --anomalies none', async () => {
    const flags = await parse([
      '--duration',
      '2',
      '--rate',
      '1',
      '--start',
      '2026-01-15T06:00:00Z',
      '--anomalies',
      'none',
    ]);
    const stdout = new PassThrough();
    const chunks: Buffer[] = [];
    stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    await runSimulate(flags, { stdout, log: () => {} });

    const expected = simulate({
      observatories: 2,
      sensorsPerObservatory: 3,
      rateHz: 1,
      durationS: 2,
      seed: 1,
      start: START,
      noiseNt: 0.2,
    });
    expect(Buffer.concat(chunks).toString()).toBe(formatLongCsv(expected.rows));
  });

  test('defaults to publishing in real time and takes --no-realtime', async () => {
    expect((await parse(['--broker', 'mqtt://127.0.0.1:1883'])).realtime).toBeUndefined();
    expect((await parse(['--no-realtime'])).realtime).toBe(false);
  });

  test.each([
    [['--rate', 'x'], "--rate must be a positive number, got 'x'"],
    [['--duration', '0'], "--duration must be a positive number, got '0'"],
    [['--sensors', '1.5'], "--sensors must be an integer >= 1, got '1.5'"],
    [
      ['--start', 'yesterday'],
      "--start must be an ISO 8601 time such as 2016-01-18T00:00:00Z, got 'yesterday'",
    ],
  ])('rejects %j with a one-line message', async (args, message) => {
    await expect(parse(args)).rejects.toMatchObject({ code: 'MW_CLI_BAD_OPTION', message });
  });

  test('describes an anomaly in one line: kind, times, sensors, components', () => {
    const line = describeAnomaly({
      start: START,
      end: START + 63_000,
      kind: 'glitch',
      groups: ['OBS1'],
      sensors: ['S1_OBS1_1'],
      components: ['b_z'],
    });
    expect(line).toBe('anomaly glitch 2026-01-15T06:00:00Z to 2026-01-15T06:01:03Z: S1_OBS1_1 (b_z)');
  });
});

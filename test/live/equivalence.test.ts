/**
 * The central promise of DESIGN section 1: the streaming path and `magwatch detect` agree on the same data.
 * examples/anomalies.csv goes through a real mosquitto into the in-process live service; every window score and
 * bucket vote it emits is compared, sample by sample, with the results CSV of `magwatch detect` on the same file
 * and bundle.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLiveService } from '../../src/service.js';
import type { BucketVote, WindowScore } from '../../src/stream/types.js';
import { parseCsv, runCli } from '../helpers/cli.js';
import {
  ANOMALIES_CSV,
  collect,
  EXAMPLE_BUNDLE,
  exampleEngines,
  liveConfig,
  memoryLogger,
  replayFile,
  waitFor,
} from '../helpers/live.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';

const CHANNELS = ['S1_OBS1_1', 'S2_OBS1_2', 'S3_OBS2_1'].flatMap((sensor) =>
  ['b_x', 'b_y', 'b_z'].map((component) => `${sensor}__${component}`),
);
const SAMPLES = 1024;
const WINDOW = 64;
/** 16 windows of each of the 9 channels. */
const EXPECTED_WINDOWS = (SAMPLES / WINDOW) * CHANNELS.length;
const GROUPS = ['OBS1', 'OBS2'];

let broker: Mosquitto;
let dir: string;

beforeAll(async () => {
  broker = await startMosquitto();
  dir = await mkdtemp(join(tmpdir(), 'magwatch-equivalence-'));
});

afterAll(async () => {
  await broker?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.each(exampleEngines())('the live detector on the %s engine', (engine) => {
  it('agrees with magwatch detect on every sample: flags, RMSE and votes', async () => {
    const resultsPath = join(dir, `results-${engine}.csv`);
    // The offline run is a separate process: let it work while the live run does.
    const offline = runCli([
      'detect',
      '--model',
      EXAMPLE_BUNDLE,
      '--input',
      ANOMALIES_CSV,
      '--out',
      resultsPath,
      '--engine',
      engine,
    ]);

    const { logger, lines } = memoryLogger();
    const service = await startLiveService(
      liveConfig({ mqttUrl: broker.url, pointsFile: join(dir, `points-${engine}.lp`), engine }),
      logger,
    );
    const scores = collect(service.detector.scores$);
    const votes = collect(service.detector.votes$);
    try {
      const published = await replayFile(ANOMALIES_CSV, broker.url);
      expect(published.samples).toBe(SAMPLES * 3);
      await waitFor(
        () => scores.length >= EXPECTED_WINDOWS,
        `${EXPECTED_WINDOWS} window scores`,
        45_000,
        () =>
          `${scores.length} scored; ${JSON.stringify(service.detector.stats())}; log: ${lines().join('\n')}`,
      );
    } finally {
      // Stopping flushes: every open bucket becomes final, so all 1024 seconds get their votes.
      await service.stop();
    }

    const run = await offline;
    expect(run.code, run.stderr).toBe(0);
    const rows = parseCsv(await readFile(resultsPath, 'utf8'));
    expect(rows).toHaveLength(SAMPLES);
    const times = rows.map((row) => Date.parse(row['timestamp']!));

    expect(scores).toHaveLength(EXPECTED_WINDOWS);
    const live = expandScores(scores, times);
    for (const channel of CHANNELS) {
      const { flags, rmse } = live.get(channel)!;
      const offlineFlags = rows.map((row) => Number(row[`${channel}_flag`]));
      expect(flags, `${channel} flags`).toEqual(offlineFlags);
      for (const [i, row] of rows.entries()) {
        const expected = Number(row[`${channel}_rmse`]);
        if (Math.abs(rmse[i]! - expected) > 1e-5) {
          expect.fail(`${channel} sample ${i}: live RMSE ${rmse[i]} vs detect ${expected}`);
        }
      }
    }
    // The example has anomalies the model flags; a run where nothing is flagged would compare nothing useful.
    expect(scores.some((s) => s.anomalous)).toBe(true);

    const byGroup = votesByGroup(votes);
    for (const group of [...GROUPS, 'global']) {
      const column = group === 'global' ? 'global_votes' : `${group}_votes`;
      const groupVotes = byGroup.get(group) ?? new Map<number, BucketVote>();
      expect(groupVotes.size, `${group} buckets`).toBe(SAMPLES);
      const liveVotes = times.map((t) => groupVotes.get(t)?.votes);
      expect(liveVotes, `${group} votes`).toEqual(rows.map((row) => Number(row[column])));
    }
    const globalVotes = byGroup.get('global')!;
    expect(times.map((t) => (globalVotes.get(t)!.anomalous ? 1 : 0))).toEqual(
      rows.map((row) => Number(row['final_cross_obs_flag'])),
    );
    expect(service.detector.stats().lateVotes).toBe(0);
  });
});

/**
 * Per channel and sample (by timestamp), the reference's window expansion of the live scores: a sample is
 * flagged when any window covering it is anomalous, its RMSE is the largest of the windows covering it.
 */
function expandScores(
  scores: readonly WindowScore[],
  times: readonly number[],
): Map<string, { flags: number[]; rmse: number[] }> {
  const index = new Map(times.map((t, i) => [t, i]));
  const out = new Map<string, { flags: number[]; rmse: number[] }>();
  for (const score of scores) {
    let channel = out.get(score.channel);
    if (!channel) {
      channel = { flags: times.map(() => 0), rmse: times.map(() => Number.NaN) };
      out.set(score.channel, channel);
    }
    const first = index.get(score.start);
    const last = index.get(score.end);
    if (first === undefined || last === undefined) {
      throw new Error(
        `window ${score.channel} ${score.start}..${score.end} does not start and end on a sample`,
      );
    }
    expect(last - first + 1).toBe(WINDOW);
    for (let i = first; i <= last; i++) {
      if (score.anomalous) channel.flags[i] = 1;
      if (!(channel.rmse[i]! >= score.rmse)) channel.rmse[i] = score.rmse;
    }
  }
  return out;
}

/** Final votes per group and bucket start; a bucket voted twice is an error. */
function votesByGroup(votes: readonly BucketVote[]): Map<string, Map<number, BucketVote>> {
  const out = new Map<string, Map<number, BucketVote>>();
  for (const vote of votes) {
    let group = out.get(vote.group);
    if (!group) {
      group = new Map();
      out.set(vote.group, group);
    }
    if (group.has(vote.start)) throw new Error(`bucket ${vote.group} ${vote.start} voted twice`);
    group.set(vote.start, vote);
  }
  return out;
}

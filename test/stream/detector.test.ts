import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { VoteRule } from '../../src/detector/bundle.js';
import {
  applyScaler,
  countVotes,
  expandWindows,
  requiredVotes,
  windowStarts,
} from '../../src/detector/reference.js';
import { cadenceDefaults, LiveDetector, type LiveDetectorOptions } from '../../src/stream/detector.js';
import type { AnomalyEvent, BucketVote, WindowScore } from '../../src/stream/types.js';
import { FakeEngine, maxAbs, type TestChannel, testBundle } from './helpers.js';

/** Data time of the first sample: a round second, so that buckets and windows line up. */
const T0 = Date.UTC(2026, 0, 1);

interface Harness {
  detector: LiveDetector;
  engine: FakeEngine;
  scores: WindowScore[];
  votes: BucketVote[];
  events: AnomalyEvent[];
}

function harness(
  channels: TestChannel[],
  shape: { window: number; step: number; vote: VoteRule },
  options: LiveDetectorOptions = {},
): Harness {
  const engine = new FakeEngine(shape.window);
  const detector = new LiveDetector({
    bundle: testBundle(channels, shape),
    engine,
    bundleVersion: 'test-bundle@1',
    options: { maxDelayMs: 10, silentAfterMs: 3_600_000, ...options },
  });
  const h: Harness = { detector, engine, scores: [], votes: [], events: [] };
  detector.scores$.subscribe((s) => h.scores.push(s));
  detector.votes$.subscribe((v) => h.votes.push(v));
  detector.events$.subscribe((e) => h.events.push(e));
  return h;
}

describe('LiveDetector', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('scores and votes exactly as the offline rule on the same series', async () => {
    const W = 4;
    const step = 2;
    const n = 23;
    const cadenceMs = 1_000;
    const channels: TestChannel[] = [
      { sensor: 'S1_OBS1', component: 'b_x', group: 'OBS1', mean: 10, scale: 2, threshold: 1.2 },
      { sensor: 'S1_OBS1', component: 'b_y', group: 'OBS1', mean: -3, scale: 0.5, threshold: 2 },
      { sensor: 'S2_OBS2', component: 'b_x', group: 'OBS2', mean: 0, scale: 1, threshold: 1.5 },
    ];
    // A deterministic series with a few excursions per channel.
    const series = channels.map((c, ch) =>
      Array.from({ length: n }, (_, t) => {
        const wiggle = Math.sin(t * 1.7 + ch) * 0.8;
        const spike = (t + ch * 3) % 9 === 0 ? 2.5 : 0;
        return (c.mean ?? 0) + (c.scale ?? 1) * (wiggle + spike);
      }),
    );
    const h = harness(channels, { window: W, step, vote: { fraction: 0.56 } }, { bucketMs: cadenceMs });

    for (let t = 0; t < n; t++) {
      h.detector.push({
        sensor: 'S1_OBS1',
        timestamp: T0 + t * cadenceMs,
        values: { b_x: series[0]![t]!, b_y: series[1]![t]! },
      });
      h.detector.push({ sensor: 'S2_OBS2', timestamp: T0 + t * cadenceMs, values: { b_x: series[2]![t]! } });
      // Live pace: batches leave and buckets become final while samples keep coming.
      await vi.advanceTimersByTimeAsync(cadenceMs);
    }
    const finalBeforeFlush = h.votes.length;
    await h.detector.flush();
    expect(finalBeforeFlush).toBeGreaterThan(h.votes.length / 2);

    // The offline rule, from the shared reference: windows at 0, step, … while start + W <= n, strict flags,
    // window expansion, votes per sample.
    const starts = windowStarts(n, W, step);
    const flags = channels.map((c, ch) => {
      const name = `${c.sensor}__${c.component}`;
      const scaled = applyScaler(series[ch]!, { mean: c.mean!, scale: c.scale! });
      const rmse = Float32Array.from(starts, (start) => maxAbs(scaled, start, W));
      const live = h.scores.filter((s) => s.channel === name);
      expect(live.map((s) => [s.start, s.end, s.rmse, s.anomalous])).toEqual(
        starts.map((start, w) => [
          T0 + start * cadenceMs,
          T0 + (start + W - 1) * cadenceMs,
          rmse[w],
          rmse[w]! > c.threshold!,
        ]),
      );
      return expandWindows(n, starts, rmse, W, c.threshold!).flags;
    });
    expect(h.scores.some((s) => s.anomalous)).toBe(true);
    expect(h.scores.some((s) => !s.anomalous)).toBe(true);

    // One sample per bucket here, so bucket votes are the per-sample votes over the samples windows cover.
    const covered = starts.at(-1)! + W;
    const timeline = Array.from({ length: covered }, (_, t) => T0 + t * cadenceMs);
    const offline = (members: Uint8Array[]) => [...countVotes(members, n).subarray(0, covered)];
    const liveVotes = (group: string) => h.votes.filter((v) => v.group === group);
    for (const [group, members, count] of [
      ['global', flags, 3],
      ['OBS1', flags.slice(0, 2), 2],
      ['OBS2', flags.slice(2), 1],
    ] as const) {
      const live = liveVotes(group);
      const required = requiredVotes({ fraction: 0.56 }, count);
      expect(live.map((v) => v.start)).toEqual(timeline);
      expect(live.map((v) => v.votes)).toEqual(offline([...members]));
      expect(live.map((v) => v.anomalous)).toEqual(offline([...members]).map((votes) => votes >= required));
    }
    expect(liveVotes('global').some((v) => v.anomalous)).toBe(true);
    await h.detector.close();
  });

  it('skips a null component without advancing its channel', async () => {
    const h = harness(
      [
        { sensor: 'S1', component: 'b_x', group: 'OBS_ALL' },
        { sensor: 'S1', component: 'b_y', group: 'OBS_ALL' },
      ],
      {
        window: 3,
        step: 3,
        vote: { minChannels: 1 },
      },
    );
    h.detector.push({ sensor: 'S1', timestamp: T0, values: { b_x: 0.1, b_y: 0.1 } });
    h.detector.push({ sensor: 'S1', timestamp: T0 + 1_000, values: { b_x: null, b_y: 0.2 } });
    h.detector.push({ sensor: 'S1', timestamp: T0 + 2_000, values: { b_x: 0.3, b_y: 0.3 } });
    await h.detector.flush();
    expect(h.scores.map((s) => s.channel)).toEqual(['S1__b_y']);
    h.detector.push({ sensor: 'S1', timestamp: T0 + 3_000, values: { b_x: 0.4 } });
    await h.detector.flush();
    expect(h.scores.map((s) => [s.channel, s.start, s.end])).toEqual([
      ['S1__b_y', T0, T0 + 2_000],
      ['S1__b_x', T0, T0 + 3_000],
    ]);
    expect(h.detector.stats()).toMatchObject({ samples: 4, accepted: 6, missing: 1 });
    await h.detector.close();
  });

  it('counts values of unknown sensors and components, and samples without a valid time', async () => {
    const h = harness([{ sensor: 'S1', component: 'b_x', group: 'OBS_ALL' }], {
      window: 2,
      step: 2,
      vote: { minChannels: 1 },
    });
    h.detector.push({ sensor: 'S9', timestamp: T0, values: { b_x: 1, b_y: 2 } });
    h.detector.push({ sensor: 'S1', timestamp: T0, values: { b_x: 1, f: 3 } });
    h.detector.push({ sensor: 'S1', timestamp: Number.NaN, values: { b_x: 1 } });
    h.detector.push({ sensor: 'S1', timestamp: T0, values: { b_x: 1 } });
    expect(h.detector.stats().dropped).toEqual({
      duplicate: 1,
      late: 0,
      unknownChannel: 3,
      invalid: 1,
      queue: 0,
      inference: 0,
    });
    await h.detector.close();
  });

  describe('bucket finalisation', () => {
    const channels = ['A_OBS1', 'B_OBS1', 'C_OBS1'].map((sensor) => ({
      sensor,
      component: 'b_x',
      group: 'OBS1',
    }));

    /** Window k of a sensor: 4 samples in second k, spiking in `spikeWindow`. */
    function pushWindow(h: Harness, sensor: string, k: number, spikeWindow: number) {
      for (let i = 0; i < 4; i++) {
        const value = k === spikeWindow && i === 2 ? 5 : 0.1;
        h.detector.push({ sensor, timestamp: T0 + k * 1_000 + i * 250, values: { b_x: value } });
      }
    }

    /** A reports second k at clock second k, B the same second `lagS` seconds later; C never reports. */
    async function run(lagS: number, latenessMs: number) {
      const h = harness(
        channels,
        { window: 4, step: 4, vote: { minChannels: 2 } },
        { bucketMs: 1_000, latenessMs },
      );
      const seconds = 6;
      const votesAt: number[] = [];
      for (let clock = 0; clock < seconds + lagS + 12; clock++) {
        if (clock < seconds) pushWindow(h, 'A_OBS1', clock, 2);
        if (clock - lagS >= 0 && clock - lagS < seconds) pushWindow(h, 'B_OBS1', clock - lagS, 2);
        await vi.advanceTimersByTimeAsync(1_000);
        votesAt.push(h.votes.filter((v) => v.group === 'OBS1').length);
      }
      return { h, votesAt };
    }

    it('waits for a channel that lags within the lateness and counts its votes', async () => {
      const { h, votesAt } = await run(3, 10_000);
      // C never reports, so nothing is final by watermark; each bucket is final 10 s after its first score.
      expect(votesAt.slice(0, 10)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
      expect(votesAt.at(-1)).toBe(6);
      await h.detector.flush();
      const votes = h.votes.filter((v) => v.group === 'OBS1');
      expect(votes.map((v) => v.votes)).toEqual([0, 0, 2, 0, 0, 0]);
      expect(h.events.map((e) => e.event)).toEqual(['anomaly.start', 'anomaly.end']);
      expect(h.detector.stats().lateVotes).toBe(0);
      await h.detector.close();
    });

    it('makes buckets final after the lateness without a missing channel and loses a later vote', async () => {
      const { h, votesAt } = await run(5, 2_000);
      // The first bucket is final about 2 s after A's window covering it was scored, without B or C.
      expect(votesAt[3]).toBeGreaterThan(0);
      await h.detector.flush();
      const votes = h.votes.filter((v) => v.group === 'OBS1');
      expect(votes.map((v) => v.votes)).toEqual([0, 0, 1, 0, 0, 0]);
      expect(h.events.map((e) => [e.event, e.sensor])).toEqual([['sensor.anomaly', 'A_OBS1']]);
      // B's anomalous window came after its bucket was final, in the group and in the global vote.
      expect(h.detector.stats().lateVotes).toBe(2);
      await h.detector.close();
    });
  });

  it('reports a channel silent once and resumed when it returns', async () => {
    const h = harness(
      [
        { sensor: 'S1', component: 'b_x', group: 'OBS_ALL' },
        { sensor: 'S2', component: 'b_x', group: 'OBS_ALL' },
        { sensor: 'S2', component: 'b_y', group: 'OBS_ALL' },
      ],
      { window: 4, step: 4, vote: { minChannels: 2 } },
      { silentAfterMs: 5_000, tickMs: 1_000 },
    );
    h.detector.push({ sensor: 'S2', timestamp: T0, values: { b_x: 1, b_y: 1 } });
    for (let s = 0; s < 12; s++) {
      h.detector.push({ sensor: 'S1', timestamp: T0 + s * 1_000, values: { b_x: 1 } });
      await vi.advanceTimersByTimeAsync(1_000);
    }
    expect(h.events).toHaveLength(1);
    expect(h.detector.stats().silentChannels).toBe(2);
    h.detector.push({ sensor: 'S2', timestamp: T0 + 12_000, values: { b_x: 2, b_y: null } });
    expect(h.events).toMatchInlineSnapshot(`
      [
        {
          "bundleVersion": "test-bundle@1",
          "channels": [
            {
              "channel": "S2__b_x",
              "rmse": NaN,
              "threshold": 1,
            },
            {
              "channel": "S2__b_y",
              "rmse": NaN,
              "threshold": 1,
            },
          ],
          "event": "sensor.silent",
          "group": "OBS_ALL",
          "id": "S2-silent-1767225600000",
          "scope": "sensor",
          "sensor": "S2",
          "start": "2026-01-01T00:00:00.000Z",
        },
        {
          "bundleVersion": "test-bundle@1",
          "channels": [
            {
              "channel": "S2__b_x",
              "rmse": NaN,
              "threshold": 1,
            },
          ],
          "end": "2026-01-01T00:00:12.000Z",
          "event": "sensor.resumed",
          "group": "OBS_ALL",
          "id": "S2-silent-1767225600000",
          "scope": "sensor",
          "sensor": "S2",
          "start": "2026-01-01T00:00:00.000Z",
        },
      ]
    `);
    expect(h.detector.stats().silentChannels).toBe(1);
    await h.detector.close();
  });

  describe("the bundle's cadence", () => {
    const MINUTE = 60_000;
    const channels: TestChannel[] = [
      { sensor: 'BOU', component: 'b_x', group: 'OBS1' },
      { sensor: 'BOU', component: 'b_y', group: 'OBS1' },
    ];
    const shape = { window: 4, step: 4, vote: { minChannels: 2 } };

    /** Twelve samples a minute apart, at a minute's pace, into a detector on a bundle with `cadenceMs`. */
    async function minuteFeed(cadenceMs: number | undefined) {
      const bundle = testBundle(channels, shape);
      const detector = new LiveDetector({
        bundle: cadenceMs ? { ...bundle, manifest: { ...bundle.manifest, cadenceMs } } : bundle,
        engine: new FakeEngine(shape.window),
        bundleVersion: 'test-bundle@1',
      });
      const scores: WindowScore[] = [];
      const votes: BucketVote[] = [];
      const events: AnomalyEvent[] = [];
      detector.scores$.subscribe((score) => scores.push(score));
      detector.votes$.subscribe((vote) => votes.push(vote));
      detector.events$.subscribe((event) => events.push(event));
      for (let t = 0; t < 12; t++) {
        detector.push({ sensor: 'BOU', timestamp: T0 + t * MINUTE, values: { b_x: 0.5, b_y: 0.5 } });
        await vi.advanceTimersByTimeAsync(MINUTE);
      }
      await detector.flush();
      const stats = detector.stats();
      await detector.close();
      return { detector, scores, votes, events, stats };
    }

    it('sizes gap, bucket, lateness and silence from a 1-minute cadence', async () => {
      const { detector, scores, votes, events, stats } = await minuteFeed(MINUTE);
      expect(detector.options).toMatchObject({
        maxGapMs: 5 * MINUTE,
        bucketMs: MINUTE,
        latenessMs: 5 * MINUTE,
        silentAfterMs: 30 * MINUTE,
      });
      expect(stats.gapResets).toBe(0);
      expect(scores).toHaveLength(2 * 3);
      // One bucket per sample, as the offline vote counts per sample.
      expect(votes.filter((v) => v.group === 'OBS1').map((v) => v.start)).toEqual(
        Array.from({ length: 12 }, (_, t) => T0 + t * MINUTE),
      );
      expect(events).toEqual([]);
    });

    it('keeps the fixed defaults without a cadence, which a 1-minute feed cannot use', async () => {
      const { scores, events, stats } = await minuteFeed(undefined);
      expect(stats.gapResets).toBeGreaterThan(0);
      expect(scores).toEqual([]);
      expect(events.map((e) => e.event)).toContain('sensor.silent');
    });

    it('never sets a default below the fixed one', () => {
      expect(cadenceDefaults(100)).toEqual({
        maxGapMs: 5_000,
        bucketMs: 1_000,
        latenessMs: 5_000,
        silentAfterMs: 30_000,
      });
    });
  });

  it('reports a channel that never sends as silent', async () => {
    const h = harness(
      [{ sensor: 'S1', component: 'b_x', group: 'OBS_ALL' }],
      { window: 4, step: 4, vote: { minChannels: 1 } },
      { silentAfterMs: 2_000 },
    );
    await vi.advanceTimersByTimeAsync(1_999);
    expect(h.events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(h.events.map((e) => [e.event, e.id, e.start])).toEqual([
      ['sensor.silent', `S1-silent-${T0}`, new Date(T0).toISOString()],
    ]);
    await h.detector.close();
  });

  it('counts samples, windows, batches and inference in its stats', async () => {
    const h = harness(
      [{ sensor: 'S1', component: 'b_x', group: 'OBS_ALL' }],
      { window: 2, step: 1, vote: { minChannels: 1 } },
      { maxBatch: 2 },
    );
    for (let t = 0; t < 6; t++)
      h.detector.push({ sensor: 'S1', timestamp: T0 + t * 1_000, values: { b_x: 0.5 } });
    h.detector.push({ sensor: 'S1', timestamp: T0 + 1_000, values: { b_x: 0.5 } });
    await h.detector.flush();
    expect(h.detector.stats()).toEqual({
      samples: 7,
      accepted: 6,
      missing: 0,
      dropped: { duplicate: 0, late: 1, unknownChannel: 0, invalid: 0, queue: 0, inference: 0 },
      gapResets: 0,
      windows: 5,
      windowsScored: 5,
      batches: 3,
      failedBatches: 0,
      batchSize: { last: 1, max: 2, mean: 5 / 3 },
      queueDepth: 0,
      inferenceMs: { last: 0, max: 0, mean: 0 },
      lateVotes: 0,
      votes: 12,
      events: 0,
      silentChannels: 0,
    });
    await h.detector.close();
  });

  it('rejects options a configuration cannot mean', () => {
    const bundle = testBundle([{ sensor: 'S1', component: 'b_x', group: 'OBS_ALL' }], {
      window: 2,
      step: 2,
      vote: { minChannels: 1 },
    });
    const make = (options: LiveDetectorOptions) => () =>
      new LiveDetector({ bundle, engine: new FakeEngine(2), bundleVersion: 'v', options });
    expect(make({ bucketMs: 0 })).toThrow(/'bucketMs' must be positive/);
    expect(make({ maxBatch: 10, maxQueue: 5 })).toThrow(
      /'maxQueue' \(5\) must be at least 'maxBatch' \(10\)/,
    );
    expect(make({ latenessMs: Number.NaN })).toThrow(/'latenessMs' must be a non-negative number/);
  });

  it('completes its observables on close and ignores later samples', async () => {
    const h = harness([{ sensor: 'S1', component: 'b_x', group: 'OBS_ALL' }], {
      window: 2,
      step: 2,
      vote: { minChannels: 1 },
    });
    let completed = 0;
    h.detector.events$.subscribe({ complete: () => completed++ });
    h.detector.votes$.subscribe({ complete: () => completed++ });
    h.detector.scores$.subscribe({ complete: () => completed++ });
    await h.detector.close();
    h.detector.push({ sensor: 'S1', timestamp: T0, values: { b_x: 1 } });
    expect(completed).toBe(3);
    expect(h.detector.stats().samples).toBe(0);
    await h.detector.close();
  });

  describe('scope', () => {
    // Two groups of three sensors; fraction 0.6: a group needs 2 votes, the global vote 4 of 6.
    const sensors = ['S1_OBS1', 'S2_OBS1', 'S3_OBS1', 'S4_OBS2', 'S5_OBS2', 'S6_OBS2'];
    const channels = sensors.map((sensor) => ({
      sensor,
      component: 'b_x',
      group: sensor.slice(3),
      threshold: 1,
    }));

    /** One window per second (4 samples, 250 ms apart); `spikes[k]` lists the sensors anomalous in window k. */
    async function run(spikes: Record<number, string[]>, windows: number) {
      const h = harness(
        channels,
        { window: 4, step: 4, vote: { fraction: 0.6 } },
        { bucketMs: 1_000, minNormal: 2 },
      );
      for (let k = 0; k < windows; k++) {
        for (let i = 0; i < 4; i++) {
          for (const sensor of sensors) {
            const value = i === 1 && spikes[k]?.includes(sensor) ? 5 : 0.1;
            h.detector.push({ sensor, timestamp: T0 + k * 1_000 + i * 250, values: { b_x: value } });
          }
        }
        await vi.advanceTimersByTimeAsync(1_000);
      }
      await h.detector.flush();
      await h.detector.close();
      return h;
    }

    it('reports a channel that no vote carries once per stretch as a sensor event', async () => {
      const h = await run({ 2: ['S1_OBS1'], 3: ['S1_OBS1'], 5: ['S1_OBS1'] }, 8);
      expect(h.events.map((e) => [e.event, e.scope, e.group, e.sensor, e.id])).toEqual([
        ['sensor.anomaly', 'sensor', 'OBS1', 'S1_OBS1', `S1_OBS1-${T0 + 2_000}`],
        ['sensor.anomaly', 'sensor', 'OBS1', 'S1_OBS1', `S1_OBS1-${T0 + 5_000}`],
      ]);
    });

    it('keeps an event of one group at group scope', async () => {
      const h = await run({ 2: ['S1_OBS1', 'S2_OBS1'], 3: ['S1_OBS1', 'S2_OBS1'] }, 8);
      expect(h.events.map((e) => [e.event, e.scope, e.group, e.start, e.end])).toEqual([
        ['anomaly.start', 'group', 'OBS1', new Date(T0 + 2_000).toISOString(), undefined],
        [
          'anomaly.end',
          'group',
          'OBS1',
          new Date(T0 + 2_000).toISOString(),
          new Date(T0 + 4_000).toISOString(),
        ],
      ]);
    });

    it('makes an event seen by several groups at once global', async () => {
      const h = await run({ 2: ['S1_OBS1', 'S2_OBS1', 'S4_OBS2', 'S5_OBS2'] }, 6);
      expect(h.events.map((e) => [e.event, e.scope, e.group, e.groups])).toEqual([
        ['anomaly.start', 'global', 'OBS1', ['OBS1', 'OBS2']],
        ['anomaly.start', 'global', 'OBS2', ['OBS1', 'OBS2']],
        ['anomaly.start', 'global', 'global', ['OBS1', 'OBS2']],
        ['anomaly.end', 'global', 'OBS1', ['OBS1', 'OBS2']],
        ['anomaly.end', 'global', 'OBS2', ['OBS1', 'OBS2']],
        ['anomaly.end', 'global', 'global', ['OBS1', 'OBS2']],
      ]);
      expect(h.events[2]).toMatchInlineSnapshot(`
        {
          "bundleVersion": "test-bundle@1",
          "channels": [
            {
              "channel": "S1_OBS1__b_x",
              "rmse": 5,
              "threshold": 1,
            },
            {
              "channel": "S2_OBS1__b_x",
              "rmse": 5,
              "threshold": 1,
            },
            {
              "channel": "S4_OBS2__b_x",
              "rmse": 5,
              "threshold": 1,
            },
            {
              "channel": "S5_OBS2__b_x",
              "rmse": 5,
              "threshold": 1,
            },
          ],
          "event": "anomaly.start",
          "group": "global",
          "groups": [
            "OBS1",
            "OBS2",
          ],
          "id": "global-1767225602000",
          "peakVotes": 4,
          "requiredVotes": 4,
          "scope": "global",
          "start": "2026-01-01T00:00:02.000Z",
        }
      `);
    });
  });
});

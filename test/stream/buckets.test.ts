import { describe, expect, it } from 'vitest';
import { bucketStart, VoteBuckets } from '../../src/stream/buckets.js';
import { info } from './helpers.js';

const a = info('A__b_x');
const b = info('B__b_x');
const c = info('C__b_x');

/** Records a window [start, end] whose votes are complete up to just past its end. */
function score(
  buckets: VoteBuckets,
  channel = a,
  start = 0,
  end = 999,
  anomalous = false,
  rmse = 2,
  now = 0,
) {
  buckets.record(channel, start, end, rmse, anomalous, end + 1, now);
}

describe('required votes', () => {
  const options = { bucketMs: 1_000, latenessMs: 5_000 };
  const members = (n: number) => Array.from({ length: n }, (_, i) => info(`S${i}__b_x`));

  it('uses minChannels as is, even above the channel count', () => {
    expect(new VoteBuckets('OBS1', members(3), { minChannels: 5 }, options).required).toBe(5);
    expect(new VoteBuckets('OBS1', members(9), { minChannels: 2 }, options).required).toBe(2);
  });

  it('rounds a fraction of the channel count up', () => {
    expect(new VoteBuckets('OBS1', members(9), { fraction: 0.56 }, options).required).toBe(6);
    expect(new VoteBuckets('OBS1', members(4), { fraction: 0.5 }, options).required).toBe(2);
    // 25 × 0.56 is 14.000000000000002 in float64, as in the reference's Python: 15 votes.
    expect(new VoteBuckets('global', members(25), { fraction: 0.56 }, options).required).toBe(15);
  });

  it('is anomalous at exactly the required votes', () => {
    const [a, b, c] = members(3) as [
      ReturnType<typeof info>,
      ReturnType<typeof info>,
      ReturnType<typeof info>,
    ];
    const buckets = new VoteBuckets('OBS1', [a, b, c], { fraction: 0.5 }, options);
    buckets.record(a, 0, 999, 2, true, 1_000, 0);
    buckets.record(b, 0, 999, 2, false, 1_000, 0);
    buckets.record(c, 0, 999, 2, false, 1_000, 0);
    buckets.record(a, 1_000, 1_999, 2, true, 2_000, 0);
    buckets.record(b, 1_000, 1_999, 2, true, 2_000, 0);
    buckets.record(c, 1_000, 1_999, 2, false, 2_000, 0);
    expect(buckets.finalise(0).map((f) => [f.vote.votes, f.vote.required, f.vote.anomalous])).toEqual([
      [1, 2, false],
      [2, 2, true],
    ]);
  });
});

describe('bucketStart', () => {
  it('aligns buckets to the epoch', () => {
    expect(bucketStart(1_700_000_000_123, 1_000)).toBe(1_700_000_000_000);
    expect(bucketStart(999, 1_000)).toBe(0);
    expect(bucketStart(1_000, 1_000)).toBe(1_000);
  });
});

describe('VoteBuckets', () => {
  const options = { bucketMs: 1_000, latenessMs: 5_000 };

  it('votes once per channel for every bucket an anomalous window covers', () => {
    const buckets = new VoteBuckets('OBS1', [a, b, c], { minChannels: 2 }, options);
    score(buckets, a, 500, 2_499, true, 3);
    score(buckets, a, 1_000, 2_999, true, 4);
    score(buckets, b, 1_500, 2_999, true, 5);
    score(buckets, c, 0, 2_999, false);
    const finals = buckets.finalise(0);
    expect(finals.map((f) => f.vote)).toEqual([
      { group: 'OBS1', start: 0, votes: 1, required: 2, anomalous: false },
      { group: 'OBS1', start: 1_000, votes: 2, required: 2, anomalous: true },
      { group: 'OBS1', start: 2_000, votes: 2, required: 2, anomalous: true },
    ]);
    // The largest RMSE of each channel in the bucket explains the vote.
    expect([...finals[1]!.flagged].map(([i, rmse]) => [i.channel, rmse])).toEqual([
      ['A__b_x', 4],
      ['B__b_x', 5],
    ]);
  });

  it('holds a bucket until every channel is scored past its end', () => {
    const buckets = new VoteBuckets('OBS1', [a, b], { minChannels: 1 }, options);
    score(buckets, a, 0, 1_999);
    expect(buckets.finalise(0)).toEqual([]);
    // B lags and reaches only into the second bucket: the first is final, the second not yet.
    score(buckets, b, 0, 1_499);
    expect(buckets.finalise(0).map((f) => f.vote.start)).toEqual([0]);
    score(buckets, b, 1_500, 2_999);
    expect(buckets.finalise(0).map((f) => f.vote.start)).toEqual([1_000]);
    expect(buckets.pending).toBe(1);
  });

  it('waits for overlapping windows that can still cover a bucket', () => {
    const buckets = new VoteBuckets('OBS1', [a], { minChannels: 1 }, options);
    // A window ending at 1999 whose successor starts at 1000: the bucket at 1000 may still get a vote.
    buckets.record(a, 0, 1_999, 0.5, false, 1_000, 0);
    expect(buckets.finalise(0).map((f) => f.vote.start)).toEqual([0]);
    buckets.record(a, 1_000, 2_999, 3, true, 2_000, 0);
    expect(buckets.finalise(0).map((f) => f.vote)).toEqual([
      { group: 'OBS1', start: 1_000, votes: 1, required: 1, anomalous: true },
    ]);
  });

  it('makes a bucket final latenessMs after its first score when a channel never reports', () => {
    const buckets = new VoteBuckets('OBS1', [a, b], { minChannels: 1 }, options);
    score(buckets, a, 0, 999, true, 2, 100);
    score(buckets, a, 1_000, 1_999, true, 2, 2_000);
    expect(buckets.finalise(5_099)).toEqual([]);
    expect(buckets.finalise(5_100).map((f) => f.vote.start)).toEqual([0]);
    expect(buckets.finalise(7_000).map((f) => f.vote.start)).toEqual([1_000]);
  });

  it('counts a vote that arrives after its bucket was final as late', () => {
    const buckets = new VoteBuckets('OBS1', [a, b], { minChannels: 2 }, options);
    score(buckets, a, 0, 999, true, 2, 0);
    const finals = buckets.finalise(5_000);
    expect(finals.map((f) => f.vote.votes)).toEqual([1]);
    score(buckets, b, 0, 999, true, 2, 6_000);
    expect(buckets.lateVotes).toBe(1);
    expect(buckets.pending).toBe(0);
  });

  it('emits final buckets in time order when jittered channels open them out of order', () => {
    const buckets = new VoteBuckets('OBS1', [a, b], { minChannels: 2 }, options);
    score(buckets, a, 2_000, 2_999, true);
    score(buckets, b, 0, 999, true);
    score(buckets, a, 0, 1_999, true);
    score(buckets, b, 1_000, 2_999, true);
    expect(buckets.finalise(0).map((f) => [f.vote.start, f.vote.votes])).toEqual([
      [0, 2],
      [1_000, 2],
      [2_000, 2],
    ]);
  });

  it('has no votes for buckets no window covers', () => {
    const buckets = new VoteBuckets('OBS1', [a], { minChannels: 1 }, options);
    score(buckets, a, 0, 999);
    score(buckets, a, 5_000, 5_999);
    expect(buckets.finalise(0).map((f) => f.vote.start)).toEqual([0, 5_000]);
  });

  it('makes every open bucket final when forced', () => {
    const buckets = new VoteBuckets('OBS1', [a, b], { minChannels: 1 }, options);
    score(buckets, a, 0, 2_999);
    expect(buckets.finalise(0)).toEqual([]);
    expect(buckets.finalise(0, true)).toHaveLength(3);
  });
});

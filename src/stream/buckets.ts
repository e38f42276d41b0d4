import { requiredVotes, type VoteRule } from '../detector/reference.js';
import type { ChannelInfo } from './channel-window.js';
import type { BucketVote } from './types.js';

/** Start (epoch ms) of the bucket that holds `time`; buckets are aligned to the epoch. */
export function bucketStart(time: number, bucketMs: number): number {
  return Math.floor(time / bucketMs) * bucketMs;
}

/** A bucket's vote once final, with the channels that voted and their largest RMSE in the bucket. */
export interface FinalBucket {
  readonly vote: BucketVote;
  readonly flagged: ReadonlyMap<ChannelInfo, number>;
}

export interface VoteBucketsOptions {
  /** Bucket width, ms; should be at least the sample cadence. */
  readonly bucketMs: number;
  /** Clock time (ms) a bucket waits for channels that have not scored past it, counted from its first score. */
  readonly latenessMs: number;
}

interface OpenBucket {
  readonly start: number;
  /** Clock time the first window covering the bucket was scored. */
  readonly touchedAt: number;
  /** Flagged channels and their largest RMSE here; created on the first flag, since most buckets have none. */
  flagged: Map<ChannelInfo, number> | null;
}

const NO_CHANNELS: ReadonlyMap<ChannelInfo, number> = new Map();

/**
 * The votes of one group (or of all channels, for the global vote) over time buckets. A channel votes for every
 * bucket its anomalous windows cover, as the reference flags every sample of an anomalous window. Only buckets
 * that some scored window covers exist, so a stretch with no data yields no votes rather than normal ones.
 *
 * A bucket is final when every channel of the group has been scored past its end, or `latenessMs` after its
 * first score on the clock, whichever comes first; final votes come out in time order. The lateness runs from
 * the first score rather than from the bucket's end because replayed feeds carry old timestamps.
 */
export class VoteBuckets {
  /**
   * Votes a bucket needs to be anomalous, by the reference's rule for every group and the global vote alike:
   * `minChannels` as is (a group with fewer channels is then never anomalous) or `ceil(members * fraction)`.
   */
  readonly required: number;
  /** Anomalous windows that covered buckets already final; their votes were lost. */
  lateVotes = 0;

  private readonly members = new Map<string, number>();
  /** Per member: epoch ms before which its votes are complete. */
  private readonly settled: Float64Array;
  private readonly open = new Map<number, OpenBucket>();
  /** Starts of the open buckets, ascending. */
  private readonly order: number[] = [];
  private finalisedThrough = Number.NEGATIVE_INFINITY;

  constructor(
    readonly group: string,
    members: readonly ChannelInfo[],
    rule: VoteRule,
    private readonly options: VoteBucketsOptions,
  ) {
    if (!(options.bucketMs > 0)) throw new RangeError(`bucketMs must be positive, got ${options.bucketMs}`);
    for (const [index, info] of members.entries()) this.members.set(info.channel, index);
    this.settled = new Float64Array(members.length).fill(Number.NEGATIVE_INFINITY);
    this.required = requiredVotes(rule, members.length);
  }

  /** Buckets not yet final. */
  get pending(): number {
    return this.order.length;
  }

  /**
   * Records one scored window of a member channel. `settledBefore` (epoch ms, exclusive) says up to when the
   * channel will not vote again; `now` is the clock time.
   */
  record(
    info: ChannelInfo,
    start: number,
    end: number,
    rmse: number,
    anomalous: boolean,
    settledBefore: number,
    now: number,
  ): void {
    const member = this.members.get(info.channel);
    if (member === undefined) return;
    if (settledBefore > this.settled[member]!) this.settled[member] = settledBefore;

    const { bucketMs } = this.options;
    const last = bucketStart(end, bucketMs);
    for (let at = bucketStart(start, bucketMs); at <= last; at += bucketMs) {
      if (at <= this.finalisedThrough) {
        if (anomalous) this.lateVotes++;
        continue;
      }
      const bucket = this.open.get(at) ?? this.openBucket(at, now);
      if (!anomalous) continue;
      bucket.flagged ??= new Map();
      const before = bucket.flagged.get(info);
      if (before === undefined || rmse > before) bucket.flagged.set(info, rmse);
    }
  }

  /** Closes the buckets that are final at clock time `now` (all open ones when `force`), oldest first. */
  finalise(now: number, force = false): FinalBucket[] {
    const finals: FinalBucket[] = [];
    if (this.order.length === 0) return finals;
    let settled = Number.POSITIVE_INFINITY;
    for (const value of this.settled) if (value < settled) settled = value;

    while (this.order.length > 0) {
      const start = this.order[0]!;
      const bucket = this.open.get(start)!;
      const end = start + this.options.bucketMs;
      if (!force && settled < end && now - bucket.touchedAt < this.options.latenessMs) break;
      this.order.shift();
      this.open.delete(start);
      this.finalisedThrough = start;
      const flagged = bucket.flagged ?? NO_CHANNELS;
      const votes = flagged.size;
      finals.push({
        vote: { group: this.group, start, votes, required: this.required, anomalous: votes >= this.required },
        flagged,
      });
    }
    return finals;
  }

  private openBucket(start: number, now: number): OpenBucket {
    const bucket: OpenBucket = { start, touchedAt: now, flagged: null };
    this.open.set(start, bucket);
    // Windows arrive nearly in time order, so the new start almost always goes last.
    let at = this.order.length;
    while (at > 0 && this.order[at - 1]! > start) at--;
    this.order.splice(at, 0, start);
    return bucket;
  }
}

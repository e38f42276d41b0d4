import type { FinalBucket } from './buckets.js';
import type { ChannelInfo } from './channel-window.js';
import type { AnomalyEvent } from './types.js';

/** Name of the vote over all channels, used as its group in votes and events. */
export const GLOBAL_GROUP = 'global';

export interface GroupEventsOptions {
  /** Bucket width, ms. */
  readonly bucketMs: number;
  /** Normal final buckets in a row that end an event. */
  readonly minNormal: number;
  readonly bundleVersion: string;
  /**
   * Whether the network has more than one group. Only then can a group's event be `global`, and only then does
   * the global vote have events of its own (with one group they would repeat the group's).
   */
  readonly multiGroup: boolean;
}

interface OpenEvent {
  readonly start: number;
  readonly required: number;
  /** End (exclusive, epoch ms) of the last anomalous bucket. */
  lastAnomalousEnd: number;
  peakVotes: number;
  readonly channels: Map<ChannelInfo, number>;
  normalRun: number;
  /** Set once the global vote was anomalous in one of the event's anomalous buckets. */
  global: boolean;
  readonly groups: Set<string>;
}

export function isoTime(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

/** Channels with RMSE and threshold, ordered by channel name so that payloads are stable. */
export function channelList(
  channels: ReadonlyMap<ChannelInfo, number>,
): Array<{ channel: string; rmse: number; threshold: number }> {
  return [...channels]
    .map(([info, rmse]) => ({ channel: info.channel, rmse, threshold: info.threshold }))
    .sort((a, b) => (a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0));
}

/**
 * The event lifecycle of one group, or of the global vote: `anomaly.start` at the first anomalous final bucket,
 * `anomaly.end` after `minNormal` normal final buckets in a row. Buckets must come in time order.
 *
 * Scope: `global` when the global vote is anomalous and the channels that carry it belong to more than one group
 * (an event seen by several observatories at once, such as a storm), else `group` (a local disturbance, even one
 * large enough to pass the global vote alone). `anomaly.start` tells the scope of the event's first bucket;
 * `anomaly.end` tells it over all the event's anomalous buckets, so an event that one group saw first and
 * others joined later ends as `global`. Events of the global vote itself follow the same rule.
 *
 * The global vote's buckets count as anomalous for its own events only when their flagged channels span several
 * groups, so a local disturbance is not reported a second time on the global topic.
 *
 * Buckets without data have no vote, so an open event ends only once the group's data shows `minNormal`
 * normal buckets, or at `end()` when the stream ends.
 */
export class GroupEvents {
  private current: OpenEvent | null = null;

  constructor(
    readonly group: string,
    private readonly options: GroupEventsOptions,
  ) {}

  /** Whether an event is open. */
  get active(): boolean {
    return this.current !== null;
  }

  /**
   * Takes the group's next final bucket with the global vote of the same bucket (null when the global vote is
   * unknown, e.g. it was final before the group's first window covered it); returns the events it causes.
   */
  step(bucket: FinalBucket, global: FinalBucket | null): AnomalyEvent[] {
    // The global vote's own events are for what several groups carry; one group's disturbance, even one large
    // enough to pass the global vote alone, is that group's event and would otherwise be reported twice.
    const anomalous = bucket.vote.anomalous && (this.group !== GLOBAL_GROUP || spansGroups(bucket.flagged));
    const open = this.current;
    if (!open) {
      if (!anomalous) return [];
      const event: OpenEvent = {
        start: bucket.vote.start,
        required: bucket.vote.required,
        lastAnomalousEnd: 0,
        peakVotes: 0,
        channels: new Map(),
        normalRun: 0,
        global: false,
        groups: new Set(),
      };
      this.current = event;
      this.merge(event, bucket, global);
      return [this.startEvent(event, bucket)];
    }

    if (anomalous) {
      open.normalRun = 0;
      this.merge(open, bucket, global);
      return [];
    }
    open.normalRun++;
    return open.normalRun >= this.options.minNormal ? [this.finish()] : [];
  }

  /** Ends an open event as the stream ends; null when none is open. */
  end(): AnomalyEvent | null {
    return this.current ? this.finish() : null;
  }

  private merge(event: OpenEvent, bucket: FinalBucket, global: FinalBucket | null): void {
    event.lastAnomalousEnd = bucket.vote.start + this.options.bucketMs;
    event.peakVotes = Math.max(event.peakVotes, bucket.vote.votes);
    for (const [info, rmse] of bucket.flagged) {
      const before = event.channels.get(info);
      if (before === undefined || rmse > before) event.channels.set(info, rmse);
    }
    // "Seen by several groups at once": the channels that carried the global vote span more than one group.
    const carried = this.group === GLOBAL_GROUP ? bucket : this.options.multiGroup ? global : null;
    if (carried?.vote.anomalous) {
      for (const info of carried.flagged.keys()) event.groups.add(info.group);
      event.global = event.groups.size > 1;
    }
  }

  private startEvent(event: OpenEvent, bucket: FinalBucket): AnomalyEvent {
    return {
      id: `${this.group}-${event.start}`,
      event: 'anomaly.start',
      scope: event.global ? 'global' : 'group',
      group: this.group,
      start: isoTime(event.start),
      peakVotes: bucket.vote.votes,
      requiredVotes: bucket.vote.required,
      channels: channelList(bucket.flagged),
      ...(event.global ? { groups: [...event.groups].sort() } : {}),
      bundleVersion: this.options.bundleVersion,
    };
  }

  private finish(): AnomalyEvent {
    const event = this.current!;
    this.current = null;
    return {
      id: `${this.group}-${event.start}`,
      event: 'anomaly.end',
      scope: event.global ? 'global' : 'group',
      group: this.group,
      start: isoTime(event.start),
      end: isoTime(event.lastAnomalousEnd),
      peakVotes: event.peakVotes,
      requiredVotes: event.required,
      channels: channelList(event.channels),
      ...(event.global ? { groups: [...event.groups].sort() } : {}),
      bundleVersion: this.options.bundleVersion,
    };
  }
}

function spansGroups(flagged: ReadonlyMap<ChannelInfo, number>): boolean {
  let first: string | undefined;
  for (const info of flagged.keys()) {
    if (first === undefined) first = info.group;
    else if (info.group !== first) return true;
  }
  return false;
}

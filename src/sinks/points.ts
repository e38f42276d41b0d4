/**
 * The InfluxDB measurements of DESIGN section 4, built from what the stream emits, and the contract
 * every point sink (InfluxDB writer, line-protocol file) keeps.
 */
import type { AnomalyEvent, BucketVote, Point, WindowScore } from '../stream/types.js';

export const RMSE_MEASUREMENT = 'magwatch_rmse';
export const VOTES_MEASUREMENT = 'magwatch_votes';
export const EVENTS_MEASUREMENT = 'magwatch_events';

/** Fields always written as integers; every other number is a float, so no field's type ever flips. */
export const INTEGER_FIELDS: ReadonlySet<string> = new Set(['votes', 'required']);

/** Why a point was not written. */
export type DropReason =
  /** The buffer bound was exceeded while InfluxDB was away; the oldest points go first. */
  | 'overflow'
  /** InfluxDB answered 4xx (not 429): retrying cannot help. */
  | 'rejected'
  /** The point cannot be encoded (no field, NaN, …). */
  | 'invalid'
  /** The file could not be written. */
  | 'failed'
  /** Written after close, or still buffered when close gave up. */
  | 'closed';

export interface SinkStats {
  /** Points accepted by InfluxDB or appended to the file. */
  readonly written: number;
  /** Write requests retried after a network error, 5xx or 429. */
  readonly retried: number;
  /** Points waiting to be written. */
  readonly buffered: number;
  readonly dropped: Readonly<Record<DropReason, number>>;
}

/** Where points go. `write` never blocks or throws; `close` must be called and flushes what it can. */
export interface PointSink {
  write(points: readonly Point[]): void;
  stats(): SinkStats;
  close(): Promise<void>;
}

/** `magwatch_rmse`: one point per scored window, at the window's end. */
export function rmsePoint(score: WindowScore): Point {
  return {
    measurement: RMSE_MEASUREMENT,
    tags: { channel: score.channel, sensor: score.sensor, component: score.component, group: score.group },
    fields: { rmse: score.rmse, threshold: score.threshold, anomalous: score.anomalous },
    time: score.end,
  };
}

/** `magwatch_votes`: one point per final bucket of a group (or `global`), at the bucket's start. */
export function votePoint(vote: BucketVote): Point {
  return {
    measurement: VOTES_MEASUREMENT,
    tags: { group: vote.group },
    fields: { votes: vote.votes, required: vote.required, anomalous: vote.anomalous },
    time: vote.start,
  };
}

/**
 * `magwatch_events`: one point per event, at the event's start. The `anomaly.end` point has the same time and
 * tags, so it replaces the `anomaly.start` point: an event is one point that reads "open" until it ends, and
 * then carries `end` (epoch ms) for a Grafana region annotation. `channels` is the comma-separated channel
 * names, `votes` the peak votes (0 for sensor events); `id` and `scope` trace a point to its MQTT message.
 * Sensor events also get a `sensor` tag: two sensors of one group flagged in the same bucket are two events.
 */
export function eventPoint(event: AnomalyEvent): Point {
  const fields: Record<string, number | boolean | string> = {
    event: event.event,
    votes: event.peakVotes ?? 0,
    channels: event.channels.map((c) => c.channel).join(','),
    id: event.id,
    scope: event.scope,
  };
  if (event.requiredVotes !== undefined) fields['required'] = event.requiredVotes;
  if (event.end !== undefined) fields['end'] = Date.parse(event.end);
  return {
    measurement: EVENTS_MEASUREMENT,
    tags: event.sensor === undefined ? { group: event.group } : { group: event.group, sensor: event.sensor },
    fields,
    time: Date.parse(event.start),
  };
}

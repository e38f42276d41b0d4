/**
 * Types shared by the live path: what ingest hands to the stream, and what the stream hands to the sinks.
 */

/** One sensor's reading at one time, as ingest decoded it. `null` marks a missing component value. */
export interface Sample {
  readonly sensor: string;
  /** Group from the topic or the ingest configuration; absent means the reference rule (`OBS<n>` in the id). */
  readonly group?: string;
  /** Epoch milliseconds. */
  readonly timestamp: number;
  /** Component name (`b_x`, `X`, `H`, …) to value. */
  readonly values: Readonly<Record<string, number | null>>;
}

/** The score of one window of one channel. */
export interface WindowScore {
  readonly channel: string;
  readonly sensor: string;
  readonly component: string;
  readonly group: string;
  /** Epoch ms of the window's first and last sample. */
  readonly start: number;
  readonly end: number;
  readonly rmse: number;
  readonly threshold: number;
  readonly anomalous: boolean;
}

/** The vote of one group (or `global`) over one time bucket. */
export interface BucketVote {
  readonly group: string;
  /** Epoch ms of the bucket's start; buckets are `bucketMs` wide. */
  readonly start: number;
  readonly votes: number;
  readonly required: number;
  readonly anomalous: boolean;
}

export type EventKind =
  | 'anomaly.start'
  | 'anomaly.end'
  | 'sensor.anomaly'
  | 'sensor.silent'
  | 'sensor.resumed';
export type EventScope = 'global' | 'group' | 'sensor';

/** An event as published on MQTT and written to InfluxDB; it carries what explains it. */
export interface AnomalyEvent {
  readonly id: string;
  readonly event: EventKind;
  readonly scope: EventScope;
  readonly group: string;
  /** Sensor for sensor-scope events. */
  readonly sensor?: string;
  /** ISO 8601 start and (for `anomaly.end`) end. */
  readonly start: string;
  readonly end?: string;
  readonly peakVotes?: number;
  readonly requiredVotes?: number;
  readonly channels: ReadonlyArray<{ channel: string; rmse: number; threshold: number }>;
  /** Groups that saw the event at the same time (for `global` scope). */
  readonly groups?: readonly string[];
  readonly bundleVersion: string;
}

/** One InfluxDB point, independent of the client library. */
export interface Point {
  readonly measurement: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly fields: Readonly<Record<string, number | boolean | string>>;
  /** Epoch milliseconds. */
  readonly time: number;
}

import {
  asyncScheduler,
  interval,
  type Observable,
  type SchedulerLike,
  Subject,
  type Subscription,
} from 'rxjs';
import type { Bundle } from '../detector/bundle.js';
import type { Engine } from '../detector/engine.js';
import { MagwatchError } from '../errors.js';
import { BATCHER_DEFAULTS, Batcher, type ScoredBatch } from './batcher.js';
import { type FinalBucket, VoteBuckets } from './buckets.js';
import { type ChannelInfo, ChannelWindow } from './channel-window.js';
import { GLOBAL_GROUP, GroupEvents } from './events.js';
import { SensorAnomalies } from './sensor-anomalies.js';
import { type ListenedChannel, SilenceWatch } from './silence.js';
import type { AnomalyEvent, BucketVote, Sample, WindowScore } from './types.js';

/** Tuning of the live path; every field is optional. */
export interface LiveDetectorOptions {
  /**
   * A gap between two samples of a channel longer than this (ms) empties its window buffer. Default 5,000, or
   * 5 samples of the bundle's cadence when that is longer (`cadenceDefaults`, as for the next three).
   */
  readonly maxGapMs?: number;
  /** Windows per inference batch at most. Default 256. */
  readonly maxBatch?: number;
  /** Longest wait (ms) of a window before its batch is sent. Default 5. */
  readonly maxDelayMs?: number;
  /** Windows waiting for inference beyond this many drop the oldest, counted. Default 10,000. */
  readonly maxQueue?: number;
  /** Vote bucket width, ms, aligned to the epoch; should be at least the sample cadence. Default 1,000 or 1 sample. */
  readonly bucketMs?: number;
  /**
   * Clock time (ms) a bucket waits, from its first score, for channels that have not been scored past it; a
   * dead channel delays votes by this much. Set it above the time one window spans plus the feed's jitter, or
   * slow channels' votes arrive late and are lost (counted). Default 5,000 or 5 samples.
   */
  readonly latenessMs?: number;
  /** Normal final buckets in a row that end an anomaly event. Default 3. */
  readonly minNormal?: number;
  /** A channel with no value for this long (ms, clock) is reported silent. Default 30,000 or 30 samples. */
  readonly silentAfterMs?: number;
  /** Period (ms, clock) of the silence and lateness checks. Default 1,000. */
  readonly tickMs?: number;
}

/**
 * The fixed defaults. The configuration's `stream` section (src/config/schema.ts) takes the others from here and
 * leaves the four time settings unset, so that `magwatch run` and the library both size them by `cadenceDefaults`.
 */
export const LIVE_DETECTOR_DEFAULTS = {
  maxGapMs: 5_000,
  ...BATCHER_DEFAULTS,
  bucketMs: 1_000,
  latenessMs: 5_000,
  minNormal: 3,
  silentAfterMs: 30_000,
  tickMs: 1_000,
} as const satisfies Required<LiveDetectorOptions>;

/**
 * The time-based defaults for a feed of one sample every `cadenceMs` (the bundle's `cadenceMs`): the fixed
 * defaults suit feeds of 1 Hz and faster, but a 1-minute observatory feed would restart every window at each
 * sample, report every sensor silent between samples and vote a minute's data in 60 buckets. Each default
 * grows to span as many samples as it spans at 1 Hz, and never shrinks below the fixed one.
 */
export function cadenceDefaults(
  cadenceMs: number,
): Pick<Required<LiveDetectorOptions>, 'maxGapMs' | 'bucketMs' | 'latenessMs' | 'silentAfterMs'> {
  const atLeast = (fixed: number, samples: number) => Math.max(fixed, samples * cadenceMs);
  return {
    maxGapMs: atLeast(LIVE_DETECTOR_DEFAULTS.maxGapMs, 5),
    bucketMs: atLeast(LIVE_DETECTOR_DEFAULTS.bucketMs, 1),
    latenessMs: atLeast(LIVE_DETECTOR_DEFAULTS.latenessMs, 5),
    silentAfterMs: atLeast(LIVE_DETECTOR_DEFAULTS.silentAfterMs, 30),
  };
}

export interface LiveDetectorInit {
  /** The model bundle; only its JSON parts are used here, the engine holds the models. */
  readonly bundle: Pick<Bundle, 'manifest' | 'scalers' | 'thresholds'>;
  readonly engine: Engine;
  /** Written into every event, so that an alarm names the model that raised it. */
  readonly bundleVersion: string;
  readonly options?: LiveDetectorOptions;
  /** Clock and timers; default `asyncScheduler` (wall clock). Tests pass a virtual one. */
  readonly scheduler?: SchedulerLike;
  /** Receives engine failures; the detector keeps running and counts the lost windows. */
  readonly onError?: (error: unknown) => void;
}

/** One inference batch, for metrics. */
export interface BatchReport {
  readonly size: number;
  /** Engine time, ms. */
  readonly latencyMs: number;
  /** Windows waiting when the batch came back. */
  readonly queueDepth: number;
}

/** A snapshot of the live path's counters since start. */
export interface LiveDetectorStats {
  /** Samples pushed. */
  samples: number;
  /** Component values taken into a channel's buffer. */
  accepted: number;
  /** `null` (or non-finite) component values, skipped without advancing the channel. */
  missing: number;
  dropped: {
    /** Same timestamp as the channel's last sample. */
    duplicate: number;
    /** Older than the channel's last sample. */
    late: number;
    /** Values of sensors or components the bundle has no channel for. */
    unknownChannel: number;
    /** Samples whose timestamp is not a finite number. */
    invalid: number;
    /** Windows dropped oldest-first from a full inference queue. */
    queue: number;
    /** Windows lost in batches the engine failed. */
    inference: number;
  };
  gapResets: number;
  /** Windows due, and scored. */
  windows: number;
  windowsScored: number;
  batches: number;
  failedBatches: number;
  batchSize: { last: number; max: number; mean: number };
  queueDepth: number;
  inferenceMs: { last: number; max: number; mean: number };
  /** Votes lost because a window came after its bucket was final. */
  lateVotes: number;
  /** Final bucket votes emitted, groups and global together. */
  votes: number;
  events: number;
  silentChannels: number;
}

interface ChannelState extends ListenedChannel {
  readonly window: ChannelWindow;
}

interface SensorState {
  readonly sensor: string;
  readonly byComponent: Map<string, ChannelState>;
}

/**
 * The live detector: samples in; window scores, bucket votes and events out.
 *
 * Each channel of the bundle is its own source of due windows (a ring buffer of W scaled samples, see
 * `ChannelWindow`, whose `windows$` streams one channel); the windows of all channels meet in one inference
 * batcher, which each channel calls directly; scores feed one vote per group and one global vote over time
 * buckets; final votes drive the event lifecycle of each group. The clock and all timers come from the
 * scheduler, so tests run on virtual time.
 *
 * Call `flush()` when the input ends, then `close()`: the detector must be closed to stop its timers.
 */
export class LiveDetector {
  /** The options in force: those given, over the bundle's cadence defaults, over the fixed defaults. */
  readonly options: Readonly<Required<LiveDetectorOptions>>;
  private readonly scheduler: SchedulerLike;
  private readonly channels = new Map<string, ChannelState>();
  private readonly sensors = new Map<string, SensorState>();
  private readonly batcher: Batcher;
  private readonly groupBuckets = new Map<string, VoteBuckets>();
  private readonly globalBuckets: VoteBuckets;
  /** Final group buckets waiting for the global bucket of the same time, which decides their events. */
  private readonly groupFinals = new Map<string, FinalBucket[]>();
  private readonly groupEvents = new Map<string, GroupEvents>();
  private readonly globalEvents: GroupEvents | null;
  private readonly sensorAnomalies: SensorAnomalies;
  private readonly silence: SilenceWatch;
  private readonly subscriptions: Subscription[] = [];
  private readonly counters = { samples: 0, missing: 0, unknownChannel: 0, invalid: 0, votes: 0, events: 0 };
  private closed = false;

  private readonly scoreSubject = new Subject<WindowScore>();
  private readonly voteSubject = new Subject<BucketVote>();
  private readonly eventSubject = new Subject<AnomalyEvent>();
  private readonly batchSubject = new Subject<BatchReport>();

  /** Every scored window, in batch order. */
  readonly scores$: Observable<WindowScore> = this.scoreSubject.asObservable();
  /** Every final bucket vote: per group in time order, the global vote (group `global`) after the groups'. */
  readonly votes$: Observable<BucketVote> = this.voteSubject.asObservable();
  /** Anomaly and sensor events. */
  readonly events$: Observable<AnomalyEvent> = this.eventSubject.asObservable();
  /** One report per inference batch. */
  readonly batches$: Observable<BatchReport> = this.batchSubject.asObservable();

  constructor(init: LiveDetectorInit) {
    const { manifest, scalers, thresholds } = init.bundle;
    this.options = {
      ...LIVE_DETECTOR_DEFAULTS,
      ...(manifest.cadenceMs ? cadenceDefaults(manifest.cadenceMs) : {}),
      ...definedOnly(init.options ?? {}),
    };
    checkOptions(this.options);
    this.scheduler = init.scheduler ?? asyncScheduler;
    const { bucketMs, latenessMs, minNormal } = this.options;
    const now = this.scheduler.now();

    const infos: ChannelInfo[] = [];
    for (const [channel, entry] of Object.entries(manifest.channels)) {
      const scaler = scalers[channel];
      const threshold = thresholds[channel];
      if (!scaler || threshold === undefined) {
        throw new MagwatchError(
          'MW_BUNDLE_MISMATCH',
          `bundle: no scaler or threshold for channel '${channel}' of the manifest; retrain the bundle`,
        );
      }
      const info: ChannelInfo = {
        channel,
        ...pickEntry(entry),
        mean: scaler.mean,
        scale: scaler.scale,
        threshold,
      };
      infos.push(info);
      const state: ChannelState = {
        info,
        window: new ChannelWindow(
          info,
          { window: manifest.window, step: manifest.step, maxGapMs: this.options.maxGapMs },
          (due) => this.batcher.add(due),
        ),
        heardAt: now,
        lastTimestamp: Number.NaN,
        lastRmse: Number.NaN,
        silent: false,
      };
      this.channels.set(channel, state);
      let sensor = this.sensors.get(info.sensor);
      if (!sensor) {
        sensor = { sensor: info.sensor, byComponent: new Map() };
        this.sensors.set(info.sensor, sensor);
      }
      sensor.byComponent.set(info.component, state);
    }

    const groups = [...new Set(infos.map((info) => info.group))].sort();
    const multiGroup = groups.length > 1;
    const eventOptions = { bucketMs, minNormal, bundleVersion: init.bundleVersion, multiGroup };
    for (const group of groups) {
      const members = infos.filter((info) => info.group === group);
      this.groupBuckets.set(group, new VoteBuckets(group, members, manifest.vote, { bucketMs, latenessMs }));
      this.groupFinals.set(group, []);
      this.groupEvents.set(group, new GroupEvents(group, eventOptions));
    }
    this.globalBuckets = new VoteBuckets(GLOBAL_GROUP, infos, manifest.vote, { bucketMs, latenessMs });
    this.globalEvents = multiGroup ? new GroupEvents(GLOBAL_GROUP, eventOptions) : null;
    this.sensorAnomalies = new SensorAnomalies(init.bundleVersion);
    this.silence = new SilenceWatch(this.options.silentAfterMs, init.bundleVersion, now);

    this.batcher = new Batcher(init.engine, {
      window: manifest.window,
      maxBatch: this.options.maxBatch,
      maxDelayMs: this.options.maxDelayMs,
      maxQueue: this.options.maxQueue,
      preprocess: manifest.preprocess ?? 'none',
      scheduler: this.scheduler,
      ...(init.onError ? { onError: init.onError } : {}),
    });
    this.subscriptions.push(
      this.batcher.scored$.subscribe((batch) => this.onScored(batch)),
      interval(this.options.tickMs, this.scheduler).subscribe(() => this.tick()),
    );
  }

  /**
   * Takes one sample. Each component maps to the channel `<sensor>__<component>` of the bundle; values of
   * unknown channels are counted and ignored. A `null` value is a missing sample of that channel: skipped,
   * the channel does not advance (the offline path would fill it forward; live windows simply close later).
   * The bundle's manifest decides a channel's group; `sample.group` is not consulted.
   */
  push(sample: Sample): void {
    if (this.closed) return;
    this.counters.samples++;
    const values = sample.values;
    const sensor = this.sensors.get(sample.sensor);
    if (!sensor) {
      for (const _ in values) this.counters.unknownChannel++;
      return;
    }
    const timestamp = sample.timestamp;
    if (!Number.isFinite(timestamp)) {
      this.counters.invalid++;
      return;
    }

    const now = this.scheduler.now();
    let resumed: ChannelState[] | null = null;
    for (const component in values) {
      const channel = sensor.byComponent.get(component);
      if (!channel) {
        this.counters.unknownChannel++;
        continue;
      }
      const value = values[component];
      if (value === null || value === undefined || !Number.isFinite(value)) {
        this.counters.missing++;
        continue;
      }
      channel.heardAt = now;
      channel.lastTimestamp = timestamp;
      if (channel.silent) {
        resumed ??= [];
        resumed.push(channel);
      }
      channel.window.accept(timestamp, value);
    }
    if (resumed) this.emitEvent(this.silence.resumed(sensor.sensor, resumed, timestamp));
  }

  /**
   * Ends the input: scores every due window still waiting, makes every open bucket final and ends open anomaly
   * events at their last anomalous bucket. Samples that do not fill a window stay unscored, as offline.
   */
  async flush(): Promise<void> {
    await this.batcher.drain();
    this.finaliseVotes(this.scheduler.now(), true);
    for (const events of this.groupEvents.values()) {
      const event = events.end();
      if (event) this.emitEvent(event);
    }
    const global = this.globalEvents?.end();
    if (global) this.emitEvent(global);
  }

  /**
   * Stops the timers, waits for the batch in flight (its results are discarded: call `flush()` first to keep
   * them) and completes every observable. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const subscription of this.subscriptions.splice(0)) subscription.unsubscribe();
    await this.batcher.close();
    for (const state of this.channels.values()) state.window.close();
    this.scoreSubject.complete();
    this.voteSubject.complete();
    this.eventSubject.complete();
    this.batchSubject.complete();
  }

  stats(): LiveDetectorStats {
    let accepted = 0;
    let duplicate = 0;
    let late = 0;
    let gapResets = 0;
    let windows = 0;
    let silentChannels = 0;
    for (const { window, silent } of this.channels.values()) {
      accepted += window.counts.accepted;
      duplicate += window.counts.duplicate;
      late += window.counts.late;
      gapResets += window.counts.gapResets;
      windows += window.counts.windows;
      if (silent) silentChannels++;
    }
    let lateVotes = this.globalBuckets.lateVotes;
    for (const buckets of this.groupBuckets.values()) lateVotes += buckets.lateVotes;
    const b = this.batcher.counts;
    return {
      samples: this.counters.samples,
      accepted,
      missing: this.counters.missing,
      dropped: {
        duplicate,
        late,
        unknownChannel: this.counters.unknownChannel,
        invalid: this.counters.invalid,
        queue: b.droppedQueue,
        inference: b.droppedInference,
      },
      gapResets,
      windows,
      windowsScored: b.scored,
      batches: b.batches,
      failedBatches: b.failedBatches,
      batchSize: {
        last: b.batchSizeLast,
        max: b.batchSizeMax,
        mean: b.batches ? b.batchSizeSum / b.batches : 0,
      },
      queueDepth: this.batcher.queueDepth,
      inferenceMs: {
        last: b.latencyMsLast,
        max: b.latencyMsMax,
        mean: b.batches > b.failedBatches ? b.latencyMsSum / (b.batches - b.failedBatches) : 0,
      },
      lateVotes,
      votes: this.counters.votes,
      events: this.counters.events,
      silentChannels,
    };
  }

  private onScored(batch: ScoredBatch): void {
    const now = this.scheduler.now();
    for (let i = 0; i < batch.scores.length; i++) {
      const score = batch.scores[i]!;
      const window = batch.windows[i]!;
      this.scoreSubject.next(score);
      const state = this.channels.get(score.channel)!;
      state.lastRmse = score.rmse;
      const { start, end, rmse, anomalous } = score;
      this.groupBuckets
        .get(score.group)!
        .record(window.info, start, end, rmse, anomalous, window.settledBefore, now);
      this.globalBuckets.record(window.info, start, end, rmse, anomalous, window.settledBefore, now);
    }
    this.batchSubject.next({
      size: batch.scores.length,
      latencyMs: batch.latencyMs,
      queueDepth: this.batcher.queueDepth,
    });
    this.finaliseVotes(now, false);
  }

  private tick(): void {
    const now = this.scheduler.now();
    for (const event of this.silence.check(this.channels.values(), now)) this.emitEvent(event);
    this.finaliseVotes(now, false);
  }

  private finaliseVotes(now: number, force: boolean): void {
    for (const [group, buckets] of this.groupBuckets) {
      const waiting = this.groupFinals.get(group)!;
      for (const final of buckets.finalise(now, force)) {
        this.emitVote(final.vote);
        waiting.push(final);
      }
    }
    for (const global of this.globalBuckets.finalise(now, force)) {
      this.emitVote(global.vote);
      this.decide(global);
    }
    if (force) this.decide(null);
  }

  /**
   * Runs the event lifecycles up to a final global bucket: every group's final buckets up to its time, then the
   * global vote's, then the sensor check. A global bucket is final only once every group's bucket of the same
   * time is, so the scope of a group's event is known when the group's bucket is decided. `null` decides the
   * group buckets left without a global bucket as the stream ends.
   * Known shortcoming: a group's events wait for the global bucket, so a dead channel in another group delays
   * them by up to `latenessMs`; deciding scope later would mean revising events already published.
   */
  private decide(global: FinalBucket | null): void {
    const until = global ? global.vote.start : Number.POSITIVE_INFINITY;
    const sameTime = new Map<string, FinalBucket>();
    for (const [group, waiting] of this.groupFinals) {
      const events = this.groupEvents.get(group)!;
      while (waiting.length > 0 && waiting[0]!.vote.start <= until) {
        const final = waiting.shift()!;
        const matched = global !== null && final.vote.start === global.vote.start;
        if (matched) sameTime.set(group, final);
        for (const event of events.step(final, matched ? global : null)) this.emitEvent(event);
      }
    }
    if (!global) return;

    if (this.globalEvents) for (const event of this.globalEvents.step(global, global)) this.emitEvent(event);
    const carried = (info: ChannelInfo) =>
      global.vote.anomalous || sameTime.get(info.group)?.vote.anomalous === true;
    for (const event of this.sensorAnomalies.step(global, carried)) this.emitEvent(event);
  }

  private emitVote(vote: BucketVote): void {
    this.counters.votes++;
    this.voteSubject.next(vote);
  }

  private emitEvent(event: AnomalyEvent): void {
    this.counters.events++;
    this.eventSubject.next(event);
  }
}

function pickEntry(entry: { sensor: string; component: string; group: string }) {
  return { sensor: entry.sensor, component: entry.component, group: entry.group };
}

function definedOnly(options: LiveDetectorOptions): LiveDetectorOptions {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

function checkOptions(options: Required<LiveDetectorOptions>): void {
  for (const [key, value] of Object.entries(options)) {
    if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
      throw new MagwatchError(
        'MW_STREAM_BAD_OPTION',
        `stream option '${key}' must be a non-negative number, got ${value}; fix the configuration`,
      );
    }
  }
  for (const key of ['maxBatch', 'bucketMs', 'minNormal', 'silentAfterMs', 'tickMs'] as const) {
    if (!(options[key] > 0)) {
      throw new MagwatchError(
        'MW_STREAM_BAD_OPTION',
        `stream option '${key}' must be positive, got ${options[key]}; fix the configuration`,
      );
    }
  }
  if (options.maxQueue < options.maxBatch) {
    throw new MagwatchError(
      'MW_STREAM_BAD_OPTION',
      `stream option 'maxQueue' (${options.maxQueue}) must be at least 'maxBatch' (${options.maxBatch}); fix the configuration`,
    );
  }
}

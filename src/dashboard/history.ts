/**
 * What the dashboard remembers of the live path: a bounded history per series (field values per sensor, RMSE
 * per channel, votes per group) and the recent events, plus the points added since the last update was taken,
 * so that the server can send one batch per update period rather than one message per sample.
 */
import type { Bundle, VoteRule } from '../detector/bundle.js';
import type {
  AnomalyEvent,
  BucketVote,
  EventKind,
  EventScope,
  Sample,
  WindowScore,
} from '../stream/types.js';

/** Columnar points as uPlot takes them: column 0 is the time (epoch ms), the others the values. */
export type Columns = Array<Array<number | null>>;

export interface DashboardComponent {
  readonly component: string;
  readonly channel: string;
  readonly threshold: number;
}

export interface DashboardSensor {
  readonly sensor: string;
  /** In the order of the value columns of the sensor's field series. */
  readonly components: readonly DashboardComponent[];
}

export interface DashboardGroup {
  readonly group: string;
  readonly sensors: readonly DashboardSensor[];
}

/** An event as the page shows it: the start and end messages of one id merged into one record. */
export interface DashboardEvent {
  readonly id: string;
  /** `anomaly` (group or global vote), `sensor.anomaly` (a channel flagged alone), `silence` (no data). */
  readonly kind: 'anomaly' | 'sensor.anomaly' | 'silence';
  /** The last message received for the id. */
  readonly event: EventKind;
  readonly scope: EventScope;
  readonly group: string;
  readonly sensor?: string;
  /** Epoch ms. */
  readonly start: number;
  /** Epoch ms; null while the event is open or when it has no end (`sensor.anomaly`). */
  readonly end: number | null;
  readonly open: boolean;
  readonly peakVotes?: number;
  readonly requiredVotes?: number;
  readonly channels: ReadonlyArray<{ channel: string; rmse: number | null; threshold: number }>;
  readonly groups?: readonly string[];
}

/** Points and events added since the previous update. */
export interface DashboardUpdate {
  /** Per sensor: `[times, ...values]`, one value column per component in `DashboardSensor.components` order. */
  readonly fields: Record<string, Columns>;
  /** Per channel: `[window end times, rmse]`. */
  readonly rmse: Record<string, Columns>;
  /** Per group, and `global`: `[bucket start times, votes, required]`. */
  readonly votes: Record<string, Columns>;
  /** Events whose record changed, latest state. */
  readonly events: DashboardEvent[];
}

/** Everything the page needs to draw itself when it opens: the layout and the whole history. */
export interface DashboardSnapshot extends DashboardUpdate {
  readonly title: string;
  readonly historyMs: number;
  readonly resolutionMs: number;
  readonly vote: VoteRule;
  /** Groups in name order, sensors in name order, components in manifest order. */
  readonly groups: readonly DashboardGroup[];
  /** Server clock, epoch ms. */
  readonly now: number;
}

export interface HistoryOptions {
  /** Points older than this (ms) before a series' newest point are dropped. */
  readonly historyMs: number;
  /** Points kept per series at most. */
  readonly maxPointsPerSeries: number;
  /** Field values are kept at most once per sensor per this many ms (the first sample of each slot). */
  readonly resolutionMs: number;
  /** Events kept at most; open events are kept before ended ones. */
  readonly maxEvents: number;
}

/** A bounded table of points in time order. */
class Series {
  readonly columns: Columns;

  constructor(width: number) {
    this.columns = Array.from({ length: width }, () => []);
  }

  get length(): number {
    return this.columns[0]!.length;
  }

  /** Time of the newest point, or -Infinity. */
  get last(): number {
    const times = this.columns[0]!;
    return times.length > 0 ? (times[times.length - 1] as number) : Number.NEGATIVE_INFINITY;
  }

  push(row: ReadonlyArray<number | null>, options: HistoryOptions): void {
    for (let i = 0; i < this.columns.length; i++) this.columns[i]!.push(row[i] ?? null);
    const times = this.columns[0] as number[];
    const oldest = row[0]! - options.historyMs;
    let drop = Math.max(0, times.length - options.maxPointsPerSeries);
    while (drop < times.length && times[drop]! < oldest) drop++;
    if (drop > 0) for (const column of this.columns) column.splice(0, drop);
  }

  copy(): Columns {
    return this.columns.map((column) => column.slice());
  }
}

/**
 * The dashboard's memory. Feed it the live path's samples, scores, votes and events; read the whole history
 * with `snapshot()` and the additions since the last call with `takeUpdate()`.
 *
 * Field values are downsampled: a sensor keeps the first sample of each `resolutionMs` slot, since a chart
 * cannot show more than a pixel's worth anyway. Samples, scores and votes older than their series' newest
 * point are ignored, as a chart needs time order.
 */
export class DashboardHistory {
  readonly groups: readonly DashboardGroup[];
  private readonly sensors = new Map<string, DashboardSensor>();
  private readonly channels = new Set<string>();
  private readonly fields = new Map<string, Series>();
  private readonly rmse = new Map<string, Series>();
  private readonly votes = new Map<string, Series>();
  private readonly events = new Map<string, DashboardEvent>();
  /** Field slot (time / resolution) of each sensor's last kept sample. */
  private readonly fieldSlots = new Map<string, number>();
  private pending = new PendingUpdate();

  constructor(
    bundle: Pick<Bundle, 'manifest' | 'thresholds'>,
    private readonly options: HistoryOptions,
  ) {
    const byGroup = new Map<string, Map<string, DashboardComponent[]>>();
    for (const [channel, entry] of Object.entries(bundle.manifest.channels)) {
      const sensors = getOrCreate(byGroup, entry.group, () => new Map<string, DashboardComponent[]>());
      getOrCreate(sensors, entry.sensor, () => []).push({
        component: entry.component,
        channel,
        threshold: bundle.thresholds[channel] ?? Number.NaN,
      });
      this.channels.add(channel);
    }
    this.groups = [...byGroup.keys()].sort().map((group) => ({
      group,
      sensors: [...byGroup.get(group)!.keys()].sort().map((sensor) => {
        const entry = { sensor, components: byGroup.get(group)!.get(sensor)! };
        this.sensors.set(sensor, entry);
        return entry;
      }),
    }));
  }

  /** Keeps the sample's values of the bundle's channels when it opens a new slot of its sensor. */
  addSample(sample: Sample): void {
    const sensor = this.sensors.get(sample.sensor);
    if (!sensor || !Number.isFinite(sample.timestamp)) return;
    const slot = Math.floor(sample.timestamp / this.options.resolutionMs);
    if (slot <= (this.fieldSlots.get(sensor.sensor) ?? Number.NEGATIVE_INFINITY)) return;

    const row: Array<number | null> = [sample.timestamp];
    let known = 0;
    for (const { component } of sensor.components) {
      const value = sample.values[component];
      const finite = typeof value === 'number' && Number.isFinite(value);
      row.push(finite ? value : null);
      if (finite) known++;
    }
    // A sample of none of the bundle's components leaves the slot free for one that has them.
    if (known === 0) return;
    this.fieldSlots.set(sensor.sensor, slot);
    this.append(this.fields, this.pending.fields, sensor.sensor, row);
  }

  addScore(score: WindowScore): void {
    if (!this.channels.has(score.channel)) return;
    this.append(this.rmse, this.pending.rmse, score.channel, [score.end, score.rmse]);
  }

  addVote(vote: BucketVote): void {
    this.append(this.votes, this.pending.votes, vote.group, [vote.start, vote.votes, vote.required]);
  }

  addEvent(message: AnomalyEvent): void {
    const before = this.events.get(message.id);
    const record = mergeEvent(before, message);
    // Re-inserting moves the id to the end, so that the map stays in order of last change.
    this.events.delete(message.id);
    this.events.set(message.id, record);
    this.pending.events.set(message.id, record);
    this.pruneEvents();
  }

  /** The points and events added since the previous call; null when nothing was. */
  takeUpdate(): DashboardUpdate | null {
    const pending = this.pending;
    if (pending.empty) return null;
    this.pending = new PendingUpdate();
    return pending.toUpdate();
  }

  snapshot(title: string, now: number, vote: VoteRule): DashboardSnapshot {
    const copy = (map: Map<string, Series>) =>
      Object.fromEntries([...map].map(([key, series]) => [key, series.copy()]));
    return {
      title,
      historyMs: this.options.historyMs,
      resolutionMs: this.options.resolutionMs,
      vote,
      groups: this.groups,
      now,
      fields: copy(this.fields),
      rmse: copy(this.rmse),
      votes: copy(this.votes),
      events: [...this.events.values()].sort((a, b) => a.start - b.start),
    };
  }

  private append(
    history: Map<string, Series>,
    pending: Map<string, Series>,
    key: string,
    row: Array<number | null>,
  ): void {
    const series = getOrCreate(history, key, () => new Series(row.length));
    if (!(row[0]! > series.last)) return;
    series.push(row, this.options);
    getOrCreate(pending, key, () => new Series(row.length)).push(row, this.options);
  }

  /**
   * Drops events that ended more than `historyMs` before the newest event start, then the oldest ended ones
   * beyond `maxEvents`; open events stay, because the page shades them and lists them as active.
   */
  private pruneEvents(): void {
    let newest = Number.NEGATIVE_INFINITY;
    for (const event of this.events.values()) newest = Math.max(newest, event.start);
    const ended = [...this.events.values()].filter((event) => !event.open);
    let excess = this.events.size - this.options.maxEvents;
    for (const event of ended.sort((a, b) => (a.end ?? a.start) - (b.end ?? b.start))) {
      const expired = (event.end ?? event.start) < newest - this.options.historyMs;
      if (!expired && excess <= 0) break;
      this.events.delete(event.id);
      excess--;
    }
  }
}

class PendingUpdate {
  readonly fields = new Map<string, Series>();
  readonly rmse = new Map<string, Series>();
  readonly votes = new Map<string, Series>();
  readonly events = new Map<string, DashboardEvent>();

  get empty(): boolean {
    return this.fields.size + this.rmse.size + this.votes.size + this.events.size === 0;
  }

  toUpdate(): DashboardUpdate {
    const columns = (map: Map<string, Series>) =>
      Object.fromEntries([...map].map(([key, series]) => [key, series.columns]));
    return {
      fields: columns(this.fields),
      rmse: columns(this.rmse),
      votes: columns(this.votes),
      events: [...this.events.values()],
    };
  }
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = make();
    map.set(key, value);
  }
  return value;
}

/** Folds one event message into the record of its id. */
export function mergeEvent(before: DashboardEvent | undefined, message: AnomalyEvent): DashboardEvent {
  const start = Date.parse(message.start);
  const end = message.end === undefined ? null : Date.parse(message.end);
  const kind =
    message.event === 'sensor.silent' || message.event === 'sensor.resumed'
      ? 'silence'
      : message.event === 'sensor.anomaly'
        ? 'sensor.anomaly'
        : 'anomaly';
  const open = message.event === 'anomaly.start' || message.event === 'sensor.silent';
  // A second silent message of one episode names more channels of the sensor: keep all of them.
  const channels =
    message.event === 'sensor.silent' && before
      ? unionChannels(before.channels, message.channels)
      : message.channels.map(({ channel, rmse, threshold }) => ({
          channel,
          rmse: Number.isFinite(rmse) ? rmse : null,
          threshold,
        }));
  return {
    id: message.id,
    kind,
    event: message.event,
    scope: message.scope,
    group: message.group,
    ...(message.sensor === undefined ? {} : { sensor: message.sensor }),
    start,
    end,
    open,
    ...(message.peakVotes === undefined ? {} : { peakVotes: message.peakVotes }),
    ...(message.requiredVotes === undefined ? {} : { requiredVotes: message.requiredVotes }),
    channels,
    ...(message.groups === undefined ? {} : { groups: message.groups }),
  };
}

function unionChannels(
  before: DashboardEvent['channels'],
  added: AnomalyEvent['channels'],
): DashboardEvent['channels'] {
  const byChannel = new Map(before.map((entry) => [entry.channel, entry]));
  for (const { channel, rmse, threshold } of added) {
    byChannel.set(channel, { channel, rmse: Number.isFinite(rmse) ? rmse : null, threshold });
  }
  return [...byChannel.values()];
}

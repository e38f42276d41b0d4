import { EMPTY, type Observable, Subject } from 'rxjs';
import { RingBuffer } from './ring-buffer.js';

/** What the live path knows about one channel of the bundle. */
export interface ChannelInfo {
  readonly channel: string;
  readonly sensor: string;
  readonly component: string;
  readonly group: string;
  /** Scaler fitted at training: a value is scaled as `(x - mean) / scale`. */
  readonly mean: number;
  readonly scale: number;
  /** RMSE above which a window is anomalous (strictly). */
  readonly threshold: number;
}

/** A window of one channel that is due for scoring. */
export interface DueWindow {
  readonly info: ChannelInfo;
  /** Epoch ms of the window's first and last sample. */
  readonly start: number;
  readonly end: number;
  /**
   * Epoch ms (exclusive) before which no later window of this channel covers a sample, so once this window is
   * scored the channel's votes before it are complete. With overlapping windows this is the next window's start.
   */
  readonly settledBefore: number;
  /** The W scaled samples, oldest first. */
  readonly data: Float32Array;
}

export interface ChannelWindowOptions {
  /** Window length W in samples. */
  readonly window: number;
  /** Samples between the starts of consecutive windows. */
  readonly step: number;
  /** A gap between consecutive samples longer than this (ms) empties the buffer, so no window spans it. */
  readonly maxGapMs: number;
}

/** Why a value was or was not taken into the channel's buffer. */
export type AcceptOutcome = 'accepted' | 'duplicate' | 'late';

/** Counters of one channel since it was created. */
export interface ChannelCounts {
  accepted: number;
  /** Same timestamp as the last accepted sample. */
  duplicate: number;
  /** Older than the last accepted sample. */
  late: number;
  gapResets: number;
  windows: number;
}

/**
 * The sliding window of one channel: scales each value like the offline path, and emits a window on `windows$`
 * once W samples are buffered and then every `step` samples, so that windows start at samples 0, step, 2·step, …
 * of each gap-free stretch, as the offline windows do over the whole series.
 *
 * Timestamps are whole epoch milliseconds.
 */
export class ChannelWindow {
  readonly counts: ChannelCounts = { accepted: 0, duplicate: 0, late: 0, gapResets: 0, windows: 0 };
  /** Timestamp of the last accepted sample; `-Infinity` before the first. */
  lastTimestamp = Number.NEGATIVE_INFINITY;

  private readonly ring: RingBuffer;
  /**
   * Made on the first subscription: a Subject and its subscription cost about 0.8 KB per channel, as much as the
   * ring itself, and the detector, which takes every channel's windows, uses `onDue` instead.
   */
  private dueWindows: Subject<DueWindow> | null = null;
  private closed = false;
  /** Accepted samples still needed before the next window is due. */
  private untilDue: number;

  /**
   * `onDue` receives each due window before `windows$` does; a detector with thousands of channels passes its
   * batcher here rather than subscribing to each channel.
   */
  constructor(
    readonly info: ChannelInfo,
    private readonly options: ChannelWindowOptions,
    private readonly onDue?: (window: DueWindow) => void,
  ) {
    const { window, step } = options;
    if (!Number.isInteger(window) || window < 1)
      throw new RangeError(`window must be a positive integer, got ${window}`);
    if (!Number.isInteger(step) || step < 1)
      throw new RangeError(`step must be a positive integer, got ${step}`);
    this.ring = new RingBuffer(window);
    this.untilDue = window;
  }

  /** Samples buffered since the last gap, at most W. */
  get buffered(): number {
    return this.ring.length;
  }

  /** Takes one raw value; emits a window when one falls due. */
  accept(timestamp: number, raw: number): AcceptOutcome {
    if (timestamp === this.lastTimestamp) {
      this.counts.duplicate++;
      return 'duplicate';
    }
    if (timestamp < this.lastTimestamp) {
      this.counts.late++;
      return 'late';
    }
    if (timestamp - this.lastTimestamp > this.options.maxGapMs && this.ring.length > 0) {
      this.ring.clear();
      this.untilDue = this.options.window;
      this.counts.gapResets++;
    }

    this.lastTimestamp = timestamp;
    this.ring.push(timestamp, (raw - this.info.mean) / this.info.scale);
    this.counts.accepted++;

    if (--this.untilDue === 0) {
      this.untilDue = this.options.step;
      this.emitWindow();
    }
    return 'accepted';
  }

  /** The channel's stream of due windows; completes on `close()`. */
  get windows$(): Observable<DueWindow> {
    if (this.closed) return EMPTY;
    this.dueWindows ??= new Subject<DueWindow>();
    return this.dueWindows.asObservable();
  }

  /** Completes `windows$`; no window is emitted afterwards. */
  close(): void {
    this.closed = true;
    this.dueWindows?.complete();
  }

  private emitWindow(): void {
    const { window, step } = this.options;
    const data = new Float32Array(window);
    this.ring.copyLatest(window, data);
    const start = this.ring.timeAt(window - 1);
    const end = this.ring.timeAt(0);
    // The next window starts `step` samples after this one; when that sample is already buffered, later
    // windows can still cover everything from it on.
    const settledBefore = step < window ? this.ring.timeAt(window - 1 - step) : end + 1;
    if (this.closed) return;
    this.counts.windows++;
    const due: DueWindow = { info: this.info, start, end, settledBefore, data };
    this.onDue?.(due);
    this.dueWindows?.next(due);
  }
}

import { asyncScheduler, type Observable, type SchedulerLike, Subject, type Subscription } from 'rxjs';
import type { Engine } from '../detector/engine.js';
import { subtractWindowMeans } from '../detector/reference.js';
import type { DueWindow } from './channel-window.js';
import type { WindowScore } from './types.js';

export interface BatcherOptions {
  /** Window length W in samples; every window added must have W values. */
  readonly window: number;
  /** A batch is sent as soon as this many windows wait. Default 256. */
  readonly maxBatch?: number;
  /** A batch is sent at the latest this long (ms) after its oldest window arrived. Default 5. */
  readonly maxDelayMs?: number;
  /** Windows waiting beyond this many drop the oldest first, counted. Default 10,000. */
  readonly maxQueue?: number;
  /** `window-mean` subtracts each window's own mean before scoring, as bundles trained that way expect. */
  readonly preprocess?: 'none' | 'window-mean';
  /** Clock and timers; default `asyncScheduler` (wall clock). */
  readonly scheduler?: SchedulerLike;
  /** Receives engine failures; the windows of a failed batch are counted and dropped. */
  readonly onError?: (error: unknown) => void;
}

/**
 * `maxDelayMs` is short because waiting only pays while the engine is idle: when it is busy, windows queue behind
 * the batch in flight anyway and the next batch is larger. A long wait would add itself to every alarm's latency.
 */
export const BATCHER_DEFAULTS = { maxBatch: 256, maxDelayMs: 5, maxQueue: 10_000 } as const;

/** One scored batch: the windows in batch order and their scores. */
export interface ScoredBatch {
  readonly windows: readonly DueWindow[];
  readonly scores: readonly WindowScore[];
  /** Time the engine took, ms on the scheduler's clock. */
  readonly latencyMs: number;
}

export interface BatcherCounts {
  /** Windows added. */
  windows: number;
  scored: number;
  /** Dropped oldest-first because the queue was full. */
  droppedQueue: number;
  /** Lost in batches the engine failed. */
  droppedInference: number;
  batches: number;
  failedBatches: number;
  batchSizeLast: number;
  batchSizeMax: number;
  batchSizeSum: number;
  latencyMsLast: number;
  latencyMsMax: number;
  latencyMsSum: number;
}

/**
 * Gathers due windows of all channels into inference batches: a batch leaves at `maxBatch` windows or
 * `maxDelayMs` after its oldest window arrived, whichever comes first. One batch is in flight at a time, so while
 * the engine works the queue fills, and the next batch is bigger: throughput follows load.
 * Known shortcoming: 100 sensors sending whole windows at one instant (burst) wait 35 ms p50, 67 ms p99 on 2 cores.
 */
export class Batcher {
  readonly counts: BatcherCounts = {
    windows: 0,
    scored: 0,
    droppedQueue: 0,
    droppedInference: 0,
    batches: 0,
    failedBatches: 0,
    batchSizeLast: 0,
    batchSizeMax: 0,
    batchSizeSum: 0,
    latencyMsLast: 0,
    latencyMsMax: 0,
    latencyMsSum: 0,
  };

  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private readonly maxQueue: number;
  private readonly scheduler: SchedulerLike;
  private readonly scoredBatches = new Subject<ScoredBatch>();
  /** FIFO of waiting windows from `head` on, with the clock time each arrived. */
  private queue: DueWindow[] = [];
  private arrivedAt: number[] = [];
  private head = 0;
  private inFlight: Promise<void> | null = null;
  private timer: Subscription | null = null;
  /** While positive, waiting windows leave without their delay (see `drain`). */
  private draining = 0;
  private closed = false;

  /** Every scored batch, in the order batches were sent. */
  readonly scored$: Observable<ScoredBatch> = this.scoredBatches.asObservable();

  constructor(
    private readonly engine: Engine,
    private readonly options: BatcherOptions,
  ) {
    this.maxBatch = options.maxBatch ?? BATCHER_DEFAULTS.maxBatch;
    this.maxDelayMs = options.maxDelayMs ?? BATCHER_DEFAULTS.maxDelayMs;
    this.maxQueue = options.maxQueue ?? BATCHER_DEFAULTS.maxQueue;
    this.scheduler = options.scheduler ?? asyncScheduler;
    if (!(this.maxBatch >= 1)) throw new RangeError(`maxBatch must be at least 1, got ${this.maxBatch}`);
    if (!(this.maxQueue >= this.maxBatch))
      throw new RangeError(`maxQueue (${this.maxQueue}) must be at least maxBatch (${this.maxBatch})`);
  }

  /** Windows waiting, not counting the batch in flight. */
  get queueDepth(): number {
    return this.queue.length - this.head;
  }

  add(window: DueWindow): void {
    if (this.closed) return;
    this.queue.push(window);
    this.arrivedAt.push(this.scheduler.now());
    this.counts.windows++;
    const excess = this.queueDepth - this.maxQueue;
    if (excess > 0) {
      this.head += excess;
      this.counts.droppedQueue += excess;
    }
    this.pump();
  }

  /** Scores every window waiting now or added meanwhile, without waiting for `maxDelayMs`. */
  async drain(): Promise<void> {
    this.draining++;
    try {
      this.pump();
      while (this.inFlight) await this.inFlight;
    } finally {
      this.draining--;
    }
  }

  /** Stops the timer and drops what waits; completes `scored$` once the batch in flight is done. */
  async close(): Promise<void> {
    this.closed = true;
    this.cancelTimer();
    this.queue = [];
    this.arrivedAt = [];
    this.head = 0;
    while (this.inFlight) await this.inFlight;
    this.scoredBatches.complete();
  }

  private pump(): void {
    if (this.inFlight || this.closed) return;
    const depth = this.queueDepth;
    if (depth === 0) {
      this.cancelTimer();
      return;
    }
    const waited = this.scheduler.now() - this.arrivedAt[this.head]!;
    if (depth >= this.maxBatch || waited >= this.maxDelayMs || this.draining > 0) {
      this.cancelTimer();
      this.send();
    } else if (!this.timer) {
      this.timer = this.scheduler.schedule(() => {
        this.timer = null;
        this.pump();
      }, this.maxDelayMs - waited);
    }
  }

  private cancelTimer(): void {
    this.timer?.unsubscribe();
    this.timer = null;
  }

  private send(): void {
    const { window } = this.options;
    const count = Math.min(this.queueDepth, this.maxBatch);
    const windows = this.queue.slice(this.head, this.head + count);
    this.head += count;
    // Compact now and then rather than shifting on every batch.
    if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.arrivedAt = this.arrivedAt.slice(this.head);
      this.head = 0;
    }

    const data = new Float32Array(count * window);
    const channels = new Array<string>(count);
    for (let i = 0; i < count; i++) {
      const w = windows[i]!;
      channels[i] = w.info.channel;
      data.set(w.data, i * window);
    }
    // The offline path's own function, so that live and offline scores agree bit for bit.
    if (this.options.preprocess === 'window-mean') subtractWindowMeans(data, window);

    this.counts.batches++;
    this.counts.batchSizeLast = count;
    this.counts.batchSizeMax = Math.max(this.counts.batchSizeMax, count);
    this.counts.batchSizeSum += count;
    this.inFlight = this.score(windows, channels, data);
  }

  private async score(windows: DueWindow[], channels: string[], data: Float32Array): Promise<void> {
    const sentAt = this.scheduler.now();
    let rmse: Float32Array | null = null;
    try {
      rmse = await this.engine.score({ channels, data });
      if (rmse.length !== windows.length) {
        throw new Error(
          `engine ${this.engine.name} returned ${rmse.length} scores for ${windows.length} windows`,
        );
      }
    } catch (error) {
      rmse = null;
      this.counts.failedBatches++;
      this.counts.droppedInference += windows.length;
      this.options.onError?.(error);
    }
    this.inFlight = null;
    // An engine on other threads starts on the next batch while the votes and sinks take this one.
    if (this.engine.offThread) this.pump();

    if (rmse) {
      const latencyMs = this.scheduler.now() - sentAt;
      this.counts.scored += windows.length;
      this.counts.latencyMsLast = latencyMs;
      this.counts.latencyMsMax = Math.max(this.counts.latencyMsMax, latencyMs);
      this.counts.latencyMsSum += latencyMs;
      this.scoredBatches.next({ windows, scores: toScores(windows, rmse), latencyMs });
    }
    if (!this.engine.offThread) this.pump();
  }
}

/** Turns RMSEs into scores; anomalous is strictly above the channel's threshold, as in the reference. */
export function toScores(windows: readonly DueWindow[], rmse: Float32Array): WindowScore[] {
  const scores = new Array<WindowScore>(windows.length);
  for (let i = 0; i < windows.length; i++) {
    const { info, start, end } = windows[i]!;
    const value = rmse[i]!;
    scores[i] = {
      channel: info.channel,
      sensor: info.sensor,
      component: info.component,
      group: info.group,
      start,
      end,
      rmse: value,
      threshold: info.threshold,
      anomalous: value > info.threshold,
    };
  }
  return scores;
}

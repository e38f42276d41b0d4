/**
 * Batched, retried, bounded writes of points to InfluxDB 1.x.
 *
 * The database is created with the `influx` package (idempotent `CREATE DATABASE`). Points are posted to
 * `/write` as our own line protocol rather than through `influx.writePoints`, because that method does not
 * escape measurement names, drops a timestamp of 0, writes every number as a float, and hides the HTTP
 * status of a 5xx, which the retry decision needs.
 */
import { InfluxDB, type IPoolOptions } from 'influx';
import type { Logger } from 'pino';
import { MagwatchError } from '../errors.js';
import type { Point } from '../stream/types.js';
import { encodePoint } from './line-protocol.js';
import { type DropReason, INTEGER_FIELDS, type PointSink, type SinkStats } from './points.js';

/** Timer functions, replaceable in tests. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface InfluxWriterOptions {
  /** `http://host:8086/<database>`; userinfo in the URL is used as credentials when none are given. */
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  /** Points per write request; a full batch is sent at once. Default 500. */
  readonly batchSize?: number;
  /** Longest time a point waits for its batch to fill, in ms. Default 1000. */
  readonly flushIntervalMs?: number;
  /**
   * Points kept while InfluxDB is away, besides the batch in flight; past this the oldest are dropped and
   * counted. Default 100000.
   */
  readonly maxBufferPoints?: number;
  /** First retry delay in ms, doubled per failed attempt up to `retryMaxMs`, with jitter. Default 500. */
  readonly retryInitialMs?: number;
  /** Longest retry delay in ms. Default 30000. */
  readonly retryMaxMs?: number;
  /** Timeout of one write request in ms. Default 10000. */
  readonly requestTimeoutMs?: number;
  /** How long `close()` keeps trying to write the buffer, in ms. Default 5000. */
  readonly closeTimeoutMs?: number;
  /** Create the database when missing. Default true. */
  readonly createDatabase?: boolean;
  readonly logger: Logger;
  readonly timers?: Timers;
  /** Clock in epoch ms, for outage durations. */
  readonly now?: () => number;
  /** Uniform [0, 1) source for the retry jitter. */
  readonly random?: () => number;
  readonly fetch?: typeof fetch;
}

/** The answer of a failed write to "retry?". */
export class InfluxWriteError extends Error {
  override readonly name = 'InfluxWriteError';

  constructor(
    message: string,
    /** HTTP status, absent for network errors and timeouts. */
    readonly status: number | undefined,
    readonly retryable: boolean,
    /** Server's `Retry-After`, in ms. */
    readonly retryAfterMs?: number,
    /** Points InfluxDB reported as dropped in a partial write. */
    readonly droppedPoints?: number,
  ) {
    super(message);
  }
}

const DEFAULTS = {
  batchSize: 500,
  flushIntervalMs: 1000,
  maxBufferPoints: 100_000,
  retryInitialMs: 500,
  retryMaxMs: 30_000,
  requestTimeoutMs: 10_000,
  closeTimeoutMs: 5000,
};

const unrefTimers: Timers = {
  setTimeout(callback, ms) {
    // A pending flush must not keep the process alive: shutdown closes the writer explicitly.
    return setTimeout(callback, ms).unref();
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** The `influx` pool retries and disables hosts on its own timers; the writer decides that instead. */
const noBackoff: NonNullable<IPoolOptions['backoff']> = {
  getDelay: () => 0,
  next: () => noBackoff,
  reset: () => noBackoff,
};

/**
 * Writes points to InfluxDB 1.x in batches. `write` never blocks or throws; `close` must be called, and
 * flushes what it can within `closeTimeoutMs`.
 */
export class InfluxWriter implements PointSink {
  readonly database: string;
  private readonly settings: typeof DEFAULTS;
  private readonly writeUrl: string;
  private readonly authorization: string | undefined;
  private readonly client: InfluxDB;
  private readonly logger: Logger;
  private readonly timers: Timers;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly fetch: typeof fetch;

  /** Encoded lines, oldest first; the batch in flight is not in here. */
  private buffer: string[] = [];
  private inFlight = 0;
  /** Points of the batch in flight that `close()` gave up on and already counted as dropped (`closed`). */
  private abandoned = 0;
  private sending = false;
  private timer: unknown;
  private backingOff = false;
  private attempt = 0;
  private databaseReady: boolean;
  private outage: { since: number; dropped: number } | undefined;
  private overflowLogged = false;
  private lastRejection = '';
  private closing = false;
  private closed = false;
  private closeWaiters: Array<() => void> = [];
  private counts = { written: 0, retried: 0 };
  private dropped: Record<DropReason, number> = {
    overflow: 0,
    rejected: 0,
    invalid: 0,
    failed: 0,
    closed: 0,
  };

  constructor(options: InfluxWriterOptions) {
    const target = parseInfluxUrl(options.url);
    this.database = target.database;
    this.settings = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as Array<keyof typeof DEFAULTS>) {
      const value = options[key];
      if (value !== undefined) this.settings[key] = value;
    }
    if (this.settings.maxBufferPoints < this.settings.batchSize) {
      throw new MagwatchError(
        'MW_CONFIG_INVALID',
        `influx.maxBufferPoints (${this.settings.maxBufferPoints}) is smaller than influx.batchSize (${this.settings.batchSize}); raise maxBufferPoints`,
      );
    }

    const username = options.username ?? target.username;
    const password = options.password ?? target.password;
    this.authorization =
      username !== undefined
        ? `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`
        : undefined;
    const query = new URLSearchParams({ db: this.database, precision: 'ms' });
    this.writeUrl = `${target.origin}${target.prefix}/write?${query}`;
    this.client = new InfluxDB({
      host: target.hostname,
      port: target.port,
      protocol: target.protocol,
      path: target.prefix,
      database: this.database,
      username,
      password,
      pool: { maxRetries: 0, backoff: noBackoff, requestTimeout: this.settings.requestTimeoutMs },
    });

    this.databaseReady = options.createDatabase === false;
    this.logger = options.logger;
    this.timers = options.timers ?? unrefTimers;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.fetch = options.fetch ?? fetch;
  }

  /** Buffers points; a full batch is sent at once, a partial one after `flushIntervalMs`. */
  write(points: readonly Point[]): void {
    if (this.closed) {
      this.dropped.closed += points.length;
      return;
    }
    for (const point of points) {
      try {
        this.buffer.push(encodePoint(point, { precision: 'ms', integerFields: INTEGER_FIELDS }));
      } catch {
        this.dropped.invalid++;
      }
    }
    this.enforceBound();
    this.schedule();
  }

  stats(): SinkStats {
    return {
      written: this.counts.written,
      retried: this.counts.retried,
      buffered: this.buffer.length + this.inFlight,
      dropped: { ...this.dropped },
    };
  }

  /** Writes what is buffered, retrying until `closeTimeoutMs`; what is left then is dropped as `closed`. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    if (!this.closing) {
      this.closing = true;
      const deadline = this.timers.setTimeout(() => this.finishClose(), this.settings.closeTimeoutMs);
      this.closeWaiters.push(() => this.timers.clearTimeout(deadline));
      if (!this.backingOff) {
        this.cancelTimer();
        void this.flush();
      }
      this.settleClose();
    }
    return done;
  }

  private schedule(): void {
    if (this.sending || this.backingOff || this.closed) return;
    if (this.buffer.length >= this.settings.batchSize || (this.closing && this.buffer.length > 0)) {
      this.cancelTimer();
      void this.flush();
    } else if (this.buffer.length > 0 && this.timer === undefined) {
      this.timer = this.timers.setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.settings.flushIntervalMs);
    }
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async flush(): Promise<void> {
    if (this.sending || this.buffer.length === 0 || this.closed) return;
    this.sending = true;
    const batch = this.buffer.splice(0, this.settings.batchSize);
    this.inFlight = batch.length;
    try {
      if (!this.databaseReady) await this.ensureDatabase();
      await this.post(batch);
      this.reclaimAbandoned();
      this.counts.written += batch.length;
      this.recovered();
    } catch (error) {
      this.reclaimAbandoned();
      this.failed(batch, toWriteError(error));
    } finally {
      this.sending = false;
      this.inFlight = 0;
    }
    this.settleClose();
    this.schedule();
  }

  private async ensureDatabase(): Promise<void> {
    try {
      await this.client.createDatabase(this.database);
    } catch (error) {
      const failure = toWriteError(error);
      if (failure.retryable) throw failure;
      // A user without admin rights cannot create databases; the writes tell whether it exists.
      this.logger.warn(
        { database: this.database, status: failure.status, err: failure.message },
        'influxdb database not created',
      );
    }
    this.databaseReady = true;
  }

  private async post(batch: string[]): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8' };
    if (this.authorization) headers['authorization'] = this.authorization;
    const response = await this.fetch(this.writeUrl, {
      method: 'POST',
      headers,
      body: batch.join('\n'),
      signal: AbortSignal.timeout(this.settings.requestTimeoutMs),
    });
    if (response.ok) return;

    const text = await response.text().catch(() => '');
    const message = influxErrorMessage(text) || response.statusText;
    const status = response.status;
    if (status === 404 && /database not found/i.test(message)) {
      // Dropped or never created (a fresh InfluxDB after an outage): create it on the next attempt.
      this.databaseReady = false;
      throw new InfluxWriteError(message, status, true);
    }
    const retryable = status === 429 || status >= 500;
    const partial = /partial write/i.test(message) ? /dropped=(\d+)/.exec(message) : null;
    throw new InfluxWriteError(
      message,
      status,
      retryable,
      retryAfterMs(response.headers.get('retry-after')),
      partial ? Number(partial[1]) : undefined,
    );
  }

  private recovered(): void {
    this.attempt = 0;
    if (this.outage) {
      this.logger.info(
        {
          downMs: this.now() - this.outage.since,
          dropped: this.outage.dropped,
          buffered: this.buffer.length,
        },
        'influxdb recovered',
      );
      this.outage = undefined;
      this.overflowLogged = false;
    }
  }

  private failed(batch: string[], error: InfluxWriteError): void {
    if (!error.retryable) {
      const dropped = Math.min(error.droppedPoints ?? batch.length, batch.length);
      this.dropped.rejected += dropped;
      this.counts.written += batch.length - dropped;
      // One line per distinct cause: a wrong password must not log once per batch.
      const cause = `${error.status} ${error.message}`;
      if (cause !== this.lastRejection) {
        this.lastRejection = cause;
        this.logger.error(
          { status: error.status, err: error.message, dropped },
          'influxdb rejected points; not retrying',
        );
      }
      return;
    }

    if (this.closed) {
      // close() gave up while this batch was in flight.
      this.dropped.closed += batch.length;
      return;
    }
    this.buffer = batch.concat(this.buffer);
    if (!this.outage) {
      this.outage = { since: this.now(), dropped: 0 };
      this.logger.warn(
        { status: error.status, err: error.message, buffered: this.buffer.length },
        'influxdb unavailable; buffering points',
      );
    }
    this.enforceBound();

    this.counts.retried++;
    const exponential = Math.min(this.settings.retryMaxMs, this.settings.retryInitialMs * 2 ** this.attempt);
    this.attempt++;
    // Equal jitter: at least half the delay, so many instances do not retry in step after an outage.
    const delay = error.retryAfterMs ?? exponential / 2 + (this.random() * exponential) / 2;
    this.backingOff = true;
    this.cancelTimer();
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      this.backingOff = false;
      void this.flush();
    }, delay);
  }

  /**
   * The batch in flight is outside the bound until its outcome is known: dropping newer points to make room
   * for it would break "oldest first". Memory is thus bounded by maxBufferPoints + batchSize lines.
   */
  private enforceBound(): void {
    const excess = this.buffer.length - this.settings.maxBufferPoints;
    if (excess <= 0) return;
    const dropped = excess;
    this.buffer.splice(0, dropped);
    this.dropped.overflow += dropped;
    if (this.outage) this.outage.dropped += dropped;
    if (!this.overflowLogged) {
      this.overflowLogged = true;
      this.logger.warn(
        { maxBufferPoints: this.settings.maxBufferPoints },
        'influxdb buffer full; dropping oldest points',
      );
    }
  }

  private reclaimAbandoned(): void {
    this.dropped.closed -= this.abandoned;
    this.abandoned = 0;
  }

  private settleClose(): void {
    if (this.closing && !this.sending && this.buffer.length === 0) this.finishClose();
  }

  private finishClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.cancelTimer();
    this.backingOff = false;
    // A batch still in flight counts as dropped now, so the totals are final when close() resolves; should
    // its request end after all, `reclaimAbandoned` takes them back before counting the real outcome.
    this.abandoned = this.inFlight;
    this.inFlight = 0;
    const left = this.buffer.length + this.abandoned;
    if (left > 0) {
      this.dropped.closed += left;
      this.buffer = [];
      this.logger.warn({ dropped: left }, 'influxdb writer closed with points unwritten');
    }
    for (const resolve of this.closeWaiters.splice(0)) resolve();
  }
}

interface InfluxTarget {
  origin: string;
  protocol: 'http' | 'https';
  hostname: string;
  port: number;
  /** Path before the database segment, for InfluxDB behind a reverse proxy; `''` or `/…`. */
  prefix: string;
  database: string;
  username?: string;
  password?: string;
}

/** Splits `http://user:pass@host:8086/prefix/db` into its parts; the last path segment is the database. */
export function parseInfluxUrl(url: string): InfluxTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidUrl(url, 'it is not a URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw invalidUrl(url, `the scheme is ${parsed.protocol} instead of http: or https:`);
  }
  const segments = parsed.pathname.split('/').filter((s) => s !== '');
  const database = segments.pop();
  if (database === undefined) throw invalidUrl(url, 'it names no database in its path');
  const protocol = parsed.protocol === 'https:' ? 'https' : 'http';
  return {
    origin: parsed.origin,
    protocol,
    hostname: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : protocol === 'https' ? 443 : 80,
    prefix: segments.length > 0 ? `/${segments.join('/')}` : '',
    database: decodeURIComponent(database),
    username: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
  };
}

function invalidUrl(url: string, problem: string): MagwatchError {
  const shown = url.replace(/\/\/[^/@]*@/, '//***@');
  return new MagwatchError(
    'MW_CONFIG_INFLUX_URL',
    `influx.url "${shown}" cannot be used: ${problem}; expected e.g. http://127.0.0.1:8086/magwatch`,
  );
}

/** Network errors, timeouts and 5xx are worth retrying; an HTTP 4xx other than 429 is not. */
function toWriteError(error: unknown): InfluxWriteError {
  if (error instanceof InfluxWriteError) return error;
  const status = statusOf(error);
  const message = error instanceof Error ? describe(error) : String(error);
  if (status === undefined) return new InfluxWriteError(message, undefined, true);
  return new InfluxWriteError(message, status, status === 429 || status >= 500);
}

function statusOf(error: unknown): number | undefined {
  // The `influx` package's RequestError keeps the response; its 5xx errors carry none and are retryable.
  const res = (error as { res?: { statusCode?: number } } | undefined)?.res;
  return typeof res?.statusCode === 'number' ? res.statusCode : undefined;
}

function describe(error: Error): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${error.message} (${cause.code})`;
  return cause?.message ? `${error.message} (${cause.message})` : error.message;
}

function influxErrorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error.trim();
  } catch {
    // Not JSON: a proxy's HTML page, say.
  }
  return body.trim().slice(0, 200);
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

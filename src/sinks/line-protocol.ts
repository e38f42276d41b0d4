/**
 * InfluxDB 1.x line protocol: `measurement,tag=value field=value time`, one point per line.
 *
 * Escaping follows what influxd 1.x actually parses (checked against influxd 1.6):
 * - measurement: `,` and space are escaped with a backslash;
 * - tag keys, tag values and field keys: `,`, `=` and space;
 * - string field values are double-quoted, with `"` and `\` escaped; newlines are kept;
 * - numbers are floats unless the field is named in `integerFields` (then `<n>i`); booleans are `true`/`false`.
 *
 * InfluxDB 1.x keeps a backslash in a name literally, but cannot store one that ends a name or stands
 * before an escaped character, nor a line break: those are percent-encoded (`%5C`, `%0A`, `%0D`) so that
 * one odd sensor id cannot make InfluxDB reject a whole batch. Empty tag values are left out, as InfluxDB
 * treats an empty tag as an absent one.
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { Logger } from 'pino';
import { MagwatchError } from '../errors.js';
import type { Point } from '../stream/types.js';
import type { PointSink, SinkStats } from './points.js';

export type Precision = 'ms' | 'ns';

export interface LineProtocolOptions {
  /** Timestamp unit of the line; `ns` is what `influx -import` and a plain `/write` expect. Default `ms`. */
  readonly precision?: Precision;
  /** Field names written as integers (`3i`); every other number is a float, so a field's type never flips. */
  readonly integerFields?: ReadonlySet<string>;
}

const MEASUREMENT_SPECIAL = /[, ]/;
const KEY_SPECIAL = /[,= ]/;

/** Escapes a measurement name. */
export function escapeMeasurement(name: string): string {
  const escaped = escapeName(name, MEASUREMENT_SPECIAL);
  // A line that starts with `#` is a comment to influxd.
  return escaped.startsWith('#') ? `%23${escaped.slice(1)}` : escaped;
}

/** Escapes a tag key, tag value or field key. */
export function escapeKey(name: string): string {
  return escapeName(name, KEY_SPECIAL);
}

/** Quotes a string field value. */
export function quoteString(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function escapeName(name: string, special: RegExp): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === '\n') out += '%0A';
    else if (c === '\r') out += '%0D';
    else if (c === '\\') {
      const next = name[i + 1];
      out += next === undefined || special.test(next) ? '%5C' : '\\';
    } else if (special.test(c)) out += `\\${c}`;
    else out += c;
  }
  return out;
}

/**
 * Encodes one point as a line (without the newline).
 * @throws MagwatchError `MW_SINK_INVALID_POINT` when the point has no writable field, a non-finite number,
 *   a non-integer value in an integer field or a non-finite time.
 */
export function encodePoint(point: Point, options: LineProtocolOptions = {}): string {
  const { precision = 'ms', integerFields } = options;
  if (point.measurement === '') invalid(point, 'empty measurement name');
  let line = escapeMeasurement(point.measurement);

  for (const key of Object.keys(point.tags).sort()) {
    const value = point.tags[key]!;
    if (key === '') invalid(point, 'empty tag key');
    if (value === '') continue;
    line += `,${escapeKey(key)}=${escapeKey(value)}`;
  }

  const fields: string[] = [];
  for (const [key, value] of Object.entries(point.fields)) {
    if (key === '') invalid(point, 'empty field key');
    fields.push(`${escapeKey(key)}=${encodeFieldValue(point, key, value, integerFields)}`);
  }
  if (fields.length === 0) invalid(point, 'no fields');

  return `${line} ${fields.join(',')} ${encodeTime(point, precision)}`;
}

/** Encodes points as newline-terminated lines. */
export function encodePoints(points: readonly Point[], options: LineProtocolOptions = {}): string {
  let text = '';
  for (const point of points) text += `${encodePoint(point, options)}\n`;
  return text;
}

function encodeFieldValue(
  point: Point,
  key: string,
  value: number | boolean | string,
  integerFields: ReadonlySet<string> | undefined,
): string {
  if (typeof value === 'string') return quoteString(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (!Number.isFinite(value)) invalid(point, `field "${key}" is ${value}`);
  if (integerFields?.has(key)) {
    if (!Number.isSafeInteger(value)) invalid(point, `integer field "${key}" is ${value}`);
    return `${value}i`;
  }
  // String(3) is "3", which influxd reads as a float: the type stays the same for 3 and 3.5.
  return String(value);
}

function encodeTime(point: Point, precision: Precision): string {
  if (!Number.isFinite(point.time)) invalid(point, `time is ${point.time}`);
  const ms = Math.floor(point.time);
  if (precision === 'ms') return String(ms);
  const ns = BigInt(ms) * 1_000_000n + BigInt(Math.round((point.time - ms) * 1e6));
  return ns.toString();
}

function invalid(point: Point, problem: string): never {
  throw new MagwatchError(
    'MW_SINK_INVALID_POINT',
    `point of measurement "${point.measurement}" cannot be written as line protocol: ${problem}; the point is dropped`,
  );
}

export interface FileSinkOptions {
  /** File to append to; created when missing. */
  readonly path: string;
  readonly integerFields?: ReadonlySet<string>;
  /** Receives one line when appends start failing (a full disk, a read-only directory). */
  readonly logger?: Pick<Logger, 'error'>;
}

/**
 * Appends points as line protocol (nanosecond timestamps) to a local file, for sites without InfluxDB.
 * The file loads into InfluxDB 1.x with `influx -import` or `curl --data-binary @file …/write?db=magwatch`.
 * Must be closed, which waits for pending appends.
 */
export class FileSink implements PointSink {
  private readonly options: FileSinkOptions;
  private handle: Promise<FileHandle> | undefined;
  private pending: Promise<void> = Promise.resolve();
  private closed = false;
  private counts = { written: 0, buffered: 0, invalid: 0, failed: 0, closed: 0 };
  private lastError: unknown;

  constructor(options: FileSinkOptions) {
    this.options = options;
  }

  /** Queues the points for appending; unencodable points are dropped and counted as `invalid`. */
  write(points: readonly Point[]): void {
    if (this.closed) {
      this.counts.closed += points.length;
      return;
    }
    let text = '';
    let lines = 0;
    for (const point of points) {
      try {
        text += `${encodePoint(point, { precision: 'ns', integerFields: this.options.integerFields })}\n`;
        lines++;
      } catch {
        this.counts.invalid++;
      }
    }
    if (lines === 0) return;

    this.counts.buffered += lines;
    this.handle ??= open(this.options.path, 'a');
    const handle = this.handle;
    this.pending = this.pending.then(async () => {
      try {
        await (await handle).appendFile(text);
        this.counts.written += lines;
      } catch (error) {
        if (this.lastError === undefined) {
          this.options.logger?.error(
            { path: this.options.path, err: (error as Error).message },
            'points file not writable; dropping points',
          );
        }
        this.lastError = error;
        this.counts.failed += lines;
      } finally {
        this.counts.buffered -= lines;
      }
    });
  }

  /** Waits for every queued append. */
  async flush(): Promise<void> {
    await this.pending;
  }

  stats(): SinkStats {
    const { written, buffered, invalid, failed, closed } = this.counts;
    return { written, retried: 0, buffered, dropped: { invalid, failed, closed, overflow: 0, rejected: 0 } };
  }

  /** The last append error, if any (a full disk, a read-only directory). */
  error(): unknown {
    return this.lastError;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pending;
    const handle = this.handle;
    this.handle = undefined;
    // A file that never opened has already been counted as failed appends.
    if (handle) await handle.then((h) => h.close()).catch(() => undefined);
  }
}

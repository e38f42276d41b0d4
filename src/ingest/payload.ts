import { z } from 'zod';
import type { Sample } from '../stream/types.js';
import { parseTimestamp } from './csv.js';

/**
 * Why a message or a sample was not ingested. The codes are stable, so counters and alerts can key on them;
 * never rename one, add a new one instead.
 */
export type InvalidReason =
  /** Larger than the configured maximum message size. */
  | 'too_large'
  /** Not UTF-8 JSON. */
  | 'not_json'
  /** JSON, but not the structure of the format (an array where an object belongs, a string as a value). */
  | 'bad_shape'
  /** Missing, unparsable, before 1900 or too far in the future. */
  | 'bad_timestamp'
  /** None of the mapped component fields is present. */
  | 'no_components'
  /** A value that is NaN, Infinity or a string saying so. */
  | 'not_finite'
  /** No sensor from the topic or the payload. */
  | 'no_sensor'
  /** An INTERMAGNET message whose element arrays differ in length. */
  | 'unequal_lengths'
  /** An INTERMAGNET cadence that is not a duration like pt1m, pt1s or 1hz. */
  | 'bad_cadence'
  /** A message on a topic that no subscription pattern matches. */
  | 'unmatched_topic';

export interface Invalid {
  readonly reason: InvalidReason;
  /** One line for logs: which field or sample, and what was wrong. */
  readonly detail: string;
}

/** What a decoder makes of one message; decoders never throw on bad input. */
export interface DecodeResult {
  readonly samples: Sample[];
  readonly invalid: Invalid[];
}

/** Default maximum message size: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** Default tolerance for timestamps ahead of the local clock: one day. */
export const DEFAULT_MAX_FUTURE_MS = 86_400_000;
/** Earliest accepted timestamp: 1900-01-01T00:00:00Z. */
export const EARLIEST_TIMESTAMP_MS = Date.UTC(1900, 0, 1);

/** Limits shared by both payload formats. */
export interface PayloadLimits {
  /** Larger payloads are `too_large`. Bytes; default 1 MiB. */
  maxMessageBytes?: number;
  /** Samples later than now + this are `bad_timestamp`. Milliseconds; default one day. */
  maxFutureMs?: number;
  /** The clock for the future bound; default `Date.now`. */
  now?: () => number;
}

export type TimestampUnit = 'ms' | 's' | 'iso' | 'auto';

/** The `magwatch` JSON format's field mapping, as a subscription configures it. */
export const magwatchFormatSchema = z
  .object({
    /** Component name to the payload fields that may carry it, first present wins. */
    fields: z.record(z.string().min(1), z.array(z.string().min(1)).min(1)).optional(),
    /** Payload fields that may carry the timestamp, first present wins; default `ts`, `timestamp`, `time`. */
    timestampField: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /**
     * `ms` and `s`: epoch numbers (or numeric strings); `iso`: ISO 8601 strings (UTC when no offset);
     * `auto` (default): strings are ISO 8601, numbers epoch ms, except numbers below 1e11, which are epoch
     * seconds (as ms they would be before 1973, never a live feed).
     */
    timestampUnit: z.enum(['ms', 's', 'iso', 'auto']).optional(),
  })
  .strict();

export type MagwatchFormat = z.infer<typeof magwatchFormatSchema>;

export interface MagwatchDecodeOptions extends MagwatchFormat, PayloadLimits {
  /** Group for every sample; otherwise the topic's `group` or `observatory` level, else none (reference rule). */
  group?: string;
}

/** The reference's three components, each under its own name. */
export const DEFAULT_COMPONENT_FIELDS: Readonly<Record<string, readonly string[]>> = {
  b_x: ['b_x'],
  b_y: ['b_y'],
  b_z: ['b_z'],
};

/**
 * The default mapping plus each of `components` under its own name, so that a bundle trained on observatory
 * files (components H, E, Z, F) reads payloads that name them so without a `fields` setting.
 */
export function componentFieldsFor(components: Iterable<string>): Record<string, string[]> {
  const fields: Record<string, string[]> = {};
  for (const [component, names] of Object.entries(DEFAULT_COMPONENT_FIELDS)) fields[component] = [...names];
  for (const component of components) fields[component] ??= [component];
  return fields;
}

const DEFAULT_TIMESTAMP_FIELDS = ['ts', 'timestamp', 'time'];

const batchMessage = z
  .object({ samples: z.array(z.unknown()), sensor: z.string().min(1).optional() })
  .loose();

/**
 * Decodes one `magwatch` message: `{"ts": …, "b_x": n, …}` or `{"samples": [ … ]}`. The sensor comes from the
 * topic's `sensor` level, else a `sensor` field (of the sample, then of the batch). A bad sample in a batch is
 * reported and the others still count.
 */
export function decodeMagwatch(
  topicFields: Readonly<Record<string, string>>,
  payload: Buffer,
  options: MagwatchDecodeOptions = {},
): DecodeResult {
  const samples: Sample[] = [];
  const invalid: Invalid[] = [];
  const json = parseJsonPayload(payload, options);
  if ('reason' in json) return { samples, invalid: [json] };

  const message = json.value;
  if (!isRecord(message)) {
    return {
      samples,
      invalid: [{ reason: 'bad_shape', detail: `expected a JSON object, got ${describe(message)}` }],
    };
  }
  let batch: unknown[] | undefined;
  let batchSensor: string | undefined;
  if ('samples' in message) {
    const parsed = batchMessage.safeParse(message);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const detail = `batch ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`;
      return { samples, invalid: [{ reason: 'bad_shape', detail }] };
    }
    batch = parsed.data.samples;
    batchSensor = parsed.data.sensor;
  }
  const context: EntryContext = {
    topicFields,
    batchSensor,
    fields: options.fields ?? DEFAULT_COMPONENT_FIELDS,
    timestampFields:
      typeof options.timestampField === 'string'
        ? [options.timestampField]
        : (options.timestampField ?? DEFAULT_TIMESTAMP_FIELDS),
    unit: options.timestampUnit ?? 'auto',
    latest: latestTimestamp(options),
    group: options.group ?? topicFields['group'] ?? topicFields['observatory'],
  };
  (batch ?? [message]).forEach((entry, index) => {
    const decoded = decodeEntry(entry, context);
    if ('reason' in decoded) {
      invalid.push({
        reason: decoded.reason,
        detail: `${batch ? `samples[${index}]` : 'sample'}: ${decoded.detail}`,
      });
    } else {
      samples.push(decoded);
    }
  });
  return { samples, invalid };
}

interface EntryContext {
  readonly topicFields: Readonly<Record<string, string>>;
  readonly batchSensor: string | undefined;
  readonly fields: Readonly<Record<string, readonly string[]>>;
  readonly timestampFields: readonly string[];
  readonly unit: TimestampUnit;
  readonly latest: number;
  readonly group: string | undefined;
}

function decodeEntry(entry: unknown, context: EntryContext): Sample | Invalid {
  if (!isRecord(entry)) return { reason: 'bad_shape', detail: `expected an object, got ${describe(entry)}` };

  const entrySensor =
    typeof entry['sensor'] === 'string' && entry['sensor'] !== '' ? entry['sensor'] : undefined;
  const sensor = context.topicFields['sensor'] || entrySensor || context.batchSensor;
  if (!sensor) return { reason: 'no_sensor', detail: 'no sensor level in the topic and no "sensor" field' };

  const field = context.timestampFields.find((name) => entry[name] !== undefined);
  if (field === undefined) {
    return { reason: 'bad_timestamp', detail: `no timestamp field (${context.timestampFields.join(', ')})` };
  }
  const timestamp = toEpochMs(entry[field], context.unit);
  const bounds =
    timestamp === undefined
      ? `is not a ${context.unit} timestamp`
      : checkTimestamp(timestamp, context.latest);
  if (timestamp === undefined || bounds) {
    return { reason: 'bad_timestamp', detail: `${field}=${describe(entry[field])} ${bounds}` };
  }

  const values: Record<string, number | null> = {};
  for (const [component, names] of Object.entries(context.fields)) {
    const name = names.find((candidate) => entry[candidate] !== undefined);
    if (name === undefined) continue;
    const value = toValue(entry[name]);
    if (typeof value === 'string') return { reason: value, detail: `${name}=${describe(entry[name])}` };
    values[component] = value;
  }
  if (Object.keys(values).length === 0) {
    return {
      reason: 'no_components',
      detail: `none of the fields ${Object.values(context.fields).flat().join(', ')}`,
    };
  }
  const { group } = context;
  return group ? { sensor, group, timestamp, values } : { sensor, timestamp, values };
}

/** Parses a payload as JSON within the size limit; the error is the ready-made `Invalid`. */
export function parseJsonPayload(payload: Buffer, limits: PayloadLimits): { value: unknown } | Invalid {
  const maxBytes = limits.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (payload.length > maxBytes) {
    return { reason: 'too_large', detail: `${payload.length} bytes, more than the limit of ${maxBytes}` };
  }
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return { reason: 'not_json', detail: 'payload is not UTF-8' };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { reason: 'not_json', detail: (error as Error).message };
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Converts a timestamp field to epoch ms by unit; undefined when it is not one. */
export function toEpochMs(value: unknown, unit: TimestampUnit): number | undefined {
  if (typeof value === 'string') {
    const numeric = NUMERIC.test(value);
    // parseTimestamp reads ISO 8601 (UTC without an offset) and epoch numbers by the same 1e11 rule as `auto`.
    if (unit === 'auto' || (unit === 'iso' && !numeric)) return parseTimestamp(value);
    return numeric ? toEpochMs(Number(value), unit) : undefined;
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || unit === 'iso') return undefined;
  if (unit === 's') return value * 1000;
  if (unit === 'auto' && Math.abs(value) < 1e11) return value * 1000;
  return value;
}

const NUMERIC = /^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$/;

/** The latest timestamp the limits accept, read once per message. */
export function latestTimestamp(limits: PayloadLimits): number {
  return (limits.now ?? Date.now)() + (limits.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS);
}

/** Why a timestamp is out of bounds, or undefined when it is fine. */
export function checkTimestamp(timestamp: number, latest: number): string | undefined {
  if (timestamp < EARLIEST_TIMESTAMP_MS) return 'is before 1900';
  if (timestamp > latest) return `is later than ${new Date(latest).toISOString()} (the allowed time ahead)`;
  return undefined;
}

/** A component value: a finite number, null for a missing one, or the reason it is neither. */
export function toValue(value: unknown): number | null | 'not_finite' | 'bad_shape' {
  if (value === null) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : 'not_finite';
  if (typeof value === 'string') {
    // Some publishers quote their numbers; NaN and Infinity arrive only this way, since JSON cannot carry them.
    if (NUMERIC.test(value)) {
      // "1e400" matches the number syntax but overflows a double.
      const number = Number(value);
      return Number.isFinite(number) ? number : 'not_finite';
    }
    return /^\s*[+-]?(nan|inf|infinity)\s*$/i.test(value) ? 'not_finite' : 'bad_shape';
  }
  return 'bad_shape';
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A short rendering of a bad value for a log line. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

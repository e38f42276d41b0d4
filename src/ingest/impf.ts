import { z } from 'zod';
import type { Sample } from '../stream/types.js';
import {
  checkTimestamp,
  type DecodeResult,
  describe,
  type Invalid,
  type InvalidReason,
  latestTimestamp,
  type PayloadLimits,
  parseJsonPayload,
  toEpochMs,
  toValue,
} from './payload.js';

/**
 * The INTERMAGNET MQTT payload format (impf): topic `impf/<iaga>/<cadence>/<level>/<elements>`, payload
 * `startDate` plus one array per element; sample i is at startDate + i x cadence. Schema and official
 * examples: shared/formats/intermagnet/.
 */

/** The subscription pattern for the current topic layout; the older draft is `+iaga/+cadence/+level`. */
export const IMPF_TOPIC_PATTERN = 'impf/+iaga/+cadence/+level/+elements';

/** Element letters, which become the sample's component names (`ESK__X`, as from an IAGA-2002 file). */
export const IMPF_ELEMENTS = ['X', 'Y', 'Z', 'H', 'D', 'I', 'F', 'S'] as const;
export type ImpfElement = (typeof IMPF_ELEMENTS)[number];

/** IAGA-2002's markers for a missing (99999) or not recorded (88888) value; impf says null instead. */
const MISSING_MARKERS = new Set([99999, 88888]);

export interface ImpfDecodeOptions extends PayloadLimits {
  /** Group for every sample; otherwise the topic's `group` or `observatory` level, else none (reference rule). */
  group?: string;
}

const elementArray = z.array(z.unknown());
const impfMessage = z
  .object({
    startDate: z.string(),
    // Older drafts carried the topic's parts in the payload.
    iagaCode: z.string().optional(),
    cadence: z.string().optional(),
    geomagneticFieldX: elementArray.optional(),
    geomagneticFieldY: elementArray.optional(),
    geomagneticFieldZ: elementArray.optional(),
    geomagneticFieldH: elementArray.optional(),
    geomagneticFieldD: elementArray.optional(),
    geomagneticFieldI: elementArray.optional(),
    geomagneticFieldF: elementArray.optional(),
    geomagneticFieldS: elementArray.optional(),
  })
  .loose();

/**
 * Decodes one impf message. The IAGA code (upper-cased) is the sensor and each element letter a component;
 * `null` stays a `null` value. The IAGA code and cadence come from the topic's `iaga` and `cadence` levels,
 * else from the draft payload's `iagaCode` and `cadence`.
 */
export function decodeImpf(
  topicFields: Readonly<Record<string, string>>,
  payload: Buffer,
  options: ImpfDecodeOptions = {},
): DecodeResult {
  const samples: Sample[] = [];
  const reject = (reason: InvalidReason, detail: string): DecodeResult => ({
    samples,
    invalid: [{ reason, detail }],
  });

  const json = parseJsonPayload(payload, options);
  if ('reason' in json) return { samples, invalid: [json] };
  const parsed = impfMessage.safeParse(json.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return reject('bad_shape', `${issue?.path.join('.') || 'message'}: ${issue?.message ?? 'invalid'}`);
  }
  const message = parsed.data;

  const iaga = topicFields['iaga'] || message.iagaCode;
  if (!iaga) return reject('no_sensor', 'no iaga level in the topic and no "iagaCode" field');
  const cadenceText = topicFields['cadence'] || message.cadence;
  const cadenceMs = cadenceText === undefined ? undefined : parseCadence(cadenceText);
  if (cadenceMs === undefined) {
    return reject('bad_cadence', `cadence ${describe(cadenceText)} is not like pt1m, pt1s or 1hz`);
  }
  const start = toEpochMs(message.startDate, 'iso');
  if (start === undefined)
    return reject('bad_timestamp', `startDate ${describe(message.startDate)} is not ISO 8601`);

  const columns: Array<[ImpfElement, unknown[]]> = [];
  for (const element of IMPF_ELEMENTS) {
    const column = message[`geomagneticField${element}`];
    if (column) columns.push([element, column]);
  }
  if (columns.length === 0) return reject('no_components', 'no geomagneticFieldX|Y|Z|H|D|I|F|S array');
  const lengths = columns.map(([element, column]) => `${element}=${column.length}`);
  if (new Set(columns.map(([, column]) => column.length)).size > 1) {
    return reject('unequal_lengths', `element arrays differ in length (${lengths.join(', ')})`);
  }

  const sensor = iaga.toUpperCase();
  const group = options.group ?? topicFields['group'] ?? topicFields['observatory'];
  const latest = latestTimestamp(options);
  const invalid: Invalid[] = [];
  const count = columns[0]![1].length;
  for (let i = 0; i < count; i++) {
    const timestamp = start + i * cadenceMs;
    const bounds = checkTimestamp(timestamp, latest);
    if (bounds) {
      invalid.push({
        reason: 'bad_timestamp',
        detail: `sample ${i} at ${new Date(timestamp).toISOString()} ${bounds}`,
      });
      continue;
    }
    const values: Record<string, number | null> = {};
    let bad: Invalid | undefined;
    for (const [element, column] of columns) {
      const value = toValue(column[i]);
      if (typeof value === 'string') {
        bad = { reason: value, detail: `geomagneticField${element}[${i}]=${describe(column[i])}` };
        break;
      }
      values[element] = value !== null && MISSING_MARKERS.has(value) ? null : value;
    }
    if (bad) {
      invalid.push(bad);
      continue;
    }
    samples.push(group ? { sensor, group, timestamp, values } : { sensor, timestamp, values });
  }
  return { samples, invalid };
}

const DURATION = /^pt(\d+(?:\.\d+)?)([hms])$/;
const FREQUENCY = /^(\d+(?:\.\d+)?)hz$/;
const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1000 } as const;

/** An impf cadence in milliseconds: an ISO 8601 duration (`pt1m`, `pt1s`, `PT0.1S`) or a rate (`1hz`). */
export function parseCadence(text: string): number | undefined {
  const lower = text.trim().toLowerCase();
  const duration = DURATION.exec(lower);
  const frequency = FREQUENCY.exec(lower);
  let ms: number | undefined;
  if (duration) ms = Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS];
  else if (frequency) ms = 1000 / Number(frequency[1]);
  return ms !== undefined && Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/** The topic's cadence level for a sample spacing: `pt1m`, `pt1s`, `pt10s`, `10hz`, …; inverse of parseCadence. */
export function formatCadence(ms: number): string {
  if (ms % 60_000 === 0) return `pt${ms / 60_000}m`;
  if (ms % 1000 === 0) return `pt${ms / 1000}s`;
  if (Number.isInteger(1000 / ms)) return `${1000 / ms}hz`;
  return `pt${ms / 1000}s`;
}

/** The element letter for a long-format component: `X`…`S` as they are, `b_x`/`b_y`/`b_z` as X/Y/Z. */
export function impfElementOf(component: string): ImpfElement | undefined {
  const letter = /^b_([xyz])$/i.exec(component)?.[1] ?? component;
  const upper = letter.toUpperCase();
  return (IMPF_ELEMENTS as readonly string[]).includes(upper) ? (upper as ImpfElement) : undefined;
}

/**
 * Generated payloads, hostile and valid mixed, through both ingest decoders in-process: 100,000 messages in all.
 * Every generated message knows what the decoder must make of it (the oracle is built with the message, one
 * defect at a time), so the test checks classification by reason, not only the absence of a crash.
 */

import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeImpf } from '../../src/ingest/impf.js';
import { type DecodeResult, decodeMagwatch, type InvalidReason } from '../../src/ingest/payload.js';

const NOW = Date.UTC(2026, 0, 15, 12);
const MAX_FUTURE_MS = 86_400_000;
const MAX_BYTES = 2048;
const LIMITS = { now: () => NOW, maxFutureMs: MAX_FUTURE_MS, maxMessageBytes: MAX_BYTES };
const EARLIEST = Date.UTC(1900, 0, 1);
/** Epoch ms at or above this are read as ms by the `auto` rule; below, as seconds. */
const MS_RULE = 1e11;

const KNOWN_REASONS: ReadonlySet<InvalidReason> = new Set([
  'too_large',
  'not_json',
  'bad_shape',
  'bad_timestamp',
  'no_components',
  'not_finite',
  'no_sensor',
  'unequal_lengths',
  'bad_cadence',
  'unmatched_topic',
]);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A sample the decoder must accept, with what it must decode to. */
interface GoodEntry {
  readonly kind: 'good';
  readonly entry: Record<string, Json>;
  readonly timestamp: number;
  readonly values: Record<string, number | null>;
}

/** A sample with exactly one defect, and the reason the decoder must give. */
interface BadEntry {
  readonly kind: 'bad';
  readonly entry: Json;
  readonly reason: InvalidReason;
}

type Entry = GoodEntry | BadEntry;

/** A message and the decoder's expected answer; `expect: undefined` means only the invariants hold. */
interface MessageCase {
  readonly topicFields: Record<string, string>;
  readonly payload: Buffer;
  readonly expect?: { samples: GoodEntry[]; reasons: InvalidReason[] };
}

const COMPONENTS = ['b_x', 'b_y', 'b_z'] as const;

/** Whole epoch milliseconds in [min, max]; fc.integer stops at 32 bits. */
function msBetween(min: number, max: number): fc.Arbitrary<number> {
  return fc.double({ min, max, noNaN: true }).map((x) => Math.min(max, Math.max(min, Math.floor(x))));
}

const validMs = msBetween(MS_RULE, NOW + MAX_FUTURE_MS);
/** ISO strings, epoch ms and epoch seconds, as publishers send them. */
const validTimestamp: fc.Arbitrary<{ ts: Json; ms: number }> = fc.oneof(
  validMs.map((ms) => ({ ts: new Date(ms).toISOString(), ms })),
  validMs.map((ms) => ({ ts: ms, ms })),
  validMs.map((ms) => Math.floor(ms / 1000)).map((s) => ({ ts: s, ms: s * 1000 })),
);
/** Finite doubles (huge and tiny included), quoted numbers, and null for a missing value. */
const validValue: fc.Arbitrary<{ raw: Json; value: number | null }> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => ({ raw: x, value: x === 0 ? 0 : x })),
  fc
    .double({ noNaN: true, noDefaultInfinity: true })
    .map((x) => ({ raw: String(x), value: Number(String(x)) || 0 })),
  fc.constant({ raw: null, value: null }),
);
/** Extra fields a publisher may add, none of which collides with a field the decoder reads. */
const junkFields = fc.dictionary(
  fc.string({ maxLength: 6 }).map((k) => `x_${k}`),
  fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json>,
  { maxKeys: 2 },
);

const goodEntry: fc.Arbitrary<GoodEntry> = fc
  .record({
    time: validTimestamp,
    values: fc
      .subarray([...COMPONENTS], { minLength: 1 })
      .chain((names) => fc.tuple(...names.map((name) => validValue.map((v) => [name, v] as const)))),
    junk: junkFields,
  })
  .map(({ time, values, junk }) => {
    const entry: Record<string, Json> = { ...junk, ts: time.ts };
    const decoded: Record<string, number | null> = {};
    for (const [name, v] of values) {
      entry[name] = v.raw;
      decoded[name] = v.value;
    }
    return { kind: 'good', entry, timestamp: time.ms, values: decoded };
  });

const badTimestampValue: fc.Arbitrary<Json> = fc.oneof(
  // Far future: beyond the allowed day ahead, up to year 9999.
  msBetween(NOW + MAX_FUTURE_MS + 1000, Date.UTC(9999, 0, 1)).map((ms) => new Date(ms).toISOString()),
  msBetween(NOW + MAX_FUTURE_MS + 1000, 8.64e15),
  // Far past: before 1900, as ISO or as epoch ms.
  msBetween(Date.UTC(1000, 0, 1), EARLIEST - 1000).map((ms) => new Date(ms).toISOString()),
  msBetween(-8.64e15, EARLIEST - 1),
  // Wrong types and words.
  fc.constantFrom<Json>(true, false, {}, [], 'yesterday', '', 'NaN'),
);

/** One sample with exactly one defect. */
const badEntry: fc.Arbitrary<BadEntry> = fc.oneof(
  goodEntry.map((g) => {
    const { ts: _ts, ...rest } = g.entry;
    return { kind: 'bad' as const, entry: rest, reason: 'bad_timestamp' as const };
  }),
  fc.tuple(goodEntry, badTimestampValue).map(([g, ts]) => ({
    kind: 'bad' as const,
    entry: { ...g.entry, ts },
    reason: 'bad_timestamp' as const,
  })),
  fc
    .tuple(goodEntry, fc.constantFrom('NaN', 'nan', 'Infinity', '-Infinity', 'inf', ' -INF '))
    .map(([g, word]) => ({
      kind: 'bad' as const,
      entry: { ...g.entry, b_x: word },
      reason: 'not_finite' as const,
    })),
  fc.tuple(goodEntry, fc.constantFrom<Json>(true, {}, [1, 2], 'abc', '12 nT', '0x10')).map(([g, wrong]) => ({
    kind: 'bad' as const,
    entry: { ...g.entry, b_x: wrong },
    reason: 'bad_shape' as const,
  })),
  fc.tuple(validTimestamp, junkFields).map(([time, junk]) => ({
    kind: 'bad' as const,
    entry: { ...junk, ts: time.ts },
    reason: 'no_components' as const,
  })),
  fc.constantFrom<Json>(null, 42, 'sample', [], [1, 2, 3], true).map((entry) => ({
    kind: 'bad' as const,
    entry,
    reason: 'bad_shape' as const,
  })),
);

const entry: fc.Arbitrary<Entry> = fc.oneof(
  { weight: 3, arbitrary: goodEntry },
  { weight: 2, arbitrary: badEntry },
);
const SENSOR_TOPIC = { sensor: 'S1_OBS1_1' };

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function single(e: Entry): MessageCase {
  return {
    topicFields: SENSOR_TOPIC,
    payload: json(e.entry),
    expect: e.kind === 'good' ? { samples: [e], reasons: [] } : { samples: [], reasons: [e.reason] },
  };
}

const magwatchCase: fc.Arbitrary<MessageCase> = fc.oneof(
  { weight: 6, arbitrary: entry.map(single) },
  {
    weight: 3,
    arbitrary: fc.array(entry, { maxLength: 8 }).map((entries) => ({
      topicFields: SENSOR_TOPIC,
      payload: json({ samples: entries.map((e) => e.entry) }),
      expect: {
        samples: entries.filter((e): e is GoodEntry => e.kind === 'good'),
        reasons: entries.filter((e): e is BadEntry => e.kind === 'bad').map((e) => e.reason),
      },
    })),
  },
  // Truncated JSON: a cut object never parses.
  {
    weight: 2,
    arbitrary: goodEntry.chain((g) => {
      const text = JSON.stringify(g.entry);
      return fc.integer({ min: 0, max: text.length - 1 }).map((cut) => ({
        topicFields: SENSOR_TOPIC,
        payload: Buffer.from(text.slice(0, cut)),
        expect: { samples: [], reasons: ['not_json' as const] },
      }));
    }),
  },
  // Oversized: a valid sample padded past maxMessageBytes.
  {
    weight: 1,
    arbitrary: fc.tuple(goodEntry, fc.integer({ min: MAX_BYTES, max: 4 * MAX_BYTES })).map(([g, size]) => ({
      topicFields: SENSOR_TOPIC,
      payload: json({ ...g.entry, x_pad: 'p'.repeat(size) }),
      expect: { samples: [], reasons: ['too_large' as const] },
    })),
  },
  // No sensor from the topic or the payload.
  {
    weight: 1,
    arbitrary: goodEntry.map((g) => ({
      topicFields: {},
      payload: json(g.entry),
      expect: { samples: [], reasons: ['no_sensor' as const] },
    })),
  },
  // Top-level values that are not a sample or a batch.
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.constantFrom<Json>(null, true, 0, 'text', []),
        fc.array(fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json>, { maxLength: 3 }),
        fc.constantFrom<Json>(
          { samples: 'all' },
          { samples: {} },
          { samples: null },
          { samples: [], sensor: 7 },
        ),
      )
      .map((value) => ({
        topicFields: SENSOR_TOPIC,
        payload: json(value),
        expect: { samples: [], reasons: ['bad_shape' as const] },
      })),
  },
  // Random bytes and random JSON: only the invariants are known.
  {
    weight: 2,
    arbitrary: fc
      .uint8Array({ maxLength: 64 })
      .map((bytes) => ({ topicFields: SENSOR_TOPIC, payload: Buffer.from(bytes) })),
  },
  {
    weight: 2,
    arbitrary: (fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>).map((value) => ({
      topicFields: SENSOR_TOPIC,
      payload: json(value),
    })),
  },
);

/** What impf makes of one array element: the IAGA-2002 markers are missing values, -0 is 0. */
function impfValue(value: number | null): number | null {
  if (value === 99999 || value === 88888) return null;
  return value === 0 ? 0 : value;
}

/**
 * What holds for any payload: known reasons, samples inside the time bounds with finite values. Plain checks
 * rather than `expect`, which would cost more than the decoding in a loop of 100,000.
 */
function checkInvariants(result: DecodeResult): void {
  for (const item of result.invalid) {
    if (!KNOWN_REASONS.has(item.reason)) throw new Error(`unknown reason ${item.reason}`);
  }
  for (const sample of result.samples) {
    if (!(sample.timestamp >= EARLIEST && sample.timestamp <= NOW + MAX_FUTURE_MS)) {
      throw new Error(`sample outside the time bounds: ${JSON.stringify(sample)}`);
    }
    for (const value of Object.values(sample.values)) {
      if (value !== null && !Number.isFinite(value))
        throw new Error(`non-finite value in ${JSON.stringify(sample)}`);
    }
  }
}

function checkEqual(actual: unknown, expected: unknown, what: string): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  }
}

describe('ingest decoders under generated hostile input', () => {
  // Two runs of 40,000 with different seeds, so that each stays well inside the test timeout on a busy machine.
  it.each([
    [1, 20261203],
    [2, 20261204],
  ])(
    'classifies 40,000 generated magwatch messages by reason and decodes every valid sample exactly (run %i)',
    (_run, seed) => {
      const counted: Record<string, number> = {};
      fc.assert(
        fc.property(magwatchCase, (testCase) => {
          const result = decodeMagwatch(testCase.topicFields, testCase.payload, LIMITS);
          checkInvariants(result);
          for (const item of result.invalid) counted[item.reason] = (counted[item.reason] ?? 0) + 1;
          if (!testCase.expect) {
            // Whatever the bytes, one message that is not a batch yields exactly one outcome.
            if (!/^\s*\{[\s\S]*"samples"/.test(testCase.payload.toString('latin1'))) {
              checkEqual(result.samples.length + result.invalid.length, 1, 'outcomes of one message');
            }
            return;
          }
          checkEqual(
            result.invalid.map((i) => i.reason),
            testCase.expect.reasons,
            'invalid reasons',
          );
          checkEqual(
            result.samples,
            testCase.expect.samples.map((g) => ({
              sensor: SENSOR_TOPIC.sensor,
              timestamp: g.timestamp,
              values: g.values,
            })),
            'samples',
          );
        }),
        { numRuns: 40_000, seed },
      );
      // The generator reached every reason it can produce, so the oracle was exercised for each.
      for (const reason of [
        'too_large',
        'not_json',
        'bad_shape',
        'bad_timestamp',
        'no_components',
        'not_finite',
        'no_sensor',
      ]) {
        expect(counted[reason], reason).toBeGreaterThan(50);
      }
    },
  );

  it('reports numeric strings that overflow a double as not_finite, like the words NaN and Infinity', () => {
    // JSON cannot carry Infinity, so a quoted "1e400" is the one way a publisher can smuggle it in.
    for (const word of ['1e400', '-1e400', '1E999']) {
      const result = decodeMagwatch(SENSOR_TOPIC, json({ ts: NOW, b_x: word }), LIMITS);
      expect(
        result.invalid.map((i) => i.reason),
        word,
      ).toEqual(['not_finite']);
      expect(result.samples, word).toEqual([]);
    }
  });

  it('classifies 20,000 generated impf messages: valid arrays decode, hostile ones are counted', () => {
    const topic = { iaga: 'esk', cadence: 'pt1s', level: '1', elements: 'xyz' };
    const column = fc.array(
      fc.option(fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e5, max: 1e5 })),
      {
        minLength: 1,
        maxLength: 6,
      },
    );
    const valid = fc
      .record({ start: msBetween(MS_RULE, NOW), x: column })
      .chain(({ start, x }) =>
        fc.tuple(
          fc.constant(start),
          fc.constant(x),
          fc.array(fc.option(fc.double({ noNaN: true, noDefaultInfinity: true })), {
            minLength: x.length,
            maxLength: x.length,
          }),
        ),
      )
      .map(([start, x, z]) => ({
        payload: json({
          startDate: new Date(start).toISOString(),
          geomagneticFieldX: x,
          geomagneticFieldZ: z,
        }),
        expect: x.map((value, i) => ({
          timestamp: start + i * 1000,
          values: { X: impfValue(value), Z: impfValue(z[i] ?? null) },
        })),
      }));
    const hostile = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
      (fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>).map(json),
      fc
        .record({
          startDate: fc.oneof(
            fc.string(),
            fc.constant('1850-01-01T00:00:00Z'),
            fc.constant('9999-01-01T00:00:00Z'),
          ),
          geomagneticFieldX: fc.array(fc.jsonValue({ maxDepth: 1 }) as fc.Arbitrary<Json>, { maxLength: 4 }),
          geomagneticFieldY: fc.array(fc.constantFrom<Json>(1, null, 'NaN', 'Infinity', true), {
            maxLength: 4,
          }),
        })
        .map(json),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          valid.map((v) => ({ valid: v })),
          hostile.map((payload) => ({ payload })),
        ),
        (testCase) => {
          if ('valid' in testCase) {
            const result = decodeImpf(topic, testCase.valid.payload, LIMITS);
            checkInvariants(result);
            checkEqual(result.invalid, [], 'invalid of a valid message');
            checkEqual(
              result.samples,
              testCase.valid.expect.map((e) => ({ sensor: 'ESK', timestamp: e.timestamp, values: e.values })),
              'samples',
            );
          } else {
            checkInvariants(decodeImpf(topic, testCase.payload, LIMITS));
          }
        },
      ),
      { numRuns: 20_000, seed: 20261203 },
    );
  });
});

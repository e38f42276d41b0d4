/**
 * A few thousand generated messages, hostile and valid mixed, through a real mosquitto into the running service:
 * it keeps running, counts every invalid message by reason, and accounts for every valid sample (accepted,
 * missing, or dropped by the stream as a duplicate or late).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InvalidReason } from '../../src/ingest/payload.js';
import { type Mosquitto, startMosquitto } from '../helpers/mosquitto.js';
import {
  connectClient,
  metricValue,
  publishAll,
  type RunningService,
  startService,
  waitFor,
} from './helpers.js';

const MESSAGES = 3000;
const MAX_BYTES = 4096;
const SENSORS = ['S1_OBS1_1', 'S2_OBS1_2', 'S3_OBS2_1'];
const DAY_MS = 86_400_000;

type Kind =
  | { kind: 'next'; values: Array<number | null> }
  | { kind: 'duplicate' }
  | { kind: 'late'; back: number }
  | { kind: 'invalid'; reason: InvalidReason; variant: number };

const value = fc.oneof(
  { weight: 8, arbitrary: fc.double({ min: -60_000, max: 60_000, noNaN: true }) },
  { weight: 1, arbitrary: fc.constantFrom(1e12, -1e15, 1e300, Number.MAX_VALUE, 5e-324) },
  { weight: 1, arbitrary: fc.constant(null) },
);
const kind: fc.Arbitrary<Kind> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .array(value, { minLength: 3, maxLength: 3 })
      .map((values) => ({ kind: 'next' as const, values })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'duplicate' as const }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 30 }).map((back) => ({ kind: 'late' as const, back })) },
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        fc.constantFrom<InvalidReason>(
          'not_json',
          'bad_shape',
          'bad_timestamp',
          'not_finite',
          'too_large',
          'no_components',
        ),
        fc.nat(5),
      )
      .map(([reason, variant]) => ({ kind: 'invalid' as const, reason, variant })),
  },
);

/** A payload with exactly the defect `reason`, built around a plausible sample at `ts`. */
function invalidPayload(reason: InvalidReason, variant: number, ts: number): Buffer {
  const good = { ts, b_x: 19_700.5, b_y: 1_395.2, b_z: 44_530.1 };
  switch (reason) {
    case 'not_json': {
      const text = JSON.stringify(good);
      // 0xff never starts UTF-8; a cut object never parses.
      return variant % 2 === 0
        ? Buffer.from([0xff, 0x7b, 0x22])
        : Buffer.from(text.slice(0, 1 + ((variant * 7) % (text.length - 1))));
    }
    case 'bad_shape':
      return Buffer.from(
        JSON.stringify([[1, 2], null, 'x', { ...good, b_y: true }, { ...good, b_z: [1] }, 7][variant]),
      );
    case 'bad_timestamp': {
      const bad = [
        ts + 2 * DAY_MS,
        Date.UTC(1850, 0, 1),
        '9999-12-31T23:59:59Z',
        'yesterday',
        true,
        undefined,
      ][variant];
      return Buffer.from(JSON.stringify({ ...good, ts: bad }));
    }
    case 'not_finite':
      return Buffer.from(
        JSON.stringify({ ...good, b_x: ['NaN', 'Infinity', '-Infinity', 'nan', 'inf', '-INF'][variant] }),
      );
    case 'too_large':
      return Buffer.from(JSON.stringify({ ...good, pad: 'x'.repeat(MAX_BYTES + variant * 1000) }));
    default:
      return Buffer.from(JSON.stringify({ ts, x_other: variant }));
  }
}

interface Expected {
  messages: Array<{ topic: string; payload: Buffer }>;
  invalid: Partial<Record<InvalidReason, number>>;
  samples: number;
  accepted: number;
  missing: number;
  duplicate: number;
  late: number;
}

/** Builds the messages and, alongside, what the service must count for them. */
function generate(): Expected {
  const kinds = fc.sample(fc.tuple(fc.nat(SENSORS.length - 1), kind), { numRuns: MESSAGES, seed: 20261203 });
  const start = Date.now() - 3_600_000;
  const last = new Map<string, number>();
  const lastAccepted = new Map<string, number>();
  const expected: Expected = {
    messages: [],
    invalid: {},
    samples: 0,
    accepted: 0,
    missing: 0,
    duplicate: 0,
    late: 0,
  };
  for (const [index, item] of kinds) {
    const sensor = SENSORS[index]!;
    const topic = `magwatch/raw/${sensor}`;
    const previous = last.get(sensor);
    if (item.kind === 'invalid') {
      expected.invalid[item.reason] = (expected.invalid[item.reason] ?? 0) + 1;
      expected.messages.push({
        topic,
        payload: invalidPayload(item.reason, item.variant, previous ?? start),
      });
      continue;
    }
    if (item.kind !== 'next' && previous === undefined) continue;
    let ts: number;
    let values: Array<number | null> = [19_700, 1_395, 44_530];
    if (item.kind === 'next') {
      ts = (previous ?? start - 1000) + 1000;
      values = item.values;
      last.set(sensor, ts);
    } else if (item.kind === 'duplicate') {
      ts = previous!;
    } else {
      ts = previous! - item.back * 1000;
    }
    // Each channel judges a sample against its own last accepted one: a missing value does not advance it.
    values.forEach((v, component) => {
      const channel = `${sensor}/${component}`;
      const channelLast = lastAccepted.get(channel) ?? Number.NEGATIVE_INFINITY;
      if (v === null) expected.missing++;
      else if (ts === channelLast) expected.duplicate++;
      else if (ts < channelLast) expected.late++;
      else {
        expected.accepted++;
        lastAccepted.set(channel, ts);
      }
    });
    expected.samples++;
    const [b_x, b_y, b_z] = values;
    const payload =
      index % 2 === 0 ? { ts, b_x, b_y, b_z } : { ts: new Date(ts).toISOString(), b_x, b_y, b_z };
    expected.messages.push({ topic, payload: Buffer.from(JSON.stringify(payload)) });
  }
  return expected;
}

describe('generated hostile messages through the broker into the service', () => {
  let mosquitto: Mosquitto;
  let running: RunningService;
  const expected = generate();

  beforeAll(async () => {
    mosquitto = await startMosquitto();
    running = await startService({ mqtt: { url: mosquitto.url, maxMessageBytes: MAX_BYTES } });
    const publisher = await connectClient(mosquitto.url);
    await publishAll(publisher, expected.messages);
    await publisher.endAsync();
    await waitFor(
      () => running.service.ingest.counters().messages === expected.messages.length,
      'every message at the service',
      { timeoutMs: 45_000, detail: () => running.service.ingest.counters() },
    );
  }, 90_000);

  afterAll(async () => {
    await running?.stop();
    await mosquitto?.stop();
  });

  it('counts every invalid message by its reason', () => {
    expect(running.service.ingest.counters().invalid).toEqual(expected.invalid);
    expect(Object.values(expected.invalid).reduce((a, b) => a + b, 0)).toBeGreaterThan(MESSAGES / 4);
  });

  it('accounts for every valid sample: accepted, missing, or dropped as duplicate or late', () => {
    expect(running.service.ingest.counters().samples).toBe(expected.samples);
    const stats = running.service.detector.stats();
    expect({
      samples: stats.samples,
      accepted: stats.accepted,
      missing: stats.missing,
      duplicate: stats.dropped.duplicate,
      late: stats.dropped.late,
      unknownChannel: stats.dropped.unknownChannel,
    }).toEqual({
      samples: expected.samples,
      accepted: expected.accepted,
      missing: expected.missing,
      duplicate: expected.duplicate,
      late: expected.late,
      unknownChannel: 0,
    });
  });

  it('keeps scoring and serving its endpoints, and exports the same counts', async () => {
    const { detector, http } = running.service;
    await waitFor(
      () => detector.stats().windowsScored === detector.stats().windows,
      'the due windows to be scored',
    );
    expect(detector.stats().windowsScored).toBeGreaterThan(0);
    expect((await fetch(`${http!.url}/healthz`)).status).toBe(200);
    await waitFor(
      async () => {
        const text = await (await fetch(`${http!.url}/metrics`)).text();
        return Object.entries(expected.invalid).every(
          ([reason, count]) =>
            metricValue(text, 'magwatch_ingest_invalid_total', `reason="${reason}"`) === count,
        );
      },
      'the invalid counts in /metrics',
      { timeoutMs: 5000 },
    );
  });
});

import { describe, expect, it } from 'vitest';
import { decodeMagwatch, type MagwatchDecodeOptions, toEpochMs } from '../../src/ingest/payload.js';

const NOW = Date.UTC(2024, 2, 1, 12);
const T0 = Date.UTC(2024, 2, 1, 0, 0, 0);
const options: MagwatchDecodeOptions = { now: () => NOW };
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const decode = (value: unknown, topic: Record<string, string> = { sensor: 'S1_OBS1_1' }, extra = {}) =>
  decodeMagwatch(topic, typeof value === 'string' ? Buffer.from(value) : json(value), {
    ...options,
    ...extra,
  });

describe('decodeMagwatch', () => {
  it('decodes one sample with the sensor from the topic', () => {
    const result = decode({ ts: '2024-03-01T00:00:00Z', b_x: 1.5, b_y: -2, b_z: 3e4 });
    expect(result).toEqual({
      samples: [{ sensor: 'S1_OBS1_1', timestamp: T0, values: { b_x: 1.5, b_y: -2, b_z: 3e4 } }],
      invalid: [],
    });
  });

  it('decodes a batch and takes the group from an observatory level', () => {
    const result = decode(
      {
        samples: [
          { ts: T0, b_x: 1, b_y: 2, b_z: 3 },
          { ts: T0 + 1000, b_x: 4, b_y: 5, b_z: 6 },
        ],
      },
      { observatory: 'OBS7', sensor: 'S9' },
    );
    expect(result.invalid).toEqual([]);
    expect(result.samples).toEqual([
      { sensor: 'S9', group: 'OBS7', timestamp: T0, values: { b_x: 1, b_y: 2, b_z: 3 } },
      { sensor: 'S9', group: 'OBS7', timestamp: T0 + 1000, values: { b_x: 4, b_y: 5, b_z: 6 } },
    ]);
  });

  it('takes the sensor from the sample, then the batch, when the topic has none', () => {
    const result = decode(
      {
        sensor: 'B',
        samples: [
          { ts: T0, b_x: 1 },
          { sensor: 'A', ts: T0, b_x: 2 },
        ],
      },
      {},
    );
    expect(result.samples.map((s) => s.sensor)).toEqual(['B', 'A']);
  });

  it('maps other field names onto components, first present wins', () => {
    const fields = { b_x: ['b_x', 'x', 'bx'], b_y: ['b_y', 'y', 'by'], b_z: ['b_z', 'z', 'bz'] };
    const result = decode({ time: T0, x: 1, by: 2, b_z: 3, z: 99 }, undefined, { fields });
    expect(result.samples[0]?.values).toEqual({ b_x: 1, b_y: 2, b_z: 3 });
  });

  it('reads the timestamp from a configured field in the configured unit', () => {
    const seconds = decode({ epoch: T0 / 1000, b_x: 1 }, undefined, {
      timestampField: 'epoch',
      timestampUnit: 's',
    });
    expect(seconds.samples[0]?.timestamp).toBe(T0);
    const ms = decode({ epoch: T0, b_x: 1 }, undefined, {
      timestampField: ['t', 'epoch'],
      timestampUnit: 'ms',
    });
    expect(ms.samples[0]?.timestamp).toBe(T0);
    const iso = decode({ ts: '2024-03-01T01:00:00+01:00', b_x: 1 }, undefined, { timestampUnit: 'iso' });
    expect(iso.samples[0]?.timestamp).toBe(T0);
    const isoGivenNumber = decode({ ts: T0, b_x: 1 }, undefined, { timestampUnit: 'iso' });
    expect(isoGivenNumber.invalid.map((i) => i.reason)).toEqual(['bad_timestamp']);
  });

  it('reads auto timestamps: ISO without an offset as UTC, epoch ms, small numbers as epoch seconds', () => {
    expect(toEpochMs('2024-03-01T00:00', 'auto')).toBe(T0);
    expect(toEpochMs('2024-03-01 00:00:00.250', 'auto')).toBe(T0 + 250);
    expect(toEpochMs(T0, 'auto')).toBe(T0);
    expect(toEpochMs(T0 / 1000, 'auto')).toBe(T0);
    expect(toEpochMs(String(T0), 'ms')).toBe(T0);
    expect(toEpochMs('yesterday', 'auto')).toBeUndefined();
  });

  it('keeps an explicit null as a missing value and omits absent components', () => {
    const result = decode({ ts: T0, b_x: null, b_z: 3 });
    expect(result.samples[0]?.values).toEqual({ b_x: null, b_z: 3 });
  });

  it('uses a configured group before the topic', () => {
    const result = decode({ ts: T0, b_x: 1 }, { observatory: 'OBS1', sensor: 'S' }, { group: 'NORTH' });
    expect(result.samples[0]?.group).toBe('NORTH');
  });

  it.each([
    ['not_json', '{"ts": 1,', undefined],
    ['not_json', Buffer.from([0x7b, 0xff, 0x7d]), undefined],
    ['bad_shape', [1, 2, 3], undefined],
    ['bad_shape', { samples: 'many' }, undefined],
    ['bad_shape', { ts: T0, b_x: 'twelve' }, undefined],
    ['bad_shape', { ts: T0, b_x: { value: 1 } }, undefined],
    ['bad_timestamp', { b_x: 1 }, undefined],
    ['bad_timestamp', { ts: 'soon', b_x: 1 }, undefined],
    ['bad_timestamp', { ts: '1899-12-31T23:59:59Z', b_x: 1 }, undefined],
    ['bad_timestamp', { ts: NOW + 86_400_001, b_x: 1 }, undefined],
    ['no_components', { ts: T0, temperature: 21 }, undefined],
    ['not_finite', { ts: T0, b_x: 'NaN' }, undefined],
    ['not_finite', { ts: T0, b_x: '-Infinity' }, undefined],
    ['no_sensor', { ts: T0, b_x: 1 }, {}],
  ])('reports %s for %j', (reason, payload, topic) => {
    const buffer = Buffer.isBuffer(payload)
      ? payload
      : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
    const result = decodeMagwatch(topic ?? { sensor: 'S1' }, buffer, options);
    expect(result.samples).toEqual([]);
    expect(result.invalid).toHaveLength(1);
    expect(result.invalid[0]?.reason).toBe(reason);
    expect(result.invalid[0]?.detail).not.toContain('\n');
  });

  it('reports too_large above the size limit without parsing', () => {
    const payload = json({ ts: T0, b_x: 1, padding: 'x'.repeat(200) });
    const result = decodeMagwatch({ sensor: 'S1' }, payload, { ...options, maxMessageBytes: 100 });
    expect(result.invalid.map((i) => i.reason)).toEqual(['too_large']);
    expect(result.invalid[0]?.detail).toContain(`${payload.length} bytes`);
  });

  it('accepts timestamps up to the configured time ahead', () => {
    const ahead = { ts: NOW + 60_000, b_x: 1 };
    expect(decode(ahead, undefined, { maxFutureMs: 120_000 }).samples).toHaveLength(1);
    expect(decode(ahead, undefined, { maxFutureMs: 30_000 }).invalid[0]?.reason).toBe('bad_timestamp');
  });

  it('keeps the good samples of a batch and reports each bad one with its index', () => {
    const result = decode({
      samples: [
        { ts: T0, b_x: 1 },
        { ts: T0 + 1000, b_x: 'nan' },
        7,
        { ts: '1800-01-01', b_x: 1 },
        { ts: T0 + 4000, b_x: 5 },
      ],
    });
    expect(result.samples.map((s) => s.values['b_x'])).toEqual([1, 5]);
    expect(result.invalid).toEqual([
      { reason: 'not_finite', detail: 'samples[1]: b_x="nan"' },
      { reason: 'bad_shape', detail: 'samples[2]: expected an object, got 7' },
      { reason: 'bad_timestamp', detail: 'samples[3]: ts="1800-01-01" is before 1900' },
    ]);
  });

  it('accepts an empty batch as no samples', () => {
    expect(decode({ samples: [] })).toEqual({ samples: [], invalid: [] });
  });
});

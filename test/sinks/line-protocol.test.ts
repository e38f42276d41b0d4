import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  encodePoint,
  encodePoints,
  escapeKey,
  escapeMeasurement,
  FileSink,
  quoteString,
} from '../../src/sinks/line-protocol.js';
import type { Point } from '../../src/stream/types.js';

const point = (overrides: Partial<Point> = {}): Point => ({
  measurement: 'm',
  tags: {},
  fields: { v: 1.5 },
  time: 1000,
  ...overrides,
});

describe('escaping', () => {
  it.each([
    ['a b', 'a\\ b'],
    ['a,b', 'a\\,b'],
    ['a=b', 'a=b'],
    ['a/b', 'a/b'],
    ['a+b', 'a+b'],
    ['a#b', 'a#b'],
    ['a"b', 'a"b'],
    ['a\\b', 'a\\b'],
    ['Ωmega ü', 'Ωmega\\ ü'],
  ])('escapes measurement %j as %j', (name, expected) => {
    expect(escapeMeasurement(name)).toBe(expected);
  });

  it('percent-encodes a leading # of a measurement, which influxd reads as a comment', () => {
    expect(escapeMeasurement('#m')).toBe('%23m');
  });

  it.each([
    ['a b', 'a\\ b'],
    ['a,b', 'a\\,b'],
    ['a=b', 'a\\=b'],
    ['a/b', 'a/b'],
    ['a+b', 'a+b'],
    ['a#b', 'a#b'],
    ['a"b', 'a"b'],
    ['a\\b', 'a\\b'],
    ['Ωmega', 'Ωmega'],
  ])('escapes tag key or value %j as %j', (name, expected) => {
    expect(escapeKey(name)).toBe(expected);
  });

  it.each([
    ['a\\', 'a%5C'],
    ['a\\ b', 'a%5C\\ b'],
    ['a\\,b', 'a%5C\\,b'],
    ['a\\=b', 'a%5C\\=b'],
    ['a\nb', 'a%0Ab'],
    ['a\rb', 'a%0Db'],
  ])('percent-encodes %j, which influxd 1.x cannot store, as %j', (name, expected) => {
    expect(escapeKey(name)).toBe(expected);
  });

  it.each([
    ['plain', '"plain"'],
    ['a"b', '"a\\"b"'],
    ['a\\b', '"a\\\\b"'],
    ['a b,c=d', '"a b,c=d"'],
    ['/+#', '"/+#"'],
    ['line1\nline2', '"line1\nline2"'],
    ['Ωmega', '"Ωmega"'],
  ])('quotes string field %j as %j', (value, expected) => {
    expect(quoteString(value)).toBe(expected);
  });
});

describe('encodePoint', () => {
  it('writes sorted tags, typed fields and a millisecond timestamp', () => {
    const line = encodePoint(
      point({
        tags: { sensor: 'S 1', channel: 'S1__b_x' },
        fields: { rmse: 0.25, votes: 3, anomalous: true, event: 'anomaly.start', count: 3 },
      }),
      { integerFields: new Set(['votes']) },
    );
    expect(line).toBe(
      'm,channel=S1__b_x,sensor=S\\ 1 rmse=0.25,votes=3i,anomalous=true,event="anomaly.start",count=3 1000',
    );
  });

  it('writes nanosecond timestamps exactly', () => {
    expect(encodePoint(point({ time: 1_700_000_000_123 }), { precision: 'ns' })).toBe(
      'm v=1.5 1700000000123000000',
    );
    expect(encodePoint(point({ time: 0 }), { precision: 'ns' })).toBe('m v=1.5 0');
  });

  it('leaves out empty tag values', () => {
    expect(encodePoint(point({ tags: { a: '', b: 'x' } }))).toBe('m,b=x v=1.5 1000');
  });

  it.each([
    ['no fields', point({ fields: {} })],
    ['a NaN field', point({ fields: { v: Number.NaN } })],
    ['an infinite field', point({ fields: { v: Number.POSITIVE_INFINITY } })],
    ['an empty field key', point({ fields: { '': 1 } })],
    ['a NaN time', point({ time: Number.NaN })],
    ['an empty measurement', point({ measurement: '' })],
  ])('rejects a point with %s', (_, bad) => {
    expect(() => encodePoint(bad)).toThrow(expect.objectContaining({ code: 'MW_SINK_INVALID_POINT' }));
  });

  it('rejects a fractional value in an integer field', () => {
    expect(() =>
      encodePoint(point({ fields: { votes: 2.5 } }), { integerFields: new Set(['votes']) }),
    ).toThrow(/integer field "votes"/);
  });

  it('terminates every line of a batch', () => {
    expect(encodePoints([point(), point({ time: 2000 })])).toBe('m v=1.5 1000\nm v=1.5 2000\n');
  });
});

describe('FileSink', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('appends parseable lines and counts invalid points', async () => {
    dir = await mkdtemp(join(tmpdir(), 'magwatch-filesink-'));
    const path = join(dir, 'points.lp');
    const sink = new FileSink({ path, integerFields: new Set(['votes']) });
    sink.write([point({ tags: { group: 'OBS 1' }, fields: { votes: 2, anomalous: false } })]);
    sink.write([point({ fields: { v: Number.NaN } }), point({ measurement: 'n', time: 2000 })]);
    await sink.close();
    sink.write([point()]);

    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(lines).toEqual(['m,group=OBS\\ 1 votes=2i,anomalous=false 1000000000', 'n v=1.5 2000000000', '']);
    for (const line of lines.filter((l) => l !== '')) {
      expect(line).toMatch(/^(?:[^ \\]|\\.)+ (?:[^ \\"]|\\.|"(?:[^"\\]|\\.)*")+ \d+$/);
    }
    expect(sink.stats()).toEqual({
      written: 2,
      retried: 0,
      buffered: 0,
      dropped: { invalid: 1, failed: 0, closed: 1, overflow: 0, rejected: 0 },
    });
  });

  it('counts appends that fail and logs the first failure only', async () => {
    const errors: unknown[] = [];
    const logger = { error: (bindings: unknown) => void errors.push(bindings) };
    const path = join(tmpdir(), 'magwatch-no-such-dir', 'x', 'points.lp');
    const sink = new FileSink({ path, logger });
    sink.write([point(), point()]);
    sink.write([point()]);
    await sink.close();
    expect(sink.stats().dropped.failed).toBe(3);
    expect(sink.error()).toBeInstanceOf(Error);
    expect(errors).toEqual([{ path, err: expect.stringContaining('ENOENT') }]);
  });
});

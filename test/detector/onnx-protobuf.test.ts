import { describe, expect, it } from 'vitest';
import { ProtoWriter } from '../../src/detector/onnx/protobuf.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('ProtoWriter', () => {
  it('encodes varints of known values after their tag', () => {
    // Field 1, wire type 0: tag 0x08.
    const cases: [number | bigint, string][] = [
      [0, '0800'],
      [1, '0801'],
      [127, '087f'],
      [128, '088001'],
      [300, '08ac02'],
      [2 ** 31 - 1, '08ffffffff07'],
      [2 ** 32, '088080808010'],
      [Number.MAX_SAFE_INTEGER, '08ffffffffffffff0f'],
      [-1, '08ffffffffffffffffff01'],
      [-2n, '08feffffffffffffffff01'],
    ];
    for (const [value, encoded] of cases)
      expect(hex(new ProtoWriter().int(1, value).finish()), String(value)).toBe(encoded);
  });

  it('puts the field number and wire type in the tag', () => {
    // Field 20 (AttributeProto.type), wire type 0: (20 << 3) | 0 = 160 = a0 01.
    expect(hex(new ProtoWriter().int(20, 2).finish())).toBe('a00102');
    // Field 8, wire type 2: 0x42.
    expect(hex(new ProtoWriter().string(8, 'ab').finish())).toBe('42026162');
  });

  it('writes floats as fixed32 little endian', () => {
    // Field 2, wire type 5: 0x15; 1.0f = 0x3f800000.
    expect(hex(new ProtoWriter().float(2, 1).finish())).toBe('150000803f');
    expect(hex(new ProtoWriter().float(2, -2.5).finish())).toBe('15000020c0');
  });

  it('length-prefixes strings in UTF-8 bytes, nested messages and packed integers', () => {
    expect(hex(new ProtoWriter().string(1, 'µT').finish())).toBe('0a03c2b554');
    const nested = new ProtoWriter().message(7, (inner) => inner.int(1, 150)).finish();
    expect(hex(nested)).toBe('3a03089601');
    expect(hex(new ProtoWriter().packedInts(1, [3, 270, 86942]).finish())).toBe('0a06038e029ea705');
  });

  it('grows past its initial buffer without losing bytes', () => {
    const payload = Uint8Array.from({ length: 1000 }, (_, i) => i % 251);
    const bytes = new ProtoWriter().int(1, 5).raw(2, payload).int(3, 7).finish();
    // Tag 08 05, tag 12, length 1000 = e8 07, payload, tag 18 07.
    expect(bytes).toHaveLength(2 + 1 + 2 + 1000 + 2);
    expect(hex(bytes.subarray(0, 5))).toBe('080512e807');
    expect(bytes.subarray(5, 1005)).toEqual(payload);
    expect(hex(bytes.subarray(1005))).toBe('1807');
  });

  it('refuses numbers that are not safe integers', () => {
    expect(() => new ProtoWriter().int(1, 1.5)).toThrow(RangeError);
    expect(() => new ProtoWriter().int(1, 2 ** 60)).toThrow(RangeError);
  });
});

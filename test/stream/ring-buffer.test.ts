import { describe, expect, it } from 'vitest';
import { RingBuffer } from '../../src/stream/ring-buffer.js';

describe('RingBuffer', () => {
  it('reads the newest samples oldest first after wrapping around', () => {
    const ring = new RingBuffer(4);
    for (let i = 1; i <= 6; i++) ring.push(i * 10, i);
    const out = new Float32Array(4);
    ring.copyLatest(4, out);
    expect([...out]).toEqual([3, 4, 5, 6]);
    expect(ring.length).toBe(4);
    expect(ring.timeAt(0)).toBe(60);
    expect(ring.timeAt(3)).toBe(30);
    expect(ring.valueAt(1)).toBe(5);
  });

  it('copies fewer than all samples into an offset', () => {
    const ring = new RingBuffer(3);
    for (let i = 1; i <= 5; i++) ring.push(i, i);
    const out = new Float32Array(4);
    ring.copyLatest(2, out, 1);
    expect([...out]).toEqual([0, 4, 5, 0]);
  });

  it('forgets everything on clear', () => {
    const ring = new RingBuffer(3);
    ring.push(1, 1);
    ring.push(2, 2);
    ring.clear();
    expect(ring.length).toBe(0);
    expect(() => ring.timeAt(0)).toThrow(RangeError);
    ring.push(3, 3);
    const out = new Float32Array(1);
    ring.copyLatest(1, out);
    expect([...out]).toEqual([3]);
  });

  it('refuses to read more samples than it holds', () => {
    const ring = new RingBuffer(3);
    ring.push(1, 1);
    expect(() => ring.copyLatest(2, new Float32Array(2))).toThrow(RangeError);
  });
});

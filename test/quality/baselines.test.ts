import { describe, expect, test } from 'vitest';
import {
  baselineDetect,
  ewmaFlags,
  MAD_TO_STD,
  robustZFlags,
  voteFlags,
} from '../../src/quality/baselines.js';

describe('robustZFlags', () => {
  test('flags a sample far from the median of the trailing window', () => {
    // At i=6 the history [2,3,4,5,3] has median 3 and MAD 1, so 100 is (100-3)/1.4826 = 65 away.
    expect(Array.from(robustZFlags([1, 2, 3, 4, 5, 3, 100], { window: 5, z: 6 }))).toEqual([
      0, 0, 0, 0, 0, 0, 1,
    ]);
  });

  test('compares the robust z-score with the threshold strictly', () => {
    const edge = 3 + 6 * MAD_TO_STD;
    expect(robustZFlags([1, 2, 3, 4, 5, 3, edge - 0.01], { window: 5, z: 6 })[6]).toBe(0);
    expect(robustZFlags([1, 2, 3, 4, 5, 3, edge + 0.01], { window: 5, z: 6 })[6]).toBe(1);
  });

  test('never flags the samples before a full window of history', () => {
    expect(Array.from(robustZFlags([0, 1000, -1000, 10_000], { window: 3, z: 1 }))).toEqual([0, 0, 0, 1]);
  });

  test('flags any departure from a flat history', () => {
    expect(Array.from(robustZFlags([7, 7, 7, 7, 7.001], { window: 3 }))).toEqual([0, 0, 0, 0, 1]);
  });
});

describe('ewmaFlags', () => {
  test('flags a residual above k times the running residual std', () => {
    // alpha 0.5: residuals 2, -1, 1.5, 8.75 against stds 0, sqrt 2, sqrt 1.5, sqrt 1.875 (k=2: 2.83, 2.45, 2.74).
    expect(Array.from(ewmaFlags([0, 2, 0, 2, 10], { alpha: 0.5, k: 2, warmup: 2 }))).toEqual([0, 0, 0, 0, 1]);
  });

  test('leaves the warm-up samples unflagged', () => {
    expect(Array.from(ewmaFlags([0, 2, 0, 2, 10], { alpha: 0.5, k: 2, warmup: 5 }))).toEqual([0, 0, 0, 0, 0]);
  });

  test('does not flag a slow drift that the level follows', () => {
    const drift = Array.from({ length: 500 }, (_, i) => i * 0.01 + (i % 2 === 0 ? 0.1 : -0.1));
    expect(ewmaFlags(drift).reduce((a, b) => a + b, 0)).toBe(0);
  });
});

describe('voteFlags', () => {
  test('takes the global vote of the reference over the channels', () => {
    const flags = [Uint8Array.of(1, 1, 0, 0), Uint8Array.of(0, 1, 1, 0), Uint8Array.of(0, 1, 1, 1)];
    const voted = voteFlags(flags, 4, { minChannels: 2 });
    expect(Array.from(voted.votes)).toEqual([1, 3, 2, 1]);
    expect(voted.required).toBe(2);
    expect(Array.from(voted.final)).toEqual([0, 1, 1, 0]);
    expect(voteFlags(flags, 4, { fraction: 0.9 }).required).toBe(3);
  });

  test('keeps a spike on one channel out of the vote', () => {
    const quiet = Array.from({ length: 200 }, (_, i) => Math.sin(i / 5));
    const spiked = quiet.map((v, i) => (i === 150 ? v + 50 : v));
    const table = { timestamps: new Float64Array(200), values: [spiked, quiet, quiet] };
    const alone = baselineDetect(table, 'robust-z', { minChannels: 2 });
    expect(alone.flags[0]![150]).toBe(1);
    expect(alone.final.reduce((a, b) => a + b, 0)).toBe(0);
    const together = baselineDetect({ ...table, values: [spiked, spiked, quiet] }, 'ewma', {
      minChannels: 2,
    });
    expect(together.final[150]).toBe(1);
  });
});

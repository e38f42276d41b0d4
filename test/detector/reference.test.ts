import { describe, expect, test } from 'vitest';
import {
  applyScaler,
  countVotes,
  expandWindows,
  fitScaler,
  gatherWindows,
  madThreshold,
  median,
  requiredVotes,
  windowStarts,
} from '../../src/detector/reference.js';
import { groupOf } from '../../src/ingest/table.js';

describe('scaler', () => {
  test('uses the mean and the population standard deviation', () => {
    // [1, 2, 3, 4]: mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, / 4 = 1.25.
    const scaler = fitScaler([1, 2, 3, 4]);
    expect(scaler.mean).toBe(2.5);
    expect(scaler.scale).toBeCloseTo(Math.sqrt(1.25), 15);
  });

  test('scales a constant channel by 1', () => {
    expect(fitScaler([7, 7, 7])).toEqual({ mean: 7, scale: 1 });
    expect(Array.from(applyScaler([7, 8], { mean: 7, scale: 1 }))).toEqual([0, 1]);
  });
});

describe('windows', () => {
  test('start at 0, step, 2 * step while start + W <= n', () => {
    expect(windowStarts(10, 4, 4)).toEqual([0, 4]);
    expect(windowStarts(12, 4, 4)).toEqual([0, 4, 8]);
    expect(windowStarts(10, 4, 3)).toEqual([0, 3, 6]);
    expect(windowStarts(3, 4, 4)).toEqual([]);
  });

  test('are gathered back to back', () => {
    const scaled = Float32Array.from([0, 1, 2, 3, 4, 5, 6]);
    expect(Array.from(gatherWindows(scaled, [0, 3], 3))).toEqual([0, 1, 2, 3, 4, 5]);
  });
});

describe('threshold', () => {
  test('is the median plus k times the unscaled MAD', () => {
    // median 3; |x - 3| = [2, 1, 0, 1, 7] -> median 1; 3 + 6 * 1 = 9.
    expect(madThreshold([1, 2, 3, 4, 10], 6)).toBe(9);
  });

  test('takes the mean of the middle pair for an even count, like NumPy', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    // median 2.5; deviations [1.5, 0.5, 0.5, 1.5] -> 1; 2.5 + 2 * 1 = 4.5.
    expect(madThreshold([1, 2, 3, 4], 2)).toBe(4.5);
  });
});

describe('flags', () => {
  test('are strict: an RMSE equal to the threshold is normal', () => {
    const { flags } = expandWindows(8, [0, 4], [0.5, 0.5000001], 4, 0.5);
    expect(Array.from(flags)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  test('cover every sample of an anomalous window and leave the uncovered tail normal', () => {
    const { flags, sampleRmse } = expandWindows(10, [0, 4], [2, 0.1], 4, 1);
    expect(Array.from(flags)).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(sampleRmse.subarray(0, 8))).toEqual([2, 2, 2, 2, 0.1, 0.1, 0.1, 0.1]);
    expect(Number.isNaN(sampleRmse[8])).toBe(true);
  });

  test('take the largest RMSE where overlapping windows cover a sample', () => {
    const { flags, sampleRmse } = expandWindows(6, [0, 2], [0.2, 3], 4, 1);
    expect(Array.from(flags)).toEqual([0, 0, 1, 1, 1, 1]);
    expect(Array.from(sampleRmse)).toEqual([0.2, 0.2, 3, 3, 3, 3]);
  });
});

describe('votes', () => {
  test('count flagged channels per sample', () => {
    const votes = countVotes([Uint8Array.from([1, 0, 1]), Uint8Array.from([1, 1, 0])], 3);
    expect(Array.from(votes)).toEqual([2, 1, 1]);
  });

  test('need the absolute count, or the fraction of channels rounded up', () => {
    expect(requiredVotes({ minChannels: 5 }, 9)).toBe(5);
    expect(requiredVotes({ minChannels: 5 }, 3)).toBe(5);
    expect(requiredVotes({ fraction: 0.56 }, 9)).toBe(6); // 5.04 -> 6
    expect(requiredVotes({ fraction: 0.5 }, 9)).toBe(5); // 4.5 -> 5
    expect(requiredVotes({ fraction: 0.5 }, 8)).toBe(4);
  });
});

describe('observatory groups', () => {
  test('come from the OBS<n> part of the sensor id, else one group', () => {
    expect(groupOf('S1_OBS1_1')).toBe('OBS1');
    expect(groupOf('S12_OBS12_3')).toBe('OBS12');
    expect(groupOf('BOU')).toBe('OBS_ALL');
  });
});

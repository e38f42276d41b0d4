import { describe, expect, test } from 'vitest';
import { evaluateFlags, f1Score, flaggedRegions, insideEvents } from '../../src/evaluate/metrics.js';

/** One sample per second from t = 0. */
const seconds = (n: number) => Array.from({ length: n }, (_, i) => i * 1000);

describe('evaluateFlags', () => {
  test('scores points, events, delay and false alarms of a mixed case', () => {
    const flags = [0, 0, 1, 1, 0, 0, 0, 1, 0, 0];
    const events = [
      { start: 2000, end: 4000 },
      { start: 8000, end: 9000 },
    ];
    const result = evaluateFlags(seconds(10), flags, events);

    // truth 0011100011: tp at 2 and 3, fp at 7, fn at 4, 8 and 9.
    expect(result.point).toEqual({
      truePositives: 2,
      falsePositives: 1,
      falseNegatives: 3,
      trueNegatives: 4,
      precision: 2 / 3,
      recall: 2 / 5,
      f1: 0.5,
    });
    // Regions [2-3] (inside the first event) and [7] (a false alarm); the second event is missed.
    expect(result.event).toEqual({
      events: 2,
      found: 1,
      regions: 2,
      trueRegions: 1,
      falseRegions: 1,
      precision: 0.5,
      recall: 0.5,
      f1: 0.5,
    });
    expect(result.delay).toEqual({ meanSamples: 0, maxSamples: 0, meanS: 0, maxS: 0 });
    expect(result.durationS).toBe(10);
    expect(result.falseAlarmsPerDay).toBe(8640);
  });

  test('measures delay from the event start to its first flagged sample', () => {
    const flags = [0, 0, 0, 0, 1, 1, 0, 0, 1, 0];
    const events = [
      { start: 1500, end: 5000 },
      { start: 7000, end: 9000 },
    ];
    const { delay } = evaluateFlags(seconds(10), flags, events);
    // First event: first sample inside is 2, first flag 4 (2 samples, 2.5 s); second: 7 then 8 (1 sample, 1 s).
    expect(delay).toEqual({ meanSamples: 1.5, maxSamples: 2, meanS: 1.75, maxS: 2.5 });
  });

  test('counts one true region that overlaps two events, and finds both', () => {
    const flags = [0, 1, 1, 1, 1, 1, 0];
    const events = [
      { start: 1000, end: 2000 },
      { start: 4000, end: 5000 },
    ];
    const result = evaluateFlags(seconds(7), flags, events);
    expect(result.event).toMatchObject({
      events: 2,
      found: 2,
      regions: 1,
      trueRegions: 1,
      precision: 1,
      recall: 1,
      f1: 1,
    });
    expect(result.point).toMatchObject({
      truePositives: 4,
      falsePositives: 1,
      falseNegatives: 0,
      precision: 0.8,
      recall: 1,
    });
    expect(result.falseAlarmsPerDay).toBe(0);
  });

  test('gives precision 0 and no recall when there are flags but no events', () => {
    const result = evaluateFlags(seconds(4), [0, 1, 1, 0], []);
    expect(result.point).toMatchObject({ precision: 0, recall: null, f1: 0 });
    expect(result.event).toMatchObject({
      events: 0,
      regions: 1,
      falseRegions: 1,
      precision: 0,
      recall: null,
      f1: 0,
    });
    expect(result.delay).toEqual({ meanSamples: null, maxSamples: null, meanS: null, maxS: null });
    expect(result.falseAlarmsPerDay).toBe(86400 / 4);
  });

  test('gives no precision and recall 0 when events are never flagged', () => {
    const result = evaluateFlags(seconds(4), [0, 0, 0, 0], [{ start: 1000, end: 2000 }]);
    expect(result.point).toMatchObject({ precision: null, recall: 0, f1: 0 });
    expect(result.event).toMatchObject({ found: 0, regions: 0, precision: null, recall: 0, f1: 0 });
    expect(result.falseAlarmsPerDay).toBe(0);
  });

  test('leaves every score undefined with neither flags nor events', () => {
    const result = evaluateFlags(seconds(3), [0, 0, 0], []);
    expect(result.point).toMatchObject({ precision: null, recall: null, f1: null });
    expect(result.event).toMatchObject({ precision: null, recall: null, f1: null });
  });

  test('has no false-alarm rate for a single sample, which spans no time', () => {
    expect(evaluateFlags([5000], [1], []).falseAlarmsPerDay).toBeNull();
  });
});

describe('building blocks', () => {
  test('finds maximal runs of flagged samples, including at both ends', () => {
    expect(flaggedRegions([1, 1, 0, 1, 0, 0, 1])).toEqual([
      [0, 1],
      [3, 3],
      [6, 6],
    ]);
    expect(flaggedRegions([])).toEqual([]);
  });

  test('marks samples inside events with both ends inclusive', () => {
    expect([...insideEvents([0, 1000, 2000, 3000], [{ start: 1000, end: 2000 }])]).toEqual([0, 1, 1, 0]);
    expect([...insideEvents([0, 1000], [{ start: 200, end: 800 }])]).toEqual([0, 0]);
  });

  test('takes the harmonic mean, with a missing side as 0', () => {
    expect(f1Score(0.5, 1)).toBeCloseTo(2 / 3);
    expect(f1Score(null, 0)).toBe(0);
    expect(f1Score(0, 0)).toBe(0);
    expect(f1Score(null, null)).toBeNull();
  });
});

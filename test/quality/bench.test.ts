import { describe, expect, test } from 'vitest';
import {
  type Candidate,
  candidateName,
  chooseDefaults,
  DEFAULTS_CANDIDATE,
  mergeRegions,
  REFERENCE_CANDIDATE,
  type Summary,
  scoreRun,
  shipped,
  summarize,
} from '../../src/quality/bench.js';

const t = Float64Array.from({ length: 10 }, (_, i) => i * 1000);

describe('mergeRegions', () => {
  test('fills normal stretches shorter than the gap between flagged regions', () => {
    const flags = Uint8Array.of(1, 0, 0, 1, 0, 0, 0, 0, 1, 1);
    expect(Array.from(mergeRegions(flags, 3))).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 1, 1]);
    expect(mergeRegions(flags, 0)).toBe(flags);
  });
});

describe('scoreRun and summarize', () => {
  test('sums counts over runs before taking ratios', () => {
    const hit = scoreRun(t, Uint8Array.of(0, 0, 1, 1, 0, 0, 0, 0, 0, 1), [{ start: 2000, end: 4000 }], []);
    expect(hit).toMatchObject({ events: 1, found: 1, regions: 2, trueRegions: 1, tp: 2, fp: 1, fn: 1 });
    expect(hit.delaysS).toEqual([0]);
    const miss = scoreRun(t, new Uint8Array(10), [{ start: 5000, end: 6000 }], [{ start: 7000, end: 8000 }]);
    const overall = summarize([hit, miss]);
    // Regions 1 true of 2, events 1 found of 2: P = R = 0.5.
    expect(overall.eventF1).toBeCloseTo(0.5);
    expect(overall.pointF1).toBeCloseTo(4 / (4 + 1 + 3));
    expect(overall.falseAlarmsPerDay).toBeCloseTo(1 / (20_000 / 86_400_000));
    expect(overall.meanDelayS).toBe(0);
  });

  test('counts final flags inside a glitch', () => {
    const run = scoreRun(t, Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 1, 1, 0), [], [{ start: 7000, end: 7000 }]);
    expect(run.glitchFlagged).toBe(1);
  });
});

describe('DEFAULTS_CANDIDATE', () => {
  test('is what train makes without options, a setting detect and run apply', () => {
    expect(candidateName(DEFAULTS_CANDIDATE)).toBe('pre=window-mean thr=train step=W/1 merge=0W');
    expect(shipped(DEFAULTS_CANDIDATE)).toBe(true);
  });
});

describe('chooseDefaults', () => {
  const summary = (eventF1: number, falseAlarmsPerDay: number, glitchFlagged = 0): Summary => ({
    eventF1,
    pointF1: 0.5,
    falseAlarmsPerDay,
    meanDelayS: 0,
    events: 1,
    found: 1,
    falseRegions: 0,
    glitchFlagged,
  });
  const mean: Candidate = { ...REFERENCE_CANDIDATE, preprocess: 'window-mean' };
  const held: Candidate = { ...REFERENCE_CANDIDATE, thresholds: 'held-out' };

  test('takes the best event F1 that makes no more false alarms than the reference', () => {
    const pick = chooseDefaults([
      { candidate: REFERENCE_CANDIDATE, overall: summary(0.2, 1) },
      { candidate: mean, overall: summary(0.9, 2) },
      { candidate: held, overall: summary(0.6, 0.5) },
    ]);
    expect(candidateName(pick)).toBe(candidateName(held));
  });

  test('rejects a candidate whose vote reports a glitch and falls back to the reference', () => {
    const pick = chooseDefaults([
      { candidate: REFERENCE_CANDIDATE, overall: summary(0.2, 1) },
      { candidate: mean, overall: summary(0.9, 0.5, 3) },
    ]);
    expect(candidateName(pick)).toBe(candidateName(REFERENCE_CANDIDATE));
  });

  test('names the POT and first-difference candidates and counts them as changes on ties', () => {
    const pot: Candidate = { ...REFERENCE_CANDIDATE, thresholds: 'pot:1e-3' };
    const diffPot: Candidate = { ...pot, preprocess: 'first-diff' };
    expect(candidateName(diffPot)).toBe('pre=first-diff thr=pot:1e-3 step=W/1 merge=0W');
    const pick = chooseDefaults([
      { candidate: REFERENCE_CANDIDATE, overall: summary(0.2, 1) },
      { candidate: diffPot, overall: summary(0.7, 0.5) },
      { candidate: pot, overall: summary(0.7, 0.5) },
    ]);
    expect(candidateName(pick)).toBe(candidateName(pot));
  });

  describe('shipped', () => {
    test('admits what magwatch train makes and both detection paths run, and nothing that only the bench does', () => {
      expect(shipped(REFERENCE_CANDIDATE)).toBe(true);
      expect(
        shipped({ ...REFERENCE_CANDIDATE, preprocess: 'window-mean', thresholds: 'held-out', overlap: 4 }),
      ).toBe(true);
      expect(shipped({ ...REFERENCE_CANDIDATE, preprocess: 'first-diff' })).toBe(false);
      expect(shipped({ ...REFERENCE_CANDIDATE, thresholds: 'pot:1e-4' })).toBe(false);
      expect(shipped({ ...REFERENCE_CANDIDATE, mergeWindows: 1 })).toBe(false);
    });
  });
});

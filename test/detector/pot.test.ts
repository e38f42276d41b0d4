import { describe, expect, test } from 'vitest';
import {
  fitGpdGrimshaw,
  fitGpdMoments,
  gpdLogLikelihood,
  gpdRiskThreshold,
  potThreshold,
} from '../../src/detector/pot.js';

/** Excesses at the mid-quantiles (i - 0.5) / n of a GPD: a deterministic sample with the right shape. */
function gpdSample(gamma: number, sigma: number, n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => {
    const tail = 1 - (i + 0.5) / n;
    return gamma === 0 ? -sigma * Math.log(tail) : (sigma / gamma) * (tail ** -gamma - 1);
  });
}

describe('fitGpdMoments', () => {
  test('matches the hand-computed fit of 1, 2, 3', () => {
    // mean 2, unbiased variance 1, m^2 / s^2 = 4: gamma = (1 - 4) / 2, sigma = 2 * (1 + 4) / 2.
    const fit = fitGpdMoments([1, 2, 3]);
    expect(fit.gamma).toBeCloseTo(-1.5, 12);
    expect(fit.sigma).toBeCloseTo(5, 12);
  });

  test('refuses fewer than two excesses or equal ones', () => {
    expect(() => fitGpdMoments([1])).toThrow(RangeError);
    expect(() => fitGpdMoments([2, 2, 2])).toThrow(RangeError);
  });
});

describe('gpdRiskThreshold', () => {
  test('matches hand-computed thresholds', () => {
    // r = 0.01 * 1000 / 50 = 0.2; 1 + (2 / 0.5) * (0.2^-0.5 - 1) = 1 + 4 * (sqrt(5) - 1).
    expect(gpdRiskThreshold(1, { gamma: 0.5, sigma: 2 }, 0.01, 1000, 50)).toBeCloseTo(
      1 + 4 * (Math.sqrt(5) - 1),
      12,
    );
    // Exponential tail: 1 - 2 * ln(0.2).
    expect(gpdRiskThreshold(1, { gamma: 0, sigma: 2 }, 0.01, 1000, 50)).toBeCloseTo(
      1 - 2 * Math.log(0.2),
      12,
    );
  });

  test('refuses a risk no rarer than the initial threshold', () => {
    expect(() => gpdRiskThreshold(1, { gamma: 0, sigma: 1 }, 0.1, 100, 5)).toThrow(RangeError);
  });
});

describe('fitGpdGrimshaw', () => {
  test.each([
    [0.2, 1],
    [-0.3, 2],
    [0, 0.5],
  ])('recovers gamma %d and sigma %d from a GPD sample', (gamma, sigma) => {
    const fit = fitGpdGrimshaw(gpdSample(gamma, sigma, 4000));
    expect(fit.gamma).toBeCloseTo(gamma, 1);
    expect(Math.abs(fit.sigma / sigma - 1)).toBeLessThan(0.05);
  });

  test('finds the likelihood maximum that a brute-force grid search finds', () => {
    const excesses = [0.1, 0.3, 0.35, 0.8, 1.1, 1.9, 2.5, 4.2];
    const fit = fitGpdGrimshaw(excesses);
    let best = Number.NEGATIVE_INFINITY;
    let at = { gamma: 0, sigma: 0 };
    for (let g = -0.9; g <= 1.5; g += 0.005) {
      for (let s = 0.05; s <= 5; s += 0.005) {
        const likelihood = gpdLogLikelihood(excesses, { gamma: g, sigma: s });
        if (likelihood > best) {
          best = likelihood;
          at = { gamma: g, sigma: s };
        }
      }
    }
    expect(gpdLogLikelihood(excesses, fit)).toBeGreaterThanOrEqual(best - 1e-9);
    expect(fit.gamma).toBeCloseTo(at.gamma, 1);
    expect(fit.sigma).toBeCloseTo(at.sigma, 1);
  });

  test('beats the moment fit on likelihood', () => {
    const excesses = gpdSample(0.4, 1, 60);
    expect(gpdLogLikelihood(excesses, fitGpdGrimshaw(excesses))).toBeGreaterThanOrEqual(
      gpdLogLikelihood(excesses, fitGpdMoments(excesses)),
    );
  });
});

describe('potThreshold', () => {
  test('extrapolates an exponential tail to its true 1e-5 quantile', () => {
    // Standard exponential scores: P(X > x) = exp(-x), so the 1e-5 risk threshold is ln(10^5), beyond the largest score.
    const scores = gpdSample(0, 1, 20_000);
    for (const method of ['grimshaw', 'moments'] as const) {
      const result = potThreshold(scores, { risk: 1e-5, initialQuantile: 0.98, method });
      expect(result.kind).toBe('pot');
      if (result.kind !== 'pot') continue;
      expect(result.peaks).toBe(400);
      expect(Math.abs(result.threshold / Math.log(1e5) - 1)).toBeLessThan(0.02);
      // Beyond the largest score the data holds: the tail fit is what sets it.
      expect(result.threshold).toBeGreaterThan(scores[scores.length - 1]!);
    }
  });

  test('reports too few peaks instead of fitting a tail to them', () => {
    const result = potThreshold(gpdSample(0, 1, 100), { initialQuantile: 0.95, minPeaks: 10 });
    expect(result).toEqual({ kind: 'too-few', count: 100, peaks: 5, needed: 10 });
  });
});

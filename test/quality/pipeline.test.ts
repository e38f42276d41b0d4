import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { WideTable } from '../../src/ingest/table.js';
import {
  bundleVariant,
  firstDifferences,
  heldOutThresholds,
  potThresholds,
  trainDetector,
} from '../../src/quality/pipeline.js';

const W = 8;
function table(from: number, length: number): WideTable {
  const values = Float64Array.from(
    { length },
    (_, i) => 100 + 20 * Math.sin((from + i) / 30) + Math.sin((from + i) * 1.7),
  );
  return {
    timestamps: Float64Array.from({ length }, (_, i) => (from + i) * 1000),
    channels: ['S1__b_x'],
    values: [values],
  };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'magwatch-pipeline-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('trainDetector', () => {
  test('records window-mean preprocessing in the manifest and derives held-out thresholds', async () => {
    const trained = await trainDetector(table(0, 12 * W), join(dir, 'mean'), {
      window: W,
      epochs: 1,
      workers: 0,
      preprocess: 'window-mean',
      vote: { minChannels: 1 },
    });
    try {
      const manifest = JSON.parse(await readFile(join(dir, 'mean', 'manifest.json'), 'utf8'));
      expect(manifest.preprocess).toBe('window-mean');
      const thresholds = await heldOutThresholds(trained, table(12 * W, 6 * W));
      expect(Number.isFinite(thresholds['S1__b_x'])).toBe(true);
      expect(thresholds['S1__b_x']).not.toBe(trained.bundle.thresholds['S1__b_x']);
      const variant = bundleVariant(trained.bundle, { thresholds, step: W / 4 });
      expect(variant.manifest.step).toBe(W / 4);
      expect(trained.bundle.manifest.step).toBe(W);
    } finally {
      await trained.dispose();
    }
  }, 120_000);

  test('writes no preprocess key for the reference setting', async () => {
    const trained = await trainDetector(table(0, 4 * W), join(dir, 'reference'), {
      window: W,
      epochs: 1,
      workers: 0,
      preprocess: 'none',
    });
    await trained.dispose();
    const manifest = JSON.parse(await readFile(join(dir, 'reference', 'manifest.json'), 'utf8'));
    expect('preprocess' in manifest).toBe(false);
  }, 120_000);
});

describe('potThresholds', () => {
  test('fits a tail where held-out windows are many and falls back to the MAD rule, saying so, where few', async () => {
    const trained = await trainDetector(table(0, 12 * W), join(dir, 'pot'), {
      window: W,
      epochs: 1,
      workers: 0,
      preprocess: 'window-mean',
      vote: { minChannels: 1 },
    });
    try {
      // 400 samples scored at every start: 393 windows, 20 over the 0.95 quantile.
      const many = await potThresholds(trained, table(12 * W, 400), { minPeaks: 10 });
      const [fitted] = many.channels;
      expect(fitted!.rule).toBe('pot');
      if (fitted!.rule === 'pot') {
        expect(fitted!.result.count).toBe(393);
        expect(fitted!.result.peaks).toBe(20);
        expect(many.thresholds['S1__b_x']).toBe(fitted!.result.threshold);
        expect(fitted!.result.threshold).toBeGreaterThan(fitted!.result.initial);
      }
      // 48 samples: 41 windows, 2 over the 0.95 quantile (the 39th of 41): too few for a tail.
      const few = await potThresholds(trained, table(12 * W, 6 * W), { minPeaks: 10 });
      expect(few.channels).toEqual([{ channel: 'S1__b_x', rule: 'mad', windows: 41, peaks: 2 }]);
      const mad = await heldOutThresholds(trained, table(12 * W, 6 * W));
      expect(few.thresholds['S1__b_x']).toBe(mad['S1__b_x']);
    } finally {
      await trained.dispose();
    }
  }, 120_000);
});

describe('firstDifferences', () => {
  test('replaces each channel by its sample-to-sample changes, 0 first', () => {
    const wide: WideTable = {
      timestamps: Float64Array.of(0, 1000, 2000, 3000),
      channels: ['A__b_x', 'A__b_y'],
      values: [Float64Array.of(10, 12, 11, 11), Float64Array.of(-1, 1, 4, 0)],
    };
    const diff = firstDifferences(wide);
    expect(diff.timestamps).toBe(wide.timestamps);
    expect(diff.values.map((c) => Array.from(c))).toEqual([
      [0, 2, -1, 0],
      [0, 2, 3, -4],
    ]);
    expect(Array.from(wide.values[0]!)).toEqual([10, 12, 11, 11]);
  });
});

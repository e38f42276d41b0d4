import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { WideTable } from '../../src/ingest/table.js';
import { bundleVariant, heldOutThresholds, trainDetector } from '../../src/quality/pipeline.js';

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
    });
    await trained.dispose();
    const manifest = JSON.parse(await readFile(join(dir, 'reference', 'manifest.json'), 'utf8'));
    expect('preprocess' in manifest).toBe(false);
  }, 120_000);
});

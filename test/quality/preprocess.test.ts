import { describe, expect, test } from 'vitest';
import { detectTable } from '../../src/detector/detect.js';
import { applyScaler, subtractWindowMeans, windowStarts } from '../../src/detector/reference.js';
import type { WideTable } from '../../src/ingest/table.js';
import { Batcher } from '../../src/stream/batcher.js';
import { dueWindow, FakeEngine, info, testBundle } from '../stream/helpers.js';

const W = 8;
const channel = 'S1_OBS1_1__b_x';
const scaler = { mean: 20_000, scale: 7.3 };
// A daily-variation-like drift plus ripples: the case window-mean preprocessing exists for.
const values = Float64Array.from(
  { length: 5 * W },
  (_, i) => 20_000 + 30 * Math.sin(i / 9) + 0.7 * Math.cos(i * 1.3),
);
const table: WideTable = {
  timestamps: Float64Array.from(values, (_, i) => i * 1000),
  channels: [channel],
  values: [values],
};

function bundle(preprocess?: 'window-mean') {
  const parts = testBundle(
    [{ sensor: 'S1_OBS1_1', component: 'b_x', group: 'OBS1', ...scaler, threshold: 100 }],
    {
      window: W,
      step: W,
      vote: { minChannels: 1 },
    },
  );
  return {
    ...parts,
    dir: 'memory',
    models: [channel],
    manifest: { ...parts.manifest, ...(preprocess ? { preprocess } : {}) },
  };
}

describe('window-mean preprocessing', () => {
  test('offline detection sends the engine exactly the windows the live batcher sends', async () => {
    const offline = new FakeEngine(W);
    await detectTable(table, bundle('window-mean'), offline);

    const live = new FakeEngine(W);
    const starts = windowStarts(values.length, W, W);
    const batcher = new Batcher(live, {
      window: W,
      maxBatch: starts.length,
      maxDelayMs: 1_000,
      preprocess: 'window-mean',
    });
    const scaled = applyScaler(values, scaler);
    for (const start of starts) {
      const due = dueWindow(info(channel), start * 1000, W);
      batcher.add({ ...due, data: scaled.slice(start, start + W) });
    }
    expect(live.batches).toHaveLength(1);
    expect(offline.batches).toHaveLength(1);
    expect(Array.from(offline.batches[0]!.data)).toEqual(Array.from(live.batches[0]!.data));
    // Each window is centred, so the drift of tens of nT is gone from what the model sees.
    for (const start of [0, W, 2 * W]) {
      const window = offline.batches[0]!.data.subarray(start, start + W);
      expect(Math.abs(window.reduce((a, b) => a + b, 0) / W)).toBeLessThan(1e-5);
    }
  });

  test('leaves the reference scoring unchanged when the manifest does not ask for it', async () => {
    const engine = new FakeEngine(W);
    await detectTable(table, bundle(), engine);
    const scaled = applyScaler(values, scaler);
    expect(Array.from(engine.batches[0]!.data)).toEqual(Array.from(scaled.subarray(0, 5 * W)));
  });

  test('subtracts each window its own float64 mean', () => {
    const data = Float32Array.of(1, 2, 3, 6, 10, 10, 10, 10);
    expect(Array.from(subtractWindowMeans(data, 4))).toEqual([-2, -1, 0, 3, 0, 0, 0, 0]);
  });
});

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeRandomBundle } from '../../src/bench/bundles.js';
import { windowBatch } from '../../src/bench/inference.js';
import { selectTfBackend } from '../../src/detector/backend.js';
import type { Bundle } from '../../src/detector/bundle.js';
import { loadLayersModel } from '../../src/detector/bundle.js';
import { type WindowBatch, windowRmse } from '../../src/detector/engine.js';
import { StackedAutoencoder } from '../../src/detector/engines/stacked.js';
import { createTfjsEngine } from '../../src/detector/engines/tfjs.js';
import { extractWeights } from '../../src/detector/model.js';
import { isMagwatchError } from '../../src/errors.js';

const CHANNELS = ['S1_OBS1__b_x', 'S1_OBS1__b_y', 'S2_OBS2__b_z'];
// Unequal counts per model, interleaved, so that grouping, padding and scattering back all matter.
const ORDER = [2, 0, 1, 0, 2, 2, 1, 0, 0, 2];

let root: string;
beforeAll(async () => {
  // wasm before building models: the orthogonal initialiser is slow on the default cpu backend.
  await selectTfBackend('wasm');
  root = await mkdtemp(join(tmpdir(), 'magwatch-tfjs-engine-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function interleaved(window: number, seed: number): WindowBatch {
  const batch = windowBatch(CHANNELS, ORDER.length, window, seed);
  return { channels: ORDER.map((c) => CHANNELS[c]!), data: batch.data };
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

/** Each window through its own model's `predict`, one at a time: no batching to get wrong. */
async function predictOneByOne(bundle: Bundle, batch: WindowBatch): Promise<Float32Array> {
  const window = bundle.manifest.window;
  const out = new Float32Array(batch.data.length);
  for (const [i, channel] of batch.channels.entries()) {
    const model = await loadLayersModel(bundle.dir, bundle.manifest.channels[channel]!.model);
    const x = tf.tensor3d(batch.data.slice(i * window, (i + 1) * window), [1, window, 1]);
    const y = model.predict(x) as tf.Tensor;
    out.set(await y.data(), i * window);
    tf.dispose([x, y]);
    model.dispose();
  }
  return out;
}

describe.each([
  { window: 16, latent: 8 },
  { window: 32, latent: 16 },
])('tfjs engine, W=$window latent=$latent', ({ window, latent }) => {
  const bundles: Record<string, Bundle> = {};
  beforeAll(async () => {
    for (const shared of [true, false]) {
      const dir = join(root, `${shared ? 'shared' : 'per-channel'}-${window}`);
      bundles[shared ? 'shared' : 'per-channel'] = await writeRandomBundle(dir, {
        channels: CHANNELS,
        window,
        latent,
        shared,
        seed: window,
      });
    }
  }, 180_000);

  test.each(['shared', 'per-channel'])(
    "layers mode returns each window's own predict in batch order (%s)",
    async (kind) => {
      const bundle = bundles[kind]!;
      const batch = interleaved(window, 3);
      const engine = await createTfjsEngine(bundle, { mode: 'layers' });
      try {
        expect(engine.mode).toBe('layers');
        expect(
          maxDifference(await engine.reconstruct(batch), await predictOneByOne(bundle, batch)),
        ).toBeLessThan(1e-5);
      } finally {
        await engine.dispose();
      }
    },
  );

  test.each([
    ['shared', 'batched'],
    ['shared', 'per-model'],
    ['shared', 'block-diagonal'],
    ['per-channel', 'batched'],
    ['per-channel', 'per-model'],
    ['per-channel', 'block-diagonal'],
    ['per-channel', 'adaptive'],
  ] as const)(
    'stacked mode equals the layers reference to 1e-4 (%s bundle, %s products)',
    async (kind, products) => {
      const bundle = bundles[kind]!;
      expect(bundle.models.length).toBe(kind === 'shared' ? 1 : 3);
      const batch = interleaved(window, 5);
      const reference = await createTfjsEngine(bundle, { mode: 'layers' });
      const stacked = await createTfjsEngine(bundle, { mode: 'stacked', products });
      try {
        const expected = await reference.reconstruct(batch);
        expect(maxDifference(await stacked.reconstruct(batch), expected)).toBeLessThan(1e-4);
        const scores = await stacked.score(batch);
        expect(maxDifference(scores, windowRmse(batch.data, expected, window))).toBeLessThan(1e-4);
      } finally {
        await reference.dispose();
        await stacked.dispose();
      }
    },
  );

  test('stacked mode gives a window the same reconstruction alone, in a mixed batch, or with only its model', async () => {
    const bundle = bundles['per-channel']!;
    const batch = interleaved(window, 11);
    const engine = await createTfjsEngine(bundle);
    try {
      const mixed = await engine.reconstruct(batch);
      for (const [i, channel] of batch.channels.entries()) {
        const alone = await engine.reconstruct({
          channels: [channel],
          data: batch.data.slice(i * window, (i + 1) * window),
        });
        expect(maxDifference(alone, mixed.slice(i * window, (i + 1) * window))).toBeLessThan(1e-5);
      }
      // Two of the three models: the others are gathered out of the stacked weights.
      const picked = ORDER.flatMap((c, i) => (c === 1 ? [] : [i]));
      const subset = await engine.reconstruct({
        channels: picked.map((i) => batch.channels[i]!),
        data: Float32Array.from(picked.flatMap((i) => [...batch.data.slice(i * window, (i + 1) * window)])),
      });
      const expected = Float32Array.from(
        picked.flatMap((i) => [...mixed.slice(i * window, (i + 1) * window)]),
      );
      expect(maxDifference(subset, expected)).toBeLessThan(1e-5);
    } finally {
      await engine.dispose();
    }
  });
});

describe('tfjs engine', () => {
  let bundle: Bundle;
  beforeAll(async () => {
    bundle = await writeRandomBundle(join(root, 'small'), {
      channels: CHANNELS,
      window: 8,
      latent: 4,
      shared: false,
    });
  }, 180_000);

  test('rejects a channel the bundle has no model for with a coded error', async () => {
    const engine = await createTfjsEngine(bundle);
    try {
      const error = await engine
        .score({ channels: ['S9_OBS9__b_x'], data: new Float32Array(8) })
        .catch((e: unknown) => e);
      expect(isMagwatchError(error) && error.code).toBe('MW_ENGINE_UNKNOWN_CHANNEL');
      expect((error as Error).message).toContain("'S9_OBS9__b_x'");
    } finally {
      await engine.dispose();
    }
  });

  test('returns empty results for an empty batch', async () => {
    const engine = await createTfjsEngine(bundle);
    try {
      expect(await engine.score({ channels: [], data: new Float32Array(0) })).toEqual(new Float32Array(0));
    } finally {
      await engine.dispose();
    }
  });

  test('frees every tensor it made once disposed', async () => {
    const before = tf.memory().numTensors;
    const engine = await createTfjsEngine(bundle);
    await engine.score(interleaved(8, 2));
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    await engine.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  test('runs the stacked pass on the cpu backend too', async () => {
    const batch = interleaved(8, 4);
    const wasm = await createTfjsEngine(bundle);
    const cpu = await createTfjsEngine(bundle, { backend: 'cpu' });
    try {
      expect(cpu.backend).toBe('cpu');
      expect(cpu.tried).toEqual([{ backend: 'cpu', module: null }]);
      // Each engine switches TensorFlow.js back to its own backend before it computes.
      const onCpu = await cpu.reconstruct(batch);
      const onWasm = await wasm.reconstruct(batch);
      expect(tf.getBackend()).toBe('wasm');
      expect(maxDifference(onCpu, onWasm)).toBeLessThan(1e-4);
    } finally {
      await wasm.dispose();
      await cpu.dispose();
    }
  });

  test('stacked autoencoder rejects models of different shapes', async () => {
    const small = await loadLayersModel(bundle.dir, bundle.models[0]!);
    const other = await writeRandomBundle(join(root, 'other'), {
      channels: ['S1__b_x'],
      window: 8,
      latent: 6,
      shared: true,
    });
    const large = await loadLayersModel(other.dir, 'shared');
    try {
      expect(() => new StackedAutoencoder([extractWeights(small), extractWeights(large)])).toThrow(
        /disagree in shape/,
      );
    } finally {
      small.dispose();
      large.dispose();
    }
  });
});

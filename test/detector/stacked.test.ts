import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeRandomBundle } from '../../src/bench/bundles.js';
import { windowBatch } from '../../src/bench/inference.js';
import { selectTfBackend } from '../../src/detector/backend.js';
import type { Bundle } from '../../src/detector/bundle.js';
import type { WindowBatch } from '../../src/detector/engine.js';
import { BLOCK_MODELS, mergedPassPays, type ProductStrategy } from '../../src/detector/engines/stacked.js';
import { createTfjsEngine, type TfjsEngine } from '../../src/detector/engines/tfjs.js';

// Five per-channel models: with groups of BLOCK_MODELS (3) there is a full group and a partial one.
const CHANNELS = ['S1_OBS1__b_x', 'S1_OBS1__b_y', 'S1_OBS1__b_z', 'S2_OBS2__b_x', 'S2_OBS2__b_y'];

let root: string;
beforeAll(async () => {
  await selectTfBackend('wasm');
  root = await mkdtemp(join(tmpdir(), 'magwatch-stacked-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Windows of the channels at `order`, one window each, in that order. */
function batchOf(order: readonly number[], window: number, seed: number): WindowBatch {
  const { data } = windowBatch(CHANNELS, order.length, window, seed);
  return { channels: order.map((c) => CHANNELS[c]!), data };
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

test('the bundle below spans more than one block-diagonal group', () => {
  expect(BLOCK_MODELS).toBeLessThan(CHANNELS.length);
});

test('the cost rule merges few windows per model and runs many per model', () => {
  expect(mergedPassPays(3, 3, 1, 3)).toBe(true);
  expect(mergedPassPays(3, 2, 1, 2)).toBe(true);
  expect(mergedPassPays(3, 3, 4, 12)).toBe(false);
  expect(mergedPassPays(3, 3, 40, 120)).toBe(false);
  // One active model gains nothing from its group's zero blocks.
  expect(mergedPassPays(3, 1, 1, 1)).toBe(false);
});

// Batches by the models of their windows: unequal counts, interleaved; models absent (1 and 3, then a
// whole group); one model alone.
const MIXES: Record<string, number[]> = {
  'unequal counts, models 1 and 3 absent': [0, 4, 2, 0, 4, 0],
  'every model, unequal counts': [4, 3, 1, 0, 2, 4, 0, 0, 3, 1, 4],
  'only the second group': [3, 4, 4, 3, 4],
  'one model alone': [2, 2, 2],
  'one window': [1],
};

describe.each([
  { window: 16, latent: 8 },
  { window: 24, latent: 4 },
])('block-diagonal products, W=$window latent=$latent', ({ window, latent }) => {
  let bundle: Bundle;
  let shared: Bundle;
  let reference: TfjsEngine;
  let sharedReference: TfjsEngine;
  beforeAll(async () => {
    bundle = await writeRandomBundle(join(root, `per-channel-${window}`), {
      channels: CHANNELS,
      window,
      latent,
      shared: false,
      seed: latent,
    });
    shared = await writeRandomBundle(join(root, `shared-${window}`), {
      channels: CHANNELS,
      window,
      latent,
      shared: true,
      seed: latent,
    });
    reference = await createTfjsEngine(bundle, { backend: 'wasm', mode: 'layers' });
    sharedReference = await createTfjsEngine(shared, { backend: 'wasm', mode: 'layers' });
  }, 180_000);
  afterAll(async () => {
    await reference.dispose();
    await sharedReference.dispose();
  });

  test.each(['block-diagonal', 'adaptive'] as const)(
    '%s equals the layers reference to 1e-4 on every mix of models',
    async (products: ProductStrategy) => {
      const engine = await createTfjsEngine(bundle, { backend: 'wasm', products });
      const sharedEngine = await createTfjsEngine(shared, { backend: 'wasm', products });
      try {
        for (const [name, order] of Object.entries(MIXES)) {
          const batch = batchOf(order, window, order.length);
          const expected = await reference.reconstruct(batch);
          expect(maxDifference(await engine.reconstruct(batch), expected), name).toBeLessThan(1e-4);
          const sharedExpected = await sharedReference.reconstruct(batch);
          expect(maxDifference(await sharedEngine.reconstruct(batch), sharedExpected), name).toBeLessThan(
            1e-4,
          );
        }
      } finally {
        await engine.dispose();
        await sharedEngine.dispose();
      }
    },
  );

  test('adaptive runs many windows per model as per-model passes, still equal to the reference', async () => {
    // 25 windows per model: past the crossover, so the per-model branch runs (checked by the rule).
    const order = Array.from({ length: 25 * CHANNELS.length }, (_, i) => (i * 2) % CHANNELS.length);
    expect(mergedPassPays(BLOCK_MODELS, BLOCK_MODELS, 25, 25 * BLOCK_MODELS)).toBe(false);
    const batch = batchOf(order, window, 9);
    const engine = await createTfjsEngine(bundle, { backend: 'wasm', products: 'adaptive' });
    const merged = await createTfjsEngine(bundle, { backend: 'wasm', products: 'block-diagonal' });
    try {
      const expected = await reference.reconstruct(batch);
      expect(maxDifference(await engine.reconstruct(batch), expected)).toBeLessThan(1e-4);
      expect(maxDifference(await merged.reconstruct(batch), expected)).toBeLessThan(1e-4);
    } finally {
      await engine.dispose();
      await merged.dispose();
    }
  });
});

test.each(['block-diagonal', 'adaptive'] as const)(
  '%s frees every tensor it made once disposed, and every kernel result after each call',
  async (products) => {
    const bundle = await writeRandomBundle(join(root, `free-${products}`), {
      channels: CHANNELS,
      window: 8,
      latent: 4,
      shared: false,
    });
    const before = tf.memory().numTensors;
    // Kernel results bypass the engine's count (see kernels.ts); the backend's own count sees them.
    const buffers = () => tf.backend().numDataIds();
    const engine = await createTfjsEngine(bundle, { backend: 'wasm', products });
    await engine.score(batchOf([0, 4, 2, 0], 8, 2));
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    const afterFirst = buffers();
    await engine.score(batchOf([1, 1, 3, 0, 4, 4, 4], 8, 3));
    expect(buffers()).toBe(afterFirst);
    await engine.dispose();
    expect(tf.memory().numTensors).toBe(before);
  },
  60_000,
);

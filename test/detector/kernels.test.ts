import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeRandomBundle } from '../../src/bench/bundles.js';
import { windowBatch } from '../../src/bench/inference.js';
import { selectTfBackend } from '../../src/detector/backend.js';
import type { Engine, WindowBatch } from '../../src/detector/engine.js';
import { Kernels } from '../../src/detector/engines/kernels.js';
import { createTfjsEngine } from '../../src/detector/engines/tfjs.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'magwatch-kernels-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe.each(['wasm', 'cpu'])('kernels called directly on %s', (backend) => {
  beforeAll(async () => {
    expect((await selectTfBackend(backend)).backend).toBe(backend);
  });

  // 96 values take the Tanh kernel; 96 x 60 take the sigmoid identity on wasm.
  test.each([96, 96 * 60])('tanh of %i values equals tf.tanh to 1e-6', async (size) => {
    const kernels = new Kernels();
    const x = tf.linspace(-6, 6, size).reshape([1, size / 96, 96]);
    const expected = tf.tanh(x);
    const y = kernels.tanh(x);
    try {
      const got = await kernels.read(y);
      const want = (await expected.data()) as Float32Array;
      let max = 0;
      for (let i = 0; i < size; i++) max = Math.max(max, Math.abs(got[i]! - want[i]!));
      expect(max).toBeLessThan(1e-6);
    } finally {
      kernels.free(y);
      tf.dispose([x, expected]);
      kernels.dispose();
    }
  });

  test('the stacked engine equals the layers reference to 1e-4', async () => {
    expect(await differenceFromReference(backend)).toBeLessThan(1e-4);
  }, 60_000);
});

test('on a backend outside the direct list the calls go through the engine, which tracks and frees them', async () => {
  // The cpu backend's factory and kernels under another name: a stand-in for the native backend, whose
  // kernels build tracked tensors and so must not be called directly.
  const name = 'cpu-through-engine';
  tf.registerBackend(name, tf.findBackendFactory('cpu')!);
  for (const config of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...config, backendName: name });
  try {
    expect((await selectTfBackend(name)).backend).toBe(name);
    const difference = await differenceFromReference(name, async (stacked, batch) => {
      const tensors = tf.memory().numTensors;
      await stacked.reconstruct(batch);
      expect(tf.memory().numTensors).toBe(tensors);
    });
    expect(difference).toBeLessThan(1e-4);
  } finally {
    tf.removeBackend(name);
  }
}, 60_000);

/**
 * The largest difference between the stacked engine and the layers reference on `backend`, over a small
 * per-channel bundle; `meanwhile` runs with the stacked engine open, after its first call.
 */
async function differenceFromReference(
  backend: string,
  meanwhile?: (stacked: Engine, batch: WindowBatch) => Promise<void>,
): Promise<number> {
  const channels = ['S1_OBS1__b_x', 'S1_OBS1__b_y', 'S2_OBS2__b_z'];
  const bundle = await writeRandomBundle(join(root, backend), {
    channels,
    window: 12,
    latent: 4,
    shared: false,
  });
  const batch = windowBatch(channels, 7, 12, 5);
  const reference = await createTfjsEngine(bundle, { backend, mode: 'layers' });
  const stacked = await createTfjsEngine(bundle, { backend, mode: 'stacked' });
  try {
    const expected = await reference.reconstruct(batch);
    const got = await stacked.reconstruct(batch);
    await meanwhile?.(stacked, batch);
    let max = 0;
    for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i]! - expected[i]!));
    return max;
  } finally {
    await reference.dispose();
    await stacked.dispose();
  }
}

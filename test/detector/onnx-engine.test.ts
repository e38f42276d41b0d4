import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Bundle,
  commitStaging,
  loadBundle,
  type Manifest,
  onnxPath,
  saveLayersModel,
  writeBundleJson,
} from '../../src/detector/bundle.js';
import { windowRmse } from '../../src/detector/engine.js';
import { createOnnxEngine } from '../../src/detector/engines/onnx.js';
import { buildAutoencoder, extractWeights } from '../../src/detector/model.js';
import { exportBundleOnnx, exportOnnx } from '../../src/detector/onnx/export.js';
import { createRandom } from '../../src/sim/random.js';

const WINDOW = 16;
const LATENT = 8;
const CHANNELS = ['S1_OBS1_1__b_x', 'S1_OBS1_1__b_y', 'S2_OBS2_1__b_z'];

/** Deterministic uniform values in [-range, range), so a failure reproduces. */
function seededUniform(seed: number, range: number): () => number {
  const random = createRandom(seed, 'test-weights');
  return () => random.uniform(-range, range);
}

function randomModel(seed: number): tf.Sequential {
  const model = buildAutoencoder({ window: WINDOW, latent: LATENT }, seed);
  const next = seededUniform(seed, 0.4);
  model.setWeights(
    model.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, next), w.shape)),
  );
  return model;
}

/** Writes a bundle without training: the given models under their names, channels mapped by `modelOf`. */
async function writeBundle(
  dir: string,
  models: Record<string, tf.LayersModel>,
  modelOf: (channel: string) => string,
): Promise<Bundle> {
  const staging = `${dir}.staging`;
  const channels: Manifest['channels'] = {};
  for (const channel of CHANNELS) {
    const [sensor, component] = channel.split('__') as [string, string];
    channels[channel] = { model: modelOf(channel), sensor, component, group: sensor.split('_')[1]! };
  }
  await writeBundleJson(staging, {
    manifest: {
      format: 'magwatch-bundle',
      version: 1,
      window: WINDOW,
      step: WINDOW,
      latent: LATENT,
      k: 6,
      vote: { minChannels: 2 },
      channels,
    },
    scalers: Object.fromEntries(CHANNELS.map((c) => [c, { mean: 0, scale: 1 }])),
    thresholds: Object.fromEntries(CHANNELS.map((c) => [c, 1])),
    training: {},
  });
  for (const [name, model] of Object.entries(models)) await saveLayersModel(staging, name, model);
  await commitStaging(staging, dir);
  return loadBundle(dir);
}

function windowsOf(count: number, seed: number): Float32Array {
  const noise = seededUniform(seed, 0.2);
  return Float32Array.from({ length: count * WINDOW }, (_, i) => Math.sin(i / 3) + noise());
}

function predict(model: tf.LayersModel, data: Float32Array): Float32Array {
  return tf.tidy(
    () =>
      (
        model.predict(tf.tensor3d(data, [data.length / WINDOW, WINDOW, 1])) as tf.Tensor
      ).dataSync() as Float32Array,
  );
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

let root: string;
const models: Record<string, tf.Sequential> = {};

beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'magwatch-onnx-'));
  CHANNELS.forEach((channel, i) => {
    models[channel] = randomModel(11 + i);
  });
});

afterAll(async () => {
  for (const model of Object.values(models)) model.dispose();
  await rm(root, { recursive: true, force: true });
});

describe('exportBundleOnnx', () => {
  it('writes models/<name>.onnx for every model of the bundle', async () => {
    const dir = join(root, 'per-channel-export');
    const bundle = await writeBundle(dir, models, (channel) => channel);
    const written = await exportBundleOnnx(dir);
    expect(written).toEqual(bundle.models.map((model) => onnxPath(bundle.dir, model)));
    expect(bundle.models).toEqual(CHANNELS);
  });
});

describe('createOnnxEngine', () => {
  it('scores a shared-model bundle like TensorFlow.js, on the CPU when asked for it', async () => {
    const dir = join(root, 'shared');
    const shared = models[CHANNELS[0]!]!;
    const bundle = await writeBundle(dir, { shared }, () => 'shared');
    await exportBundleOnnx(dir);
    const engine = await createOnnxEngine(bundle, { provider: 'cpu', threads: 1 });
    expect(engine.name).toBe('onnx');
    expect(engine.backend).toBe('cpu');
    expect(engine.fallback).toBeUndefined();
    // A view into a larger buffer, as a batcher may hand over, must be read from its own offset.
    const data = windowsOf(6, 5).subarray(2 * WINDOW);
    const batch = { channels: [CHANNELS[2]!, CHANNELS[0]!, CHANNELS[1]!, CHANNELS[0]!], data };
    const expected = predict(shared, batch.data.slice());
    expect(maxAbsDiff(await engine.reconstruct(batch), expected)).toBeLessThanOrEqual(1e-4);
    expect(
      maxAbsDiff(await engine.score(batch), windowRmse(batch.data, expected, WINDOW)),
    ).toBeLessThanOrEqual(1e-5);
    await engine.dispose();
  });

  it('keeps batch order when channels of different models interleave', async () => {
    const dir = join(root, 'per-channel');
    const bundle = await writeBundle(dir, models, (channel) => channel);
    await exportBundleOnnx(dir);
    const engine = await createOnnxEngine(bundle, { provider: 'cpu' });
    const channels = [0, 2, 1, 0, 0, 2, 1, 2, 0].map((i) => CHANNELS[i]!);
    const data = windowsOf(channels.length, 9);
    const reconstruction = await engine.reconstruct({ channels, data });
    const scores = await engine.score({ channels, data });
    channels.forEach((channel, w) => {
      const window = data.subarray(w * WINDOW, (w + 1) * WINDOW);
      const own = predict(models[channel]!, window);
      const got = reconstruction.subarray(w * WINDOW, (w + 1) * WINDOW);
      expect(maxAbsDiff(got, own), `window ${w} (${channel})`).toBeLessThanOrEqual(1e-4);
      expect(scores[w]).toBeCloseTo(windowRmse(window, own, WINDOW)[0]!, 5);
    });
    // The models differ enough that a window scored by another channel's model would not pass.
    const window0 = data.subarray(0, WINDOW);
    expect(
      maxAbsDiff(predict(models[CHANNELS[1]!]!, window0), predict(models[CHANNELS[0]!]!, window0)),
    ).toBeGreaterThan(1e-2);
    expect(await engine.reconstruct({ channels: [], data: new Float32Array(0) })).toHaveLength(0);
    await engine.dispose();
  });

  it('reports the backend that runs and why CUDA was not used under provider auto', async () => {
    const bundle = await loadBundle(join(root, 'shared'));
    const engine = await createOnnxEngine(bundle, { provider: 'auto', threads: 1 });
    expect(['cpu', 'cuda']).toContain(engine.backend);
    if (engine.backend === 'cpu') expect(engine.fallback).toMatch(/CUDA/);
    else expect(engine.fallback).toBeUndefined();
    await engine.dispose();
  });

  it('rejects a channel the bundle does not know', async () => {
    const bundle = await loadBundle(join(root, 'shared'));
    const engine = await createOnnxEngine(bundle, { provider: 'cpu', threads: 1 });
    await expect(engine.score({ channels: ['S9_OBS9_1__b_x'], data: windowsOf(1, 1) })).rejects.toMatchObject(
      {
        code: 'MW_ENGINE_UNKNOWN_CHANNEL',
        message: expect.stringContaining("'S9_OBS9_1__b_x'"),
      },
    );
    await engine.dispose();
  });

  it('names the missing ONNX file and the upgrade command for a bundle without ONNX copies', async () => {
    const dir = join(root, 'no-onnx');
    const bundle = await writeBundle(dir, { shared: models[CHANNELS[0]!]! }, () => 'shared');
    const error = await createOnnxEngine(bundle, { provider: 'cpu' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'MagwatchError', code: 'MW_BUNDLE_NO_ONNX' });
    expect((error as Error).message).toContain(onnxPath(bundle.dir, 'shared'));
    expect((error as Error).message).toContain(`magwatch upgrade --model ${bundle.dir}`);
  });

  it('rejects an ONNX file exported for another window length', async () => {
    const dir = join(root, 'stale');
    const bundle = await writeBundle(dir, { shared: models[CHANNELS[0]!]! }, () => 'shared');
    const other = buildAutoencoder({ window: 2 * WINDOW, latent: LATENT });
    await writeFile(onnxPath(bundle.dir, 'shared'), exportOnnx(extractWeights(other)));
    other.dispose();
    await expect(createOnnxEngine(bundle, { provider: 'cpu' })).rejects.toMatchObject({
      code: 'MW_BUNDLE_MISMATCH',
    });
  });

  it('rejects a file ONNX Runtime cannot read', async () => {
    const dir = join(root, 'corrupt');
    const bundle = await writeBundle(dir, { shared: models[CHANNELS[0]!]! }, () => 'shared');
    await writeFile(onnxPath(bundle.dir, 'shared'), 'not a model');
    await expect(createOnnxEngine(bundle, { provider: 'cpu' })).rejects.toMatchObject({
      code: 'MW_BUNDLE_BAD_ONNX',
    });
  });
});

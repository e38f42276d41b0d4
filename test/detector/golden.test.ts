import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildAutoencoder, extractWeights } from '../../src/detector/model.js';
import { exportOnnx, ONNX_INPUT, ONNX_OUTPUT } from '../../src/detector/onnx/export.js';

// Golden reconstructions from scripts/golden/lstm_ae.py, an independent float64 NumPy forward pass.
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'golden');
const TOLERANCE = 1e-5;

interface GoldenInputs {
  window: number;
  latent: number;
  weightSeed: number;
  weightScale: number;
  windows: Record<string, number[]>;
}
interface GoldenExpected {
  weightCheck: { count: number; sum: number; first: number[]; last: number[] };
  reconstruction: Record<string, number[]>;
}

/** xorshift32 exactly as in scripts/golden/lstm_ae.py: integers in [low, high]. */
function xorshiftIntegers(seed: number): (low: number, high: number) => number {
  let state = seed >>> 0 || 1;
  return (low, high) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return low + (state % (high - low + 1));
  };
}

/** Draws the golden weights in the order of `model.getWeights()`, which is the script's Keras order. */
function goldenWeights(
  model: tf.LayersModel,
  inputs: GoldenInputs,
): { tensors: tf.Tensor[]; drawn: number[] } {
  const next = xorshiftIntegers(inputs.weightSeed);
  const drawn: number[] = [];
  const tensors = model.getWeights().map((weight) => {
    const values = new Float32Array(weight.size);
    for (let i = 0; i < values.length; i++) {
      const k = next(-512, 512);
      drawn.push(k);
      values[i] = k / inputs.weightScale;
    }
    return tf.tensor(values, weight.shape);
  });
  return { tensors, drawn };
}

const wasmReady = await tf.setBackend('wasm').catch(() => false);
const backends = wasmReady ? ['cpu', 'wasm'] : ['cpu'];

for (const [window, latent] of [
  [16, 8],
  [64, 32],
] as const) {
  const stem = `lstm_ae_w${window}_l${latent}`;
  const inputs = JSON.parse(readFileSync(join(FIXTURES, `${stem}.inputs.json`), 'utf8')) as GoldenInputs;
  const expected = JSON.parse(
    readFileSync(join(FIXTURES, `${stem}.expected.json`), 'utf8'),
  ) as GoldenExpected;
  const names = Object.keys(inputs.windows);

  const goldenBatch = () => Float32Array.from(names.flatMap((name) => inputs.windows[name]!));
  const expectGolden = (values: ArrayLike<number>) => {
    names.forEach((name, w) => {
      const golden = expected.reconstruction[name]!;
      expect(golden).toHaveLength(window);
      let worst = 0;
      for (let i = 0; i < window; i++)
        worst = Math.max(worst, Math.abs(values[w * window + i]! - golden[i]!));
      expect(worst, `window '${name}'`).toBeLessThanOrEqual(TOLERANCE);
    });
  };

  describe(`golden autoencoder, window ${window}, latent ${latent}`, () => {
    it('draws the same weights as the NumPy script', async () => {
      await tf.setBackend('cpu');
      const model = buildAutoencoder({ window, latent });
      const { tensors, drawn } = goldenWeights(model, inputs);
      const { count, sum, first, last } = expected.weightCheck;
      expect(drawn.length).toBe(count);
      expect(drawn.reduce((a, b) => a + b, 0)).toBe(sum);
      expect(drawn.slice(0, 8)).toEqual(first);
      expect(drawn.slice(-8)).toEqual(last);
      tf.dispose(tensors);
      model.dispose();
    });

    for (const backend of backends) {
      it(`reconstructs every golden window within ${TOLERANCE} on the ${backend} backend`, async () => {
        await tf.setBackend(backend);
        const model = buildAutoencoder({ window, latent });
        const { tensors } = goldenWeights(model, inputs);
        model.setWeights(tensors);
        const batch = tf.tensor3d(goldenBatch(), [names.length, window, 1]);
        const output = model.predict(batch) as tf.Tensor;
        expectGolden(await output.data());
        tf.dispose([...tensors, batch, output]);
        model.dispose();
      });
    }

    it(`reconstructs every golden window within ${TOLERANCE} through the ONNX export`, async () => {
      await tf.setBackend('cpu');
      const model = buildAutoencoder({ window, latent });
      const { tensors } = goldenWeights(model, inputs);
      model.setWeights(tensors);
      const session = await ort.InferenceSession.create(exportOnnx(extractWeights(model)));
      const result = await session.run({
        [ONNX_INPUT]: new ort.Tensor('float32', goldenBatch(), [names.length, window, 1]),
      });
      expectGolden(result[ONNX_OUTPUT]!.data as Float32Array);
      await session.release();
      tf.dispose(tensors);
      model.dispose();
    });
  });
}

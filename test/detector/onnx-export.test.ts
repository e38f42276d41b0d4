import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildAutoencoder, extractWeights } from '../../src/detector/model.js';
import { exportOnnx, lstmToOnnx, ONNX_INPUT, ONNX_OUTPUT } from '../../src/detector/onnx/export.js';
import { createRandom } from '../../src/sim/random.js';

/** Deterministic uniform values in [-range, range), so a failure reproduces. */
function seededUniform(seed: number, range: number): () => number {
  const random = createRandom(seed, 'test-weights');
  return () => random.uniform(-range, range);
}

/** The reference model with every weight, biases included, drawn at random so that no term is zero. */
function randomModel(window: number, latent: number, seed: number): tf.Sequential {
  const model = buildAutoencoder({ window, latent }, seed);
  const next = seededUniform(seed, 0.4);
  model.setWeights(
    model.getWeights().map((w) => tf.tensor(Float32Array.from({ length: w.size }, next), w.shape)),
  );
  return model;
}

function testWindows(count: number, window: number, seed: number): Float32Array {
  const noise = seededUniform(seed, 0.3);
  const data = new Float32Array(count * window);
  for (let w = 0; w < count; w++) {
    for (let i = 0; i < window; i++) {
      data[w * window + i] = 1.5 * Math.sin((2 * Math.PI * (i + 3 * w)) / window) + noise() + (w % 3) - 1;
    }
  }
  return data;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('exportOnnx', () => {
  for (const [window, latent] of [
    [16, 8],
    [32, 16],
    [64, 32],
  ] as const) {
    it(`reconstructs like TensorFlow.js for window ${window}, latent ${latent}`, async () => {
      const model = randomModel(window, latent, window + latent);
      const batch = 5;
      const data = testWindows(batch, window, latent);
      const expected = tf.tidy(() =>
        (model.predict(tf.tensor3d(data, [batch, window, 1])) as tf.Tensor).dataSync(),
      );
      const session = await ort.InferenceSession.create(exportOnnx(extractWeights(model)));
      const result = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', data, [batch, window, 1]) });
      const output = result[ONNX_OUTPUT]!;
      expect(output.dims).toEqual([batch, window, 1]);
      expect(maxAbsDiff(output.data as Float32Array, expected as Float32Array)).toBeLessThanOrEqual(1e-4);
      await session.release();
      model.dispose();
    });
  }

  it('declares a dynamic batch dimension named batch', async () => {
    const model = randomModel(16, 8, 3);
    const session = await ort.InferenceSession.create(exportOnnx(extractWeights(model)));
    const input = session.inputMetadata[0]!;
    const output = session.outputMetadata[0]!;
    expect(input.isTensor && input.shape).toEqual(['batch', 16, 1]);
    expect(output.isTensor && output.shape).toEqual(['batch', 16, 1]);
    for (const batch of [1, 7]) {
      const data = testWindows(batch, 16, batch);
      const result = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', data, [batch, 16, 1]) });
      expect(result[ONNX_OUTPUT]!.dims).toEqual([batch, 16, 1]);
    }
    await session.release();
    model.dispose();
  });

  it('refuses weights whose layers do not chain like the reference autoencoder', () => {
    const model = randomModel(16, 8, 4);
    const weights = extractWeights(model);
    const [first, second, third, fourth] = weights.lstm;
    const broken = { ...weights, lstm: [first, third, second, fourth] as typeof weights.lstm };
    expect(() => exportOnnx(broken)).toThrow(/reference autoencoder/);
    model.dispose();
  });
});

describe('lstmToOnnx', () => {
  it('reorders Keras gates i, f, c, o into ONNX gates i, o, f, c and transposes the kernels', () => {
    // One input, one unit: Keras kernel [1, 4] and recurrent kernel [1, 4] are just the four gate weights.
    const converted = lstmToOnnx({
      units: 1,
      inputSize: 1,
      kernel: Float32Array.of(1, 2, 3, 4),
      recurrentKernel: Float32Array.of(10, 20, 30, 40),
      bias: Float32Array.of(0.1, 0.2, 0.3, 0.4),
    });
    expect(Array.from(converted.W)).toEqual([1, 4, 2, 3]);
    expect(Array.from(converted.R)).toEqual([10, 40, 20, 30]);
    expect(Array.from(converted.B)).toEqual(Array.from(Float32Array.of(0.1, 0.4, 0.2, 0.3, 0, 0, 0, 0)));
  });

  it('puts input i of unit u at W[u][i] and hidden h at R[u][h]', () => {
    // Two inputs, two units; Keras kernel [in=2, 4u=8]: value = 100*input + gate*10 + unit.
    const kernel = new Float32Array(16);
    const recurrentKernel = new Float32Array(16);
    for (let row = 0; row < 2; row++) {
      for (let gate = 0; gate < 4; gate++) {
        for (let unit = 0; unit < 2; unit++) {
          kernel[row * 8 + gate * 2 + unit] = 100 * row + 10 * gate + unit;
          recurrentKernel[row * 8 + gate * 2 + unit] = -(100 * row + 10 * gate + unit);
        }
      }
    }
    const { W, R } = lstmToOnnx({
      units: 2,
      inputSize: 2,
      kernel,
      recurrentKernel,
      bias: new Float32Array(8),
    });
    // ONNX gate 1 is Keras gate 3 (o); unit 1, input 1 → W[(1*2 + 1)*2 + 1].
    expect(W[(1 * 2 + 1) * 2 + 1]).toBe(100 + 30 + 1);
    expect(R[(2 * 2 + 0) * 2 + 1]).toBe(-(100 + 10 + 0));
  });
});

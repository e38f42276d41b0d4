import * as tf from '@tensorflow/tfjs';
import { describe, expect, test } from 'vitest';
import { AutoencoderTrainer, gemmNT } from '../../src/detector/backprop.js';
import { fitAutoencoder, resolveTrainer } from '../../src/detector/fit.js';
import { buildAutoencoder, extractWeights } from '../../src/detector/model.js';

function maxDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

function windowsOf(count: number, window: number): Float32Array {
  return Float32Array.from({ length: count * window }, (_, i) => Math.sin(i / 5) + 0.3 * Math.cos(i / 1.7));
}

describe('gemmNT', () => {
  test('adds a times b transposed for every shape, odd ones included', () => {
    for (const [M, N, K] of [
      [1, 1, 1],
      [3, 5, 7],
      [4, 8, 2],
      [5, 9, 1],
      [2, 4, 3],
    ] as const) {
      const a = Float32Array.from({ length: M * K }, (_, i) => ((i * 37) % 11) - 5);
      const b = Float32Array.from({ length: N * K }, (_, i) => ((i * 13) % 7) - 3);
      const c = Float32Array.from({ length: M * N }, (_, i) => i);
      const expected = Float32Array.from(c);
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++)
          for (let k = 0; k < K; k++)
            expected[i * N + j] = expected[i * N + j]! + a[i * K + k]! * b[j * K + k]!;
      gemmNT(M, N, K, a, 0, b, 0, c, 0);
      expect(Array.from(c)).toEqual(Array.from(expected));
    }
  });
});

describe('the built-in training pass', () => {
  const shape = { window: 8, latent: 4 };

  test('computes the loss and the gradients TensorFlow.js computes', () => {
    const model = buildAutoencoder(shape, 3);
    const windows = windowsOf(5, shape.window);
    const trainer = new AutoencoderTrainer(extractWeights(model), 8);
    const ours = trainer.gradients(windows, [0, 1, 2, 3, 4]);

    const x = tf.tensor3d(windows, [5, shape.window, 1]);
    const { value, grads } = tf.variableGrads(
      () => tf.losses.meanSquaredError(x, model.apply(x) as tf.Tensor) as tf.Scalar,
      model.trainableWeights.map((weight) => (weight as unknown as { val: tf.Variable }).val),
    );
    expect(Math.abs(ours.loss - value.dataSync()[0]!)).toBeLessThan(1e-6);
    const theirs = model.trainableWeights.map((weight) => grads[weight.originalName ?? weight.name]!);
    expect(ours.gradients).toHaveLength(theirs.length);
    for (const [i, gradient] of theirs.entries()) {
      const expected = gradient.dataSync();
      const scale = Math.max(...Array.from(expected, Math.abs), 1e-6);
      expect(maxDifference(ours.gradients[i]!, expected) / scale, `weight ${i}`).toBeLessThan(1e-4);
    }
    model.dispose();
  });
});

describe('training with the built-in pass', () => {
  const shape = { window: 8, latent: 4 };
  const fit = { epochs: 3, batchSize: 16, validationSplit: 0.1, seed: 5 } as const;
  const windows = windowsOf(40, shape.window);

  test('trains the weights and loss curves model.fit trains, from the same seed', async () => {
    const ours = await fitAutoencoder(windows, shape, { ...fit, trainer: 'builtin' });
    const theirs = await fitAutoencoder(windows, shape, { ...fit, trainer: 'tfjs' });
    expect(ours.trainedWith).toBe('builtin');
    expect(theirs.trainedWith).not.toBe('builtin');
    // Three epochs of Adam: float32 sums in another order drift a little, not more.
    const a = extractWeights(ours.model);
    const b = extractWeights(theirs.model);
    for (let i = 0; i < 4; i++) {
      expect(maxDifference(a.lstm[i]!.kernel, b.lstm[i]!.kernel)).toBeLessThan(1e-4);
      expect(maxDifference(a.lstm[i]!.recurrentKernel, b.lstm[i]!.recurrentKernel)).toBeLessThan(1e-4);
      expect(maxDifference(a.lstm[i]!.bias, b.lstm[i]!.bias)).toBeLessThan(1e-4);
    }
    expect(maxDifference(a.dense.kernel, b.dense.kernel)).toBeLessThan(1e-4);
    expect(maxDifference(ours.loss, theirs.loss)).toBeLessThan(1e-5);
    expect(maxDifference(ours.valLoss, theirs.valLoss)).toBeLessThan(1e-5);
    expect(maxDifference(ours.rmse, theirs.rmse)).toBeLessThan(1e-4);
    // And it did train: the weights moved from where they started.
    const start = extractWeights(buildAutoencoder(shape, fit.seed));
    expect(maxDifference(a.lstm[3].kernel, start.lstm[3].kernel)).toBeGreaterThan(1e-3);
    ours.model.dispose();
    theirs.model.dispose();
  });

  test('auto takes fit only where TensorFlow.js runs natively', () => {
    expect(resolveTrainer('auto', 'tensorflow')).toBe('tfjs');
    expect(resolveTrainer(undefined, 'wasm')).toBe('builtin');
    expect(resolveTrainer('auto', 'cpu')).toBe('builtin');
    expect(resolveTrainer('tfjs', 'wasm')).toBe('tfjs');
    expect(resolveTrainer('builtin', 'tensorflow')).toBe('builtin');
  });

  test('is deterministic for a seed', async () => {
    const first = await fitAutoencoder(windows, shape, { ...fit, trainer: 'builtin' });
    const second = await fitAutoencoder(windows, shape, { ...fit, trainer: 'builtin' });
    expect(Array.from(second.rmse)).toEqual(Array.from(first.rmse));
    expect(second.loss).toEqual(first.loss);
  });
});

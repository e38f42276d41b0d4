import * as tf from '@tensorflow/tfjs';
import { describe, expect, test } from 'vitest';
import { buildAutoencoder, orthogonalMatrix } from '../../src/detector/model.js';

/** Largest |(A Aᵀ or Aᵀ A) - I| for a row-major (rows, cols) matrix, over its shorter side. */
function orthogonalityError(values: Float32Array, rows: number, cols: number): number {
  const n = Math.min(rows, cols);
  const at = (r: number, c: number) => values[r * cols + c]!;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < Math.max(rows, cols); k++)
        dot += rows < cols ? at(i, k) * at(j, k) : at(k, i) * at(k, j);
      worst = Math.max(worst, Math.abs(dot - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

describe('orthogonal initialiser', () => {
  test('gives orthonormal rows for a recurrent kernel (units, 4 * units)', () => {
    expect(orthogonalityError(orthogonalMatrix(64, 256, 7), 64, 256)).toBeLessThan(1e-5);
  });

  test('gives orthonormal columns for a tall matrix', () => {
    expect(orthogonalityError(orthogonalMatrix(40, 8, 7), 40, 8)).toBeLessThan(1e-5);
  });

  test('is reproducible for a seed and differs between seeds', () => {
    expect(orthogonalMatrix(8, 32, 1)).toEqual(orthogonalMatrix(8, 32, 1));
    expect(orthogonalMatrix(8, 32, 1)).not.toEqual(orthogonalMatrix(8, 32, 2));
  });
});

describe('reference autoencoder', () => {
  test('starts with orthogonal recurrent kernels and reports the Keras initialiser', () => {
    const model = buildAutoencoder({ window: 16, latent: 8 }, 3);
    const recurrent = model.layers[0]!.getWeights()[1]!;
    expect(orthogonalityError(recurrent.dataSync() as Float32Array, 64, 256)).toBeLessThan(1e-5);
    const config = model.layers[0]!.getConfig() as { recurrentInitializer: { className: string } };
    expect(config.recurrentInitializer.className).toBe('Orthogonal');
    expect(model.outputs[0]!.shape).toEqual([null, 16, 1]);
    model.dispose();
    tf.disposeVariables();
  });
});

import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, test } from 'vitest';
import { type BackendLoader, selectTfBackend } from '../../src/detector/backend.js';

/** Records what selection asks for; only the packages in `installed` import, only `working` backends start. */
function recordingLoader(installed: string[], working: string[]) {
  const calls: string[] = [];
  const loader: BackendLoader = {
    async importModule(specifier) {
      calls.push(`import ${specifier}`);
      if (!installed.includes(specifier)) throw new Error(`Cannot find package '${specifier}'\nstack line`);
    },
    async activate(backend) {
      calls.push(`activate ${backend}`);
      return working.includes(backend);
    },
  };
  return { loader, calls };
}

const require = createRequire(import.meta.url);
const nativeInstalled = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].some((name) => {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
});

describe('selectTfBackend', () => {
  test('tries native GPU, native CPU, wasm, cpu in that order and stops at the first that works', async () => {
    const { loader, calls } = recordingLoader(
      ['@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm'],
      ['tensorflow', 'wasm', 'cpu'],
    );
    const selection = await selectTfBackend(undefined, loader);
    expect(selection.backend).toBe('tensorflow');
    expect(calls).toEqual([
      'import @tensorflow/tfjs-node-gpu',
      'import @tensorflow/tfjs-node',
      'activate tensorflow',
    ]);
    expect(selection.tried).toEqual([
      {
        backend: 'tensorflow',
        module: '@tensorflow/tfjs-node-gpu',
        error: "Cannot find package '@tensorflow/tfjs-node-gpu'",
      },
      { backend: 'tensorflow', module: '@tensorflow/tfjs-node' },
    ]);
  });

  test('falls back past a package that imports but whose backend does not initialise', async () => {
    const { loader, calls } = recordingLoader(
      ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-backend-wasm'],
      ['cpu'],
    );
    const selection = await selectTfBackend(undefined, loader);
    expect(selection.backend).toBe('cpu');
    expect(calls).toEqual([
      'import @tensorflow/tfjs-node-gpu',
      'activate tensorflow',
      'import @tensorflow/tfjs-node',
      'import @tensorflow/tfjs-backend-wasm',
      'activate wasm',
      'activate cpu',
    ]);
    expect(selection.tried.map((t) => [t.backend, t.error ?? 'chosen'])).toEqual([
      ['tensorflow', "backend 'tensorflow' did not initialise"],
      ['tensorflow', "Cannot find package '@tensorflow/tfjs-node'"],
      ['wasm', "backend 'wasm' did not initialise"],
      ['cpu', 'chosen'],
    ]);
  });

  test('tries the preferred backend first and keeps the usual order after it', async () => {
    const { loader, calls } = recordingLoader(['@tensorflow/tfjs-backend-wasm'], ['wasm', 'cpu']);
    const selection = await selectTfBackend('cpu', loader);
    expect(selection.backend).toBe('cpu');
    expect(calls).toEqual(['activate cpu']);

    const missing = recordingLoader(['@tensorflow/tfjs-backend-wasm'], ['wasm', 'cpu']);
    const fallback = await selectTfBackend('webgpu', missing.loader);
    expect(fallback.backend).toBe('wasm');
    expect(missing.calls.slice(0, 2)).toEqual(['activate webgpu', 'import @tensorflow/tfjs-node-gpu']);
  });

  // The native packages' install downloads libtensorflow, which this project's machines cannot do.
  test.skipIf(nativeInstalled)(
    'without the native packages picks wasm after both fail to import',
    async () => {
      const selection = await selectTfBackend();
      expect(selection.backend).toBe('wasm');
      expect(tf.getBackend()).toBe('wasm');
      expect(selection.tried.map((t) => t.module)).toEqual([
        '@tensorflow/tfjs-node-gpu',
        '@tensorflow/tfjs-node',
        '@tensorflow/tfjs-backend-wasm',
      ]);
      expect(selection.tried[0]!.error).toBeTruthy();
      expect(selection.tried[1]!.error).toBeTruthy();
      expect(selection.tried[2]!.error).toBeUndefined();
    },
  );
});

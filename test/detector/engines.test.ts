import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { writeRandomBundle } from '../../src/bench/bundles.js';
import { selectTfBackend } from '../../src/detector/backend.js';
import { type Bundle, onnxPath } from '../../src/detector/bundle.js';
import type { Engine } from '../../src/detector/engine.js';
import {
  createEngine,
  defaultEngineFactories,
  type EngineFactories,
} from '../../src/detector/engines/index.js';
import { isMagwatchError } from '../../src/errors.js';

const CHANNELS = ['S1__b_x', 'S1__b_y'];

let root: string;
let plain: Bundle;
let exported: Bundle;
beforeAll(async () => {
  await selectTfBackend('wasm');
  root = await mkdtemp(join(tmpdir(), 'magwatch-engines-'));
  plain = await writeRandomBundle(join(root, 'plain'), {
    channels: CHANNELS,
    window: 8,
    latent: 4,
    shared: false,
  });
  exported = await writeRandomBundle(join(root, 'exported'), {
    channels: CHANNELS,
    window: 8,
    latent: 4,
    shared: false,
  });
  // Selection only looks for the files; the ONNX factory below is a stand-in that never reads them.
  for (const model of exported.models) await writeFile(onnxPath(exported.dir, model), '');
}, 180_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function logger() {
  const lines: Array<{ info: Record<string, unknown>; msg: string }> = [];
  return {
    lines,
    log: (info: object, msg: string) => lines.push({ info: info as Record<string, unknown>, msg }),
  };
}

/** The real TensorFlow.js factory, and an ONNX factory that records its calls and succeeds or fails on demand. */
function factories(onnx: 'starts' | 'fails') {
  const onnxCalls: unknown[] = [];
  const made: Engine[] = [];
  const value: EngineFactories = {
    async onnx(_bundle, options) {
      onnxCalls.push(options);
      if (onnx === 'fails') throw new Error('onnxruntime-node: binding not found\nat somewhere');
      const engine: Engine = {
        name: 'onnx',
        backend: 'cpu',
        threads: 2,
        score: async () => new Float32Array(0),
        reconstruct: async () => new Float32Array(0),
        dispose: async () => {},
      };
      return engine;
    },
    async tfjs(bundle, options) {
      const engine = await defaultEngineFactories.tfjs(bundle, options);
      made.push(engine);
      return engine;
    },
  };
  return { value, onnxCalls, made };
}

describe('createEngine', () => {
  test('auto falls back to tfjs when the bundle has no .onnx files, and says so in one line', async () => {
    const { lines, log } = logger();
    const engine = await createEngine(plain, { engine: 'auto' }, log);
    try {
      expect(engine.name).toBe('tfjs');
      expect(engine.backend).toBe('wasm');
      expect(lines).toHaveLength(1);
      expect(lines[0]!.msg).toBe('inference engine selected');
      expect(lines[0]!.info).toMatchObject({ engine: 'tfjs', backend: 'wasm', mode: 'stacked' });
      expect(lines[0]!.info['reason']).toBe('bundle has no .onnx file for 2 of 2 models; fell back to tfjs');
      expect(lines[0]!.info['backendsFailed']).toHaveLength(2);
    } finally {
      await engine.dispose();
    }
  });

  test('auto takes onnx when every model has an .onnx file and the engine starts', async () => {
    const { lines, log } = logger();
    const f = factories('starts');
    const engine = await createEngine(exported, { threads: 2, backend: 'cpu' }, log, f.value);
    expect(engine.name).toBe('onnx');
    expect(f.onnxCalls).toEqual([{ threads: 2, provider: 'cpu' }]);
    expect(f.made).toHaveLength(0);
    expect(lines.map((l) => l.info)).toEqual([
      {
        engine: 'onnx',
        backend: 'cpu',
        reason: 'bundle has .onnx models and onnxruntime-node loads',
        threads: 2,
      },
    ]);
  });

  test('auto falls back to tfjs when the onnx engine fails to start, keeping its error', async () => {
    const { lines, log } = logger();
    const f = factories('fails');
    const engine = await createEngine(exported, {}, log, f.value);
    try {
      expect(engine.name).toBe('tfjs');
      expect(f.onnxCalls).toHaveLength(1);
      expect(lines[0]!.info).toMatchObject({
        engine: 'tfjs',
        reason: 'onnx engine failed to start; fell back to tfjs',
        onnxError: 'onnxruntime-node: binding not found',
      });
    } finally {
      await engine.dispose();
    }
  });

  test('auto with a TensorFlow.js-only backend does not start onnx', async () => {
    const { lines, log } = logger();
    const f = factories('starts');
    const engine = await createEngine(exported, { backend: 'wasm' }, log, f.value);
    try {
      expect(engine.name).toBe('tfjs');
      expect(f.onnxCalls).toHaveLength(0);
      expect(lines[0]!.info['reason']).toBe("backend 'wasm' is a TensorFlow.js backend; fell back to tfjs");
    } finally {
      await engine.dispose();
    }
  });

  test('tfjs on request, in the mode asked for', async () => {
    const { lines, log } = logger();
    const engine = await createEngine(
      exported,
      { engine: 'tfjs', mode: 'layers' },
      log,
      factories('starts').value,
    );
    try {
      expect(engine.name).toBe('tfjs');
      expect(lines[0]!.info).toMatchObject({ engine: 'tfjs', mode: 'layers', reason: 'asked for tfjs' });
    } finally {
      await engine.dispose();
    }
  });

  test.each([
    [
      'a bundle without .onnx files',
      () => plain,
      {},
      'MW_ENGINE_NO_ONNX',
      /plain\/models\/S1__b_x\.onnx: missing/,
    ],
    [
      'a TensorFlow.js backend',
      () => exported,
      { backend: 'wasm' },
      'MW_ENGINE_BAD_BACKEND',
      /'wasm' is not an ONNX/,
    ],
    ['an engine that fails to start', () => exported, {}, 'MW_ENGINE_UNAVAILABLE', /binding not found/],
  ] as const)('explicit onnx with %s is a coded error', async (_what, bundle, extra, code, message) => {
    const error = await createEngine(
      bundle(),
      { engine: 'onnx', ...extra },
      undefined,
      factories('fails').value,
    ).catch((e: unknown) => e);
    expect(isMagwatchError(error) && error.code).toBe(code);
    expect((error as Error).message).toMatch(message);
  });
});

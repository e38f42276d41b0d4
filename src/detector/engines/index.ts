import { access } from 'node:fs/promises';
import { MagwatchError } from '../../errors.js';
import { type Bundle, onnxPath } from '../bundle.js';
import type { Engine } from '../engine.js';
import { createEnginePool } from './pool.js';
import { createTfjsEngine, type TfjsEngine, type TfjsEngineOptions, type TfjsMode } from './tfjs.js';

export type EngineChoice = 'auto' | 'onnx' | 'tfjs';
export type OnnxProvider = 'cpu' | 'cuda' | 'auto';

export interface EngineOptions {
  /** Default `auto`: ONNX Runtime when the bundle has .onnx models and it starts, else TensorFlow.js. */
  engine?: EngineChoice;
  /**
   * ONNX Runtime provider (`cpu`, `cuda`, `auto`) or TensorFlow.js backend (`tensorflow`, `wasm`, `cpu`).
   * With `engine: 'auto'`, a TensorFlow.js-only backend selects TensorFlow.js.
   */
  backend?: string;
  /** Worker threads sharing each batch (ONNX Runtime: single-threaded sessions each); default one per core, at most 4. */
  threads?: number;
  /** TensorFlow.js only; default `stacked`. */
  mode?: TfjsMode;
}

/** Receives the one structured line that says which engine runs and why. */
export type EngineLog = (info: object, msg: string) => void;

/** How each engine is constructed; replaceable so that the selection can be checked on its own. */
export interface EngineFactories {
  onnx(bundle: Bundle, options: { threads?: number; provider?: OnnxProvider }): Promise<Engine>;
  tfjs(bundle: Bundle, options: TfjsEngineOptions & { threads?: number }): Promise<Engine>;
}

/**
 * Both engines run in a pool of worker threads (`pool.ts`), which loads onnxruntime-node's native binding
 * only when the ONNX engine is chosen, so a build without it falls back to TensorFlow.js. TensorFlow.js's
 * `layers` mode (the reference `model.predict`) and a replaced backend loader stay on this thread.
 */
export const defaultEngineFactories: EngineFactories = {
  onnx: (bundle, { threads, provider }) =>
    createEnginePool(bundle, { kind: 'onnx', options: provider ? { provider } : {} }, threads),
  tfjs: (bundle, { threads, ...options }) =>
    options.mode === 'layers' || options.loader
      ? createTfjsEngine(bundle, options)
      : createEnginePool(bundle, { kind: 'tfjs', options }, threads),
};

const ONNX_PROVIDERS: readonly string[] = ['cpu', 'cuda', 'auto'];

/** Models of the bundle that have no `.onnx` file beside their layers-format directory. */
export async function missingOnnxModels(bundle: Bundle): Promise<string[]> {
  const missing: string[] = [];
  for (const model of bundle.models) {
    try {
      await access(onnxPath(bundle.dir, model));
    } catch {
      missing.push(model);
    }
  }
  return missing;
}

/**
 * The inference engine for a bundle. `auto` prefers ONNX Runtime and falls back to TensorFlow.js when
 * the bundle has no .onnx models, the backend asked for is TensorFlow.js's, or ONNX Runtime fails to
 * start; the choice and its reason are logged once. An explicit `onnx` that cannot run is an error.
 */
export async function createEngine(
  bundle: Bundle,
  options: EngineOptions = {},
  log: EngineLog = () => {},
  factories: EngineFactories = defaultEngineFactories,
): Promise<Engine> {
  const choice = options.engine ?? 'auto';
  const tfjsOptions = { backend: options.backend, mode: options.mode, threads: options.threads };
  const chosen = (engine: Engine, reason: string, extra: object = {}) => {
    log(
      { engine: engine.name, backend: engine.backend, reason, ...extra, ...engineDetail(engine) },
      'inference engine selected',
    );
    return engine;
  };

  if (choice === 'tfjs') return chosen(await factories.tfjs(bundle, tfjsOptions), 'asked for tfjs');

  const provider =
    options.backend && ONNX_PROVIDERS.includes(options.backend)
      ? (options.backend as OnnxProvider)
      : undefined;
  const missing = await missingOnnxModels(bundle);
  let reason: string;
  let onnxError: string | undefined;
  if (options.backend && !provider) {
    if (choice === 'onnx') {
      throw new MagwatchError(
        'MW_ENGINE_BAD_BACKEND',
        `--backend '${options.backend}' is not an ONNX Runtime provider; use cpu, cuda or auto, or --engine tfjs`,
      );
    }
    reason = `backend '${options.backend}' is a TensorFlow.js backend`;
  } else if (missing.length > 0) {
    if (choice === 'onnx') {
      throw new MagwatchError(
        'MW_ENGINE_NO_ONNX',
        `${onnxPath(bundle.dir, missing[0]!)}: missing (${missing.length} of ${bundle.models.length} models have no .onnx file); retrain the bundle with 'magwatch train' or use --engine tfjs`,
      );
    }
    reason = `bundle has no .onnx file for ${missing.length} of ${bundle.models.length} models`;
  } else {
    try {
      const engine = await factories.onnx(bundle, { threads: options.threads, provider });
      return chosen(
        engine,
        choice === 'onnx' ? 'asked for onnx' : 'bundle has .onnx models and onnxruntime-node loads',
      );
    } catch (error) {
      onnxError = error instanceof Error ? error.message.split('\n', 1)[0]! : String(error);
      if (choice === 'onnx') {
        throw new MagwatchError(
          'MW_ENGINE_UNAVAILABLE',
          `ONNX Runtime cannot run ${bundle.dir} (${onnxError}); check the onnxruntime-node install or use --engine tfjs`,
          { cause: error },
        );
      }
      reason = 'onnx engine failed to start';
    }
  }
  const engine = await factories.tfjs(bundle, tfjsOptions);
  return chosen(engine, `${reason}; fell back to tfjs`, onnxError ? { onnxError } : {});
}

/**
 * What else an engine knows about its choice: its worker threads, TensorFlow.js's mode and failed backends,
 * ONNX Runtime's CUDA fallback.
 */
function engineDetail(engine: Engine): object {
  const threads = engine.threads === undefined ? {} : { threads: engine.threads };
  if ('fallback' in engine && typeof engine.fallback === 'string')
    return { ...threads, providerFallback: engine.fallback };
  if (engine.name !== 'tfjs' || !('tried' in engine)) return threads;
  const { mode, tried } = engine as TfjsEngine;
  const failed = tried.filter((t) => t.error).map((t) => `${t.module ?? t.backend}: ${t.error}`);
  return failed.length > 0 ? { ...threads, mode, backendsFailed: failed } : { ...threads, mode };
}

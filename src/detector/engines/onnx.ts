import { existsSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { MagwatchError } from '../../errors.js';
import { type Bundle, onnxPath } from '../bundle.js';
import { checkBatchShape, type Engine, type WindowBatch, windowRmse } from '../engine.js';
import { ONNX_INPUT, ONNX_OUTPUT } from '../onnx/export.js';

export type OnnxProvider = 'cpu' | 'cuda' | 'auto';

export interface OnnxEngineOptions {
  /** Intra-op threads of each session; default: the number of CPU cores. */
  threads?: number;
  /**
   * Execution provider. `auto` (default) and `cuda` try CUDA first and fall back to the CPU when its
   * provider library is not installed; `backend` and `fallback` on the engine tell which ran and why.
   */
  provider?: OnnxProvider;
  /**
   * Whether idle intra-op threads spin-wait for the next run. It saves microseconds on an idle machine, but
   * on a busy one the spinning threads take the cores the next run needs (with 9 per-channel sessions on 2
   * busy cores: 7-20x fewer windows/s; one session: batch-1 p99 17-35 ms instead of 1-5 ms). Default false.
   */
  spinning?: boolean;
}

export interface OnnxEngine extends Engine {
  readonly name: 'onnx';
  readonly backend: 'cpu' | 'cuda';
  /** Why CUDA was not used although it was asked for (`provider` `cuda` or `auto`); absent otherwise. */
  readonly fallback?: string;
}

interface Tuning {
  readonly threads: number;
  readonly spinning: boolean;
}

function sessionOptions(provider: 'cpu' | 'cuda', tuning: Tuning): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    intraOpNumThreads: tuning.threads,
    graphOptimizationLevel: 'all',
    // Only errors: a failed CUDA attempt is expected on CPU-only machines and reported through `fallback`.
    logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: tuning.spinning ? '1' : '0' } } },
  };
}

async function openSession(
  bundle: Bundle,
  model: string,
  options: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  const file = onnxPath(bundle.dir, model);
  try {
    await access(file);
  } catch {
    throw new MagwatchError(
      'MW_BUNDLE_NO_ONNX',
      `${file}: missing; the bundle has no ONNX copy of model '${model}'; run 'magwatch upgrade --model ${bundle.dir}' or use the tfjs engine`,
    );
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, options);
  } catch (error) {
    throw new MagwatchError(
      'MW_BUNDLE_BAD_ONNX',
      `${file}: ONNX Runtime cannot load it (${(error as Error).message.split('\n')[0]}); re-export it with 'magwatch upgrade --model ${bundle.dir}'`,
      { cause: error },
    );
  }
  const input = session.inputMetadata.find((value) => value.name === ONNX_INPUT);
  const window = input?.isTensor ? input.shape[1] : undefined;
  if (window !== bundle.manifest.window) {
    await session.release();
    throw new MagwatchError(
      'MW_BUNDLE_MISMATCH',
      `${file}: takes input '${ONNX_INPUT}' with windows of ${window ?? '?'} samples but manifest.json says ${bundle.manifest.window}; re-export it with 'magwatch upgrade --model ${bundle.dir}'`,
    );
  }
  return session;
}

/** Opens every model of the bundle on one provider; releases what it opened if any model fails. */
async function openAll(
  bundle: Bundle,
  provider: 'cpu' | 'cuda',
  tuning: Tuning,
): Promise<ort.InferenceSession[]> {
  const sessions: ort.InferenceSession[] = [];
  try {
    for (const model of bundle.models)
      sessions.push(await openSession(bundle, model, sessionOptions(provider, tuning)));
    return sessions;
  } catch (error) {
    await Promise.all(sessions.map((session) => session.release()));
    throw error;
  }
}

/**
 * Where onnxruntime-node keeps its CUDA provider library when it is installed (`npm install` with
 * `--onnxruntime-node-install-cuda`); undefined when the package's layout is not the one we know.
 */
function cudaLibrary(): string | undefined {
  const binding = join(
    dirname(createRequire(import.meta.url).resolve('onnxruntime-node')),
    '..',
    'bin',
    'napi-v6',
    process.platform,
    process.arch,
  );
  if (!existsSync(binding)) return undefined;
  return join(
    binding,
    process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so',
  );
}

/**
 * The CUDA provider ships separately from onnxruntime-node; a missing library is caught before ONNX Runtime
 * logs its own error, and opening the sessions is the final test (drivers, GPU present).
 * @returns the sessions, or why CUDA cannot be used.
 */
async function openOnCuda(bundle: Bundle, tuning: Tuning): Promise<ort.InferenceSession[] | string> {
  if (!ort.listSupportedBackends().some((backend) => backend.name === 'cuda')) {
    return 'this onnxruntime-node build has no CUDA provider';
  }
  const library = cudaLibrary();
  if (library && !existsSync(library)) return `CUDA provider library not installed (${library})`;
  try {
    return await openAll(bundle, 'cuda', tuning);
  } catch (error) {
    // A missing or mismatched file is the bundle's fault, not CUDA's: report it rather than retry on the CPU.
    if (!(error instanceof MagwatchError) || error.code !== 'MW_BUNDLE_BAD_ONNX') throw error;
    return `CUDA provider unavailable: ${(error.cause as Error).message.split('\n')[0]}`;
  }
}

/**
 * An engine on ONNX Runtime for a bundle's `models/<name>.onnx` files, one session per model, each loaded
 * once. Throws MagwatchError `MW_BUNDLE_NO_ONNX` when a model has no ONNX copy (bundles from before the
 * exporter: `magwatch upgrade --model <dir>` writes them).
 */
export async function createOnnxEngine(bundle: Bundle, options: OnnxEngineOptions = {}): Promise<OnnxEngine> {
  const tuning: Tuning = {
    threads: options.threads ?? availableParallelism(),
    spinning: options.spinning ?? false,
  };
  const provider = options.provider ?? 'auto';
  let fallback: string | undefined;
  let cuda: ort.InferenceSession[] | undefined;
  if (provider !== 'cpu') {
    const attempt = await openOnCuda(bundle, tuning);
    if (typeof attempt === 'string') fallback = attempt;
    else cuda = attempt;
  }
  const backend = cuda ? 'cuda' : 'cpu';
  const sessions = cuda ?? (await openAll(bundle, 'cpu', tuning));
  const window = bundle.manifest.window;
  const slotOf = new Map(bundle.models.map((model, slot) => [model, slot]));

  const run = async (session: ort.InferenceSession, data: Float32Array): Promise<Float32Array> => {
    const count = data.length / window;
    const result = await session.run({ [ONNX_INPUT]: new ort.Tensor('float32', data, [count, window, 1]) });
    return result[ONNX_OUTPUT]!.data as Float32Array;
  };

  const reconstruct = async (batch: WindowBatch): Promise<Float32Array> => {
    const count = batch.channels.length;
    checkBatchShape(batch, window);
    if (count === 0) return new Float32Array(0);
    const members: number[][] = sessions.map(() => []);
    for (let w = 0; w < count; w++) {
      const channel = batch.channels[w]!;
      const entry = bundle.manifest.channels[channel];
      if (!entry) {
        throw new MagwatchError(
          'MW_ENGINE_UNKNOWN_CHANNEL',
          `channel '${channel}' is not in the model bundle ${bundle.dir}; train a bundle that includes it or drop it from the input`,
        );
      }
      members[slotOf.get(entry.model)!]!.push(w);
    }
    // One model for the whole batch (a shared model, or a single channel): no copies at all.
    const only = members.findIndex((list) => list.length === count);
    if (only >= 0) return run(sessions[only]!, batch.data);

    const out = new Float32Array(count * window);
    // onnxruntime-node 1.30 runs a session synchronously on the calling thread once its turn comes, so the
    // models take turns; each run still uses `threads` cores.
    await Promise.all(
      members.map(async (list, slot) => {
        if (list.length === 0) return;
        const input = new Float32Array(list.length * window);
        for (const [i, w] of list.entries())
          input.set(batch.data.subarray(w * window, (w + 1) * window), i * window);
        const output = await run(sessions[slot]!, input);
        for (const [i, w] of list.entries())
          out.set(output.subarray(i * window, (i + 1) * window), w * window);
      }),
    );
    return out;
  };

  return {
    name: 'onnx',
    backend,
    ...(fallback === undefined ? {} : { fallback }),
    reconstruct,
    async score(batch) {
      return windowRmse(batch.data, await reconstruct(batch), window);
    },
    async dispose() {
      await Promise.all(sessions.map((session) => session.release()));
    },
  };
}

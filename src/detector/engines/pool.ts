import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { MagwatchError } from '../../errors.js';
import type { BackendAttempt } from '../backend.js';
import type { Bundle } from '../bundle.js';
import { checkBatchShape, type Engine, type WindowBatch, windowRmse } from '../engine.js';
import type { OnnxEngineOptions } from './onnx.js';
import type { TfjsEngineOptions, TfjsMode } from './tfjs.js';

/** What a pool can run: ONNX Runtime sessions, or TensorFlow.js's stacked passes. */
export type PooledEngine =
  | { readonly kind: 'onnx'; readonly options: OnnxEngineOptions }
  | { readonly kind: 'tfjs'; readonly options: Omit<TfjsEngineOptions, 'loader'> };

interface Reply {
  type: 'ready' | 'result' | 'failed' | 'disposed';
  id?: number;
  backend?: string;
  fallback?: string;
  mode?: TfjsMode;
  tried?: BackendAttempt[];
  reconstruction?: Float32Array;
  code?: string;
  message?: string;
}

const failure = (reply: Reply) =>
  reply.code ? new MagwatchError(reply.code, reply.message ?? '') : new Error(reply.message);

/**
 * The fewest windows worth a thread of their own. ONNX Runtime scores a window in about 0.3 ms, so beyond a
 * message round trip every window split off gains. A TensorFlow.js pass costs about 4 ms of kernel calls
 * however few its windows, which is already several message round trips, so a slice pays from a few
 * windows on once the split keeps merged models together (`order` in `planSlices`). Measured with a
 * per-channel bundle of 9 models and a shared one, wasm, two threads, windows/s at 16 against 4: one
 * window per model 296 against 368-427, shared 9 windows 924 against 1,071-1,123, per-channel 32 windows
 * 856 against 959-994.
 */
export const MIN_SLICE = { onnx: 8, tfjs: 4 } as const;

/** One worker thread holding an engine for every model of the bundle. */
interface Scorer {
  readonly ready: Reply;
  /** False once the thread has died (its error rejected what it held); the pool then works without it. */
  readonly alive: boolean;
  reconstruct(channels: readonly string[], data: Float32Array): Promise<Float32Array>;
  dispose(): Promise<void>;
}

async function startScorer(bundle: Bundle, engine: PooledEngine, script: URL): Promise<Scorer> {
  const worker = new Worker(script, { workerData: { bundleDir: bundle.dir, engine } });
  const pending = new Map<number, { resolve(value: Float32Array): void; reject(error: Error): void }>();
  let next = 0;
  let dead: Error | undefined;
  let disposed: (() => void) | undefined;
  let closing = false;
  const exited = (code: number) => new Error(`inference worker thread exited with code ${code}`);

  const ready = await new Promise<Reply>((resolve, reject) => {
    worker.once('message', (reply: Reply) =>
      reply.type === 'ready' ? resolve(reply) : reject(failure(reply)),
    );
    worker.once('error', reject);
    worker.once('exit', (code) => reject(exited(code)));
  }).catch(async (error) => {
    await worker.terminate();
    throw error;
  });

  worker.on('message', (reply: Reply) => {
    if (reply.type === 'disposed') disposed?.();
    const waiting = reply.id === undefined ? undefined : pending.get(reply.id);
    if (!waiting) return;
    pending.delete(reply.id!);
    if (reply.type === 'result') waiting.resolve(reply.reconstruction!);
    else waiting.reject(failure(reply));
  });
  // A thread that dies, by an uncaught error or by exiting, fails what it holds at once: a slice left
  // waiting would hold its batch, and the live path behind it, for ever.
  const die = (error: Error) => {
    dead ??= error;
    for (const waiting of pending.values()) waiting.reject(dead);
    pending.clear();
  };
  worker.on('error', die);
  worker.on('exit', (code) => {
    if (!closing) die(exited(code));
  });

  return {
    ready,
    get alive() {
      return dead === undefined;
    },
    reconstruct(channels, data) {
      if (dead) return Promise.reject(dead);
      const id = next++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        // The slice is this call's own copy, so it moves rather than being copied again.
        worker.postMessage({ id, channels, data }, [data.buffer as ArrayBuffer]);
      });
    },
    async dispose() {
      closing = true;
      if (!dead) {
        await new Promise<void>((resolve) => {
          disposed = resolve;
          worker.postMessage('dispose');
        });
      }
      await worker.terminate();
    },
  };
}

/**
 * Splits a batch's windows (indices) into at most `parts` slices of similar size. Windows of one model stay
 * together where the bundle has several (each slice then runs few sessions); one model's windows are cut
 * evenly. With `order` (a rank per model) each slice takes a contiguous run of models in that order: the
 * stacked TensorFlow.js engine merges neighbouring models into one pass (`stacked.ts`), and a run keeps
 * those groups whole where spreading the models by load would send a piece of every group to every thread.
 */
export function planSlices(
  models: readonly (string | undefined)[],
  parts: number,
  minSlice: number = MIN_SLICE.onnx,
  order?: ReadonlyMap<string, number>,
): number[][] {
  const count = models.length;
  const slices = Math.max(1, Math.min(parts, Math.floor(count / minSlice)));
  if (slices === 1) return [Array.from({ length: count }, (_, w) => w)];
  const groups = new Map<string | undefined, number[]>();
  for (const [w, model] of models.entries()) {
    const group = groups.get(model);
    if (group) group.push(w);
    else groups.set(model, [w]);
  }
  if (groups.size === 1) {
    const size = Math.ceil(count / slices);
    return Array.from({ length: slices }, (_, s) =>
      Array.from({ length: Math.min(size, count - s * size) }, (_, i) => s * size + i),
    );
  }
  if (order) {
    const rank = (model: string | undefined) => (model === undefined ? -1 : (order.get(model) ?? -1));
    const runs = [...groups.entries()].sort(([a], [b]) => rank(a) - rank(b));
    const plan: number[][] = [];
    let current: number[] = [];
    let taken = 0;
    for (const [, group] of runs) {
      current.push(...group);
      taken += group.length;
      // Close the slice once the slices so far hold their share of the batch.
      if (plan.length < slices - 1 && taken >= (count * (plan.length + 1)) / slices) {
        plan.push(current);
        current = [];
      }
    }
    if (current.length > 0) plan.push(current);
    return plan;
  }
  // Largest group first onto the least loaded slice (longest-processing-time scheduling).
  const plan: number[][] = Array.from({ length: slices }, () => []);
  for (const group of [...groups.values()].sort((a, b) => b.length - a.length)) {
    const lightest = plan.reduce((best, slice) => (slice.length < best.length ? slice : best));
    lightest.push(...group);
  }
  return plan.filter((slice) => slice.length > 0);
}

/**
 * Default threads at most. Each thread holds its own V8 isolate and copy of the engine (about 45 MB with
 * ONNX Runtime), and two already score about 20,000 windows/s on this project's development machine, far
 * beyond what a few hundred channels make due; `model.threads` sets more.
 */
export const DEFAULT_MAX_THREADS = 4;

/** Backends whose engine computes on the calling thread, so that more threads mean more cores at work. */
const CPU_BACKENDS = new Set(['cpu', 'wasm']);

/**
 * An engine off the event loop: `threads` worker threads (default: one per core, at most
 * `DEFAULT_MAX_THREADS`), each with its own copy of
 * the engine, and every batch split between them. ONNX Runtime runs single-threaded sessions there:
 * measured against one session with two intra-op threads (300 windows, shared model, two cores), two
 * single-threaded workers score a batch that comes after an idle spell (a live feed's round) in 18 ms rather
 * than 31 ms, and back to back in 14 ms rather than 16 ms, because the threads never wait for each other
 * inside a run. On CUDA or TensorFlow.js's native backend one worker holds the engine. From TypeScript
 * sources (tests) there is no compiled worker file, and the engine runs on the calling thread instead.
 * A thread that dies fails the slice it held and the others carry on without it. `script` is the
 * worker's entry; tests give one that dies on purpose.
 */
export async function createEnginePool(
  bundle: Bundle,
  engine: PooledEngine,
  threads?: number,
  script: URL = new URL('./pool-worker.js', import.meta.url),
): Promise<Engine> {
  if (import.meta.url.endsWith('.ts')) return inline(bundle, engine);

  const wanted = Math.max(1, threads ?? Math.min(availableParallelism(), DEFAULT_MAX_THREADS));
  const single = (provider?: 'cpu'): PooledEngine =>
    engine.kind === 'onnx'
      ? { kind: 'onnx', options: { ...engine.options, threads: 1, ...(provider ? { provider } : {}) } }
      : engine;
  const first = await startScorer(bundle, single(), script);
  const scorers = [first];
  try {
    if (CPU_BACKENDS.has(first.ready.backend!)) {
      const rest = await Promise.allSettled(
        Array.from({ length: wanted - 1 }, () => startScorer(bundle, single('cpu'), script)),
      );
      for (const started of rest) if (started.status === 'fulfilled') scorers.push(started.value);
      const failed = rest.find((started) => started.status === 'rejected');
      if (failed) throw failed.reason;
    }
  } catch (error) {
    await Promise.all(scorers.map((scorer) => scorer.dispose()));
    throw error;
  }

  const window = bundle.manifest.window;
  const modelOrder =
    engine.kind === 'tfjs' ? new Map(bundle.models.map((model, rank) => [model, rank])) : undefined;
  const reconstruct = async (batch: WindowBatch): Promise<Float32Array> => {
    const count = batch.channels.length;
    checkBatchShape(batch, window);
    const live = scorers.filter((scorer) => scorer.alive);
    // With every thread dead the first one's error is the answer, batch after batch.
    if (live.length === 0) live.push(scorers[0]!);
    const models = batch.channels.map((channel) => bundle.manifest.channels[channel]?.model);
    const plan = planSlices(models, live.length, MIN_SLICE[engine.kind], modelOrder);
    if (plan.length === 1) return live[0]!.reconstruct(batch.channels, batch.data.slice());
    const out = new Float32Array(count * window);
    await Promise.all(
      plan.map(async (slice, s) => {
        const input = new Float32Array(slice.length * window);
        for (const [i, w] of slice.entries())
          input.set(batch.data.subarray(w * window, (w + 1) * window), i * window);
        const output = await live[s]!.reconstruct(
          slice.map((w) => batch.channels[w]!),
          input,
        );
        for (const [i, w] of slice.entries())
          out.set(output.subarray(i * window, (i + 1) * window), w * window);
      }),
    );
    return out;
  };

  const { backend, fallback, mode, tried } = first.ready;
  return {
    name: engine.kind,
    backend: backend!,
    offThread: true,
    threads: scorers.length,
    ...(fallback === undefined ? {} : { fallback }),
    ...(engine.kind === 'tfjs' ? { mode, tried } : {}),
    reconstruct,
    async score(batch) {
      return windowRmse(batch.data, await reconstruct(batch), window);
    },
    async dispose() {
      await Promise.all(scorers.map((scorer) => scorer.dispose()));
    },
  } as Engine;
}

/** The engine on this thread; imported on demand, so that a pool of one kind never loads the other's packages. */
export async function inline(bundle: Bundle, engine: PooledEngine): Promise<Engine> {
  if (engine.kind === 'onnx') {
    const { createOnnxEngine } = await import('./onnx.js');
    return createOnnxEngine(bundle, engine.options);
  }
  const { createTfjsEngine } = await import('./tfjs.js');
  return createTfjsEngine(bundle, engine.options);
}

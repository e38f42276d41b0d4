import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { MagwatchError } from '../../errors.js';
import type { Bundle } from '../bundle.js';
import { type WindowBatch, windowRmse } from '../engine.js';
import { createOnnxEngine, type OnnxEngine, type OnnxEngineOptions } from './onnx.js';

interface Reply {
  type: 'ready' | 'result' | 'failed' | 'disposed';
  id?: number;
  backend?: 'cpu' | 'cuda';
  fallback?: string;
  reconstruction?: Float32Array;
  code?: string;
  message?: string;
}

const failure = (reply: Reply) =>
  reply.code ? new MagwatchError(reply.code, reply.message ?? '') : new Error(reply.message);

/**
 * A slice smaller than this goes to one thread whole: below it, a message round trip costs more than the
 * second core saves (one window takes about 0.3 ms).
 */
const MIN_SLICE = 8;

/** One worker thread holding single-threaded sessions of every model of the bundle. */
interface Scorer {
  readonly backend: 'cpu' | 'cuda';
  readonly fallback?: string;
  reconstruct(channels: readonly string[], data: Float32Array): Promise<Float32Array>;
  dispose(): Promise<void>;
}

async function startScorer(bundle: Bundle, options: OnnxEngineOptions): Promise<Scorer> {
  const worker = new Worker(new URL('./onnx-worker.js', import.meta.url), {
    workerData: { bundleDir: bundle.dir, options },
  });
  const pending = new Map<number, { resolve(value: Float32Array): void; reject(error: Error): void }>();
  let next = 0;
  let dead: Error | undefined;
  let disposed: (() => void) | undefined;

  const ready = await new Promise<Reply>((resolve, reject) => {
    worker.once('message', (reply: Reply) =>
      reply.type === 'ready' ? resolve(reply) : reject(failure(reply)),
    );
    worker.once('error', reject);
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
  worker.on('error', (error) => {
    dead = error;
    for (const waiting of pending.values()) waiting.reject(error);
    pending.clear();
  });

  return {
    backend: ready.backend!,
    ...(ready.fallback === undefined ? {} : { fallback: ready.fallback }),
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
 * evenly.
 */
export function planSlices(models: readonly (string | undefined)[], parts: number): number[][] {
  const count = models.length;
  const slices = Math.max(1, Math.min(parts, Math.floor(count / MIN_SLICE)));
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
  // Largest group first onto the least loaded slice (longest-processing-time scheduling).
  const plan: number[][] = Array.from({ length: slices }, () => []);
  for (const group of [...groups.values()].sort((a, b) => b.length - a.length)) {
    const lightest = plan.reduce((best, slice) => (slice.length < best.length ? slice : best));
    lightest.push(...group);
  }
  return plan.filter((slice) => slice.length > 0);
}

/**
 * The ONNX engine off the event loop: `threads` worker threads (default: one per core), each with
 * single-threaded sessions, and every batch split between them. Measured against one session with two
 * intra-op threads (300 windows, shared model, two cores), two single-threaded workers score a batch that
 * comes after an idle spell (a live feed's round) in 18 ms rather than 31 ms, and back to back in 14 ms
 * rather than 16 ms: the threads never wait for each other inside a run. On CUDA one worker holds the
 * sessions. From TypeScript sources (tests) there is no compiled worker file, and the sessions run on the
 * calling thread instead.
 */
export async function createOnnxThreadEngine(
  bundle: Bundle,
  options: OnnxEngineOptions = {},
): Promise<OnnxEngine> {
  if (import.meta.url.endsWith('.ts')) return createOnnxEngine(bundle, options);

  const wanted = Math.max(1, options.threads ?? availableParallelism());
  const first = await startScorer(bundle, { ...options, threads: 1 });
  const scorers = [first];
  try {
    if (first.backend === 'cpu') {
      const rest = await Promise.allSettled(
        Array.from({ length: wanted - 1 }, () =>
          startScorer(bundle, { ...options, threads: 1, provider: 'cpu' }),
        ),
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
  const reconstruct = async (batch: WindowBatch): Promise<Float32Array> => {
    const count = batch.channels.length;
    if (batch.data.length !== count * window) {
      throw new RangeError(
        `window batch of ${count} channels needs ${count * window} values (W=${window}), got ${batch.data.length}`,
      );
    }
    const models = batch.channels.map((channel) => bundle.manifest.channels[channel]?.model);
    const plan = planSlices(models, scorers.length);
    if (plan.length === 1) return scorers[0]!.reconstruct(batch.channels, batch.data.slice());
    const out = new Float32Array(count * window);
    await Promise.all(
      plan.map(async (slice, s) => {
        const input = new Float32Array(slice.length * window);
        for (const [i, w] of slice.entries())
          input.set(batch.data.subarray(w * window, (w + 1) * window), i * window);
        const output = await scorers[s]!.reconstruct(
          slice.map((w) => batch.channels[w]!),
          input,
        );
        for (const [i, w] of slice.entries())
          out.set(output.subarray(i * window, (i + 1) * window), w * window);
      }),
    );
    return out;
  };

  return {
    name: 'onnx',
    backend: first.backend,
    offThread: true,
    ...(first.fallback === undefined ? {} : { fallback: first.fallback }),
    reconstruct,
    async score(batch) {
      return windowRmse(batch.data, await reconstruct(batch), window);
    },
    async dispose() {
      await Promise.all(scorers.map((scorer) => scorer.dispose()));
    },
  };
}

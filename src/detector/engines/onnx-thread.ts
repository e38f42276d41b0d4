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
 * The ONNX engine with its sessions in a worker thread, so that scoring never blocks the event loop. Batches
 * are sent with their buffers copied and results come back transferred. From TypeScript sources (tests)
 * there is no compiled worker file, and the sessions run on the calling thread instead.
 */
export async function createOnnxThreadEngine(
  bundle: Bundle,
  options: OnnxEngineOptions = {},
): Promise<OnnxEngine> {
  if (import.meta.url.endsWith('.ts')) return createOnnxEngine(bundle, options);

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

  const window = bundle.manifest.window;
  const reconstruct = (batch: WindowBatch): Promise<Float32Array> => {
    if (dead) return Promise.reject(dead);
    const id = next++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, channels: batch.channels, data: batch.data });
    });
  };

  return {
    name: 'onnx',
    backend: ready.backend!,
    ...(ready.fallback === undefined ? {} : { fallback: ready.fallback }),
    reconstruct,
    async score(batch) {
      return windowRmse(batch.data, await reconstruct(batch), window);
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

import { parentPort, workerData } from 'node:worker_threads';
import { isMagwatchError } from '../../errors.js';
import { loadBundle } from '../bundle.js';
import type { Engine } from '../engine.js';
import { inline, type PooledEngine } from './pool.js';

/**
 * Worker-thread entry of an engine pool: opens the bundle's engine here, then reconstructs each batch slice
 * it is sent. ONNX Runtime and TensorFlow.js's wasm backend compute on the calling thread, so running them
 * here keeps the live path's event loop (ingest, timers, HTTP) free and lets the slices use several cores.
 */
const port = parentPort;
if (!port) throw new Error('pool-worker must run in a worker thread');
const { bundleDir, engine: kind } = workerData as { bundleDir: string; engine: PooledEngine };

try {
  const engine = await inline(await loadBundle(bundleDir), kind);
  const { mode, tried } = engine as Engine & { mode?: string; tried?: unknown };
  const fallback = 'fallback' in engine ? engine.fallback : undefined;
  port.postMessage({ type: 'ready', backend: engine.backend, fallback, mode, tried });
  port.on('message', async (message: { id: number; channels: string[]; data: Float32Array } | 'dispose') => {
    if (message === 'dispose') {
      await engine.dispose();
      port.postMessage({ type: 'disposed' });
      return;
    }
    try {
      const reconstruction = await engine.reconstruct({ channels: message.channels, data: message.data });
      port.postMessage({ type: 'result', id: message.id, reconstruction }, [
        reconstruction.buffer as ArrayBuffer,
      ]);
    } catch (error) {
      port.postMessage({ type: 'failed', id: message.id, ...describe(error) });
    }
  });
} catch (error) {
  port.postMessage({ type: 'failed', id: -1, ...describe(error) });
}

function describe(error: unknown): { code?: string; message: string } {
  return isMagwatchError(error)
    ? { code: error.code, message: error.message }
    : { message: (error as Error).message ?? String(error) };
}

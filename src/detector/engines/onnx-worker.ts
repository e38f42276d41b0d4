import { parentPort, workerData } from 'node:worker_threads';
import { isMagwatchError } from '../../errors.js';
import { loadBundle } from '../bundle.js';
import { createOnnxEngine, type OnnxEngineOptions } from './onnx.js';

/**
 * Worker-thread entry of the off-thread ONNX engine: opens the bundle's sessions here, then reconstructs each
 * batch it is sent. onnxruntime-node runs a session on the calling thread, so running it here keeps the live
 * path's event loop (ingest, timers, HTTP) free while a batch is scored.
 */
const port = parentPort;
if (!port) throw new Error('onnx-worker must run in a worker thread');
const { bundleDir, options } = workerData as { bundleDir: string; options: OnnxEngineOptions };

try {
  const engine = await createOnnxEngine(await loadBundle(bundleDir), options);
  port.postMessage({ type: 'ready', backend: engine.backend, fallback: engine.fallback });
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

import * as tf from '@tensorflow/tfjs';
import { selectTfBackend } from './backend.js';

/** Picks the fastest TensorFlow.js backend that trains here (native, else wasm, else cpu); returns its name. */
export async function useTrainingBackend(): Promise<string> {
  const { backend } = await selectTfBackend();
  await tf.ready();
  return backend;
}

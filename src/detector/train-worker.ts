import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { useTrainingBackend } from './train-backend.js';
import { runTrainJob, type TrainJob } from './train-job.js';

/** Worker-thread entry: trains the jobs it is sent, one at a time, and reports epochs as they end. */
const port = parentPort;
if (!port) throw new Error('train-worker must run in a worker thread');

// Same as the CLI: stderr is for magwatch's own messages, not tfjs's banners.
tf.env().set('PROD', true);
const ready = useTrainingBackend();
port.on('message', async (job: TrainJob) => {
  try {
    await ready;
    const result = await runTrainJob(job, (report) =>
      port.postMessage({ type: 'epoch', model: job.model, ...report }),
    );
    port.postMessage({ type: 'done', result }, [result.rmse.buffer as ArrayBuffer]);
  } catch (error) {
    port.postMessage({ type: 'error', model: job.model, message: (error as Error).message });
  }
});

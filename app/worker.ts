/** A worker of the main job: trains the optimizers it is sent, one at a time. */
import { parentPort, workerData } from 'node:worker_threads';
import type { Digits } from './data.ts';
import { checkpointPath, saveCheckpoint } from './checkpoint.ts';
import { WriteError } from './files.ts';
import { train } from './train.ts';
import type { Checkpoint, TrainConfig } from './types.ts';

const data = workerData as { train: Digits; test: Digits };
const port = parentPort!;

interface Job {
  /** The checkpoint's name (OUT/checkpoints/KEY.json). */
  key: string;
  config: TrainConfig;
  out: string;
  checkpointEvery: number;
  /** The digits' identity (dataSha256 in checkpoint.ts), recorded in every checkpoint with the key. */
  dataSha256: string;
  /** Checked by the main thread before any run started. */
  from?: Checkpoint;
}

port.on('message', (job: Job | null) => {
  if (job === null) {
    port.close();
    return;
  }
  const path = checkpointPath(job.out, job.key);
  try {
    const result = train(
      job.config,
      data,
      (epoch, step, steps, loss) => port.postMessage({ type: 'progress', name: job.key, epoch, step, steps, loss }),
      {
        every: job.checkpointEvery,
        identity: { runKey: job.key, dataSha256: job.dataSha256 },
        save: (checkpoint) => saveCheckpoint(path, checkpoint),
        ...(job.from ? { from: job.from } : {}),
      },
    );
    port.postMessage({ type: 'done', result });
  } catch (error) {
    port.postMessage({ type: 'failed', message: (error as Error).message, write: error instanceof WriteError });
  }
});

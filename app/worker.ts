/** A worker of the main job: trains the optimizers it is sent, one at a time. */
import { parentPort, workerData } from 'node:worker_threads';
import type { Digits } from './data.ts';
import { train, type TrainConfig } from './train.ts';

const data = workerData as { train: Digits; test: Digits };
const port = parentPort!;
port.on('message', (config: TrainConfig | null) => {
  if (config === null) {
    port.close();
    return;
  }
  const result = train(config, data, (epoch, step, steps, loss) => port.postMessage({ type: 'progress', name: config.optimizer, epoch, step, steps, loss }));
  port.postMessage({ type: 'done', result });
});

/** A worker of src/threads.ts: waits for commands in the shared control block. */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { instantiateKernels, type KernelExports } from '../wasm/kernels.ts';
import { ATTACH, CONTROL, EXIT, nextGeneration, RUN, runWorkerPart, type WorkerMessage } from '../threads.ts';

const { control, part, parts } = workerData as { control: Int32Array; part: number; parts: number };
const port = parentPort!;
/** The kernels over each attached store's memory, by the store's id in the pool. */
const kernels = new Map<number, KernelExports>();
let seen = Atomics.load(control, CONTROL.GENERATION);
Atomics.add(control, CONTROL.READY, 1);

for (;;) {
  seen = nextGeneration(control, seen);
  const command = Atomics.load(control, CONTROL.COMMAND);
  if (command === ATTACH) {
    // Every message posted before this command: memories to attach, ids to forget.
    for (let message = receiveMessageOnPort(port); message !== undefined; message = receiveMessageOnPort(port)) {
      const body = message.message as WorkerMessage;
      if ('attach' in body) kernels.set(body.attach, instantiateKernels(body.memory, true, 0).exports);
      else kernels.delete(body.release);
    }
  } else if (command === RUN) {
    runWorkerPart(kernels.get(Atomics.load(control, CONTROL.STORE))!, control, part, parts);
  }
  Atomics.add(control, CONTROL.DONE, 1);
  Atomics.notify(control, CONTROL.DONE);
  if (command === EXIT) break;
}
port.close();

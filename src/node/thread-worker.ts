/** A worker of src/node/threads.ts: waits for commands in the shared control block. */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { instantiateKernels, type KernelExports } from '../wasm/kernels.ts';
import { ATTACH, EXIT, RUN, runWorkerPart } from './threads.ts';

const { control, part, parts } = workerData as { control: Int32Array; part: number; parts: number };
const port = parentPort!;
let kernels: KernelExports | undefined;
let seen = Atomics.load(control, 0);
port.postMessage('ready');

for (;;) {
  // Spin briefly (a step comes right after the last on a busy trainer), then sleep.
  for (let spin = 0; spin < 20000 && Atomics.load(control, 0) === seen; spin++);
  Atomics.wait(control, 0, seen);
  seen = Atomics.load(control, 0);
  const command = Atomics.load(control, 1);
  if (command === ATTACH) {
    const message = receiveMessageOnPort(port);
    kernels = instantiateKernels(message!.message as WebAssembly.Memory, true, 0).exports;
  } else if (command === RUN) {
    runWorkerPart(kernels!, control, part, parts);
  }
  Atomics.add(control, 4, 1);
  Atomics.notify(control, 4);
  if (command === EXIT) break;
}
port.close();

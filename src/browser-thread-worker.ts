/**
 * A browser worker of src/threads.ts (a module worker started by a cross-origin isolated
 * page). Node's (src/node/thread-worker.ts) blocks in `Atomics.wait` and drains its port
 * when told to; a browser worker has no synchronous way to read its messages, so it waits
 * for commands with `Atomics.waitAsync` and reads them as they arrive. An ATTACH waits
 * until every message posted before it (CONTROL.POSTED counts them) has been read.
 */
import { instantiateKernels, type KernelExports } from './wasm/kernels.ts';
import { ATTACH, CONTROL, EXIT, nextGenerationAsync, RUN, runWorkerPart, type WorkerMessage, type WorkerStart } from './threads.ts';

interface WorkerScope {
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  close(): void;
}
const scope = globalThis as unknown as WorkerScope;

/** The kernels over each attached store's memory, by the store's id in the pool. */
const kernels = new Map<number, KernelExports>();
let received = 0;
let started: ((start: WorkerStart) => void) | undefined;
let caughtUp: (() => void) | undefined;
const start = new Promise<WorkerStart>((resolve) => {
  started = resolve;
});

scope.addEventListener('message', (event) => {
  if (started !== undefined) {
    started(event.data as WorkerStart);
    started = undefined;
    return;
  }
  const body = event.data as WorkerMessage;
  if ('attach' in body) kernels.set(body.attach, instantiateKernels(body.memory, true, 0).exports);
  else kernels.delete(body.release);
  received++;
  caughtUp?.();
});

const { control, part, parts } = await start;
let seen = Atomics.load(control, CONTROL.GENERATION);
Atomics.add(control, CONTROL.READY, 1);

for (;;) {
  seen = await nextGenerationAsync(control, seen);
  const command = Atomics.load(control, CONTROL.COMMAND);
  if (command === ATTACH) {
    while (received < Atomics.load(control, CONTROL.POSTED)) {
      await new Promise<void>((resolve) => {
        caughtUp = resolve;
      });
    }
    caughtUp = undefined;
  } else if (command === RUN) {
    runWorkerPart(kernels.get(Atomics.load(control, CONTROL.STORE))!, control, part, parts);
  }
  Atomics.add(control, CONTROL.DONE, 1);
  Atomics.notify(control, CONTROL.DONE);
  if (command === EXIT) break;
}
scope.close();

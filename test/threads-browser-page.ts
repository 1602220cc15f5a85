/**
 * The page of test/threads-browser.test.ts: served with and without the COOP/COEP
 * headers, it steps large float32 stores (the default threads) and the same stores with
 * `threads: false`, and logs what it saw as `result <json>`.
 */
import { AUTO_MIN_ELEMENTS, Nesterov, ParamStore, SGD, UpdateError, threadSupport } from 'nesterov';
import { REGISTRY } from './registry.ts';

/** One region just over the threshold, in three parameters. */
const SHAPES = { W: AUTO_MIN_ELEMENTS, b: 37, c: 1 };
const TOTAL = AUTO_MIN_ELEMENTS + 38;
const values = new Map<string, Float32Array>();

function fill(store: ParamStore<string>, region: 'params' | 'grads', f: (i: number, name: string) => number, key: string): void {
  for (const name of store.names) {
    const a = store[region][name]!;
    let v = values.get(`${key}/${name}`);
    if (v === undefined) {
      v = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) v[i] = f(i, name);
      values.set(`${key}/${name}`, v);
    }
    a.set(v);
  }
}

/** Equal to the bit: typed arrays byte by byte, objects key by key. */
function sameBits(a: unknown, b: unknown): boolean {
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) {
    const [x, y] = [new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength)];
    return x.length === y.length && x.every((byte, i) => byte === y[i]);
  }
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => sameBits((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]));
  }
  return Object.is(a, b);
}

const pause = () => new Promise((resolve) => setTimeout(resolve, 5));

async function run(): Promise<unknown> {
  const large = new ParamStore(SHAPES);
  // Steps a throwaway store until the pool is up (its first steps run on one thread).
  const warm = new ParamStore({ w: TOTAL }, { stateBuffers: 0 });
  const sgd = new SGD({ lr: 0 });
  const firstThreads: number[] = [];
  const deadline = Date.now() + 20_000;
  do {
    sgd.update(warm.params, warm.grads);
    firstThreads.push(sgd.threadsUsed!);
    await pause();
  } while (sgd.threadsUsed !== warm.threads && Date.now() < deadline);

  const rules = REGISTRY.map((entry) => {
    const single = entry.make(0.01);
    const byDefault = entry.make(0.01);
    const stores = [new ParamStore(SHAPES, { threads: false, stateBuffers: [single] }), new ParamStore(SHAPES, { stateBuffers: [byDefault] })];
    const opts = [single, byDefault];
    for (const store of stores) fill(store, 'params', (i, name) => Math.sin(i + name.length), 'p');
    const threadsUsed: number[] = [];
    for (let t = 0; t < 3; t++) {
      for (const store of stores) fill(store, 'grads', (i) => Math.cos(i * 0.3 + t), `g${t}`);
      stores.forEach((store, k) => opts[k]!.update(store.params, store.grads));
      threadsUsed.push(byDefault.threadsUsed!);
    }
    const sameParams = stores[0]!.names.every((name) => sameBits(stores[0]!.params[name], stores[1]!.params[name]));
    return { id: entry.id, backend: byDefault.backendUsed, threadsUsed, sameParams, sameState: sameBits(single.stateDict(), byDefault.stateDict()) };
  });

  // A NaN gradient in the calling thread's chunk and in the last worker's.
  const nonFinite = [];
  for (const index of [100, AUTO_MIN_ELEMENTS - 20]) {
    for (const mode of ['error', 'skip'] as const) {
      const runs = ([false, 'auto'] as const).map((threads) => {
        const opt = new Nesterov({ lr: 0.1, nonFinite: mode });
        const store = new ParamStore(SHAPES, { threads, stateBuffers: [opt] });
        fill(store, 'params', (i, name) => Math.sin(i + name.length), 'p');
        fill(store, 'grads', (i) => Math.cos(i * 0.3), 'g0');
        opt.update(store.params, store.grads);
        store.grads.W![index] = NaN;
        const before = store.params.W!.slice();
        const state = opt.stateDict();
        let outcome: unknown;
        try {
          outcome = opt.update(store.params, store.grads);
        } catch (error) {
          outcome = error;
        }
        const error = outcome instanceof UpdateError ? { message: outcome.message, param: outcome.param, index: outcome.index } : null;
        return {
          store, opt, error, outcome: error === null ? outcome : 'error',
          unchanged: sameBits(store.params.W, before),
          sameState: sameBits(opt.stateDict(), mode === 'skip' ? { ...state, skippedSteps: 1 } : state),
        };
      });
      const [one, auto] = runs as [(typeof runs)[0], (typeof runs)[0]];
      nonFinite.push({
        index, mode, threadsUsed: auto.opt.threadsUsed, error: auto.error, outcome: auto.outcome, unchanged: auto.unchanged, sameState: auto.sameState,
        sameAsOneThread: sameBits(auto.store.params.W, one.store.params.W) && one.outcome === auto.outcome,
      });
    }
  }
  return {
    isolated: crossOriginIsolated,
    cores: navigator.hardwareConcurrency,
    support: threadSupport() ?? null,
    large: { threads: large.threads, shared: large.shared },
    firstThreads,
    rules,
    nonFinite,
  };
}

run().then(
  (report) => console.log(`result ${JSON.stringify(report)}`),
  (error: unknown) => console.log(`result ${JSON.stringify({ failed: error instanceof Error ? `${error.stack}` : String(error) })}`),
);

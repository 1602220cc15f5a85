/**
 * Threads by default: a float32 ParamStore of AUTO_MIN_ELEMENTS elements or more steps on
 * every core without being asked (`threads: 'auto'`), with the same bits as one thread
 * (`threads: false`), the same non-finite contract, and a process that exits as soon as
 * its script ends. Smaller stores, float64 stores and plain parameter sets stay on one
 * thread.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { Adam, AUTO_MIN_ELEMENTS, Nesterov, ParamStore, SGD, UpdateError, threadSupport } from 'nesterov';
import { Worker } from 'node:worker_threads';
import { nextGeneration } from '../src/threads.ts';
import { REGISTRY } from './registry.ts';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
/** What 'auto' should use on this machine: every core, at most 8. */
const AUTO = Math.min(availableParallelism(), 8);
/** One region just over the threshold, in three parameters (one run, split at 16-element blocks). */
const SHAPES = { W: AUTO_MIN_ELEMENTS, b: 37, c: 1 };
const TOTAL = AUTO_MIN_ELEMENTS + 38;

/** Values per parameter, computed once (a million sines per store and step would dominate the run). */
const cache = new Map<string, Float32Array>();
function fill(store: ParamStore<string>, region: 'params' | 'grads', f: (i: number, name: string) => number, key: string): void {
  for (const name of store.names) {
    const a = store[region][name]!;
    let values = cache.get(`${key}/${name}`);
    if (values === undefined) {
      values = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) values[i] = f(i, name);
      cache.set(`${key}/${name}`, values);
    }
    a.set(values);
  }
}

/** Steps a throwaway store of `threads` until its pool is up (the pool is shared by every store asking for that many). */
async function warmPool(threads: number | 'auto'): Promise<void> {
  const store = new ParamStore({ w: TOTAL }, { threads, stateBuffers: 0 });
  const opt = new SGD({ lr: 0 });
  const want = threads === 'auto' ? AUTO : threads;
  for (let i = 0; i < 30_000 && opt.threadsUsed !== want; i++) {
    opt.update(store.params, store.grads);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  assert.equal(opt.threadsUsed, want, `the pool of ${want} threads did not start`);
}

describe('threads by default', { skip: threadSupport() }, () => {
  before(async () => {
    if (AUTO > 1) await warmPool('auto');
    await warmPool(3);
  });

  it("a large float32 store uses shared memory and every core; a small, a float64 store and threads: false do not", () => {
    const large = new ParamStore(SHAPES);
    assert.equal(large.threads, AUTO);
    assert.equal(large.shared, AUTO > 1);
    for (const store of [new ParamStore({ w: AUTO_MIN_ELEMENTS - 16 }), new ParamStore(SHAPES, { dtype: 'float64' }), new ParamStore(SHAPES, { threads: false }), new ParamStore(SHAPES, { shared: false })]) {
      assert.equal(store.threads, 1);
      assert.equal(store.shared, false);
    }
    assert.equal(new ParamStore({ w: 4 }, { threads: 2 }).shared, true);
  });

  for (const entry of REGISTRY) {
    it(`${entry.id}: the default store and threads: 3 give one thread's bits`, () => {
      const single = entry.make(0.01);
      const byDefault = entry.make(0.01);
      const three = entry.make(0.01);
      const stores = [
        new ParamStore(SHAPES, { threads: false, stateBuffers: [single] }),
        new ParamStore(SHAPES, { stateBuffers: [byDefault] }),
        new ParamStore(SHAPES, { threads: 3, stateBuffers: [three] }),
      ];
      const opts = [single, byDefault, three];
      for (const store of stores) fill(store, 'params', (i, name) => Math.sin(i + name.length), 'p');
      for (let t = 0; t < 4; t++) {
        for (const store of stores) fill(store, 'grads', (i) => Math.cos(i * 0.3 + t), `g${t}`);
        stores.forEach((store, k) => opts[k]!.update(store.params, store.grads));
        if (single.backendUsed === 'wasm') assert.deepEqual(opts.map((opt) => opt.threadsUsed), [1, AUTO, 3]);
      }
      for (const k of [1, 2]) {
        for (const name of stores[0]!.names) {
          const [a, b] = [stores[k]!.params[name]!, stores[0]!.params[name]!];
          const at = a.findIndex((x, i) => !Object.is(x, b[i]));
          assert.equal(at, -1, `${name} (store ${k}) differs from one thread's from index ${at} of ${a.length}`);
        }
        assert.deepEqual(opts[k]!.stateDict(), single.stateDict());
      }
    });
  }

  it('plain parameter sets stay on one thread', () => {
    const opt = new Adam({ lr: 1e-3 });
    opt.update({ w: new Float32Array(TOTAL) }, { w: new Float32Array(TOTAL).fill(1) });
    assert.equal(opt.threadsUsed, 1);
    assert.equal(opt.backendUsed, 'js');
  });

  // With AUTO threads and one run of TOTAL elements, the calling thread runs the first
  // chunk and the last worker the last: one index in each.
  const calling = 100;
  const lastWorker = AUTO_MIN_ELEMENTS - 20; // the end of parameter W, in the last chunk
  for (const [where, index] of [
    ["the calling thread's chunk", calling],
    ["a worker's chunk", lastWorker],
  ] as const) {
    for (const nonFinite of ['error', 'skip', 'ignore'] as const) {
      it(`nonFinite '${nonFinite}', a NaN gradient in ${where}: the split scan keeps the contract`, () => {
        const make = () => new Nesterov({ lr: 0.1, nonFinite });
        const runs = [false, 'auto'].map((threads) => {
          const opt = make();
          const store = new ParamStore(SHAPES, { threads: threads as false | 'auto', stateBuffers: [opt] });
          fill(store, 'params', (i, name) => Math.sin(i + name.length), 'p');
          fill(store, 'grads', (i) => Math.cos(i * 0.3), 'g0');
          opt.update(store.params, store.grads); // a first finite step, so state is not zero
          store.grads.W![index] = NaN;
          const before = store.params.W!.slice();
          const state = opt.stateDict();
          let outcome: unknown;
          try {
            outcome = opt.update(store.params, store.grads);
          } catch (error) {
            outcome = error;
          }
          return { opt, store, before, state, outcome };
        });
        const [one, auto] = runs as [(typeof runs)[0], (typeof runs)[0]];
        if (AUTO > 1) assert.equal(auto.opt.threadsUsed, AUTO);
        if (nonFinite === 'error') {
          assert.ok(auto.outcome instanceof UpdateError);
          assert.equal(auto.outcome.message, `Nesterov.update: gradient 'W' is not finite at index ${index} (NaN)`);
          assert.deepEqual(auto.store.params.W, auto.before); // nothing written
          assert.deepEqual(auto.opt.stateDict(), auto.state);
        } else if (nonFinite === 'skip') {
          assert.equal(auto.outcome, false);
          assert.equal(auto.opt.skippedSteps, 1);
          assert.deepEqual(auto.store.params.W, auto.before);
          assert.deepEqual(auto.opt.stateDict(), { ...auto.state, skippedSteps: 1 });
        } else {
          assert.equal(auto.outcome, true);
          assert.ok(Number.isNaN(auto.store.params.W![index]!)); // applied, NaN where the gradient was
        }
        // And exactly what one thread does.
        assert.deepEqual(auto.store.params.W, one.store.params.W);
        assert.equal(String(auto.outcome), String(one.outcome));
      });
    }

    it(`an overflow in ${where} under the default threads throws after the step, naming the parameter and index`, () => {
      const store = new ParamStore(SHAPES);
      fill(store, 'grads', () => 0.5, 'half');
      store.grads.W![index] = 1e38;
      const opt = new SGD({ lr: 10 });
      assert.throws(
        () => opt.update(store.params, store.grads),
        (error: unknown) => error instanceof UpdateError && error.param === 'W' && error.index === index && /This step WAS applied/.test(error.message),
      );
      if (AUTO > 1) assert.equal(opt.threadsUsed, AUTO);
      assert.equal(store.params.W![index], -Infinity);
      assert.equal(store.params.W![index + 1], -5);
    });
  }
});

describe('the threads option', () => {
  for (const value of [0, -1, 1.5, NaN, Infinity, 'all', true, null, '2']) {
    it(`threads: ${String(value)} is refused, naming the value`, () => {
      assert.throws(
        () => new ParamStore({ w: 4 }, { threads: value as never }),
        (error: unknown) => error instanceof RangeError && error.message === `ParamStore: invalid threads: ${typeof value === 'string' ? JSON.stringify(value) : String(value)} (expected false, 'auto' or an integer >= 1)`,
      );
    });
  }
  it("threads: 2 with dtype 'float64' or shared: false is refused, naming the value", () => {
    assert.throws(() => new ParamStore({ w: 4 }, { dtype: 'float64', threads: 2 }), /^RangeError: ParamStore: invalid threads: 2 \(expected false, 'auto' or 1 for dtype 'float64'/);
    assert.throws(() => new ParamStore({ w: 4 }, { shared: false, threads: 2 }), /^RangeError: ParamStore: invalid threads: 2 \(expected false, 'auto' or 1 with shared: false/);
  });
  it('threads: 1 and false are one thread; shared memory only when asked', () => {
    for (const threads of [1, false] as const) {
      const store = new ParamStore({ w: TOTAL }, { threads });
      assert.equal(store.threads, 1);
      assert.equal(store.shared, false);
    }
  });
});

describe('a script with a large store', { skip: threadSupport() }, () => {
  it('exits as soon as it ends: the workers never keep the process alive', async () => {
    const script = `
      import { Adam, ParamStore, AUTO_MIN_ELEMENTS } from 'nesterov';
      const store = new ParamStore({ w: 2 * AUTO_MIN_ELEMENTS });
      store.grads.w.fill(1);
      const opt = new Adam({ lr: 1e-3 });
      let most = 0;
      for (let i = 0; i < 3000 && most < store.threads; i++) {
        opt.update(store.params, store.grads);
        most = Math.max(most, opt.threadsUsed);
        if (i % 20 === 19) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      process.stdout.write(JSON.stringify({ most, threads: store.threads, end: Date.now() }));
    `;
    const child = spawn(process.execPath, ['--conditions=nesterov-source', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));
    const exited = Date.now();
    clearTimeout(killer);
    assert.equal(code, 0, err);
    const { most, threads, end } = JSON.parse(out) as { most: number; threads: number; end: number };
    assert.equal(threads, AUTO);
    assert.equal(most, AUTO, 'the steps ran on every core');
    assert.ok(exited - end < 3000, `the process exited ${exited - end} ms after its script ended`);
  });
});

describe("the workers' wait for a command", () => {
  it('a late wake-up with no new command does not run the last command again', async () => {
    // The caller bumps the generation, is descheduled, and notifies after the worker has
    // already run that command and gone back to waiting: the worker must wait on.
    const control = new Int32Array(new SharedArrayBuffer(64));
    const helper = new Worker(
      `const { workerData: { control } } = require('node:worker_threads');
       const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
       sleep(150); Atomics.notify(control, 0);
       sleep(300); Atomics.add(control, 0, 1); Atomics.notify(control, 0);`,
      { eval: true, workerData: { control } },
    );
    const start = Date.now();
    const generation = nextGeneration(control, 0);
    const waited = Date.now() - start;
    await helper.terminate();
    assert.equal(generation, 1);
    assert.ok(waited >= 400, `returned after ${waited} ms, before the new command`);
  });
});

describe('a pool of your own', { skip: threadSupport() }, () => {
  it('startThreads: one pool attached to two stores steps each over its own memory', async () => {
    const { startThreads } = await import('nesterov/node');
    const pool = await startThreads(2);
    try {
      const make = () => new Nesterov({ lr: 0.1, backend: 'wasm' });
      const shapes = { w: 4096 };
      const pairs = [0, 1].map((k) => {
        const [one, split] = [make(), make()];
        const stores = [new ParamStore(shapes, { threads: false }), new ParamStore(shapes, { shared: true, threads: false })] as const;
        for (const store of stores) {
          store.params.w.fill(k + 1);
          store.grads.w.fill(k === 0 ? 0.5 : -2);
        }
        return { one, split, stores };
      });
      for (const { stores } of pairs) pool.attach(stores[1]);
      for (let t = 0; t < 3; t++) {
        for (const { one, split, stores } of pairs) {
          one.update(stores[0].params, stores[0].grads);
          split.update(stores[1].params, stores[1].grads);
          assert.equal(split.threadsUsed, 2);
        }
      }
      for (const { stores } of pairs) assert.deepEqual(stores[1].params.w, stores[0].params.w);
    } finally {
      await pool.close();
    }
  });
});

/**
 * Threads (nesterov/node): a kernel call split across two threads over shared memory
 * gives the same bits as one thread, for every rule and variant.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ParamStore } from 'nesterov';
import { chunkOf, startThreads, type ThreadPool } from '../src/node/threads.ts';
import { REGISTRY } from './registry.ts';

describe('threads', () => {
  let pool: ThreadPool;
  before(async () => {
    pool = await startThreads(2);
  });
  after(async () => {
    await pool.close();
  });

  it('chunks cover [0, n) without overlap, on 16-element boundaries', () => {
    for (const n of [0, 1, 15, 16, 17, 1000, 100003]) {
      for (const parts of [2, 3, 4]) {
        let next = 0;
        for (let part = 0; part < parts; part++) {
          const [start, end] = chunkOf(n, part, parts);
          assert.equal(start, next);
          assert.ok(start % 16 === 0 || start === n);
          next = end;
        }
        assert.equal(next, n);
      }
    }
  });

  for (const entry of REGISTRY) {
    it(`${entry.id}: two threads equal one thread, bit for bit`, () => {
      const shapes = { W: 100003, b: 37, c: 1 };
      // A rule without WebAssembly kernels (Adafactor) runs its JS loops over the store.
      const backend = entry.make(0.01).rule.stepWasm === undefined ? 'auto' : 'wasm';
      const a = entry.make(0.01, { backend });
      const b = entry.make(0.01, { backend });
      const single = new ParamStore(shapes, { shared: true, stateBuffers: [a] });
      const split = new ParamStore(shapes, { shared: true, stateBuffers: [b] });
      for (const store of [single, split]) {
        for (const name of store.names) {
          const p = store.params[name]!;
          for (let i = 0; i < p.length; i++) p[i] = Math.sin(i + name.length);
        }
      }
      pool.attach(split);
      for (let t = 0; t < 5; t++) {
        for (const store of [single, split]) {
          for (const name of store.names) {
            const g = store.grads[name]!;
            for (let i = 0; i < g.length; i++) g[i] = Math.cos(i * 0.3 + t);
          }
        }
        a.update(single.params, single.grads);
        b.update(split.params, split.grads);
      }
      pool.detach(split);
      for (const name of single.names) assert.deepEqual(split.params[name], single.params[name], name);
      assert.deepEqual(b.stateDict(), a.stateDict());
    });
  }

  it('refuses a store without shared memory', () => {
    assert.throws(() => pool.attach(new ParamStore({ w: 4 })), /must be float32 with \{ shared: true \}/);
  });
});

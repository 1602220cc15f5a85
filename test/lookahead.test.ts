/**
 * Lookahead: the wrapper's arithmetic by hand, what counts as a step, its
 * error table, bad calls and bad saved states that change nothing, bit-identical resume
 * (plain arrays and a ParamStore on the wasm kernels), and no allocation after the first
 * step. Its agreement with the paper's Algorithm 1 over 60 steps is in
 * reference-lion-lamb.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, Lion, Lookahead, ParamStore, SGD, StateError, UpdateError, type LookaheadStateDict } from 'nesterov';
import { youngGenerationGrowth } from './helpers.ts';

describe('the sync, by hand', () => {
  it('SGD lr 0.1, k 2, alpha 0.5, g = 1: p = -0.1, then s = 0 + 0.5 (-0.2 - 0) = -0.1 and p = s; then -0.2, s = -0.1 + 0.5 (-0.3 + 0.1) = -0.2', () => {
    const opt = new Lookahead(new SGD({ lr: 0.1 }), { k: 2, alpha: 0.5 });
    const p = { w: new Float64Array([0]) };
    const g = { w: new Float64Array([1]) };
    const expected = [
      [-0.1, 1, 0], // p, stepsSinceSync, slow
      [-0.1, 0, -0.1],
      [-0.2, 1, -0.1],
      [-0.2, 0, -0.2],
    ] as const;
    for (const [param, since, slow] of expected) {
      assert.equal(opt.update(p, g), true);
      assert.ok(Math.abs(p.w[0]! - param) < 1e-15, `p ${p.w[0]} expected ${param}`);
      assert.equal(opt.stepsSinceSync, since);
      assert.ok(Math.abs(opt.slowWeights('w')![0]! - slow) < 1e-15, `slow ${opt.slowWeights('w')![0]}`);
    }
    // After a sync the fast weights are the slow ones, bit for bit.
    assert.equal(p.w[0], opt.slowWeights('w')![0]);
  });

  it("a step the inner optimizer skips (nonFinite: 'skip') does not count towards k", () => {
    const opt = new Lookahead(new SGD({ lr: 0.1, nonFinite: 'skip' }), { k: 2, alpha: 0.5 });
    const p = { w: new Float64Array([0]) };
    assert.equal(opt.update(p, { w: new Float64Array([1]) }), true);
    assert.equal(opt.update(p, { w: new Float64Array([NaN]) }), false);
    assert.equal(opt.stepsSinceSync, 1);
    assert.equal(p.w[0], -0.1);
    assert.equal(opt.update(p, { w: new Float64Array([1]) }), true);
    // Synced after the second applied step: s = 0 + 0.5 (-0.2 - 0).
    assert.equal(opt.stepsSinceSync, 0);
    assert.equal(p.w[0], -0.1);
  });
});

describe('options: errors name the option and the value', () => {
  const cases: [unknown, unknown, string, typeof RangeError | typeof TypeError][] = [
    [new SGD(), { k: 0 }, 'Lookahead: invalid k: 0 (expected an integer >= 1)', RangeError],
    [new SGD(), { k: 2.5 }, 'Lookahead: invalid k: 2.5 (expected an integer >= 1)', RangeError],
    [new SGD(), { k: '5' }, 'Lookahead: invalid k: "5" (expected an integer >= 1)', RangeError],
    [new SGD(), { alpha: 0 }, 'Lookahead: invalid alpha: 0 (expected a number in (0, 1])', RangeError],
    [new SGD(), { alpha: 1.5 }, 'Lookahead: invalid alpha: 1.5 (expected a number in (0, 1])', RangeError],
    [new SGD(), { alpha: NaN }, 'Lookahead: invalid alpha: NaN (expected a number in (0, 1])', RangeError],
    [new SGD(), { steps: 5 }, "Lookahead: unknown option 'steps' (known options: k, alpha)", RangeError],
    [{ update() {} }, {}, 'Lookahead: inner must be an optimizer (with update, stateDict and loadStateDict), got an object', TypeError],
    [undefined, {}, 'Lookahead: inner must be an optimizer (with update, stateDict and loadStateDict), got undefined', TypeError],
  ];
  for (const [inner, options, message, type] of cases) {
    it(message, () => {
      assert.throws(
        () => new Lookahead(inner as SGD, options as { k: number }),
        (error: unknown) => error instanceof type && error.message === message,
      );
    });
  }
  it('defaults are the paper\'s: k 5, alpha 0.5', () => {
    const opt = new Lookahead(new SGD());
    assert.equal(opt.k, 5);
    assert.equal(opt.alpha, 0.5);
  });
});

function bytesOf(values: ArrayLike<number>): string {
  return Buffer.from(Float64Array.from(values).buffer).toString('hex');
}

describe('a bad call changes nothing', () => {
  it('a gradient the inner optimizer refuses: no slow weights are kept, params as they were', () => {
    const opt = new Lookahead(new Adam(), { k: 2 });
    const p = { w: new Float32Array([1, 2, 3]) };
    assert.throws(() => opt.update(p, { w: new Float32Array(2) }), (error: unknown) => error instanceof UpdateError && error.message === "Adam.update: gradient 'w' has length 2 but the parameter has length 3");
    assert.equal(opt.slowWeights('w'), undefined);
    assert.deepEqual(Array.from(p.w), [1, 2, 3]);
    assert.equal(opt.stateDict().stepsSinceSync, 0);
  });

  it('params that are not a set: the inner optimizer\'s message', () => {
    const opt = new Lookahead(new Adam());
    assert.throws(
      () => opt.update(null as unknown as { w: Float32Array }, {}),
      (error: unknown) => error instanceof TypeError && error.message === 'Adam.update: params must be an object or a Map of named Float32Array/Float64Array, got null',
    );
  });

  it('a parameter that no longer matches its slow weights: an error naming it, nothing written', () => {
    const opt = new Lookahead(new Adam(), { k: 3 });
    opt.update({ w: new Float32Array([1, 2, 3]) }, { w: new Float32Array([0.1, 0.2, 0.3]) });
    const before = opt.stateDict();
    const p = { w: new Float32Array([1, 2]) };
    assert.throws(
      () => opt.update(p, { w: new Float32Array([0.1, 0.2]) }),
      (error: unknown) =>
        error instanceof UpdateError && error.param === 'w' &&
        error.message === "Lookahead.update: parameter 'w' is a Float32Array of length 2, but its slow weights are a Float32Array of length 3 (call reset('w'))",
    );
    assert.deepEqual(opt.stateDict(), before);
    assert.deepEqual(Array.from(p.w), [1, 2]);
  });
});

/** A deterministic gradient of step t. */
function fillGrads(grads: Record<string, Float32Array>, t: number): void {
  for (const [name, g] of Object.entries(grads)) for (let i = 0; i < g.length; i++) g[i] = Math.sin(0.3 * t + i + name.length);
}

describe('resume: save, load into a new wrapper, continue: bit-identical to the uninterrupted run', () => {
  for (const kind of ['plain', 'store-wasm'] as const) {
    it(`${kind}: Lookahead(Adam) k 5 over 13 steps, saved after 7 (between syncs)`, () => {
      const make = () => new Lookahead(new Adam({ lr: 0.01, backend: kind === 'plain' ? 'js' : 'wasm' }), { k: 5, alpha: 0.5 });
      const setup = (): { params: Record<string, Float32Array>; grads: Record<string, Float32Array> } => {
        if (kind === 'plain') {
          const params = { W: Float32Array.from({ length: 37 }, (_, i) => Math.cos(i)), b: Float32Array.from({ length: 5 }, (_, i) => i / 7) };
          return { params, grads: { W: new Float32Array(37), b: new Float32Array(5) } };
        }
        const store = new ParamStore({ W: 37, b: 5 });
        store.params.W!.set(Float32Array.from({ length: 37 }, (_, i) => Math.cos(i)));
        store.params.b!.set(Float32Array.from({ length: 5 }, (_, i) => i / 7));
        return { params: store.params as Record<string, Float32Array>, grads: store.grads as Record<string, Float32Array> };
      };
      const whole = setup();
      const uninterrupted = make();
      for (let t = 0; t < 13; t++) {
        fillGrads(whole.grads, t);
        uninterrupted.update(whole.params, whole.grads);
      }
      const parts = setup();
      const first = make();
      for (let t = 0; t < 7; t++) {
        fillGrads(parts.grads, t);
        first.update(parts.params, parts.grads);
      }
      const saved = first.stateDict();
      assert.equal(saved.stepsSinceSync, 2);
      // The first process is gone: its optimizer gives the store's state regions back.
      first.inner.reset();
      const second = make();
      second.loadStateDict(saved);
      for (let t = 7; t < 13; t++) {
        fillGrads(parts.grads, t);
        second.update(parts.params, parts.grads);
      }
      for (const name of ['W', 'b']) assert.equal(bytesOf(parts.params[name]!), bytesOf(whole.params[name]!), name);
      assert.deepEqual(second.stateDict(), uninterrupted.stateDict());
    });
  }

  it('the saved state is a copy: later steps do not change it', () => {
    const opt = new Lookahead(new Lion({ lr: 0.1 }), { k: 2 });
    const p = { w: new Float64Array([1, -1]) };
    const g = { w: new Float64Array([0.5, 0.5]) };
    opt.update(p, g);
    const saved = opt.stateDict();
    const slow = Array.from(saved.slow.w!);
    opt.update(p, g);
    opt.update(p, g);
    assert.deepEqual(Array.from(saved.slow.w!), slow);
    assert.deepEqual(slow, [1, -1]);
  });
});

describe('loadStateDict: a state that does not fit throws a StateError, and nothing changes', () => {
  const prepare = () => {
    const opt = new Lookahead(new Adam({ lr: 0.01 }), { k: 5, alpha: 0.5 });
    const p = { W: new Float64Array([1, 2, 3]), b: new Float64Array([0.5]) };
    for (let t = 0; t < 3; t++) opt.update(p, { W: new Float64Array([0.1, -0.2, 0.3 * t]), b: new Float64Array([t]) });
    return opt;
  };
  const good = prepare().stateDict();
  const edit = (change: (state: Record<string, unknown>) => void): unknown => {
    const copy = { ...good, slow: { ...good.slow } } as unknown as Record<string, unknown>;
    change(copy);
    return copy;
  };
  const cases: [string, unknown, string][] = [
    ['not an object', 'state', 'Lookahead.loadStateDict: the state must be an object, got "state"'],
    ['an optimizer state', new SGD().stateDict(), 'Lookahead.loadStateDict: not a Lookahead state (format "nesterov/optimizer-state", optimizer "SGD")'],
    ['another k', edit((s) => { s.k = 3; }), 'Lookahead.loadStateDict: the state was saved with k 3, this Lookahead uses 5'],
    ['another alpha', edit((s) => { s.alpha = 0.8; }), 'Lookahead.loadStateDict: the state was saved with alpha 0.8, this Lookahead uses 0.5'],
    ['a count of k', edit((s) => { s.stepsSinceSync = 5; }), 'Lookahead.loadStateDict: invalid stepsSinceSync: 5 (expected an integer in [0, 4])'],
    ['a NaN slow weight', edit((s) => { (s.slow as Record<string, Float64Array>).W = new Float64Array([1, NaN, 3]); }), "Lookahead.loadStateDict: the slow weights of 'W' are not finite at index 1 (NaN)"],
    ['a slow array', edit((s) => { (s.slow as Record<string, unknown>).W = [1, 2, 3]; }), "Lookahead.loadStateDict: the slow weights of 'W' are an Array of length 3, expected a Float32Array or Float64Array"],
    ['a missing slow weight', edit((s) => { delete (s.slow as Record<string, unknown>).b; }), 'Lookahead.loadStateDict: slow weights for [W] but the inner state has parameters [W, b]'],
    ['a slow weight of another length', edit((s) => { (s.slow as Record<string, Float64Array>).W = new Float64Array(2); }), "Lookahead.loadStateDict: the slow weights of 'W' are 2 float64, the inner state's are 3 \"float64\""],
    ['an inner state of another optimizer', edit((s) => {
      const sgd = new SGD();
      sgd.update({ W: new Float64Array(3), b: new Float64Array(1) }, { W: new Float64Array(3), b: new Float64Array(1) });
      s.inner = sgd.stateDict();
    }), 'Adam.loadStateDict: the state was saved by SGD, not Adam'],
  ];
  for (const [what, state, message] of cases) {
    it(`${what}: ${message}`, () => {
      const opt = prepare();
      const before = opt.stateDict();
      assert.throws(() => opt.loadStateDict(state), (error: unknown) => error instanceof StateError && error.message === message);
      assert.deepEqual(opt.stateDict(), before);
    });
  }
  it('the good state loads (the table above differs from it in one field each)', () => {
    const opt = new Lookahead(new Adam({ lr: 0.01 }), { k: 5, alpha: 0.5 });
    opt.loadStateDict(good);
    assert.deepEqual(opt.stateDict(), good);
    assert.equal((good as LookaheadStateDict).stepsSinceSync, 3);
  });
});

describe('allocation', () => {
  it('an update after the first allocates nothing (Lookahead(Lion), k 3: syncs included)', async () => {
    const opt = new Lookahead(new Lion({ lr: (t) => 0.001 / (1 + 0.001 * t) }), { k: 3, alpha: 0.5 });
    const { bytes: young, collections: windowCollections } = await youngGenerationGrowth(opt);
    // One 16-byte boxed number per step would be 800 KB.
    assert.equal(windowCollections, 0, `${young} bytes`);
    assert.ok(young < 16 * 1024, `${young} bytes in 50,000 steps`);
  });
});

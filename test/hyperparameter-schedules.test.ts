/**
 * Every numeric hyperparameter takes a schedule `(step) => value` of the 0-based update
 * count, as lr does: evaluated once per step, checked by the rule's own validation at
 * that step, before anything is written. Expected values are derived by hand (the
 * arithmetic in the comments, dyadic numbers where the result is exact) or from the
 * formulas in the rules' doc comments written out independently; the rest are
 * behavioural contracts (a schedule equals a constant per step; a refused step writes
 * nothing).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Adam,
  AdaGrad,
  EMA,
  Lookahead,
  Muon,
  NAdam,
  Nesterov,
  ParamStore,
  RMSProp,
  Rprop,
  SGD,
  ScheduleFreeAdamW,
  ScheduleFreeSGD,
  UpdateError,
  partition,
  wasmUnavailableReason,
  type OptimizerLike,
  type ParamSet,
} from 'nesterov';
import { assertClose } from './helpers.ts';

const copyOf = (set: Record<string, Float64Array | Float32Array>): Record<string, Float64Array | Float32Array> =>
  Object.fromEntries(Object.entries(set).map(([k, v]) => [k, v.slice()]));

/** Bit-identical arrays (NaN and -0 included). */
function assertSameBits(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) assert.ok(Object.is(actual[i], expected[i]), `${label}[${i}]: ${actual[i]} is not ${expected[i]}`);
}

/** A refused update must throw an UpdateError naming these words and leave params and state as they were. */
function assertRefusedUnchanged(opt: OptimizerLike, params: ParamSet, grads: ParamSet, words: readonly (string | RegExp)[]): void {
  const before = Object.fromEntries([...(params instanceof Map ? params : Object.entries(params))].map(([k, v]) => [k, (v as Float64Array).slice()]));
  const state = opt.stateDict();
  assert.throws(() => opt.update(params, grads), (error: unknown) => {
    assert.ok(error instanceof UpdateError, `an UpdateError, got ${String(error)}`);
    for (const word of words) {
      if (typeof word === 'string') assert.ok(error.message.includes(word), `"${error.message}" names ${word}`);
      else assert.match(error.message, word);
    }
    return true;
  });
  for (const [name, array] of params instanceof Map ? params : Object.entries(params)) assertSameBits(array as Float64Array, before[name]!, `param ${name}`);
  assert.deepEqual(opt.stateDict(), state, 'the state is as it was');
}

describe('a schedule of momentum enters NAG as the constant does', () => {
  it("Nesterov 'nag' with mu_t = 0.5, 0.25, 0.75: the stored form p <- p + mu_t^2 v - (1 + mu_t) lr g, v <- mu_t v - lr g", () => {
    const mus = [0.5, 0.25, 0.75];
    const opt = new Nesterov({ lr: 0.5, momentum: (t) => mus[t]! });
    const p = { w: new Float64Array([1]) };
    const grads = [1, 2, -1];
    // step 0 (mu 0.5, g 1):   p = 1 + 0.25 * 0 - 1.5 * 0.5 * 1 = 0.25;                      v = 0.5 * 0 - 0.5 * 1 = -0.5
    // step 1 (mu 0.25, g 2):  p = 0.25 + 0.0625 * (-0.5) - 1.25 * 0.5 * 2 = -1.03125;        v = 0.25 * (-0.5) - 0.5 * 2 = -1.125
    // step 2 (mu 0.75, g -1): p = -1.03125 + 0.5625 * (-1.125) + 1.75 * 0.5 = -0.7890625;    v = 0.75 * (-1.125) + 0.5 = -0.34375
    const expected = [
      [0.25, -0.5],
      [-1.03125, -1.125],
      [-0.7890625, -0.34375],
    ];
    grads.forEach((g, t) => {
      opt.update(p, { w: new Float64Array([g]) });
      assert.equal(p.w[0], expected[t]![0], `p after step ${t}`);
      assert.equal((opt.stateOf('w') as { velocity: Float64Array }).velocity[0], expected[t]![1], `v after step ${t}`);
    });
  });

  it("Nesterov 'pytorch' with mu_t: b <- mu_t b + g (b = g at first), p <- p - lr (g + mu_t b), as torch with param_groups[0]['momentum'] changed between steps", () => {
    const mus = [0.5, 0.25, 0.75];
    const opt = new Nesterov({ variant: 'pytorch', lr: 0.5, momentum: (t) => mus[t]! });
    const p = { w: new Float64Array([1]) };
    // step 0 (mu 0.5, g 1):   b = 1;                         p = 1 - 0.5 * (1 + 0.5 * 1) = 0.25
    // step 1 (mu 0.25, g 2):  b = 0.25 * 1 + 2 = 2.25;       p = 0.25 - 0.5 * (2 + 0.25 * 2.25) = -1.03125
    // step 2 (mu 0.75, g -1): b = 0.75 * 2.25 - 1 = 0.6875;  p = -1.03125 - 0.5 * (-1 + 0.75 * 0.6875) = -0.7890625
    const expected = [0.25, -1.03125, -0.7890625];
    [1, 2, -1].forEach((g, t) => {
      opt.update(p, { w: new Float64Array([g]) });
      assert.equal(p.w[0], expected[t], `p after step ${t}`);
    });
  });

  it('a schedule that returns the constant gives the constant trajectory bit for bit (plain and ParamStore, JS and wasm)', () => {
    const backends = wasmUnavailableReason() === undefined ? (['js', 'wasm'] as const) : (['js'] as const);
    for (const backend of backends) {
      const make = (momentum: number | ((t: number) => number)) => new Nesterov({ lr: 0.05, momentum, backend });
      const a = new ParamStore({ w: [7], b: [3] }, { stateBuffers: 1 });
      const b = new ParamStore({ w: [7], b: [3] }, { stateBuffers: 1 });
      for (const store of [a, b]) {
        store.params.w.set([1, -2, 3, 0.5, -0.25, 2, 1]);
        store.params.b.set([0.1, 0.2, -0.3]);
      }
      const constant = make(0.9);
      const scheduled = make(() => 0.9);
      for (let t = 0; t < 5; t++) {
        for (const store of [a, b]) {
          store.grads.w.set(store.params.w.map((x) => 2 * x));
          store.grads.b.set(store.params.b.map((x) => x - 1));
        }
        constant.update(a.params, a.grads);
        scheduled.update(b.params, b.grads);
      }
      assertSameBits(b.params.w, a.params.w, `${backend} w`);
      assertSameBits(b.params.b, a.params.b, `${backend} b`);
    }
  });
});

describe('Adam and NAdam with scheduled betas and eps, against the formulas written out', () => {
  it('Adam: beta1_t and eps_t enter m, the bias correction 1 - beta1_t^t and the denominator (torch with param_groups changed between steps)', () => {
    const beta1s = [0.5, 0.8, 0.9];
    const epss = [1e-3, 1e-2, 0.1];
    const beta2 = 0.999;
    const lr = 0.1;
    const opt = new Adam({ lr, beta1: (t) => beta1s[t]!, eps: (t) => epss[t]!, beta2 });
    const p = { w: new Float64Array([1, -1]) };
    const grads = [[1, -2], [-0.5, 0.25], [2, 1]];
    // torch.optim.Adam's single-tensor step, with t = step + 1:
    //   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
    //   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    const x = [1, -1];
    const m = [0, 0];
    const v = [0, 0];
    grads.forEach((g, k) => {
      const t = k + 1;
      const b1 = beta1s[k]!;
      for (let i = 0; i < 2; i++) {
        m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
        v[i] = beta2 * v[i]! + (1 - beta2) * g[i]! * g[i]!;
        x[i] = x[i]! - (lr / (1 - b1 ** t)) * m[i]! / (Math.sqrt(v[i]!) / Math.sqrt(1 - beta2 ** t) + epss[k]!);
      }
      opt.update(p, { w: new Float64Array(g) });
      assertClose(p.w, x, 1e-14, `p after step ${k}`);
      assertClose((opt.stateOf('w') as { expAvg: Float64Array }).expAvg, m, 1e-14, `m after step ${k}`);
    });
  });

  it("NAdam: the mu product multiplies each step's mu_t = beta1_t (1 - 0.5 * 0.96^(t psi)) with that step's beta1, as torch's mu_product does when the betas change", () => {
    const beta1s = [0.9, 0.5, 0.7];
    const psi = 0.004;
    const beta2 = 0.999;
    const eps = 1e-8;
    const lr = 0.01;
    const opt = new NAdam({ lr, beta1: (t) => beta1s[t]!, beta2, eps, momentumDecay: psi });
    const p = { w: new Float64Array([0.5]) };
    const grads = [1, -3, 2];
    // torch's NAdam (1.13 foreach / later releases), t = step + 1, b1 = this step's beta1:
    //   mu = b1 (1 - 0.5 * 0.96^(t psi));  mu_next = b1 (1 - 0.5 * 0.96^((t + 1) psi));  P *= mu
    //   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  d = sqrt(v / (1 - b2^t)) + eps
    //   p -= lr (1 - mu) / (1 - P) g / d + lr mu_next / (1 - P mu_next) m / d
    let x = 0.5;
    let m = 0;
    let v = 0;
    let product = 1;
    grads.forEach((g, k) => {
      const t = k + 1;
      const b1 = beta1s[k]!;
      const mu = b1 * (1 - 0.5 * 0.96 ** (t * psi));
      const muNext = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi));
      product *= mu;
      m = b1 * m + (1 - b1) * g;
      v = beta2 * v + (1 - beta2) * g * g;
      const d = Math.sqrt(v / (1 - beta2 ** t)) + eps;
      x = x - (lr * (1 - mu)) / (1 - product) * g / d - (lr * muNext) / (1 - product * muNext) * m / d;
      opt.update(p, { w: new Float64Array([g]) });
      assertClose([(opt.stateOf('w') as { muProduct: number }).muProduct], [product], 1e-15, `muProduct after step ${k}`);
      assertClose(p.w, [x], 1e-13, `p after step ${k}`);
    });
    // The product holds 0.9 mu-ish * 0.5 mu-ish * 0.7 mu-ish: not what a constant beta1 of 0.7 would give.
    const constant = 0.7 ** 3 * [1, 2, 3].reduce((acc, t) => acc * (1 - 0.5 * 0.96 ** (t * psi)), 1);
    assert.notEqual((opt.stateOf('w') as { muProduct: number }).muProduct, constant);
  });
});

describe('a scheduled value the rule refuses: an UpdateError at that step, nothing written', () => {
  const momentum = (t: number): number => (t < 40 ? 0.9 : 1.5);

  it('plain arrays: momentum 1.5 at step 40 names the option, the value and the step', () => {
    const opt = new Nesterov({ lr: 0.01, momentum });
    const params = { w: new Float64Array([1, 2, 3]), b: new Float32Array([0.5]) as unknown as Float64Array };
    const grads = { w: new Float64Array([0.1, -0.2, 0.3]), b: new Float32Array([1]) as unknown as Float64Array };
    for (let t = 0; t < 40; t++) opt.update(params, grads);
    assert.equal(opt.stepCount, 40);
    assertRefusedUnchanged(opt, params, grads, ['momentum', '1.5', 'step 40']);
    assert.equal(opt.stepCount, 40);
    // check() refuses the same way, writing nothing.
    assert.throws(() => opt.check(params, grads), /momentum schedule returned 1\.5 at step 40/);
  });

  it('a ParamStore (JS and WebAssembly kernels): the same error, the store and its state regions unchanged', () => {
    const backends = wasmUnavailableReason() === undefined ? (['js', 'wasm'] as const) : (['js'] as const);
    for (const backend of backends) {
      const opt = new Nesterov({ lr: 0.01, momentum, backend });
      const store = new ParamStore({ w: [5], b: [2] }, { stateBuffers: [opt] });
      store.params.w.set([1, 2, 3, 4, 5]);
      store.grads.w.set([0.5, -0.5, 0.25, 1, -1]);
      store.grads.b.set([1, 2]);
      for (let t = 0; t < 40; t++) opt.update(store.params, store.grads);
      const region = new Float32Array(store.buffer.slice(0));
      assertRefusedUnchanged(opt, store.params, store.grads, ['momentum', '1.5', 'step 40']);
      assertSameBits(new Float32Array(store.buffer.slice(0)), region, `${backend}: the whole store`);
      assert.equal(opt.stepCount, 40);
    }
  });

  it('a schedule that returns something other than a number is refused at that step', () => {
    const opt = new Adam({ beta2: ((t: number) => (t === 2 ? undefined : 0.99)) as unknown as (t: number) => number });
    const params = { w: new Float64Array([1]) };
    const grads = { w: new Float64Array([1]) };
    opt.update(params, grads);
    opt.update(params, grads);
    assertRefusedUnchanged(opt, params, grads, ['beta2 schedule returned undefined at step 2']);
  });

  it('eps below 0, etaPlus at 1, a cross-option bound: each rule validates its own scheduled values', () => {
    const params = { w: new Float64Array([1]) };
    const grads = { w: new Float64Array([1]) };
    const cases: [OptimizerLike, string[]][] = [
      [new Adam({ eps: (t) => (t === 1 ? -1e-8 : 1e-8) }), ['eps', '-1e-8', 'step 1']],
      [new Rprop({ etaPlus: (t) => (t === 1 ? 1 : 1.2) }), ['etaPlus', '1', 'step 1']],
      [new Rprop({ stepSizeMax: 1, stepSizeMin: (t) => t * 2 }), ['stepSizeMin', 'step 1', 'stepSizeMax']],
      [new SGD({ weightDecay: (t) => (t === 1 ? Number.NaN : 0) }), ['weightDecay', 'NaN', 'step 1']],
    ];
    for (const [opt, words] of cases) {
      opt.update({ w: new Float64Array([1]) }, grads);
      assertRefusedUnchanged(opt, params, grads, words);
    }
  });

  it('a bad value at construction (step 0) is a RangeError naming the option', () => {
    assert.throws(() => new Nesterov({ momentum: () => 1.5 }), (error: unknown) => error instanceof RangeError && /momentum schedule returned 1\.5 at step 0/.test(error.message));
  });
});

describe('overrides take schedules', () => {
  it("each parameter follows its group's schedule, as a separate optimizer with the same options would", () => {
    const bMomentum = (t: number): number => [0.5, 0.25, 0.75, 0.125][t]!;
    const opt = new Nesterov({ lr: 0.5, momentum: 0.9, overrides: [{ params: 'b', momentum: bMomentum, lr: (t) => 0.5 / (t + 1) }] });
    const alone = { w: new Nesterov({ lr: 0.5, momentum: 0.9 }), b: new Nesterov({ lr: (t) => 0.5 / (t + 1), momentum: bMomentum }) };
    const params = { w: new Float64Array([1, -1]), b: new Float64Array([2]) };
    const separate = { w: params.w.slice(), b: params.b.slice() };
    for (let t = 0; t < 4; t++) {
      const grads = { w: params.w.map((x) => x * 0.5), b: params.b.map((x) => x - 1) };
      const separateGrads = { w: separate.w.map((x) => x * 0.5), b: separate.b.map((x) => x - 1) };
      opt.update(params, grads);
      alone.w.update({ w: separate.w }, { w: separateGrads.w });
      alone.b.update({ b: separate.b }, { b: separateGrads.b });
    }
    assertSameBits(params.w, separate.w, 'w (defaults)');
    assertSameBits(params.b, separate.b, 'b (override)');
    assert.equal(opt.hyperparameters('b', 3).momentum, 0.125);
    assert.equal(opt.hyperparameters('w', 3).momentum, 0.9);
    // The next step's value is schedule(4), which this schedule does not define.
    assert.throws(() => opt.hyperparameters('b'), /momentum schedule of overrides\[0\] returned undefined at step 4/);
  });

  it("an override's bad scheduled value names the override and the step; nothing is written", () => {
    const opt = new Adam({ overrides: [{ params: /^b/, beta1: (t) => (t < 3 ? 0.9 : 1) }] });
    const params = { w: new Float64Array([1, 2]), b: new Float64Array([3]) };
    const grads = { w: new Float64Array([0.1, 0.2]), b: new Float64Array([0.3]) };
    for (let t = 0; t < 3; t++) opt.update(params, grads);
    assertRefusedUnchanged(opt, params, grads, ['beta1 schedule of overrides[0] returned 1 at step 3']);
  });
});

describe('all or nothing across wrappers', () => {
  it('partition: a bad schedule in a later member refuses the step before the earlier member writes', () => {
    const first = new SGD({ lr: 0.1 });
    const second = new Nesterov({ lr: 0.1, momentum: (t) => (t < 2 ? 0.9 : -0.1) });
    const opt = partition({ w: 'first', b: 'second' }, { first, second });
    const params = { w: new Float64Array([1, 2]), b: new Float64Array([3]) };
    const grads = { w: new Float64Array([1, 1]), b: new Float64Array([1]) };
    opt.update(params, grads);
    opt.update(params, grads);
    assertRefusedUnchanged(opt, params, grads, ['momentum', '-0.1', 'step 2']);
    assert.equal(first.stepCount, 2);
  });

  it('partition over a ParamStore: the same', () => {
    const first = new SGD({ lr: 0.1 });
    const second = new Adam({ eps: (t) => (t < 1 ? 1e-8 : -1) });
    const opt = partition({ w: 'first', b: 'second' }, { first, second });
    const store = new ParamStore({ w: [3], b: [2] }, { stateBuffers: [opt] });
    store.params.w.set([1, 2, 3]);
    store.grads.w.set([1, 1, 1]);
    store.grads.b.set([1, 1]);
    opt.update(store.params, store.grads);
    const bytes = new Uint8Array(store.buffer.slice(0));
    assertRefusedUnchanged(opt, store.params, store.grads, ['eps', '-1', 'step 1']);
    assert.deepEqual(new Uint8Array(store.buffer.slice(0)), bytes);
  });

  it('Lookahead and EMA around a scheduled optimizer: a refused step changes neither the params nor their state', () => {
    const params = { w: new Float64Array([1, 2]) };
    const grads = { w: new Float64Array([0.5, -0.5]) };
    for (const make of [
      () => new Lookahead(new Nesterov({ momentum: (t) => (t < 3 ? 0.9 : 1) }), { k: 2, alpha: 0.5 }),
      () => new EMA(new Nesterov({ momentum: (t) => (t < 3 ? 0.9 : 1) }), { decay: 0.5 }),
    ]) {
      const opt = make();
      const p = copyOf(params) as typeof params;
      for (let t = 0; t < 3; t++) opt.update(p, grads);
      assertRefusedUnchanged(opt, p, grads, ['momentum', 'step 3']);
    }
  });
});

describe('options that shape the state take no schedule', () => {
  const refusals: [string, () => unknown, RegExp][] = [
    ['RMSProp momentum (whether momentumBuffer exists)', () => new RMSProp({ momentum: () => 0.5 }), /RMSProp: momentum cannot be a schedule: whether the momentumBuffer exists/],
    ['AdaGrad initialAccumulatorValue (what sum starts at)', () => new AdaGrad({ initialAccumulatorValue: () => 0.1 }), /AdaGrad: initialAccumulatorValue cannot be a schedule/],
    ['Adam amsgrad (a boolean)', () => new Adam({ amsgrad: (() => true) as unknown as boolean }), /Adam: amsgrad cannot be a schedule/],
    ['a variant', () => new Nesterov({ variant: (() => 'nag') as unknown as 'nag' }), /Nesterov: variant cannot be a schedule/],
    ['a boolean that shapes nothing still takes no schedule', () => new SGD({ maximize: (() => true) as unknown as boolean }), /SGD: maximize cannot be a schedule: only numeric options take one/],
    ['Schedule-Free SGD momentum (eval/train convert with it)', () => new ScheduleFreeSGD({ momentum: () => 0.9 }), /ScheduleFreeSGD: momentum cannot be a schedule: the parameters hold y/],
    ['Schedule-Free AdamW beta1', () => new ScheduleFreeAdamW({ beta1: () => 0.9 }), /ScheduleFreeAdamW: beta1 cannot be a schedule/],
    ['an override too', () => new RMSProp({ momentum: 0.5, overrides: [{ params: 'b', momentum: () => 0.5 }] }), /RMSProp: momentum of overrides\[0\] cannot be a schedule/],
    ["Muon's nesterov (a boolean)", () => new Muon({ nesterov: (() => true) as unknown as boolean }), /Muon: nesterov cannot be a schedule/],
  ];
  for (const [label, make, message] of refusals) {
    it(label, () => assert.throws(make, message));
  }

  it('the types say the same: a schedule where a boolean or a string belongs does not compile', () => {
    // @ts-expect-error: amsgrad is a boolean
    assert.throws(() => new Adam({ amsgrad: () => true }), /amsgrad cannot be a schedule/);
    // @ts-expect-error: variant is a string
    assert.throws(() => new Nesterov({ variant: () => 'nag' }), /variant cannot be a schedule/);
    // @ts-expect-error: so is it in setHyperparameters
    assert.throws(() => new SGD().setHyperparameters({ maximize: () => true }), /maximize cannot be a schedule/);
  });

  it('the other numeric options of those rules do take one (RMSProp alpha and eps, Schedule-Free SGD warmupSteps)', () => {
    const params = { w: new Float64Array([1]) };
    const grads = { w: new Float64Array([1]) };
    new RMSProp({ alpha: (t) => 0.9 + t * 0.01, eps: () => 1e-6 }).update(params, grads);
    new ScheduleFreeSGD({ warmupSteps: () => 3, r: () => 0.5 }).update(params, grads);
    assert.throws(() => new ScheduleFreeSGD({ warmupSteps: () => 2.5 }), /warmupSteps/);
  });
});

describe('Muon', () => {
  const shapes = { W: [2, 3] as const };
  const make = (momentum: number | ((t: number) => number), nsSteps: number | ((t: number) => number) = 5) => new Muon({ lr: 0.1, momentum, nsSteps, shapes, backend: 'js' });
  const gradAt = (t: number) => ({ W: new Float64Array([1, -2, 0.5, t, 3, -1]) });

  it('a momentum and nsSteps schedule equals, step by step, a Muon with those constants taking the state over', () => {
    const momenta = [0.5, 0.9, 0.7];
    const steps = [5, 3, 1];
    const scheduled = make((t) => momenta[t]!, (t) => steps[t]!);
    const p = { W: new Float64Array([0.1, 0.2, 0.3, -0.1, -0.2, -0.3]) };
    const q = { W: p.W.slice() };
    let state: unknown;
    for (let t = 0; t < 3; t++) {
      scheduled.update(p, gradAt(t));
      const constant = make(momenta[t]!, steps[t]!);
      if (state !== undefined) constant.loadStateDict(state);
      constant.update(q, gradAt(t));
      state = constant.stateDict();
    }
    assertSameBits(p.W, q.W, 'W');
    assert.equal(scheduled.defaults.momentum, 0.7);
  });

  it('nsSteps 2.5 at step 2: an UpdateError, nothing written', () => {
    const opt = make(0.9, (t) => (t < 2 ? 5 : 2.5));
    const p = { W: new Float64Array([0.1, 0.2, 0.3, -0.1, -0.2, -0.3]) };
    opt.update(p, gradAt(0));
    opt.update(p, gradAt(1));
    assertRefusedUnchanged(opt, p, gradAt(2), ['nsSteps schedule returned 2.5 at step 2']);
  });

  it('shapes cannot change at run time', () => {
    assert.throws(() => make(0.9).setHyperparameters({ shapes: {} } as never), /shapes/);
  });
});

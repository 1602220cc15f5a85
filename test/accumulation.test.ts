/**
 * GradientAccumulation (optax's MultiSteps): k micro-batches equal one inner step on the
 * mean, bit for bit (float64 and float32: the mean is computed here the way the wrapper
 * documents it, the sum in double left to right, divided once, rounded once to the
 * gradient's dtype); the caller's gradients are given back unchanged; the non-finite
 * policies at accumulation time; refused calls that change nothing; option and state
 * errors; a member of a partition over a ParamStore; nested in EMA and Lookahead.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Adam,
  EMA,
  GradientAccumulation,
  Lookahead,
  Muon,
  Nesterov,
  ParamStore,
  SGD,
  ScheduleFreeAdamW,
  StateError,
  UpdateError,
  partition,
  type FloatArray,
  type OptimizerLike,
  type ParamSet,
} from 'nesterov';

function snapshot(opt: OptimizerLike, ...sets: ParamSet[]): string {
  return JSON.stringify({ sets, state: opt.stateDict() }, (_key, value: unknown) => (ArrayBuffer.isView(value) ? Array.from(value as FloatArray) : value instanceof Map ? Object.fromEntries(value) : value));
}

function expectRefused(opt: OptimizerLike, params: ParamSet, grads: ParamSet, call: () => unknown, message: RegExp, type: new (...args: never[]) => Error = UpdateError): void {
  const before = snapshot(opt, params, grads);
  assert.throws(call, (error: unknown) => error instanceof type && message.test(error.message), `expected ${type.name} ${message}`);
  assert.equal(snapshot(opt, params, grads), before, 'nothing changed (params, grads, sums, inner state)');
}

/** Micro-batch j of window w: a gradient of length 3 with values that do not add exactly. */
function microGrad(Type: { from(values: number[]): FloatArray }, w: number, j: number): FloatArray {
  return Type.from([0.1 * (j + 1) + w / 3, -Math.PI * (w + 1) / (j + 7), 1e-3 * Math.sqrt(2 + j + w)]);
}

describe('k micro-batches equal one inner step on their mean', () => {
  for (const Type of [Float64Array, Float32Array] as { from(values: number[]): FloatArray; name: string }[]) {
    it(`${Type.name}: Adam, steps 3, over 4 windows: params and Adam's state bit for bit`, () => {
      const acc = new GradientAccumulation(new Adam({ lr: 0.01 }), { steps: 3 });
      const alone = new Adam({ lr: 0.01 });
      const p = { w: Type.from([0.5, -1, 2]) };
      const q = { w: Type.from([0.5, -1, 2]) };
      for (let w = 0; w < 4; w++) {
        const grads = [0, 1, 2].map((j) => microGrad(Type, w, j));
        // the mean as documented: the sum in double, left to right, divided by k, rounded once to the dtype
        const mean = Type.from([0, 1, 2].map((i) => (grads[0]![i]! + grads[1]![i]! + grads[2]![i]!) / 3));
        for (let j = 0; j < 3; j++) {
          assert.equal(acc.isStepBoundary(), j === 2);
          assert.equal(acc.pendingSteps, j);
          const g = { w: grads[j]! };
          const copy = g.w.slice();
          assert.equal(acc.update(p, g), j === 2, `micro-batch ${j} of window ${w}: update returns whether the inner optimizer stepped`);
          assert.deepEqual(g.w, copy, 'the caller\'s gradient is given back unchanged');
          if (j < 2) assert.deepEqual(p.w, q.w, 'params untouched while accumulating');
        }
        alone.update(q, { w: mean });
        assert.deepEqual(p.w, q.w, `params after window ${w}`);
        assert.deepEqual(acc.inner.stateOf('w'), alone.stateOf('w'), `Adam's state after window ${w}`);
      }
      assert.equal(acc.inner.stepCount, 4);
    });
  }

  it('steps 1 is the inner optimizer itself', () => {
    const acc = new GradientAccumulation(new Nesterov({ lr: 0.1 }), { steps: 1 });
    const alone = new Nesterov({ lr: 0.1 });
    const p = { w: new Float32Array([1, 2]) };
    const q = { w: new Float32Array([1, 2]) };
    for (let t = 0; t < 3; t++) {
      assert.equal(acc.update(p, { w: new Float32Array([0.3, -t]) }), true);
      alone.update(q, { w: new Float32Array([0.3, -t]) });
    }
    assert.deepEqual(p.w, q.w);
  });

  it('a Map of params and grads, two parameters', () => {
    const acc = new GradientAccumulation(new SGD({ lr: 1 }), { steps: 2 });
    const p = new Map([['a', new Float64Array([0])], ['b', new Float64Array([0, 0])]]);
    acc.update(p, new Map([['a', new Float64Array([1])], ['b', new Float64Array([2, 4])]]));
    acc.update(p, new Map([['a', new Float64Array([3])], ['b', new Float64Array([0, 0])]]));
    assert.deepEqual(Array.from(p.get('a')!), [-2]);
    assert.deepEqual(Array.from(p.get('b')!), [-1, -2]);
  });
});

describe('windows', () => {
  it('a new window may step other parameters than the last; its sums start from its own first micro-batch', () => {
    const acc = new GradientAccumulation(new SGD({ lr: 1 }), { steps: 2 });
    const p = { w: new Float64Array([0]), b: new Float64Array([0]) };
    acc.update(p, { w: new Float64Array([1]), b: new Float64Array([2]) });
    acc.update(p, { w: new Float64Array([3]), b: new Float64Array([4]) });
    assert.deepEqual([p.w[0], p.b[0]], [-2, -3]);
    const only = { b: p.b };
    acc.update(only, { b: new Float64Array([10]) });
    assert.deepEqual(Object.keys(acc.stateDict().buffers), ['b']);
    acc.update(only, { b: new Float64Array([20]) });
    assert.equal(p.b[0], -18);
    acc.update(p, { w: new Float64Array([5]), b: new Float64Array([1]) });
    acc.update(p, { w: new Float64Array([7]), b: new Float64Array([1]) });
    assert.deepEqual([p.w[0], p.b[0]], [-8, -19]);
  });
});

describe("a non-finite gradient follows the inner optimizer's nonFinite at accumulation time", () => {
  it("'error': refused (UpdateError naming the gradient and index), nothing accumulated", () => {
    const acc = new GradientAccumulation(new SGD({ lr: 1 }), { steps: 3 });
    const p = { w: new Float64Array([0, 0]) };
    acc.update(p, { w: new Float64Array([1, 1]) });
    const bad = { w: new Float64Array([1, Infinity]) };
    expectRefused(acc, p, bad, () => acc.update(p, bad), /gradient 'w' is not finite at index 1 \(Infinity\)/);
    expectRefused(acc, p, bad, () => acc.check(p, bad), /not finite at index 1/);
    assert.equal(acc.pendingSteps, 1);
  });

  it("'error': a sum that overflows is refused too", () => {
    const acc = new GradientAccumulation(new SGD({ lr: 1 }), { steps: 3 });
    const p = { w: new Float64Array([0]) };
    acc.update(p, { w: new Float64Array([1.5e308]) });
    const big = { w: new Float64Array([1.5e308]) };
    expectRefused(acc, p, big, () => acc.update(p, big), /the sum of gradient 'w' over this window overflows at index 0/);
  });

  it("'skip': the micro-batch is left out and counted; the window completes with the others", () => {
    const acc = new GradientAccumulation(new SGD({ lr: 1, nonFinite: 'skip' }), { steps: 2 });
    const p = { w: new Float64Array([0]) };
    assert.equal(acc.update(p, { w: new Float64Array([1]) }), false);
    assert.equal(acc.check(p, { w: new Float64Array([NaN]) }), false);
    assert.equal(acc.update(p, { w: new Float64Array([NaN]) }), false);
    assert.equal(acc.skippedMicroBatches, 1);
    assert.equal(acc.pendingSteps, 1);
    assert.equal(acc.update(p, { w: new Float64Array([3]) }), true);
    assert.deepEqual(Array.from(p.w), [-2]);
    assert.equal(acc.inner.skippedSteps, 0);
  });

  it("'ignore': accumulated (and the NaN reaches the params)", () => {
    const acc = new GradientAccumulation(new SGD({ lr: 1, nonFinite: 'ignore' }), { steps: 2 });
    const p = { w: new Float64Array([0, 0]) };
    acc.update(p, { w: new Float64Array([NaN, 1]) });
    acc.update(p, { w: new Float64Array([1, 1]) });
    assert.ok(Number.isNaN(p.w[0]));
    assert.equal(p.w[1], -1);
  });
});

describe('a refused call changes nothing (params, grads, sums, inner state)', () => {
  it("the inner optimizer's check runs at every micro-batch: Muon without a shape is refused at the first", () => {
    const acc = new GradientAccumulation(new Muon(), { steps: 4 });
    const p = { W: new Float32Array(4) };
    const g = { W: new Float32Array([1, 2, 3, 4]) };
    expectRefused(acc, p, g, () => acc.update(p, g), /has no shape/);
  });

  it('at the window\'s last micro-batch: a Schedule-Free inner put in eval mode between micro-batches', () => {
    const acc = new GradientAccumulation(new ScheduleFreeAdamW({ lr: 0.01 }), { steps: 2 });
    const p = { w: new Float64Array([1, 2]) };
    acc.update(p, { w: new Float64Array([1, 1]) });
    acc.update(p, { w: new Float64Array([1, 1]) });
    acc.update(p, { w: new Float64Array([0.5, 0.5]) });
    acc.inner.eval(p);
    const g = { w: new Float64Array([0.25, 3]) };
    expectRefused(acc, p, g, () => acc.update(p, g), /eval mode/);
    acc.inner.train(p);
    assert.equal(acc.update(p, g), true);
  });

  it("a micro-batch with other parameters than the window's first", () => {
    const acc = new GradientAccumulation(new SGD({ lr: 1 }), { steps: 3 });
    const p = { w: new Float64Array([0]), b: new Float64Array([0]) };
    acc.update(p, { w: new Float64Array([1]), b: new Float64Array([1]) });
    const fewer = { w: p.w };
    const g = { w: new Float64Array([1]) };
    expectRefused(acc, fewer, g, () => acc.update(fewer, g), /parameter \[b\] of this window's first micro-batch missing \(1 of 3 accumulated\)/);
    const more = { ...p, c: new Float64Array([0]) };
    const g3 = { w: new Float64Array([1]), b: new Float64Array([1]), c: new Float64Array([1]) };
    expectRefused(acc, more, g3, () => acc.update(more, g3), /parameter 'c' was not in this window's first micro-batch/);
  });

  it('a gradient aliasing a parameter is refused before the mean is written (the inner check runs first)', () => {
    const acc = new GradientAccumulation(new SGD({ lr: 1 }), { steps: 2 });
    const buffer = new Float64Array(4);
    const p = { w: buffer.subarray(0, 2) };
    acc.update(p, { w: new Float64Array([1, 1]) });
    const g = { w: buffer.subarray(1, 3) };
    expectRefused(acc, p, g, () => acc.update(p, g), /shares memory/);
  });
});

describe('options and states: errors name the option and the value; a refused state changes nothing', () => {
  const cases: [() => unknown, string, typeof RangeError | typeof TypeError][] = [
    [() => new GradientAccumulation(new SGD()), 'GradientAccumulation: invalid steps: undefined (expected an integer >= 1)', RangeError],
    [() => new GradientAccumulation(new SGD(), { steps: 0 }), 'GradientAccumulation: invalid steps: 0 (expected an integer >= 1)', RangeError],
    [() => new GradientAccumulation(new SGD(), { steps: 2.5 }), 'GradientAccumulation: invalid steps: 2.5 (expected an integer >= 1)', RangeError],
    [() => new GradientAccumulation(new SGD(), { k: 2 } as never), "GradientAccumulation: unknown option 'k' (known options: steps)", RangeError],
    [() => new GradientAccumulation(null as never, { steps: 2 }), 'GradientAccumulation: inner must be an optimizer (check, update, stateDict, loadStateDict, reset, stateBuffersPerParam), got null', TypeError],
  ];
  for (const [make, message, type] of cases) {
    it(message, () => assert.throws(make, (error: unknown) => error instanceof type && error.message === message));
  }

  type Dict = ReturnType<GradientAccumulation['stateDict']>;
  const edits: [string, (d: Dict) => unknown, RegExp][] = [
    ['another steps', (d) => ({ ...d, options: { steps: 4 } }), /saved with steps 4, this GradientAccumulation uses 3/],
    ['pending 3 of 3', (d) => ({ ...d, counters: { pending: 3, skipped: 0 } }), /counters\.pending is 3, expected an integer in \[0, 2\]/],
    ['sums with nothing pending', (d) => ({ ...d, counters: { pending: 0, skipped: 0 } }), /sums of \[w\] saved with no micro-batch pending/],
    ['a float32 sum', (d) => ({ ...d, buffers: { w: new Float32Array(2) } }), /the sum of 'w' is a Float32Array, expected a Float64Array/],
    ['a NaN sum', (d) => ({ ...d, buffers: { w: new Float64Array([0, NaN]) } }), /the sum of 'w' is not finite at index 1/],
    ['a sum of another length than the inner state', (d) => ({ ...d, buffers: { w: new Float64Array(3) } }), /the sum of 'w' has length 3, the inner state's parameter 2/],
    ['counts', (d) => ({ ...d, counts: { w: 1 } }), /counts holds \[w\], expected none/],
  ];
  for (const [label, edit, message] of edits) {
    it(`loadStateDict: ${label}`, () => {
      const make = () => new GradientAccumulation(new Adam({ lr: 0.1 }), { steps: 3 });
      const source = make();
      const p = { w: new Float64Array([1, 2]) };
      for (let t = 0; t < 4; t++) source.update(p, { w: new Float64Array([0.5, t]) });
      const target = make();
      for (let t = 0; t < 5; t++) target.update(p, { w: new Float64Array([1, -t]) });
      expectRefused(target, p, {}, () => target.loadStateDict(edit(source.stateDict())), message, StateError);
    });
  }

  it("stateBuffersPerParam() is the inner optimizer's", () => {
    assert.equal(new GradientAccumulation(new Adam(), { steps: 2 }).stateBuffersPerParam(), new Adam().stateBuffersPerParam());
  });
});

describe('nested and in a partition', () => {
  it('inside a partition over a ParamStore: steps only its own parameters, as alone; the store\'s gradients are given back', () => {
    const store = new ParamStore({ W: [2, 2], b: [2] }, { stateBuffers: 2 });
    store.params.W.set([0.5, -0.25, 0.75, 1]);
    store.params.b.set([0.1, -0.2]);
    const acc = new GradientAccumulation(new Adam({ lr: 0.1 }), { steps: 2 });
    const opt = partition({ W: 'frozen', b: 'acc' }, { frozen: new SGD({ lr: 0 }), acc });
    const alone = new ParamStore({ b: [2] }, { stateBuffers: 2 });
    alone.params.b.set([0.1, -0.2]);
    const single = new GradientAccumulation(new Adam({ lr: 0.1 }), { steps: 2 });
    for (let t = 0; t < 6; t++) {
      store.grads.W.set([1, 1, 1, 1]);
      store.grads.b.set([0.05 * t, -0.5 + t / 7]);
      alone.grads.b.set(store.grads.b);
      const grads = store.grads.b.slice();
      assert.equal(opt.update(store.params, store.grads), t % 2 === 1, 'the partition stepped when every member stepped');
      single.update(alone.params, alone.grads);
      assert.deepEqual(store.grads.b, grads);
    }
    assert.deepEqual(Array.from(store.params.W), [0.5, -0.25, 0.75, 1]);
    assert.deepEqual(store.params.b, alone.params.b);
  });

  it('EMA around it averages once per window; Lookahead around it counts windows', () => {
    const ema = new EMA(new GradientAccumulation(new SGD({ lr: 1 }), { steps: 2 }), { decay: 0.5 });
    const look = new Lookahead(new GradientAccumulation(new SGD({ lr: 1 }), { steps: 2 }), { k: 2, alpha: 0.5 });
    const p = { w: new Float64Array([0]) };
    const q = { w: new Float64Array([0]) };
    for (let t = 0; t < 4; t++) {
      ema.update(p, { w: new Float64Array([1]) });
      look.update(q, { w: new Float64Array([1]) });
    }
    // two windows: p = -1, -2; averages -1, then 0.5 (-1) + 0.5 (-2)
    assert.equal(ema.count('w'), 2);
    assert.equal(ema.averaged().w![0], -1.5);
    // two inner steps: fast -1, -2, then the sync: s = 0 + 0.5 (-2 - 0) = -1
    assert.equal(look.stepsSinceSync, 0);
    assert.equal(q.w[0], -1);
  });
});

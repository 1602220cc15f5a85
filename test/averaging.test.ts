/**
 * EMA and SWA: the arithmetic by hand, option errors, swap, refused calls that change
 * nothing, loaded states that are refused, and the wrappers as members of a partition
 * over a ParamStore. Their agreement with torch's AveragedModel is in
 * averaging-reference.test.ts; save and resume in averaging-resume.test.ts.
 *
 * Expected values are worked out by hand from the definitions, or the contract itself:
 * after a refusal every param, the inner state and the wrapper's state equal, element for
 * element, what they were before the call.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, EMA, Lookahead, ParamStore, SGD, SWA, ScheduleFreeSGD, StateError, UpdateError, partition, type FloatArray, type OptimizerLike, type ParamSet } from 'nesterov';

/** Everything a call could change, as plain data: the params and the whole state dict (the inner's nested). */
function snapshot(opt: OptimizerLike, params: ParamSet): string {
  const arrays = params instanceof Map ? Object.fromEntries(params) : params;
  return JSON.stringify({ params: arrays, state: opt.stateDict() }, (_key, value: unknown) => (ArrayBuffer.isView(value) ? Array.from(value as FloatArray) : value));
}

function expectRefused(opt: OptimizerLike, params: ParamSet, call: () => unknown, message: RegExp, type: new (...args: never[]) => Error = UpdateError): void {
  const before = snapshot(opt, params);
  assert.throws(call, (error: unknown) => error instanceof type && message.test(error.message), `expected ${type.name} ${message}`);
  assert.equal(snapshot(opt, params), before, 'nothing changed');
}

describe('the averages, by hand', () => {
  it('EMA decay 0.5 over SGD lr 0.1, g = 1: p = 0.9, 0.8, 0.7; avg = 0.9 (a copy), 0.85, 0.775', () => {
    const opt = new EMA(new SGD({ lr: 0.1 }), { decay: 0.5 });
    const p = { w: new Float64Array([1]) };
    const expected = [0.9, 0.85, 0.775];
    for (const avg of expected) {
      assert.equal(opt.update(p, { w: new Float64Array([1]) }), true);
      assert.ok(Math.abs(opt.averaged().w![0]! - avg) < 1e-15, `${opt.averaged().w![0]} vs ${avg}`);
    }
    assert.equal(opt.count('w'), 3);
  });

  it('EMA warm-up gamma 1, power 1: decay_t = t / (1 + t), so avg is the plain mean (decay 1 never binds)', () => {
    const opt = new EMA(new SGD({ lr: 1 }), { decay: 1, warmup: { gamma: 1, power: 1 } });
    for (const [t, d] of [[0, 0], [1, 0.5], [2, 2 / 3], [3, 0.75]] as const) assert.ok(Math.abs(opt.decayAt(t) - d) < 1e-15, `decay at ${t}`);
    const p = { w: new Float64Array([0]) };
    // p = -1, -2, -3, -4: the mean of those is -2.5
    for (let t = 0; t < 4; t++) opt.update(p, { w: new Float64Array([1]) });
    assert.ok(Math.abs(opt.averaged().w![0]! + 2.5) < 1e-15);
  });

  it('EMA warm-up: decay_t = min(decay, 1 - (1 + t / gamma)^-power)', () => {
    const opt = new EMA(new SGD(), { decay: 0.9, warmup: { gamma: 2, power: 0.5 } });
    for (const t of [0, 1, 5, 100, 1000]) assert.equal(opt.decayAt(t), Math.min(0.9, 1 - (1 + t / 2) ** -0.5));
    assert.equal(opt.decayAt(1000), 0.9);
    // timm's defaults: gamma 1, power 2/3
    assert.deepEqual(new EMA(new SGD(), { warmup: {} }).warmup, { gamma: 1, power: 2 / 3 });
  });

  it('SWA over SGD lr 0.1, g = 1: p = -0.1, -0.2, -0.3; the running mean -0.1, -0.15, -0.2', () => {
    const opt = new SWA(new SGD({ lr: 0.1 }));
    const p = { w: new Float64Array([0]) };
    for (const avg of [-0.1, -0.15, -0.2]) {
      opt.update(p, { w: new Float64Array([1]) });
      assert.ok(Math.abs(opt.averaged().w![0]! - avg) < 1e-15);
    }
  });

  it("a step the inner optimizer skips (nonFinite: 'skip') takes no average and does not count", () => {
    const opt = new SWA(new SGD({ lr: 0.1, nonFinite: 'skip' }), { start: 2 });
    const p = { w: new Float64Array([0]) };
    assert.equal(opt.update(p, { w: new Float64Array([1]) }), true);
    assert.equal(opt.update(p, { w: new Float64Array([NaN]) }), false);
    assert.equal(opt.steps, 1);
    assert.equal(opt.averaged().w, undefined);
    assert.equal(opt.update(p, { w: new Float64Array([1]) }), true);
    assert.equal(opt.averaged().w![0], p.w[0]);
  });

  it('averaged() returns copies: writing to them changes nothing', () => {
    const opt = new EMA(new SGD({ lr: 0.1 }));
    const p = { w: new Float32Array([1, 2]) };
    opt.update(p, { w: new Float32Array([1, 1]) });
    opt.averaged().w!.fill(7);
    assert.deepEqual(Array.from(opt.averaged().w!), Array.from(p.w));
  });
});

describe('options: errors name the option and the value', () => {
  const cases: [() => unknown, string, typeof RangeError | typeof TypeError][] = [
    [() => new EMA(new SGD(), { decay: 1.5 }), 'EMA: invalid decay: 1.5 (expected a number in [0, 1])', RangeError],
    [() => new EMA(new SGD(), { decay: NaN }), 'EMA: invalid decay: NaN (expected a number in [0, 1])', RangeError],
    [() => new EMA(new SGD(), { decay: -0.1 }), 'EMA: invalid decay: -0.1 (expected a number in [0, 1])', RangeError],
    [() => new EMA(new SGD(), { warmup: { gamma: 0 } }), 'EMA: invalid warmup.gamma: 0 (expected a finite number > 0)', RangeError],
    [() => new EMA(new SGD(), { warmup: { power: -1 } }), 'EMA: invalid warmup.power: -1 (expected a finite number > 0)', RangeError],
    [() => new EMA(new SGD(), { warmup: 5 as never }), 'EMA: invalid warmup: 5 (expected an object { gamma, power })', RangeError],
    [() => new EMA(new SGD(), { warmup: { gama: 1 } as never }), "EMA warmup: unknown option 'gama' (known options: gamma, power)", RangeError],
    [() => new EMA(new SGD(), { beta: 0.9 } as never), "EMA: unknown option 'beta' (known options: decay, warmup)", RangeError],
    [() => new SWA(new SGD(), { start: 0 }), 'SWA: invalid start: 0 (expected an integer >= 1)', RangeError],
    [() => new SWA(new SGD(), { every: 2.5 }), 'SWA: invalid every: 2.5 (expected an integer >= 1)', RangeError],
    [() => new SWA(new SGD(), { every: '3' as never }), 'SWA: invalid every: "3" (expected an integer >= 1)', RangeError],
    [() => new EMA({ update() {} } as never), 'EMA: inner must be an optimizer (check, update, stateDict, loadStateDict, reset, stateBuffersPerParam), got an object', TypeError],
    [() => new SWA(undefined as never), 'SWA: inner must be an optimizer (check, update, stateDict, loadStateDict, reset, stateBuffersPerParam), got undefined', TypeError],
  ];
  for (const [make, message, type] of cases) {
    it(message, () => {
      assert.throws(make, (error: unknown) => error instanceof type && error.message === message);
    });
  }
});

describe('swap', () => {
  for (const Type of [Float32Array, Float64Array]) {
    for (const make of [() => new EMA(new Adam({ lr: 0.1 }), { decay: 0.7 }), () => new SWA(new Adam({ lr: 0.1 }))]) {
      it(`${make().constructor.name} ${Type.name}: swap puts the averages in the params; swapping back restores the params bit for bit`, () => {
        const opt = make();
        const p = { w: new Type([0.3, -1.7, 2.5]), b: new Type([1e-3]) };
        for (let t = 0; t < 4; t++) opt.update(p, { w: new Type([0.1 * t, -0.2, 0.5]), b: new Type([1]) });
        const params = { w: p.w.slice(), b: p.b.slice() };
        const averages = opt.averaged();
        opt.swap(p);
        assert.equal(opt.swapped, true);
        assert.deepEqual(p.w, averages.w);
        assert.deepEqual(p.b, averages.b);
        opt.swap(p);
        assert.equal(opt.swapped, false);
        assert.deepEqual(p.w, params.w);
        assert.deepEqual(p.b, params.b);
        assert.deepEqual(opt.averaged(), averages);
      });
    }
  }

  it('while swapped: update and check are refused, nothing written; so are averaged() and reset()', () => {
    const opt = new EMA(new Adam({ lr: 0.1 }));
    const p = { w: new Float64Array([1, 2]) };
    const g = { w: new Float64Array([0.5, 0.5]) };
    opt.update(p, g);
    opt.update(p, g);
    opt.swap(p);
    expectRefused(opt, p, () => opt.update(p, g), /EMA\.update: the params hold the averages \(swap\(params\) was called\): call swap\(params\) again/);
    expectRefused(opt, p, () => opt.check(p, g), /EMA\.check: the params hold the averages/);
    expectRefused(opt, p, () => opt.reset(), /swap back first/);
    assert.throws(() => opt.averaged(), /EMA\.averaged: the params hold the averages/);
    opt.swap(p);
    assert.equal(opt.update(p, g), true);
  });

  it('a swap that does not fit is refused before anything moves', () => {
    const opt = new SWA(new SGD({ lr: 0.1 }), { start: 3 });
    const p = { w: new Float32Array([1, 2]), b: new Float32Array([3]) };
    const g = { w: new Float32Array([1, 1]), b: new Float32Array([1]) };
    opt.update(p, g);
    expectRefused(opt, p, () => opt.swap(p), /SWA\.swap: nothing is averaged yet \(1 inner steps taken\)/);
    opt.update(p, g);
    opt.update(p, g);
    expectRefused(opt, p, () => opt.swap({ w: p.w }), /parameter 'b' has an average but is not among the params/);
    const wrong = { w: p.w, b: new Float64Array([3]) };
    expectRefused(opt, wrong, () => opt.swap(wrong), /parameter 'b' is a Float64Array of length 1, its average is a Float32Array of length 1/);
    assert.equal(opt.swapped, false);
  });

  it('a parameter without an average (another member of a partition) is left as it is', () => {
    const opt = new EMA(new SGD({ lr: 0.1 }));
    const p = { w: new Float64Array([1]) };
    opt.update(p, { w: new Float64Array([1]) });
    const other = new Float64Array([42]);
    opt.swap({ w: p.w, other });
    assert.deepEqual(Array.from(other), [42]);
  });
});

describe('a refused update changes nothing (params, inner state, averages, counts)', () => {
  const makers: [string, () => EMA | SWA][] = [
    ['EMA', () => new EMA(new Adam({ lr: 0.1 }), { decay: 0.9, warmup: { gamma: 2, power: 0.75 } })],
    ['SWA', () => new SWA(new Adam({ lr: 0.1 }), { start: 2, every: 2 })],
  ];
  for (const [label, make] of makers) {
    it(`${label}: a NaN gradient ('error')`, () => {
      const opt = make();
      const p = { w: new Float32Array([1, 2]), b: new Float32Array([0]) };
      for (let t = 0; t < 3; t++) opt.update(p, { w: new Float32Array([0.1, 0.2]), b: new Float32Array([1]) });
      expectRefused(opt, p, () => opt.update(p, { w: new Float32Array([0.1, 0.2]), b: new Float32Array([NaN]) }), /gradient 'b' is not finite at index 0/);
      expectRefused(opt, p, () => opt.check(p, { w: new Float32Array([0.1, 0.2]), b: new Float32Array([NaN]) }), /gradient 'b' is not finite/);
    });

    it(`${label}: a parameter whose length changed no longer matches its average`, () => {
      const opt = make();
      const p = { w: new Float64Array([1, 2]) };
      for (let t = 0; t < 2; t++) opt.update(p, { w: new Float64Array([0.1, 0.2]) });
      const longer = { w: new Float64Array(3) };
      expectRefused(opt, longer, () => opt.update(longer, { w: new Float64Array(3) }), new RegExp(`${label}\\.update: parameter 'w' is a Float64Array of length 3, but its average is a Float64Array of length 2 \\(call reset\\('w'\\)\\)`));
    });

    it(`${label}: an lr schedule that returns NaN`, () => {
      const opt = label === 'EMA' ? new EMA(new SGD({ lr: (t) => (t < 2 ? 0.1 : NaN) })) : new SWA(new SGD({ lr: (t) => (t < 2 ? 0.1 : NaN) }));
      const p = { w: new Float64Array([1, 2]) };
      opt.update(p, { w: new Float64Array([1, 1]) });
      opt.update(p, { w: new Float64Array([1, 1]) });
      expectRefused(opt, p, () => opt.update(p, { w: new Float64Array([1, 1]) }), /NaN/);
    });
  }

  it('reset(name) forgets the average and the inner state of it; the parameter then starts a new average', () => {
    const opt = new EMA(new Adam({ lr: 0.1 }), { decay: 0.5 });
    opt.update({ w: new Float64Array([1, 2]) }, { w: new Float64Array([1, 1]) });
    opt.reset('w');
    const p = { w: new Float64Array([5]) };
    opt.update(p, { w: new Float64Array([1]) });
    assert.equal(opt.count('w'), 1);
    assert.deepEqual(opt.averaged().w, p.w);
  });
});

describe('loadStateDict: a state that does not fit is refused and nothing changes', () => {
  function trained(): { opt: EMA; p: { w: Float64Array } } {
    const opt = new EMA(new Adam({ lr: 0.1 }), { decay: 0.8 });
    const p = { w: new Float64Array([1, 2]) };
    for (let t = 0; t < 3; t++) opt.update(p, { w: new Float64Array([0.1 * t, 1]) });
    return { opt, p };
  }
  type Dict = ReturnType<EMA['stateDict']> & { [key: string]: unknown };
  const edits: [string, (d: Dict) => unknown, RegExp][] = [
    ['another decay', (d) => ({ ...d, options: { decay: 0.9 } }), /saved with decay 0\.9, this EMA uses 0\.8/],
    ['a warm-up this EMA does not have', (d) => ({ ...d, options: { decay: 0.8, warmupGamma: 1, warmupPower: 1 } }), /saved with warmupGamma 1, this EMA uses undefined/],
    ['an SWA state', (d) => ({ ...d, wrapper: 'SWA' }), /expected a state of wrapper 'EMA' \(format 'nesterov\/wrapper-state'\), got format "nesterov\/wrapper-state", wrapper "SWA"/],
    ['a NaN average', (d) => ({ ...d, buffers: { w: new Float64Array([NaN, 1]) } }), /the average of 'w' is not finite at index 0/],
    ['a count beyond the steps', (d) => ({ ...d, counts: { w: 4 } }), /counts\['w'\] is 4, expected an integer in \[1, 3\]/],
    ['an average without a count', (d) => ({ ...d, counts: {} }), /averages of \[w\] but counts of \[\]/],
    ['an average of a parameter the inner state does not have', (d) => ({ ...d, buffers: { v: new Float64Array(2) }, counts: { v: 1 } }), /the average of 'v' is saved, but the inner state has no parameter 'v'/],
    ['an average of another dtype than the inner state', (d) => ({ ...d, buffers: { w: new Float32Array(2) } }), /the average of 'w' is 2 float32, the inner state's is 2 "float64"/],
    ['swapped 2', (d) => ({ ...d, counters: { steps: 3, swapped: 2 } }), /counters\.swapped is 2, expected 0 or 1/],
    ['a counter missing', (d) => ({ ...d, counters: { steps: 3 } }), /the state has counters \[steps\], expected \[steps, swapped\]/],
    ['an inner state the inner optimizer refuses', (d) => ({ ...d, inner: { ...(d.inner as object), optimizer: 'SGD' } }), /SGD|Adam/],
  ];
  for (const [label, edit, message] of edits) {
    it(label, () => {
      const { opt, p } = trained();
      const edited = edit(opt.stateDict() as Dict);
      const target = trained().opt;
      target.update(p, { w: new Float64Array([1, 1]) }); // a state of its own
      expectRefused(target, p, () => target.loadStateDict(edited), message, StateError);
    });
  }
});

describe('EMA and SWA inside a partition over a ParamStore step only their own parameters', () => {
  const makers: [string, () => OptimizerLike][] = [
    ['EMA(SGD)', () => new EMA(new SGD({ lr: 0.1 }), { decay: 0.5 })],
    ['SWA(ScheduleFreeSGD)', () => new SWA(new ScheduleFreeSGD({ lr: 0.1 }))],
    ['Lookahead(EMA(Adam))', () => new Lookahead(new EMA(new Adam({ lr: 0.1 })), { k: 2 })],
  ];
  for (const [label, make] of makers) {
    it(`${label} for b, SGD lr 0 for W: W does not move; b moves, and is averaged, as the member alone on b`, () => {
      const store = new ParamStore({ W: [2, 2], b: [2] }, { stateBuffers: 3 });
      store.params.W.set([0.5, -0.25, 0.75, 1]);
      store.params.b.set([0.1, -0.2]);
      store.grads.W.set([0.3, 0.1, -0.2, 0.4]);
      store.grads.b.set([0.05, -0.5]);
      const member = make();
      const opt = partition({ W: 'frozen', b: 'member' }, { frozen: new SGD({ lr: 0 }), member });
      const W = Array.from(store.params.W);
      for (let t = 0; t < 3; t++) assert.equal(opt.update(store.params, store.grads), true);
      assert.deepEqual(Array.from(store.params.W), W);
      const alone = new ParamStore({ b: [2] }, { stateBuffers: 3 });
      alone.params.b.set([0.1, -0.2]);
      alone.grads.b.set([0.05, -0.5]);
      const single = make();
      for (let t = 0; t < 3; t++) single.update(alone.params, alone.grads);
      assert.deepEqual(Array.from(store.params.b), Array.from(alone.params.b));
      const averaging = (member instanceof Lookahead ? member.inner : member) as EMA | SWA;
      assert.deepEqual(Object.keys(averaging.averaged()), ['b']);
      assert.deepEqual(averaging.averaged().b, ((single instanceof Lookahead ? single.inner : single) as EMA | SWA).averaged().b);
      assert.equal(opt.stateBuffersPerParam(), Math.max(0, (member as OptimizerLike).stateBuffersPerParam()));
    });
  }

  it('stateBuffersPerParam() is the inner optimizer\'s', () => {
    assert.equal(new EMA(new Adam()).stateBuffersPerParam(), new Adam().stateBuffersPerParam());
    assert.equal(new SWA(new SGD()).stateBuffersPerParam(), new SGD().stateBuffersPerParam());
  });

  it('swap with storeNames: only the averaged member parameters of the store', () => {
    const store = new ParamStore({ W: [2], b: [2] }, { stateBuffers: 1 });
    store.params.W.set([1, 2]);
    store.params.b.set([3, 4]);
    store.grads.b.set([1, 1]);
    const ema = new EMA(new SGD({ lr: 0.5 }), { decay: 0.5 });
    ema.update(store.params, store.grads, ['b']);
    ema.update(store.params, store.grads, ['b']);
    const average = ema.averaged().b!;
    ema.swap(store.params, ['b']);
    assert.deepEqual(Array.from(store.params.b), Array.from(average));
    assert.deepEqual(Array.from(store.params.W), [1, 2]);
  });
});

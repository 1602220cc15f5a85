/**
 * Each optimizer keeps its own state in a ParamStore and
 * claims only the regions its rule needs; any string names a parameter; an override
 * that matches nothing is refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, Nesterov, ParamStore, SGD, UpdateError, stateFromJSON, stateToJSON } from 'nesterov';

function filledStore(stateBuffers?: number | readonly { stateBuffersPerParam(): number }[]) {
  const store = new ParamStore({ w: 5, b: 3 }, stateBuffers === undefined ? {} : { stateBuffers });
  store.params.w!.set([1, 2, 3, 4, 5]);
  store.params.b!.set([-1, 0, 1]);
  store.grads.w!.fill(0.5);
  store.grads.b!.fill(-0.25);
  return store;
}

describe('two optimizers on one ParamStore', () => {
  it("a Nesterov update does not touch Adam's state, and each continues as if alone", () => {
    const store = filledStore();
    const adam = new Adam({ lr: 0.1 });
    for (let t = 0; t < 5; t++) adam.update(store.params, store.grads);
    const adamBefore = adam.stateDict();
    const nag = new Nesterov({ lr: 0.01, momentum: 0.9 });
    const w = Float32Array.from(store.params.w!);
    nag.update(store.params, store.grads);
    assert.deepEqual(adam.stateDict(), adamBefore);
    // nag.md's form 1 from v = 0: v = -lr g, and the stored point moves by mu v - lr g.
    const v = Math.fround(-0.01 * 0.5);
    assert.deepEqual(nag.stateOf('w')!.velocity, new Float32Array(5).fill(v));
    assert.deepEqual(store.params.w, w.map((x) => Math.fround(x + Math.fround(Math.fround(0.9 * v) - Math.fround(0.01 * 0.5)))));
    // Adam's next step reads its own m and v: the same m as an Adam that ran alone.
    const alone = filledStore();
    const reference = new Adam({ lr: 0.1 });
    for (let t = 0; t < 6; t++) reference.update(alone.params, alone.grads);
    adam.update(store.params, store.grads);
    assert.deepEqual(adam.stateDict().params.w!.buffers, reference.stateDict().params.w!.buffers);
  });

  it('a third optimizer finds no free region: refused, nothing changes; reset() gives regions back', () => {
    const store = filledStore(3);
    const adam = new Adam({ lr: 0.1 });
    const nag = new Nesterov();
    adam.update(store.params, store.grads);
    nag.update(store.params, store.grads);
    const third = new Nesterov();
    const params = structuredClone({ w: store.params.w, b: store.params.b });
    const adamState = adam.stateDict();
    const nagState = nag.stateDict();
    assert.throws(
      () => third.update(store.params, store.grads),
      (error: Error) =>
        error instanceof UpdateError &&
        error.param === 'w' &&
        error.message ===
          "Nesterov.update: parameter 'w' needs 1 state buffer, but the ParamStore reserves 3 and another optimizer holds 3 of them (make the store with stateBuffers: [every optimizer that updates it], or call reset() on an optimizer that is done with it)",
    );
    assert.deepEqual({ w: store.params.w, b: store.params.b }, params);
    assert.deepEqual(adam.stateDict(), adamState);
    assert.deepEqual(nag.stateDict(), nagState);
    nag.reset();
    third.update(store.params, store.grads);
    assert.deepEqual(adam.stateDict(), adamState);
  });

  it('stateBuffers: [optimizers] reserves what they keep together, nothing for SGD', () => {
    assert.equal(new ParamStore({ w: 3 }, { stateBuffers: [new SGD()] }).stateBuffers, 0);
    assert.equal(new ParamStore({ w: 3 }, { stateBuffers: [new Nesterov()] }).stateBuffers, 1);
    assert.equal(new ParamStore({ w: 3 }, { stateBuffers: [new Adam(), new Nesterov()] }).stateBuffers, 3);
    assert.equal(new ParamStore({ w: 3 }, { stateBuffers: [new Adam({ overrides: [{ params: 'w', amsgrad: true }] })] }).stateBuffers, 3);
    // SGD's store is params and grads only: 512 header bytes + 2 regions of 16 floats.
    const sgdStore = new ParamStore({ w: 3 }, { stateBuffers: [new SGD()] });
    sgdStore.params.w!.set([1, 2, 3]);
    sgdStore.grads.w!.set([1, 1, 1]);
    new SGD({ lr: 0.5 }).update(sgdStore.params, sgdStore.grads);
    assert.deepEqual(sgdStore.params.w, new Float32Array([0.5, 1.5, 2.5]));
    assert.throws(() => new ParamStore({ w: 3 }, { stateBuffers: [{}] as never }), /ParamStore: invalid stateBuffers\[0\]: an object \(expected an optimizer of this library\)/);
    assert.throws(() => new ParamStore({ w: 3 }, { stateBuffers: -1 }), /ParamStore: invalid stateBuffers: -1/);
  });
});

describe('parameter names', () => {
  it("'__proto__', 'constructor' and 'toString' are names like any other, and survive a save", () => {
    const names = ['__proto__', 'constructor', 'toString'];
    const params = new Map(names.map((name, i) => [name, new Float64Array([i + 1])]));
    const grads = new Map(names.map((name) => [name, new Float64Array([1])]));
    const opt = new Nesterov({ lr: 0.1 });
    opt.update(params, grads);
    const saved = opt.stateDict();
    assert.deepEqual(Object.keys(saved.params), names);
    assert.ok(Object.hasOwn(saved.params, '__proto__'));
    assert.equal(Object.getPrototypeOf(saved.params), null);
    const resumed = new Nesterov({ lr: 0.1 });
    resumed.loadStateDict(stateFromJSON(stateToJSON(saved)));
    const a = new Map(names.map((name) => [name, Float64Array.from(params.get(name)!)]));
    opt.update(params, grads);
    resumed.update(a, grads);
    assert.deepEqual(a, params);
    assert.deepEqual(resumed.stateDict(), opt.stateDict());
  });
});

describe('overrides', () => {
  it('an override that matches no parameter is refused before anything is written', () => {
    const opt = new Adam({ overrides: [{ params: /^w/, lr: 0.5 }, { params: 'bias', weightDecay: 0 }] });
    const params = { w: new Float32Array([1]), b: new Float32Array([2]) };
    assert.throws(
      () => opt.update(params, { w: new Float32Array([1]), b: new Float32Array([1]) }),
      (error: Error) => error instanceof UpdateError && error.message === 'Adam.update: overrides[1] matches no parameter of this update (parameters: w, b)',
    );
    assert.deepEqual(params, { w: new Float32Array([1]), b: new Float32Array([2]) });
    assert.equal(opt.stepCount, 0);
    const store = new ParamStore({ w: 1, b: 1 });
    assert.throws(() => opt.update(store.params, store.grads), /overrides\[1\] matches no parameter of this update \(parameters: w, b\)/);
  });
});

describe('names of the state', () => {
  it("stateOf's buffers carry the names stateDict saves them under, for every rule and variant", async () => {
    const { REGISTRY } = await import('./registry.ts');
    for (const entry of REGISTRY) {
      const opt = entry.make(0.01);
      opt.update({ w: new Float64Array([1, 2]) }, { w: new Float64Array([0.5, -0.5]) });
      const live = opt.stateOf('w') as Record<string, unknown>;
      const arrays = Object.keys(live).filter((key) => live[key] instanceof Float64Array && (live[key] as Float64Array).length === 2);
      // The saved buffers of the parameter's length (Adafactor also saves its empty vRow
      // and vCol for a vector: a shaped state's buffers have lengths of their own).
      const saved = opt.stateDict().params.w!.buffers;
      assert.deepEqual(arrays, Object.keys(saved).filter((key) => saved[key]!.length === 2), entry.id);
    }
  });
  it("Nesterov 'nag' keeps `velocity`, 'pytorch' keeps `momentumBuffer`, as the README says", () => {
    const nag = new Nesterov({ lr: 0.1 });
    const torch = new Nesterov({ lr: 0.1, variant: 'pytorch' });
    for (const opt of [nag, torch]) opt.update({ w: new Float64Array([1]) }, { w: new Float64Array([2]) });
    // v = -lr g = -0.2; torch's b = g = 2.
    assert.deepEqual(nag.stateOf('w')!.velocity, new Float64Array([-0.2]));
    assert.deepEqual(torch.stateOf('w')!.momentumBuffer, new Float64Array([2]));
    assert.equal(nag.stateOf('w')!.momentumBuffer, undefined);
  });
});

describe('Nesterov.step when the step overflows', () => {
  it('params still move to theta+ (the step was applied), then the UpdateError goes on', () => {
    const opt = new Nesterov({ lr: 10, momentum: 0.9 });
    const params = { w: new Float64Array([1, 1]) };
    const grads = { w: new Float64Array(2) };
    assert.throws(
      () => opt.step(params, grads, () => grads.w.set([1e308, 1])),
      (error: Error) => error instanceof UpdateError && error.param === 'w' && error.index === 0 && /This step WAS applied/.test(error.message),
    );
    // Element 1 took an ordinary NAG step from v = 0: v = -lr g = -10, theta+ = 1 + v = -9.
    assert.ok(Math.abs(params.w[1]! + 9) < 1e-12, `w[1] = ${params.w[1]}`);
    assert.deepEqual(opt.stateOf('w')!.velocity![1], -10);
  });
});

/**
 * `setHyperparameters`: new values (numbers, booleans, schedules) for the defaults'
 * options, checked at the call, in force from the next step, saved in the state dict
 * and the state files (numbers and booleans; a schedule is not), restored by
 * loadStateDict. Expected values are derived by hand, or are behavioural contracts
 * (a refused call changes nothing; a resumed run equals the uninterrupted one).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  Adam,
  Muon,
  Nesterov,
  RMSProp,
  SGD,
  StateError,
  decodeState,
  encodeState,
  partition,
  RULES,
  stateFromJSON,
  stateToJSON,
  type OptimizerLike,
  type OptimizerStateDict,
} from 'nesterov';
import { loadState, saveState } from 'nesterov/node';

const dir = mkdtempSync(join(tmpdir(), 'nesterov-set-hyper-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function bitsEqual(a: ArrayLike<number>, b: ArrayLike<number>, label: string): void {
  assert.equal(a.length, b.length, label);
  for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `${label}[${i}]: ${a[i]} is not ${b[i]}`);
}

describe('the options each rule says shape its state (RuleDescription.fixedOptions)', () => {
  for (const entry of RULES) {
    for (const [option, reason] of Object.entries(entry.fixedOptions ?? {})) {
      it(`${entry.name}: '${option}' takes no schedule and setHyperparameters refuses it, saying why`, () => {
        const opt = entry.make() as OptimizerLike & { setHyperparameters(values: Record<string, unknown>): void };
        const before = JSON.stringify(opt.stateDict());
        // Muon takes `shapes` beside its hyperparameters, and refuses it with that reason.
        const why = entry.rule === undefined ? '' : `: ${reason}`;
        assert.throws(() => opt.setHyperparameters({ [option]: 1 }), (error: Error) => error.message.includes(`'${option}' cannot be changed after construction${why}`));
        assert.equal(JSON.stringify(opt.stateDict()), before);
        assert.throws(() => entry.make({ [option]: () => 1 }), (error: Error) => error.message.includes(entry.rule === undefined ? option : `${option} cannot be a schedule: ${reason}`));
      });
    }
  }
});

describe('setHyperparameters', () => {
  it("is in force from the next step: Nesterov 'pytorch' with momentum 0.5, then 0.25, then 0.75 (the hand-derived steps)", () => {
    const opt = new Nesterov({ variant: 'pytorch', lr: 0.5, momentum: 0.5 });
    const p = { w: new Float64Array([1]) };
    // step 0 (mu 0.5, g 1):   b = 1;                         p = 1 - 0.5 * (1 + 0.5 * 1) = 0.25
    opt.update(p, { w: new Float64Array([1]) });
    assert.equal(p.w[0], 0.25);
    opt.setHyperparameters({ momentum: 0.25 });
    assert.equal(opt.defaults.momentum, 0.25);
    // step 1 (mu 0.25, g 2):  b = 0.25 * 1 + 2 = 2.25;       p = 0.25 - 0.5 * (2 + 0.25 * 2.25) = -1.03125
    opt.update(p, { w: new Float64Array([2]) });
    assert.equal(p.w[0], -1.03125);
    opt.setHyperparameters({ momentum: 0.75 });
    // step 2 (mu 0.75, g -1): b = 0.75 * 2.25 - 1 = 0.6875;  p = -1.03125 - 0.5 * (-1 + 0.75 * 0.6875) = -0.7890625
    opt.update(p, { w: new Float64Array([-1]) });
    assert.equal(p.w[0], -0.7890625);
  });

  it('a bad value throws a RangeError naming the option and the value, and nothing changes', () => {
    const opt = new Adam({ lr: 0.01, beta1: 0.8 });
    const twin = new Adam({ lr: 0.01, beta1: 0.8 });
    const p = { w: new Float64Array([1, 2]) };
    const q = { w: p.w.slice() };
    const g = { w: new Float64Array([0.5, -1]) };
    opt.update(p, g);
    twin.update(q, g);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ beta1: 1.5 }, /beta1: 1\.5/],
      [{ beta1: 0.5, eps: -1 }, /eps: -1/],
      [{ lr: Number.NaN }, /lr: NaN/],
      [{ beta2: '0.9' }, /beta2: "0\.9"/],
      [{ beta1: undefined }, /beta1 is undefined/],
      [{ betas: [0.9, 0.99] }, /unknown option 'betas'/],
      [{ variant: 'book' }, /'variant' cannot be changed after construction/],
      [{ amsgrad: true }, /'amsgrad' cannot be changed after construction: it decides whether the maxExpAvgSq buffer exists/],
      [{ backend: 'js' }, /'backend' cannot be changed after construction/],
      [{ nonFinite: 'skip' }, /'nonFinite' cannot be changed after construction/],
      [{ overrides: [] }, /'overrides' cannot be changed here/],
      [{ beta1: (t: number) => (t === 1 ? 1 : 0.9) }, /beta1 schedule returned 1 at step 1/],
    ];
    for (const [values, message] of cases) {
      assert.throws(() => opt.setHyperparameters(values as never), (error: unknown) => error instanceof RangeError && message.test(error.message), JSON.stringify(values));
      assert.equal(opt.defaults.beta1, 0.8);
      assert.equal(opt.stateDict().hyperparameters, undefined);
    }
    assert.throws(() => opt.setHyperparameters(null as never), TypeError);
    opt.update(p, g);
    twin.update(q, g);
    bitsEqual(p.w, q.w, 'after the refused calls, the step is the untouched twin\'s');
  });

  it("RMSProp's momentum (which decides whether a buffer exists) cannot change; its alpha can", () => {
    const opt = new RMSProp({ momentum: 0.9 });
    assert.throws(() => opt.setHyperparameters({ momentum: 0.5 }), /'momentum' cannot be changed after construction/);
    opt.setHyperparameters({ alpha: 0.5 });
    assert.equal(opt.defaults.alpha, 0.5);
  });

  it('an override keeps what it sets itself; the others follow the new defaults', () => {
    const opt = new Nesterov({ lr: 0.1, momentum: 0.9, overrides: [{ params: 'b', momentum: 0.5 }, { params: 'c', lr: 0.2 }] });
    opt.setHyperparameters({ momentum: 0.75, weightDecay: 0.01 });
    assert.deepEqual(
      ['w', 'b', 'c'].map((name) => [opt.hyperparameters(name).momentum, opt.hyperparameters(name).weightDecay, opt.hyperparameters(name).lr]),
      [[0.75, 0.01, 0.1], [0.5, 0.01, 0.1], [0.75, 0.01, 0.2]],
    );
  });

  it('takes a schedule, evaluated from the next step on (its count, not 0)', () => {
    const opt = new SGD({ lr: 1 });
    const p = { w: new Float64Array([0]) };
    const g = { w: new Float64Array([1]) };
    opt.update(p, g); // p = 0 - 1 * 1 = -1
    opt.update(p, g); // p = -2
    opt.setHyperparameters({ weightDecay: (t) => t / 4 });
    // step 2: wd 0.5, g = 1 + 0.5 * (-2) = 0, p = -2;  step 3: wd 0.75, g = 1 + 0.75 * (-2) = -0.5, p = -1.5
    opt.update(p, g);
    assert.equal(p.w[0], -2);
    opt.update(p, g);
    assert.equal(p.w[0], -1.5);
    assert.deepEqual(opt.scheduledOptions, ['weightDecay']);
  });
});

describe('the values set at run time in the state dict', () => {
  const grads = (t: number) => ({ w: new Float64Array([1 - t, 0.5 * t]), b: new Float64Array([t - 2]) });

  it('numbers and booleans are saved and restored by loadStateDict; the resumed run equals the uninterrupted one', () => {
    const run = new Nesterov({ lr: 0.1, momentum: 0.9 });
    const p = { w: new Float64Array([1, 2]), b: new Float64Array([3]) };
    run.update(p, grads(0));
    run.setHyperparameters({ momentum: 0.5, lr: 0.05, maximize: true });
    run.update(p, grads(1));
    const dict = run.stateDict();
    assert.deepEqual({ ...dict.hyperparameters }, { momentum: 0.5, lr: 0.05, maximize: true });
    const q = { w: p.w.slice(), b: p.b.slice() };
    const resumed = new Nesterov({ lr: 0.1, momentum: 0.9 });
    resumed.loadStateDict(structuredClone(dict));
    assert.equal(resumed.defaults.momentum, 0.5);
    assert.equal(resumed.defaults.maximize, true);
    for (let t = 2; t < 5; t++) {
      run.update(p, grads(t));
      resumed.update(q, grads(t));
    }
    bitsEqual(q.w, p.w, 'w');
    bitsEqual(q.b, p.b, 'b');
    assert.deepEqual(resumed.stateDict(), run.stateDict());
  });

  it('a schedule set at run time is not saved (a function cannot be): the loading optimizer keeps its own for that option', () => {
    const run = new Nesterov({ momentum: 0.9 });
    run.setHyperparameters({ momentum: 0.5 });
    run.setHyperparameters({ momentum: () => 0.6, lr: 0.2 });
    assert.deepEqual({ ...run.stateDict().hyperparameters }, { lr: 0.2 });
    const other = new Nesterov({ momentum: 0.8 });
    other.loadStateDict(run.stateDict());
    assert.equal(other.defaults.momentum, 0.8);
    assert.equal(other.defaults.lr, 0.2);
  });

  it('a state dict without hyperparameters (before any call; old files) has no such field and loads as before', () => {
    const opt = new Adam({ beta1: 0.7 });
    opt.update({ w: new Float64Array([1]) }, { w: new Float64Array([1]) });
    const dict = opt.stateDict();
    assert.equal('hyperparameters' in dict, false);
    assert.equal(stateToJSON(dict).includes('hyperparameters'), false);
    const other = new Adam({ beta1: 0.6 });
    other.loadStateDict(dict);
    assert.equal(other.defaults.beta1, 0.6);
  });

  it('saved values that do not fit are a StateError naming the option and value, and the optimizer keeps its state', () => {
    const opt = new Adam({ beta1: 0.7 });
    opt.update({ w: new Float64Array([1]) }, { w: new Float64Array([1]) });
    const base = opt.stateDict();
    const before = opt.stateDict();
    const cases: [unknown, RegExp][] = [
      [{ beta1: 1.5 }, /beta1: 1\.5/],
      [{ variant: 'book' }, /hyperparameters\.variant is "book"/],
      [{ amsgrad: true }, /'amsgrad' cannot be changed/],
      [{ betas: 0.9 }, /unknown option 'betas'/],
      [{ beta1: 'x' }, /hyperparameters\.beta1 is "x"/],
      [{ beta1: Number.POSITIVE_INFINITY }, /hyperparameters\.beta1 is Infinity/],
      [[0.9], /hyperparameters is an Array/],
    ];
    for (const [hyperparameters, message] of cases) {
      assert.throws(() => opt.loadStateDict({ ...base, stepCount: 7, hyperparameters }), (error: unknown) => error instanceof StateError && message.test(error.message), JSON.stringify(hyperparameters));
      assert.deepEqual(opt.stateDict(), before);
      assert.equal(opt.defaults.beta1, 0.7);
    }
  });

  it('through stateToJSON / stateFromJSON and encodeState / decodeState', () => {
    const opt = new Adam();
    opt.update({ w: new Float32Array([1, 2]) }, { w: new Float32Array([0.5, 0.5]) });
    opt.setHyperparameters({ beta1: 0.5, eps: 1e-3, maximize: false });
    const dict = opt.stateDict();
    for (const decoded of [stateFromJSON(stateToJSON(dict)), decodeState(encodeState(dict)) as OptimizerStateDict]) {
      assert.deepEqual({ ...decoded.hyperparameters }, { beta1: 0.5, eps: 1e-3, maximize: false });
      const other = new Adam();
      other.loadStateDict(decoded);
      assert.deepEqual([other.defaults.beta1, other.defaults.eps], [0.5, 1e-3]);
    }
  });

  it('through saveState / loadState (JSON and safetensors), for a partition of a Nesterov and a Muon', async () => {
    const make = () => partition({ W: 'muon', b: 'nag' }, { muon: new Muon({ shapes: { W: [2, 2] }, backend: 'js' }), nag: new Nesterov({ lr: 0.1 }) });
    const opt = make();
    const params = { W: new Float64Array([1, 2, 3, 4]), b: new Float64Array([1]) };
    const g = { W: new Float64Array([0.5, -0.5, 1, 0]), b: new Float64Array([2]) };
    opt.update(params, g);
    opt.members.nag.setHyperparameters({ momentum: 0.25 });
    opt.members.muon.setHyperparameters({ momentum: 0.5, nsSteps: 3 });
    for (const file of ['state.json', 'state.safetensors']) {
      const path = join(dir, file);
      await saveState(opt, path);
      assert.ok(readFileSync(path).toString('latin1').includes('hyperparameters'), `${file} holds them`);
      const loaded = make();
      await loadState(loaded, path);
      assert.equal(loaded.members.nag.defaults.momentum, 0.25);
      assert.deepEqual([loaded.members.muon.defaults.momentum, loaded.members.muon.defaults.nsSteps], [0.5, 3]);
      const p = { W: params.W.slice(), b: params.b.slice() };
      const q = { W: params.W.slice(), b: params.b.slice() };
      const reference = make();
      reference.loadStateDict(opt.stateDict());
      reference.update(p, g);
      loaded.update(q, g);
      bitsEqual(q.W, p.W, `${file}: W`);
      bitsEqual(q.b, p.b, `${file}: b`);
    }
  });

  it('a Muon refuses saved values that do not fit, changing nothing', () => {
    const opt = new Muon({ shapes: { W: [2, 2] }, backend: 'js' });
    const dict = opt.stateDict();
    assert.throws(() => opt.loadStateDict({ ...dict, hyperparameters: { nsSteps: 2.5 } }), (error: unknown) => error instanceof StateError && /nsSteps: 2\.5/.test(error.message));
    assert.equal(opt.defaults.nsSteps, 5);
  });
});

/**
 * `decoupledWeightDecay: true` on every rule whose weight decay is coupled (the registry's
 * `weightDecayKind` 'coupled'), against its definition, torch 2.x's
 * `decoupled_weight_decay=True`: before the step, p <- p * (1 - lr * weightDecay), then
 * the rule's step without decay. The reference is that sentence run by hand: the same rule
 * with weightDecay 0, on parameters the test shrinks first, with the same lr (a schedule:
 * the factor must use the step's lr) and the same gradients.
 *
 * Float order, so that float64 agrees to the bit: the kernels compute p * shrink in double
 * with shrink = 1 - lr * weightDecay (one rounding each), then add the step to it exactly as
 * they add it to p without decay; the reference stores p * (1 - lr * weightDecay) (the same
 * two roundings, a Float64Array keeps a double) and steps from it. WebAssembly (float32)
 * multiplies p by the factor rounded to float32, in float32: the reference
 * fround(p * fround(shrink)) is that product to the bit (two float32 values multiply
 * exactly in double, so one rounding), hence bit for bit too. JS float32 computes p * shrink
 * in double and rounds once, after the step, where the reference rounds the shrunk p
 * first: a rounding of half an ulp (6e-8 relative) per step, which momentum and the
 * moments carry on (up to 1 / (1 - mu) = 10 times). The decay and the problem draw the
 * parameters toward 0 while those roundings were of values up to the starting magnitude
 * (2), so the bound is absolute, relative to that: 1e-6 * 2 over the 40 steps. The TF.js
 * ops (float32 per op) against the core optimizer: the same bound. A wrong factor (the
 * previous step's lr, or the decay after the step) moves p by about lr * weightDecay *
 * |p| * (its relative error), above 1e-4 here: far outside.
 *
 * Adam with it is AdamW bit for bit on every path (JS float64 and float32, WebAssembly,
 * TF.js ops); NAdam with it is NAdamW.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, AdamW, NAdam, NAdamW, ParamStore, RULES, registered, type FloatArray } from 'nesterov';
import { tfOptimizer, type TfWrappable } from 'nesterov/tfjs';
import { REGISTRY, type AnyOptimizer } from './registry.ts';
import { tf, useBackend } from './tfjs-helpers.ts';

const WEIGHT_DECAY = 0.1;
// JS float32 against the reference, and the TF.js ops (float32 per op) against the core
// optimizer, relative to the starting magnitude: see the top.
const FLOAT32_RTOL = 1e-6;
const START_SCALE = 2;

function assertNear(actual: ArrayLike<number>, expected: ArrayLike<number>, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  const tolerance = FLOAT32_RTOL * START_SCALE;
  for (let i = 0; i < expected.length; i++) {
    const difference = Math.abs(actual[i]! - expected[i]!);
    if (!(difference <= tolerance)) assert.fail(`${label}[${i}]: actual ${actual[i]} expected ${expected[i]} difference ${difference} tolerance ${tolerance}`);
  }
}
const STEPS = 40;
// Sizes that reach every loop of the kernels: pairs and quarters of vectors, single
// vectors, and the scalar tail.
const SIZES = { W: 203, b: 7, c: 64 } as const;
type Name = keyof typeof SIZES;
const NAMES = Object.keys(SIZES) as Name[];

const start = (name: Name, i: number): number => Math.cos(1 + i + (name === 'b' ? 3 : name === 'c' ? 7 : 0)) * START_SCALE;
// A gradient that depends on p (so that a difference in p shows in later steps) and on t.
const gradientAt = (name: Name, i: number, t: number, p: number): number => 0.3 * p + Math.sin(1 + i + 7 * t + name.length) / 2;
const lrAt = (lr: number | ((t: number) => number), t: number): number => (typeof lr === 'function' ? lr(t) : lr);

/** The rules of the test table whose decay is coupled (Schedule-Free SGD refuses the option: tested below). */
const COUPLED = REGISTRY.filter((entry) => {
  const key = entry.make(0.01).rule.key;
  return registered(key)!.weightDecayKind === 'coupled' && key !== 'schedulefree-sgd';
});

type Backend = 'js64' | 'js32' | 'wasm';

interface Run {
  readonly params: Record<Name, FloatArray>;
  readonly grads: Record<Name, FloatArray>;
  readonly update: () => void;
}

function arrays(backend: Backend, optimizer: AnyOptimizer): Run {
  if (backend === 'wasm') {
    const store = new ParamStore({ ...SIZES });
    for (const name of NAMES) store.params[name]!.set(Array.from({ length: SIZES[name] }, (_, i) => start(name, i)));
    return { params: store.params as Record<Name, FloatArray>, grads: store.grads as Record<Name, FloatArray>, update: () => optimizer.update(store.params, store.grads) };
  }
  const Type = backend === 'js64' ? Float64Array : Float32Array;
  const params = Object.fromEntries(NAMES.map((name) => [name, new Type(Array.from({ length: SIZES[name] }, (_, i) => start(name, i)))])) as Record<Name, FloatArray>;
  const grads = Object.fromEntries(NAMES.map((name) => [name, new Type(SIZES[name])])) as Record<Name, FloatArray>;
  return { params, grads, update: () => optimizer.update(params, grads) };
}

function fillGradients(run: Run, t: number): void {
  for (const name of NAMES) {
    const p = run.params[name];
    const g = run.grads[name];
    for (let i = 0; i < p.length; i++) g[i] = gradientAt(name, i, t, p[i]!);
  }
}

describe('decoupledWeightDecay: true equals the same rule without decay on p * (1 - lr * weightDecay)', () => {
  for (const entry of COUPLED) {
    const lr = entry.settings.quadratic.lr as number | ((t: number) => number);
    for (const backend of ['js64', 'js32', 'wasm'] as const) {
      const exact = backend !== 'js32';
      it(`${entry.id}, ${backend}: ${exact ? 'bit for bit' : `within ${FLOAT32_RTOL * START_SCALE}`} over ${STEPS} steps`, () => {
        const decoupled = arrays(backend, entry.make(lr, { weightDecay: WEIGHT_DECAY, decoupledWeightDecay: true }));
        const reference = arrays(backend, entry.make(lr, { weightDecay: 0 }));
        for (let t = 0; t < STEPS; t++) {
          fillGradients(decoupled, t);
          fillGradients(reference, t);
          const shrink = 1 - lrAt(lr, t) * WEIGHT_DECAY;
          const factor = backend === 'wasm' ? Math.fround(shrink) : shrink;
          for (const name of NAMES) {
            const p = reference.params[name];
            for (let i = 0; i < p.length; i++) p[i] = p[i]! * factor;
          }
          decoupled.update();
          reference.update();
          for (const name of NAMES) {
            if (exact) assert.deepEqual(decoupled.params[name], reference.params[name], `${name} at step ${t + 1}`);
            else assertNear(decoupled.params[name], reference.params[name], `${name} at step ${t + 1}`);
          }
        }
        assert.notDeepEqual(decoupled.params.W, arrays(backend, entry.make(lr, { weightDecay: WEIGHT_DECAY })).params.W);
      });
    }
  }
});

describe('decoupled weight decay is not coupled weight decay', () => {
  for (const entry of COUPLED) {
    it(`${entry.id}: the two differ after one step (js64)`, () => {
      const lr = entry.settings.quadratic.lr as number | ((t: number) => number);
      const a = arrays('js64', entry.make(lr, { weightDecay: WEIGHT_DECAY, decoupledWeightDecay: true }));
      const b = arrays('js64', entry.make(lr, { weightDecay: WEIGHT_DECAY }));
      for (const run of [a, b]) {
        fillGradients(run, 0);
        run.update();
      }
      assert.notDeepEqual(a.params.W, b.params.W);
    });
  }
});

describe('Adam with decoupledWeightDecay is AdamW, NAdam with it NAdamW, bit for bit', () => {
  const pairs = [
    ['Adam', (o: Record<string, unknown>) => new Adam({ ...o, decoupledWeightDecay: true }), (o: Record<string, unknown>) => new AdamW(o)],
    ['Adam book', (o: Record<string, unknown>) => new Adam({ ...o, variant: 'book', decoupledWeightDecay: true }), (o: Record<string, unknown>) => new AdamW({ ...o, variant: 'book' })],
    ['Adam amsgrad', (o: Record<string, unknown>) => new Adam({ ...o, amsgrad: true, decoupledWeightDecay: true }), (o: Record<string, unknown>) => new AdamW({ ...o, amsgrad: true })],
    ['NAdam', (o: Record<string, unknown>) => new NAdam({ ...o, decoupledWeightDecay: true }), (o: Record<string, unknown>) => new NAdamW(o)],
    // A scheduled weight decay (every numeric hyperparameter takes one): the factor uses each step's.
    [
      'Adam, weightDecay scheduled',
      (o: Record<string, unknown>) => new Adam({ ...o, weightDecay: (t: number) => 0.05 / (1 + t), decoupledWeightDecay: true }),
      (o: Record<string, unknown>) => new AdamW({ ...o, weightDecay: (t: number) => 0.05 / (1 + t) }),
    ],
  ] as const;
  const options = { lr: (t: number) => 0.01 / (1 + 0.1 * t), weightDecay: 0.05 };
  for (const [label, withOption, decoupledRule] of pairs) {
    for (const backend of ['js64', 'js32', 'wasm'] as const) {
      it(`${label}, ${backend}`, () => {
        const a = arrays(backend, withOption(options));
        const b = arrays(backend, decoupledRule(options));
        for (let t = 0; t < STEPS; t++) {
          for (const run of [a, b]) {
            fillGradients(run, t);
            run.update();
          }
          for (const name of NAMES) assert.deepEqual(a.params[name], b.params[name], `${name} at step ${t + 1}`);
        }
      });
    }
    it(`${label}, TF.js ops`, async () => {
      await useBackend('cpu');
      const make = (factory: typeof withOption, tag: string) => {
        const variables = NAMES.map((name) => tf.variable(tf.tensor(Array.from({ length: SIZES[name] }, (_, i) => start(name, i))), true, `decoupled_${label.replace(' ', '_')}_${tag}_${name}`));
        return { variables, opt: tfOptimizer(factory(options) as TfWrappable, { path: 'ops' }) };
      };
      const a = make(withOption, 'a');
      const b = make(decoupledRule, 'b');
      for (let t = 0; t < STEPS; t++) {
        for (const run of [a, b]) {
          const grads = Object.fromEntries(
            run.variables.map((v, k) => [v.name, tf.tensor(Array.from(v.dataSync(), (p, i) => gradientAt(NAMES[k]!, i, t, p)))]),
          );
          run.opt.applyGradients(grads);
          tf.dispose(Object.values(grads));
        }
        a.variables.forEach((v, k) => assert.deepEqual(v.dataSync(), b.variables[k]!.dataSync(), `${NAMES[k]} at step ${t + 1}`));
      }
      for (const run of [a, b]) {
        run.opt.dispose();
        tf.dispose(run.variables);
      }
    });
  }
});

describe('decoupledWeightDecay on the TF.js ops path follows the core optimizer', () => {
  for (const entry of COUPLED) {
    it(`${entry.id}: within ${FLOAT32_RTOL * START_SCALE} over 30 steps (float32)`, async () => {
      await useBackend('cpu');
      const lr = entry.settings.quadratic.lr as number | ((t: number) => number);
      const options = { weightDecay: WEIGHT_DECAY, decoupledWeightDecay: true };
      const core = arrays('js32', entry.make(lr, options));
      const variables = NAMES.map((name) => tf.variable(tf.tensor(Array.from({ length: SIZES[name] }, (_, i) => start(name, i))), true, `decoupled_ops_${entry.id}_${name}`));
      const opt = tfOptimizer(entry.make(lr, options) as TfWrappable, { path: 'ops' });
      for (let t = 0; t < 30; t++) {
        fillGradients(core, t);
        core.update();
        const grads = Object.fromEntries(variables.map((v, k) => [v.name, tf.tensor(Array.from(v.dataSync(), (p, i) => gradientAt(NAMES[k]!, i, t, p)))]));
        opt.applyGradients(grads);
        tf.dispose(Object.values(grads));
      }
      variables.forEach((v, k) => assertNear(v.dataSync(), core.params[NAMES[k]!], NAMES[k]!));
      opt.dispose();
      tf.dispose(variables);
    });
  }
});

describe('decoupledWeightDecay: what each kind of rule accepts', () => {
  it("every rule that takes the option refuses a value that is not a boolean, naming the option and the value", () => {
    // Muon and Adafactor (decoupled, optax's own options) do not take it: an unknown option.
    for (const entry of RULES.filter((candidate) => candidate.rule?.optionNames.includes('decoupledWeightDecay') === true)) {
      assert.throws(() => entry.make({ decoupledWeightDecay: 'yes' }), { name: 'RangeError', message: new RegExp(`^${entry.name}: invalid decoupledWeightDecay: "yes"`) }, entry.key);
      assert.throws(() => entry.make({ decoupledWeightDecay: 1 }), { message: /invalid decoupledWeightDecay: 1 / }, entry.key);
    }
  });

  it("a rule whose decay is decoupled by definition accepts true and refuses false", () => {
    for (const entry of RULES.filter((candidate) => candidate.weightDecayKind === 'decoupled' && candidate.rule?.optionNames.includes('decoupledWeightDecay') === true)) {
      assert.equal((entry.make({ decoupledWeightDecay: true }) as AnyOptimizer).defaults.decoupledWeightDecay, true, entry.key);
      assert.equal((entry.make() as AnyOptimizer).defaults.decoupledWeightDecay, true, entry.key);
      assert.throws(() => entry.make({ decoupledWeightDecay: false }), { message: new RegExp(`${entry.name}: invalid decoupledWeightDecay: false .*decoupled by definition`) }, entry.key);
    }
  });

  it('a rule that adds its decay to the update (LAMB, Schedule-Free AdamW) accepts false and refuses true', () => {
    const keys = RULES.filter((candidate) => candidate.weightDecayKind === 'update').map((entry) => entry.key);
    assert.deepEqual(keys.sort(), ['lamb', 'schedulefree-adamw']);
    for (const key of keys) {
      const entry = registered(key)!;
      assert.equal((entry.make({ decoupledWeightDecay: false }) as AnyOptimizer).defaults.decoupledWeightDecay, false);
      assert.throws(() => entry.make({ decoupledWeightDecay: true }), { message: new RegExp(`${entry.name}: invalid decoupledWeightDecay: true .*normalised update`) });
    }
  });

  it('Schedule-Free SGD refuses true (its parameters hold y, between the iterates it averages)', () => {
    assert.throws(() => registered('schedulefree-sgd')!.make({ decoupledWeightDecay: true }), { message: /ScheduleFreeSGD: invalid decoupledWeightDecay: true .*taken at y/ });
  });

  it('every other coupled rule takes it, and still describes its default as coupled', () => {
    const coupled = RULES.filter((entry) => entry.weightDecayKind === 'coupled' && entry.key !== 'schedulefree-sgd');
    assert.deepEqual(
      coupled.map((entry) => entry.key),
      ['sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam', 'nadam', 'radam', 'adamax', 'adadelta', 'rprop', 'qhm', 'qhadam'],
    );
    for (const entry of coupled) {
      assert.equal((entry.make() as AnyOptimizer).defaults.decoupledWeightDecay, false, entry.key);
      assert.equal((entry.make({ decoupledWeightDecay: true }) as AnyOptimizer).defaults.decoupledWeightDecay, true, entry.key);
    }
  });

  it('a per-parameter override may turn it on for some parameters only', () => {
    const opt = new Adam({ lr: 0.01, weightDecay: 0.1, overrides: [{ params: /^W$/, decoupledWeightDecay: true }] });
    assert.equal(opt.hyperparameters('W').decoupledWeightDecay, true);
    assert.equal(opt.hyperparameters('b').decoupledWeightDecay, false);
  });

  it('a bad value in an override is refused before anything is written', () => {
    const params = { W: new Float64Array([1, 2]) };
    assert.throws(() => new SGDWithOverride().update(params, { W: new Float64Array([1, 1]) }), { message: /invalid decoupledWeightDecay: "yes"/ });
    assert.deepEqual(params.W, new Float64Array([1, 2]));
  });
});

/** An SGD whose override carries a bad value (made lazily: the error may come at construction). */
class SGDWithOverride {
  update(params: Record<string, FloatArray>, grads: Record<string, FloatArray>): void {
    const opt = registered('sgd')!.make({ lr: 0.1, overrides: [{ params: /^W$/, decoupledWeightDecay: 'yes' }] });
    opt.update(params, grads);
  }
}

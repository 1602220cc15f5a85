/**
 * ScheduleFreeSGD and ScheduleFreeAdamW against the authors' algorithm
 * (test/fixtures/generate_schedulefree.py: facebookresearch/schedule_free at 70785b5,
 * the non-foreach step, eval() and train(), written out in numpy) on generate.py's
 * problem: 60 steps, warmup, r, weightLrPower and weightDecay variants, a decreasing lr
 * (lrMax then differs from the lr), float64 and
 * float32, parameters (y) at six checkpoints, the final state, x after eval(), and x
 * against the weighted average sum_t w_t z_t / sum_t w_t of the z iterates, which the
 * generator computes directly from the stored iterates (not by the y/z recursion).
 *
 * Tolerances (normwise relative, scaled to each array's largest magnitude), as
 * test/reference.test.ts's for the first eight:
 * - float64: 1e-12. Our kernels compute the reference's expressions in its order
 *   (y + c (z - y), then + yStep g; z + (-lr) g; the y step's coefficient written as
 *   -lr (1 - beta (1 - c)), the same bits), so the JS runs agree bit for bit with the
 *   generator. Measured worst: 0 (params, state and x). The tolerance stays 1e-12:
 *   bit equality is not a promise (a libm pow() or a fused multiply-add would differ by
 *   an ulp).
 * - float32: 1e-4 (about 840 float32 ulps at the array's scale). Our JS loop computes a
 *   step in double and rounds once on store; numpy rounds after every operation.
 *   Measured worst: 1.8e-6 (JS), 5.8e-8 (wasm, which rounds every operation to float32
 *   in numpy's order).
 * - x against the direct weighted average sum w_t z_t / sum w_t, in float64: 1e-12
 *   (the recursion x_{t+1} = (1 - c) x_t + c z_{t+1} and the sum differ by rounding
 *   only; measured 1.3e-15, ours and the generator's). float32 runs against the float64
 *   average: 1e-4 (the float32 trajectory's own distance from the float64 one is part
 *   of it; measured 4.7e-7 JS, 5.7e-7 wasm).
 * - eval then train returns y: a lerp out by w = 1 - 1/beta and back by 1 - beta, each
 *   rounding once per operation: 8 ulps of max(|y|, |z|) (float64 2^-52 x 8, float32
 *   2^-23 x 8). Measured worst: 0.42 ulps, JS and wasm.
 *
 * The generator's transcription was itself checked against the authors' classes run in
 * torch 1.13 (`generate_schedulefree.py --check-against <checkout>`): float64 4.8e-16,
 * float32 2.4e-7.
 *
 * Scalars lrMax and weightSum are the reference's Python floats: 1e-12 relative in both
 * types (they are doubles here too).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { ParamStore, ScheduleFreeAdamW, ScheduleFreeSGD, StateError, UpdateError, type FloatArray } from 'nesterov';
import { caseOptions, problemArrays, type Fixture, type FixtureCase, type FixtureConfig } from './fixtures.ts';
import { assertClose, doubleWellGradient, makeOptimizer, relativeError } from './helpers.ts';

interface ScheduleFreeCase extends FixtureCase {
  x: Record<string, number[]>;
  average: Record<string, number[]> | null;
}

const fixture = JSON.parse(
  readFileSync(fileURLToPath(new URL('./fixtures/reference-schedulefree.json', import.meta.url)), 'utf8'),
) as Omit<Fixture, 'cases'> & { reference: string; cases: ScheduleFreeCase[] };

const RTOL = { float64: 1e-12, float32: 1e-4 } as const;
const problem = fixture.problem;
const worst = new Map<string, number>();

function note(key: string, error: number): void {
  worst.set(key, Math.max(worst.get(key) ?? 0, error));
}

/** Runs a case on plain arrays (JS kernels) or a float32 ParamStore with backend 'wasm'. */
function run(testCase: ScheduleFreeCase, config: FixtureConfig, backend: 'js' | 'wasm') {
  const { store, params, grads, constants } = problemArrays(problem, testCase.dtype, backend);
  const options = caseOptions(config, testCase.schedule, { backend });
  const optimizer = makeOptimizer(config.optimizer, options) as ScheduleFreeSGD;
  const checkpoints = new Map<number, Record<string, FloatArray>>();
  for (let t = 1; t <= problem.steps; t++) {
    for (const name of Object.keys(params)) doubleWellGradient(params[name]!, constants[name]!, problem.coupling, grads[name]!);
    optimizer.update(store?.params ?? params, store?.grads ?? grads);
    if (testCase.trajectory[String(t)]) checkpoints.set(t, Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.slice()])));
  }
  const state = optimizer.stateDict();
  optimizer.eval(store?.params ?? params);
  const x = Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.slice()]));
  return { checkpoints, state, x, optimizer, params: store?.params ?? params };
}

it('the fixture covers both rules, both types, warmup, r, weightLrPower and weightDecay', () => {
  assert.equal(fixture.cases.length, 14);
  assert.ok(fixture.cases.some((c) => c.schedule === 'inverse-time'), 'a decreasing lr: lrMax stays at its peak');
  const options = fixture.cases.map((c) => c.ours[0]!.options);
  for (const key of ['warmupSteps', 'r', 'weightLrPower', 'weightDecay', 'momentum', 'beta1', 'beta2', 'eps']) {
    assert.ok(options.some((o) => key in o), key);
  }
  assert.match(fixture.reference, /facebookresearch\/schedule_free@70785b53e778d0e872c0bbb75ff4ee54ee10c291$/);
});

for (const testCase of fixture.cases) {
  const config = testCase.ours[0]!;
  const rtol = RTOL[testCase.dtype];
  describe(`${testCase.id} (${testCase.dtype}) vs ${testCase.reference}`, () => {
    const backends = testCase.dtype === 'float32' ? (['js', 'wasm'] as const) : (['js'] as const);
    for (const backend of backends) {
      it(`${config.optimizer}(${JSON.stringify(config.options)}) ${backend}: y, state and x agree to ${rtol}`, () => {
        const { checkpoints, state, x } = run(testCase, config, backend);
        const key = `${testCase.dtype}/${backend}`;
        assert.equal(checkpoints.size, 6);
        for (const [step, expected] of Object.entries(testCase.trajectory)) {
          for (const [name, values] of Object.entries(expected)) {
            const actual = checkpoints.get(Number(step))![name]!;
            assertClose(actual, values, rtol, `${name} at step ${step}`);
            note(key, relativeError(actual, values));
          }
        }
        for (const [name, expected] of Object.entries(testCase.state)) {
          const record = state.params[name]!;
          assert.equal(record.step, 60);
          assert.deepEqual(Object.keys(record.buffers), config.optimizer === 'ScheduleFreeSGD' ? ['z'] : ['z', 'expAvgSq']);
          for (const [buffer, values] of Object.entries(expected.buffers)) {
            assertClose(record.buffers[buffer]!, values, rtol, `${name}.${buffer}`);
            note(key, relativeError(record.buffers[buffer]!, values));
          }
          assert.deepEqual(Object.keys(record.scalars), ['lrMax', 'weightSum', 'trainMode']);
          assert.equal(record.scalars.trainMode, 1);
          for (const scalar of ['lrMax', 'weightSum']) {
            const want = expected.scalars![scalar]!;
            assert.ok(Math.abs(record.scalars[scalar]! - want) <= 1e-12 * Math.abs(want), `${scalar} ${record.scalars[scalar]} vs ${want}`);
          }
        }
        for (const [name, values] of Object.entries(testCase.x)) {
          assertClose(x[name]!, values, rtol, `x.${name}`);
          note(key, relativeError(x[name]!, values));
        }
        // x is the weighted average of the z iterates, computed directly in the generator.
        const average = fixture.cases.find((c) => c.id === testCase.id && c.dtype === 'float64')!.average!;
        for (const [name, values] of Object.entries(average)) {
          assertClose(x[name]!, values, rtol, `x.${name} vs sum w_t z_t / sum w_t`);
          note(`average/${key}`, relativeError(x[name]!, values));
        }
      });
    }
    if (testCase.dtype === 'float64') {
      it("the generator's x (by the y/z recursion) is its direct weighted average of the z iterates to 1e-12", () => {
        for (const [name, values] of Object.entries(testCase.average!)) {
          assertClose(testCase.x[name]!, values, 1e-12, name);
          note('generator x vs average', relativeError(testCase.x[name]!, values));
        }
      });
    }
  });
}

describe('eval then train returns the parameters to y within rounding', () => {
  for (const testCase of fixture.cases.filter((c) => c.id === 'sgd-warmup-r' || c.id === 'adamw-warmup-r-decay')) {
    const backends = testCase.dtype === 'float32' ? (['js', 'wasm'] as const) : (['js'] as const);
    for (const backend of backends) {
      it(`${testCase.id} ${testCase.dtype} ${backend}: within 8 ulps of max(|y|, |z|)`, () => {
        const { optimizer, params, state, checkpoints } = run(testCase, testCase.ours[0]!, backend);
        assert.equal(optimizer.mode, 'eval');
        optimizer.train(params);
        assert.equal(optimizer.mode, 'train');
        const ulp = testCase.dtype === 'float32' ? 2 ** -23 : 2 ** -52;
        for (const [name, y] of Object.entries(checkpoints.get(60)!)) {
          const z = state.params[name]!.buffers.z!;
          const back = (params as Record<string, FloatArray>)[name]!;
          let scale = 0;
          let moved = 0;
          for (let i = 0; i < y.length; i++) {
            scale = Math.max(scale, Math.abs(y[i]!), Math.abs(z[i]!));
            moved = Math.max(moved, Math.abs(y[i]! - z[i]!));
          }
          assert.ok(moved > 1e-3, `y and z differ (${moved}): the round trip moves the params`);
          const error = relativeError(back, y) * Math.max(...Array.from(y, Math.abs)) / scale;
          note(`eval+train round trip (ulps) ${testCase.dtype}/${backend}`, error / ulp);
          assert.ok(error <= 8 * ulp, `${name}: ${error / ulp} ulps`);
        }
      });
    }
  }
});

describe('by hand', () => {
  it('ScheduleFreeSGD: two steps, x = (z_1 + z_2) / 2, and eval/train move between x and y', () => {
    // lr 0.5, beta 0.5, y0 = 1, g1 = 1, g2 = 2 (r 0, weightLrPower 2, constant lr: w = 0.25 each).
    // Step 1: c = 1, z0 = y0: y1 = z0 + lr (beta 0 - 1) g1 = 0.5, z1 = 0.5.
    // Step 2: c = 0.5: y2 = y1 + 0.5 (z1 - y1) + 0.5 (0.5 * 0.5 - 1) 2 = -0.25, z2 = 0.5 - 1 = -0.5.
    // x2 = (z1 + z2) / 2 = 0, and y2 = (1 - beta) z2 + beta x2 = -0.25.
    const opt = new ScheduleFreeSGD({ lr: 0.5, momentum: 0.5 });
    const p = { w: new Float64Array([1]) };
    opt.update(p, { w: new Float64Array([1]) });
    assert.deepEqual(Array.from(p.w), [0.5]);
    opt.update(p, { w: new Float64Array([2]) });
    assert.deepEqual(Array.from(p.w), [-0.25]);
    assert.deepEqual(Array.from(opt.stateOf('w')!.z), [-0.5]);
    assert.equal(opt.stateOf('w')!.weightSum, 0.5);
    opt.eval(p);
    assert.deepEqual(Array.from(p.w), [0]);
    opt.train(p);
    assert.deepEqual(Array.from(p.w), [-0.25]);
  });

  it('warmup: lr_k = lr (k + 1) / warmupSteps, lrMax and weightSum as the reference keeps them', () => {
    // warmupSteps 2, lr 1: k = 0: lr 0.5, lrMax 0.5, w = 0.25, sum 0.25, c = 1;
    // k = 1: lr 1, lrMax 1, w = 1, sum 1.25, c = 0.8; k = 2: lr 1, w = 1, sum 2.25.
    // With g = 1 and beta 0.9: y1 = z1 = 1 - 0.5 = 0.5; z2 = -0.5,
    // y2 = 0.5 + 0.8 (0.5 - 0.5) + 1 (0.9 * 0.2 - 1) = 0.5 - 0.82 = -0.32.
    const opt = new ScheduleFreeSGD({ lr: 1, warmupSteps: 2 });
    const p = { w: new Float64Array([1]) };
    const g = { w: new Float64Array([1]) };
    const seen: number[][] = [];
    for (let t = 0; t < 3; t++) {
      opt.update(p, g);
      const s = opt.stateOf('w')!;
      seen.push([s.lrMax, s.weightSum]);
    }
    assert.deepEqual(seen, [[0.5, 0.25], [1, 1.25], [1, 2.25]]);
    const check = new ScheduleFreeSGD({ lr: 1, warmupSteps: 2 });
    const q = { w: new Float64Array([1]) };
    check.update(q, g);
    check.update(q, g);
    assert.ok(Math.abs(q.w[0]! + 0.32) < 1e-15, `${q.w[0]}`);
    assert.deepEqual(Array.from(check.stateOf('w')!.z), [-0.5]);
    // A decreasing lr: lrMax keeps the peak, and the weight uses it: lr 1 then 0.5 gives
    // w = 1, 1 (not 1, 0.25), so weightSum 2 and c = 0.5.
    const falling = new ScheduleFreeSGD({ lr: (t) => (t === 0 ? 1 : 0.5) });
    const r = { w: new Float64Array([1]) };
    falling.update(r, g);
    falling.update(r, g);
    assert.deepEqual([falling.stateOf('w')!.lrMax, falling.stateOf('w')!.weightSum], [1, 2]);
  });

  it('lr 0: the weights sum to 0 and c is 0 (the reference catches the ZeroDivisionError): nothing moves, nothing is NaN', () => {
    const opt = new ScheduleFreeAdamW({ lr: 0 });
    const p = { w: new Float64Array([1, -2]) };
    for (let t = 0; t < 3; t++) opt.update(p, { w: new Float64Array([0.3, 0.4]) });
    assert.deepEqual(Array.from(p.w), [1, -2]);
    assert.equal(opt.stateOf('w')!.weightSum, 0);
    opt.eval(p);
    assert.deepEqual(Array.from(p.w), [1, -2]);
  });
});

describe('how Schedule-Free relates to NAG: the momentum form', () => {
  it('ScheduleFreeSGD (r 0, constant lr) is x_{t+1} = x_t + (t-1)/(t+1) (x_t - x_{t-1}) - lr/(t+1) g(y_t), y_t = x_t + (1-beta)(t-1)(x_t - x_{t-1})', () => {
    // By hand: with r = 0 and a constant lr every weight is lr^2, so c_t = 1/t. From
    // x_t = (1 - c_t) x_{t-1} + c_t z_t: z_t = x_t + (t - 1)(x_t - x_{t-1}). Then
    //   y_t     = (1 - beta) z_t + beta x_t = x_t + (1 - beta)(t - 1)(x_t - x_{t-1})
    //   x_{t+1} = (1 - 1/(t+1)) x_t + (z_t - lr g(y_t)) / (t + 1)
    //           = x_t + (t - 1)/(t + 1) (x_t - x_{t-1}) - lr/(t + 1) g(y_t)
    // NAG's convex form has the same momentum on x, (k - 1)/(k + 2), and takes the
    // gradient at an extrapolation of x along its last move; Schedule-Free extrapolates
    // further, by (1 - beta)(t - 1), and steps by lr/(t + 1) (beta = 1: the gradient at
    // x, primal averaging, a heavy-ball method).
    const curvatures = [1, 3, 10];
    const gradient = (x: Float64Array, out: Float64Array) => {
      for (let i = 0; i < x.length; i++) out[i] = curvatures[i]! * (x[i]! - 1);
    };
    const lr = 0.05;
    const beta = 0.9;
    const opt = new ScheduleFreeSGD({ lr, momentum: beta });
    const p = { x: Float64Array.from([-2, 0.5, 3]) };
    const g = { x: new Float64Array(3) };
    // The momentum form, run beside: x_0 = p_0, x_1 = x_0 - lr g(x_0) (c_1 = 1).
    let previous = Float64Array.from(p.x);
    let current = new Float64Array(3);
    gradient(previous, g.x);
    for (let i = 0; i < 3; i++) current[i] = previous[i]! - lr * g.x[i]!;
    opt.update(p, g);
    let worst = 0;
    for (let t = 1; t < 40; t++) {
      const y = current.map((x, i) => x + (1 - beta) * (t - 1) * (x - previous[i]!));
      for (let i = 0; i < 3; i++) worst = Math.max(worst, Math.abs(p.x[i]! - y[i]!));
      const gy = new Float64Array(3);
      gradient(y, gy);
      const next = current.map((x, i) => x + ((t - 1) / (t + 1)) * (x - previous[i]!) - (lr / (t + 1)) * gy[i]!);
      previous = current;
      current = next;
      gradient(p.x, g.x);
      opt.update(p, g);
    }
    // x from the optimizer: eval moves the params there.
    opt.eval(p);
    for (let i = 0; i < 3; i++) worst = Math.max(worst, Math.abs(p.x[i]! - current[i]!));
    assert.ok(worst < 1e-12, `largest difference ${worst}`);
    assert.ok(Math.abs(p.x[2]! - 1) < 0.1, 'and it is getting somewhere');
  });
});

describe('the train/eval switch', () => {
  const steps = (opt: ScheduleFreeSGD | ScheduleFreeAdamW, p: Record<string, FloatArray>, count: number) => {
    for (let t = 0; t < count; t++) {
      const g: Record<string, FloatArray> = {};
      for (const [name, array] of Object.entries(p)) g[name] = array.map((v, i) => Math.sin(v * 3 + i) + 0.1 * (t % 5));
      opt.update(p, g);
    }
  };
  const fresh = () => ({ W: new Float32Array([0.5, -1, 2, 0.25, -0.75]), b: new Float32Array([0.1, -0.2]) });

  it('update in eval mode throws and changes nothing; eval and train twice are no-ops', () => {
    const opt = new ScheduleFreeAdamW({ lr: 0.05 });
    const p = fresh();
    assert.equal(opt.mode, 'train');
    steps(opt, p, 5);
    opt.eval(p);
    const x = structuredClone(p);
    opt.eval(p);
    assert.deepEqual(p, x);
    const state = opt.stateDict();
    assert.throws(
      () => opt.update(p, { W: new Float32Array(5), b: new Float32Array(2) }),
      (error: Error) =>
        error instanceof UpdateError &&
        error.message === 'ScheduleFreeAdamW.update: the optimizer is in eval mode (the parameters hold the average x, not y): call train(params) before update',
    );
    assert.deepEqual(p, x);
    assert.deepEqual(opt.stateDict(), state);
    assert.equal(opt.stepCount, 5);
    opt.train(p);
    const y = structuredClone(p);
    opt.train(p);
    assert.deepEqual(p, y);
  });

  it('eval without a parameter that has state throws naming it, and moves nothing', () => {
    const opt = new ScheduleFreeSGD({ lr: 0.1 });
    const p = fresh();
    steps(opt, p, 3);
    const before = structuredClone(p);
    assert.throws(
      () => opt.eval({ W: p.W }),
      (error: Error) =>
        error instanceof UpdateError &&
        error.message === "ScheduleFreeSGD.eval: parameter 'b' has optimizer state but is not in params (eval moves every parameter the optimizer updates)",
    );
    assert.throws(
      () => opt.eval({ W: p.W, b: new Float32Array(3) }),
      (error: Error) => error instanceof UpdateError && error.message === "ScheduleFreeSGD.eval: parameter 'b' must be the float32 array of length 2 the optimizer updates",
    );
    assert.deepEqual(p, before);
    assert.equal(opt.mode, 'train');
  });

  it('an eval that writes NaN or Infinity says so, and the mode is eval (the parameters were moved)', () => {
    // momentum 5e-324 (the smallest double, inside the reference's (0, 1)): eval's weight
    // 1 - 1/beta is -Infinity, and -Infinity * (z - y) is NaN where z = y (every element
    // here: y - z = beta (x - z) rounds to 0).
    const opt = new ScheduleFreeSGD({ lr: 0.1, momentum: 5e-324 });
    const p = { w: new Float64Array([0, 0]) };
    opt.update(p, { w: new Float64Array([1, 0]) });
    opt.update(p, { w: new Float64Array([1, 0]) });
    assert.throws(
      () => opt.eval(p),
      (error: Error) =>
        error instanceof UpdateError &&
        error.message === "ScheduleFreeSGD.eval: parameter 'w' became non-finite (beta 5e-324): the parameters were moved and the mode is now 'eval'",
    );
    assert.ok(Number.isNaN(p.w[0]) && Number.isNaN(p.w[1]), `${p.w}`);
    assert.equal(opt.mode, 'eval');
    assert.equal(opt.stateDict().params.w!.scalars.trainMode, 0);
  });

  it('the mode is saved: stateDict in eval mode says trainMode 0; resume is bit-identical in both modes', () => {
    for (const Rule of [ScheduleFreeSGD, ScheduleFreeAdamW]) {
      for (const mode of ['train', 'eval'] as const) {
        const a = new Rule({ lr: 0.05, warmupSteps: 4 });
        const pa = fresh();
        steps(a, pa, 10);
        if (mode === 'eval') a.eval(pa);
        const saved = a.stateDict();
        for (const record of Object.values(saved.params)) assert.equal(record.scalars.trainMode, mode === 'train' ? 1 : 0);
        const pb = structuredClone(pa);
        if (mode === 'eval') a.train(pa);
        steps(a, pa, 10);

        const b = new Rule({ lr: 0.05, warmupSteps: 4 });
        b.loadStateDict(saved);
        assert.equal(b.mode, mode);
        if (mode === 'eval') {
          assert.throws(() => steps(b, pb, 1), UpdateError);
          b.train(pb);
        }
        steps(b, pb, 10);
        assert.deepEqual(pb, pa, `${Rule.name} ${mode}`);
        assert.deepEqual(b.stateDict(), a.stateDict(), `${Rule.name} ${mode}`);
      }
    }
  });

  it('a saved state with mixed or invalid modes is refused, and the optimizer keeps its state', () => {
    const source = new ScheduleFreeSGD();
    const p = fresh();
    steps(source, p, 2);
    const saved = source.stateDict();
    saved.params.b!.scalars.trainMode = 0;
    const target = new ScheduleFreeSGD();
    const q = fresh();
    steps(target, q, 1);
    const before = target.stateDict();
    assert.throws(
      () => target.loadStateDict(saved),
      (error: Error) => error instanceof StateError && error.message === "ScheduleFreeSGD.loadStateDict: parameter 'b' was saved in eval mode, the others in train mode",
    );
    saved.params.b!.scalars.trainMode = 0.5;
    assert.throws(
      () => target.loadStateDict(saved),
      (error: Error) => error instanceof StateError && error.message === "ScheduleFreeSGD.loadStateDict: parameter 'b' has trainMode 0.5, expected 1 (train) or 0 (eval)",
    );
    assert.deepEqual(target.stateDict(), before);
    assert.equal(target.mode, 'train');
  });

  it('eval/train on a ParamStore with the JS backend equals the plain arrays bit for bit', () => {
    const store = new ParamStore({ W: 5, b: 2 });
    const p = fresh();
    store.params.W!.set(p.W);
    store.params.b!.set(p.b);
    const a = new ScheduleFreeAdamW({ lr: 0.05, backend: 'js' });
    const b = new ScheduleFreeAdamW({ lr: 0.05 });
    for (let t = 0; t < 4; t++) {
      for (const name of ['W', 'b'] as const) {
        const g = p[name].map((v, i) => Math.cos(v + i));
        store.grads[name]!.set(g);
        b.update({ [name]: p[name] }, { [name]: g });
      }
      a.update(store.params, store.grads);
    }
    a.eval(store.params);
    b.eval(p);
    assert.deepEqual(Array.from(store.params.W!), Array.from(p.W));
    assert.deepEqual(Array.from(store.params.b!), Array.from(p.b));
  });
});

after(() => {
  const lines = [...worst].map(([key, error]) => `  ${key}: ${error.toExponential(2)}`);
  process.stdout.write(`# Schedule-Free worst normwise relative errors:\n${lines.join('\n')}\n`);
});

/**
 * Lion, LAMB and Lookahead against their reference algorithms written out in
 * numpy from the papers and the authors' code (test/fixtures/generate_modern_lion_lamb.py,
 * which cites file and commit of each), on generate.py's problem: 60 steps on the
 * non-convex double wells of 240 parameters, float64 and float32, parameters at six
 * checkpoints and the final state (buffers, step counts; Lookahead's slow weights).
 *
 * Tolerances (normwise relative, scaled to each array's largest magnitude), as
 * test/reference.test.ts's:
 * - float64: 1e-12. Our kernels compute the references' formulas with scalars folded
 *   (Lion: p (1 - lr wd) - lr sign(c); LAMB: the step -lr ratio applied as one factor,
 *   the norms summed in order where numpy sums pairwise), a few ulps per step.
 * - float32: 1e-4 (about 840 float32 ulps at the array's scale). Our JS loops compute a
 *   step in double and round once on store; numpy rounds after every operation, and
 *   sums LAMB's norms in float32 (ours: in double).
 * - The float32 cases run again on the wasm kernels (a float32 ParamStore, backend
 *   'wasm'), same tolerance.
 * Lion's step is a sign: where c is within rounding of 0 the two could step in opposite
 * directions (2 lr apart). No element of these runs does (the tolerances hold with the
 * steps of 0.005 to 0.02 taken here), which the float32 agreement shows.
 * The measured worst errors print as test diagnostics.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Lookahead, ParamStore, type FloatArray } from 'nesterov';
import { caseOptions, problemArrays, type FixtureConfig } from './fixtures.ts';
import { assertClose, doubleWellGradient, makeOptimizer, relativeError } from './helpers.ts';

interface ModernCase {
  id: string;
  source: 'numpy';
  dtype: 'float32' | 'float64';
  reference: string;
  negateGrad: boolean;
  schedule: 'inverse-time' | null;
  ours: FixtureConfig[];
  trajectory: Record<string, Record<string, number[]>>;
  state: Record<string, { step: number; buffers: Record<string, number[]> }>;
  lookahead?: { k: number; alpha: number; stepsSinceSync: number; slow: Record<string, number[]> };
}

interface ModernFixture {
  generator: string;
  versions: Record<string, string>;
  problem: { sizes: Record<string, number>; coupling: number; steps: number; x0: Record<string, number[]>; c: Record<string, number[]> };
  cases: ModernCase[];
}

const fixture = JSON.parse(
  readFileSync(fileURLToPath(new URL('./fixtures/reference-lion-lamb.json', import.meta.url)), 'utf8'),
) as ModernFixture;
const problem = fixture.problem;
const RTOL = { float64: 1e-12, float32: 1e-4 } as const;

function run(fixtureCase: ModernCase, config: FixtureConfig, backend: 'js' | 'wasm') {
  const { store, params, grads, constants } = problemArrays(problem, fixtureCase.dtype, backend);
  const options = caseOptions(config, fixtureCase.schedule, { backend });
  const inner = makeOptimizer(config.optimizer, options);
  const wrapper = fixtureCase.lookahead === undefined ? undefined : new Lookahead(inner, { k: fixtureCase.lookahead.k, alpha: fixtureCase.lookahead.alpha });
  const optimizer = wrapper ?? inner;
  const checkpoints = new Map<number, Record<string, FloatArray>>();
  for (let t = 1; t <= problem.steps; t++) {
    for (const name of Object.keys(params)) {
      const g = grads[name]!;
      doubleWellGradient(params[name]!, constants[name]!, problem.coupling, g);
      if (fixtureCase.negateGrad) for (let i = 0; i < g.length; i++) g[i] = -g[i]!;
    }
    assert.equal(optimizer.update(store?.params ?? params, store?.grads ?? grads), true);
    if (fixtureCase.trajectory[String(t)]) checkpoints.set(t, Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.slice()])));
  }
  return { checkpoints, state: inner.stateDict(), lookahead: wrapper?.stateDict() };
}

it('the fixture file covers Lion, LAMB and Lookahead in both types', () => {
  assert.equal(fixture.generator, 'test/fixtures/generate_modern_lion_lamb.py');
  const covered = new Set(fixture.cases.map((c) => `${c.lookahead ? 'Lookahead' : c.ours[0]!.optimizer}/${c.dtype}`));
  for (const rule of ['Lion', 'LAMB', 'Lookahead']) {
    for (const dtype of ['float64', 'float32']) assert.ok(covered.has(`${rule}/${dtype}`), `${rule}/${dtype}`);
  }
});

for (const fixtureCase of fixture.cases) {
  describe(`${fixtureCase.id} (${fixtureCase.dtype}) vs ${fixtureCase.reference}`, () => {
    const config = fixtureCase.ours[0]!;
    const rtol = RTOL[fixtureCase.dtype];
    const backends = fixtureCase.dtype === 'float32' ? (['js', 'wasm'] as const) : (['js'] as const);
    for (const backend of backends) {
      it(`${config.optimizer}(${JSON.stringify(config.options)}) ${backend} agrees to ${rtol}`, (t) => {
        const { checkpoints, state, lookahead } = run(fixtureCase, config, backend);
        let worst = 0;
        assert.equal(checkpoints.size, Object.keys(fixtureCase.trajectory).length);
        for (const [step, expected] of Object.entries(fixtureCase.trajectory)) {
          for (const [name, values] of Object.entries(expected)) {
            const actual = checkpoints.get(Number(step))![name]!;
            assertClose(actual, values, rtol, `${name} at step ${step}`);
            worst = Math.max(worst, relativeError(actual, values));
          }
        }
        for (const [name, expected] of Object.entries(fixtureCase.state)) {
          const record = state.params[name]!;
          assert.equal(record.step, expected.step, `${name} step`);
          assert.deepEqual(Object.keys(record.buffers).sort(), Object.keys(expected.buffers).sort(), `${name} buffer names`);
          for (const [key, values] of Object.entries(expected.buffers)) {
            assertClose(record.buffers[key]!, values, rtol, `${name}.${key}`);
            worst = Math.max(worst, relativeError(record.buffers[key]!, values));
          }
        }
        if (fixtureCase.lookahead !== undefined) {
          assert.ok(lookahead !== undefined);
          assert.equal(lookahead.stepsSinceSync, fixtureCase.lookahead.stepsSinceSync);
          assert.deepEqual(Object.keys(lookahead.slow).sort(), Object.keys(fixtureCase.lookahead.slow).sort());
          for (const [name, values] of Object.entries(fixtureCase.lookahead.slow)) {
            assertClose(lookahead.slow[name]!, values, rtol, `slow ${name}`);
            worst = Math.max(worst, relativeError(lookahead.slow[name]!, values));
          }
        }
        t.diagnostic(`worst normwise relative error ${worst.toExponential(2)}`);
      });
    }
  });
}

describe('by hand', () => {
  for (const backend of ['js', 'wasm'] as const) {
    it(`Lion (${backend}): the sign of the interpolation, decoupled decay, and the momentum after the step`, () => {
      // lr 0.1, weightDecay 0.5 (decay factor 1 - 0.05 = 0.95), beta1 0.9, beta2 0.99.
      // w[0]: p = 2, g = -3: c = 0.1 (-3) < 0, p = 2 * 0.95 + 0.1 = 2, m = 0.01 (-3) = -0.03;
      //   then g = 1: c = 0.9 (-0.03) + 0.1 = 0.073 > 0, p = 2 * 0.95 - 0.1 = 1.8, m = -0.0297 + 0.01 = -0.0197.
      // w[1]: p = 1, g = 0: c = 0, sign(0) = 0, p = 0.95; then g = 0 again: p = 0.9025, m = 0.
      const store = new ParamStore({ w: 2 });
      const opt = makeOptimizer('Lion', { lr: 0.1, weightDecay: 0.5, backend });
      store.params.w!.set([2, 1]);
      store.grads.w!.set([-3, 0]);
      opt.update(store.params, store.grads);
      assert.deepEqual(Array.from(store.params.w!), [2, Math.fround(0.95)]);
      assert.deepEqual(Array.from(opt.stateDict().params.w!.buffers.expAvg!), [Math.fround(-0.03), 0]);
      store.grads.w!.set([1, 0]);
      opt.update(store.params, store.grads);
      const p = store.params.w!;
      assert.ok(Math.abs(p[0]! - 1.8) < 2e-7 && Math.abs(p[1]! - 0.9025) < 2e-7, `${p[0]} ${p[1]}`);
      assert.ok(Math.abs(opt.stateDict().params.w!.buffers.expAvg![0]! + 0.0197) < 1e-8);
    });

    it(`Lion (${backend}): sign(NaN) is NaN: with nonFinite 'ignore' a NaN gradient reaches the param`, () => {
      const store = new ParamStore({ w: 5 });
      store.params.w!.fill(1);
      store.grads.w!.set([NaN, 1, -1, 0, 1]);
      const opt = makeOptimizer('Lion', { lr: 0.1, nonFinite: 'ignore', backend });
      assert.equal(opt.update(store.params, store.grads), true);
      assert.deepEqual(Array.from(store.params.w!), [NaN, Math.fround(0.9), Math.fround(1.1), 1, Math.fround(0.9)]);
    });

    it(`LAMB (${backend}): the trust ratio per parameter, and 1 for a parameter at 0`, () => {
      // Step 1 (defaults, lr 0.1): m_hat = g, v_hat = g^2, u = g / (|g| + 1e-6) = +-1 / (1 + 1e-6).
      // a = [3, 4], g = [1, -1]: ratio = ||a|| / ||u|| = 5 (1 + 1e-6) / sqrt(2), so
      //   a -= 0.1 * 5 / sqrt(2) * [1, -1] = [3 - 0.353553..., 4 + 0.353553...].
      // b = [0, 0], g = [2, 2]: u = 2 / (2 + 1e-6); ||b|| = 0, so ratio 1: b = -0.1 / (1 + 5e-7) * [1, 1].
      const store = new ParamStore({ a: 2, b: 2 });
      store.params.a!.set([3, 4]);
      store.grads.a!.set([1, -1]);
      store.grads.b!.set([2, 2]);
      const opt = makeOptimizer('LAMB', { lr: 0.1, backend });
      opt.update(store.params, store.grads);
      const step = (0.1 * 5) / Math.SQRT2;
      const expected = { a: [3 - step, 4 + step], b: [-0.1 / (1 + 5e-7), -0.1 / (1 + 5e-7)] };
      for (const name of ['a', 'b'] as const) assertClose(store.params[name]!, expected[name], 1e-7, name);
    });
  }
});

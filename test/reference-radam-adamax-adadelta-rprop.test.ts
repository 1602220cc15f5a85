/**
 * PyTorch 1.13 parity rules (issue 13: RAdam, Adamax, Adadelta, Rprop) against
 * torch.optim 1.13's single-tensor path (test/fixtures/generate_torch_extra.py, on
 * generate.py's problem): every option 1.13 has, float64 and float32, 60 steps on the
 * non-convex double wells of 240 parameters, parameters at six checkpoints and the
 * final state (buffers and step counts).
 *
 * Tolerances (normwise relative, scaled to each array's largest magnitude), as
 * test/reference.test.ts's for the first eight:
 * - float64: 1e-12. RAdam, Adamax and Adadelta compute torch's formulas with scalars
 *   folded (RAdam: lr r sqrt(1 - beta2^t) / (1 - beta1^t) as one factor), a few ulps
 *   per step. Measured worst: 2.2e-15 (RAdam with an lr schedule, expAvgSq); Adadelta
 *   1.7e-15, Adamax 6.8e-16.
 * - float32: 1e-4 (about 840 float32 ulps at the array's scale). Our JS loop computes a
 *   step in double and rounds once on store; torch rounds after every operation.
 *   Measured worst: 1.8e-6 (RAdam with a schedule, expAvgSq); Adadelta 1.7e-6,
 *   Adamax 1.1e-6.
 * - The float32 cases run again on the wasm kernels (a float32 ParamStore, backend
 *   'wasm'), same tolerance. Measured worst: 1.2e-6 (RAdam with a schedule).
 * - Rprop, both types and both backends: 0, bit for bit. Its arithmetic is a product of two floats
 *   (step size times eta), a clamp and one subtraction: the JS kernel rounds the etas
 *   and bounds to float32 in float32 runs, so each operation rounds as torch's does
 *   (see src/rules/rprop.ts). Anything less would be a warning sign: Rprop's step is
 *   decided by signs, so one ulp at a zero crossing changes a whole step.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Adadelta, RAdam, Rprop, type FloatArray } from 'nesterov';
import { caseOptions, problemArrays, type Fixture, type FixtureCase, type FixtureConfig } from './fixtures.ts';
import { assertClose, doubleWellGradient, makeOptimizer } from './helpers.ts';

const extra: Fixture = JSON.parse(
  readFileSync(fileURLToPath(new URL('./fixtures/reference-torch-extra.json', import.meta.url)), 'utf8'),
) as Fixture;

const RTOL = { float64: 1e-12, float32: 1e-4 } as const;
/** Rules whose every operation rounds as torch's does: compared bit for bit. */
const EXACT = new Set(['Rprop']);
const problem = extra.problem;

/**
 * The fixture's values as this run's type holds them: the generator writes a float32 as
 * its shortest decimal (-1.99), which Math.fround turns back into the float32 exactly.
 */
function asStored(values: number[], dtype: FixtureCase['dtype']): number[] {
  return dtype === 'float32' ? values.map(Math.fround) : values;
}

/**
 * Runs a fixture case on plain arrays (the JS kernels), or on a float32 ParamStore with
 * backend 'wasm' (the WebAssembly kernels, which round every operation to float32 as
 * torch does).
 */
function run(fixture: FixtureCase, config: FixtureConfig, backend: 'js' | 'wasm' = 'js') {
  const { store, params, grads, constants } = problemArrays(problem, fixture.dtype, backend);
  const options = caseOptions(config, fixture.schedule, { backend }, 1);
  const optimizer = makeOptimizer(config.optimizer, options);
  const checkpoints = new Map<number, Record<string, FloatArray>>();
  for (let t = 1; t <= problem.steps; t++) {
    for (const name of Object.keys(params)) {
      const g = grads[name]!;
      doubleWellGradient(params[name]!, constants[name]!, problem.coupling, g);
      if (fixture.negateGrad) for (let i = 0; i < g.length; i++) g[i] = -g[i]!;
    }
    optimizer.update(store?.params ?? params, store?.grads ?? grads);
    if (fixture.trajectory[String(t)]) {
      checkpoints.set(t, Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.slice()])));
    }
  }
  return { checkpoints, state: optimizer.stateDict() };
}

it('the fixture file covers the four rules in both types', () => {
  assert.equal(extra.versions.torch?.startsWith('1.13'), true, `torch ${extra.versions.torch}`);
  const covered = new Set(extra.cases.map((c) => `${c.ours[0]!.optimizer}/${c.dtype}`));
  for (const rule of ['RAdam', 'Adamax', 'Adadelta', 'Rprop']) {
    for (const dtype of ['float64', 'float32']) assert.ok(covered.has(`${rule}/${dtype}`), `${rule}/${dtype}`);
  }
});

for (const fixture of extra.cases) {
  describe(`${fixture.id} (${fixture.dtype}) vs ${fixture.reference}`, () => {
    for (const config of fixture.ours) {
      const label = `${config.optimizer}(${JSON.stringify(config.options)})`;
      const exact = EXACT.has(config.optimizer);
      // The wasm kernels run float32 only, on a ParamStore.
      const backends = fixture.dtype === 'float32' ? (['js', 'wasm'] as const) : (['js'] as const);
      for (const backend of backends) it(`${label} ${backend} ${exact ? 'equals torch bit for bit' : `agrees to ${RTOL[fixture.dtype]}`}`, () => {
        const { checkpoints, state } = run(fixture, config, backend);
        assert.equal(checkpoints.size, Object.keys(fixture.trajectory).length);
        for (const [step, expected] of Object.entries(fixture.trajectory)) {
          for (const [name, values] of Object.entries(expected)) {
            const actual = checkpoints.get(Number(step))![name]!;
            if (exact) assert.deepEqual(Array.from(actual), asStored(values, fixture.dtype), `${name} at step ${step}`);
            else assertClose(actual, values, RTOL[fixture.dtype], `${name} at step ${step}`);
          }
        }
        if (!config.compareState) return;
        for (const [name, expected] of Object.entries(fixture.state)) {
          const record = state.params[name]!;
          assert.equal(record.step, expected.step, `${name} step`);
          assert.deepEqual(Object.keys(record.buffers).sort(), Object.keys(expected.buffers).sort(), `${name} buffer names`);
          for (const [key, values] of Object.entries(expected.buffers)) {
            if (exact) assert.deepEqual(Array.from(record.buffers[key]!), asStored(values, fixture.dtype), `${name}.${key}`);
            else assertClose(record.buffers[key]!, values, RTOL[fixture.dtype], `${name}.${key}`);
          }
        }
      });
    }
  });
}

describe('by hand', () => {
  it('RAdam: momentum steps while rho_t <= 5, the rectified step from t = 6 (beta2 0.999)', () => {
    // g = 1 throughout, lr 0.1. rho_inf = 2 / 0.001 - 1 = 1999 and
    // rho_t = 1999 - 2 t 0.999^t / (1 - 0.999^t): rho_5 = 4.99600, rho_6 = 5.99416.
    // t <= 5: m / (1 - 0.9^t) = 1, so each step is lr: p_5 = -0.5.
    // t = 6: r = sqrt((rho_6 - 4)(rho_6 - 2) 1999 / (1995 * 1997 * rho_6)) = 0.0258211128018652,
    // v = 1 - 0.999^6, so the step is lr r sqrt(v) / (sqrt(v) + 1e-8) = 0.00258211094642052
    // (50-digit decimal arithmetic).
    const opt = new RAdam({ lr: 0.1 });
    const p = { w: new Float64Array(1) };
    const g = { w: new Float64Array([1]) };
    for (let t = 1; t <= 5; t++) opt.update(p, g);
    assert.ok(Math.abs(p.w[0]! + 0.5) < 1e-15, `p_5 = ${p.w[0]}`);
    opt.update(p, g);
    assert.ok(Math.abs(p.w[0]! + 0.5025821109464205) < 1e-15, `p_6 = ${p.w[0]}`);
  });

  it('Rprop: lr sets the first step sizes only; growth, a sign flip (no move, prev = 0), then the halved step', () => {
    // A schedule's later values are not read: torch reads lr once, when the state is made.
    const opt = new Rprop({ lr: (t) => (t === 0 ? 0.1 : 5) });
    const p = { w: new Float64Array(1) };
    const expected = [
      [1, -0.1, 0.1], // step size lr, p -= sign(g) 0.1
      [1, -0.1 - 0.1 * 1.2, 0.1 * 1.2], // same sign: times etaPlus
      [-1, -0.1 - 0.1 * 1.2, 0.1 * 1.2 * 0.5], // sign flip: times etaMinus, g counts as 0, no move
      [-1, -0.1 - 0.1 * 1.2 + 0.1 * 1.2 * 0.5, 0.1 * 1.2 * 0.5], // prev = 0: step size kept, p += 0.06
    ] as const;
    for (const [g, param, stepSize] of expected) {
      opt.update(p, { w: new Float64Array([g]) });
      assert.equal(p.w[0], param);
      assert.equal(opt.stateDict().params.w!.buffers.stepSize![0], stepSize);
    }
    assert.deepEqual(Array.from(opt.stateDict().params.w!.buffers.prev!), [-1]);
  });

  it('Adadelta: the first step is lr sqrt(eps) / sqrt((1 - rho) g^2 + eps) g', () => {
    // g = 2, defaults (lr 1, rho 0.9, eps 1e-6): s = 0.4, d = 0.001 / sqrt(0.400001) * 2
    // = 0.0031622737..., a = 0.1 d^2.
    const opt = new Adadelta();
    const p = { w: new Float64Array([1]) };
    opt.update(p, { w: new Float64Array([2]) });
    const d = (Math.sqrt(1e-6) / Math.sqrt(0.4 + 1e-6)) * 2;
    assert.ok(Math.abs(p.w[0]! - (1 - d)) < 1e-16, `${p.w[0]}`);
    assert.ok(Math.abs(d - 0.0031622737) < 1e-10);
    assert.ok(Math.abs(opt.stateDict().params.w!.buffers.accDelta![0]! - 0.1 * d * d) < 1e-21);
  });
});

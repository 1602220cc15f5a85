/**
 * Every rule and option against independent references (test/fixtures/generate.py):
 * torch.optim 1.13 and the book's numpy classes, float64 and float32, 60 steps on a
 * non-convex function of 240 parameters, parameters at six checkpoints and the
 * final state.
 *
 * Tolerances (normwise relative, scaled to each array's largest magnitude):
 * - float64 vs PyTorch: 1e-12. Measured worst: 1.6e-14 (Momentum 'classic', whose
 *   velocity -lr*b rounds differently from torch's buffer b).
 * - float64 vs the book: 0, bit for bit. Same operations in the same order, and
 *   `powInt` gives Adam the same correctly rounded beta^t as C's pow.
 * - float32: 1e-4 (about 840 float32 ulps at the array's scale). Measured worst:
 *   4.5e-5, in momentum buffers. Our JS loop computes each step in double and rounds
 *   once on store; torch and numpy round after every operation. The few-ulp difference
 *   per step accumulates over 60 steps and momentum multiplies it by up to 1/(1-mu).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FloatArray } from 'nesterov';
import { caseOptions, problemArrays, reference, type FixtureCase, type FixtureConfig } from './fixtures.ts';
import { assertClose, doubleWellGradient, makeOptimizer } from './helpers.ts';

const RTOL = { float64: 1e-12, float32: 1e-4 } as const;
const problem = reference.problem;

function run(fixture: FixtureCase, config: FixtureConfig) {
  const { params, grads, constants } = problemArrays(problem, fixture.dtype);
  const options = caseOptions(config, fixture.schedule);
  const optimizer = makeOptimizer(config.optimizer, options);
  const checkpoints = new Map<number, Record<string, FloatArray>>();
  for (let t = 1; t <= problem.steps; t++) {
    for (const name of Object.keys(params)) {
      const g = grads[name]!;
      doubleWellGradient(params[name]!, constants[name]!, problem.coupling, g);
      if (fixture.negateGrad) for (let i = 0; i < g.length; i++) g[i] = -g[i]!;
    }
    optimizer.update(params, grads);
    if (fixture.trajectory[String(t)]) {
      checkpoints.set(t, Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.slice()])));
    }
  }
  return { checkpoints, state: optimizer.stateDict() };
}

for (const fixture of reference.cases) {
  describe(`${fixture.id} (${fixture.dtype}) vs ${fixture.reference}`, () => {
    for (const config of fixture.ours) {
      const label = `${config.optimizer}(${JSON.stringify(config.options)})`;
      const exact = fixture.source === 'book' && fixture.dtype === 'float64';
      it(`${label} ${exact ? 'equals the book bit for bit' : `agrees to ${RTOL[fixture.dtype]}`}`, () => {
        const { checkpoints, state } = run(fixture, config);
        assert.equal(checkpoints.size, Object.keys(fixture.trajectory).length);
        for (const [step, expected] of Object.entries(fixture.trajectory)) {
          for (const [name, values] of Object.entries(expected)) {
            const actual = checkpoints.get(Number(step))![name]!;
            if (exact) assert.deepEqual(Array.from(actual), values, `${name} at step ${step}`);
            else assertClose(actual, values, RTOL[fixture.dtype], `${name} at step ${step}`);
          }
        }
        if (!config.compareState) return;
        for (const [name, expected] of Object.entries(fixture.state)) {
          const record = state.params[name]!;
          if (typeof expected.step === 'number') assert.equal(record.step, expected.step, `${name} step`);
          assert.deepEqual(Object.keys(record.buffers).sort(), Object.keys(expected.buffers).sort(), `${name} buffer names`);
          for (const [key, values] of Object.entries(expected.buffers)) {
            if (exact) assert.deepEqual(Array.from(record.buffers[key]!), values, `${name}.${key}`);
            else assertClose(record.buffers[key]!, values, RTOL[fixture.dtype], `${name}.${key}`);
          }
          for (const [key, value] of Object.entries(expected.scalars ?? {})) {
            // torch 1.13 keeps NAdam's mu_product as a float32 tensor in float32 runs.
            const rtol = fixture.dtype === 'float32' ? 1e-6 : 1e-14;
            assertClose([record.scalars[key]!], [value], rtol, `${name}.${key}`);
          }
        }
      });
    }
  });
}

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
 * - Rprop, both types: 0, bit for bit. Its arithmetic is a product of two floats
 *   (step size times eta), a clamp and one subtraction: the JS kernel rounds the etas
 *   and bounds to float32 in float32 runs, so each operation rounds as torch's does
 *   (see src/rules/rprop.ts). Anything less would be a warning sign: Rprop's step is
 *   decided by signs, so one ulp at a zero crossing changes a whole step.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import type { FloatArray } from 'nesterov';
import type { Fixture, FixtureCase, FixtureConfig } from './fixtures.ts';
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

function run(fixture: FixtureCase, config: FixtureConfig) {
  const Type = fixture.dtype === 'float32' ? Float32Array : Float64Array;
  const params: Record<string, FloatArray> = {};
  const grads: Record<string, FloatArray> = {};
  const constants: Record<string, FloatArray> = {};
  for (const [name, size] of Object.entries(problem.sizes)) {
    params[name] = Type.from(problem.x0[name]!);
    grads[name] = new Type(size);
    constants[name] = Type.from(problem.c[name]!);
  }
  const options: Record<string, unknown> = { ...config.options };
  if (fixture.schedule === 'inverse-time') {
    const base = (options.lr as number | undefined) ?? 1;
    options.lr = (t: number) => base / (1 + 0.1 * t); // the generator's inverse_time
  }
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
      it(`${label} ${exact ? 'equals torch bit for bit' : `agrees to ${RTOL[fixture.dtype]}`}`, () => {
        const { checkpoints, state } = run(fixture, config);
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

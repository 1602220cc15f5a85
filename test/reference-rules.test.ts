/**
 * Every fixture file in test/fixtures/rules/ (one generator each, committed beside it):
 * the rules added after the first seventeen are tested here without a test file of
 * their own. A fixture names its optimizer by class name, its reference, and its
 * tolerance per dtype (normwise relative to each array's largest magnitude); its float32
 * cases run on the JS kernels and again on the wasm kernels of a float32 ParamStore.
 * A case may hold `optimizerScalars`, the optimizer-level scalars of a rule with a global
 * phase (stateDict().scalars), compared after the last step.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { registered, type FloatArray, type OptimizerStateDict } from 'nesterov';
import { caseOptions, problemArrays, type Fixture, type FixtureCase, type FixtureConfig } from './fixtures.ts';
import { assertClose, doubleWellGradient } from './helpers.ts';

const dir = fileURLToPath(new URL('./fixtures/rules/', import.meta.url));

interface RuleFixture extends Fixture {
  readonly generator: string;
  readonly tolerance: { readonly float64: number; readonly float32: number };
}

/**
 * backend 'wasm': a float32 ParamStore; its kernels are the WebAssembly ones, or, for a
 * rule without any (Adafactor), the JS ones over the store (backend 'auto'). A problem
 * with `shapes` (matrices) gives them to the store, and to plain arrays as the
 * optimizer's `shapes` option.
 */
function run(fixture: RuleFixture, item: FixtureCase, config: FixtureConfig, backend: 'js' | 'wasm') {
  const problem = fixture.problem;
  const entry = registered(config.optimizer);
  assert.ok(entry !== undefined, `${config.optimizer} is not registered`);
  const wasm = entry.rule?.stepWasm !== undefined;
  // Plain arrays take the problem's shapes as the optimizer's option; a store has its own.
  const shapes = problem.shapes !== undefined && backend === 'js' ? { shapes: problem.shapes } : {};
  const optimizer = entry.make(caseOptions(config, item.schedule, { backend: backend === 'wasm' && !wasm ? 'auto' : backend, ...shapes }));
  // The store reserves what the rule keeps (Adan: four buffers).
  const { store, params, grads, constants } = problemArrays(problem, item.dtype, backend, optimizer.stateBuffersPerParam());
  const checkpoints = new Map<number, Record<string, FloatArray>>();
  for (let t = 1; t <= problem.steps; t++) {
    for (const name of Object.keys(params)) {
      const g = grads[name]!;
      doubleWellGradient(params[name]!, constants[name]!, problem.coupling, g);
      if (item.negateGrad) for (let i = 0; i < g.length; i++) g[i] = -g[i]!;
    }
    optimizer.update(store?.params ?? params, store?.grads ?? grads);
    if (item.trajectory[String(t)]) checkpoints.set(t, Object.fromEntries(Object.entries(params).map(([n, p]) => [n, p.slice()])));
  }
  return { checkpoints, state: optimizer.stateDict() as OptimizerStateDict };
}

for (const file of readdirSync(dir).filter((name) => name.endsWith('.json')).sort()) {
  const fixture = JSON.parse(readFileSync(dir + file, 'utf8')) as RuleFixture;
  describe(`${file} (${fixture.generator})`, () => {
    for (const item of fixture.cases) {
      for (const config of item.ours) {
        const rtol = fixture.tolerance[item.dtype];
        const backends = item.dtype === 'float32' ? (['js', 'wasm'] as const) : (['js'] as const);
        for (const backend of backends) {
          it(`${item.id} ${item.dtype} ${backend}: ${config.optimizer}(${JSON.stringify(config.options)}) agrees with ${item.reference} to ${rtol}`, () => {
            const { checkpoints, state } = run(fixture, item, config, backend);
            assert.equal(checkpoints.size, Object.keys(item.trajectory).length);
            for (const [step, expected] of Object.entries(item.trajectory)) {
              for (const [name, values] of Object.entries(expected)) assertClose(checkpoints.get(Number(step))![name]!, values, rtol, `${name} at step ${step}`);
            }
            if (config.compareState !== true) return;
            for (const [name, expected] of Object.entries(item.state)) {
              const record = state.params[name]!;
              if (expected.step !== undefined && expected.step !== null) assert.equal(record.step, expected.step, `${name} step`);
              if (expected.scalars !== undefined) assert.deepEqual({ ...record.scalars }, expected.scalars, `${name} scalars`);
              assert.deepEqual(Object.keys(record.buffers).sort(), Object.keys(expected.buffers).sort(), `${name} buffer names`);
              for (const [key, values] of Object.entries(expected.buffers)) assertClose(record.buffers[key]!, values, rtol, `${name}.${key}`);
            }
            // A rule with a global phase (Prodigy, D-Adaptation): the optimizer's own scalars.
            const scalars = (item as { optimizerScalars?: Record<string, number> }).optimizerScalars;
            if (scalars !== undefined) {
              assert.deepEqual(Object.keys(state.scalars ?? {}).sort(), Object.keys(scalars).sort(), 'optimizer scalar names');
              for (const [key, value] of Object.entries(scalars)) assertClose([state.scalars![key]!], [value], rtol, `scalar ${key}`);
            }
          });
        }
      }
    }
  });
}

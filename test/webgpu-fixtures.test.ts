/**
 * The CPU fixture suite on the GPU: every float32 case of test/fixtures/rules/*.json whose
 * rule has a GPU kernel (GPU_KERNELS), each of its option sets, run by a GPUOptimizer in
 * Debian's Chromium, WebGPU on SwiftShader (test/webgpu-page.ts opened as /?fixtures,
 * bundled and served as test/webgpu-browser.test.ts does), against the fixture's float32
 * expectations (PyTorch / optax through the generator committed beside each fixture).
 *
 * The tolerance is the fixture's float32 tolerance, which the CPU's float32 kernels meet
 * (normwise: rtol times the largest magnitude of the expected array), plus what
 * docs/webgpu.md allows the GPU beyond the CPU's kernels:
 * - params, per element at checkpoint step T: EPS ((16 + 6 T) sum_t |dp_t| + T max_t |p_t|),
 *   the sums over the GPU's own trajectory;
 * - state buffers after the last step (T steps): EPS (16 + 6 T) times the largest magnitude
 *   of the expected array, the bound's state term taken normwise as the fixture does.
 * Where the case compares state: step counts and scalars exactly the fixture's.
 * Skipped, saying so, where /usr/bin/chromium is missing.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { registered } from 'nesterov';
import { GPU_KERNELS } from 'nesterov/webgpu';
import type { FixtureCase } from './fixtures.ts';
import type { FixtureInput, FixtureRun } from './webgpu-page.ts';
import { chromiumMissing, pageReport } from './browser-report.ts';

const EPS = 2 ** -23;
const dir = fileURLToPath(new URL('./fixtures/rules/', import.meta.url));
const skip = chromiumMissing;

interface RuleFixture {
  generator: string;
  tolerance: { float64: number; float32: number };
  problem: FixtureInput['problem'] & { shapes?: unknown };
  cases: FixtureCase[];
}

const hasKernel = (optimizer: string): boolean => {
  const key = registered(optimizer)?.key;
  return key !== undefined && GPU_KERNELS[key] !== undefined;
};

/** Every fixture file with the float32 cases (and option sets) that have a GPU kernel. */
const files = readdirSync(dir)
  .filter((name) => name.endsWith('.json'))
  .sort()
  .map((file) => {
    const fixture = JSON.parse(readFileSync(dir + file, 'utf8')) as RuleFixture;
    const cases = fixture.cases
      .filter((item) => item.dtype === 'float32')
      .map((item) => ({ ...item, ours: item.ours.filter((config) => hasKernel(config.optimizer)) }))
      .filter((item) => item.ours.length > 0);
    return { file, fixture, cases };
  })
  .filter(({ cases }) => cases.length > 0);

let runs: Promise<FixtureRun[]> | undefined;

/** One browser for every case: the page runs them all and reports them at once. */
function runAll(): Promise<FixtureRun[]> {
  runs ??= (async () => {
    const inputs: FixtureInput[] = files.map(({ file, fixture, cases }) => ({
      file,
      problem: { sizes: fixture.problem.sizes, coupling: fixture.problem.coupling, steps: fixture.problem.steps, x0: fixture.problem.x0, c: fixture.problem.c },
      cases: cases.map((item) => ({ id: item.id, negateGrad: item.negateGrad, schedule: item.schedule, trajectory: item.trajectory, ours: item.ours.map(({ optimizer, options }) => ({ optimizer, options })) })),
    }));
    const report = await pageReport<{ runs: FixtureRun[] }>(new URL('./webgpu-page.ts', import.meta.url), { title: 'nesterov/webgpu fixtures', query: '?fixtures', files: { '/fixtures.json': JSON.stringify(inputs) } });
    return report.runs;
  })();
  return runs;
}

it('the fixture suite has GPU cases: every fixture rule with a GPU kernel is here', () => {
  assert.deepEqual(files.map(({ file }) => file), ['adan.json', 'nadamw.json', 'qhadam.json', 'qhm.json']);
});

for (const { file, fixture, cases } of files) {
  describe(`${file} on the GPU (${fixture.generator})`, () => {
    for (const item of cases) {
      for (const config of item.ours) {
        const rtol = fixture.tolerance.float32;
        it(`${item.id} float32 webgpu: ${config.optimizer}(${JSON.stringify(config.options)}) agrees with ${item.reference} to ${rtol} plus the GPU's bound`, { skip, timeout: 600_000 }, async () => {
          const run = (await runAll()).find((r) => r.file === file && r.id === item.id && r.optimizer === config.optimizer);
          assert.ok(run !== undefined, 'the page did not run this case');
          assert.equal(run.failed, undefined, run.failed);
          assert.deepEqual(Object.keys(run.checkpoints).sort(), Object.keys(item.trajectory).sort());
          for (const [step, expected] of Object.entries(item.trajectory)) {
            for (const [name, values] of Object.entries(expected)) {
              const got: { values: number[]; bound: number[] } = run.checkpoints[step]![name]!;
              assert.equal(got.values.length, values.length, `${name} at step ${step}: length`);
              const scale = Math.max(...values.map(Math.abs), Number.MIN_VALUE);
              values.forEach((e, i) => {
                const tolerance = rtol * scale + got.bound[i]!;
                const difference = Math.abs(got.values[i]! - e);
                assert.ok(difference <= tolerance, `${name}[${i}] at step ${step}: GPU ${got.values[i]} expected ${e} difference ${difference} tolerance ${tolerance}`);
              });
            }
          }
          if (config.compareState !== true) return;
          const steps = fixture.problem.steps;
          for (const [name, expected] of Object.entries(item.state)) {
            const record: FixtureRun['state'][string] | undefined = run.state[name];
            assert.ok(record !== undefined, `${name}: no state on the GPU`);
            if (expected.step !== undefined && expected.step !== null) assert.equal(record.step, expected.step, `${name} step`);
            if (expected.scalars !== undefined) assert.deepEqual(record.scalars, expected.scalars, `${name} scalars`);
            assert.deepEqual(Object.keys(record.buffers).sort(), Object.keys(expected.buffers).sort(), `${name} buffer names`);
            for (const [key, values] of Object.entries(expected.buffers)) {
              const got: number[] = record.buffers[key]!;
              assert.equal(got.length, values.length, `${name}.${key}: length`);
              const scale = Math.max(...values.map(Math.abs), Number.MIN_VALUE);
              const tolerance = (rtol + EPS * (16 + 6 * steps)) * scale;
              values.forEach((e, i) => {
                const difference = Math.abs(got[i]! - e);
                assert.ok(difference <= tolerance, `${name}.${key}[${i}]: GPU ${got[i]} expected ${e} difference ${difference} tolerance ${tolerance}`);
              });
            }
          }
        });
      }
    }
  });
}

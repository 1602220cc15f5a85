/**
 * The CPU fixture suite on the GPU. Every fixture file of test/fixtures/ and
 * test/fixtures/rules/ whose cases have the suite's shape ({id, dtype, reference,
 * negateGrad, schedule, ours, trajectory, state} over a problem {sizes, coupling, steps,
 * x0, c}); of each, every float32 case and every option set (`ours` entry) whose rule has
 * a GPU kernel (GPU_KERNELS), run by a GPUOptimizer in Debian's Chromium, WebGPU on
 * SwiftShader (test/webgpu-page.ts opened as /?fixtures, bundled and served as
 * test/webgpu-browser.test.ts does, one browser for all), against the fixture's float32
 * expectations (PyTorch, optax, the papers' and the book's algorithms written out, through
 * the generator committed beside each fixture). The files, the cases and the rules are
 * read from the fixtures and the registry, none listed here: a rule that gets a GPU kernel
 * brings its cases in by itself. The first test fails on a rule with a GPU kernel that no
 * case runs (unless WITHOUT_FIXTURES says why) and on a case this suite cannot read.
 *
 * Each case runs as its CPU test runs it: the file's problem (its sizes and steps), the
 * gradient negated where `negateGrad` says so, the schedule built by the CPU tests'
 * caseOptions (test/fixture-options.ts), x read after eval() where the fixture holds it
 * (Schedule-Free), the state compared where the CPU test compares it.
 *
 * The tolerance is the file's float32 tolerance as its CPU test holds it (TOLERANCES:
 * normwise, rtol times the largest magnitude of the expected array; 0 for a rule its CPU
 * test compares bit for bit), which the CPU's float32 kernels meet, plus what
 * docs/webgpu.md allows the GPU beyond the CPU's kernels:
 * - params, per element at checkpoint step T: EPS ((16 + 6 T) sum_t |dp_t| + T max_t |p_t|),
 *   the sums over the GPU's own trajectory; x after eval() the params' bound at the last
 *   step, as test/webgpu-browser.test.ts bounds eval();
 * - state buffers after the last step (T steps): EPS (16 + 6 T) times the largest magnitude
 *   of the expected array, the bound's state term taken normwise as the fixture does.
 * Step counts exactly the fixture's; the state's scalars (computed by the rule's CPU code
 * in float64 on the GPU too) to the CPU test's relative tolerance for them.
 * Skipped, saying so, where /usr/bin/chromium is missing.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { registered } from 'nesterov';
import { GPU_KERNELS } from 'nesterov/webgpu';
import type { FixtureCase } from './fixtures.ts';
import type { BoundedValues, FixtureInput, FixtureRun } from './webgpu-page.ts';
import { chromiumMissing, pageReport } from './browser-report.ts';

const EPS = 2 ** -23;
const root = fileURLToPath(new URL('./fixtures/', import.meta.url));
const skip = chromiumMissing;

/** How a file's CPU test compares its float32 cases. */
interface Tolerances {
  /** The CPU test. */
  test: string;
  /** Params, state buffers and x: normwise relative. */
  float32: number;
  /** Rules the CPU test compares bit for bit: tolerance 0 (plus the GPU's bound here). */
  exact?: readonly string[];
  /** The per-parameter state scalars: relative to each; 0 is equality. */
  scalars: number;
  /** The CPU test compares the state of every case, not only of the option sets marked compareState. */
  everyState?: boolean;
  /** The lr an 'inverse-time' schedule scales where a case leaves lr to the rule's default (caseOptions' defaultLr). */
  defaultLr?: number;
}

/**
 * The files written before fixtures stated their tolerance, as their CPU tests hold it.
 * A file under test/fixtures/rules/ states its own (`tolerance`), which
 * test/reference-rules.test.ts applies to params, buffers and the optimizer's scalars,
 * and compares the state's scalars for equality.
 */
const TOLERANCES: Record<string, Tolerances> = {
  // torch 1.13 keeps NAdam's mu_product as a float32 tensor in float32 runs: 1e-6.
  'reference.json': { test: 'test/reference.test.ts', float32: 1e-4, scalars: 1e-6 },
  // Rprop rounds each operation as torch does; Adadelta's torch default lr is 1.
  'reference-torch-extra.json': { test: 'test/reference-radam-adamax-adadelta-rprop.test.ts', float32: 1e-4, exact: ['Rprop'], scalars: 0, defaultLr: 1 },
  'reference-lion-lamb.json': { test: 'test/reference-lion-lamb.test.ts', float32: 1e-4, scalars: 0, everyState: true },
  // lrMax and weightSum are the reference's Python floats: 1e-12 relative.
  'reference-schedulefree.json': { test: 'test/schedulefree.test.ts', float32: 1e-4, scalars: 1e-12, everyState: true },
};

/** Rules with a GPU kernel that no fixture case runs, each with the reason (none today). */
const WITHOUT_FIXTURES: Record<string, string> = {};

/** Fields that make a case a run the GPU does not take, each with the reason. */
const NOT_ON_GPU: Record<string, string> = {
  lookahead: 'a Lookahead run (the fixture holds the wrapper\'s trajectory): wrappers do not run on the GPU (docs/webgpu.md); the inner rule\'s own cases run',
};

/** The fields of a case this suite reads (x and average: Schedule-Free's eval(); optimizerScalars: a rule with a global phase). */
const CASE_FIELDS = new Set(['id', 'source', 'dtype', 'reference', 'negateGrad', 'schedule', 'ours', 'trajectory', 'state', 'x', 'average', 'optimizerScalars']);
const SHAPE = ['id', 'dtype', 'reference', 'negateGrad', 'schedule', 'ours', 'trajectory', 'state'];

interface Case extends FixtureCase {
  x?: Record<string, number[]>;
  average?: Record<string, number[]> | null;
  optimizerScalars?: Record<string, number>;
}

interface SuiteFixture {
  generator?: string;
  tolerance?: { float64: number; float32: number };
  problem: FixtureInput['problem'];
  cases: Case[];
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether a parsed JSON file is of the suite's shape. */
function ofTheShape(json: unknown): json is SuiteFixture {
  if (!isRecord(json) || !isRecord(json.problem) || !Array.isArray(json.cases) || json.cases.length === 0) return false;
  if (!['sizes', 'coupling', 'steps', 'x0', 'c'].every((key) => key in (json.problem as object))) return false;
  return json.cases.every((item) => isRecord(item) && SHAPE.every((key) => key in item) && Array.isArray(item.ours));
}

const ruleKey = (optimizer: string): string | undefined => registered(optimizer)?.key;
const hasKernel = (optimizer: string): boolean => {
  const key = ruleKey(optimizer);
  return key !== undefined && GPU_KERNELS[key] !== undefined;
};

/** What the first test reports: files not of the shape, cases left out and why, and what this suite cannot read. */
const notOfTheShape: string[] = [];
const excluded: string[] = [];
const problems: string[] = [];

/** Every fixture file of the shape with its float32 cases (and their option sets) that have a GPU kernel. */
const files = [...readdirSync(root), ...readdirSync(root + 'rules/').map((name) => `rules/${name}`)]
  .filter((file) => file.endsWith('.json'))
  .sort()
  .flatMap((file) => {
    const json: unknown = JSON.parse(readFileSync(root + file, 'utf8'));
    if (!ofTheShape(json)) {
      notOfTheShape.push(file);
      return [];
    }
    const fixture = json;
    const stated = fixture.tolerance === undefined ? undefined : { test: 'test/reference-rules.test.ts', float32: fixture.tolerance.float32, scalars: 0 };
    const tolerances: Tolerances | undefined = stated ?? TOLERANCES[file];
    const cases = fixture.cases
      .filter((item) => item.dtype === 'float32')
      .filter((item) => {
        const unknown = Object.keys(item).filter((key) => !CASE_FIELDS.has(key));
        const reasons = unknown.filter((key) => NOT_ON_GPU[key] !== undefined);
        if (reasons.length > 0) excluded.push(`${file} ${item.id}: ${reasons.map((key) => NOT_ON_GPU[key]).join('; ')}`);
        else if (unknown.length > 0) problems.push(`${file} ${item.id}: fields ${unknown.join(', ')} this suite does not read (read them, or say in NOT_ON_GPU why the case cannot run)`);
        return unknown.length === 0;
      })
      .map((item) => ({ ...item, ours: item.ours.filter((config) => hasKernel(config.optimizer)) }))
      .filter((item) => item.ours.length > 0);
    if (cases.length === 0) return [];
    if (tolerances === undefined) {
      problems.push(`${file}: no float32 tolerance (neither the file's \`tolerance\` nor TOLERANCES here, as its CPU test holds it)`);
      return [];
    }
    return [{ file, fixture, tolerances, cases }];
  });

let runs: Promise<FixtureRun[]> | undefined;

/** One browser for every case: the page runs them all and reports them at once. */
function runAll(): Promise<FixtureRun[]> {
  runs ??= (async () => {
    const inputs: FixtureInput[] = files.map(({ file, fixture, tolerances, cases }) => ({
      file,
      problem: { sizes: fixture.problem.sizes, ...(fixture.problem.shapes === undefined ? {} : { shapes: fixture.problem.shapes }), coupling: fixture.problem.coupling, steps: fixture.problem.steps, x0: fixture.problem.x0, c: fixture.problem.c },
      ...(tolerances.defaultLr === undefined ? {} : { defaultLr: tolerances.defaultLr }),
      cases: cases.map((item) => ({
        id: item.id,
        negateGrad: item.negateGrad,
        schedule: item.schedule,
        checkpoints: Object.keys(item.trajectory).map(Number),
        eval: item.x !== undefined,
        ours: item.ours,
      })),
    }));
    const report = await pageReport<{ runs: FixtureRun[] }>(new URL('./webgpu-page.ts', import.meta.url), { title: 'nesterov/webgpu fixtures', query: '?fixtures', files: { '/fixtures.json': JSON.stringify(inputs) } });
    return report.runs;
  })();
  return runs;
}

/**
 * Asserts |got_i - e_i| <= rtol max_j |e_j| + bound(i) for every i, e_i the fixture's
 * value as float32 holds it (the generators write a float32 as its shortest decimal,
 * which Math.fround returns to the float32 exactly). Returns the largest difference over
 * max_j |e_j|, the normwise error the CPU tests print.
 */
function assertWithin(got: readonly number[], expected: readonly number[], rtol: number, bound: (i: number, scale: number) => number, label: string): number {
  assert.equal(got.length, expected.length, `${label}: length`);
  const stored = expected.map(Math.fround);
  const scale = Math.max(...stored.map(Math.abs), Number.MIN_VALUE);
  let worst = 0;
  stored.forEach((e, i) => {
    const tolerance = rtol * scale + bound(i, scale);
    const difference = Math.abs(got[i]! - e);
    assert.ok(difference <= tolerance, `${label}[${i}]: GPU ${got[i]} expected ${e} difference ${difference} tolerance ${tolerance} (rtol ${rtol} x scale ${scale} plus the GPU's bound)`);
    worst = Math.max(worst, difference / scale);
  });
  return worst;
}

function assertBounded(got: BoundedValues, expected: Record<string, number[]>, rtol: number, label: string): number {
  // A fixture may keep some parameters only (Adafactor's leaves out its 18200-element W); the GPU reports all.
  for (const name of Object.keys(expected)) assert.ok(Object.hasOwn(got, name), `${label}: no ${name} from the GPU (it gave ${Object.keys(got).join(', ')})`);
  let worst = 0;
  for (const [name, values] of Object.entries(expected)) {
    const { values: gpu, bound } = got[name]!;
    worst = Math.max(worst, assertWithin(gpu, values, rtol, (i) => bound[i]!, `${name} ${label}`));
  }
  return worst;
}

function assertScalars(got: Record<string, number>, expected: Record<string, number>, rtol: number, label: string): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(expected).sort(), `${label} scalar names`);
  for (const [key, want] of Object.entries(expected)) {
    const value = got[key]!;
    assert.ok(rtol === 0 ? Object.is(value, want) : Math.abs(value - want) <= rtol * Math.abs(want), `${label}.${key}: GPU ${value} expected ${want} (relative tolerance ${rtol})`);
  }
}

it('every rule with a GPU kernel has fixture cases on the GPU, and every case of the suite is run or left out with a reason', (t) => {
  assert.deepEqual(problems, []);
  const covered = new Set(files.flatMap(({ cases }) => cases.flatMap((item) => item.ours.map((config) => ruleKey(config.optimizer)!))));
  const without = Object.keys(GPU_KERNELS).filter((key) => !covered.has(key)).sort();
  assert.deepEqual(
    without.map((key) => `${key}: ${WITHOUT_FIXTURES[key] ?? 'no float32 fixture case runs it: add one to its fixture generator, or say in WITHOUT_FIXTURES why'}`),
    Object.keys(WITHOUT_FIXTURES).sort().map((key) => `${key}: ${WITHOUT_FIXTURES[key]}`),
  );
  for (const { file, cases } of files) t.diagnostic(`${file}: ${cases.reduce((sum, item) => sum + item.ours.length, 0)} option sets of ${cases.length} float32 cases on the GPU`);
  for (const line of excluded) t.diagnostic(`left out: ${line}`);
  t.diagnostic(`not of the suite's shape: ${notOfTheShape.join(', ')}`);
});

for (const { file, fixture, tolerances, cases } of files) {
  describe(`${file} on the GPU (${fixture.generator ?? tolerances.test})`, () => {
    for (const item of cases) {
      item.ours.forEach((config, index) => {
        const rtol = tolerances.exact?.includes(config.optimizer) === true ? 0 : tolerances.float32;
        it(`${item.id} float32 webgpu: ${config.optimizer}(${JSON.stringify(config.options)}) agrees with ${item.reference} to ${rtol} plus the GPU's bound`, { skip, timeout: 600_000 }, async (t) => {
          const run = (await runAll()).find((r) => r.file === file && r.id === item.id && r.config === index);
          assert.ok(run !== undefined, 'the page did not run this case');
          assert.equal(run.failed, undefined, run.failed);
          assert.equal(run.optimizer, config.optimizer);
          assert.deepEqual(Object.keys(run.checkpoints).sort(), Object.keys(item.trajectory).sort());
          let worst = 0;
          for (const [step, expected] of Object.entries(item.trajectory)) worst = Math.max(worst, assertBounded(run.checkpoints[step]!, expected, rtol, `at step ${step}`));
          if (item.x !== undefined) {
            assert.ok(run.x !== null, 'x was not read after eval()');
            worst = Math.max(worst, assertBounded(run.x, item.x, rtol, 'x after eval()'));
            // x is the weighted average of the z iterates, computed directly by the generator (its float64 case).
            const average = fixture.cases.find((c) => c.id === item.id && c.dtype === 'float64')?.average;
            if (average !== undefined && average !== null) assertBounded(run.x, average, rtol, 'x against the direct average of the z iterates');
          }
          const comparesState = config.compareState === true || tolerances.everyState === true;
          if (comparesState) {
            const steps = fixture.problem.steps;
            for (const [name, expected] of Object.entries(item.state)) {
              const record: FixtureRun['state'][string] | undefined = run.state[name];
              assert.ok(record !== undefined, `${name}: no state on the GPU`);
              if (typeof expected.step === 'number') assert.equal(record.step, expected.step, `${name} step`);
              if (expected.scalars !== undefined) assertScalars(record.scalars, expected.scalars, tolerances.scalars, name);
              assert.deepEqual(Object.keys(record.buffers).sort(), Object.keys(expected.buffers).sort(), `${name} buffer names`);
              for (const [key, values] of Object.entries(expected.buffers)) {
                worst = Math.max(worst, assertWithin(record.buffers[key]!, values, rtol, (_i, scale) => EPS * (16 + 6 * steps) * scale, `${name}.${key}`));
              }
            }
            // A rule with a global phase (Prodigy, D-Adaptation): the optimizer's own scalars, as test/reference-rules.test.ts compares them.
            if (item.optimizerScalars !== undefined) {
              assert.deepEqual(Object.keys(run.scalars).sort(), Object.keys(item.optimizerScalars).sort(), 'optimizer scalar names');
              for (const [key, want] of Object.entries(item.optimizerScalars)) {
                const value = run.scalars[key]!;
                assert.ok(Math.abs(value - want) <= rtol * Math.abs(want), `scalar ${key}: GPU ${value} expected ${want} (relative tolerance ${rtol})`);
              }
            }
          }
          t.diagnostic(`worst normwise error from the fixture: ${worst.toExponential(2)} (params${item.x === undefined ? '' : ', x'}${comparesState ? ', state buffers' : ''})`);
        });
      });
    }
  });
}

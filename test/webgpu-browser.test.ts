/**
 * nesterov/webgpu in Debian's Chromium, WebGPU on SwiftShader (no GPU needed), the page
 * (test/webgpu-page.ts) bundled by esbuild and served from 127.0.0.1 (a secure context).
 * For every case of test/webgpu-cases.ts: 100 steps of the GPU kernels against the same
 * optimizer on our WebAssembly kernels (float32), the same gradients fed to both; the
 * state dict at step 50 read from the GPU, loaded into the CPU optimizer, its dict
 * loaded into a new GPU optimizer and read back bit for bit; both resumed runs against
 * the uninterrupted one; and Schedule-Free's eval() and train() against the CPU's.
 *
 * The bound, per element, with EPS = 2^-23 (float32's machine epsilon) and T = 100 steps:
 *
 *     |p_gpu - p_wasm| <= EPS ((16 + 6 T) sum_t |dp_t| + T max_t |p_t|)
 *
 * WGSL rounds +, - and * correctly, as wasm does, but its division is only within 2.5
 * ulps and its sqrt within the error of 1 / inverseSqrt (2 ulps, then a division), and a
 * GPU compiler may fuse a * b + c. So one step's update, from the same inputs, may differ
 * by a few ulps of itself per operation: 16 EPS |dp_t| covers the dozen operations of the
 * longest kernel here (Adam) at about one ulp each. The state (momentum, moments) carries
 * the difference of earlier steps, but through factors beta <= 1: after t steps it is at
 * most a few ulps times t relative, and it enters the update at most 1.5 times (m and
 * sqrt(v)): 6 T EPS |dp_t|. Storing p rounds it once per step on each side: T EPS max |p|.
 * A wrong formula, a wrong scalar or a swapped operand is off by orders of magnitude more.
 *
 * A global rule (Prodigy, D-Adapt AdamW) adds its estimate d, the same for every
 * parameter, reduced on the device in float32 (the CPU sums in float64, in another
 * order). A float32 sum by a tree of depth L is within L EPS of the sum of its terms'
 * absolute values; here L = 24 (src/webgpu/global-wgsl.ts: reduce.ts's tree, 12 over each
 * parameter's workgroups of 4096 elements, then 12 per level over their partials, one
 * level up to 4096 partials), each term takes <= 6 roundings (the weight dlr, the product,
 * the difference or quotient, at most 2.5 ulps for a division), the reduce 6 more, and d
 * and r are stored in float32 (2): L + 14 = 38 EPS of the absolute terms per step, doubled
 * to 76 EPS for the numerator's terms, which scale as d^2 (a relative error in d enters
 * them twice). Relative to the new d that is 76 EPS (coef R / (S d') + 1), R the numerator's sum of
 * absolute terms (the numerator's recursion over |term|), S = sum |s|, coef estimLrCoef
 * (Prodigy) or 1 / (1 - sqrt(beta2)) (D-Adapt); the page's EstimateBudget adds it up over
 * the steps that move d on the CPU, to rho (first order: the estimate is of degree 1 in d,
 * so an earlier error is carried, not amplified). The GPU's d is then within
 * (rho + EPS) d of the CPU's, and each update, proportional to d through dlr and through m
 * and sqrt(v), within 3 rho of its own size besides: the params' bound gains 3 rho
 * sum_t |dp_t|. Forgetting a parameter's weight lr bc in the numerator, or a term of the
 * reduce, moves d by a factor, far outside it.
 *
 * A rule whose step reads sums over a parameter (LAMB: ||p||^2 and ||u||^2; Adafactor: row
 * and column sums of g^2 + eps, the sum of vRow, those of u^2 and p^2; `sums`, r, in
 * test/webgpu-cases.ts) takes (16 + r D) EPS |dp_t| per step instead of 16, D the depth of
 * the GPU's tree (src/webgpu/reduce.ts: 12 per level of 4096 values, 16 in registers then
 * 256 in a workgroup; 12 here, for c's 300 elements, 24 for the runs at scale). A float32 pairwise tree of depth D is within gamma_D sum |x_k| of the exact
 * sum (Higham, "Accuracy and stability of numerical algorithms", 4.2), and these sums are
 * of one sign (squares, positive averages), so within D EPS of it, relative; the CPU's
 * float64 sum is within 2^-52 n of it, nothing here. A sum enters the step through a
 * square root (LAMB's ratio sqrt(P) / sqrt(U), Adafactor's factors and rms: half of each
 * sum's relative error), and each term is a few float32 operations from the CPU's float64
 * one (u's divisions and square root, the square), which the other half covers: r D EPS
 * in all. Adafactor's averages carry a sum's error on as a convex combination
 * (beta2 v + (1 - beta2) x), so it does not grow with the steps. A sequential float32 loop would need
 * (n - 1) EPS per sum instead (n * eps * sum |x|), growing with the tensor; the tree's D
 * grows as 12 log_4096 n. A ratio off by 1e-4 relative fails this bound.
 *
 * Skipped, saying so, where /usr/bin/chromium is missing.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { RULES } from 'nesterov';
import { chromiumMissing, pageReport } from './browser-report.ts';
import { GPU_CASES, PLANTED, PLANTED_CASES, SKIP_CASES } from './webgpu-cases.ts';
import type { CaseReport, ErrorsReport, LargeReport, NonFiniteReport, PlantedReport, ProgramsReport, SkipReport, TreeReport } from './webgpu-page.ts';

/** The page's reports of the non-finite contract and of the error table, for the tests after the first. */
let nonFiniteResult: NonFiniteReport | { failed: string } | undefined;
let errorsResult: ErrorsReport | { failed: string } | undefined;
let largeResult: LargeReport | { failed: string } | undefined;
let skipResult: SkipReport | { failed: string } | undefined;
let moreSkipResult: SkipReport[] | { failed: string } | undefined;
let programsResult: ProgramsReport | { failed: string } | undefined;
let plantedResult: PlantedReport[] | { failed: string } | undefined;
let treeResult: TreeReport | { failed: string } | undefined;

// The timeout guards against a hang, not a speed: this test waits for the page, which runs
// every case and contract at once on SwiftShader (WebGPU on the CPU), minutes on a busy host.
it('every GPU kernel: 100 steps within the bound of the wasm kernels; the state dict GPU -> CPU -> GPU bit for bit, resumed on either side', { skip: chromiumMissing, timeout: 900_000 }, async () => {
  const report = await pageReport<{ cases: CaseReport[]; nonFinite: NonFiniteReport | { failed: string }; errors: ErrorsReport | { failed: string }; large: LargeReport | { failed: string }; skip: SkipReport | { failed: string }; moreSkips: SkipReport[] | { failed: string }; planted: PlantedReport[] | { failed: string }; programs: ProgramsReport | { failed: string }; tree: TreeReport | { failed: string } }>(new URL('./webgpu-page.ts', import.meta.url), { title: 'nesterov/webgpu' });
  nonFiniteResult = report.nonFinite;
  errorsResult = report.errors;
  largeResult = report.large;
  skipResult = report.skip;
  moreSkipResult = report.moreSkips;
  programsResult = report.programs;
  plantedResult = report.planted;
  treeResult = report.tree;
  const result = report.cases;
  assert.deepEqual(result.map((r) => r.name), GPU_CASES.map((c) => c.name));
  for (const r of result) {
    assert.equal(r.failed, undefined, `${r.name}: ${r.failed}`);
    assert.ok(r.parity <= 1, `${r.name}: the GPU's params differ from the wasm kernels' by ${r.parity} times the bound`);
    assert.equal(r.roundTrip, null, `${r.name}: the state dict GPU -> CPU -> GPU changed: ${r.roundTrip}`);
    assert.ok(r.resumedOnCpu <= 1, `${r.name}: resumed on the CPU from the GPU's state: ${r.resumedOnCpu} times the bound`);
    assert.ok(r.resumedOnGpu <= 1, `${r.name}: resumed on the GPU from the CPU's state: ${r.resumedOnGpu} times the bound`);
    assert.equal(r.stepCount, 100);
    const global = RULES.find((entry) => entry.key === GPU_CASES.find((c) => c.name === r.name)!.key)!.rule!.global !== undefined;
    if (global) {
      assert.ok(r.scalars !== null, `${r.name}: no optimizer-level scalars in the GPU's state dict`);
      assert.deepEqual(Object.keys(r.scalars.gpu), Object.keys(r.scalars.cpu));
      assert.ok(r.scalars.estimateParity <= 1, `${r.name}: the GPU's d (${r.scalars.gpu.estimLr}) differs from the CPU's (${r.scalars.cpu.estimLr}) by ${r.scalars.estimateParity} times its bound`);
      assert.ok(r.scalars.estimateGrowth > 1, `${r.name}: d did not move from d0 (${r.scalars.estimateGrowth})`);
      assert.ok(r.moved !== null, `${r.name}: moveTo did not run`);
      assert.equal(r.moved.roundTrip, null, `${r.name}: the state moved GPU to GPU differs: ${r.moved.roundTrip}`);
      assert.ok(r.moved.parity <= 1, `${r.name}: resumed after moveTo: ${r.moved.parity} times the bound`);
    } else {
      assert.equal(r.scalars, null);
      assert.equal(r.moved, null);
    }
    if (r.name.startsWith('schedulefree')) {
      assert.ok(r.modes !== null, `${r.name}: eval and train did not run`);
      assert.ok(r.modes.evalParity <= 1, `${r.name}: after eval() the params differ from the CPU's by ${r.modes.evalParity} times the bound`);
      assert.ok(r.modes.trainParity <= 1, `${r.name}: after train() the params differ from the CPU's by ${r.modes.trainParity} times the bound`);
      assert.match(r.modes.refused ?? '', /in eval mode .*call train\(\) before update/);
      assert.equal(r.modes.mode, 'train');
    } else {
      assert.equal(r.modes, null);
    }
  }
});

it("nonFinite 'error' on the GPU: a refused step writes nothing, its error (the CPU's words) comes at the next read back, then steps go on; 'ignore' lets NaN through", { skip: chromiumMissing }, () => {
  assert.ok(nonFiniteResult !== undefined, 'the browser test did not run');
  if ('failed' in nonFiniteResult) assert.fail(nonFiniteResult.failed);
  const r = nonFiniteResult;
  assert.equal(r.cpuError, "UpdateError: Adam.update: gradient 'b' is not finite at index 1 (NaN)");
  assert.equal(r.gpuError, r.cpuError);
  assert.equal(r.gpuParam, 'b');
  assert.equal(r.gpuIndex, 1);
  assert.equal(r.paramsKept, null, `the refused step changed the params: ${r.paramsKept}`);
  assert.equal(r.stateKept, null, `the refused step changed the state: ${r.stateKept}`);
  assert.equal(r.stepCount, 3);
  assert.ok(r.nextParity <= 1, `the step after the error differs from the CPU's by ${r.nextParity} times the bound`);
  assert.equal(r.infinityError, "UpdateError: Adam.update: gradient 'c' is not finite at index 7 (-Infinity)");
  assert.equal(r.laterStepCount, 4, 'the refused step and the finite one after it: both refused');
  assert.equal(r.ignoredIsNaN, true);
  assert.equal(r.updateError, r.cpuError, 'once the device has reported it, the next update() raises the refused step');
  assert.equal(r.updateStepCount, 4);
});

it("nonFinite 'skip' on the GPU: Adam under an lr schedule, 3 of 12 steps skipped, none waited for but once: the CPU's counters, params within the bound, the CPU's state", { skip: chromiumMissing }, () => {
  assert.ok(skipResult !== undefined, 'the browser test did not run');
  if ('failed' in skipResult) assert.fail(skipResult.failed);
  const r = skipResult;
  assert.equal(r.cpu, '9 3 w:9 b:9 c:9');
  assert.equal(r.gpu, r.cpu);
  assert.ok(r.parity <= 1, `the GPU's params differ from the CPU's by ${r.parity} times the bound`);
  assert.equal(r.state, null, `the GPU's state differs from the CPU's: ${r.state}`);
  assert.match(r.otherNames, /^UpdateError: Adam\.update: with nonFinite 'skip', a step of other parameters than the \d+ step\(s\) still unchecked on the device: await sync\(\) first$/);
});

it("nonFinite 'skip' with LAMB and Adafactor (sums over each parameter) and the global rules (Prodigy, D-Adapt AdamW): 4 of 12 steps skipped, the first among them, none waited for but once: the CPU's counters, params within the bound; the state as the CPU's (Adafactor's momentum within the bound's step term), d within its bound", { skip: chromiumMissing }, () => {
  assert.ok(moreSkipResult !== undefined, 'the browser test did not run');
  if ('failed' in moreSkipResult) assert.fail(moreSkipResult.failed);
  assert.equal(moreSkipResult.length, SKIP_CASES.length);
  moreSkipResult.forEach((r, k) => {
    const c = SKIP_CASES[k]!;
    assert.equal(r.cpu, '8 4 w:8 b:8 c:8', c.name);
    assert.equal(r.gpu, r.cpu, c.name);
    assert.ok(r.parity <= 1, `${c.name}: the GPU's params differ from the CPU's by ${r.parity} times the bound`);
    if (RULES.find((entry) => entry.key === c.key)!.rule!.global !== undefined) {
      assert.ok(r.estimateParity !== undefined && r.estimateParity <= 1, `${c.name}: the GPU's d differs from the CPU's by ${r.estimateParity} times its bound`);
      assert.ok(r.estimateGrowth !== undefined && r.estimateGrowth > 10, `${c.name}: d hardly moved (${r.estimateGrowth} d0)`);
    } else {
      assert.equal(r.state, null, `${c.name}: the GPU's state differs from the CPU's: ${r.state}`);
    }
    assert.equal(r.otherNames, `UpdateError: ${c.name}.update: with nonFinite 'skip', a step of other parameters than the 2 step(s) still unchecked on the device: await sync() first`);
  });
});

it('bad calls on the GPU throw naming the parameter or value and change nothing (a global rule\'s d neither); update(names) steps those alone, reset(name) forgets one, reset() puts d back to d0', { skip: chromiumMissing }, () => {
  assert.ok(errorsResult !== undefined, 'the browser test did not run');
  if ('failed' in errorsResult) assert.fail(errorsResult.failed);
  const expected: [string, RegExp][] = [
    ['update(["nope"])', /^UpdateError: Adam\.update: 'nope' is not a parameter of the store \(w, b, c\)$/],
    ['update(["w", "w"])', /^RangeError: .*names.*without repeats/],
    ['update() with the lr schedule NaN at step 2', /^UpdateError: Adam\.update: the lr schedule of parameter 'w' returned NaN at step 2/],
    ["loadStateDict(SGD's dict)", /^StateError: Adam\.loadStateDict: the state was saved by SGD, not Adam$/],
    ['loadStateDict(b of length 6)', /^StateError: Adam\.loadStateDict: parameter 'b' has length 6 in the state, 5 in the GPU store$/],
    ['loadStateDict(a parameter z)', /^StateError: Adam\.loadStateDict: the state has parameter 'z', which the GPU store does not \(w, b, c\)$/],
    ['write("b", 4 values)', /^RangeError: GPUParamStore\.write.*values of 'b'.*a Float32Array of length 5/],
    ['new GPUParamStore(device, { w: -1 })', /^RangeError: GPUParamStore.*shape of 'w'.*-1/],
  ];
  assert.deepEqual(errorsResult.refusals.map((r) => r.call), expected.map(([call]) => call));
  errorsResult.refusals.forEach((r, k) => {
    assert.match(r.error, expected[k]![1], r.call);
    assert.equal(r.changed, null, `${r.call} changed ${r.changed}`);
  });
  assert.deepEqual(errorsResult.subset, { params: ['c:1'], stepCount: 1, afterReset: [] });
  // Prodigy: a refused load or step leaves its estimate d (on the device) as it was; reset() puts d back to d0.
  const global: [string, RegExp][] = [
    ['loadStateDict(estimLr -1)', /^StateError: Prodigy\.loadStateDict: the optimizer scalar 'estimLr' is -1, expected a finite number >= 0$/],
    ['loadStateDict(no scalars)', /^StateError: Prodigy\.loadStateDict: the state has no optimizer scalars/],
    ['loadStateDict(an unknown scalar)', /^StateError: Prodigy\.loadStateDict: the state's optimizer scalars are \[estimLr, numeratorWeighted, growth\], expected \[estimLr, numeratorWeighted\]$/],
    ['update() with the lr schedule NaN at step 3', /^UpdateError: Prodigy\.update: the lr schedule of parameter 'w' returned NaN at step 3/],
  ];
  assert.deepEqual(errorsResult.global.refusals.map((r) => r.call), global.map(([call]) => call));
  errorsResult.global.refusals.forEach((r, k) => {
    assert.match(r.error, global[k]![1], r.call);
    assert.equal(r.changed, null, `${r.call} changed ${r.changed}`);
  });
  // d0 = 1e-3 as float32 (the device keeps d in float32), r = 0.
  assert.deepEqual(errorsResult.global.afterReset, { estimLr: Math.fround(1e-3), numeratorWeighted: 0 });
});

it('a parameter longer than one row of workgroups (65535 x 64 elements): one SGD step is p - lr g in float32 at every element', { skip: chromiumMissing }, () => {
  assert.ok(largeResult !== undefined, 'the browser test did not run');
  if ('failed' in largeResult) assert.fail(largeResult.failed);
  assert.ok(largeResult.length > 65535 * 64);
  assert.equal(largeResult.difference, null);
});

it('a refused step with NaN, +Infinity or -Infinity at every class of position (first, last, SIMD tail, past the last full workgroup, first of a later parameter), for Adam, LAMB and Adafactor (passes with sums between them) and the global rules: the CPU\'s exact error, its param and index, nothing written (a global rule\'s d neither)', { skip: chromiumMissing }, () => {
  assert.ok(plantedResult !== undefined, 'the browser test did not run');
  if ('failed' in plantedResult) assert.fail(plantedResult.failed);
  assert.equal(plantedResult.length, PLANTED.length * PLANTED_CASES.length);
  plantedResult.forEach((r, k) => {
    const planted = PLANTED[k % PLANTED.length]!;
    const c = PLANTED_CASES[Math.floor(k / PLANTED.length)]!;
    const kind = Number.isNaN(planted.value) ? 'NaN' : String(planted.value);
    const label = `${c.name}, ${planted.where}: ${planted.param}[${planted.index}] = ${kind}`;
    assert.equal(r.rule, c.name, label);
    // Where it was planted, in the CPU's words: the expectation comes from the plant, not from either side.
    assert.equal(r.cpuError, `UpdateError: ${c.name}.update: gradient '${planted.param}' is not finite at index ${planted.index} (${kind})`, label);
    assert.equal(r.gpuError, r.cpuError, label);
    assert.equal(r.gpuParam, planted.param, label);
    assert.equal(r.gpuIndex, planted.index, label);
    assert.equal(r.paramsKept, null, `${label}: the refused step changed the params: ${r.paramsKept}`);
    assert.equal(r.stateKept, null, `${label}: the refused step changed the state: ${r.stateKept}`);
    assert.equal(r.stepCount, 2, label);
    // A global rule's d (in the state dict's scalars, compared by stateKept) would have moved with finite gradients.
    const global = RULES.find((entry) => entry.key === c.key)!.rule!.global !== undefined;
    assert.equal(r.estimateWouldMove, global ? true : null, label);
  });
});

it("LAMB and Adafactor at scale (two tree levels past 4096 values, more segments than one dispatch takes) within the bound of the CPU's; Adafactor's state moved to another store steps bit for bit as on one; a state made for another shape, and a tensor of rank 3 it would factor, refused changing nothing", { skip: chromiumMissing }, () => {
  assert.ok(programsResult !== undefined, 'the browser test did not run');
  if ('failed' in programsResult) assert.fail(programsResult.failed);
  const r = programsResult;
  assert.deepEqual(r.scale.map((run) => [run.length, run.depth]), [[70000, 24], [78000, 24], [140000, 24]]);
  for (const run of r.scale) assert.ok(run.parity <= 1, `${run.name}: the GPU's params differ from the CPU's by ${run.parity} times the bound`);
  assert.equal(r.moved, null, `moveTo: ${r.moved}`);
  assert.equal(r.refusal, "StateError: Adafactor.loadStateDict: parameter 'w' of the GPU store: its optimizer state keeps a factored 7 x 13 matrix, its shape [91] asks for the full second moment (not factored)");
  assert.equal(r.refusalChanged, null, `the refused load changed ${r.refusalChanged}`);
  assert.match(r.rank3.error, /^UpdateError: Adafactor\.update: parameter 'x' has shape \[4, 5, 6\]: Adafactor factors matrices only/);
  assert.deepEqual([r.rank3.stepCount, r.rank3.params], [0, []], 'the refused update changed the counters or made state');
});

/*
 * Past 4096 partials the tree over them has two levels: 4100 parameters of one element
 * (a partial each) and one of 9000 (3 partials, the last ones) make 4103, summed by 2
 * workgroups, then 1. L = 12 + 12 ceil(log_4096 4103) = 36, so the estimate's budget is
 * 2 (36 + 14) EPS per step's absolute terms (the derivation above with this L). A level
 * skipped or summing the wrong partials drops some of them (9000 of the 13100
 * elements are the last partials'), which moves d by a factor or a large fraction of
 * itself: far outside a budget of some 5e-5 relative.
 */
it('Prodigy and D-Adapt AdamW over more than 4096 partials (4100 parameters of one element and one of 9000: two tree levels over the partials): d within the budget of depth 36 of the CPU\'s, d moved, the params within the bound', { skip: chromiumMissing }, () => {
  assert.ok(treeResult !== undefined, 'the browser test did not run');
  if ('failed' in treeResult) assert.fail(treeResult.failed);
  assert.deepEqual(treeResult.runs.map((run) => [run.name, run.partials, run.depth]), [['Prodigy', 4103, 36], ['DAdaptAdamW', 4103, 36]]);
  for (const run of treeResult.runs) {
    assert.deepEqual(Object.keys(run.gpu), ['estimLr', 'numeratorWeighted'], run.name);
    assert.deepEqual(Object.keys(run.cpu), ['estimLr', 'numeratorWeighted'], run.name);
    assert.ok(run.gpu.numeratorWeighted! > 0 && run.cpu.numeratorWeighted! > 0, `${run.name}: r is not positive (${run.gpu.numeratorWeighted}, ${run.cpu.numeratorWeighted})`);
    assert.ok(run.estimateParity <= 1, `${run.name}: the GPU's d (${run.gpu.estimLr}) differs from the CPU's (${run.cpu.estimLr}) by ${run.relative} relative, ${run.estimateParity} times its bound ${run.bound}`);
    assert.ok(run.estimateGrowth > 2, `${run.name}: d hardly moved (${run.estimateGrowth} d0)`);
    assert.ok(run.parity <= 1, `${run.name}: the GPU's params differ from the CPU's by ${run.parity} times the bound`);
  }
});

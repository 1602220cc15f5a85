/**
 * nesterov/tfjs on TF.js's webgpu backend, the 'webgpu' path: our fused WGSL kernels on
 * the variables' buffers (test/tfjs-webgpu-page.ts, bundled by esbuild and served from
 * 127.0.0.1 to Debian's Chromium, WebGPU on SwiftShader), against the cpu backend's
 * kernel path (our WebAssembly kernels), for Adam and Nesterov (and Prodigy and D-Adapt
 * AdamW, whose estimate d is reduced on the device: within a bound, not bit for bit):
 * - 20 steps of applyGradients, the same gradients on both backends: each value within
 *   the bound of docs/webgpu.md (float32, T = 20), EPS ((16 + 6 T) sum_t |dp_t| + T max_t |p_t|);
 *   on SwiftShader they agree bit for bit, and that is asserted too. LAMB and Adafactor,
 *   whose sums the GPU takes in float32 trees and the CPU in float64, within the bound with
 *   their r sums (docs/webgpu.md: (16 + r D) EPS per step instead of 16, D = 12 for these
 *   300 elements; LAMB r = 2, Adafactor r = 5).
 * - 20 steps of model.fit: here the gradients themselves come from each backend's ops
 *   (tanh, matmul), which round differently by an ulp or two; test/tfjs-browser.test.ts's
 *   bound for that, 1e-6 relative (about sixteen ulps), holds.
 * - 10 steps, getWeights, setWeights into a fresh optimizer, 10 more: bit for bit the 20
 *   straight steps (the same kernels on the same state).
 * - tf.memory().numTensors unchanged over 20 steps of model.fit.
 * - A NaN gradient with nonFinite 'error': refused writing nothing, its error (the core's
 *   words) raised by `await sync()`, or by the next applyGradients once the device has
 *   reported it; then steps go on.
 * - Which path each kind of optimizer takes on webgpu.
 * Skipped, saying so, where /usr/bin/chromium is missing.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { chromiumMissing, pageReport } from './browser-report.ts';
import type { BackendReport } from './tfjs-webgpu-page.ts';

const EPS = 2 ** -23;
const STEPS = 20;
const skip = chromiumMissing;

let report: { cpu: BackendReport; webgpu: BackendReport } | undefined;

async function run(): Promise<{ cpu: BackendReport; webgpu: BackendReport }> {
  if (report !== undefined) return report;
  const result = await pageReport<Record<string, BackendReport | { failed: string }>>(new URL('./tfjs-webgpu-page.ts', import.meta.url), { title: 'nesterov/tfjs webgpu' });
  const pages = result as Record<string, BackendReport | { failed: string }>;
  for (const backend of ['cpu', 'webgpu']) {
    const r = pages[backend]!;
    if ('failed' in r) assert.fail(`${backend}: ${r.failed}`);
  }
  report = pages as { cpu: BackendReport; webgpu: BackendReport };
  return report;
}

for (const name of ['adam', 'nesterov', 'schedulefree']) {
  it(`${name}: 20 steps of applyGradients on webgpu (path 'webgpu') equal the cpu backend's kernel path within the bound of docs/webgpu.md, and bit for bit on SwiftShader`, { skip, timeout: 600_000 }, async () => {
    const { cpu, webgpu } = await run();
    const c = cpu.applied[name]!;
    const g = webgpu.applied[name]!;
    assert.equal(c.path, 'kernel');
    assert.equal(g.path, 'webgpu');
    let worst = 0;
    let identical = true;
    c.params.forEach((p, k) => p.forEach((x, i) => {
      const bound = EPS * ((16 + 6 * STEPS) * c.moved[k]![i]! + STEPS * c.largest[k]![i]!);
      const error = Math.abs(g.params[k]![i]! - x);
      if (!Object.is(g.params[k]![i]!, x)) identical = false;
      worst = Math.max(worst, error === 0 ? 0 : error / bound);
    }));
    assert.ok(worst <= 1, `${name}: the webgpu path differs from the kernel path by ${worst} times the bound`);
    assert.ok(identical, `${name}: within the bound (${worst} of it) but not bit for bit`);
    assert.equal(g.tensors[1], g.tensors[0], `${name}: ${g.tensors[0]} tensors after the first step, ${g.tensors[1]} after 20`);
    if (name === 'schedulefree') {
      // eval() and train() move the variables on the GPU as the core's eval(params) / train(params) do.
      assert.deepEqual(g.evaluated, c.evaluated, 'after eval()');
      assert.deepEqual(g.trained, c.trained, 'after train()');
      assert.notDeepEqual(g.evaluated, g.params);
    }
  });
}

for (const name of ['prodigy', 'dadapt']) {
  it(`${name}: 20 steps of applyGradients on webgpu (path 'webgpu': the estimate d reduced on the device) against the cpu backend's kernel path: d within 1e-4 relative, the params within the bound of docs/webgpu.md and 3e-4 of their movement besides; no tensor leak`, { skip, timeout: 600_000 }, async () => {
    const { cpu, webgpu } = await run();
    const c = cpu.applied[name]!;
    const g = webgpu.applied[name]!;
    assert.equal(c.path, 'kernel');
    assert.equal(g.path, 'webgpu');
    // d sums over every variable in float32 on the device, in float64 on the cpu (docs/webgpu.md
    // derives the budget; test/webgpu-browser.test.ts checks it per run): 1e-4 is far above it
    // here, far below what a wrong sum or reduce makes of d (a factor).
    const rho = 1e-4;
    const dCpu = c.scalars!.estimLr!;
    const dGpu = g.scalars!.estimLr!;
    assert.ok(dCpu > 1e-6, `${name}: d did not move from d0 = 1e-6 (${dCpu})`);
    assert.ok(Math.abs(dGpu - dCpu) <= rho * dCpu, `${name}: d is ${dGpu} on webgpu, ${dCpu} on cpu`);
    let worst = 0;
    c.params.forEach((p, k) => p.forEach((x, i) => {
      const bound = (EPS * (16 + 6 * STEPS) + 3 * rho) * c.moved[k]![i]! + EPS * STEPS * c.largest[k]![i]!;
      const error = Math.abs(g.params[k]![i]! - x);
      worst = Math.max(worst, error === 0 ? 0 : error / bound);
    }));
    assert.ok(worst <= 1, `${name}: the webgpu path differs from the kernel path by ${worst} times the bound`);
    assert.equal(g.tensors[1], g.tensors[0], `${name}: ${g.tensors[0]} tensors after the first step, ${g.tensors[1]} after 20`);
  });
}

for (const [name, sums] of [['lamb', 2], ['adafactor', 5]] as const) {
it(`${name}: 20 steps of applyGradients on webgpu (path 'webgpu', its ${sums} sums on the device) equal the cpu backend's kernel path within the bound of docs/webgpu.md with ${sums} sums; no tensor leak`, { skip, timeout: 600_000 }, async () => {
  const { cpu, webgpu } = await run();
  const c = cpu.applied[name]!;
  const g = webgpu.applied[name]!;
  assert.equal(c.path, 'kernel');
  assert.equal(g.path, 'webgpu');
  // D: the depth of the GPU's tree over the longest variable (300 elements: one level of 12).
  const depth = 12;
  let worst = 0;
  c.params.forEach((p, k) => p.forEach((x, i) => {
    const bound = EPS * ((16 + sums * depth + 6 * STEPS) * c.moved[k]![i]! + STEPS * c.largest[k]![i]!);
    const error = Math.abs(g.params[k]![i]! - x);
    worst = Math.max(worst, error === 0 ? 0 : error / bound);
  }));
  assert.ok(worst <= 1, `${name}: the webgpu path differs from the kernel path by ${worst} times the bound`);
  assert.notDeepEqual(g.params, webgpu.applied.adam!.params);
  assert.equal(g.tensors[1], g.tensors[0]);
});
}

it('adam with clipGradNorm 0.5 (scaling every step): 20 steps on webgpu (path \'webgpu\', the norm as TF.js ops in float32) equal the cpu kernel path (the norm in float64) within 1e-6 relative; no tensor leak', { skip, timeout: 600_000 }, async () => {
  const { cpu, webgpu } = await run();
  const c = cpu.applied['adam clipGradNorm']!;
  const g = webgpu.applied['adam clipGradNorm']!;
  assert.equal(c.path, 'kernel');
  assert.equal(g.path, 'webgpu');
  let worst = 0;
  c.params.forEach((p, k) => p.forEach((x, i) => {
    worst = Math.max(worst, Math.abs(g.params[k]![i]! - x) / (1 + Math.abs(x)));
  }));
  assert.ok(worst <= 1e-6, `the clipped run on webgpu differs from the cpu's by ${worst}`);
  // Not the unclipped run: the clip acted.
  assert.notDeepEqual(g.params, webgpu.applied.adam!.params);
  assert.equal(g.tensors[1], g.tensors[0]);
});

for (const name of ['adam', 'nesterov', 'prodigy', 'dadapt', 'adafactor']) {
  it(`${name}: 20 steps of model.fit on webgpu equal the cpu backend's within float32 rounding; 10 + 10 steps through getWeights / setWeights into a fresh optimizer equal 20 straight bit for bit; no tensor leak`, { skip, timeout: 600_000 }, async (t) => {
    const { cpu, webgpu } = await run();
    const c = cpu.fits[name]!;
    const g = webgpu.fits[name]!;
    assert.equal(c.path, 'kernel');
    assert.equal(g.path, 'webgpu');
    let worst = 0;
    g.straight.forEach((w, k) => w.forEach((x, i) => {
      const y = c.straight[k]![i]!;
      worst = Math.max(worst, Math.abs(x - y) / (1 + Math.abs(y)));
    }));
    assert.ok(worst <= 1e-6, `${name}: model.fit on webgpu differs from the cpu backend's by ${worst}`);
    t.diagnostic(`${name}: model.fit on webgpu against cpu: largest relative difference ${worst}`);
    assert.deepEqual(g.resumed, g.straight, `${name}: 10 + 10 steps through getWeights / setWeights differ from 20 straight on webgpu`);
    assert.deepEqual(c.resumed, c.straight, `${name}: 10 + 10 steps through getWeights / setWeights differ from 20 straight on cpu`);
    const [before, afterFirst, afterSecond] = g.tensors;
    assert.equal(afterFirst, before, `${name}: ${before} tensors before model.fit, ${afterFirst} after 20 steps`);
    assert.equal(afterSecond, before, `${name}: ${before} tensors before model.fit, ${afterSecond} after 40 steps`);
  });
}

it("webgpu path, nonFinite 'error': a NaN gradient is refused writing nothing; its error comes at await sync(), or at the next applyGradients once the device has reported it; steps go on", { skip, timeout: 600_000 }, async () => {
  const { webgpu } = await run();
  const r = webgpu.nan!;
  const error = "UpdateError: Adam.update: gradient 'nan_gpu' is not finite at index 1 (NaN)";
  assert.equal(r.path, 'webgpu');
  assert.equal(r.syncError, error);
  assert.equal(r.changed, false, 'the refused step changed the variable or the state');
  assert.equal(r.stepCount, 1);
  assert.equal(r.nextStepCount, 2);
  assert.equal(r.applyError, error);
  assert.equal(r.applyChanged, false, 'the refused step (or the call that raised it) changed the variable or the state');
  assert.equal(r.applyStepCount, 2);
  assert.equal(r.clipError, error, 'with clipGradNorm the NaN is refused at its own index');
  assert.deepEqual(r.partitionPaths, ['webgpu', 'webgpu']);
  assert.equal(r.partitionError, "UpdateError: Adam.update: gradient 'part_b' is not finite at index 1 (NaN)", "a partition's sync() raises its member's refusal");
});

it('a new variable after some steps: the GPU state moves to a larger store GPU to GPU, the steps equal the cpu kernel path bit for bit; a refusal not yet reported moves with it', { skip, timeout: 600_000 }, async () => {
  const { cpu, webgpu } = await run();
  const c = cpu.growing!;
  const g = webgpu.growing!;
  assert.equal(c.path, 'kernel');
  assert.equal(g.path, 'webgpu');
  assert.equal(g.stepCount, 8);
  assert.equal(c.stepCount, 8);
  assert.deepEqual(g.values, c.values);
  assert.equal(g.error, "UpdateError: Adam.update: gradient 'webgpu_grow_a' is not finite at index 1 (NaN)");
  assert.equal(g.changed, false, 'the refused step, or the one submitted after it, changed a variable');
  assert.equal(g.afterStepCount, 8);
});

it("on webgpu 'auto' takes the webgpu path for a rule with a GPU kernel (LAMB's and Adafactor's programs of passes, Prodigy's and D-Adapt AdamW's global phases; Adafactor, Prodigy and D-Adapt AdamW have no TF.js ops); clipGradNorm too; the ops path for nonFinite 'skip' (the kernel path for a rule without ops); the kernel path for wrappers", { skip, timeout: 600_000 }, async () => {
  const { webgpu } = await run();
  assert.deepEqual(webgpu.paths, { adam: 'webgpu', 'adam skip': 'ops', 'adam clipGradNorm': 'webgpu', lamb: 'webgpu', adafactor: 'webgpu', 'adafactor skip': 'kernel', 'ema(adam)': 'kernel', prodigy: 'webgpu', 'dadapt-adamw': 'webgpu', 'prodigy skip': 'kernel' });
});

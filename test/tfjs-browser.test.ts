/**
 * nesterov/tfjs on TF.js's GPU backends, in Debian's Chromium: webgl, and webgpu on
 * SwiftShader (WebGPU without a GPU), the page bundled by esbuild from
 * test/tfjs-browser-page.ts and served from 127.0.0.1. On each backend (the ops path):
 * model.fit with tfOptimizer(new Adam({ lr: 1e-2 })) equals the cpu backend's run (the
 * kernel path) within float32 rounding, 200 steps leave tf.memory().numTensors as after
 * the first, and a NaN gradient is refused with the core's error (nonFinite 'error') or
 * skipped ('skip'), writing nothing, after which a finite step proceeds.
 *
 * The bound: 12 steps of a 6-8-3 network, each step a few dozen float32 operations whose
 * GPU implementations (tanh, exp, sqrt) round differently from the cpu backend's by an ulp
 * or two (2^-24 = 6e-8 relative): 1e-6 relative is about sixteen ulps.
 * Skipped, saying so, where /usr/bin/chromium is missing.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { chromiumMissing, pageReport } from './browser-report.ts';

interface NanResult { error: string | null; changed: boolean; stepCount: number; skippedSteps: number; next: boolean }
interface BackendReport { failed?: string; backend: string; weights: number[][]; leak: [number, number, number]; nanError: NanResult; nanSkip: NanResult }

it('webgl and webgpu: model.fit equals the cpu backend within float32 rounding, no tensor leak, a NaN gradient refused or skipped', { skip: chromiumMissing, timeout: 300_000 }, async () => {
  const report = await pageReport<Record<string, BackendReport>>(new URL('./tfjs-browser-page.ts', import.meta.url), { title: 'nesterov/tfjs' });
  const cpu = report.cpu!;
  assert.equal(cpu.failed, undefined, cpu.failed);
  for (const backend of ['webgl', 'webgpu']) {
    const r = report[backend]!;
    assert.equal(r.failed, undefined, `${backend}: ${r.failed}`);
    assert.equal(r.backend, backend);
    let worst = 0;
    r.weights.forEach((w, k) => w.forEach((x, i) => {
      const y = cpu.weights[k]![i]!;
      worst = Math.max(worst, Math.abs(x - y) / (1 + Math.abs(y)));
    }));
    assert.ok(worst <= 1e-6, `${backend}: model.fit differs from the cpu backend's by ${worst}`);
    const [first, last, leftAfterDispose] = r.leak;
    assert.equal(last, first, `${backend}: ${first} tensors after the first step, ${last} after 200`);
    assert.equal(leftAfterDispose, 0);
    assert.deepEqual(r.nanError, { error: `Adam.update: gradient 'nan_${backend}_error' is not finite at index 1 (NaN)`, changed: false, stepCount: 1, skippedSteps: 0, next: true });
    assert.deepEqual(r.nanSkip, { error: null, changed: false, stepCount: 1, skippedSteps: 1, next: true });
  }
});

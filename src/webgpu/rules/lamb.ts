/**
 * LAMB on the GPU: assembly/rules/lamb.ts's two kernels, and between them the two sums
 * of squares the CPU takes in JS (src/rules/lamb.ts `lambNorms`), here a reduction on
 * the device (../reduce.ts) into the scratch slot `norms`: ||p||^2 and ||u||^2 of the
 * parameter, u from the moments just written. The apply kernel takes the trust ratio
 * from them (optax's safe ratio: 1 when either norm is 0) times the uniform -lr, which
 * the rule's own scalars give: its `stepWasm`, run on the zero-length twin, sums nothing
 * and so writes step = -lr * 1.
 */
import type { GpuRuleKernels } from '../kernel.ts';
import { kernelPass, type GpuProgram, type PassShape } from '../program.ts';

/** The scalars one kernel does not read because the other does, or because the sums come from the device. */
const MOMENTS_IGNORES = {
  bias1: 'read by lambApply and the norms',
  bias2: 'read by lambApply and the norms',
  eps: 'read by lambApply and the norms',
  wd: 'read by lambApply and the norms',
  step: 'read by lambApply',
  paramSquares: 'summed on the device (the norms pass)',
  updateSquares: 'summed on the device (the norms pass)',
};

export const lambGpu: GpuRuleKernels = {
  /** m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2 (g negated with maximize). */
  lambMoments: {
    uniforms: {
      beta1: (s) => s.beta1!,
      beta2: (s) => s.beta2!,
      omb1: (s) => 1 - s.beta1!,
      omb2: (s) => 1 - s.beta2!,
      sign: (s) => s.sign!,
    },
    body: `let gi = g[i] * s.sign;
  let mi = m[i] * s.beta1 + s.omb1 * gi;
  let vi = v[i] * s.beta2 + s.omb2 * gi * gi;
  m[i] = mi;
  v[i] = vi;`,
    ignores: MOMENTS_IGNORES,
  },
  /**
   * u = (m / bias1) / (sqrt(v / bias2) + eps) + wd p; p += -lr ratio u, ratio =
   * sqrt(||p||^2) / sqrt(||u||^2) from the scratch (`red[s.normsAt]`, `red[s.normsAt + 1]`).
   */
  lambApply: {
    uniforms: {
      bias1: (s) => s.bias1!,
      bias2: (s) => s.bias2!,
      eps: (s) => s.eps!,
      wd: (s) => s.wd!,
      negLr: (s) => s.step!,
    },
    body: `let pi = p[i];
  var u = m[i] / s.bias1 / (sqrt(v[i] / s.bias2) + s.eps);
  if (s.wd != 0.0) { u = u + s.wd * pi; }
  let paramSquares = red[s.normsAt];
  let updateSquares = red[s.normsAt + 1u];
  var ratio = 1.0;
  if (paramSquares != 0.0 && updateSquares != 0.0) { ratio = sqrt(paramSquares) / sqrt(updateSquares); }
  p[i] = pi + (s.negLr * ratio) * u;`,
    ignores: {
      beta1: 'read by lambMoments',
      beta2: 'read by lambMoments',
      sign: 'read by lambMoments',
      paramSquares: 'summed on the device (the norms pass)',
      updateSquares: 'summed on the device (the norms pass)',
    },
  },
};

const MOMENTS = kernelPass('moments', lambGpu.lambMoments!, ['g', 'm', 'v']);
const APPLY = kernelPass('apply', lambGpu.lambApply!, ['p', 'm', 'v'], ['norms']);

/** ||p||^2 and ||u||^2 over the parameter, u as lambApply computes it (the CPU's lambNorms, in float32). */
const NORMS: PassShape = {
  label: 'norms',
  arrays: ['p', 'm', 'v'],
  uniforms: { bias1: (s) => s.bias1!, bias2: (s) => s.bias2!, eps: (s) => s.eps!, wd: (s) => s.wd! },
  terms: 2,
  body: `let pi = p[i];
    var u = m[i] / s.bias1 / (sqrt(v[i] / s.bias2) + s.eps);
    if (s.wd != 0.0) { u = u + s.wd * pi; }
    t[0] = pi * pi;
    t[1] = u * u;`,
};

export const lambProgram: GpuProgram = {
  plan(step) {
    const calls = step.capture();
    const moments = calls.find((call) => call.entry === 'lambMoments');
    const apply = calls.find((call) => call.entry === 'lambApply');
    if (calls.length !== 2 || moments === undefined || apply === undefined) throw new Error(`LAMB's GPU program: the rule called ${calls.map((call) => call.entry).join(', ')}, not lambMoments then lambApply`);
    const n = step.length;
    return {
      sums: { norms: 2 },
      calls: [
        { shape: MOMENTS, roles: moments.roles, scalars: moments.scalars, n },
        { shape: NORMS, roles: apply.roles, scalars: apply.scalars, n, segments: 1, segStride: 0, elemStride: 1, into: 'norms' },
        { shape: APPLY, roles: apply.roles, scalars: apply.scalars, n },
      ],
    };
  },
};

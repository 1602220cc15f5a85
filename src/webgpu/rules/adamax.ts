/** Adamax on the GPU: assembly/rules/adamax.ts, u = max(beta2 u, |g| + eps); p += (step m) / u. */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const adamaxGpu: GpuRuleKernels = {
  adamax: {
    uniforms: {
      stepSize: (s) => s.step!,
      beta1: (s) => s.beta1!,
      beta2: (s) => s.beta2!,
      omb1: (s) => 1 - s.beta1!,
      eps: (s) => s.eps!,
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
      shrink: (s) => s.shrink!,
    },
    body: `${GRADIENT}
  let mi = m[i] * s.beta1 + s.omb1 * gi;
  let ui = max(u[i] * s.beta2, abs(gi) + s.eps);
  m[i] = mi;
  u[i] = ui;
  ${PARAM}
  p[i] = p0 + (s.stepSize * mi) / ui;`,
  },
};

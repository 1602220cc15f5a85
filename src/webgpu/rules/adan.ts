/** Adan on the GPU: assembly/rules/adan.ts (delta 0 at the first step). */
import type { GpuRuleKernels } from '../kernel.ts';

export const adanGpu: GpuRuleKernels = {
  adan: {
    uniforms: {
      ms: (s) => s.mStep!,
      vs: (s) => s.vStep!,
      rootEps: (s) => s.rootEps!,
      eps: (s) => s.eps!,
      beta1: (s) => s.beta1!,
      beta2: (s) => s.beta2!,
      beta3: (s) => s.beta3!,
      omb1: (s) => 1 - s.beta1!,
      omb2: (s) => 1 - s.beta2!,
      omb3: (s) => 1 - s.beta3!,
      first: (s) => (s.first === 1 ? 1 : 0),
      shrink: (s) => s.shrink!,
      decoupled: (s) => (s.shrink !== 1 ? 1 : 0),
      sign: (s) => s.sign!,
    },
    body: `let gi = g[i] * s.sign;
  var pi = p[i];
  if (s.decoupled != 0.0) { pi = pi * s.shrink; }
  var delta = 0.0;
  if (s.first == 0.0) { delta = gi - prev[i]; }
  let mi = s.beta1 * m[i] + s.omb1 * gi;
  let vi = s.beta2 * v[i] + s.omb2 * delta;
  let look = gi + s.omb2 * delta;
  let ni = s.beta3 * sq[i] + s.omb3 * look * look;
  m[i] = mi;
  v[i] = vi;
  sq[i] = ni;
  prev[i] = gi;
  p[i] = pi + (s.ms * mi + s.vs * vi) / (sqrt(ni + s.rootEps) + s.eps);`,
  },
};

/** Schedule-Free AdamW on the GPU: assembly/rules/schedulefree-adamw.ts, and the eval/train lerp. */
import type { GpuRuleKernels } from '../kernel.ts';
import { SCHEDULE_FREE_LERP } from './schedulefree-sgd.ts';

export const scheduleFreeAdamwGpu: GpuRuleKernels = {
  scheduleFreeAdamw: {
    uniforms: {
      c: (s) => s.c!,
      yStep: (s) => s.yStep!,
      zStep: (s) => s.zStep!,
      first: (s) => (s.first === 1 ? 1 : 0),
      beta2: (s) => s.beta2!,
      omb2: (s) => 1 - s.beta2!,
      gscale: (s) => Math.sqrt(s.bc2!),
      eps: (s) => s.eps! * Math.sqrt(s.bc2!),
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
    },
    body: `let yi = p[i];
  var zi = yi;
  if (s.first == 0.0) { zi = z[i]; }
  let gi = s.sign * g[i];
  let vi = v[i] * s.beta2 + s.omb2 * gi * gi;
  v[i] = vi;
  var gn = (s.gscale * gi) / (sqrt(vi) + s.eps);
  if (s.wd != 0.0) { gn = gn + s.wd * yi; }
  p[i] = yi + s.c * (zi - yi) + s.yStep * gn;
  z[i] = zi + s.zStep * gn;`,
  },
  scheduleFreeLerp: SCHEDULE_FREE_LERP,
};

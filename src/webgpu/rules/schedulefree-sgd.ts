/** Schedule-Free SGD on the GPU: assembly/rules/schedulefree-sgd.ts (z starts at y), and the eval/train lerp. */
import { GRADIENT, type GpuKernel, type GpuRuleKernels } from '../kernel.ts';

/** p <- p + w (z - p): eval and train (`scheduleFreeLerp`). */
export const SCHEDULE_FREE_LERP: GpuKernel = {
  uniforms: { w: (s) => s.w! },
  body: `let pi = p[i];
  p[i] = pi + s.w * (z[i] - pi);`,
};

export const scheduleFreeSgdGpu: GpuRuleKernels = {
  scheduleFreeSgd: {
    uniforms: {
      c: (s) => s.c!,
      yStep: (s) => s.yStep!,
      zStep: (s) => s.zStep!,
      first: (s) => (s.first === 1 ? 1 : 0),
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
    },
    body: `let yi = p[i];
  var zi = yi;
  if (s.first == 0.0) { zi = z[i]; }
  ${GRADIENT}
  p[i] = yi + s.c * (zi - yi) + s.yStep * gi;
  z[i] = zi + s.zStep * gi;`,
  },
  scheduleFreeLerp: SCHEDULE_FREE_LERP,
};

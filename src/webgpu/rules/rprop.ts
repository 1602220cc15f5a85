/** Rprop on the GPU: assembly/rules/rprop.ts, the step sizes grown or shrunk by the sign of g g_prev. */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const rpropGpu: GpuRuleKernels = {
  rprop: {
    uniforms: {
      etaMinus: (s) => s.etaMinus!,
      etaPlus: (s) => s.etaPlus!,
      lo: (s) => s.stepSizeMin!,
      hi: (s) => s.stepSizeMax!,
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
      shrink: (s) => s.shrink!,
    },
    body: `${GRADIENT}
  let q = gi * prev[i];
  var factor = 1.0;
  if (q > 0.0) { factor = s.etaPlus; } else if (q < 0.0) { factor = s.etaMinus; }
  let si = min(max(stepSize[i] * factor, s.lo), s.hi);
  stepSize[i] = si;
  if (q < 0.0) { gi = 0.0; }
  ${PARAM}
  if (gi > 0.0) { p0 = p0 - si; } else if (gi < 0.0) { p0 = p0 + si; }
  p[i] = p0;
  prev[i] = gi;`,
  },
};

/** RMSProp on the GPU: assembly/rules/rmsprop.ts, centered and with momentum as the flags say. */
import { GRADIENT, PARAM, type GpuRuleKernels } from '../kernel.ts';

export const rmspropGpu: GpuRuleKernels = {
  rmsprop: {
    uniforms: {
      lr: (s) => s.lr!,
      alpha: (s) => s.alpha!,
      oneMinusAlpha: (s) => 1 - s.alpha!,
      eps: (s) => s.eps!,
      mu: (s) => s.mu!,
      centered: (s) => s.centered!,
      useMomentum: (s) => s.useMomentum!,
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
      shrink: (s) => s.shrink!,
    },
    body: `${GRADIENT}
  let si = sq[i] * s.alpha + s.oneMinusAlpha * gi * gi;
  sq[i] = si;
  var d: f32;
  if (s.centered != 0.0) {
    let c = ga[i] * s.alpha + s.oneMinusAlpha * gi;
    ga[i] = c;
    d = sqrt(max(si - c * c, 0.0)) + s.eps;
  } else {
    d = sqrt(si) + s.eps;
  }
  ${PARAM}
  if (s.useMomentum != 0.0) {
    let bi = buf[i] * s.mu + gi / d;
    buf[i] = bi;
    p[i] = p0 + -s.lr * bi;
  } else {
    p[i] = p0 + (-s.lr * gi) / d;
  }`,
  },
};

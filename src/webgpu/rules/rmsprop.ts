/** RMSProp on the GPU: assembly/rules/rmsprop.ts, centered and with momentum as the flags say. */
import { GRADIENT, type GpuRuleKernels } from '../kernel.ts';

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
  if (s.useMomentum != 0.0) {
    let bi = buf[i] * s.mu + gi / d;
    buf[i] = bi;
    p[i] = p[i] + -s.lr * bi;
  } else {
    p[i] = p[i] + (-s.lr * gi) / d;
  }`,
  },
};

/** Adam (and AdamW, which runs the same kernels) on the GPU: assembly/rules/adam.ts. */
import { GRADIENT, type GpuRuleKernels } from '../kernel.ts';

export const adamGpu: GpuRuleKernels = {
  /**
   * 'pytorch': m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2 (amsgrad: v =
   * max(vmax, v)); p = p shrink + (nss m) / (sqrt(v) + eps bc2sqrt), nss = negativeStepSize bc2sqrt.
   */
  adam: {
    uniforms: {
      nss: (s) => s.negativeStepSize! * s.bc2sqrt!,
      beta1: (s) => s.beta1!,
      beta2: (s) => s.beta2!,
      omb1: (s) => 1 - s.beta1!,
      omb2: (s) => 1 - s.beta2!,
      eps: (s) => s.eps! * s.bc2sqrt!,
      amsgrad: (s) => s.amsgrad!,
      shrink: (s) => s.shrink!,
      decoupled: (s) => (s.shrink !== 1 ? 1 : 0),
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
    },
    body: `${GRADIENT}
  var pi = p[i];
  if (s.decoupled != 0.0) { pi = pi * s.shrink; }
  let mi = m[i] * s.beta1 + s.omb1 * gi;
  var vi = v[i] * s.beta2 + s.omb2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  if (s.amsgrad != 0.0) {
    vi = max(vmax[i], vi);
    vmax[i] = vi;
  }
  p[i] = pi + (s.nss * mi) / (sqrt(vi) + s.eps);`,
  },
  /** 'book': m += (1 - beta1)(g - m); v += (1 - beta2)(g^2 - v); p = p shrink - (lrT m) / (sqrt(v) + eps). */
  adamBook: {
    uniforms: {
      lrT: (s) => s.lrT!,
      omb1: (s) => 1 - s.beta1!,
      omb2: (s) => 1 - s.beta2!,
      eps: (s) => s.eps!,
      shrink: (s) => s.shrink!,
      decoupled: (s) => (s.shrink !== 1 ? 1 : 0),
      sign: (s) => s.sign!,
      wd: (s) => s.wd!,
    },
    body: `${GRADIENT}
  var pi = p[i];
  if (s.decoupled != 0.0) { pi = pi * s.shrink; }
  let mOld = m[i];
  let vOld = v[i];
  let mi = mOld + s.omb1 * (gi - mOld);
  let vi = vOld + s.omb2 * (gi * gi - vOld);
  m[i] = mi;
  v[i] = vi;
  p[i] = pi - (s.lrT * mi) / (sqrt(vi) + s.eps);`,
  },
};

/** Momentum as TF.js ops (see ops.ts): 'classic' (velocity) and 'pytorch' (buffer). */
import * as tf from '@tensorflow/tfjs-core';
import type { MomentumHyper } from '../../rules/momentum.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const momentumOps: RuleOps<MomentumHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const lr = s.lr;
    const b = buffers[0]!;
    if (h.variant === 'classic') {
      const v = tf.sub(tf.mul(b, h.momentum), tf.mul(gi, lr));
      return [tf.add(p0, v), v];
    }
    const next = s.step === 1 ? gi : tf.add(tf.mul(b, h.momentum), tf.mul(gi, 1 - h.dampening));
    return [tf.sub(p0, tf.mul(next, lr)), next];
  },
};

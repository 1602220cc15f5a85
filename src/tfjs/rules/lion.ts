/** Lion as TF.js ops (see ops.ts): c = beta1 m + (1 - beta1) g; p (1 - lr wd) - lr sign(c); m = beta2 m + (1 - beta2) g. */
import * as tf from '@tensorflow/tfjs-core';
import type { LionHyper } from '../../rules/lion.ts';
import { effectiveGradient, type RuleOps } from './ops.ts';

export const lionOps: RuleOps<LionHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, false); // its decay is decoupled
    const m = buffers[0]!;
    const c = tf.add(tf.mul(m, h.beta1), tf.mul(gi, 1 - h.beta1));
    const decayed = h.weightDecay !== 0 ? tf.mul(p, 1 - s.lr * h.weightDecay) : p;
    return [tf.sub(decayed, tf.mul(tf.sign(c), s.lr)), tf.add(tf.mul(m, h.beta2), tf.mul(gi, 1 - h.beta2))];
  },
};

/** LAMB as TF.js ops (see ops.ts): Adam's bias-corrected u plus wd p, times the trust ratio ||p|| / ||u|| of this tensor. */
import * as tf from '@tensorflow/tfjs-core';
import type { LAMBHyper } from '../../rules/lamb.ts';
import { effectiveGradient, type RuleOps } from './ops.ts';

export const lambOps: RuleOps<LAMBHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, false); // its decay is inside the update
    const m = tf.add(tf.mul(buffers[0]!, h.beta1), tf.mul(gi, 1 - h.beta1));
    const v = tf.add(tf.mul(buffers[1]!, h.beta2), tf.mul(tf.square(gi), 1 - h.beta2));
    const bc1 = 1 - h.beta1 ** s.step;
    const bc2 = 1 - h.beta2 ** s.step;
    let u = tf.div(tf.div(m, bc1), tf.add(tf.sqrt(tf.div(v, bc2)), h.eps));
    if (h.weightDecay !== 0) u = tf.add(u, tf.mul(p, h.weightDecay));
    const paramNorm = tf.norm(p);
    const updateNorm = tf.norm(u);
    const bothPositive = tf.logicalAnd(tf.greater(paramNorm, 0), tf.greater(updateNorm, 0));
    const ratio = tf.where(bothPositive, tf.div(paramNorm, tf.where(bothPositive, updateNorm, tf.onesLike(updateNorm))), tf.onesLike(paramNorm));
    return [tf.sub(p, tf.mul(u, tf.mul(ratio, s.lr))), m, v];
  },
};

/** Adamax as TF.js ops (see ops.ts). */
import * as tf from '@tensorflow/tfjs-core';
import type { AdamaxHyper } from '../../rules/adamax.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const adamaxOps: RuleOps<AdamaxHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const m = tf.add(tf.mul(buffers[0]!, h.beta1), tf.mul(gi, 1 - h.beta1));
    const u = tf.maximum(tf.mul(buffers[1]!, h.beta2), tf.add(tf.abs(gi), h.eps));
    return [tf.sub(p0, tf.div(tf.mul(m, s.lr / (1 - h.beta1 ** s.step)), u)), m, u];
  },
};

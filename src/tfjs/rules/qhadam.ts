/** QHAdam as TF.js ops (see ops.ts): Adam's moments, then the step on moments and fresh gradient, the bias corrections folded as the kernels fold them. */
import * as tf from '@tensorflow/tfjs-core';
import type { QHAdamHyper } from '../../rules/qhadam.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const qhadamOps: RuleOps<QHAdamHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const d = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const bc1 = 1 - h.beta1 ** s.step;
    const bc2 = 1 - h.beta2 ** s.step;
    const dd = tf.square(d);
    const m = tf.add(tf.mul(buffers[0]!, h.beta1), tf.mul(d, 1 - h.beta1));
    const v = tf.add(tf.mul(buffers[1]!, h.beta2), tf.mul(dd, 1 - h.beta2));
    const numerator = tf.add(tf.mul(d, -s.lr * (1 - h.nu1)), tf.mul(m, (-s.lr * h.nu1) / bc1));
    const denominator = tf.add(tf.sqrt(tf.add(tf.mul(dd, 1 - h.nu2), tf.mul(v, h.nu2 / bc2))), h.eps);
    return [tf.add(p0, tf.div(numerator, denominator)), m, v];
  },
};

/** Adadelta as TF.js ops (see ops.ts). */
import * as tf from '@tensorflow/tfjs-core';
import type { AdadeltaHyper } from '../../rules/adadelta.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const adadeltaOps: RuleOps<AdadeltaHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const square = tf.add(tf.mul(buffers[0]!, h.rho), tf.mul(tf.square(gi), 1 - h.rho));
    const delta = tf.mul(tf.div(tf.sqrt(tf.add(buffers[1]!, h.eps)), tf.sqrt(tf.add(square, h.eps))), gi);
    const acc = tf.add(tf.mul(buffers[1]!, h.rho), tf.mul(tf.square(delta), 1 - h.rho));
    return [tf.sub(p0, tf.mul(delta, s.lr)), square, acc];
  },
};

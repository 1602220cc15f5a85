/** QHM as TF.js ops (see ops.ts): the dampened buffer, then the step on buffer and gradient. */
import * as tf from '@tensorflow/tfjs-core';
import type { QHMHyper } from '../../rules/qhm.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const qhmOps: RuleOps<QHMHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const d = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const b = tf.add(tf.mul(buffers[0]!, h.momentum), tf.mul(d, 1 - h.momentum));
    const next = tf.sub(tf.sub(p0, tf.mul(b, s.lr * h.nu)), tf.mul(d, s.lr * (1 - h.nu)));
    return [next, b];
  },
};

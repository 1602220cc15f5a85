/** Rprop as TF.js ops (see ops.ts): torch's variant, grow on agreement, shrink and hold on a sign flip (see rprop.ts). */
import * as tf from '@tensorflow/tfjs-core';
import type { RpropHyper } from '../../rules/rprop.ts';
import { decayedParam, effectiveGradient, type RuleOps } from './ops.ts';

export const rpropOps: RuleOps<RpropHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, true);
    const p0 = decayedParam(s.hyper, p, s.lr);
    const [prev, sizes] = buffers;
    const start = s.step === 1 ? tf.fill(sizes!.shape, s.lr) : sizes!;
    const agreement = tf.sign(tf.mul(gi, prev!));
    const factor = tf.where(tf.greater(agreement, 0), tf.scalar(h.etaPlus), tf.where(tf.less(agreement, 0), tf.scalar(h.etaMinus), tf.scalar(1)));
    const size = tf.clipByValue(tf.mul(start, factor), h.stepSizeMin, h.stepSizeMax);
    const kept = tf.where(tf.less(agreement, 0), tf.zerosLike(gi), gi);
    return [tf.sub(p0, tf.mul(tf.sign(kept), size)), kept, size];
  },
};

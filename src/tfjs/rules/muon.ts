/**
 * Muon as TF.js ops (see ops.ts): muon.ts's momentum, u normalised, nsSteps quintic
 * Newton-Schulz steps on the wide orientation, scaled by sqrt(max(1, rows / cols));
 * matrix products in float32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NEWTON_SCHULZ_COEFFICIENTS, type MuonHyper } from '../../rules/muon.ts';
import { effectiveGradient, type RuleOps } from './ops.ts';

export const muonOps: RuleOps<MuonHyper> = {
  step(s, p, g, buffers) {
    const h = s.hyper;
    const gi = effectiveGradient(h, p, g, false); // its decay is decoupled
    const [rows, cols] = p.shape as [number, number];
    const beta = h.momentum;
    const m = tf.add(tf.mul(buffers[0]!, beta), tf.mul(gi, 1 - beta));
    const u = h.nesterov ? tf.add(tf.mul(gi, 1 - beta), tf.mul(m, beta)) : m;
    const transposed = rows > cols;
    const wide = (transposed ? tf.transpose(u) : u) as tf.Tensor2D;
    let x = tf.div(wide, tf.add(tf.norm(wide), 1e-7)) as tf.Tensor2D;
    const [a, b, c] = NEWTON_SCHULZ_COEFFICIENTS;
    for (let k = 0; k < h.nsSteps; k++) {
      const gram = tf.matMul(x, x, false, true);
      const poly = tf.add(tf.mul(gram, b), tf.mul(tf.matMul(gram, gram), c)) as tf.Tensor2D;
      x = tf.add(tf.mul(x, a), tf.matMul(poly, x)) as tf.Tensor2D;
    }
    const update = transposed ? tf.transpose(x) : x;
    const decayed = h.weightDecay !== 0 ? tf.mul(p, 1 - s.lr * h.weightDecay) : p;
    return [tf.sub(decayed, tf.mul(update, s.lr * Math.sqrt(Math.max(1, rows / cols)))), m];
  },
};

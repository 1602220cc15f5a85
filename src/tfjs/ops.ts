/**
 * The 'ops' path: each rule of this library written as TF.js ops, for backends whose
 * data lives on a GPU (webgl, webgpu), where reading gradients into a ParamStore would
 * cost a round trip per step. The formulas are the ones of src/rules/ (see the
 * comments there), term for term; the arithmetic is float32 tensor ops, so the results
 * agree with the kernel path to float32 rounding, not to the bit.
 *
 * Every function here runs inside the caller's `tf.tidy`: it returns the new parameter
 * and the new state buffers (in the order of the rule's `bufferNames`), and the caller
 * assigns them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AdaGradHyper } from '../rules/adagrad.ts';
import type { AdamHyper } from '../rules/adam.ts';
import type { MomentumHyper } from '../rules/momentum.ts';
import type { NAdamHyper } from '../rules/nadam.ts';
import type { NesterovHyper } from '../rules/nesterov.ts';
import type { RMSPropHyper } from '../rules/rmsprop.ts';
import type { RAdamHyper } from '../rules/radam.ts';
import type { AdamaxHyper } from '../rules/adamax.ts';
import type { AdadeltaHyper } from '../rules/adadelta.ts';
import type { RpropHyper } from '../rules/rprop.ts';
import type { LionHyper } from '../rules/lion.ts';
import type { LAMBHyper } from '../rules/lamb.ts';
import type { MuonHyper } from '../rules/muon.ts';
import { NEWTON_SCHULZ_COEFFICIENTS } from '../rules/muon.ts';
import { writeScheduleFreeScalars, type ScheduleFreeSGDHyper } from '../rules/schedulefree-sgd.ts';
import type { ScheduleFreeAdamWHyper } from '../rules/schedulefree-adamw.ts';
import type { CommonHyper } from '../rule.ts';

/** The rules the 'ops' path computes (every rule of this library). */
export type RuleName =
  | 'SGD'
  | 'Momentum'
  | 'Nesterov'
  | 'AdaGrad'
  | 'RMSProp'
  | 'Adam'
  | 'AdamW'
  | 'NAdam'
  | 'RAdam'
  | 'Adamax'
  | 'Adadelta'
  | 'Rprop'
  | 'Lion'
  | 'LAMB'
  | 'ScheduleFreeSGD'
  | 'ScheduleFreeAdamW'
  | 'Muon';

/**
 * Rules whose `weightDecay` is their own (decoupled, or inside the update as LAMB's and
 * Schedule-Free's): the gradient they see is only negated for `maximize`.
 */
const OWN_WEIGHT_DECAY: ReadonlySet<RuleName> = new Set<RuleName>(['Lion', 'LAMB', 'ScheduleFreeSGD', 'ScheduleFreeAdamW', 'Muon']);

/** Where writeScheduleFreeScalars puts the scalars of Schedule-Free's step (c, -lr_k, ...): the kernels' layout, read at once. */
const scheduleFreeScalars = new Float64Array(16);

/** What one parameter's step needs besides tensors. */
export interface OpsStep {
  readonly rule: RuleName;
  readonly hyper: CommonHyper | MuonHyper;
  /** This step's learning rate (the schedule already evaluated). */
  readonly lr: number;
  /** The parameter's step number, counting this one (1 on its first step). */
  readonly step: number;
  /** The parameter's scalar state (NAdam's muProduct, Schedule-Free's lrMax and weightSum), updated in place. */
  readonly scalars: Record<string, number>;
}

/** The gradient the kernels see: sign * g, plus coupled weight decay wd * p. */
function effectiveGradient(h: CommonHyper, p: tf.Tensor, g: tf.Tensor): tf.Tensor {
  let gi = h.maximize ? tf.neg(g) : g;
  // AdamW's weightDecay is decoupled (applied to p, not through the gradient).
  const decoupled = (h as CommonHyper & { decoupled?: boolean }).decoupled === true;
  if (h.weightDecay !== 0 && !decoupled) gi = tf.add(gi, tf.mul(p, h.weightDecay));
  return gi;
}

/** One step of `s.rule` for one parameter: [new parameter, ...new state buffers]. */
export function opsStep(s: OpsStep, p: tf.Tensor, g: tf.Tensor, buffers: readonly tf.Tensor[]): tf.Tensor[] {
  const gi = OWN_WEIGHT_DECAY.has(s.rule) ? (s.hyper.maximize ? tf.neg(g) : g) : effectiveGradient(s.hyper as CommonHyper, p, g);
  const lr = s.lr;
  switch (s.rule) {
    case 'SGD':
      return [tf.sub(p, tf.mul(gi, lr))];
    case 'Momentum': {
      const h = s.hyper as MomentumHyper;
      const b = buffers[0]!;
      if (h.variant === 'classic') {
        const v = tf.sub(tf.mul(b, h.momentum), tf.mul(gi, lr));
        return [tf.add(p, v), v];
      }
      const next = s.step === 1 ? gi : tf.add(tf.mul(b, h.momentum), tf.mul(gi, 1 - h.dampening));
      return [tf.sub(p, tf.mul(next, lr)), next];
    }
    case 'Nesterov': {
      const h = s.hyper as NesterovHyper;
      const mu = h.momentum;
      const v = buffers[0]!;
      if (h.variant === 'pytorch') {
        const next = s.step === 1 ? gi : tf.add(tf.mul(v, mu), tf.mul(gi, 1 - h.dampening));
        // TF.js's own useNesterov order: p + (-lr) * (g + b * mu).
        return [tf.add(tf.mul(tf.add(gi, tf.mul(next, mu)), -lr), p), next];
      }
      const vNew = tf.sub(tf.mul(v, mu), tf.mul(gi, lr));
      const carried = h.variant === 'nag' ? v : vNew; // 'book' applies mu^2 to the new velocity
      return [tf.sub(tf.add(p, tf.mul(carried, mu * mu)), tf.mul(gi, (1 + mu) * lr)), vNew];
    }
    case 'AdaGrad': {
      const h = s.hyper as AdaGradHyper;
      const stepSize = h.variant === 'book' ? lr : lr / (1 + (s.step - 1) * h.lrDecay);
      const sum = tf.add(buffers[0]!, tf.square(gi));
      return [tf.sub(p, tf.div(tf.mul(gi, stepSize), tf.add(tf.sqrt(sum), h.eps))), sum];
    }
    case 'RMSProp': {
      const h = s.hyper as RMSPropHyper;
      let k = 0;
      const sq = tf.add(tf.mul(buffers[k++]!, h.alpha), tf.mul(tf.square(gi), 1 - h.alpha));
      const out: tf.Tensor[] = [sq];
      let denominator: tf.Tensor;
      if (h.centered) {
        const c = tf.add(tf.mul(buffers[k++]!, h.alpha), tf.mul(gi, 1 - h.alpha));
        out.push(c);
        denominator = tf.add(tf.sqrt(tf.sub(sq, tf.square(c))), h.eps);
      } else {
        denominator = tf.add(tf.sqrt(sq), h.eps);
      }
      if (h.momentum > 0) {
        const b = tf.add(tf.mul(buffers[k++]!, h.momentum), tf.div(gi, denominator));
        out.push(b);
        return [tf.sub(p, tf.mul(b, lr)), ...out];
      }
      return [tf.sub(p, tf.div(tf.mul(gi, lr), denominator)), ...out];
    }
    case 'Adam':
    case 'AdamW': {
      const h = s.hyper as AdamHyper;
      const bc1 = 1 - h.beta1 ** s.step;
      const bc2 = 1 - h.beta2 ** s.step;
      const shrunk = h.decoupled && h.weightDecay !== 0 ? tf.mul(p, 1 - lr * h.weightDecay) : p;
      const [m0, v0, vMax0] = buffers;
      if (h.variant === 'book') {
        const m = tf.add(m0!, tf.mul(tf.sub(gi, m0!), 1 - h.beta1));
        const v = tf.add(v0!, tf.mul(tf.sub(tf.square(gi), v0!), 1 - h.beta2));
        const lrT = (lr * Math.sqrt(bc2)) / bc1;
        return [tf.sub(shrunk, tf.div(tf.mul(m, lrT), tf.add(tf.sqrt(v), h.eps))), m, v];
      }
      const m = tf.add(tf.mul(m0!, h.beta1), tf.mul(gi, 1 - h.beta1));
      const v = tf.add(tf.mul(v0!, h.beta2), tf.mul(tf.square(gi), 1 - h.beta2));
      const vMax = h.amsgrad ? tf.maximum(vMax0!, v) : undefined;
      const sqrtBc2 = Math.sqrt(bc2);
      // (-lr / bc1) m / (sqrt(v) / sqrt(bc2) + eps), times sqrt(bc2) above and below (as the kernels).
      const update = tf.div(tf.mul(m, (-lr / bc1) * sqrtBc2), tf.add(tf.sqrt(vMax ?? v), h.eps * sqrtBc2));
      return vMax === undefined ? [tf.add(shrunk, update), m, v] : [tf.add(shrunk, update), m, v, vMax];
    }
    case 'NAdam': {
      const h = s.hyper as NAdamHyper;
      const t = s.step;
      const mu = h.beta1 * (1 - 0.5 * 0.96 ** (t * h.momentumDecay));
      const muNext = h.beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * h.momentumDecay));
      const muProduct = s.scalars.muProduct! * mu;
      s.scalars.muProduct = muProduct;
      const sqrtBc2 = Math.sqrt(1 - h.beta2 ** t);
      const gradScale = ((lr * (1 - mu)) / (1 - muProduct)) * -1 * sqrtBc2;
      const avgScale = ((lr * muNext) / (1 - muProduct * muNext)) * -1 * sqrtBc2;
      const m = tf.add(tf.mul(buffers[0]!, h.beta1), tf.mul(gi, 1 - h.beta1));
      const v = tf.add(tf.mul(buffers[1]!, h.beta2), tf.mul(tf.square(gi), 1 - h.beta2));
      const numerator = tf.add(tf.mul(gi, gradScale), tf.mul(m, avgScale));
      return [tf.add(p, tf.div(numerator, tf.add(tf.sqrt(v), h.eps * sqrtBc2))), m, v];
    }
    case 'RAdam': {
      // torch 1.13's _single_tensor_radam; the rho_t branch is per step (see radam.ts).
      const h = s.hyper as RAdamHyper;
      const t = s.step;
      const m = tf.add(tf.mul(buffers[0]!, h.beta1), tf.mul(gi, 1 - h.beta1));
      const v = tf.add(tf.mul(buffers[1]!, h.beta2), tf.mul(tf.square(gi), 1 - h.beta2));
      const bc1 = 1 - h.beta1 ** t;
      const bc2 = 1 - h.beta2 ** t;
      const rhoInf = 2 / (1 - h.beta2) - 1;
      const rhoT = rhoInf - (2 * t * h.beta2 ** t) / bc2;
      if (rhoT > 5) {
        const rect = Math.sqrt(((rhoT - 4) * (rhoT - 2) * rhoInf) / ((rhoInf - 4) * (rhoInf - 2) * rhoT));
        const step = tf.div(tf.mul(m, (lr * rect * Math.sqrt(bc2)) / bc1), tf.add(tf.sqrt(v), h.eps));
        return [tf.sub(p, step), m, v];
      }
      return [tf.sub(p, tf.mul(m, lr / bc1)), m, v];
    }
    case 'Adamax': {
      const h = s.hyper as AdamaxHyper;
      const m = tf.add(tf.mul(buffers[0]!, h.beta1), tf.mul(gi, 1 - h.beta1));
      const u = tf.maximum(tf.mul(buffers[1]!, h.beta2), tf.add(tf.abs(gi), h.eps));
      return [tf.sub(p, tf.div(tf.mul(m, lr / (1 - h.beta1 ** s.step)), u)), m, u];
    }
    case 'Adadelta': {
      const h = s.hyper as AdadeltaHyper;
      const square = tf.add(tf.mul(buffers[0]!, h.rho), tf.mul(tf.square(gi), 1 - h.rho));
      const delta = tf.mul(tf.div(tf.sqrt(tf.add(buffers[1]!, h.eps)), tf.sqrt(tf.add(square, h.eps))), gi);
      const acc = tf.add(tf.mul(buffers[1]!, h.rho), tf.mul(tf.square(delta), 1 - h.rho));
      return [tf.sub(p, tf.mul(delta, lr)), square, acc];
    }
    case 'Rprop': {
      // torch's variant: grow on agreement, shrink and hold on a sign flip (see rprop.ts).
      const h = s.hyper as RpropHyper;
      const [prev, sizes] = buffers;
      const start = s.step === 1 ? tf.fill(sizes!.shape, lr) : sizes!;
      const agreement = tf.sign(tf.mul(gi, prev!));
      const factor = tf.where(tf.greater(agreement, 0), tf.scalar(h.etaPlus), tf.where(tf.less(agreement, 0), tf.scalar(h.etaMinus), tf.scalar(1)));
      const size = tf.clipByValue(tf.mul(start, factor), h.stepSizeMin, h.stepSizeMax);
      const g = tf.where(tf.less(agreement, 0), tf.zerosLike(gi), gi);
      return [tf.sub(p, tf.mul(tf.sign(g), size)), g, size];
    }
    case 'Lion': {
      // lion.ts: c = beta1 m + (1 - beta1) g; p (1 - lr wd) - lr sign(c); m = beta2 m + (1 - beta2) g.
      const h = s.hyper as LionHyper;
      const m = buffers[0]!;
      const c = tf.add(tf.mul(m, h.beta1), tf.mul(gi, 1 - h.beta1));
      const decayed = h.weightDecay !== 0 ? tf.mul(p, 1 - lr * h.weightDecay) : p;
      return [tf.sub(decayed, tf.mul(tf.sign(c), lr)), tf.add(tf.mul(m, h.beta2), tf.mul(gi, 1 - h.beta2))];
    }
    case 'LAMB': {
      // lamb.ts: Adam's bias-corrected u plus wd p, times the trust ratio ||p|| / ||u|| of this tensor.
      const h = s.hyper as LAMBHyper;
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
      return [tf.sub(p, tf.mul(u, tf.mul(ratio, lr))), m, v];
    }
    case 'ScheduleFreeSGD':
    case 'ScheduleFreeAdamW': {
      // schedulefree-sgd.ts / -adamw.ts: the averaging's scalars in double, as the kernels get them.
      const h = s.hyper as ScheduleFreeSGDHyper & ScheduleFreeAdamWHyper;
      const sc = scheduleFreeScalars;
      const state = { step: s.step - 1, lrMax: s.scalars.lrMax!, weightSum: s.scalars.weightSum!, trainMode: 1, z: new Float32Array(0) };
      writeScheduleFreeScalars(sc, state, h, { lr });
      s.scalars.lrMax = state.lrMax;
      s.scalars.weightSum = state.weightSum;
      const c = sc[0]!;
      const zStep = sc[2]!; // -lr_k
      const beta = s.rule === 'ScheduleFreeSGD' ? h.momentum : h.beta1;
      const yStep = zStep * (1 - beta * (1 - c));
      const z = s.step === 1 ? p : buffers[0]!; // z starts as the parameter
      let direction: tf.Tensor;
      const out: tf.Tensor[] = [];
      if (s.rule === 'ScheduleFreeSGD') {
        direction = h.weightDecay !== 0 ? tf.add(gi, tf.mul(p, h.weightDecay)) : gi;
      } else {
        const v = tf.add(tf.mul(buffers[1]!, h.beta2), tf.mul(tf.square(gi), 1 - h.beta2));
        out.push(v);
        direction = tf.div(gi, tf.add(tf.sqrt(tf.div(v, 1 - h.beta2 ** s.step)), h.eps));
        if (h.weightDecay !== 0) direction = tf.add(direction, tf.mul(p, h.weightDecay));
      }
      const y = tf.add(tf.add(p, tf.mul(tf.sub(z, p), c)), tf.mul(direction, yStep));
      return [y, tf.add(z, tf.mul(direction, zStep)), ...out];
    }
    case 'Muon': {
      // muon.ts: momentum, u normalised, nsSteps quintic Newton-Schulz steps on the wide
      // orientation, scaled by sqrt(max(1, rows / cols)); matrix products in float32.
      const h = s.hyper as MuonHyper;
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
      const decayed = h.weightDecay !== 0 ? tf.mul(p, 1 - lr * h.weightDecay) : p;
      return [tf.sub(decayed, tf.mul(update, lr * Math.sqrt(Math.max(1, rows / cols)))), m];
    }
  }
}

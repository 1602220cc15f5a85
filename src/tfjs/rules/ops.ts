/**
 * What each rule's TF.js ops file (beside this one) provides, and the pieces they share.
 *
 * The 'ops' path runs each rule as TF.js ops, for backends whose data lives on a GPU
 * (webgl, webgpu), where reading gradients into a ParamStore would cost a round trip per
 * step. The formulas are the ones of src/rules/ (see the comments there), term for term;
 * the arithmetic is float32 tensor ops, so the results agree with the kernel path to
 * float32 rounding, not to the bit.
 *
 * Every `step` runs inside the caller's `tf.tidy`: it returns the new parameter and the
 * new state buffers (in the order of the rule's `bufferNames`), and the caller assigns them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { CommonHyper } from '../../rule.ts';
import type { MuonHyper } from '../../rules/muon.ts';

/** What one parameter's step needs besides tensors. */
export interface OpsStep<H = CommonHyper | MuonHyper> {
  readonly hyper: H;
  /** This step's learning rate (the schedule already evaluated). */
  readonly lr: number;
  /** The parameter's step number, counting this one (1 on its first step). */
  readonly step: number;
  /** The parameter's scalar state (NAdam's muProduct, Schedule-Free's lrMax and weightSum), updated in place. */
  readonly scalars: Record<string, number>;
}

/** One rule as TF.js ops. */
export interface RuleOps<H = never> {
  /** One step for one parameter: [new parameter, ...new state buffers]. */
  step(s: OpsStep<H>, p: tf.Tensor, g: tf.Tensor, buffers: readonly tf.Tensor[]): tf.Tensor[];
  /** The value a new state buffer starts at (default 0; AdaGrad's initialAccumulatorValue). */
  initialFill?(hyper: H): number;
  /**
   * Schedule-Free: the variables hold y while training; eval() moves them to x and
   * train() back, p <- p + w (z - p) with z the first state buffer and w from this beta.
   */
  averagingBeta?(hyper: H): number;
}

/**
 * The gradient the kernels see: the sign of `maximize` and, for a rule whose weight decay
 * is coupled (added to the gradient), wd * p. A rule whose decay is its own (decoupled, or
 * inside the update as LAMB's and Schedule-Free's) passes `coupled` false; so does
 * `decoupledWeightDecay`, whose decay is `decayedParam`'s.
 */
export function effectiveGradient(h: CommonHyper | MuonHyper, p: tf.Tensor, g: tf.Tensor, coupled: boolean): tf.Tensor {
  let gi = h.maximize ? tf.neg(g) : g;
  const decoupled = (h as Partial<CommonHyper>).decoupledWeightDecay === true;
  if (coupled && h.weightDecay !== 0 && !decoupled) gi = tf.add(gi, tf.mul(p, h.weightDecay));
  return gi;
}

/**
 * The parameter the step starts from: p, or with decoupled weight decay
 * (`decoupledWeightDecay`, AdamW, NAdamW) p * (1 - lr * weightDecay), as the kernels
 * compute it before the rule's own update.
 */
export function decayedParam(h: CommonHyper, p: tf.Tensor, lr: number): tf.Tensor {
  return h.decoupledWeightDecay && h.weightDecay !== 0 ? tf.mul(p, 1 - lr * h.weightDecay) : p;
}

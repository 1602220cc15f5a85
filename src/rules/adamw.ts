/**
 * AdamW: Adam with decoupled weight decay.
 *
 *     p <- p * (1 - lr * weightDecay)       (before the Adam step, not through the gradient)
 *     ... then Adam's update of m, v and p (see adam.ts), with the same variants.
 *
 * Loshchilov & Hutter (2019), "Decoupled weight decay regularization", as
 * `torch.optim.AdamW` computes it: the decay is multiplied by the (scheduled) lr, not
 * by lr / bias correction. Keras' AdamW does the same with weight_decay 0.004 default.
 * `new Adam({ decoupledWeightDecay: true })` (torch 2.x's `Adam(decoupled_weight_decay=True)`)
 * is this rule with Adam's default weightDecay 0, bit for bit.
 *
 * Defaults: lr 0.001, weightDecay 0.01 (PyTorch), beta1 0.9, beta2 0.999, eps 1e-8.
 * State: as Adam.
 */
import { Optimizer, type OptimizerOptions, type Schedulable } from '../optimizer.ts';
import { checkKnownOptions } from '../validate.ts';
import type { UpdateRule } from '../rule.ts';
import {
  ADAM_KERNELS,
  ADAM_OPTION_NAMES,
  adamBufferNames,
  adamBuffersOf,
  adamStep,
  adamStepWasm,
  initAdamState,
  resolveAdamFamily,
  type AdamHyper,
  type AdamOptions,
  type AdamState,
} from './adam.ts';

export type AdamWOptions = AdamOptions;

export const adamwRule: UpdateRule<AdamWOptions, AdamHyper, AdamState> = {
  name: 'AdamW',
  kernels: ADAM_KERNELS,
  optionNames: ADAM_OPTION_NAMES,
  globalOptions: ['variant'],
  key: 'adamw',
  paper: 'Loshchilov & Hutter (2019), "Decoupled weight decay regularization"',
  weightDecayKind: 'decoupled',
  fixedOptions: { amsgrad: 'it decides whether the maxExpAvgSq buffer exists' },
  peers: { torch: 'torch.optim.AdamW', optax: 'optax.adamw', keras: 'keras.optimizers.AdamW' },
  resolve(options) {
    checkKnownOptions('AdamW', options, ADAM_OPTION_NAMES);
    return resolveAdamFamily('AdamW', options, { lr: 0.001, weightDecay: 0.01 }, true);
  },
  bufferNames: adamBufferNames,
  buffersOf: adamBuffersOf,
  scalarNames: [],
  stateBounds: { expAvgSq: { min: 0 }, maxExpAvgSq: { min: 0 } },
  init: initAdamState,
  step: adamStep,
  stepWasm: adamStepWasm,
};

/**
 * AdamW over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new AdamW({ lr: 0.001, weightDecay: 0.01, overrides: [{ params: /^b/, weightDecay: 0 }] });
 * opt.update(params, grads); // in place
 * ```
 */
export class AdamW extends Optimizer<AdamWOptions, AdamHyper, AdamState> {
  constructor(options: Schedulable<AdamWOptions> & OptimizerOptions<AdamWOptions> = {}) {
    super(adamwRule, options);
  }
}

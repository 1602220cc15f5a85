/**
 * NAdamW: NAdam (nadam.ts, PyTorch's momentum schedule) with decoupled weight decay.
 *
 *     p <- p * (1 - lr * weightDecay)        (before the step, not through the gradient)
 *     ... then NAdam's update of m, v, muProduct and p, without decay
 *
 * Loshchilov & Hutter (2019), "Decoupled weight decay regularization", applied to Dozat
 * (2016), as torch 2.x's `NAdam(decoupled_weight_decay=True)` computes it
 * (`_single_tensor_nadam`: `param.mul_(1 - lr * weight_decay)`, then the step). It is
 * `new NAdam({ decoupledWeightDecay: true })` with a weight decay by default, bit for bit
 * (the same rule, kernels and scalars).
 *
 * Defaults: lr 0.002, beta1 0.9, beta2 0.999, eps 1e-8, momentumDecay 0.004 (NAdam's,
 * PyTorch's) and weightDecay 0.01: AdamW's default here (torch's AdamW), so that swapping
 * AdamW for NAdamW keeps the decay. torch's NAdam keeps 0 with decoupled_weight_decay
 * (which would make NAdamW NAdam by default); optax's `nadamw` uses 1e-4, as its `adamw`
 * does. optax's nadamw is a different NAdam besides: a constant beta1 with Dozat's
 * bias corrections, not PyTorch's mu schedule with momentumDecay.
 *
 * State: as NAdam (`expAvg`, `expAvgSq`, the scalar `muProduct`).
 */
import { Optimizer, type OptimizerOptions } from '../optimizer.ts';
import { checkKnownOptions } from '../validate.ts';
import type { UpdateRule } from '../rule.ts';
import { NADAM_OPTION_NAMES, nadamRule, resolveNAdamFamily, type NAdamHyper, type NAdamOptions, type NAdamState } from './nadam.ts';

export type NAdamWOptions = NAdamOptions;

export const nadamwRule: UpdateRule<NAdamWOptions, NAdamHyper, NAdamState> = {
  ...nadamRule,
  name: 'NAdamW',
  key: 'nadamw',
  paper: 'Loshchilov & Hutter (2019), "Decoupled weight decay regularization"; Dozat (2016), "Incorporating Nesterov momentum into Adam"',
  weightDecayKind: 'decoupled',
  peers: { torch: 'torch.optim.NAdam(decoupled_weight_decay=True)', optax: 'optax.nadamw' },
  resolve(options) {
    checkKnownOptions('NAdamW', options, NADAM_OPTION_NAMES);
    return resolveNAdamFamily('NAdamW', options, 0.01, 'decoupled');
  },
};

/**
 * NAdamW over named typed arrays; see the formulas at the top of this file.
 *
 * ```ts
 * const opt = new NAdamW({ lr: 0.002, weightDecay: 0.01 });
 * opt.update(params, grads); // in place
 * ```
 */
export class NAdamW extends Optimizer<NAdamWOptions, NAdamHyper, NAdamState> {
  constructor(options: NAdamWOptions & OptimizerOptions<NAdamWOptions> = {}) {
    super(nadamwRule, options);
  }
}

/**
 * Weight averaging: `EMA` (an exponential moving average of the weights) and `SWA`
 * (stochastic weight averaging, the running mean of the weights), each a wrapper around
 * any optimizer of this library. Both are torch's `torch.optim.swa_utils.AveragedModel`:
 *
 *     after each inner step that was applied (and, for SWA, is on its schedule):
 *     first average of a parameter:  avg <- p                          (a copy)
 *     EMA:                           avg <- decay_t avg + (1 - decay_t) p
 *     SWA:                           avg <- avg + (p - avg) / (n + 1)  (n: averages taken)
 *
 * EMA's `decay_t` is `decay`, or with `warmup: { gamma, power }` timm's ModelEmaV3 warm-up
 * `min(decay, 1 - (1 + t / gamma)^-power)`, t the averages taken of the parameter before
 * this one (0 at the first, which therefore copies). SWA averages the inner steps t = 1,
 * 2, ... (counted from 1, steps the inner optimizer applied) with t >= start and
 * (t - start) a multiple of every (Izmailov et al. 2018; torch's `swa_start` loop).
 *
 * The averages are kept in the parameter's dtype; the arithmetic is in double per
 * element, rounded once when stored (torch's float32 arithmetic rounds each operation,
 * so a float32 average can differ from torch's in the last bits).
 *
 * The model is not replaced: `swap(params)` exchanges params and averages in place (call
 * it again to swap back), Keras's `finalize_variable_values` without the finality, for
 * evaluation or a checkpoint of the averaged weights. While swapped, `update` and `check`
 * are refused (an UpdateError that says so, nothing written).
 *
 * A wrapper, not a rule: `new EMA(inner, options)` is an `OptimizerLike` (it nests in a
 * partition, a Lookahead or another wrapper), its `check` is the inner's plus its own, its
 * `nonFinite` and `stateBuffersPerParam()` are the inner's (the averages live outside a
 * ParamStore, as Lookahead's slow weights do). A step the inner optimizer skips or
 * refuses takes no average; nor does one whose inner update throws an overflow error
 * (that error says the step was applied: restore the state saved before it, as it says).
 *
 * Allocation: a parameter's average is made at its first average; after that an update
 * allocates nothing beyond what the inner optimizer does.
 *
 * In averaging/: base.ts (the loops and what EMA and SWA share), ema.ts, swa.ts, and
 * shared.ts (what every wrapper around an inner optimizer shares, GradientAccumulation
 * too).
 */
export { EMA, type EMAOptions, type EMAWarmup } from './averaging/ema.ts';
export { SWA, type SWAOptions } from './averaging/swa.ts';

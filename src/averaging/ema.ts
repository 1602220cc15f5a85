/** EMA: an exponential moving average of the weights, around any optimizer (see ../averaging.ts). */
import type { OptimizerLike } from '../contract.ts';
import { optionError } from '../errors.ts';
import type { FloatArray } from '../types.ts';
import { checkKnownOptions } from '../validate.ts';
import { Averaging } from './base.ts';

export interface EMAWarmup {
  /** timm's warmup_gamma: > 0. Default 1. */
  gamma?: number;
  /** timm's warmup_power: > 0. Default 2/3. */
  power?: number;
}

export interface EMAOptions {
  /** The decay of the average: in [0, 1]. Default 0.999. */
  decay?: number;
  /** timm's warm-up of the decay: `min(decay, 1 - (1 + t / gamma)^-power)`. Default: none. */
  warmup?: EMAWarmup;
}

const EMA_OPTION_NAMES = ['decay', 'warmup'] as const;
const WARMUP_OPTION_NAMES = ['gamma', 'power'] as const;

/**
 * An exponential moving average of the weights (torch's AveragedModel with an EMA
 * avg_fn; timm's ModelEmaV3 with `warmup`). `new EMA(inner, { decay: 0.999 })`.
 */
export class EMA<I extends OptimizerLike = OptimizerLike> extends Averaging<I> {
  readonly decay: number;
  /** timm's warm-up of the decay, or undefined. */
  readonly warmup: { readonly gamma: number; readonly power: number } | undefined;

  constructor(inner: I, options: EMAOptions = {}) {
    super('EMA', inner);
    checkKnownOptions('EMA', options, EMA_OPTION_NAMES);
    const decay = options.decay ?? 0.999;
    if (typeof decay !== 'number' || !(decay >= 0 && decay <= 1)) throw optionError('EMA', 'decay', decay, 'a number in [0, 1]');
    this.decay = decay;
    const warmup = options.warmup;
    if (warmup === undefined) {
      this.warmup = undefined;
    } else {
      if (warmup === null || typeof warmup !== 'object' || Array.isArray(warmup)) throw optionError('EMA', 'warmup', warmup, 'an object { gamma, power }');
      checkKnownOptions('EMA warmup', warmup, WARMUP_OPTION_NAMES);
      const gamma = warmup.gamma ?? 1;
      if (typeof gamma !== 'number' || !(gamma > 0 && gamma < Infinity)) throw optionError('EMA', 'warmup.gamma', gamma, 'a finite number > 0');
      const power = warmup.power ?? 2 / 3;
      if (typeof power !== 'number' || !(power > 0 && power < Infinity)) throw optionError('EMA', 'warmup.power', power, 'a finite number > 0');
      this.warmup = { gamma, power };
    }
  }

  /** The decay of the average taken after `t` others of the parameter (t >= 0). */
  decayAt(t: number): number {
    if (this.warmup === undefined) return t === 0 ? 0 : this.decay;
    return Math.min(this.decay, 1 - (1 + t / this.warmup.gamma) ** -this.warmup.power);
  }

  protected options(): { [key: string]: number } {
    return this.warmup === undefined ? { decay: this.decay } : { decay: this.decay, warmupGamma: this.warmup.gamma, warmupPower: this.warmup.power };
  }

  protected averages(): boolean {
    return true;
  }

  protected accumulate(avg: FloatArray, p: FloatArray, n: number): void {
    this.emaStep(avg, p, this.decayAt(n));
  }
}


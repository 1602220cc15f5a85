/** SWA: stochastic weight averaging, the running mean of the weights, around any optimizer (see ../averaging.ts). */
import type { OptimizerLike } from '../contract.ts';
import { optionError } from '../errors.ts';
import type { FloatArray } from '../types.ts';
import { checkKnownOptions } from '../validate.ts';
import { Averaging } from './base.ts';

export interface SWAOptions {
  /** The first inner step averaged (steps counted from 1): an integer >= 1. Default 1. */
  start?: number;
  /** Inner steps between averages: an integer >= 1. Default 1. */
  every?: number;
}

const SWA_OPTION_NAMES = ['start', 'every'] as const;

/**
 * Stochastic weight averaging: the running mean of the weights over the inner steps t
 * (from 1) with t >= start and (t - start) a multiple of every (torch's AveragedModel
 * with its default avg_fn). `new SWA(inner, { start: 100, every: 10 })`.
 */
export class SWA<I extends OptimizerLike = OptimizerLike> extends Averaging<I> {
  readonly start: number;
  readonly every: number;

  constructor(inner: I, options: SWAOptions = {}) {
    super('SWA', inner);
    checkKnownOptions('SWA', options, SWA_OPTION_NAMES);
    const start = options.start ?? 1;
    if (typeof start !== 'number' || !Number.isSafeInteger(start) || start < 1) throw optionError('SWA', 'start', start, 'an integer >= 1');
    const every = options.every ?? 1;
    if (typeof every !== 'number' || !Number.isSafeInteger(every) || every < 1) throw optionError('SWA', 'every', every, 'an integer >= 1');
    this.start = start;
    this.every = every;
  }

  protected options(): { [key: string]: number } {
    return { start: this.start, every: this.every };
  }

  protected averages(t: number): boolean {
    return t >= this.start && (t - this.start) % this.every === 0;
  }

  protected accumulate(avg: FloatArray, p: FloatArray, n: number): void {
    this.meanStep(avg, p, n);
  }
}

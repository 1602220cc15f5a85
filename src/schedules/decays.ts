/**
 * Decays of the kind large-model recipes use: optax's polynomial_schedule, Keras's
 * PiecewiseConstantDecay and warmup-stable-decay, as closed forms of the 0-based update count.
 */
import { optionError } from '../errors.ts';
import { powInt } from '../math.ts';
import type { Schedule } from '../types.ts';
import { nonNegative, nonNegativeInteger, oneOf, optionsObject, positive, positiveInteger } from './checks.ts';

export interface PolynomialDecayOptions {
  /** The rate until beginStep. */
  lr: number;
  /** The rate from beginStep + decaySteps on (default 0). */
  endLr?: number;
  /** The power of the polynomial (default 1: linear). */
  power?: number;
  /** The length of the decay in updates. */
  decaySteps: number;
  /** Updates at `lr` before the decay starts (default 0). */
  beginStep?: number;
}

/**
 * (lr - endLr) * (1 - t / decaySteps)^power + endLr with t = step - beginStep clipped to
 * [0, decaySteps] (optax's polynomial_schedule: init_value, end_value, power,
 * transition_steps, transition_begin).
 */
export function polynomialDecay(options: PolynomialDecayOptions): Schedule {
  const owner = 'polynomialDecay';
  optionsObject(owner, options, '{ lr, endLr?, power?, decaySteps, beginStep? }');
  const lr = nonNegative(owner, 'lr', options.lr);
  const endLr = nonNegative(owner, 'endLr', options.endLr ?? 0);
  const power = positive(owner, 'power', options.power ?? 1);
  const decaySteps = positiveInteger(owner, 'decaySteps', options.decaySteps);
  const beginStep = nonNegativeInteger(owner, 'beginStep', options.beginStep ?? 0);
  // V8's ** is not correctly rounded; powInt is for integer powers (see math.ts).
  const raise = Number.isSafeInteger(power) ? (x: number) => powInt(x, power) : (x: number) => Math.pow(x, power);
  return (step) => {
    const count = Math.min(Math.max(step - beginStep, 0), decaySteps);
    return (lr - endLr) * raise(1 - count / decaySteps) + endLr;
  };
}

export interface PiecewiseConstantOptions {
  /** Increasing update counts (integers >= 0) where the rate changes. */
  boundaries: readonly number[];
  /** The rates: one more than there are boundaries. */
  values: readonly number[];
}

/**
 * values[0] while step <= boundaries[0], values[i] while boundaries[i - 1] < step <=
 * boundaries[i], the last value after the last boundary: Keras's PiecewiseConstantDecay,
 * whose conditions are `step <= boundary` (so the rate changes at update boundary + 1, not
 * at update boundary; Keras passes the 0-based iteration count, as here).
 */
export function piecewiseConstant(options: PiecewiseConstantOptions): Schedule {
  const owner = 'piecewiseConstant';
  optionsObject(owner, options, '{ boundaries, values }');
  const { boundaries, values } = options;
  if (!Array.isArray(boundaries)) throw optionError(owner, 'boundaries', boundaries, 'an array of increasing integers >= 0');
  if (!Array.isArray(values)) throw optionError(owner, 'values', values, `an array of ${boundaries.length + 1} rates`);
  if (values.length !== boundaries.length + 1) {
    throw optionError(owner, 'values', values, `${boundaries.length + 1} rates for ${boundaries.length} boundaries`);
  }
  const marks: number[] = [];
  boundaries.forEach((b: unknown, i) => {
    if (typeof b !== 'number' || !Number.isSafeInteger(b) || b < 0 || (i > 0 && b <= marks[i - 1]!)) {
      throw optionError(owner, `boundaries[${i}]`, b, 'increasing integers >= 0');
    }
    marks.push(b);
  });
  const rates = values.map((v: number, i) => nonNegative(owner, `values[${i}]`, v));
  return (step) => {
    let index = 0;
    while (index < marks.length && step > marks[index]!) index += 1;
    return rates[index]!;
  };
}

export type StableDecayShape = 'linear' | 'cosine' | 'sqrt';

export interface WarmupStableDecayOptions {
  /** The rate of the stable phase. */
  lr: number;
  /** Updates rising linearly from 0 to lr (0 for none). */
  warmupSteps: number;
  /** Updates at lr after the warm-up (0 for none). */
  stableSteps: number;
  /** Updates falling from lr to endLr. */
  decaySteps: number;
  /** The shape of the fall, of x = the fraction of decaySteps done: 'linear' (default) 1 - x, 'cosine' (1 + cos(pi x)) / 2, 'sqrt' 1 - sqrt(x). */
  decay?: StableDecayShape;
  /** The rate after the decay (default 0). */
  endLr?: number;
}

/**
 * Warmup-stable-decay (the "trapezoid" of MiniCPM and the WSD papers): lr * step /
 * warmupSteps during the warm-up (from 0, as warmupCosineDecay), lr for stableSteps, then
 * endLr + (lr - endLr) * shape(x) over decaySteps, then endLr.
 */
export function warmupStableDecay(options: WarmupStableDecayOptions): Schedule {
  const owner = 'warmupStableDecay';
  optionsObject(owner, options, '{ lr, warmupSteps, stableSteps, decaySteps, decay?, endLr? }');
  const lr = nonNegative(owner, 'lr', options.lr);
  const warmupSteps = nonNegativeInteger(owner, 'warmupSteps', options.warmupSteps);
  const stableSteps = nonNegativeInteger(owner, 'stableSteps', options.stableSteps);
  const decaySteps = positiveInteger(owner, 'decaySteps', options.decaySteps);
  const decay = oneOf<StableDecayShape>(owner, 'decay', options.decay ?? 'linear', ['linear', 'cosine', 'sqrt']);
  const endLr = nonNegative(owner, 'endLr', options.endLr ?? 0);
  const shape =
    decay === 'linear' ? (x: number) => 1 - x : decay === 'cosine' ? (x: number) => (1 + Math.cos(Math.PI * x)) / 2 : (x: number) => 1 - Math.sqrt(x);
  const decayStart = warmupSteps + stableSteps;
  const end = decayStart + decaySteps;
  return (step) => {
    if (step < warmupSteps) return (lr * step) / warmupSteps;
    if (step < decayStart) return lr;
    if (step >= end) return endLr;
    return endLr + (lr - endLr) * shape((step - decayStart) / decaySteps);
  };
}

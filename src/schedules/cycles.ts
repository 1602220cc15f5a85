/**
 * Cyclical schedules: PyTorch's OneCycleLR (with its momentum cycle) and
 * CosineAnnealingWarmRestarts, as closed forms of the 0-based update count. Each
 * evaluates torch 1.13's expressions in torch's order, so that the doubles agree.
 */
import { optionError } from '../errors.ts';
import type { Schedule } from '../types.ts';
import { inRange, nonNegative, oneOf, optionsObject, positive, positiveInteger } from './checks.ts';

export type Anneal = 'cos' | 'linear';

export interface OneCycleOptions {
  /** The peak rate, reached at step pctStart * totalSteps - 1. */
  maxLr: number;
  /** The length of the cycle in updates; past it the rate stays at its last value. */
  totalSteps: number;
  /** The fraction of the cycle spent rising (default 0.3). */
  pctStart?: number;
  /** 'cos' (default) or 'linear' interpolation inside each phase. */
  anneal?: Anneal;
  /** The starting rate is maxLr / divFactor (default 25). */
  divFactor?: number;
  /** The final rate is maxLr / divFactor / finalDivFactor (default 1e4). */
  finalDivFactor?: number;
  /**
   * false (default, fastai's two phases): rise, then fall to the final rate. true (the
   * paper's three): rise, fall back to the starting rate symmetrically, then fall to the final rate.
   */
  threePhase?: boolean;
}

export interface OneCycleMomentumOptions {
  /** The momentum at the peak of the rate (default 0.85). */
  baseMomentum?: number;
  /** The momentum at the start and the end of the cycle (default 0.95). */
  maxMomentum?: number;
  totalSteps: number;
  pctStart?: number;
  anneal?: Anneal;
  threePhase?: boolean;
}

/** The phase ends of torch's `_schedule_phases` (fractional step numbers, as torch keeps them). */
function phaseEnds(owner: string, totalSteps: number, pctStart: number, threePhase: boolean): number[] {
  const rise = pctStart * totalSteps - 1;
  // torch 1.13 divides 0 by 0 at step 0 when the rise ends at step 0.
  if (rise === 0) throw optionError(owner, 'pctStart', pctStart, `a fraction with pctStart * totalSteps != 1 (a rising phase of zero length; totalSteps is ${totalSteps})`);
  return threePhase ? [rise, 2 * pctStart * totalSteps - 2, totalSteps - 1] : [rise, totalSteps - 1];
}

function interpolate(anneal: Anneal): (start: number, end: number, pct: number) => number {
  if (anneal === 'cos') return (start, end, pct) => end + ((start - end) / 2) * (Math.cos(Math.PI * pct) + 1);
  return (start, end, pct) => (end - start) * pct + start;
}

/** torch's OneCycleLR.get_lr for one group: phase i runs from points[i] to points[i + 1]. */
function cycle(ends: readonly number[], points: readonly number[], anneal: Anneal, totalSteps: number): Schedule {
  const curve = interpolate(anneal);
  const last = ends.length - 1;
  const at = (step: number): number => {
    let start = 0;
    for (let i = 0; i < ends.length; i++) {
      const end = ends[i]!;
      if (step <= end || i === last) return curve(points[i]!, points[i + 1]!, (step - start) / (end - start));
      start = end;
    }
    return points[points.length - 1]!; // not reached: the last phase always answers
  };
  const final = at(totalSteps - 1);
  // torch extrapolates the last phase at step total_steps and raises after it; a schedule
  // keeps the rate of the cycle's last update instead.
  return (step) => (step >= totalSteps ? final : at(step));
}

function cycleShape(owner: string, options: { totalSteps: number; pctStart?: number; anneal?: Anneal; threePhase?: boolean }) {
  const totalSteps = positiveInteger(owner, 'totalSteps', options.totalSteps);
  const pctStart = inRange(owner, 'pctStart', options.pctStart ?? 0.3, 0, 1);
  const anneal = oneOf<Anneal>(owner, 'anneal', options.anneal ?? 'cos', ['cos', 'linear']);
  const threePhase = options.threePhase ?? false;
  if (typeof threePhase !== 'boolean') throw optionError(owner, 'threePhase', threePhase, 'true or false');
  return { totalSteps, anneal, threePhase, ends: phaseEnds(owner, totalSteps, pctStart, threePhase) };
}

/**
 * The 1cycle policy (PyTorch 1.13 OneCycleLR): from maxLr / divFactor up to maxLr over
 * the first pctStart of `totalSteps` updates, then down to maxLr / divFactor /
 * finalDivFactor (threePhase: back down to the start first, then to the final rate).
 * Past totalSteps the rate stays at its value at step totalSteps - 1.
 */
export function oneCycle(options: OneCycleOptions): Schedule {
  const owner = 'oneCycle';
  optionsObject(owner, options, '{ maxLr, totalSteps, pctStart?, anneal?, divFactor?, finalDivFactor?, threePhase? }');
  const maxLr = nonNegative(owner, 'maxLr', options.maxLr);
  const divFactor = positive(owner, 'divFactor', options.divFactor ?? 25);
  const finalDivFactor = positive(owner, 'finalDivFactor', options.finalDivFactor ?? 1e4);
  const { totalSteps, anneal, threePhase, ends } = cycleShape(owner, options);
  const initial = maxLr / divFactor;
  const min = initial / finalDivFactor;
  const points = threePhase ? [initial, maxLr, initial, min] : [initial, maxLr, min];
  return cycle(ends, points, anneal, totalSteps);
}

/**
 * The momentum OneCycleLR sets with cycle_momentum (the default), as a schedule: from
 * maxMomentum down to baseMomentum while the rate rises, then back up (threePhase: up
 * while the rate falls back, then flat at maxMomentum). For SGD's momentum or Adam's beta1.
 */
export function oneCycleMomentum(options: OneCycleMomentumOptions): Schedule {
  const owner = 'oneCycleMomentum';
  optionsObject(owner, options, '{ baseMomentum?, maxMomentum?, totalSteps, pctStart?, anneal?, threePhase? }');
  const base = inRange(owner, 'baseMomentum', options.baseMomentum ?? 0.85, 0, 1);
  const max = inRange(owner, 'maxMomentum', options.maxMomentum ?? 0.95, 0, 1);
  const { totalSteps, anneal, threePhase, ends } = cycleShape(owner, options);
  const points = threePhase ? [max, base, max, max] : [max, base, max];
  return cycle(ends, points, anneal, totalSteps);
}

export interface CosineRestartsOptions {
  /** The rate at the start of every period. */
  lr: number;
  /** The length of the first period in updates. */
  t0: number;
  /** Each period is tMult times the one before (an integer >= 1, default 1). */
  tMult?: number;
  /** The rate the cosine falls towards (default 0). */
  etaMin?: number;
}

/**
 * SGDR (PyTorch CosineAnnealingWarmRestarts stepped once per update): half a cosine
 * from lr towards etaMin over t0 updates, then again from lr over t0 * tMult, and so on:
 * etaMin + (lr - etaMin) * (1 + cos(pi * tCur / tI)) / 2.
 */
export function cosineRestarts(options: CosineRestartsOptions): Schedule {
  const owner = 'cosineRestarts';
  optionsObject(owner, options, '{ lr, t0, tMult?, etaMin? }');
  const lr = nonNegative(owner, 'lr', options.lr);
  const t0 = positiveInteger(owner, 't0', options.t0);
  const tMult = positiveInteger(owner, 'tMult', options.tMult ?? 1);
  const etaMin = nonNegative(owner, 'etaMin', options.etaMin ?? 0);
  const value = (tCur: number, tI: number): number => etaMin + ((lr - etaMin) * (1 + Math.cos((Math.PI * tCur) / tI))) / 2;
  if (tMult === 1) return (step) => value(step % t0, t0);
  return (step) => {
    // Periods grow geometrically: the walk takes log_tMult(step / t0) turns.
    let start = 0;
    let period = t0;
    while (step - start >= period) {
      start += period;
      period *= tMult;
    }
    return value(step - start, period);
  };
}

/**
 * Learning-rate schedules: pure functions `(step) => lr` of the 0-based update count
 * (the first update sees step 0), as in optax. Pass one as `lr` to any optimizer.
 * They compose: `joinSchedules` runs one after another, `linearWarmup` ramps any
 * schedule up. The closed forms are PyTorch's StepLR, ExponentialLR, CosineAnnealingLR
 * (one half period, then flat) and LinearLR, evaluated at the step instead of
 * stepped by a scheduler object. The cyclical ones (OneCycleLR, CosineAnnealingWarmRestarts),
 * the decays (optax's polynomial, Keras's piecewise constant, warmup-stable-decay) and
 * ReduceLROnPlateau live in schedules/.
 */
import { optionError } from './errors.ts';
import { powInt } from './math.ts';
import type { LearningRate, Schedule } from './types.ts';
import { nonNegative, positiveInteger } from './schedules/checks.ts';

export { cosineRestarts, oneCycle, oneCycleMomentum, type Anneal, type CosineRestartsOptions, type OneCycleMomentumOptions, type OneCycleOptions } from './schedules/cycles.ts';
export {
  piecewiseConstant,
  polynomialDecay,
  warmupStableDecay,
  type PiecewiseConstantOptions,
  type PolynomialDecayOptions,
  type StableDecayShape,
  type WarmupStableDecayOptions,
} from './schedules/decays.ts';
export { PLATEAU_FORMAT, reduceOnPlateau, type PlateauSchedule, type PlateauStateDict, type ReduceOnPlateauOptions } from './schedules/plateau.ts';

function schedule(owner: string, name: string, value: LearningRate): Schedule {
  if (typeof value === 'function') return value;
  const lr = nonNegative(owner, name, value);
  return () => lr;
}

/** lr * gamma^floor(step / stepSize) (PyTorch StepLR). */
export function stepDecay(options: { lr: number; stepSize: number; gamma?: number }): Schedule {
  const lr = nonNegative('stepDecay', 'lr', options.lr);
  const stepSize = positiveInteger('stepDecay', 'stepSize', options.stepSize);
  const gamma = nonNegative('stepDecay', 'gamma', options.gamma ?? 0.1);
  return (step) => lr * powInt(gamma, Math.floor(step / stepSize));
}

/** lr * gamma^step (PyTorch ExponentialLR). */
export function exponentialDecay(options: { lr: number; gamma: number }): Schedule {
  const lr = nonNegative('exponentialDecay', 'lr', options.lr);
  const gamma = nonNegative('exponentialDecay', 'gamma', options.gamma);
  return (step) => lr * powInt(gamma, step);
}

/**
 * Half a cosine from lr down to minLr over `steps` updates, then minLr:
 * minLr + (lr - minLr) * (1 + cos(pi * step / steps)) / 2.
 */
export function cosineDecay(options: { lr: number; steps: number; minLr?: number }): Schedule {
  const lr = nonNegative('cosineDecay', 'lr', options.lr);
  const steps = positiveInteger('cosineDecay', 'steps', options.steps);
  const minLr = nonNegative('cosineDecay', 'minLr', options.minLr ?? 0);
  return (step) => (step >= steps ? minLr : minLr + ((lr - minLr) * (1 + Math.cos((Math.PI * step) / steps))) / 2);
}

/**
 * Scales `lr` (a number or a schedule) by a factor rising linearly from `startFactor` at
 * step 0 to 1 at step `steps`, then 1 (PyTorch LinearLR with end factor 1; optax's
 * warmup with startFactor 0 starts at lr 0).
 */
export function linearWarmup(options: { lr: LearningRate; steps: number; startFactor?: number }): Schedule {
  const base = schedule('linearWarmup', 'lr', options.lr);
  const steps = positiveInteger('linearWarmup', 'steps', options.steps);
  const start = options.startFactor ?? 0;
  if (!(start >= 0 && start <= 1)) throw optionError('linearWarmup', 'startFactor', start, 'a number in [0, 1]');
  return (step) => base(step) * (step >= steps ? 1 : start + ((1 - start) * step) / steps);
}

/**
 * Runs `schedules[0]` until `boundaries[0]`, then `schedules[1]` counted from 0 again,
 * and so on (optax's join_schedules). `boundaries` are increasing update counts.
 */
export function joinSchedules(schedules: readonly LearningRate[], boundaries: readonly number[]): Schedule {
  if (schedules.length !== boundaries.length + 1) {
    throw optionError('joinSchedules', 'boundaries', boundaries, `${schedules.length - 1} boundaries for ${schedules.length} schedules`);
  }
  const parts = schedules.map((s, i) => schedule('joinSchedules', `schedules[${i}]`, s));
  boundaries.forEach((b, i) => {
    if (!Number.isSafeInteger(b) || b < 1 || (i > 0 && b <= boundaries[i - 1]!)) {
      throw optionError('joinSchedules', `boundaries[${i}]`, b, 'increasing integers >= 1');
    }
  });
  const marks = boundaries.slice();
  return (step) => {
    let start = 0;
    let index = 0;
    while (index < marks.length && step >= marks[index]!) {
      start = marks[index]!;
      index += 1;
    }
    return parts[index]!(step - start);
  };
}

/** Linear warm-up from 0 to `lr` over `warmupSteps`, then a cosine decay to `minLr` over `decaySteps`. */
export function warmupCosineDecay(options: { lr: number; warmupSteps: number; decaySteps: number; minLr?: number }): Schedule {
  // Checked here, so that a missing option is named as the caller wrote it.
  const owner = 'warmupCosineDecay';
  if (options === null || typeof options !== 'object') throw optionError(owner, 'options', options, '{ lr, warmupSteps, decaySteps, minLr? }');
  nonNegative(owner, 'lr', options.lr);
  positiveInteger(owner, 'warmupSteps', options.warmupSteps);
  positiveInteger(owner, 'decaySteps', options.decaySteps);
  if (options.minLr !== undefined) nonNegative(owner, 'minLr', options.minLr);
  const warmup = linearWarmup({ lr: options.lr, steps: options.warmupSteps });
  const decay = cosineDecay({ lr: options.lr, steps: options.decaySteps, minLr: options.minLr ?? 0 });
  return joinSchedules([warmup, decay], [options.warmupSteps]);
}

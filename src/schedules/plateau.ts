/**
 * PyTorch's ReduceLROnPlateau as a schedule: the rate changes when the caller reports a
 * metric (once per epoch), not with the update count, so this one schedule has state, and
 * a state dict of its own beside the optimizer's.
 */
import { StateError, describeValue, optionError } from '../errors.ts';
import type { Schedule } from '../types.ts';
import { nonNegative, nonNegativeInteger, oneOf, optionsObject } from './checks.ts';

export const PLATEAU_FORMAT = 'nesterov.reduceOnPlateau';

export interface ReduceOnPlateauOptions {
  /** The starting rate. */
  lr: number;
  /** 'min' (default): lower metrics are better (a loss); 'max': higher are (an accuracy). */
  mode?: 'min' | 'max';
  /** The rate is multiplied by this on a plateau (default 0.1; in [0, 1)). */
  factor?: number;
  /** Reports without improvement tolerated before the rate drops (default 10). */
  patience?: number;
  /** The least change that counts as an improvement (default 1e-4). */
  threshold?: number;
  /** 'rel' (default): better than best * (1 -/+ threshold); 'abs': better than best -/+ threshold. */
  thresholdMode?: 'rel' | 'abs';
  /** Reports after a drop during which bad reports are not counted (default 0). */
  cooldown?: number;
  /** The rate never drops below this (default 0). */
  minLr?: number;
  /** A drop smaller than this is not made (default 1e-8). */
  eps?: number;
}

/** What `stateDict()` returns: plain numbers, for JSON or any other store. */
export interface PlateauStateDict {
  format: typeof PLATEAU_FORMAT;
  version: 1;
  mode: 'min' | 'max';
  /** The current rate. */
  lr: number;
  /** The best metric so far; null before the first report (torch's +-inf). */
  best: number | null;
  numBadEpochs: number;
  cooldownCounter: number;
  /** Metrics reported so far. */
  epochs: number;
}

/** A schedule whose rate `report` lowers on a plateau; `plateau(step)` is the current rate at any step. */
export interface PlateauSchedule extends Schedule {
  /** Reports one epoch's metric, lowers the rate if it has stopped improving, returns the rate. */
  report(metric: number): number;
  stateDict(): PlateauStateDict;
  /** Restores a `stateDict()`; on any mismatch throws a StateError naming the field and changes nothing. */
  loadStateDict(state: unknown): void;
}

/**
 * PyTorch 1.13 ReduceLROnPlateau: after more than `patience` reports without an
 * improvement (by `threshold`, relative or absolute) the rate becomes max(lr * factor,
 * minLr), unless that lowers it by eps or less; then `cooldown` reports are not counted.
 *
 *     const plateau = reduceOnPlateau({ lr: 0.1 });
 *     const opt = new SGD({ lr: plateau });
 *     // each epoch: train, then plateau.report(validationLoss)
 */
export function reduceOnPlateau(options: ReduceOnPlateauOptions): PlateauSchedule {
  const owner = 'reduceOnPlateau';
  optionsObject(owner, options, '{ lr, mode?, factor?, patience?, threshold?, thresholdMode?, cooldown?, minLr?, eps? }');
  const initialLr = nonNegative(owner, 'lr', options.lr);
  const mode = oneOf(owner, 'mode', options.mode ?? 'min', ['min', 'max'] as const);
  const factor = options.factor ?? 0.1;
  if (typeof factor !== 'number' || !(factor >= 0 && factor < 1)) throw optionError(owner, 'factor', factor, 'a number in [0, 1)');
  const patience = nonNegativeInteger(owner, 'patience', options.patience ?? 10);
  const threshold = nonNegative(owner, 'threshold', options.threshold ?? 1e-4);
  const thresholdMode = oneOf(owner, 'thresholdMode', options.thresholdMode ?? 'rel', ['rel', 'abs'] as const);
  const cooldown = nonNegativeInteger(owner, 'cooldown', options.cooldown ?? 0);
  const minLr = nonNegative(owner, 'minLr', options.minLr ?? 0);
  const eps = nonNegative(owner, 'eps', options.eps ?? 1e-8);

  const worst = mode === 'min' ? Infinity : -Infinity;
  // torch's is_better, in its four cases and its operation order.
  const isBetter =
    mode === 'min'
      ? thresholdMode === 'rel'
        ? (a: number, best: number) => a < best * (1 - threshold)
        : (a: number, best: number) => a < best - threshold
      : thresholdMode === 'rel'
        ? (a: number, best: number) => a > best * (threshold + 1)
        : (a: number, best: number) => a > best + threshold;

  let lr = initialLr;
  let best = worst;
  let numBadEpochs = 0;
  let cooldownCounter = 0;
  let epochs = 0;

  const report = (metric: number): number => {
    if (typeof metric !== 'number') throw new TypeError(`${owner}.report: the metric must be a number, got ${describeValue(metric)}`);
    if (Number.isNaN(metric)) throw optionError(`${owner}.report`, 'metric', metric, 'a number, not NaN');
    epochs += 1;
    if (isBetter(metric, best)) {
      best = metric;
      numBadEpochs = 0;
    } else {
      numBadEpochs += 1;
    }
    if (cooldownCounter > 0) {
      cooldownCounter -= 1;
      numBadEpochs = 0; // bad epochs in the cooldown do not count
    }
    if (numBadEpochs > patience) {
      const next = Math.max(lr * factor, minLr);
      if (lr - next > eps) lr = next;
      cooldownCounter = cooldown;
      numBadEpochs = 0;
    }
    return lr;
  };

  const stateDict = (): PlateauStateDict => ({
    format: PLATEAU_FORMAT,
    version: 1,
    mode,
    lr,
    best: best === worst ? null : best,
    numBadEpochs,
    cooldownCounter,
    epochs,
  });

  const loadStateDict = (value: unknown): void => {
    const where = `${owner}.loadStateDict`;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new StateError(`${where}: the state must be an object, got ${describeValue(value)}`);
    }
    const saved = value as Partial<Record<keyof PlateauStateDict, unknown>>;
    const invalid = (field: string, got: unknown, expected: string) => new StateError(`${where}: invalid ${field}: ${describeValue(got)} (expected ${expected})`);
    if (saved.format !== PLATEAU_FORMAT) throw invalid('format', saved.format, `'${PLATEAU_FORMAT}'`);
    if (saved.version !== 1) throw invalid('version', saved.version, '1');
    if (saved.mode !== mode) throw invalid('mode', saved.mode, `'${mode}', the mode of this schedule`);
    const savedLr = saved.lr;
    if (typeof savedLr !== 'number' || !Number.isFinite(savedLr) || savedLr < 0) throw invalid('lr', savedLr, 'a finite number >= 0');
    const savedBest = saved.best;
    if (savedBest !== null && (typeof savedBest !== 'number' || Number.isNaN(savedBest))) throw invalid('best', savedBest, 'a number or null');
    const count = (field: 'numBadEpochs' | 'cooldownCounter' | 'epochs', max: number): number => {
      const got = saved[field];
      if (typeof got !== 'number' || !Number.isSafeInteger(got) || got < 0 || got > max) {
        throw invalid(field, got, max === Number.MAX_SAFE_INTEGER ? 'an integer >= 0' : `an integer in [0, ${max}]`);
      }
      return got;
    };
    const savedBad = count('numBadEpochs', patience);
    const savedCooldown = count('cooldownCounter', cooldown);
    const savedEpochs = count('epochs', Number.MAX_SAFE_INTEGER);
    // Everything checked: only now does the schedule change.
    lr = savedLr;
    best = savedBest ?? worst;
    numBadEpochs = savedBad;
    cooldownCounter = savedCooldown;
    epochs = savedEpochs;
  };

  // The rate does not depend on the step: it is whatever the reports have made it.
  return Object.assign(() => lr, { report, stateDict, loadStateDict });
}

/** The option checks every schedule shares: each names the function, the option and the value. */
import { optionError } from '../errors.ts';

export function positiveInteger(owner: string, name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw optionError(owner, name, value, 'an integer >= 1');
  return value;
}

export function nonNegativeInteger(owner: string, name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw optionError(owner, name, value, 'an integer >= 0');
  return value;
}

export function nonNegative(owner: string, name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw optionError(owner, name, value, 'a finite number >= 0');
  return value;
}

export function positive(owner: string, name: string, value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw optionError(owner, name, value, 'a finite number > 0');
  return value;
}

/** A number in [low, high]. */
export function inRange(owner: string, name: string, value: number, low: number, high: number): number {
  if (typeof value !== 'number' || !(value >= low && value <= high)) throw optionError(owner, name, value, `a number in [${low}, ${high}]`);
  return value;
}

export function oneOf<T extends string>(owner: string, name: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value)) throw optionError(owner, name, value, allowed.map((a) => `'${a}'`).join(' or '));
  return value;
}

/** The options argument itself, so that `f()` or `f(null)` is named as the caller wrote it. */
export function optionsObject<T>(owner: string, options: T, shape: string): T {
  if (options === null || typeof options !== 'object') throw optionError(owner, 'options', options, shape);
  return options;
}

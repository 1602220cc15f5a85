/**
 * Hyperparameter checks with one message format, run at construction so that a bad
 * option fails before any parameter is touched.
 */
import { optionError } from './errors.ts';
import type { LearningRate } from './types.ts';

export interface Range {
  /** Inclusive lower bound (default: none). */
  min?: number;
  /** Exclusive upper bound. */
  below?: number;
  /** Inclusive upper bound. */
  max?: number;
}

function rangeText(range: Range): string {
  const low = range.min === undefined ? '(-Infinity' : `[${range.min}`;
  if (range.below !== undefined) return `a number in ${low}, ${range.below})`;
  if (range.max !== undefined) return `a number in ${low}, ${range.max}]`;
  return range.min === undefined ? 'a finite number' : `a finite number >= ${range.min}`;
}

/** A finite number within `range`, or the default when the option is absent. */
export function numberOption(owner: string, name: string, value: unknown, fallback: number, range: Range): number {
  if (value === undefined) return fallback;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (range.min === undefined || value >= range.min) &&
    (range.below === undefined || value < range.below) &&
    (range.max === undefined || value <= range.max);
  if (!ok) throw optionError(owner, name, value, rangeText(range));
  return value;
}

export function booleanOption(owner: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw optionError(owner, name, value, 'true or false');
  return value;
}

export function choiceOption<T extends string>(
  owner: string,
  name: string,
  value: unknown,
  choices: readonly T[],
): T {
  if (value === undefined) return choices[0] as T;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw optionError(owner, name, value, `one of ${choices.map((c) => `'${c}'`).join(', ')}`);
  }
  return value as T;
}

/** A learning rate: a finite number >= 0, or a schedule function (checked at each step). */
export function learningRateOption(owner: string, value: unknown, fallback: number): LearningRate {
  if (value === undefined) return fallback;
  if (typeof value === 'function') return value as LearningRate;
  return numberOption(owner, 'lr', value, fallback, { min: 0 });
}

/** Rejects option names the optimizer does not know, so a typo is not silently ignored. */
export function checkKnownOptions(owner: string, options: object, known: readonly string[], hints: { readonly [option: string]: string } = {}): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`${owner}: options must be an object, got ${options === null ? 'null' : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      const hint = Object.hasOwn(hints, key) ? `${hints[key]}; ` : '';
      throw new RangeError(`${owner}: unknown option '${key}' (${hint}known options: ${known.join(', ')})`);
    }
  }
}

/** An option that only some variants accept must keep its neutral value elsewhere. */
export function requireNeutral(owner: string, name: string, value: unknown, neutral: unknown, why: string): void {
  if (value !== undefined && value !== neutral) {
    throw optionError(owner, name, value, `${String(neutral)} ${why}`);
  }
}

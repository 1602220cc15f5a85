/** Gradient helpers for the book's training flow: clipping, zeroing, allocation. */
import { UpdateError, optionError, describeValue } from './errors.ts';
import { forEachArray, isFloatArray, type FloatArray, type ParamSet } from './types.ts';

export interface ClipOptions {
  /** 2 (default) for the Euclidean norm of all gradients together, Infinity for the max norm. */
  normType?: 2 | typeof Infinity;
  /**
   * When the total norm is NaN or Infinity: 'error' (default) throws naming the first
   * non-finite gradient entry; 'return' returns the norm and leaves the gradients as
   * they are, for an optimizer with `nonFinite: 'skip'` to skip the step.
   */
  nonFinite?: 'error' | 'return';
}

function arraysOf(owner: string, grads: ParamSet): FloatArray[] {
  if (grads === null || typeof grads !== 'object') throw new TypeError(`${owner}: grads must be an object or a Map, got ${describeValue(grads)}`);
  const arrays: FloatArray[] = [];
  forEachArray(grads, (array, name) => {
    if (!isFloatArray(array)) throw new UpdateError(`${owner}: gradient '${name}' must be a Float32Array or Float64Array, got ${describeValue(array)}`, name);
    arrays.push(array);
  });
  return arrays;
}

/**
 * Scales all gradients together so that their total norm is at most `maxNorm`, in place,
 * and returns the total norm before clipping (PyTorch's `clip_grad_norm_`: the scale is
 * maxNorm / (norm + 1e-6), applied only when it is below 1).
 */
export function clipGradNorm(grads: ParamSet, maxNorm: number, options: ClipOptions = {}): number {
  const owner = 'clipGradNorm';
  if (typeof maxNorm !== 'number' || !(maxNorm >= 0) || maxNorm === Infinity) throw optionError(owner, 'maxNorm', maxNorm, 'a finite number >= 0');
  const normType = options.normType ?? 2;
  if (normType !== 2 && normType !== Infinity) throw optionError(owner, 'normType', normType, '2 or Infinity');
  const policy = options.nonFinite ?? 'error';
  if (policy !== 'error' && policy !== 'return') throw optionError(owner, 'nonFinite', policy, "'error' or 'return'");
  const arrays = arraysOf(owner, grads);
  let total = 0;
  for (const array of arrays) {
    let part = 0;
    if (normType === 2) {
      for (let i = 0; i < array.length; i++) part += array[i]! * array[i]!;
      total += part;
    } else {
      for (let i = 0; i < array.length; i++) part = Math.max(part, Math.abs(array[i]!));
      total = Math.max(total, part);
    }
  }
  if (normType === 2) total = Math.sqrt(total);
  if (!Number.isFinite(total)) {
    if (policy === 'return') return total;
    let foundName = '';
    let foundIndex = -1;
    forEachArray(grads, (array, name) => {
      if (foundIndex >= 0) return;
      const values = array as FloatArray;
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i]!)) {
          foundName = name;
          foundIndex = i;
          return;
        }
      }
    });
    const where =
      foundIndex >= 0 ? `gradient '${foundName}' is not finite at index ${foundIndex}` : 'the sum of squares overflowed';
    throw new UpdateError(`${owner}: the total norm is ${total}: ${where}`, foundName, foundIndex >= 0 ? foundIndex : undefined);
  }
  const scale = maxNorm / (total + 1e-6);
  if (scale < 1) {
    for (const array of arrays) {
      for (let i = 0; i < array.length; i++) array[i] = array[i]! * scale;
    }
  }
  return total;
}

/**
 * Clamps every gradient element to [-max, max], in place (PyTorch's `clip_grad_value_`).
 * A NaN stays NaN, for the optimizer's `nonFinite` policy to see.
 */
export function clipGradValue(grads: ParamSet, max: number): void {
  const owner = 'clipGradValue';
  if (typeof max !== 'number' || !(max > 0) || max === Infinity) throw optionError(owner, 'max', max, 'a finite number > 0');
  // Every array is checked before the first is changed.
  const arrays = arraysOf(owner, grads);
  const low = -max;
  for (const array of arrays) {
    for (let i = 0; i < array.length; i++) {
      const g = array[i]!;
      if (g > max) array[i] = max;
      else if (g < low) array[i] = low;
    }
  }
}

/** Sets every gradient to zero, in place. */
export function zeroGrads(grads: ParamSet): void {
  for (const array of arraysOf('zeroGrads', grads)) array.fill(0);
}

/**
 * A new set of zero arrays with the names, types and lengths of `params` (object or Map,
 * as given; an object of an interface or class type comes back as a plain object with the
 * same fields).
 */
export function zerosLike<K extends string, A extends FloatArray>(params: ReadonlyMap<K, A>): Map<K, A>;
export function zerosLike<T extends { readonly [P in keyof T]: FloatArray }>(params: T): { -readonly [P in keyof T]: T[P] };
export function zerosLike(params: ParamSet): ParamSet {
  if (params instanceof Map) {
    const out = new Map<string, FloatArray>();
    forEachArray(params, (array, name) => out.set(name, like('zerosLike', array, name)));
    return out;
  }
  const out: { [name: string]: FloatArray } = {};
  forEachArray(params, (array, name) => {
    // defineProperty: a parameter may be named '__proto__'.
    Object.defineProperty(out, name, { value: like('zerosLike', array, name), enumerable: true, writable: true, configurable: true });
  });
  return out;
}

function like(owner: string, array: unknown, name: string): FloatArray {
  if (array instanceof Float32Array) return new Float32Array(array.length);
  if (array instanceof Float64Array) return new Float64Array(array.length);
  throw new UpdateError(`${owner}: parameter '${name}' must be a Float32Array or Float64Array, got ${describeValue(array)}`, name);
}

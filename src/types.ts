/** Element arrays the optimizers work on. State buffers take the parameter's type. */
export type FloatArray = Float32Array | Float64Array;

/** Element type of a parameter, as named in saved state. */
export type Dtype = 'float32' | 'float64';

/** The array type of a dtype: `Float32Array` for 'float32', `Float64Array` for 'float64'. */
export type ArrayOf<D extends Dtype> = D extends 'float64' ? Float64Array : Float32Array;

/**
 * A set of named arrays: the book's `params` / `grads` dict. A plain object, an object of
 * an interface or class type whose own fields are the arrays, or a Map, from name to
 * `Float32Array` / `Float64Array`. `K` carries the names through the types, so that
 * `zerosLike(params).W1` type-checks and a misspelt name does not.
 */
export type ParamSet<K extends string = string, A extends FloatArray = FloatArray> = { readonly [P in K]: A } | ReadonlyMap<K, A>;

/** A learning-rate schedule: a pure function of the 0-based update count. */
export type Schedule = (step: number) => number;

/** A constant learning rate or a schedule. */
export type LearningRate = number | Schedule;

export function dtypeOf(array: FloatArray): Dtype {
  return array instanceof Float32Array ? 'float32' : 'float64';
}

export function isFloatArray(value: unknown): value is FloatArray {
  return value instanceof Float32Array || value instanceof Float64Array;
}

/** Looks a name up in a ParamSet without touching the prototype chain. */
export function getArray(set: ParamSet, name: string): unknown {
  if (set instanceof Map) return set.get(name);
  const record = set as { readonly [name: string]: FloatArray };
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

/** Calls `visit(array, name)` for every entry, in insertion order, allocating nothing. */
export function forEachArray(set: ParamSet, visit: (array: unknown, name: string) => void): void {
  if (set instanceof Map) {
    set.forEach(visit);
    return;
  }
  const record = set as { readonly [name: string]: unknown };
  for (const name in record) {
    if (Object.hasOwn(record, name)) visit(record[name], name);
  }
}

/** Element arrays the optimizers work on. State buffers take the parameter's type. */
export type FloatArray = Float32Array | Float64Array;

/** Element type of a parameter, as named in saved state. */
export type Dtype = 'float32' | 'float64';

/**
 * A set of named arrays: the book's `params` / `grads` dict. A plain object or a Map from
 * name to `Float32Array` / `Float64Array`.
 */
export type ParamSet = { readonly [name: string]: FloatArray } | ReadonlyMap<string, FloatArray>;

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

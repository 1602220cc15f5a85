/**
 * The checks of a call that every optimizer-like object shares: the shape of a set of
 * arrays, per-parameter overrides, and aliasing (no two arrays among all params and
 * grads may share memory: a step would read what it just wrote).
 */
import { UpdateError, describeValue, optionError } from '../errors.ts';
import { dtypeOf, forEachArray, getArray, isFloatArray, type Dtype, type FloatArray, type ParamSet } from '../types.ts';

/** Throws a TypeError unless `set` can be a ParamSet (an object or a Map). */
export function checkSet(owner: string, which: string, set: unknown): void {
  if (set === null || typeof set !== 'object' || Array.isArray(set) || ArrayBuffer.isView(set)) {
    throw new TypeError(`${owner}: ${which} must be an object or a Map of named Float32Array/Float64Array, got ${describeValue(set)}`);
  }
}

/** A parameter name from a ParamSet: a Map may hold any key, and a number key would not match its saved state. */
export function checkName(owner: string, name: unknown): asserts name is string {
  if (typeof name !== 'string') {
    throw new UpdateError(`${owner}: parameter names must be strings, got the Map key ${describeValue(name)} (a number key would not match its saved state)`, String(name));
  }
}

/** The predicate of an override's `params`. */
export function matcherOf(owner: string, index: number, matcher: unknown): (name: string) => boolean {
  if (typeof matcher === 'string') return (name) => name === matcher;
  if (typeof matcher === 'function') return (name) => (matcher as (name: string) => boolean)(name) === true;
  if (matcher instanceof RegExp) return (name) => { matcher.lastIndex = 0; return matcher.test(name); };
  if (Array.isArray(matcher) && matcher.every((m) => typeof m === 'string')) {
    const names = new Set<string>(matcher as string[]);
    return (name) => names.has(name);
  }
  throw optionError(owner, `overrides[${index}].params`, matcher, 'a name, an array of names, a RegExp or a function');
}

/** An override that matches none of the parameters is a typo or a stale pattern: refuse it. */
export function checkOverridesUsed(owner: string, overrides: readonly { readonly matches: (name: string) => boolean }[], names: readonly string[]): void {
  overrides.forEach((override, index) => {
    if (!names.some((name) => override.matches(name))) {
      const shown = names.length > 8 ? `${names.slice(0, 8).join(', ')}, ...` : names.join(', ');
      throw new UpdateError(`${owner}: overrides[${index}] matches no parameter of this update (parameters: ${shown})`, '');
    }
  });
}

export function overlaps(a: FloatArray, b: FloatArray): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

/** One array of a call, named for the error message. */
export interface AliasEntry {
  readonly array: FloatArray;
  /** "parameter 'W'" or "gradient 'W'". */
  readonly what: string;
  readonly name: string;
}

/**
 * The first pair of entries whose arrays share memory (empty arrays share none), or
 * undefined: per buffer, sorted by offset, each against the furthest-reaching before it.
 */
export function firstOverlap<E extends { readonly array: FloatArray }>(entries: readonly E[]): [E, E] | undefined {
  const byBuffer = new Map<ArrayBufferLike, E[]>();
  for (const entry of entries) {
    if (entry.array.byteLength === 0) continue;
    const list = byBuffer.get(entry.array.buffer);
    if (list === undefined) byBuffer.set(entry.array.buffer, [entry]);
    else list.push(entry);
  }
  for (const list of byBuffer.values()) {
    list.sort((a, b) => a.array.byteOffset - b.array.byteOffset);
    let reach = list[0]!;
    for (let i = 1; i < list.length; i++) {
      const entry = list[i]!;
      if (entry.array.byteOffset < reach.array.byteOffset + reach.array.byteLength) return [reach, entry];
      if (entry.array.byteOffset + entry.array.byteLength > reach.array.byteOffset + reach.array.byteLength) reach = entry;
    }
  }
  return undefined;
}

/** Throws an UpdateError naming the first two arrays of a call that share memory. */
export function checkNoAliasing(owner: string, entries: readonly AliasEntry[]): void {
  const clash = firstOverlap(entries);
  if (clash !== undefined) {
    throw new UpdateError(`${owner}: ${clash[1].what} shares memory with ${clash[0].what} (every parameter and gradient needs memory of its own)`, clash[1].name);
  }
}

/** Stands in for the call's params and grads between calls (a new `{}` per call would allocate). */
const NO_ARRAYS: ParamSet = Object.freeze({});

/** What the input checks read of a parameter's place in the optimizer. */
interface SlotShape {
  readonly state: unknown;
  readonly length: number;
  readonly dtype: Dtype;
}

/**
 * The input checks of a plain-set call: each parameter against its gradient and its
 * state (types, lengths, names), and, when the set of arrays differs from the last one
 * checked (not per step), the whole set: no two arrays share memory, every override
 * matches some parameter.
 */
export class InputChecks {
  readonly #owner: string;
  readonly #overrides: readonly { readonly matches: (name: string) => boolean }[];
  readonly #slots: ReadonlyMap<string, SlotShape>;
  // The arrays of the last set checked as a whole: [param, grad] per parameter, in order.
  // A call with the same arrays skips that check, so it costs nothing per step.
  readonly #checkedArrays: unknown[] = [];
  readonly #checkedNames: string[] = [];
  #checkedCount = 0;
  // The call in progress, read by the pre-bound visitors (no closure per call).
  #params: ParamSet = NO_ARRAYS;
  #grads: ParamSet = NO_ARRAYS;
  #seen = 0;
  #setChanged = false;

  constructor(owner: string, overrides: readonly { readonly matches: (name: string) => boolean }[], slots: ReadonlyMap<string, SlotShape>) {
    this.#owner = owner;
    this.#overrides = overrides;
    this.#slots = slots;
  }

  /** Throws the first problem of the call, naming it; writes nothing the optimizer reads. */
  check(params: ParamSet, grads: ParamSet): void {
    checkSet(this.#owner, 'params', params);
    checkSet(this.#owner, 'grads', grads);
    this.#params = params;
    this.#grads = grads;
    try {
      this.#seen = 0;
      this.#setChanged = false;
      forEachArray(params, this.#checkParam);
      forEachArray(grads, this.#checkGradName);
      if (this.#setChanged || this.#seen !== this.#checkedCount) this.#checkNewSet(params, grads);
    } finally {
      this.#params = NO_ARRAYS;
      this.#grads = NO_ARRAYS;
    }
  }

  /** The next call checks its whole set again (the state was replaced). */
  forget(): void {
    this.#checkedCount = 0;
  }

  readonly #checkParam = (param: unknown, name: string): void => {
    const owner = this.#owner;
    checkName(owner, name);
    if (!isFloatArray(param)) {
      throw new UpdateError(`${owner}: parameter '${name}' must be a Float32Array or Float64Array, got ${describeValue(param)}`, name);
    }
    const grad = getArray(this.#grads, name);
    if (grad === undefined) throw new UpdateError(`${owner}: no gradient for parameter '${name}'`, name);
    if (!isFloatArray(grad)) {
      throw new UpdateError(`${owner}: gradient '${name}' must be a Float32Array or Float64Array, got ${describeValue(grad)}`, name);
    }
    if (grad.constructor !== param.constructor) {
      throw new UpdateError(`${owner}: gradient '${name}' is a ${grad.constructor.name} but the parameter is a ${param.constructor.name}`, name);
    }
    if (grad.length !== param.length) {
      throw new UpdateError(`${owner}: gradient '${name}' has length ${grad.length} but the parameter has length ${param.length}`, name);
    }
    if (overlaps(grad, param)) throw new UpdateError(`${owner}: gradient '${name}' shares memory with its parameter`, name);
    const i = this.#seen++;
    if (this.#checkedArrays[2 * i] !== param || this.#checkedArrays[2 * i + 1] !== grad || this.#checkedNames[i] !== name) this.#setChanged = true;
    const slot = this.#slots.get(name);
    if (slot !== undefined && slot.state !== undefined) {
      if (slot.length !== param.length) {
        throw new UpdateError(
          `${owner}: parameter '${name}' has length ${param.length} but its optimizer state was made for length ${slot.length} (call reset('${name}') to start it afresh)`,
          name,
        );
      }
      if (slot.dtype !== dtypeOf(param)) {
        throw new UpdateError(`${owner}: parameter '${name}' is ${dtypeOf(param)} but its optimizer state is ${slot.dtype}`, name);
      }
    }
  };

  readonly #checkGradName = (_grad: unknown, name: string): void => {
    if (getArray(this.#params, name) === undefined) {
      throw new UpdateError(`${this.#owner}: gradient '${name}' has no parameter of that name`, name);
    }
  };

  #checkNewSet(params: ParamSet, grads: ParamSet): void {
    const entries: AliasEntry[] = [];
    const names: string[] = [];
    forEachArray(params, (param, name) => {
      names.push(name);
      entries.push({ array: param as FloatArray, what: `parameter '${name}'`, name });
      entries.push({ array: getArray(grads, name) as FloatArray, what: `gradient '${name}'`, name });
    });
    checkNoAliasing(this.#owner, entries);
    checkOverridesUsed(this.#owner, this.#overrides, names);
    this.#checkedArrays.length = 0;
    forEachArray(params, (param, name) => this.#checkedArrays.push(param, getArray(grads, name)));
    this.#checkedNames.length = 0;
    this.#checkedNames.push(...names);
    this.#checkedCount = names.length;
  }
}

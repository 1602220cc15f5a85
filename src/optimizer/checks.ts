/**
 * The checks of a call that every optimizer-like object shares: the shape of a set of
 * arrays, per-parameter overrides, and aliasing (no two arrays among all params and
 * grads may share memory: a step would read what it just wrote).
 */
import { UpdateError, describeValue, optionError } from '../errors.ts';
import type { FloatArray } from '../types.ts';

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

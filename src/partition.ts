/**
 * `partition(assign, optimizers)`: one optimizer made of several, each parameter sent to
 * the one its name is assigned to (optax's `multi_transform`). Muon's authors recommend
 * exactly this: Muon for the hidden matrices, AdamW for biases, gains and the output layer.
 *
 * ```ts
 * const opt = partition((name) => (name === 'W1' || name === 'W2' ? 'muon' : 'adamw'), {
 *   muon: new Muon(),
 *   adamw: new AdamW({ lr: 1e-3 }),
 * });
 * opt.update(store.params, store.grads);
 * ```
 *
 * Works on plain ParamSets (each member gets a record of its own parameters, kept between
 * steps, so a step allocates nothing) and on a ParamStore (each member updates only its
 * parameters of the store, through `update(params, grads, storeNames)`, in the store's
 * memory and on the WebAssembly kernels). A step is all or nothing: every parameter's
 * assignment, array types and lengths, and the finiteness of every gradient are checked
 * before any member steps; a non-finite gradient goes to its member first (which throws,
 * or skips with `nonFinite: 'skip'`), and then no other member steps either.
 */
import { StateError, UpdateError, describeValue } from './errors.ts';
import type { OptimizerStateDict } from './state.ts';
import { storeOf, type AnyParamStore } from './store.ts';
import { forEachArray, getArray, isFloatArray, type FloatArray, type ParamSet } from './types.ts';

/** What a member of a partition needs: an optimizer of this library (Muon included). */
export interface PartitionMember {
  update(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean;
  stateDict(): OptimizerStateDict;
  loadStateDict(value: unknown): void;
  reset(name?: string): void;
  stateBuffersPerParam(): number;
  readonly nonFinite: 'error' | 'skip' | 'ignore';
}

/** The saved state of a partition: each member's own state dict, by key. */
export interface PartitionStateDict {
  format: typeof PARTITION_FORMAT;
  members: { [key: string]: OptimizerStateDict };
}

export const PARTITION_FORMAT = 'nesterov/partition-state';

export type Assignment = ((name: string) => string) | { readonly [name: string]: string };

export interface Partition<M extends { readonly [key: string]: PartitionMember }> {
  readonly members: M;
  /** The key of the member parameter `name` goes to (throws for a key not among the members). */
  memberOf(name: string): keyof M & string;
  update(params: ParamSet, grads: ParamSet): boolean;
  stateDict(): PartitionStateDict;
  loadStateDict(value: unknown): void;
  reset(name?: string): void;
  /** The most state buffers any member keeps per parameter (for `new ParamStore(shapes, { stateBuffers: [partition] })`). */
  stateBuffersPerParam(): number;
}

/** The parameters of one member in the last plain-ParamSet update, as a record of its own. */
interface Part {
  readonly key: string;
  readonly member: PartitionMember;
  names: string[];
  params: Record<string, FloatArray>;
  grads: Record<string, FloatArray>;
}

/** Stands in for the call's params and grads between calls (a new `{}` per call would allocate). */
const NO_ARRAYS: ParamSet = Object.freeze({});

function checkSet(which: string, set: unknown): void {
  if (set === null || typeof set !== 'object' || Array.isArray(set) || ArrayBuffer.isView(set)) {
    throw new TypeError(`partition.update: ${which} must be an object or a Map of named Float32Array/Float64Array, got ${describeValue(set)}`);
  }
}

export function partition<M extends { readonly [key: string]: PartitionMember }>(assign: Assignment, optimizers: M): Partition<M> {
  const owner = 'partition';
  if (typeof assign !== 'function' && (assign === null || typeof assign !== 'object' || Array.isArray(assign))) {
    throw new TypeError(`${owner}: assign must be a function (name) => key or a record { name: key }, got ${describeValue(assign)}`);
  }
  if (optimizers === null || typeof optimizers !== 'object' || Array.isArray(optimizers)) {
    throw new TypeError(`${owner}: optimizers must be a record { key: optimizer }, got ${describeValue(optimizers)}`);
  }
  const keys = Object.keys(optimizers);
  if (keys.length === 0) throw new RangeError(`${owner}: optimizers is empty`);
  for (const key of keys) {
    const member = optimizers[key] as unknown as Partial<PartitionMember> | null;
    if (member === null || typeof member !== 'object' || typeof member.update !== 'function' || typeof member.stateDict !== 'function') {
      throw new TypeError(`${owner}: optimizers['${key}'] is not an optimizer, got ${describeValue(member)}`);
    }
  }
  const known = `[${keys.join(', ')}]`;
  const assignments = new Map<string, string>();
  const memberOf = (name: string): keyof M & string => {
    let key = assignments.get(name);
    if (key === undefined) {
      const got: unknown = typeof assign === 'function' ? assign(name) : Object.hasOwn(assign, name) ? assign[name] : undefined;
      if (typeof got !== 'string' || !Object.hasOwn(optimizers, got)) {
        throw new UpdateError(`${owner}: parameter '${name}' is assigned to ${describeValue(got)}, which is not one of the optimizers ${known}`, name);
      }
      key = got;
      assignments.set(name, key);
    }
    return key;
  };
  const parts: Part[] = keys.map((key) => ({ key, member: optimizers[key]!, names: [], params: {}, grads: {} }));
  const partOf = new Map<string, Part>(parts.map((part) => [part.key, part]));
  // The store update's names per member, made once per store.
  let storeParts: { store: AnyParamStore; names: (readonly string[])[] } | undefined;

  // The call in progress, read by the pre-bound visitors (no closure per call).
  let callGrads: ParamSet = NO_ARRAYS;
  let seen = 0;
  let changed = false;
  let nonFinite: string | undefined;

  const check = (param: unknown, name: string): void => {
    const key = memberOf(name);
    if (!isFloatArray(param)) throw new UpdateError(`${owner}: parameter '${name}' must be a Float32Array or Float64Array, got ${describeValue(param)}`, name);
    const grad = getArray(callGrads, name);
    if (!isFloatArray(grad) || grad.constructor !== param.constructor || grad.length !== param.length) {
      throw new UpdateError(`${owner}: gradient '${name}' must be a ${param.constructor.name} of length ${param.length}, got ${describeValue(grad)}`, name);
    }
    if (nonFinite === undefined && partOf.get(key)!.member.nonFinite !== 'ignore') {
      for (let i = 0; i < grad.length; i++) {
        const v = grad[i]!;
        if (v - v !== 0) {
          nonFinite = name;
          break;
        }
      }
    }
    // Does the plain-set split of the last call still hold (same names, same arrays)?
    const part = partOf.get(key)!;
    const at = part.names.indexOf(name);
    if (at < 0 || part.params[name] !== param || part.grads[name] !== grad) changed = true;
    seen += 1;
  };
  const checkGradName = (_grad: unknown, name: string): void => {
    if (getArray(callParams, name) === undefined) throw new UpdateError(`${owner}: gradient '${name}' has no parameter of that name`, name);
  };
  let callParams: ParamSet = NO_ARRAYS;
  const split = (param: unknown, name: string): void => {
    const part = partOf.get(memberOf(name))!;
    part.names.push(name);
    part.params[name] = param as FloatArray;
    part.grads[name] = getArray(callGrads, name) as FloatArray;
  };

  const self: Partition<M> = {
    members: optimizers,
    memberOf,
    update(params: ParamSet, grads: ParamSet): boolean {
      checkSet('params', params);
      checkSet('grads', grads);
      callParams = params;
      callGrads = grads;
      seen = 0;
      changed = false;
      nonFinite = undefined;
      try {
        forEachArray(params, check);
        forEachArray(grads, checkGradName);
        const store = storeOf(params);
        if (store !== undefined && storeOf(grads) === store) return updateStore(store);
        let total = 0;
        for (const part of parts) total += part.names.length;
        if (changed || seen !== total) {
          for (const part of parts) {
            part.names = [];
            part.params = {};
            part.grads = {};
          }
          forEachArray(params, split);
        }
        if (nonFinite !== undefined) {
          // Its member throws or skips (writing nothing); the others do not step either.
          const part = partOf.get(memberOf(nonFinite))!;
          part.member.update(part.params, part.grads);
          return false;
        }
        let stepped = true;
        for (const part of parts) if (part.names.length > 0) stepped = part.member.update(part.params, part.grads) && stepped;
        return stepped;
      } finally {
        callParams = NO_ARRAYS;
        callGrads = NO_ARRAYS;
      }
    },
    stateDict(): PartitionStateDict {
      const members = Object.create(null) as { [key: string]: OptimizerStateDict };
      for (const part of parts) members[part.key] = part.member.stateDict();
      return { format: PARTITION_FORMAT, members };
    },
    loadStateDict(value: unknown): void {
      const where = `${owner}.loadStateDict`;
      const saved = value as Partial<PartitionStateDict> | null;
      if (saved === null || typeof saved !== 'object' || saved.format !== PARTITION_FORMAT || saved.members === null || typeof saved.members !== 'object') {
        throw new StateError(`${where}: expected a partition state ({ format: '${PARTITION_FORMAT}', members }), got ${describeValue(value)}`);
      }
      const got = Object.keys(saved.members);
      if (got.length !== keys.length || keys.some((key) => !got.includes(key))) {
        throw new StateError(`${where}: the state has members [${got.join(', ')}], this partition has ${known}`);
      }
      // All or nothing: a member that refuses its state puts back the ones loaded before it.
      const before = parts.map((part) => part.member.stateDict());
      let done = 0;
      try {
        for (const part of parts) {
          part.member.loadStateDict(saved.members[part.key]);
          done += 1;
        }
      } catch (error) {
        for (let i = 0; i < done; i++) parts[i]!.member.loadStateDict(before[i]);
        throw error;
      }
    },
    reset(name?: string): void {
      if (name === undefined) {
        for (const part of parts) part.member.reset();
        storeParts = undefined;
      } else {
        partOf.get(memberOf(name))!.member.reset(name);
      }
    },
    stateBuffersPerParam(): number {
      return Math.max(...parts.map((part) => part.member.stateBuffersPerParam()));
    },
  };

  function updateStore(store: AnyParamStore): boolean {
    if (storeParts?.store !== store) {
      storeParts = { store, names: parts.map((part) => store.names.filter((name) => memberOf(name) === part.key)) };
    }
    const names = storeParts.names;
    if (nonFinite !== undefined) {
      const k = keys.indexOf(memberOf(nonFinite));
      parts[k]!.member.update(store.params, store.grads, names[k]);
      return false;
    }
    let stepped = true;
    for (let k = 0; k < parts.length; k++) {
      if (names[k]!.length > 0) stepped = parts[k]!.member.update(store.params, store.grads, names[k]) && stepped;
    }
    return stepped;
  }

  return self;
}

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
 * assignment, array types and lengths, aliasing across the whole call, and then every
 * member's own `check` of its part (finiteness, schedules, modes, state) run before any
 * member writes; a member that would skip (`nonFinite: 'skip'`) skips, and then no other
 * member steps either.
 *
 * A partition is itself an `OptimizerLike`: it nests in `Lookahead`, in another
 * partition (as a member over a ParamStore it takes `storeNames`) and in `tfOptimizer`.
 */
import type { NonFinitePolicy, OptimizerLike } from './contract.ts';
import { isOptimizerLike } from './contract.ts';
import { StateError, UpdateError, describeValue } from './errors.ts';
import { checkName, checkNoAliasing, checkSet, type AliasEntry } from './optimizer/checks.ts';
import { paramsOfSavedState, type OptimizerStateDict } from './state.ts';
import { storeOf, type AnyParamStore } from './store.ts';
import { forEachArray, getArray, isFloatArray, type FloatArray, type ParamSet } from './types.ts';

/**
 * What a member of a partition is: whichever optimizer of this library.
 * @deprecated since 0.2.0: use `OptimizerLike`, the one interface every optimizer and wrapper is.
 */
export type PartitionMember = OptimizerLike;

/**
 * The saved state of a partition: each member's own state dict, by key (typed as a
 * rule's; a member that is itself a wrapper saves its wrapper's dict there, a
 * `SavedState`). saveState / encodeState write it as it is, nested.
 */
export interface PartitionStateDict {
  format: typeof PARTITION_FORMAT;
  members: { [key: string]: OptimizerStateDict };
}

export const PARTITION_FORMAT = 'nesterov/partition-state';

export type Assignment = ((name: string) => string) | { readonly [name: string]: string };

export interface Partition<M extends { readonly [key: string]: OptimizerLike }> extends OptimizerLike<PartitionStateDict> {
  readonly members: M;
  /** The key of the member parameter `name` goes to (throws for a key not among the members). */
  memberOf(name: string): keyof M & string;
}

/** The parameters of one member in the last plain-ParamSet call, as a record of its own. */
interface Part {
  readonly key: string;
  readonly member: OptimizerLike;
  names: string[];
  params: Record<string, FloatArray>;
  grads: Record<string, FloatArray>;
}

/** Stands in for the call's params and grads between calls (a new `{}` per call would allocate). */
const NO_ARRAYS: ParamSet = Object.freeze({});

/** The members' policy where they agree; 'error' where they do not (each member still applies its own). */
function policyOf(members: readonly OptimizerLike[]): NonFinitePolicy {
  const first = members[0]!.nonFinite;
  return members.every((member) => member.nonFinite === first) ? first : 'error';
}

export function partition<M extends { readonly [key: string]: OptimizerLike }>(assign: Assignment, optimizers: M): Partition<M> {
  const owner = 'partition';
  const updateOwner = 'partition.update';
  if (typeof assign !== 'function' && (assign === null || typeof assign !== 'object' || Array.isArray(assign))) {
    throw new TypeError(`${owner}: assign must be a function (name) => key or a record { name: key }, got ${describeValue(assign)}`);
  }
  if (optimizers === null || typeof optimizers !== 'object' || Array.isArray(optimizers)) {
    throw new TypeError(`${owner}: optimizers must be a record { key: optimizer }, got ${describeValue(optimizers)}`);
  }
  const keys = Object.keys(optimizers);
  if (keys.length === 0) throw new RangeError(`${owner}: optimizers is empty`);
  for (const key of keys) {
    const member: unknown = optimizers[key];
    if (!isOptimizerLike(member)) {
      throw new TypeError(`${owner}: optimizers['${key}'] is not an optimizer (check, update, stateDict, loadStateDict, reset, stateBuffersPerParam), got ${describeValue(member)}`);
    }
  }
  const distinct = new Set(keys.map((key) => optimizers[key]));
  if (distinct.size !== keys.length) {
    throw new TypeError(`${owner}: one optimizer is given under two keys; each key needs an optimizer of its own (its state is per parameter)`);
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
  // The store update's names per member, made once per store and selection.
  let storeParts: { store: AnyParamStore; selection: readonly string[] | undefined; names: (readonly string[])[] } | undefined;
  // The arrays of the last call checked for aliasing: [param, grad] per parameter.
  const checkedArrays: unknown[] = [];

  // The call in progress, read by the pre-bound visitors (no closure per call).
  let callParams: ParamSet = NO_ARRAYS;
  let callGrads: ParamSet = NO_ARRAYS;
  let seen = 0;
  let changed = false;

  const checkParam = (param: unknown, name: string): void => {
    checkName(updateOwner, name);
    const key = memberOf(name);
    if (!isFloatArray(param)) throw new UpdateError(`${updateOwner}: parameter '${name}' must be a Float32Array or Float64Array, got ${describeValue(param)}`, name);
    const grad = getArray(callGrads, name);
    if (!isFloatArray(grad) || grad.constructor !== param.constructor || grad.length !== param.length) {
      throw new UpdateError(`${updateOwner}: gradient '${name}' must be a ${param.constructor.name} of length ${param.length}, got ${describeValue(grad)}`, name);
    }
    // Does the split of the last call still hold (same names, same arrays)?
    const part = partOf.get(key)!;
    if (part.params[name] !== param || part.grads[name] !== grad || checkedArrays[2 * seen] !== param || checkedArrays[2 * seen + 1] !== grad) changed = true;
    seen += 1;
  };
  const checkGradName = (_grad: unknown, name: string): void => {
    if (getArray(callParams, name) === undefined) throw new UpdateError(`${updateOwner}: gradient '${name}' has no parameter of that name`, name);
  };
  const split = (param: unknown, name: string): void => {
    const part = partOf.get(memberOf(name))!;
    part.names.push(name);
    part.params[name] = param as FloatArray;
    part.grads[name] = getArray(callGrads, name) as FloatArray;
  };

  /** Aliasing across the members' parts: two members must not step the same memory. */
  function checkAliasingOf(params: ParamSet, grads: ParamSet): void {
    const entries: AliasEntry[] = [];
    forEachArray(params, (param, name) => {
      entries.push({ array: param as FloatArray, what: `parameter '${name}'`, name });
      entries.push({ array: getArray(grads, name) as FloatArray, what: `gradient '${name}'`, name });
    });
    checkNoAliasing(updateOwner, entries);
    checkedArrays.length = 0;
    for (const entry of entries) checkedArrays.push(entry.array);
  }

  function namesInStore(store: AnyParamStore, selection: readonly string[] | undefined): (readonly string[])[] {
    if (storeParts === undefined || storeParts.store !== store || storeParts.selection !== selection) {
      const chosen = selection ?? store.names;
      for (const name of chosen) {
        if (typeof name !== 'string' || !Object.hasOwn(store.params, name)) throw new UpdateError(`${updateOwner}: storeNames names '${String(name)}', which is not a parameter of the store`, String(name));
        memberOf(name);
      }
      storeParts = { store, selection, names: parts.map((part) => chosen.filter((name) => memberOf(name) === part.key)) };
    }
    return storeParts.names;
  }

  /**
   * Every check of a call, the members' own included; writes nothing. Returns the index
   * of a member that would skip the step, -1 when every member would step.
   */
  function checkCall(params: ParamSet, grads: ParamSet, storeNames: readonly string[] | undefined): number {
    checkSet(updateOwner, 'params', params);
    checkSet(updateOwner, 'grads', grads);
    const store = storeOf(params);
    if (store !== undefined && storeOf(grads) === store) {
      // A store's arrays are its regions: they cannot alias each other.
      const names = namesInStore(store, storeNames);
      for (let k = 0; k < parts.length; k++) {
        if (names[k]!.length > 0 && !parts[k]!.member.check(store.params, store.grads, names[k])) return k;
      }
      return -1;
    }
    if (storeNames !== undefined) {
      throw new UpdateError(`${updateOwner}: storeNames selects parameters of a ParamStore; these params and grads are not one store's`, '');
    }
    callParams = params;
    callGrads = grads;
    seen = 0;
    changed = false;
    forEachArray(params, checkParam);
    forEachArray(grads, checkGradName);
    let total = 0;
    for (const part of parts) total += part.names.length;
    if (changed || seen !== total) {
      checkAliasingOf(params, grads);
      for (const part of parts) {
        part.names = [];
        part.params = {};
        part.grads = {};
      }
      forEachArray(params, split);
    }
    for (let k = 0; k < parts.length; k++) {
      const part = parts[k]!;
      if (part.names.length > 0 && !part.member.check(part.params, part.grads)) return k;
    }
    return -1;
  }

  const self: Partition<M> = {
    members: optimizers,
    memberOf,
    nonFinite: policyOf(parts.map((part) => part.member)),
    check(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean {
      try {
        return checkCall(params, grads, storeNames) < 0;
      } finally {
        callParams = NO_ARRAYS;
        callGrads = NO_ARRAYS;
      }
    },
    update(params: ParamSet, grads: ParamSet, storeNames?: readonly string[]): boolean {
      try {
        const skipping = checkCall(params, grads, storeNames);
        const store = storeOf(params);
        const names = store !== undefined && storeOf(grads) === store ? storeParts!.names : undefined;
        if (skipping >= 0) {
          // The member that would skip does (and counts it); no other member steps.
          const part = parts[skipping]!;
          if (names !== undefined) part.member.update(store!.params, store!.grads, names[skipping]);
          else part.member.update(part.params, part.grads);
          return false;
        }
        let stepped = true;
        for (let k = 0; k < parts.length; k++) {
          const part = parts[k]!;
          if (names !== undefined) {
            if (names[k]!.length > 0) stepped = part.member.update(store!.params, store!.grads, names[k]) && stepped;
          } else if (part.names.length > 0) {
            stepped = part.member.update(part.params, part.grads) && stepped;
          }
        }
        return stepped;
      } finally {
        callParams = NO_ARRAYS;
        callGrads = NO_ARRAYS;
      }
    },
    stateDict(): PartitionStateDict {
      const members = Object.create(null) as { [key: string]: OptimizerStateDict };
      for (const part of parts) members[part.key] = part.member.stateDict() as OptimizerStateDict;
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
      // Each member's saved parameters must be ones this partition sends to that member:
      // otherwise a member would keep a stale state that no step ever reaches.
      for (const key of keys) {
        for (const name of paramsOfSavedState(saved.members[key])?.keys() ?? []) {
          let assigned: string;
          try {
            assigned = memberOf(name);
          } catch (error) {
            throw new StateError(`${where}: members['${key}'] holds the state of parameter '${name}', which this partition assigns to no member (${(error as Error).message})`);
          }
          if (assigned !== key) throw new StateError(`${where}: members['${key}'] holds the state of parameter '${name}', which this partition assigns to '${assigned}'`);
        }
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
  return self;
}

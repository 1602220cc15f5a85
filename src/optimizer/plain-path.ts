/**
 * The plain-set update path of the optimizer: named typed arrays that are not one
 * ParamStore's. Its checks run over every parameter before anything is written; then
 * each parameter takes its step through the rule's JS loops. The optimizer
 * (../optimizer.ts) owns the slots and the counters; this holds the call in progress.
 */
import type { NonFinitePolicy } from '../contract.ts';
import { UpdateError } from '../errors.ts';
import type { CommonHyper, RuleState, UpdateRule } from '../rule.ts';
import { dtypeOf, forEachArray, getArray, type FloatArray, type ParamSet } from '../types.ts';
import type { InputChecks } from './checks.ts';
import { firstNonFinite, locateOverflow, nonFiniteGradientError, overflowError, type Overflow } from './finite.ts';
import type { GlobalScalars } from './global.ts';
import type { Slot } from './plan.ts';

/** Stands in for the call's params and grads between calls (a new `{}` per call would allocate). */
const NO_ARRAYS: ParamSet = Object.freeze({});

/** What the plain path reads of its optimizer, given once at construction. */
export interface PlainPathOptions<H extends CommonHyper, S extends RuleState> {
  readonly rule: UpdateRule<never, H, S>;
  /** 'Adam.update', for messages. */
  readonly owner: string;
  readonly nonFinite: NonFinitePolicy;
  /** The checks of names, types and lengths; undefined in the no-check mode. */
  readonly inputs: InputChecks | undefined;
  readonly slots: Map<string, Slot<H, S>>;
  readonly global: GlobalScalars<H, S> | undefined;
  /** The slot of a parameter, made (with no state) when there is none. */
  slotFor(name: string, param: FloatArray): Slot<H, S>;
  /** The optimizer's checked lr of this step under `hyper`, written into `target`. */
  setLearningRate(target: { lr: number }, hyper: H, name: string): void;
}

export class PlainPath<H extends CommonHyper, S extends RuleState> {
  readonly #o: PlainPathOptions<H, S>;
  // The call in progress, read by the pre-bound visitors below (no closure per call).
  #grads: ParamSet = NO_ARRAYS;
  #sawNonFinite = false;

  constructor(options: PlainPathOptions<H, S>) {
    this.#o = options;
  }

  /** Every check of a plain-set step, writing nothing; false when the step is to be skipped. */
  check(params: ParamSet, grads: ParamSet): boolean {
    try {
      return this.#check(params, grads);
    } finally {
      this.#grads = NO_ARRAYS;
    }
  }

  /**
   * Checks the step and applies it to every parameter; false when it is to be skipped.
   * The optimizer then counts the step and calls throwOverflow.
   */
  apply(params: ParamSet, grads: ParamSet): boolean {
    try {
      if (!this.#check(params, grads)) return false;
      const global = this.#o.global;
      if (global !== undefined) {
        global.begin();
        forEachArray(params, this.#accumulateParam);
        global.reduce();
      }
      forEachArray(params, this.#applyParam);
      return true;
    } finally {
      this.#grads = NO_ARRAYS;
    }
  }

  /** Every parameter took the step; then, if one wrote a NaN or an Infinity, say where. */
  throwOverflow(): void {
    const overflow = this.#overflow;
    if (overflow !== undefined) {
      this.#overflow = undefined;
      throw overflowError(this.#o.owner, overflow.name, overflow.at, overflow.at.index, this.#o.nonFinite);
    }
  }

  /** Every check of a plain-set step; false when the step is to be skipped. Sets #grads. */
  #check(params: ParamSet, grads: ParamSet): boolean {
    this.#o.inputs?.check(params, grads);
    this.#grads = grads;
    this.#sawNonFinite = false;
    this.#overflow = undefined;
    forEachArray(params, this.#prepareParam);
    return !this.#sawNonFinite;
  }

  readonly #prepareParam = (param: unknown, name: string): void => {
    const o = this.#o;
    const slot = o.slotFor(name, param as FloatArray);
    o.setLearningRate(slot, slot.hyper, name);
    if (o.rule.ownState === true) this.#checkShape(slot, (param as FloatArray).length, undefined);
    if (o.nonFinite === 'ignore' || this.#sawNonFinite) return;
    const grad = getArray(this.#grads, name) as FloatArray;
    const index = firstNonFinite(grad);
    if (index < 0) return;
    if (o.nonFinite === 'skip') {
      this.#sawNonFinite = true;
      return;
    }
    throw nonFiniteGradientError(o.owner, name, index, grad[index]!);
  };

  /**
   * An ownState rule's checks of a parameter's shape (rule.ts): the shape it can take,
   * and the state (if any) made for it. Throws an UpdateError naming the parameter.
   */
  #checkShape(slot: Slot<H, S>, length: number, storeShape: readonly number[] | undefined): void {
    const rule = this.#o.rule;
    const shape = rule.shapeOf!(slot.hyper, slot.name, length, storeShape);
    const why = slot.state === undefined ? undefined : rule.stateMismatch!(slot.state, slot.hyper, shape);
    if (why !== undefined) throw new UpdateError(`${this.#o.owner}: parameter '${slot.name}': ${why} (call reset('${slot.name}') to start it afresh)`, slot.name);
  }

  /**
   * The first parameter of this call whose step wrote a NaN or an Infinity, thrown by
   * update() after every parameter took its step, as the error says. Cleared by
   * #check at every call.
   */
  #overflow: { readonly name: string; readonly at: Overflow } | undefined;

  /** The slot of a parameter whose step is being applied, its state made at its first step. */
  #appliedSlot(p: FloatArray, name: string): Slot<H, S> & { state: S } {
    const slot = this.#o.slots.get(name)!;
    if (slot.state === undefined) {
      slot.dtype = dtypeOf(p);
      slot.length = p.length;
      const rule = this.#o.rule;
      slot.state = rule.init(p.length, slot.dtype, slot.hyper, undefined, rule.shapeOf?.(slot.hyper, name, p.length, undefined));
    }
    return slot as Slot<H, S> & { state: S };
  }

  /** Pass 1 of a global rule's step (optimizer/global.ts). */
  readonly #accumulateParam = (param: unknown, name: string): void => {
    const slot = this.#appliedSlot(param as FloatArray, name);
    this.#o.global!.accumulate(param as FloatArray, getArray(this.#grads, name) as FloatArray, slot.state, slot.hyper, slot, null);
  };

  readonly #applyParam = (param: unknown, name: string): void => {
    const p = param as FloatArray;
    const slot = this.#appliedSlot(p, name);
    const grad = getArray(this.#grads, name) as FloatArray;
    const finite = this.#o.global !== undefined ? this.#o.global.apply(p, grad, slot.state, slot.hyper, slot, null) : this.#o.rule.step(p, grad, slot.state, slot.hyper, slot);
    if (!finite && this.#o.nonFinite !== 'ignore' && this.#overflow === undefined) {
      const rule = this.#o.rule;
      const at = locateOverflow(p, grad, rule.buffersOf(slot.state, slot.hyper), rule.bufferNames(slot.hyper));
      if (at !== undefined) this.#overflow = { name, at };
    }
  };
}

/**
 * Hyperparameters that change during a run: a schedule `(step) => value` of the 0-based
 * update count for any numeric option (as `lr` has always taken), and values set at run
 * time by `setHyperparameters`.
 *
 * The rules stay plain: a rule's step reads resolved numbers from its hyperparameter
 * record, always. This module keeps the options as they were given and, when one is a
 * function, evaluates it at each step and resolves the numbers through the rule's own
 * `resolve`, so that a scheduled value is checked by the same validation, with the same
 * bounds, as a constant one (a momentum of 1.5 is refused at step 40 as at construction).
 * The resolved values are written into the one record per group (the defaults, each
 * override) that the slots and the ParamStore plan already hold: nothing else changes
 * when a value does, and a step whose options are all constants does nothing here (and
 * allocates nothing). A step with a schedule allocates: the rule's `resolve` makes a
 * new record, whose values are copied into the held one.
 *
 * Every value of a step is evaluated and resolved before any is written (all groups,
 * then all written), in the step's checks, before the params and state are touched: a
 * refused value leaves everything as it was, so a partition's or a wrapper's
 * all-or-nothing step keeps holding.
 *
 * Options that shape the state (whether a buffer exists, what a buffer starts at, how
 * the parameters relate to the state) take no schedule and cannot be changed at run
 * time: each rule's `fixedOptions` says which, and why (`variant` is fixed for every rule).
 */
import { StateError, UpdateError, describeValue } from '../errors.ts';
import type { FixedOptions } from '../rule.ts';
import type { Schedule } from '../types.ts';

/**
 * The options of a rule with every numeric one also taking a schedule `(step) => value`
 * of the 0-based update count (evaluated once per step, checked as a constant would be).
 * `lr` takes one already; booleans and strings take none.
 */
export type Schedulable<O> = { [K in keyof O]: NonNullable<O[K]> extends number ? O[K] | Schedule : O[K] };

const VARIANT_REASON = 'it selects the formulation, and with it the state buffers';

type Options = Record<string, unknown>;

/** Why `option` is fixed for a rule whose own fixed options are `fixed`, or undefined when it may change. */
function fixedReason(fixed: FixedOptions, option: string): string | undefined {
  if (option === 'variant') return VARIANT_REASON;
  return Object.hasOwn(fixed, option) ? fixed[option] : undefined;
}

/** A group of parameters with one set of options: the defaults, or one override. */
interface Group<H> {
  /** The override's own options (the defaults' group: none). */
  readonly own: Options;
  /** What the message calls it: '' for the defaults, ' of overrides[0]'. */
  readonly label: string;
  /** The options in force: the defaults' with the override's own over them. */
  options: Options;
  /** Keys of `options` that hold a schedule (lr aside: a step evaluates lr itself). */
  scheduled: readonly string[];
  /** The record the rule reads; the slots and the plan hold it, so it is written in place. */
  readonly hyper: H;
  /** The step whose scheduled values `hyper` holds. */
  at: number;
}

/** What a refused value becomes: an UpdateError at a step, a RangeError at a call, a StateError at a load. */
type Refusal = (message: string) => Error;

const atStep: Refusal = (message) => new UpdateError(message, '');
const atCall: Refusal = (message) => new RangeError(message);

export interface HyperparametersSource<H> {
  /** 'Adam', for messages. */
  readonly owner: string;
  /** The options the rule says may not change after construction, with why (RuleDescription.fixedOptions). */
  readonly fixed: FixedOptions;
  /** The rule's validation: options to a resolved record; throws naming option and value. */
  resolve(options: Options): H;
}

/** The hyperparameter records of one optimizer, their schedules and the values set at run time. */
export class Hyperparameters<H extends object> {
  readonly #source: HyperparametersSource<H>;
  readonly #groups: Group<H>[] = [];
  /** The defaults' options as given, and as set since. */
  #defaults: Options;
  /** Values set by setHyperparameters that a state dict can hold (numbers and booleans). */
  #setAtRunTime: Options = Object.create(null) as Options;
  #anyScheduled = false;

  /** Validates the options (schedules evaluated at step 0); throws naming the option and value. */
  constructor(source: HyperparametersSource<H>, defaults: Options, overrides: readonly Options[]) {
    this.#source = source;
    this.#defaults = defaults;
    const groups = [{ own: {}, label: '' }, ...overrides.map((own, i) => ({ own, label: ` of overrides[${i}]` }))];
    for (const { own, label } of groups) {
      const options = { ...defaults, ...own };
      const scheduled = this.#scheduledKeys(source.owner, options, label, atCall);
      const hyper = this.#resolveAt(source.owner, options, scheduled, 0, label, atCall);
      this.#groups.push({ own, label, options, scheduled, hyper, at: 0 });
      if (scheduled.length > 0) this.#anyScheduled = true;
    }
  }

  /** The record of the defaults (index 0) or of override `i` (index i + 1). */
  hyper(group: number): H {
    return this.#groups[group]!.hyper;
  }

  /** The defaults' options given as schedules, lr included. */
  get scheduledOptions(): readonly string[] {
    return Object.keys(this.#defaults).filter((key) => typeof this.#defaults[key] === 'function');
  }

  /**
   * Writes the values of `step` into every record that has a schedule, all checked
   * before any is written; throws an UpdateError naming the option, value and step.
   * Nothing to do (and no allocation) when no option is a schedule.
   */
  prepare(step: number): void {
    if (!this.#anyScheduled) return;
    const groups = this.#groups;
    let fresh: (H | undefined)[] | undefined;
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i]!;
      if (group.scheduled.length === 0 || group.at === step) continue;
      fresh ??= [];
      fresh[i] = this.#resolveAt(`${this.#source.owner}.update`, group.options, group.scheduled, step, group.label, atStep);
    }
    if (fresh === undefined) return;
    for (let i = 0; i < groups.length; i++) {
      const values = fresh[i];
      if (values === undefined) continue;
      Object.assign(groups[i]!.hyper, values);
      groups[i]!.at = step;
    }
  }

  /** The record of `group` at `step`: the held one when it is of that step, else a new one (not held). */
  at(group: number, step: number): H {
    if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`${this.#source.owner}.hyperparameters: invalid step: ${describeValue(step)} (expected an integer >= 0)`);
    const g = this.#groups[group]!;
    if (g.scheduled.length === 0 || g.at === step) return g.hyper;
    return this.#resolveAt(`${this.#source.owner}.update`, g.options, g.scheduled, step, g.label, atStep);
  }

  /**
   * `setHyperparameters`: new values (numbers, booleans, schedules) for the defaults'
   * options, in force from the next step, for every group that does not set them itself.
   * Everything is checked (schedules evaluated at `step`) before anything changes.
   */
  set(owner: string, values: unknown, step: number, optimizerOptions: readonly string[]): void {
    if (values === null || typeof values !== 'object' || Array.isArray(values)) {
      throw new TypeError(`${owner}: expected an object of options, e.g. { momentum: 0.95 }, got ${describeValue(values)}`);
    }
    const given = values as Options;
    for (const key of Object.keys(given)) {
      if (key === 'overrides' || key === 'params') {
        throw new RangeError(`${owner}: '${key}' cannot be changed here: setHyperparameters sets the defaults' options (an override keeps what it sets itself)`);
      }
      if (optimizerOptions.includes(key)) throw new RangeError(`${owner}: '${key}' cannot be changed after construction: it applies to the whole optimizer, not to a step`);
      if (given[key] === undefined) throw new RangeError(`${owner}: ${key} is undefined (expected a value or a schedule)`);
    }
    const commit = this.#plan(owner, given, step, atCall);
    commit();
    for (const key of Object.keys(given)) {
      const value = given[key];
      if (typeof value === 'function') delete this.#setAtRunTime[key];
      else this.#setAtRunTime[key] = value;
    }
  }

  /** The values set at run time that a state dict holds (undefined when none was). */
  saved(): { [option: string]: number | boolean } | undefined {
    const keys = Object.keys(this.#setAtRunTime);
    if (keys.length === 0) return undefined;
    const saved = Object.create(null) as { [option: string]: number | boolean };
    for (const key of keys) saved[key] = this.#setAtRunTime[key] as number | boolean;
    return saved;
  }

  /**
   * Checks saved run-time values against this optimizer at the saved step; returns what
   * applies them (called once everything else of the load is checked). Throws a
   * StateError naming the option and value.
   */
  planLoad(owner: string, saved: unknown, step: number): () => void {
    if (saved === undefined) return () => {};
    if (saved === null || typeof saved !== 'object' || Array.isArray(saved)) throw new StateError(`${owner}: hyperparameters is ${describeValue(saved)}, expected an object { option: value }`);
    const given = saved as Options;
    for (const key of Object.keys(given)) {
      const value = given[key];
      if (typeof value !== 'boolean' && !(typeof value === 'number' && Number.isFinite(value))) {
        throw new StateError(`${owner}: hyperparameters.${key} is ${describeValue(value)}, expected a finite number or a boolean`);
      }
    }
    const commit = this.#plan(owner, given, step, (message) => new StateError(`the saved hyperparameters do not fit this optimizer: ${message}`));
    return () => {
      commit();
      for (const key of Object.keys(given)) this.#setAtRunTime[key] = given[key];
    };
  }

  /** Every group re-resolved with `given` over the defaults, checked; returns what writes them. */
  #plan(owner: string, given: Options, step: number, refuse: Refusal): () => void {
    for (const key of Object.keys(given)) {
      const reason = fixedReason(this.#source.fixed, key);
      if (reason !== undefined) throw refuse(`${owner}: '${key}' cannot be changed after construction: ${reason}`);
    }
    const defaults = { ...this.#defaults, ...given };
    const next = this.#groups.map((group) => {
      const options = { ...defaults, ...group.own };
      let scheduled: string[];
      let hyper: H;
      try {
        scheduled = this.#scheduledKeys(owner, options, group.label, refuse);
        hyper = this.#resolveAt(owner, options, scheduled, step, group.label, refuse);
      } catch (error) {
        // The rule's own message names the option and the value.
        if (error instanceof RangeError && !(refuse === atCall)) throw refuse(error.message);
        throw error;
      }
      return { options, scheduled, hyper };
    });
    return () => {
      this.#defaults = defaults;
      this.#anyScheduled = false;
      next.forEach(({ options, scheduled, hyper }, i) => {
        const group = this.#groups[i]!;
        group.options = options;
        group.scheduled = scheduled;
        Object.assign(group.hyper, hyper);
        group.at = step;
        if (scheduled.length > 0) this.#anyScheduled = true;
      });
    };
  }

  /** The keys of `options` that hold a schedule (lr aside), each one an option that may take one. */
  #scheduledKeys(owner: string, options: Options, label: string, refuse: Refusal): string[] {
    const fixed = this.#source.fixed;
    const keys: string[] = [];
    for (const key of Object.keys(options)) {
      if (key === 'lr' || typeof options[key] !== 'function') continue;
      const reason = fixedReason(fixed, key);
      if (reason !== undefined) throw refuse(`${owner}: ${key}${label} cannot be a schedule: ${reason}`);
      keys.push(key);
    }
    if (keys.length === 0) return keys;
    // Only a numeric option takes a schedule: the rule's default for it says which are.
    const plain: Options = {};
    for (const key of Object.keys(options)) if (!keys.includes(key)) plain[key] = options[key];
    const base = this.#source.resolve(plain) as Options;
    for (const key of keys) {
      if (typeof base[key] !== 'number') throw refuse(`${owner}: ${key}${label} cannot be a schedule: only numeric options take one (${key} takes ${describeValue(base[key])} and the like)`);
    }
    return keys;
  }

  /** The options with every schedule evaluated at `step`, resolved by the rule; refused values name the step. */
  #resolveAt(owner: string, options: Options, scheduled: readonly string[], step: number, label: string, refuse: Refusal): H {
    if (scheduled.length === 0) return this.#source.resolve(options);
    const evaluated: Options = { ...options };
    for (const key of scheduled) {
      const value: unknown = (options[key] as Schedule)(step);
      if (typeof value !== 'number') throw refuse(`${owner}: the ${key} schedule${label} returned ${describeValue(value)} at step ${step} (expected a number)`);
      evaluated[key] = value;
    }
    try {
      return this.#source.resolve(evaluated);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      const what = scheduled.length === 1
        ? `the ${scheduled[0]} schedule${label} returned ${describeValue(evaluated[scheduled[0]!])} at step ${step}`
        : `at step ${step} the schedules${label} returned ${scheduled.map((key) => `${key} ${describeValue(evaluated[key])}`).join(', ')}`;
      throw refuse(`${owner}: ${what}, which the rule refuses (${error.message})`);
    }
  }
}

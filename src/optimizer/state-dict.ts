/**
 * An optimizer's state dict: its slots as the saved form (`OptimizerStateDict`, see
 * state.ts) and back, with every check of a loaded one made before anything is replaced.
 */
import { StateError, describeValue } from '../errors.ts';
import type { CommonHyper, RuleState, UpdateRule } from '../rule.ts';
import { STATE_FORMAT, STATE_VERSION, checkStateDict, type OptimizerStateDict, type ParamStateRecord } from '../state.ts';
import type { FloatArray } from '../types.ts';
import { firstNonFinite } from './finite.ts';
import type { Slot } from './plan.ts';

/**
 * Every value of a loaded state is finite and within the rule's bounds: a NaN, an
 * Infinity or a negative second moment would reach the params at the next step.
 */
function checkValues(
  owner: string,
  name: string,
  rule: { readonly stateBounds?: { readonly [name: string]: { readonly min: number } } },
  bufferNames: readonly string[],
  arrays: readonly FloatArray[],
  scalars: { readonly [key: string]: number },
): void {
  const bounds = rule.stateBounds ?? {};
  bufferNames.forEach((key, b) => {
    const array = arrays[b]!;
    const at = firstNonFinite(array);
    if (at >= 0) throw new StateError(`${owner}: parameter '${name}': state buffer '${key}' is not finite at index ${at} (${array[at]})`);
    if (!Object.hasOwn(bounds, key)) return;
    const min = bounds[key]!.min;
    for (let i = 0; i < array.length; i++) {
      if (array[i]! < min) throw new StateError(`${owner}: parameter '${name}': state buffer '${key}' holds ${array[i]} at index ${i}, below its least value ${min}`);
    }
  });
  for (const key of Object.keys(scalars)) {
    const value = scalars[key]!;
    const min = Object.hasOwn(bounds, key) ? bounds[key]!.min : -Infinity;
    if (!Number.isFinite(value) || value < min) {
      throw new StateError(`${owner}: parameter '${name}': state scalar '${key}' is ${value}, expected a finite number${min === -Infinity ? '' : ` >= ${min}`}`);
    }
  }
}

/** The saved form's variant: the rule's `variant` option where it has one ('nag', 'book', ...), else null. */
export function variantOf(hyper: object): string | null {
  const variant = (hyper as { variant?: unknown }).variant;
  return typeof variant === 'string' ? variant : null;
}

export interface Counters {
  readonly stepCount: number;
  readonly skippedSteps: number;
}

/** A copy of the whole state: step counts, and per parameter its step, scalars and buffers. */
export function stateDictOf<H extends CommonHyper, S extends RuleState>(
  rule: UpdateRule<never, H, S>,
  variant: string | null,
  slots: ReadonlyMap<string, Slot<H, S>>,
  counters: Counters,
  hyperparameters?: { readonly [option: string]: number | boolean },
): OptimizerStateDict {
  // Records keyed by names have no prototype (as the decoders in state.ts make them):
  // a parameter may be named '__proto__', and a decoded dict deep-equals this one.
  const params = Object.create(null) as { [name: string]: ParamStateRecord };
  for (const [name, slot] of slots) {
    const state = slot.state;
    if (state === undefined) continue;
    const names = rule.bufferNames(slot.hyper);
    const arrays = rule.buffersOf(state, slot.hyper);
    const buffers = Object.create(null) as { [key: string]: FloatArray };
    names.forEach((key, i) => {
      buffers[key] = arrays[i]!.slice();
    });
    const scalars = Object.create(null) as { [key: string]: number };
    for (const key of rule.scalarNames) scalars[key] = (state as unknown as Record<string, number>)[key]!;
    params[name] = { dtype: slot.dtype, length: slot.length, step: state.step, scalars, buffers };
  }
  const dict: OptimizerStateDict = {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    optimizer: rule.name,
    variant,
    stepCount: counters.stepCount,
    skippedSteps: counters.skippedSteps,
    params,
  };
  // Only when some value was set at run time: a dict without it is the format of 0.1.0.
  if (hyperparameters !== undefined) dict.hyperparameters = { ...hyperparameters };
  return dict;
}

/**
 * The slots of a saved state, checked against this optimizer's rule, variant and
 * configuration (buffers and scalars per parameter, their values where the rule says
 * what they may hold); throws a StateError naming what is wrong, having changed nothing.
 */
export function slotsOfStateDict<H extends CommonHyper, S extends RuleState>(
  rule: UpdateRule<never, H, S>,
  variant: string | null,
  hyperFor: (name: string) => H,
  value: unknown,
): { readonly slots: Map<string, Slot<H, S>>; readonly counters: Counters } {
  const saved = checkStateDict(value);
  const owner = `${rule.name}.loadStateDict`;
  if (saved.optimizer !== rule.name) {
    throw new StateError(`${owner}: the state was saved by ${saved.optimizer}, not ${rule.name}`);
  }
  if (saved.variant !== variant) {
    throw new StateError(`${owner}: the state was saved with variant ${describeValue(saved.variant)}, this optimizer uses ${describeValue(variant)}`);
  }
  const slots = new Map<string, Slot<H, S>>();
  for (const [name, record] of Object.entries(saved.params)) {
    const hyper = hyperFor(name);
    const expected = rule.bufferNames(hyper);
    const got = Object.keys(record.buffers);
    if (got.length !== expected.length || expected.some((key) => !(key in record.buffers))) {
      throw new StateError(`${owner}: parameter '${name}' has buffers [${got.join(', ')}], this configuration keeps [${expected.join(', ')}]`);
    }
    const gotScalars = Object.keys(record.scalars);
    const scalarNames = rule.scalarNames;
    if (gotScalars.length !== scalarNames.length || scalarNames.some((key) => !(key in record.scalars))) {
      throw new StateError(`${owner}: parameter '${name}' has scalars [${gotScalars.join(', ')}], expected [${scalarNames.join(', ')}]`);
    }
    // A parameter's steps are the optimizer's steps it took part in: never more.
    if (record.step > saved.stepCount) {
      throw new StateError(`${owner}: parameter '${name}' has step ${record.step}, more than the optimizer's stepCount ${saved.stepCount}`);
    }
    const state = rule.init(record.length, record.dtype, hyper, undefined, rule.shapeOfRecord?.(record, hyper));
    const arrays = rule.buffersOf(state, hyper);
    expected.forEach((key, i) => {
      // A buffer is as long as the parameter, or (a shaped state's) as its shape says.
      const buffer = record.buffers[key]!;
      if (buffer.length !== arrays[i]!.length) {
        throw new StateError(`${owner}: parameter '${name}': state buffer '${key}' has length ${buffer.length}, this configuration keeps ${arrays[i]!.length}`);
      }
      arrays[i]!.set(buffer);
    });
    state.step = record.step;
    for (const key of scalarNames) (state as unknown as Record<string, number>)[key] = record.scalars[key]!;
    checkValues(owner, name, rule, expected, arrays, record.scalars);
    slots.set(name, { name, hyper, state, dtype: record.dtype, length: record.length, lr: 0 });
  }
  return { slots, counters: { stepCount: saved.stepCount, skippedSteps: saved.skippedSteps } };
}

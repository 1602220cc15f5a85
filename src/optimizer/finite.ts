/**
 * Finiteness: the scan that refuses a non-finite gradient before anything is written,
 * and, after a step whose kernel reported a NaN or an Infinity it wrote, the search for
 * where it is and the error that says the step was applied.
 */
import type { NonFinitePolicy } from '../contract.ts';
import { UpdateError } from '../errors.ts';
import { byArrayType, loopFor } from '../kernel.ts';
import type { FloatArray } from '../types.ts';

/** The index of the first NaN or infinity, or -1 (a loop per array type: see kernel.ts). */
function firstNonFiniteLoop(array: FloatArray, from: number, to: number): number {
  // x * 0 is 0 for every finite x and NaN otherwise: one branch-free pass (twice as
  // fast as testing each element), and a second pass only to find the index. Four
  // accumulators, so that no add waits for the previous one (one chain of adds runs at
  // the add's latency, four at its throughput).
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const end = to - ((to - from) & 3);
  let i = from;
  for (; i < end; i += 4) {
    a += array[i]! * 0;
    b += array[i + 1]! * 0;
    c += array[i + 2]! * 0;
    d += array[i + 3]! * 0;
  }
  for (; i < to; i++) a += array[i]! * 0;
  if (a + b + c + d === 0) return -1;
  for (let j = from; j < to; j++) {
    const x = array[j]!;
    if (x - x !== 0) return j; // NaN for NaN and +-Infinity, 0 otherwise
  }
  return -1;
}
const FIRST_NON_FINITE_LOOPS = byArrayType(firstNonFiniteLoop);

/** The index of the first NaN or +-Infinity in `array[from, to)` (all of it by default), or -1. */
export function firstNonFinite(array: FloatArray, from = 0, to = array.length): number {
  return loopFor(FIRST_NON_FINITE_LOOPS, array)(array, from, to);
}

/**
 * Where a step's own arithmetic left a non-finite value (found by the second pass that
 * runs only when a kernel reports one): the first element index at which the param or
 * one of its state buffers is NaN or +-Infinity; the param wins a tie, then the buffers
 * in `bufferNames` order. Undefined when none is (a false alarm of the kernel's probe).
 */
export interface Overflow {
  readonly index: number;
  /** null for the param itself, else the state buffer's name. */
  readonly buffer: string | null;
  readonly value: number;
  readonly gradient: number;
}

export function locateOverflow(param: FloatArray, grad: FloatArray, buffers: readonly FloatArray[], names: readonly string[]): Overflow | undefined {
  let index = firstNonFinite(param);
  let buffer: string | null = null;
  let value = index < 0 ? 0 : param[index]!;
  buffers.forEach((array, k) => {
    const at = firstNonFinite(array);
    if (at >= 0 && (index < 0 || at < index)) {
      index = at;
      buffer = names[k]!;
      value = array[at]!;
    }
  });
  return index < 0 ? undefined : { index, buffer, value, gradient: grad[index]! };
}

/** The error of a step that was applied but wrote a NaN or an Infinity (nonFinite 'error' and 'skip'). */
export function overflowError(owner: string, name: string, overflow: Overflow, index: number, policy: NonFinitePolicy): UpdateError {
  const what = overflow.buffer === null ? `parameter '${name}'` : `the optimizer state '${overflow.buffer}' of parameter '${name}'`;
  const skip = policy === 'skip' ? " (nonFinite: 'skip' skips a step whose gradients are not finite; these were, and the step cannot be undone)" : '';
  return new UpdateError(
    `${owner}: the step overflowed: ${what} became ${overflow.value} at index ${index}, from a finite gradient (${overflow.gradient}). ` +
      `This step WAS applied, to every parameter: the params and optimizer state now hold this value${skip}. ` +
      'Use a smaller lr or clip the gradients, and restore the params and state saved before this step',
    name,
    index,
  );
}

/** The error of a refused step: a gradient that is not finite (nothing was written). */
export function nonFiniteGradientError(owner: string, name: string, index: number, value: number): UpdateError {
  return new UpdateError(`${owner}: gradient '${name}' is not finite at index ${index} (${value})`, name, index);
}

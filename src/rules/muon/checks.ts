/**
 * The checks of a Muon call that need none of the optimizer's fields: one parameter's
 * arrays, its shape, its state against it, its gradient's finiteness, and the entries of
 * the aliasing check. Each error names the parameter (see ../muon.ts, which calls them).
 */
import { UpdateError, describeValue } from '../../errors.ts';
import { dtypeOf, forEachArray, getArray, isFloatArray, type FloatArray, type ParamSet } from '../../types.ts';
import type { AliasEntry } from '../../optimizer/checks.ts';
import type { MuonState } from './options.ts';

/** Every param and grad of a plain set, named, for the aliasing check. */
export function aliasEntriesOf(params: ParamSet, grads: ParamSet): AliasEntry[] {
  const entries: AliasEntry[] = [];
  forEachArray(params, (param, name) => {
    entries.push({ array: param as FloatArray, what: `parameter '${name}'`, name });
    entries.push({ array: getArray(grads, name) as FloatArray, what: `gradient '${name}'`, name });
  });
  return entries;
}

/** The parameter, once it and its gradient are float arrays of one type and length that do not overlap. */
export function checkedParam(owner: string, name: string, param: unknown, grad: unknown): FloatArray {
  if (!isFloatArray(param)) throw new UpdateError(`${owner}: parameter '${name}' must be a Float32Array or Float64Array, got ${describeValue(param)}`, name);
  if (grad === undefined) throw new UpdateError(`${owner}: no gradient for parameter '${name}'`, name);
  if (!isFloatArray(grad) || grad.constructor !== param.constructor || grad.length !== param.length) {
    throw new UpdateError(`${owner}: gradient '${name}' must be a ${param.constructor.name} of length ${param.length}, got ${describeValue(grad)}`, name);
  }
  if (grad.buffer === param.buffer && grad.byteOffset < param.byteOffset + param.byteLength && param.byteOffset < grad.byteOffset + grad.byteLength) {
    throw new UpdateError(`${owner}: gradient '${name}' shares memory with its parameter`, name);
  }
  return param;
}

/**
 * [rows, cols] of a parameter of `length` elements: `given` (options.shapes), else its
 * ParamStore's shape from `shapeSource`; else an error naming it.
 */
export function shapeOf(
  owner: string,
  name: string,
  length: number,
  given: readonly [number, number] | undefined,
  shapeSource: { readonly [name: string]: readonly number[] } | undefined,
): readonly number[] {
  const fromStore = given === undefined ? shapeSource?.[name] : undefined;
  if (given === undefined && fromStore === undefined) {
    throw new UpdateError(
      `${owner}: parameter '${name}' has no shape: Muon updates 2-D parameters only (give it in options.shapes as [rows, cols], use a ParamStore, or send '${name}' to another optimizer with partition())`,
      name,
    );
  }
  if (fromStore !== undefined && fromStore.length !== 2) {
    throw new UpdateError(
      `${owner}: parameter '${name}' has shape [${fromStore.join(', ')}]: Muon updates 2-D parameters only (send '${name}' to another optimizer with partition())`,
      name,
    );
  }
  const shape: readonly number[] = given ?? fromStore!;
  if (shape[0]! * shape[1]! !== length || shape[0] === 0 || shape[1] === 0) {
    throw new UpdateError(`${owner}: parameter '${name}' has ${length} elements, not the ${shape[0]} x ${shape[1]} of its shape`, name);
  }
  return shape;
}

/** A state (if any) must have been made for a parameter of this length and dtype. */
export function checkStateFits(owner: string, name: string, param: FloatArray, state: MuonState | undefined): void {
  if (state !== undefined && (state.momentumBuffer.length !== param.length || dtypeOf(state.momentumBuffer) !== dtypeOf(param))) {
    throw new UpdateError(
      `${owner}: parameter '${name}' has ${param.length} ${dtypeOf(param)} elements but its optimizer state was made for ${state.momentumBuffer.length} ${dtypeOf(state.momentumBuffer)} (call reset('${name}') to start it afresh)`,
      name,
    );
  }
}

/** The index of the first NaN or Infinity in `grad`, or -1. */
export function firstNonFinite(grad: FloatArray): number {
  for (let i = 0; i < grad.length; i++) {
    const v = grad[i]!;
    if (v - v !== 0) return i;
  }
  return -1;
}

/**
 * Muon's per-parameter slots and their saved form: the state dict every optimizer here
 * saves (`momentumBuffer` per parameter, no scalars, variant null), and its checks.
 */
import { StateError, describeValue } from '../../errors.ts';
import { STATE_FORMAT, STATE_VERSION, type OptimizerStateDict, type ParamStateRecord } from '../../state.ts';
import type { Dtype, FloatArray } from '../../types.ts';
import type { Workspace } from './newton-schulz.ts';
import type { MuonState } from './options.ts';

/** A parameter's shape (rows 0 before it is known), its state and the workspace it steps on. */
export interface Slot {
  readonly rows: number;
  readonly cols: number;
  state: MuonState | undefined;
  dtype: Dtype;
  workspace: Workspace | undefined;
}

/** A copy of the slots' states, with the counts and the run-time hyperparameters (if any), as a state dict. */
export function muonStateDict(
  slots: ReadonlyMap<string, Slot>,
  stepCount: number,
  skippedSteps: number,
  hyperparameters: { [option: string]: number | boolean } | undefined,
): OptimizerStateDict {
  const params = Object.create(null) as { [name: string]: ParamStateRecord };
  for (const [name, slot] of slots) {
    const state = slot.state;
    if (state === undefined) continue;
    const buffers = Object.create(null) as { [key: string]: FloatArray };
    buffers.momentumBuffer = state.momentumBuffer.slice();
    params[name] = { dtype: slot.dtype, length: state.momentumBuffer.length, step: state.step, scalars: Object.create(null) as { [key: string]: number }, buffers };
  }
  const dict: OptimizerStateDict = { format: STATE_FORMAT, version: STATE_VERSION, optimizer: 'Muon', variant: null, stepCount, skippedSteps, params };
  if (hyperparameters !== undefined) dict.hyperparameters = hyperparameters;
  return dict;
}

/** The slots of a saved state (checked by checkStateDict), each checked as Muon's; a StateError names what does not fit. */
export function muonSlotsOfSaved(owner: string, saved: OptimizerStateDict): Map<string, Slot> {
  if (saved.optimizer !== 'Muon') throw new StateError(`${owner}: the state was saved by ${saved.optimizer}, not Muon`);
  if (saved.variant !== null) throw new StateError(`${owner}: the state was saved with variant ${describeValue(saved.variant)}, Muon has none (null)`);
  const slots = new Map<string, Slot>();
  for (const [name, record] of Object.entries(saved.params)) {
    const got = Object.keys(record.buffers);
    if (got.length !== 1 || got[0] !== 'momentumBuffer') {
      throw new StateError(`${owner}: parameter '${name}' has buffers [${got.join(', ')}], Muon keeps [momentumBuffer]`);
    }
    if (Object.keys(record.scalars).length !== 0) {
      throw new StateError(`${owner}: parameter '${name}' has scalars [${Object.keys(record.scalars).join(', ')}], Muon keeps none`);
    }
    if (record.step > saved.stepCount) {
      throw new StateError(`${owner}: parameter '${name}' has step ${record.step}, more than the optimizer's stepCount ${saved.stepCount}`);
    }
    const momentumBuffer = record.dtype === 'float32' ? new Float32Array(record.length) : new Float64Array(record.length);
    momentumBuffer.set(record.buffers.momentumBuffer!);
    const bad = momentumBuffer.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new StateError(`${owner}: parameter '${name}': state buffer 'momentumBuffer' is not finite at index ${bad} (${momentumBuffer[bad]})`);
    // The shape is checked against the parameter at the next update (rows 0: not yet known).
    slots.set(name, { rows: 0, cols: 0, state: { step: record.step, momentumBuffer }, dtype: record.dtype, workspace: undefined });
  }
  return slots;
}

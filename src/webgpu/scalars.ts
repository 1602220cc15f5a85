/**
 * A step's scalars, computed by the rule itself: the GPU path runs the rule's
 * `stepWasm` over zero-length arrays against a stand-in for the wasm kernels, which
 * records the entry the rule calls and the byte offsets it passes. The rule's own
 * `writeScalars` thereby counts the step, advances its scalar state (NAdam's product of
 * momenta, Schedule-Free's weight sum) and fills the scalar block in float64, exactly as
 * before a wasm call: no rule's scalar arithmetic is copied here. The offsets say which
 * of the rule's arrays (params, grads, which state buffer, or none) each argument of the
 * kernel is, since every zero-length array of the stand-in sits at its own offset.
 *
 * The state that steps here is the parameter's "twin": its step and scalars with
 * zero-length buffers; its buffers live on the GPU.
 */
import type { Allocator, CommonHyper, RuleState } from '../rule.ts';
import type { AnyUpdateRule } from '../rules/index.ts';
import type { WasmKernels } from '../wasm/kernels.ts';
import type { ArrayRole, ScalarValues } from './kernel.ts';

/** Where the stand-in's arrays sit: params, grads, then state buffer k at STATE + 4k. */
const PARAMS = 4;
const GRADS = 8;
const STATE = 12;
const MAX_BUFFERS = 64;
const tags = new ArrayBuffer(STATE + 4 * MAX_BUFFERS);
const paramsTag = new Float32Array(tags, PARAMS, 0);
const gradsTag = new Float32Array(tags, GRADS, 0);

/** Allocates the twin's k-th buffer as a zero-length array at its own offset. */
function taggingAllocator(): Allocator {
  let k = 0;
  return () => new Float32Array(tags, STATE + 4 * Math.min(k++, MAX_BUFFERS - 1), 0);
}

/** A new twin: the state of a parameter with zero-length buffers, tagged by offset. */
export function newTwin(rule: AnyUpdateRule, hyper: CommonHyper): RuleState {
  return rule.init(0, 'float32', hyper as never, taggingAllocator());
}

/** One wasm call a step made: its entry, and per array of the kernel what it is bound to. */
export interface CapturedCall {
  readonly entry: string;
  readonly roles: readonly ArrayRole[];
}

/** The scalars and calls of one captured step. */
export interface CapturedStep {
  readonly scalars: Float64Array;
  readonly calls: readonly CapturedCall[];
}

const block = new Float64Array(64);
let recorded: { entry: string; args: number[] }[] = [];
const recorder = new Proxy({}, {
  get(_target, key) {
    return (...args: number[]) => {
      recorded.push({ entry: String(key), args });
      return 0;
    };
  },
});
const standIn = { exports: recorder, scalars: block, address: 0 } as unknown as WasmKernels;

/**
 * Takes one step of `twin` (counts it, advances its scalars) and returns the scalar
 * block the rule wrote and the wasm calls it made, each array argument resolved to
 * its role. `arrayCount(entry)` is the number of arrays that entry takes.
 */
export function captureStep(
  rule: AnyUpdateRule,
  twin: RuleState,
  hyper: CommonHyper,
  lr: number,
  arrayCount: (entry: string) => number,
): CapturedStep {
  return captureCalls(rule, twin, hyper, arrayCount, (kernels, params, grads) => {
    rule.stepWasm!(kernels, params, grads, twin as never, hyper as never, { lr });
  });
}

/**
 * What `run` makes the rule do against the stand-in for the wasm kernels, given the
 * stand-in and the twin's zero-length params and grads (captureStep runs the rule's
 * `stepWasm`; a global rule's passes run its `global.accumulate` and `global.apply`):
 * the scalar block it wrote last and its calls, each array argument resolved to its role.
 */
export function captureCalls(
  rule: AnyUpdateRule,
  twin: RuleState,
  hyper: CommonHyper,
  arrayCount: (entry: string) => number,
  run: (kernels: WasmKernels, params: Float32Array, grads: Float32Array) => void,
): CapturedStep {
  const names = rule.bufferNames(hyper as never);
  const byOffset = new Map<number, ArrayRole>();
  byOffset.set(PARAMS, 'params');
  byOffset.set(GRADS, 'grads');
  rule.buffersOf(twin as never, hyper as never).forEach((array, k) => {
    if (array.byteOffset >= STATE && array.buffer === tags) byOffset.set(array.byteOffset, { state: names[k]! });
  });
  recorded = [];
  block.fill(0);
  run(standIn, paramsTag, gradsTag);
  const calls = recorded.map(({ entry, args }) => ({
    entry,
    roles: args.slice(0, arrayCount(entry)).map((offset): ArrayRole => byOffset.get(offset) ?? 'unused'),
  }));
  recorded = [];
  return { scalars: block.slice(), calls };
}

/** The scalar block as a record by the layout's names. */
export function scalarRecord(block: Float64Array, names: readonly string[]): ScalarValues {
  const record: { [name: string]: number } = {};
  names.forEach((name, k) => {
    record[name] = block[k]!;
  });
  return record;
}

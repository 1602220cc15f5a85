/**
 * The state fuzz of state-fuzz.test.ts extended to the generic wrapper node
 * (WRAPPER_STATE_FORMAT: EMA, SWA, GradientAccumulation), as bounded property-based tests
 * (fast-check, a fixed seed):
 *
 * - any tree of wrapper nodes, Lookaheads and partitions over single optimizers' states,
 *   with any names, round-trips through both encodings exactly;
 * - a flipped, swapped, inserted or deleted byte, or a truncation, of either encoding is
 *   refused with a StateError, or decodes to the identical state;
 * - a re-sealed JSON text with any JSON value put anywhere is refused with a StateError
 *   or is a state checkSavedState accepts;
 * - a corrupted or re-sealed edited file of a trained EMA, SWA or GradientAccumulation
 *   (nested or not) loaded into one is refused with a StateError and nothing changes, or
 *   loads exactly what the file says.
 */
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  Adam,
  AdamW,
  EMA,
  GradientAccumulation,
  LOOKAHEAD_FORMAT,
  Lookahead,
  Muon,
  PARTITION_FORMAT,
  STATE_FORMAT,
  STATE_VERSION,
  SWA,
  StateError,
  WRAPPER_STATE_FORMAT,
  WRAPPER_STATE_VERSION,
  checkSavedState,
  decodeState,
  encodeState,
  partition,
  stateFromJSON,
  stateToJSON,
  type OptimizerLike,
  type OptimizerStateDict,
  type ParamStateRecord,
  type SavedState,
} from 'nesterov';
import assert from 'node:assert/strict';
import { gradsAt, isMatrix, makeParams, MATRICES, resealText, type Params } from './state-helpers.ts';

const SEED = 20261206;

const nameArb = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'w', 'layer/0', 'buffers', 'inner', 'ü"\\'), fc.string({ maxLength: 6 }));

function nullPrototype<T>(entries: [string, T][]): { [key: string]: T } {
  const record = Object.create(null) as { [key: string]: T };
  for (const [key, value] of entries) record[key] = value;
  return record;
}

const arrayArb = fc
  .tuple(fc.constantFrom('float32' as const, 'float64' as const), fc.array(fc.double(), { maxLength: 4 }))
  .map(([dtype, values]) => (dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values)));

const leafArb: fc.Arbitrary<OptimizerStateDict> = fc
  .record({
    names: fc.uniqueArray(nameArb, { maxLength: 2 }),
    dtype: fc.constantFrom('float32' as const, 'float64' as const),
    values: fc.array(fc.double(), { minLength: 2, maxLength: 2 }),
    stepCount: fc.nat(),
  })
  .map(({ names, dtype, values, stepCount }) => {
    const params = nullPrototype<ParamStateRecord>(
      names.map((name) => [name, { dtype, length: 2, step: stepCount, scalars: {}, buffers: nullPrototype([['expAvg', dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values)]]) }]),
    );
    return { format: STATE_FORMAT, version: STATE_VERSION, optimizer: 'Adam', variant: null, stepCount, skippedSteps: 0, params };
  });

const finiteArb = fc.double({ noNaN: true, noDefaultInfinity: true });

function treeArb(depth: number): fc.Arbitrary<SavedState> {
  if (depth === 0) return leafArb;
  const child = treeArb(depth - 1);
  const wrapperArb = fc
    .record({
      wrapper: fc.constantFrom('EMA', 'SWA', 'GradientAccumulation', 'Future'),
      options: fc.dictionary(fc.constantFrom('decay', 'start', 'steps', '__proto__'), finiteArb, { maxKeys: 3 }),
      counters: fc.dictionary(fc.constantFrom('steps', 'swapped', 'pending', 'constructor'), fc.nat(), { maxKeys: 3 }),
      buffers: fc.dictionary(nameArb, arrayArb, { maxKeys: 2 }),
      counts: fc.dictionary(nameArb, fc.nat(), { maxKeys: 2 }),
      inner: child,
    })
    .map(
      ({ wrapper, options, counters, buffers, counts, inner }): SavedState => ({
        format: WRAPPER_STATE_FORMAT,
        version: WRAPPER_STATE_VERSION,
        wrapper,
        options: nullPrototype(Object.entries(options)),
        counters: nullPrototype(Object.entries(counters)),
        buffers: nullPrototype(Object.entries(buffers)),
        counts: nullPrototype(Object.entries(counts)),
        inner,
      }),
    );
  const partitionArb = fc
    .uniqueArray(fc.tuple(nameArb, child), { minLength: 1, maxLength: 2, selector: ([key]) => key })
    .map((members): SavedState => ({ format: PARTITION_FORMAT, members: nullPrototype(members) as { [key: string]: OptimizerStateDict } }));
  const lookaheadArb = child.map((inner): SavedState => ({ format: LOOKAHEAD_FORMAT, version: 1, optimizer: 'Lookahead', k: 2, alpha: 0.5, stepsSinceSync: 1, slow: nullPrototype([]), inner }));
  return fc.oneof({ arbitrary: wrapperArb, weight: 3 }, { arbitrary: partitionArb, weight: 1 }, { arbitrary: lookaheadArb, weight: 1 });
}

const stateArb = treeArb(3);

type Mutation = { kind: 'flip'; at: number; bit: number } | { kind: 'swap'; at: number; with: number } | { kind: 'truncate'; at: number } | { kind: 'insert'; at: number; byte: number } | { kind: 'delete'; at: number };

const fraction = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const mutationArb: fc.Arbitrary<(length: number) => Mutation> = fc.oneof(
  fc.tuple(fraction, fc.integer({ min: 0, max: 7 })).map(([f, bit]) => (n: number): Mutation => ({ kind: 'flip', at: Math.floor(f * n), bit })),
  fc.tuple(fraction, fraction).map(([f, g]) => (n: number): Mutation => ({ kind: 'swap', at: Math.floor(f * n), with: Math.floor(g * n) })),
  fraction.map((f) => (n: number): Mutation => ({ kind: 'truncate', at: Math.floor(f * n) })),
  fc.tuple(fraction, fc.integer({ min: 0, max: 255 })).map(([f, byte]) => (n: number): Mutation => ({ kind: 'insert', at: Math.floor(f * (n + 1)), byte })),
  fraction.map((f) => (n: number): Mutation => ({ kind: 'delete', at: Math.floor(f * n) })),
);

function mutate(bytes: Uint8Array, mutation: Mutation): Uint8Array {
  const out = bytes.slice();
  switch (mutation.kind) {
    case 'flip':
      out[mutation.at]! ^= 1 << mutation.bit;
      return out;
    case 'swap':
      out[mutation.at] = bytes[mutation.with]!;
      out[mutation.with] = bytes[mutation.at]!;
      return out;
    case 'truncate':
      return bytes.slice(0, mutation.at);
    case 'insert':
      return new Uint8Array([...bytes.subarray(0, mutation.at), mutation.byte, ...bytes.subarray(mutation.at)]);
    case 'delete':
      return new Uint8Array([...bytes.subarray(0, mutation.at), ...bytes.subarray(mutation.at + 1)]);
  }
}

function refusedOrSame<T>(decode: () => T, same: (decoded: T) => boolean): boolean {
  let decoded: T;
  try {
    decoded = decode();
  } catch (error) {
    if (error instanceof StateError) return true;
    throw new Error(`not a StateError: ${(error as Error).name}: ${(error as Error).message}`);
  }
  return same(decoded);
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;
const sameSaved = (a: SavedState, b: SavedState): boolean => stateToJSON(a) === stateToJSON(b);

/** Puts `value` at the place `path` (indices into the keys at each level) leads to; undefined for the checksum. */
function putAt(record: unknown, path: readonly number[], value: unknown): unknown {
  let node = record as Record<string, unknown>;
  for (let depth = 0; depth < path.length; depth++) {
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = keys[path[depth]! % keys.length]!;
    const next = node[key];
    if (depth === path.length - 1 || typeof next !== 'object' || next === null) {
      if (key === 'checksum') return undefined;
      Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
      break;
    }
    node = next as Record<string, unknown>;
  }
  return record;
}

describe('property-based: the generic wrapper node in both encodings', () => {
  it('any tree with wrapper nodes round-trips through JSON and safetensors exactly', () => {
    fc.assert(
      fc.property(stateArb, (state) => {
        checkSavedState(state);
        assert.deepStrictEqual(structuredClone(stateFromJSON<SavedState>(stateToJSON(state))), structuredClone(state));
        assert.deepStrictEqual(structuredClone(decodeState<SavedState>(encodeState(state))), structuredClone(state));
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('a mutated file or text is refused with a StateError, never decoded to other values', () => {
    fc.assert(
      fc.property(stateArb, mutationArb, fc.boolean(), (state, makeMutation, asJson) => {
        if (asJson) {
          const text = stateToJSON(state);
          const bytes = new TextEncoder().encode(text);
          const mutated = new TextDecoder().decode(mutate(bytes, makeMutation(bytes.length)));
          if (mutated === text) return true;
          return refusedOrSame(() => stateFromJSON<SavedState>(mutated), (decoded) => stateToJSON(decoded) === text);
        }
        const file = encodeState(state);
        const mutated = mutate(file, makeMutation(file.length));
        if (sameBytes(mutated, file)) return true;
        return refusedOrSame(() => decodeState<SavedState>(mutated), (decoded) => sameBytes(encodeState(decoded), file));
      }),
      { seed: SEED, numRuns: 600 },
    );
  });

  it('a re-sealed JSON text with any JSON value put anywhere is refused with a StateError or is a valid state', () => {
    fc.assert(
      fc.property(stateArb, fc.array(fc.nat(), { minLength: 1, maxLength: 9 }), fc.jsonValue({ maxDepth: 2 }), (state, path, value) => {
        const record = putAt(JSON.parse(stateToJSON(state)), path, value);
        if (record === undefined) return true;
        const text = resealText(JSON.stringify(record));
        return refusedOrSame(() => stateFromJSON<SavedState>(text), (decoded) => checkSavedState(decoded) === decoded);
      }),
      { seed: SEED, numRuns: 600 },
    );
  });
});

const CONFIGS: Record<string, () => OptimizerLike> = {
  'EMA of Adam (warm-up)': () => new EMA(new Adam({ lr: 0.02 }), { decay: 0.95, warmup: { gamma: 2, power: 0.75 } }),
  'SWA of AdamW (start 2, every 2)': () => new SWA(new AdamW({ lr: 0.01 }), { start: 2, every: 2 }),
  'GradientAccumulation of Adam (steps 3)': () => new GradientAccumulation(new Adam({ lr: 0.01 }), { steps: 3 }),
  'EMA around GradientAccumulation, in a partition with Muon': () =>
    partition((name) => (isMatrix(name) ? 'muon' : 'ema'), { muon: new Muon({ shapes: MATRICES }), ema: new EMA(new GradientAccumulation(new AdamW({ lr: 0.01 }), { steps: 2 })) }),
  'Lookahead around SWA': () => new Lookahead(new SWA(new Adam({ lr: 0.01 })), { k: 3 }),
};

function steps(opt: OptimizerLike, params: Params, from: number, to: number): void {
  for (let t = from; t <= to; t++) opt.update(params, gradsAt(params, t));
}

describe('property-based: corrupted files of real EMA, SWA and GradientAccumulation', () => {
  // 5 steps: a window half full, SWA between averages.
  const trained = Object.entries(CONFIGS).map(([label, make]) => {
    const opt = make();
    steps(opt, makeParams(), 1, 5);
    const state = checkSavedState(opt.stateDict());
    return { label, make, file: encodeState(state), text: stateToJSON(state) };
  });
  const configArb = fc.nat({ max: trained.length - 1 }).map((i) => trained[i]!);

  /** Loads `decode()` into a trained copy: refused with a StateError and nothing changed, or loaded exactly as decoded. */
  function loadsOrKeeps(make: () => OptimizerLike, decode: () => SavedState, expected?: SavedState): boolean {
    const opt = make();
    steps(opt, makeParams(), 1, 4); // a state of its own, other than the file's
    const before = checkSavedState(opt.stateDict());
    let decoded: SavedState;
    try {
      decoded = decode();
      opt.loadStateDict(decoded);
    } catch (error) {
      if (!(error instanceof StateError)) throw new Error(`not a StateError: ${(error as Error).name}: ${(error as Error).message}`);
      if (!sameSaved(checkSavedState(opt.stateDict()), before)) throw new Error(`refused, but the state changed (${error.message})`);
      return true;
    }
    const after = checkSavedState(opt.stateDict());
    if (!sameSaved(after, decoded)) throw new Error('accepted, but the loaded state is not the one the file holds');
    return expected === undefined || sameSaved(after, expected);
  }

  it('a flipped, swapped, inserted, deleted or truncated byte: refused with a StateError and nothing changed', () => {
    fc.assert(
      fc.property(configArb, mutationArb, fc.boolean(), ({ make, file, text }, makeMutation, asJson) => {
        if (asJson) {
          const bytes = new TextEncoder().encode(text);
          const mutated = new TextDecoder().decode(mutate(bytes, makeMutation(bytes.length)));
          return mutated === text || loadsOrKeeps(make, () => stateFromJSON<SavedState>(mutated), stateFromJSON<SavedState>(text));
        }
        const mutated = mutate(file, makeMutation(file.length));
        return sameBytes(mutated, file) || loadsOrKeeps(make, () => decodeState<SavedState>(mutated), decodeState<SavedState>(file));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('a re-sealed edit (any JSON value anywhere): refused with a StateError and nothing changed, or loaded exactly as the file says', () => {
    fc.assert(
      fc.property(configArb, fc.array(fc.nat(), { minLength: 1, maxLength: 10 }), fc.jsonValue({ maxDepth: 1 }), ({ make, text }, path, value) => {
        const record = putAt(JSON.parse(text), path, value);
        if (record === undefined) return true;
        const edited = resealText(JSON.stringify(record));
        return loadsOrKeeps(make, () => stateFromJSON<SavedState>(edited));
      }),
      { seed: SEED, numRuns: 600 },
    );
  });
});

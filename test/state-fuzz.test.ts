/**
 * The fuzzing that found issue 10 items 4, 5 and 8, kept as bounded property-based tests
 * (fast-check, a fixed seed, a few seconds in all):
 *
 * - any state with any names (including '__proto__') round-trips through both
 *   encodings exactly;
 * - a flipped bit, two swapped bytes or characters, an inserted or deleted byte, or a
 *   truncation of either encoding is refused with a StateError (or, impossibly with
 *   the checksum, decodes to the identical state): never another error, never other
 *   values;
 * - a safetensors file whose header, length, padding or tail was changed and then
 *   re-sealed with a correct checksum is refused with a StateError, or is exactly the
 *   encoding of what it decodes to (a shift of the data by a space of padding is an
 *   edit of the data that only the checksum can see; the layout is the one encodeState
 *   writes, so nothing is read from where it does not belong);
 * - a re-sealed JSON text with any JSON value put anywhere in its record is refused with
 *   a StateError or decodes to a state that checkStateDict accepts: never another error.
 *
 * The same for wrappers' states (a partition's, a Lookahead's, nested as trees of random
 * shape), and for the files of real wrappers loaded into them: a corrupted file of a
 * trained partition or Lookahead (nested or not) is refused with a StateError and the
 * optimizer and all its members keep their state, or it loads exactly what it says.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  checkSavedState,
  checkStateDict,
  decodeState,
  encodeState,
  LOOKAHEAD_FORMAT,
  PARTITION_FORMAT,
  STATE_FORMAT,
  STATE_VERSION,
  stateFromJSON,
  stateToJSON,
  StateError,
  type OptimizerStateDict,
  type ParamStateRecord,
  type SavedState,
} from 'nesterov';
import { assertSameState, CONFIGS, joinSafetensors, makeParams, N, resealText, run, splitSafetensors } from './state-helpers.ts';

const SEED = 20261126;

const nameArb = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'w', 'layer/0', 'ü"\\'), fc.string({ maxLength: 6 }));

const paramArb = fc
  .record({
    dtype: fc.constantFrom('float32' as const, 'float64' as const),
    length: fc.integer({ min: 0, max: 4 }),
    step: fc.nat(),
    bufferNames: fc.uniqueArray(fc.constantFrom('expAvg', 'expAvgSq', 'velocity', '__proto__', 'constructor'), { minLength: 1, maxLength: 2 }),
    scalars: fc.dictionary(fc.constantFrom('muProduct', 'constructor', '__proto__'), fc.double(), { maxKeys: 2 }),
    values: fc.array(fc.double(), { minLength: 8, maxLength: 8 }),
  })
  .map(({ dtype, length, step, bufferNames, scalars, values }): ParamStateRecord => {
    const Type = dtype === 'float32' ? Float32Array : Float64Array;
    const buffers: { [name: string]: Float32Array | Float64Array } = Object.create(null) as { [name: string]: Float32Array | Float64Array };
    bufferNames.forEach((key, k) => {
      buffers[key] = Type.from(values.slice(k * 4, k * 4 + length));
    });
    return { dtype, length, step, scalars, buffers };
  });

const stateArb = fc
  .record({
    names: fc.uniqueArray(nameArb, { minLength: 1, maxLength: 3 }),
    params: fc.array(paramArb, { minLength: 3, maxLength: 3 }),
    stepCount: fc.nat(),
    skippedSteps: fc.nat(),
    variant: fc.constantFrom(null, 'nag', 'pytorch'),
  })
  .map(({ names, params, stepCount, skippedSteps, variant }): OptimizerStateDict => {
    const record: { [name: string]: ParamStateRecord } = Object.create(null) as { [name: string]: ParamStateRecord };
    names.forEach((name, i) => {
      record[name] = params[i]!;
    });
    return { format: STATE_FORMAT, version: STATE_VERSION, optimizer: 'Adam', variant, stepCount, skippedSteps, params: record };
  });

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'swap'; at: number; with: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; byte: number }
  | { kind: 'delete'; at: number }
  | { kind: 'flips'; at: number[]; bit: number };

const fraction = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const mutationArb: fc.Arbitrary<(length: number) => Mutation> = fc.oneof(
  fc.tuple(fraction, fc.integer({ min: 0, max: 7 })).map(([f, bit]) => (n: number): Mutation => ({ kind: 'flip', at: Math.floor(f * n), bit })),
  fc.tuple(fraction, fraction).map(([f, g]) => (n: number): Mutation => ({ kind: 'swap', at: Math.floor(f * n), with: Math.floor(g * n) })),
  fraction.map((f) => (n: number): Mutation => ({ kind: 'truncate', at: Math.floor(f * n) })),
  fc.tuple(fraction, fc.integer({ min: 0, max: 255 })).map(([f, byte]) => (n: number): Mutation => ({ kind: 'insert', at: Math.floor(f * (n + 1)), byte })),
  fraction.map((f) => (n: number): Mutation => ({ kind: 'delete', at: Math.floor(f * n) })),
  fc.tuple(fc.array(fraction, { minLength: 2, maxLength: 5 }), fc.integer({ min: 0, max: 7 })).map(([fs, bit]) => (n: number): Mutation => ({ kind: 'flips', at: fs.map((f) => Math.floor(f * n)), bit })),
);

function mutate(bytes: Uint8Array, mutation: Mutation): Uint8Array {
  const out = bytes.slice();
  switch (mutation.kind) {
    case 'flip':
      out[mutation.at]! ^= 1 << mutation.bit;
      return out;
    case 'flips':
      for (const at of mutation.at) out[at]! ^= 1 << mutation.bit;
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

/** Runs `decode`: a StateError is a refusal; a result must pass `same`; anything else fails the property. */
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

describe('property-based: state encodings', () => {
  it('any state, any names, round-trips through JSON and safetensors exactly', () => {
    fc.assert(
      fc.property(stateArb, (state) => {
        checkStateDict(state);
        const fromJson = stateFromJSON(stateToJSON(state));
        const fromFile = decodeState(encodeState(state));
        assertSameState(fromJson, state);
        assertSameState(fromFile, state);
        assert.deepEqual(Object.keys(fromJson.params), Object.keys(state.params));
        assert.deepEqual(Object.keys(fromFile.params), Object.keys(state.params));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('a mutated safetensors file is refused with a StateError, never decoded to other values', () => {
    fc.assert(
      fc.property(stateArb, mutationArb, (state, makeMutation) => {
        const file = encodeState(state);
        const mutation = makeMutation(file.length);
        const mutated = mutate(file, mutation);
        if (sameBytes(mutated, file)) return true; // e.g. two equal bytes swapped
        return refusedOrSame(
          () => decodeState(mutated),
          (decoded) => sameBytes(encodeState(decoded), file),
        );
      }),
      { seed: SEED, numRuns: 1500 },
    );
  });

  it('a mutated JSON text is refused with a StateError, never decoded to other values', () => {
    fc.assert(
      fc.property(stateArb, mutationArb, fc.boolean(), (state, makeMutation, asCharacters) => {
        const text = stateToJSON(state);
        let mutated: string;
        if (asCharacters) {
          // on the characters (swapped base64 characters and the like)
          const chars = [...text];
          const codes = new Uint8Array(chars.length); // positions only
          const mutation = makeMutation(codes.length);
          if (mutation.kind !== 'swap') return true;
          [chars[mutation.at], chars[mutation.with]] = [chars[mutation.with]!, chars[mutation.at]!];
          mutated = chars.join('');
        } else {
          const bytes = new TextEncoder().encode(text);
          mutated = new TextDecoder().decode(mutate(bytes, makeMutation(bytes.length)));
        }
        if (mutated === text) return true;
        return refusedOrSame(
          () => stateFromJSON(mutated),
          (decoded) => stateToJSON(decoded) === text,
        );
      }),
      { seed: SEED, numRuns: 1500 },
    );
  });

  it('a re-sealed safetensors file with a changed layout is refused, or is the encoding of what it decodes to', () => {
    const layoutChange = fc.record({
      tensor: fc.nat(),
      offsets: fc.option(fc.tuple(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 80 }))),
      shape: fc.option(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 2 })),
      lengthDelta: fc.integer({ min: -3, max: 3 }),
      padding: fc.option(fc.integer({ min: 0, max: 9 })),
      paddingChar: fc.constantFrom(' ', ' ', ' ', '\n', '\t', '\0'),
      tail: fc.integer({ min: -4, max: 9 }),
    });
    fc.assert(
      fc.property(stateArb, layoutChange, (state, change) => {
        const { header, data } = splitSafetensors(encodeState(state));
        const names = Object.keys(header).filter((key) => key !== '__metadata__');
        const name = names[change.tensor % names.length]!;
        const tensor = { ...(header[name] as Record<string, unknown>) };
        if (change.offsets !== null) tensor.data_offsets = change.offsets;
        if (change.shape !== null) tensor.shape = change.shape;
        const changed = { ...header, [name]: tensor };
        const tail = change.tail >= 0 ? new Uint8Array([...data, ...new Uint8Array(change.tail).fill(0x41)]) : data.subarray(0, Math.max(0, data.length + change.tail));
        const options: { padding?: number; lengthDelta: number; paddingChar: string } = { lengthDelta: change.lengthDelta, paddingChar: change.paddingChar };
        if (change.padding !== null) options.padding = change.padding;
        const file = joinSafetensors(changed, tail, options);
        return refusedOrSame(
          () => decodeState(file),
          (decoded) => sameBytes(encodeState(decoded), file),
        );
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('a re-sealed JSON text with any JSON value put anywhere is refused with a StateError or is a valid state', () => {
    fc.assert(
      fc.property(stateArb, fc.array(fc.nat(), { minLength: 1, maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), (state, path, value) => {
        const record = JSON.parse(stateToJSON(state)) as unknown;
        // walk `path` (indices into the keys at each level), and put `value` there
        let node = record as Record<string, unknown>;
        for (let depth = 0; depth < path.length; depth++) {
          const keys = Object.keys(node);
          if (keys.length === 0) break;
          const key = keys[path[depth]! % keys.length]!;
          const next = node[key];
          if (depth === path.length - 1 || typeof next !== 'object' || next === null) {
            if (key === 'checksum') return true; // the checksum's position is tested elsewhere
            Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
            break;
          }
          node = next as Record<string, unknown>;
        }
        const text = resealText(JSON.stringify(record));
        return refusedOrSame(
          () => stateFromJSON(text),
          (decoded) => checkStateDict(decoded) === decoded,
        );
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });
});

// ---------------------------------------------------------------------------------
// Wrappers' states: trees of partitions and Lookaheads over single optimizers' states.

const slowArb = fc.dictionary(
  nameArb,
  fc.tuple(fc.constantFrom('float32' as const, 'float64' as const), fc.array(fc.double(), { maxLength: 4 })).map(([dtype, values]) => (dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values))),
  { maxKeys: 2 },
);

function nullPrototype<T>(entries: [string, T][]): { [key: string]: T } {
  const record = Object.create(null) as { [key: string]: T };
  for (const [key, value] of entries) record[key] = value;
  return record;
}

/** A tree of wrapper states, up to `depth` wrappers deep, with single optimizers' states at the leaves. */
function treeArb(depth: number): fc.Arbitrary<SavedState> {
  if (depth === 0) return stateArb;
  const child = treeArb(depth - 1);
  const partitionArb = fc
    .uniqueArray(fc.tuple(nameArb, child), { minLength: 1, maxLength: 2, selector: ([key]) => key })
    .map((members): SavedState => ({ format: PARTITION_FORMAT, members: nullPrototype(members) as { [key: string]: OptimizerStateDict } }));
  const lookaheadArb = fc
    .record({ k: fc.integer({ min: 1, max: 6 }), alpha: fc.constantFrom(1, 0.5, 0.1, 2 ** -30, 0.3), count: fc.nat(), slow: slowArb, inner: child })
    .map(
      ({ k, alpha, count, slow, inner }): SavedState => ({
        format: LOOKAHEAD_FORMAT,
        version: 1,
        optimizer: 'Lookahead',
        k,
        alpha,
        stepsSinceSync: count % k,
        slow: nullPrototype(Object.entries(slow)),
        inner,
      }),
    );
  return fc.oneof(partitionArb, lookaheadArb);
}

const wrapperArb = treeArb(3);

/** Two saved states are the same: through JSON text, which is exact. */
const sameSaved = (a: SavedState, b: SavedState): boolean => stateToJSON(a) === stateToJSON(b);

describe('property-based: wrappers\' state encodings', () => {
  it('any tree of partition and Lookahead states round-trips through JSON and safetensors exactly', () => {
    fc.assert(
      fc.property(wrapperArb, (state) => {
        checkSavedState(state);
        assert.deepStrictEqual(structuredClone(stateFromJSON<SavedState>(stateToJSON(state))), structuredClone(state));
        assert.deepStrictEqual(structuredClone(decodeState<SavedState>(encodeState(state))), structuredClone(state));
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('a mutated safetensors file or JSON text of a wrapper is refused with a StateError, never decoded to other values', () => {
    fc.assert(
      fc.property(wrapperArb, mutationArb, fc.boolean(), (state, makeMutation, asJson) => {
        if (asJson) {
          const text = stateToJSON(state);
          const bytes = new TextEncoder().encode(text);
          const mutated = new TextDecoder().decode(mutate(bytes, makeMutation(bytes.length)));
          if (mutated === text) return true;
          return refusedOrSame(
            () => stateFromJSON<SavedState>(mutated),
            (decoded) => stateToJSON(decoded) === text,
          );
        }
        const file = encodeState(state);
        const mutated = mutate(file, makeMutation(file.length));
        if (sameBytes(mutated, file)) return true;
        return refusedOrSame(
          () => decodeState<SavedState>(mutated),
          (decoded) => sameBytes(encodeState(decoded), file),
        );
      }),
      { seed: SEED, numRuns: 800 },
    );
  });

  it('a re-sealed JSON text of a wrapper with any JSON value put anywhere is refused with a StateError or is a valid state', () => {
    fc.assert(
      fc.property(wrapperArb, fc.array(fc.nat(), { minLength: 1, maxLength: 9 }), fc.jsonValue({ maxDepth: 2 }), (state, path, value) => {
        const record = putAt(JSON.parse(stateToJSON(state)), path, value);
        if (record === undefined) return true;
        const text = resealText(JSON.stringify(record));
        return refusedOrSame(
          () => stateFromJSON<SavedState>(text),
          (decoded) => checkSavedState(decoded) === decoded,
        );
      }),
      { seed: SEED, numRuns: 800 },
    );
  });
});

/** Puts `value` at the place `path` (indices into the keys at each level) leads to; undefined for the checksum. */
function putAt(record: unknown, path: readonly number[], value: unknown): unknown {
  let node = record as Record<string, unknown>;
  for (let depth = 0; depth < path.length; depth++) {
    const keys = Object.keys(node);
    if (keys.length === 0) break;
    const key = keys[path[depth]! % keys.length]!;
    const next = node[key];
    if (depth === path.length - 1 || typeof next !== 'object' || next === null) {
      if (key === 'checksum') return undefined; // the checksum's position is tested elsewhere
      Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
      break;
    }
    node = next as Record<string, unknown>;
  }
  return record;
}

describe('property-based: corrupted files of real wrappers', () => {
  // Trained once: each a partition or a Lookahead (nested or not) after N steps.
  const trained = Object.entries(CONFIGS).map(([label, make]) => {
    const opt = make();
    run(opt, makeParams(), 1, N);
    const state = checkSavedState(opt.stateDict());
    return { label, make, file: encodeState(state), text: stateToJSON(state) };
  });
  const configArb = fc.nat({ max: trained.length - 1 }).map((i) => trained[i]!);

  /** Loads `decode()` into a trained copy: refused with a StateError and nothing changed, or loaded exactly as decoded. */
  function loadsOrKeeps(make: () => ReturnType<(typeof CONFIGS)[string]>, decode: () => SavedState, expected?: SavedState): boolean {
    const opt = make();
    run(opt, makeParams(), 1, 2); // a state of its own, other than the file's
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

  it('a flipped, swapped, inserted, deleted or truncated byte: refused with a StateError, the optimizer and its members unchanged', () => {
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
      { seed: SEED, numRuns: 400 },
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

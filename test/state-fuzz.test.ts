/**
 * The state files under fuzzing, kept as bounded property-based tests (fast-check, a
 * fixed seed, a few seconds in all), one suite for every kind of state the library
 * saves: a single optimizer's, and the trees of wrappers (partition, Lookahead, and the
 * generic wrapper node of EMA, SWA and GradientAccumulation) over them.
 *
 * - any state with any names (including '__proto__') round-trips through both
 *   encodings exactly;
 * - a flipped bit (or several), two swapped bytes or characters, an inserted or deleted
 *   byte, or a truncation of either encoding is refused with a StateError (or, impossibly
 *   with the checksum, decodes to the identical state): never another error, never other
 *   values;
 * - a safetensors file whose header, length, padding or tail was changed and then
 *   re-sealed with a correct checksum is refused with a StateError, or is exactly the
 *   encoding of what it decodes to (a shift of the data by a space of padding is an
 *   edit of the data that only the checksum can see; the layout is the one encodeState
 *   writes, so nothing is read from where it does not belong);
 * - a re-sealed JSON text with any JSON value put anywhere in its record is refused with
 *   a StateError or decodes to a state that checkSavedState accepts: never another error.
 *
 * And every one of these mutations of the file of a real, trained optimizer of every
 * class (each rule and variant of the registry, a partition, a Lookahead, an EMA, an SWA,
 * a GradientAccumulation, nested) loaded into one: refused with a StateError and the
 * optimizer and all its members and inner optimizers keep their state, or it loads
 * exactly what the file says.
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
  WRAPPER_STATE_FORMAT,
  WRAPPER_STATE_VERSION,
  type OptimizerLike,
  type OptimizerStateDict,
  type ParamStateRecord,
  type SavedState,
} from 'nesterov';
import { REGISTRY } from './registry.ts';
import {
  assertSameState,
  AVERAGING_CONFIGS,
  changeLayout,
  CONFIGS,
  layoutChangeArb,
  loadsOrKeeps,
  makeParams,
  mutate,
  mutateText,
  mutationArb,
  N,
  nullPrototype,
  putAt,
  refusedOrSame,
  resealText,
  sameBytes,
  steps,
} from './state-helpers.ts';

const SEED = 20261126;

const nameArb = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'w', 'layer/0', 'buffers', 'inner', 'ü"\\'), fc.string({ maxLength: 6 }));

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

// ---------------------------------------------------------------------------------
// Wrappers' states: trees of partitions, Lookaheads and wrapper nodes (EMA, SWA,
// GradientAccumulation, and a name this library does not know) over single optimizers' states.

const arrayArb = fc
  .tuple(fc.constantFrom('float32' as const, 'float64' as const), fc.array(fc.double(), { maxLength: 4 }))
  .map(([dtype, values]) => (dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values)));

const finiteArb = fc.double({ noNaN: true, noDefaultInfinity: true });

/** A tree of wrapper states, up to `depth` wrappers deep, with single optimizers' states at the leaves. */
function treeArb(depth: number): fc.Arbitrary<SavedState> {
  if (depth === 0) return stateArb;
  const child = treeArb(depth - 1);
  const partitionArb = fc
    .uniqueArray(fc.tuple(nameArb, child), { minLength: 1, maxLength: 2, selector: ([key]) => key })
    .map((members): SavedState => ({ format: PARTITION_FORMAT, members: nullPrototype(members) as { [key: string]: OptimizerStateDict } }));
  const lookaheadArb = fc
    .record({ k: fc.integer({ min: 1, max: 6 }), alpha: fc.constantFrom(1, 0.5, 0.1, 2 ** -30, 0.3), count: fc.nat(), slow: fc.dictionary(nameArb, arrayArb, { maxKeys: 2 }), inner: child })
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
  return fc.oneof(partitionArb, lookaheadArb, wrapperArb);
}

/** Every kind of saved state: a single optimizer's, or a tree of wrappers up to 3 deep. */
const anyStateArb: fc.Arbitrary<SavedState> = fc.oneof(stateArb, treeArb(3));

describe('property-based: state encodings, of a single optimizer and of every wrapper', () => {
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

  it('any tree of partition, Lookahead and wrapper-node states round-trips through JSON and safetensors exactly', () => {
    fc.assert(
      fc.property(treeArb(3), (state) => {
        checkSavedState(state);
        assert.deepStrictEqual(structuredClone(stateFromJSON<SavedState>(stateToJSON(state))), structuredClone(state));
        assert.deepStrictEqual(structuredClone(decodeState<SavedState>(encodeState(state))), structuredClone(state));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('a mutated safetensors file is refused with a StateError, never decoded to other values', () => {
    fc.assert(
      fc.property(anyStateArb, mutationArb, (state, makeMutation) => {
        const file = encodeState(state);
        const mutated = mutate(file, makeMutation(file.length));
        if (sameBytes(mutated, file)) return true; // e.g. two equal bytes swapped
        return refusedOrSame(
          () => decodeState<SavedState>(mutated),
          (decoded) => sameBytes(encodeState(decoded), file),
        );
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('a mutated JSON text (its bytes, or two of its characters swapped) is refused with a StateError, never decoded to other values', () => {
    fc.assert(
      fc.property(anyStateArb, mutationArb, fc.boolean(), (state, makeMutation, asCharacters) => {
        const text = stateToJSON(state);
        let mutated: string;
        if (asCharacters) {
          // on the characters (swapped base64 characters and the like)
          const chars = [...text];
          const mutation = makeMutation(chars.length);
          if (mutation.kind !== 'swap') return true;
          [chars[mutation.at], chars[mutation.with]] = [chars[mutation.with]!, chars[mutation.at]!];
          mutated = chars.join('');
        } else {
          mutated = mutateText(text, makeMutation);
        }
        if (mutated === text) return true;
        return refusedOrSame(
          () => stateFromJSON<SavedState>(mutated),
          (decoded) => stateToJSON(decoded) === text,
        );
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('a re-sealed safetensors file with a changed layout is refused, or is the encoding of what it decodes to', () => {
    fc.assert(
      fc.property(anyStateArb, layoutChangeArb, (state, change) => {
        const file = changeLayout(encodeState(state), change);
        return refusedOrSame(
          () => decodeState<SavedState>(file),
          (decoded) => sameBytes(encodeState(decoded), file),
        );
      }),
      { seed: SEED, numRuns: 1200 },
    );
  });

  it('a re-sealed JSON text with any JSON value put anywhere is refused with a StateError or is a valid state', () => {
    fc.assert(
      fc.property(anyStateArb, fc.array(fc.nat(), { minLength: 1, maxLength: 9 }), fc.jsonValue({ maxDepth: 2 }), (state, path, value) => {
        const record = putAt(JSON.parse(stateToJSON(state)), path, value);
        if (record === undefined) return true;
        const text = resealText(JSON.stringify(record));
        return refusedOrSame(
          () => stateFromJSON<SavedState>(text),
          (decoded) => checkSavedState(decoded) === decoded,
        );
      }),
      { seed: SEED, numRuns: 1500 },
    );
  });
});

/**
 * Every class whose state a user saves, trained: each rule and variant of the registry,
 * and the wrappers (partition, Lookahead, EMA, SWA, GradientAccumulation; nested).
 */
const TRAINED_CONFIGS: Record<string, () => OptimizerLike> = {
  ...Object.fromEntries(REGISTRY.map((entry) => [entry.id, () => entry.make(0.01) as OptimizerLike])),
  ...CONFIGS,
  ...AVERAGING_CONFIGS,
};

describe('property-based: corrupted files of real, trained optimizers of every class', () => {
  // Trained once, N steps: a Lookahead between syncs, a window half full, SWA between averages.
  const trained = Object.entries(TRAINED_CONFIGS).map(([label, make]) => {
    const opt = make();
    steps(opt, makeParams(), 1, N);
    const state = checkSavedState(opt.stateDict());
    return { label, make, file: encodeState(state), text: stateToJSON(state) };
  });
  const configArb = fc.nat({ max: trained.length - 1 }).map((i) => trained[i]!);

  it('every class is trained to a state of its own', () => {
    for (const { label, make, text } of trained) {
      const fresh = make();
      assert.notEqual(stateToJSON(checkSavedState(fresh.stateDict())), text, label);
    }
  });

  it('a flipped, swapped, inserted, deleted or truncated byte, of the file or of the text: refused with a StateError and nothing changed, or the same state', () => {
    fc.assert(
      fc.property(configArb, mutationArb, fc.boolean(), ({ make, file, text }, makeMutation, asJson) => {
        if (asJson) {
          const mutated = mutateText(text, makeMutation);
          return mutated === text || loadsOrKeeps(make, () => stateFromJSON<SavedState>(mutated), stateFromJSON<SavedState>(text));
        }
        const mutated = mutate(file, makeMutation(file.length));
        return sameBytes(mutated, file) || loadsOrKeeps(make, () => decodeState<SavedState>(mutated), decodeState<SavedState>(file));
      }),
      { seed: SEED, numRuns: 800 },
    );
  });

  it('a re-sealed file with a changed layout: refused with a StateError and nothing changed, or loaded exactly as it decodes', () => {
    fc.assert(
      fc.property(configArb, layoutChangeArb, ({ make, file }, change) => {
        const changed = changeLayout(file, change);
        return loadsOrKeeps(make, () => decodeState<SavedState>(changed));
      }),
      { seed: SEED, numRuns: 500 },
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
      { seed: SEED, numRuns: 1200 },
    );
  });
});

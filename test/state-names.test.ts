/**
 * Issue 10 item 5 (the state.ts side): parameter, buffer and scalar names are arbitrary
 * strings. '__proto__', 'constructor', 'toString', 'hasOwnProperty' round-trip through
 * checkStateDict, stateToJSON / stateFromJSON and encodeState / decodeState, as any
 * other name. The dicts are built by hand (computed keys make own properties even for
 * '__proto__'), so this tests the encodings, not the optimizer.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkStateDict, decodeState, encodeState, STATE_FORMAT, STATE_VERSION, stateFromJSON, stateToJSON, StateError, type OptimizerStateDict, type ParamStateRecord } from 'nesterov';
import { assertSameState } from './state-helpers.ts';

const NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'w'];

function record(seed: number, bufferName = 'velocity', scalarName = 'muProduct'): ParamStateRecord {
  return {
    dtype: 'float64',
    length: 2,
    step: seed,
    scalars: { [scalarName]: seed / 4 },
    buffers: { [bufferName]: new Float64Array([seed, -seed]) },
  };
}

function stateWith(names: string[], make: (name: string, i: number) => ParamStateRecord = (_name, i) => record(i + 1)): OptimizerStateDict {
  const params: { [name: string]: ParamStateRecord } = {};
  names.forEach((name, i) => Object.defineProperty(params, name, { value: make(name, i), enumerable: true, writable: true, configurable: true }));
  return { format: STATE_FORMAT, version: STATE_VERSION, optimizer: 'Nesterov', variant: 'nag', stepCount: 3, skippedSteps: 0, params };
}

const ENCODINGS: [string, (state: OptimizerStateDict) => OptimizerStateDict][] = [
  ['JSON', (state) => stateFromJSON(stateToJSON(state))],
  ['safetensors', (state) => decodeState(encodeState(state))],
];

describe('any string is a parameter name', () => {
  const state = stateWith(NAMES);

  it('the hand-built dict has every name as an own key, in order', () => {
    assert.deepEqual(Object.keys(state.params), NAMES);
    assert.equal(checkStateDict(state), state);
  });

  for (const [how, roundTrip] of ENCODINGS) {
    it(`'__proto__', 'constructor', 'toString', 'hasOwnProperty' round-trip through ${how}`, () => {
      const back = roundTrip(state);
      assert.deepEqual(Object.keys(back.params), NAMES);
      NAMES.forEach((name, i) => {
        assert.ok(Object.hasOwn(back.params, name), name);
        const param = back.params[name]!;
        assert.equal(param.step, i + 1, name);
        assert.deepEqual(Object.keys(param.buffers), ['velocity'], name);
        assert.deepEqual(Array.from(param.buffers.velocity!), [i + 1, -(i + 1)], name);
        assert.equal(param.scalars.muProduct, (i + 1) / 4, name);
      });
      // nothing leaked into prototypes
      assert.equal(Object.getPrototypeOf(back.params.__proto__), Object.getPrototypeOf(back.params.w));
      assert.equal(({} as Record<string, unknown>).dtype, undefined);
    });

    it(`buffer and scalar names '__proto__' and 'constructor' round-trip through ${how}`, () => {
      const odd = stateWith(['w'], () => record(5, '__proto__', 'constructor'));
      const back = roundTrip(odd);
      assert.deepEqual(Object.keys(back.params.w!.buffers), ['__proto__']);
      assert.deepEqual(Array.from(back.params.w!.buffers.__proto__ as Float64Array), [5, -5]);
      assert.deepEqual(Object.keys(back.params.w!.scalars), ['constructor']);
      assert.equal(back.params.w!.scalars.constructor, 1.25);
    });

    it(`names with quotes, slashes, backslashes and non-ASCII round-trip through ${how}`, () => {
      const names = ['a"b', 'a\\', 'layer/0/w', '', ' ', 'ü€😀', '\u0000'];
      const back = roundTrip(stateWith(names));
      assert.deepEqual(Object.keys(back.params), names);
      assertSameState(roundTrip(back), back);
    });
  }

  it('a structuredClone of the dict keeps a __proto__ parameter', () => {
    assertSameState(checkStateDict(structuredClone(state)), state);
    assert.deepEqual(Object.keys(structuredClone(state).params), NAMES);
  });

  it("checkStateDict names a bad '__proto__' parameter", () => {
    const bad = stateWith(['__proto__'], () => ({ ...record(1), step: -1 }));
    assert.throws(() => checkStateDict(bad), (error: Error) => error instanceof StateError && error.message === "invalid optimizer state: params['__proto__'].step is -1");
  });

  it('encodeState refuses two buffers that would share one tensor name', () => {
    const clash = stateWith(['a', 'a/b'], (name) => (name === 'a' ? record(1, 'b/c') : record(2, 'c')));
    assert.throws(
      () => encodeState(clash),
      (error: Error) =>
        error instanceof StateError &&
        error.message === "invalid optimizer state: params['a'].buffers.b/c and params['a/b'].buffers.c would both be stored as tensor 'a/b/c' (names <param>/<buffer> must differ)",
    );
  });
});

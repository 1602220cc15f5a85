/**
 * Save and resume: for every rule and variant, 100 steps straight equal 50 steps,
 * save, load into a fresh optimizer, 50 steps, bit for bit (params and state), through
 * every encoding. Plus the validation of what is loaded.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  Adam,
  AdamW,
  decodeState,
  encodeState,
  Nesterov,
  NAdam,
  stateFromJSON,
  stateToJSON,
  StateError,
  type FloatArray,
  type OptimizerStateDict,
} from 'nesterov';
import { loadState, loadStateSync, saveState, saveStateSync } from 'nesterov/node';
import { reference } from './fixtures.ts';
import { assertSameState } from './state-helpers.ts';
import { doubleWellGradient } from './helpers.ts';
import { REGISTRY, type AnyOptimizer } from './registry.ts';

const problem = reference.problem;

function freshParams(dtype: 'float32' | 'float64') {
  const Type = dtype === 'float32' ? Float32Array : Float64Array;
  const params = new Map<string, FloatArray>();
  const grads = new Map<string, FloatArray>();
  const constants = new Map<string, FloatArray>();
  for (const [name, size] of Object.entries(problem.sizes)) {
    params.set(name, Type.from(problem.x0[name]!));
    grads.set(name, new Type(size));
    constants.set(name, Type.from(problem.c[name]!));
  }
  return { params, grads, constants };
}

function train(optimizer: AnyOptimizer, set: ReturnType<typeof freshParams>, steps: number): void {
  for (let t = 0; t < steps; t++) {
    for (const [name, p] of set.params) doubleWellGradient(p, set.constants.get(name)!, problem.coupling, set.grads.get(name)!);
    optimizer.update(set.params, set.grads);
  }
}

const ROUND_TRIPS: Record<string, (state: OptimizerStateDict) => unknown> = {
  'stateDict object': (state) => state,
  structuredClone: (state) => structuredClone(state),
  JSON: (state) => stateFromJSON(stateToJSON(state)),
  safetensors: (state) => decodeState(encodeState(state)),
};

// A schedule, so that the restored step count matters.
const schedule = (t: number) => 0.004 / (1 + 0.02 * t);

describe('resume equals uninterrupted, bit for bit', () => {
  for (const entry of REGISTRY) {
    for (const dtype of ['float64', 'float32'] as const) {
      it(`${entry.id} (${dtype}) through every encoding`, () => {
        const straight = freshParams(dtype);
        const uninterrupted = entry.make(schedule);
        train(uninterrupted, straight, 100);

        for (const [how, roundTrip] of Object.entries(ROUND_TRIPS)) {
          const resumed = freshParams(dtype);
          const first = entry.make(schedule);
          train(first, resumed, 50);
          const second = entry.make(schedule);
          second.loadStateDict(roundTrip(first.stateDict()));
          train(second, resumed, 50);
          for (const [name, p] of straight.params) assert.deepEqual(resumed.params.get(name), p, `${how}: ${name}`);
          assert.deepEqual(second.stateDict(), uninterrupted.stateDict(), `${how}: state`);
        }
      });
    }
  }
});

describe('state files (nesterov/node)', () => {
  const folder = mkdtempSync(join(tmpdir(), 'nesterov-state-'));
  for (const file of ['opt.safetensors', 'opt.json']) {
    it(`saveState / loadState round-trip through ${file}`, async () => {
      const set = freshParams('float32');
      const opt = new NAdam({ lr: 0.01 });
      train(opt, set, 5);
      const path = join(folder, file);
      await saveState(opt, path);
      const loaded = new NAdam({ lr: 0.01 });
      await loadState(loaded, path);
      assert.deepEqual(loaded.stateDict(), opt.stateDict());
      saveStateSync(opt, path);
      const again = new NAdam({ lr: 0.01 });
      loadStateSync(again, path);
      assert.deepEqual(again.stateDict(), opt.stateDict());
    });
  }

  it('the safetensors file is readable as safetensors: header length, JSON header, F32 tensors at their offsets', async () => {
    const opt = new Adam();
    const params = { w: new Float32Array([1, 2, 3]) };
    opt.update(params, { w: new Float32Array([0.5, -1, 2]) });
    const path = join(folder, 'adam.safetensors');
    await saveState(opt, path);
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + headerLength) % 8, 0, 'data aligned to 8 bytes');
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
    const tensor = header['w/expAvg'];
    assert.deepEqual(tensor.dtype, 'F32');
    assert.deepEqual(tensor.shape, [3]);
    const [begin, end] = tensor.data_offsets;
    const data = bytes.subarray(8 + headerLength + begin, 8 + headerLength + end);
    const values = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    // m = 0.1 * g after one step
    assert.deepEqual(Array.from(values), [0.05, -0.1, 0.2].map(Math.fround));
  });

  it('a file that is not a state says which file and what is wrong, and the optimizer keeps its state', async () => {
    const path = join(folder, 'garbage.safetensors');
    writeFileSync(path, 'not a state file at all');
    const opt = new Nesterov();
    const params = { w: new Float64Array([1]) };
    opt.update(params, { w: new Float64Array([1]) });
    const before = opt.stateDict();
    await assert.rejects(loadState(opt, path), (error: Error) => error instanceof StateError && error.message.startsWith(path));
    assert.deepEqual(opt.stateDict(), before);
  });
});

describe('loadStateDict validates everything before changing anything', () => {
  function trained() {
    const opt = new Adam({ lr: 0.01 });
    const params = { w: new Float64Array([1, 2]), b: new Float64Array([3]) };
    opt.update(params, { w: new Float64Array([0.1, 0.2]), b: new Float64Array([0.3]) });
    return opt;
  }
  const good = trained().stateDict();
  const cases: [string, (s: OptimizerStateDict) => unknown, RegExp][] = [
    ['not an object', () => 42, /expected an object, got 42/],
    ['another format', (s) => ({ ...s, format: 'torch' }), /format is "torch"/],
    ['a future version', (s) => ({ ...s, version: 3 }), /^invalid optimizer state: version 3 is not supported \(this library reads version 2\)$/],
    ['version 1 (no checksum)', (s) => ({ ...s, version: 1 }), /^invalid optimizer state: version 1 is not supported \(this library reads version 2\)$/],
    ['another optimizer', (s) => ({ ...s, optimizer: 'Nesterov' }), /saved by Nesterov, not Adam/],
    ['another variant', (s) => ({ ...s, variant: 'book' }), /variant "book"/],
    ['a negative step count', (s) => ({ ...s, stepCount: -1 }), /stepCount is -1/],
    ['a fractional param step', (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w!, step: 1.5 } } }), /params\['w'\]\.step is 1\.5/],
    ['a bad dtype', (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w!, dtype: 'int8' } } }), /params\['w'\]\.dtype is "int8"/],
    [
      'a buffer of the wrong length',
      (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w!, buffers: { ...s.params.w!.buffers, expAvg: new Float64Array(3) } } } }),
      /params\['w'\]\.buffers\.expAvg has length 3, expected 2/,
    ],
    [
      'a buffer of the wrong type',
      (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w!, buffers: { ...s.params.w!.buffers, expAvg: new Float32Array(2) } } } }),
      /expected a Float64Array/,
    ],
    [
      'a missing buffer',
      (s) => ({ ...s, params: { ...s.params, w: { ...s.params.w!, buffers: { expAvg: s.params.w!.buffers.expAvg! } } } }),
      /parameter 'w' has buffers \[expAvg\], this configuration keeps \[expAvg, expAvgSq\]/,
    ],
  ];
  for (const [what, mutate, message] of cases) {
    it(`rejects ${what}`, () => {
      const opt = trained();
      const before = opt.stateDict();
      assert.throws(() => opt.loadStateDict(mutate(structuredClone(good))), (error: Error) => error instanceof StateError && message.test(error.message));
      assert.deepEqual(opt.stateDict(), before);
    });
  }

  it('rejects an amsgrad state in a plain Adam (buffers differ)', () => {
    const amsgrad = new Adam({ amsgrad: true });
    amsgrad.update({ w: new Float64Array([1]) }, { w: new Float64Array([1]) });
    assert.throws(() => new Adam().loadStateDict(amsgrad.stateDict()), /keeps \[expAvg, expAvgSq\]/);
  });

  it('rejects a state whose param then comes with another length, at update, naming it', () => {
    const opt = new AdamW();
    opt.loadStateDict({ ...good, optimizer: 'AdamW' });
    assert.throws(
      () => opt.update({ w: new Float64Array(5) }, { w: new Float64Array(5) }),
      /parameter 'w' has length 5 but its optimizer state was made for length 2/,
    );
  });

  it("JSON buffers are RFC 4648 base64 of their bytes, as Node's Buffer writes it, for every remainder mod 3", () => {
    for (let length = 0; length <= 7; length++) {
      const buffer = new Float32Array(length);
      const bytes = new Uint8Array(buffer.buffer);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 97 + 13) & 0xff;
      const state: OptimizerStateDict = {
        ...good,
        params: { w: { dtype: 'float32', length, step: 1, scalars: {}, buffers: { expAvg: buffer } } },
      };
      const parsed = JSON.parse(stateToJSON(state)) as { params: { w: { buffers: { expAvg: string } } } };
      assert.equal(parsed.params.w.buffers.expAvg, Buffer.from(bytes).toString('base64'), `length ${length}`);
      assert.deepEqual(stateFromJSON(stateToJSON(state)).params.w!.buffers.expAvg, buffer);
    }
  });

  it('JSON and safetensors keep a -0 scalar (JSON.stringify(-0) is "0")', () => {
    const opt = new NAdam();
    opt.update({ w: new Float64Array([1]) }, { w: new Float64Array([1]) });
    const state = opt.stateDict();
    state.params.w!.scalars.muProduct = -0;
    assert.ok(Object.is(stateFromJSON(stateToJSON(state)).params.w!.scalars.muProduct, -0));
    assert.ok(Object.is(decodeState(encodeState(state)).params.w!.scalars.muProduct, -0));
  });

  it('JSON keeps NaN and Infinity in state and scalars', () => {
    const opt = new NAdam({ nonFinite: 'ignore' });
    opt.update({ w: new Float64Array([1, 2]) }, { w: new Float64Array([NaN, Infinity]) });
    const back = stateFromJSON(stateToJSON(opt.stateDict()));
    assertSameState(back, opt.stateDict());
    assert.deepEqual(Array.from(back.params.w!.buffers.expAvg!), [NaN, Infinity].map((g) => 0.1 * g));
  });
});

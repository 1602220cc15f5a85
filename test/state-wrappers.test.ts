/**
 * A wrapper's saved state (partition, Lookahead, nested) is validated as a single
 * optimizer's is: a corrupt or mismatched file or dict is refused with a StateError
 * naming what is wrong (and where in the tree), and the optimizer and every one of its
 * members keep their state; nesting is bounded (MAX_STATE_DEPTH).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  Adam,
  AdamW,
  Lookahead,
  MAX_STATE_DEPTH,
  Muon,
  Nesterov,
  StateError,
  checkSavedState,
  decodeState,
  encodeState,
  partition,
  stateFromJSON,
  stateToJSON,
  type FloatArray,
  type OptimizerLike,
} from 'nesterov';
import { loadStateSync, saveStateSync } from 'nesterov/node';
import { CONFIGS, isMatrix, makeParams, MATRICES, N, resealText, run } from './state-helpers.ts';

const folder = mkdtempSync(join(tmpdir(), 'nesterov-state-wrappers-'));

/** `opt` refuses `load()` with a StateError matching `pattern`, and it and every member keep their state. */
function refusesAndKeeps(opt: OptimizerLike, load: () => void, pattern: RegExp): void {
  const before = stateToJSON(checkSavedState(opt.stateDict()));
  assert.throws(load, (error: unknown) => {
    assert.ok(error instanceof StateError, `a StateError, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
  assert.equal(stateToJSON(checkSavedState(opt.stateDict())), before, 'the state is unchanged');
}

function trained(label: string): OptimizerLike {
  const opt = CONFIGS[label]!();
  run(opt, makeParams(), 1, N);
  return opt;
}

describe('a corrupt or mismatched wrapper file is refused and changes nothing', () => {
  it('a flipped byte in a saved partition file: the checksum refuses it, by path', () => {
    const opt = trained('a partition of Muon and AdamW');
    const path = join(folder, 'flipped.safetensors');
    saveStateSync(opt, path);
    const bytes = readFileSync(path);
    bytes[bytes.length - 3]! ^= 0x10;
    writeFileSync(path, bytes);
    const target = trained('a partition of Muon and AdamW');
    run(target, makeParams(), N + 1, N + 2);
    refusesAndKeeps(target, () => loadStateSync(target, path), /flipped\.safetensors: invalid optimizer state: checksum mismatch/);
  });

  it('a Lookahead file saved with another k: refused naming k; the inner optimizer keeps its state', () => {
    const saved = trained('a Lookahead of Nesterov');
    const path = join(folder, 'k.json');
    saveStateSync(saved, path);
    const other = new Lookahead(new Nesterov({ lr: 0.05, momentum: 0.9 }), { k: 2, alpha: 0.5 });
    run(other, makeParams(), 1, 3);
    refusesAndKeeps(other, () => loadStateSync(other, path), /k\.json: Lookahead\.loadStateDict: the state was saved with k 3, this Lookahead uses 2/);
  });

  it('a partition whose second member refuses its state: the first member is put back (nested: a Lookahead member)', () => {
    // members load in key order: 'muon' first, then 'slow' (a Lookahead saved with another alpha)
    const source = partition((name) => (isMatrix(name) ? 'muon' : 'slow'), { muon: new Muon({ shapes: MATRICES }), slow: new Lookahead(new Adam({ lr: 0.02 }), { k: 4, alpha: 0.9 }) });
    run(source, makeParams(), 1, N + 2);
    const target = trained('a Lookahead inside a partition');
    refusesAndKeeps(target, () => target.loadStateDict(decodeState(encodeState(checkSavedState(source.stateDict())))), /alpha 0\.9, this Lookahead uses 0\.6/);
  });

  it('a partition inside a Lookahead whose member state is of another optimizer: slow weights, count and every member unchanged', () => {
    const source = new Lookahead(partition((name) => (isMatrix(name) ? 'muon' : 'adamw'), { muon: new Muon({ shapes: MATRICES }), adamw: new Adam({ lr: 0.01 }) }), { k: 3, alpha: 0.5 });
    run(source, makeParams(), 1, N + 1);
    const target = trained('a partition inside a Lookahead');
    refusesAndKeeps(target, () => target.loadStateDict(stateFromJSON(stateToJSON(checkSavedState(source.stateDict())))), /Adam/);
  });

  it("a partition state whose member holds a parameter this partition sends to another member is refused, naming both", () => {
    const opt = trained('a partition of Muon and AdamW');
    // saved with W1 sent to AdamW: its 'adamw' member holds W1, which `opt` sends to Muon
    const other = partition((name) => (name === 'W2' ? 'muon' : 'adamw'), { muon: new Muon({ shapes: { W2: [4, 3] } }), adamw: new AdamW({ lr: 0.01 }) });
    run(other, makeParams(), 1, 2);
    refusesAndKeeps(opt, () => opt.loadStateDict(other.stateDict()), /^partition\.loadStateDict: members\['adamw'\] holds the state of parameter 'W1', which this partition assigns to 'muon'$/);
  });

  it("a Lookahead whose slow weights do not match its inner partition's parameters is refused", () => {
    const opt = trained('a partition inside a Lookahead');
    const state = structuredClone(opt.stateDict()) as { slow: Record<string, FloatArray> };
    delete state.slow.b1;
    refusesAndKeeps(opt, () => opt.loadStateDict(state), /slow weights for \[W1, W2, b2\] but the inner state has parameters \[W1, W2, b1, b2\]/);
  });

  it(`nesting deeper than MAX_STATE_DEPTH (${MAX_STATE_DEPTH}) is a StateError naming the bound, also for a cyclic object and a crafted file`, () => {
    let opt: OptimizerLike = new Nesterov({ lr: 0.1 });
    for (let i = 0; i <= MAX_STATE_DEPTH; i++) opt = new Lookahead(opt, { k: 2 });
    opt.update({ w: new Float64Array([1, 2]) }, { w: new Float64Array([0.5, -1]) });
    const deep = opt.stateDict();
    assert.throws(() => encodeState(deep as never), (error: unknown) => error instanceof StateError && /deeper than 32 levels \(MAX_STATE_DEPTH\)/.test(error.message));
    assert.throws(() => saveStateSync(opt, join(folder, 'deep.json')), StateError);

    const cyclic = { format: 'nesterov/partition-state', members: {} as Record<string, unknown> };
    cyclic.members.self = cyclic;
    assert.throws(() => checkSavedState(cyclic), (error: unknown) => error instanceof StateError && /MAX_STATE_DEPTH/.test(error.message));

    // a text nesting 200 partitions, sealed with a correct checksum
    let record = JSON.parse(stateToJSON(checkSavedState(new Nesterov().stateDict()))) as Record<string, unknown>;
    delete record.checksum;
    for (let i = 0; i < 200; i++) record = { format: 'nesterov/partition-state', members: { m: record } };
    const text = resealText(`{"checksum":"crc32:00000000",${JSON.stringify(record).slice(1)}`);
    assert.throws(() => stateFromJSON(text), (error: unknown) => error instanceof StateError && /MAX_STATE_DEPTH/.test(error.message));
  });

  it('a nested error names the node: the path from the root', () => {
    const opt = trained('a Lookahead inside a partition');
    const state = structuredClone(opt.stateDict()) as { members: { slow: { inner: { stepCount: unknown } } } };
    state.members.slow.inner.stepCount = -1;
    assert.throws(
      () => stateToJSON(state as never),
      (error: unknown) => error instanceof StateError && error.message === "invalid optimizer state: members['slow'].inner: stepCount is -1, expected an integer >= 0",
    );
  });
});

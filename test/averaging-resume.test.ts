/**
 * Save and resume of EMA, SWA and GradientAccumulation, alone and nested (inside a
 * partition, around a partition, inside Lookahead, around each other), through
 * nesterov/node's saveState / loadState in both file formats, and through
 * encodeState / stateToJSON.
 *
 * Expected values are a behavioural contract: N steps, save, load into freshly made
 * objects, M more steps ends with the same bytes in every parameter, every average, every
 * sum and every inner state buffer as N + M steps that never stopped. N = 5 leaves an
 * accumulation window half full and an SWA between two averages.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  Adam,
  AdamW,
  EMA,
  GradientAccumulation,
  Lookahead,
  Muon,
  Nesterov,
  SGD,
  SWA,
  WRAPPER_STATE_FORMAT,
  decodeState,
  encodeState,
  partition,
  stateFromJSON,
  stateToJSON,
  type OptimizerLike,
  type SavedState,
} from 'nesterov';
import { loadState, saveState } from 'nesterov/node';
import { assertSameSaved, gradsAt, isMatrix, makeParams, MATRICES, NAMES, type Params } from './state-helpers.ts';

const folder = mkdtempSync(join(tmpdir(), 'nesterov-averaging-resume-'));
const N = 5;
const M = 7;

const WRAPPER_CONFIGS: Record<string, () => OptimizerLike> = {
  'EMA of Adam (warm-up)': () => new EMA(new Adam({ lr: 0.02 }), { decay: 0.95, warmup: { gamma: 2, power: 0.75 } }),
  'SWA of Nesterov (start 3, every 2)': () => new SWA(new Nesterov({ lr: 0.05, momentum: 0.9 }), { start: 3, every: 2 }),
  'GradientAccumulation of AdamW (steps 3)': () => new GradientAccumulation(new AdamW({ lr: 0.01 }), { steps: 3 }),
  'EMA inside a partition with Muon': () => partition((name) => (isMatrix(name) ? 'muon' : 'ema'), { muon: new Muon({ shapes: MATRICES }), ema: new EMA(new AdamW({ lr: 0.01 }), { decay: 0.9 }) }),
  'SWA around a partition': () => new SWA(partition((name) => (isMatrix(name) ? 'muon' : 'adam'), { muon: new Muon({ shapes: MATRICES }), adam: new Adam({ lr: 0.01 }) }), { start: 2 }),
  'Lookahead around GradientAccumulation': () => new Lookahead(new GradientAccumulation(new Adam({ lr: 0.02 }), { steps: 2 }), { k: 2, alpha: 0.5 }),
  'EMA around GradientAccumulation': () => new EMA(new GradientAccumulation(new SGD({ lr: 0.05 }), { steps: 3 }), { decay: 0.8 }),
  'GradientAccumulation around SWA inside a partition': () =>
    partition((name) => (name === 'b2' ? 'last' : 'rest'), { rest: new GradientAccumulation(new SWA(new Adam({ lr: 0.01 })), { steps: 2 }), last: new Nesterov({ lr: 0.05 }) }),
};

/** Steps from..to (1-based); GradientAccumulation's micro-batches return false: not asserted. */
function steps(opt: OptimizerLike, params: Params, from: number, to: number): void {
  for (let t = from; t <= to; t++) opt.update(params, gradsAt(params, t));
}

describe('saveState / loadState of EMA, SWA and GradientAccumulation through nesterov/node', () => {
  for (const [label, make] of Object.entries(WRAPPER_CONFIGS)) {
    for (const extension of ['.safetensors', '.json']) {
      it(`${label} (${extension}): N steps, save, load into fresh objects, M steps == N + M steps, bit for bit`, async () => {
        const straight = makeParams();
        const uninterrupted = make();
        steps(uninterrupted, straight, 1, N + M);

        const params = makeParams();
        const first = make();
        steps(first, params, 1, N);
        const path = join(folder, `${label.replace(/[^a-zA-Z0-9]+/g, '-')}${extension}`);
        await saveState(first, path);
        const resumed = make();
        await loadState(resumed, path);
        assertSameSaved(resumed.stateDict(), first.stateDict(), 'the loaded state is the saved one');
        steps(resumed, params, N + 1, N + M);

        for (const name of NAMES) assert.deepEqual(params[name], straight[name], `parameter ${name}`);
        assertSameSaved(resumed.stateDict(), uninterrupted.stateDict());
      });
    }
  }

  it('the state is one generic node per wrapper, nested; encodeState and stateToJSON round-trip it exactly', () => {
    const opt = WRAPPER_CONFIGS['GradientAccumulation around SWA inside a partition']!();
    steps(opt, makeParams(), 1, N);
    const state = opt.stateDict() as SavedState & { members: { rest: { format: string; wrapper: string; inner: { format: string; wrapper: string } } } };
    assert.equal(state.members.rest.format, WRAPPER_STATE_FORMAT);
    assert.equal(state.members.rest.wrapper, 'GradientAccumulation');
    assert.equal(state.members.rest.inner.wrapper, 'SWA');
    assertSameSaved(decodeState(encodeState(state)), state);
    assertSameSaved(stateFromJSON(stateToJSON(state)), state);
  });

  it('saved while swapped: loaded, swapped back and stepped, it equals the run that swapped back without saving', async () => {
    const make = () => new EMA(new Adam({ lr: 0.02 }), { decay: 0.9 });
    const straight = makeParams();
    const uninterrupted = make();
    steps(uninterrupted, straight, 1, N);
    uninterrupted.swap(straight);
    uninterrupted.swap(straight);
    steps(uninterrupted, straight, N + 1, N + M);

    const params = makeParams();
    const first = make();
    steps(first, params, 1, N);
    first.swap(params);
    const path = join(folder, 'swapped.safetensors');
    await saveState(first, path);
    const resumed = make();
    await loadState(resumed, path);
    assert.equal(resumed.swapped, true);
    resumed.swap(params);
    steps(resumed, params, N + 1, N + M);
    for (const name of NAMES) assert.deepEqual(params[name], straight[name], `parameter ${name}`);
    assertSameSaved(resumed.stateDict(), uninterrupted.stateDict());
  });
});

/**
 * Saving and resuming every optimizer-like object through the package's exports, not
 * only a single optimizer: a partition of Muon and AdamW, a Lookahead of Nesterov, and
 * wrappers nested in each other (a Lookahead inside a partition, a partition inside a
 * Lookahead, a partition inside a partition), in both file formats.
 *
 * Expected values are a behavioural contract, not numbers: a run that stops after N
 * steps, saves, loads into freshly made objects and takes M more steps ends with the same
 * bytes in every parameter and every state buffer as a run of N + M steps that never
 * stopped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { decodeState, encodeState, stateFromJSON, stateToJSON } from 'nesterov';
import { loadState, loadStateSync, saveState, saveStateSync } from 'nesterov/node';
import { assertSameSaved, CONFIGS, makeParams, N, NAMES, run } from './state-helpers.ts';

const folder = mkdtempSync(join(tmpdir(), 'nesterov-state-wrapper-files-'));

const M = 4;

describe('saveState / loadState of wrappers through nesterov/node', () => {
  for (const [label, make] of Object.entries(CONFIGS)) {
    for (const extension of ['.safetensors', '.json']) {
      it(`${label} (${extension}): N steps, save, load into fresh objects, M steps == N + M steps, bit for bit`, async () => {
        const straight = makeParams();
        const uninterrupted = make();
        run(uninterrupted, straight, 1, N + M);

        const params = makeParams();
        const first = make();
        run(first, params, 1, N);
        const path = join(folder, `${label.replaceAll(' ', '-')}${extension}`);
        await saveState(first, path);
        const resumed = make();
        await loadState(resumed, path);
        assertSameSaved(resumed.stateDict(), first.stateDict(), 'the loaded state is the saved one');
        run(resumed, params, N + 1, N + M);

        for (const name of NAMES) assert.deepEqual(params[name], straight[name], `parameter ${name}`);
        assertSameSaved(resumed.stateDict(), uninterrupted.stateDict());
      });
    }
  }

  it('the synchronous pair too, and a file written by one encoding is read by content', () => {
    const make = CONFIGS['a Lookahead inside a partition']!;
    const opt = make();
    run(opt, makeParams(), 1, N);
    for (const extension of ['.safetensors', '.json']) {
      const path = join(folder, `sync${extension}`);
      saveStateSync(opt, path);
      const fresh = make();
      loadStateSync(fresh, path);
      assertSameSaved(fresh.stateDict(), opt.stateDict());
    }
  });

  it('encodeState / decodeState and stateToJSON / stateFromJSON take a wrapper state, nested', () => {
    const opt = CONFIGS['a partition inside a Lookahead']!();
    run(opt, makeParams(), 1, N);
    const state = opt.stateDict() as Parameters<typeof encodeState>[0];
    assertSameSaved(decodeState(encodeState(state)), state);
    assertSameSaved(stateFromJSON(stateToJSON(state)), state);
  });
});


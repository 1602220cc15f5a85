/**
 * Checkpoints of the --tune search: a search run's checkpoint carries its validation
 * losses (the search's result) and its validation split, and both are checked before
 * anything trains; a checkpoint written before --tune existed (no evalLoss) still
 * resumes an ordinary run.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CheckpointError, loadCheckpoint, saveCheckpoint } from '../app/checkpoint.ts';
import { IMAGE_SIZE, type Digits } from '../app/data.ts';
import { Rng } from '../app/nn/rng.ts';
import { train } from '../app/train.ts';
import type { Checkpoint, TrainConfig } from '../app/types.ts';

/** The run these checkpoints belong to (its key and its digits' SHA-256), as the CLI records it. */
const ID = { runKey: 'sgd', dataSha256: 'ab'.repeat(32) };

function digits(count: number, seed: number): Digits {
  const rng = new Rng(seed);
  return { images: Float32Array.from({ length: count * IMAGE_SIZE }, () => rng.next()), labels: Uint8Array.from({ length: count }, () => rng.below(10)), count };
}

/** Re-signs an edited body the way the program signs (SHA-256 of the body's bytes in the header line). */
function resign(path: string, edit: (record: Record<string, unknown>) => void): void {
  const text = readFileSync(path, 'utf8');
  const record = JSON.parse(text.slice(text.indexOf('\n') + 1)) as Record<string, unknown>;
  edit(record);
  const body = JSON.stringify(record);
  const digest = createHash('sha256').update(body, 'utf8').digest('hex');
  writeFileSync(path, `{"format":"nesterov/main-job-checkpoint","version":3,"sha256":"${digest}"}\n${body}`);
}

describe('checkpoints of the learning-rate search', () => {
  const data = { train: digits(50, 1), test: digits(10, 2) };
  const search: TrainConfig = { optimizer: 'adam', lr: 0.01, epochs: 2, batch: 10, seed: 3, hidden: [4], validation: 10 };
  const folder = mkdtempSync(join(tmpdir(), 'nesterov-search-ckpt-'));
  const path = join(folder, 'adam.search-1-0.json');
  const saved: Checkpoint[] = [];
  const result = train(search, data, () => undefined, { every: 1000, identity: ID, save: (c) => (saved.push(c), saveCheckpoint(path, c)) });

  it('a search run trains on 40 digits (4 steps an epoch) and its finished checkpoint holds the validation losses', () => {
    assert.equal(result.steps, 8);
    const loaded = loadCheckpoint(path, search, 50, ID)!;
    assert.equal(loaded.finished, true);
    assert.deepEqual(loaded.evalLoss, result.evalLoss);
    assert.equal(loaded.evalLoss.length, 2);
    assert.equal(loaded.indices.length, 40, 'a permutation of the 40 digits it fits on');
  });

  it('refuses it for a run with another validation split, naming the field', () => {
    assert.throws(() => loadCheckpoint(path, { ...search, validation: 5 }, 50, ID), (e: unknown) => e instanceof CheckpointError && e.message === `${path}: made with validation 10, this run has 5 (use the same flags, or another --out)`);
    assert.throws(() => loadCheckpoint(path, { optimizer: 'adam', lr: 0.01, epochs: 2, batch: 10, seed: 3, hidden: [4] }, 50, ID), (e: unknown) => e instanceof CheckpointError && e.message === `${path}: made with validation 10, this run has none (use the same flags, or another --out)`);
  });

  it("refuses a search checkpoint without its validation losses, or with one too many", () => {
    const copy = join(folder, 'copy.json');
    writeFileSync(copy, readFileSync(path));
    resign(copy, (r) => delete r.evalLoss);
    assert.throws(() => loadCheckpoint(copy, search, 50, ID), (e: unknown) => e instanceof CheckpointError && e.message === `${copy}: field 'evalLoss' is missing: a run of the learning-rate search records its validation loss`);
    writeFileSync(copy, readFileSync(path));
    resign(copy, (r) => (r.evalLoss as number[]).push(0.5));
    assert.throws(() => loadCheckpoint(copy, search, 50, ID), (e: unknown) => e instanceof CheckpointError && e.message === `${copy}: field 'evalLoss' is an array of 3: the checkpoint is after 2 epochs`);
  });

  it('an ordinary run resumes from a checkpoint without evalLoss (written before --tune): the missing losses are NaN', () => {
    const config: TrainConfig = { optimizer: 'sgd', lr: 0.1, epochs: 2, batch: 10, seed: 3, hidden: [4] };
    const file = join(folder, 'sgd.json');
    const halfway: Checkpoint[] = [];
    train({ ...config, epochs: 1 }, data, () => undefined, { every: 1000, identity: ID, save: (c) => halfway.push(c) });
    saveCheckpoint(file, { ...halfway[0]!, config, finished: false });
    resign(file, (r) => delete r.evalLoss);
    const loaded = loadCheckpoint(file, config, 50, ID)!;
    assert.equal(loaded.epoch, 1);
    assert.ok(loaded.evalLoss.length === 1 && Number.isNaN(loaded.evalLoss[0]));
    const straight = train(config, data, () => undefined);
    const resumed = train(config, data, () => undefined, { every: 0, identity: ID, save: () => undefined, from: loaded });
    assert.deepEqual(resumed.losses, straight.losses);
    assert.deepEqual(resumed.testAccuracy, straight.testAccuracy);
    assert.equal(resumed.evalLoss[1], straight.evalLoss[1]);
  });
});

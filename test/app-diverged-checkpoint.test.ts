/**
 * The last checkpoint of a run that diverged. When a step overflows, the library applies
 * it and then throws an UpdateError ("This step WAS applied"), so the weights and the
 * optimizer state at that instant hold an Infinity or a NaN, and (muon) one member of a
 * partition may have stepped while the other did not. That checkpoint is still a valid
 * one of a finished run: it loads, resuming from it gives the run's result again, and
 * edits of its `diverged` record that contradict its position are refused.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Rng } from '../app/nn/rng.ts';
import { loadCheckpoint, saveCheckpoint, type Checkpoint } from '../app/checkpoint.ts';
import type { Digits } from '../app/data.ts';
import { train, type TrainConfig } from '../app/train.ts';

const ID = { runKey: 'sgd', dataSha256: 'cd'.repeat(32) };
const folder = mkdtempSync(join(tmpdir(), 'nesterov-diverged-'));

/** 40 random digits to train on, 10 to test; `scale` times the usual pixel range. */
function digits(scale: number): { train: Digits; test: Digits } {
  const rng = new Rng(9);
  const make = (count: number): Digits => ({
    images: Float32Array.from({ length: count * 784 }, () => scale * rng.next()),
    labels: Uint8Array.from({ length: count }, () => rng.below(10)),
    count,
  });
  return { train: make(40), test: make(10) };
}

/** Rewrites the body of a checkpoint file with `edit`, with the header's digest made from the format's definition. */
function edit(path: string, change: (record: Record<string, unknown>) => void): void {
  const text = readFileSync(path, 'utf8');
  const record = JSON.parse(text.slice(text.indexOf('\n') + 1)) as Record<string, unknown>;
  change(record);
  const body = JSON.stringify(record);
  const digest = createHash('sha256').update(Buffer.from(body, 'utf8')).digest('hex');
  writeFileSync(path, `{"format":"nesterov/main-job-checkpoint","version":3,"sha256":"${digest}"}\n${body}`);
}

// float32 holds at most 3.4e38: a step of lr 3e38 times a gradient above about 1 overflows.
// sgd's gradients on pixels up to 100 are that large from the first step.
const CASES: [string, number][] = [
  ['sgd', 100],
  ['adam', 1],
  ['muon', 1],
  ['schedulefree-adamw', 1],
];

describe('the checkpoint of a run whose step overflowed', () => {
  for (const [optimizer, scale] of CASES) {
    it(`${optimizer}: saved finished at the failed step, loads (non-finite weights and all), and resumes to the same result`, () => {
      const config: TrainConfig = { optimizer, lr: 3e38, epochs: 2, batch: 10, seed: 3, hidden: [4] };
      const data = digits(scale);
      const saved: Checkpoint[] = [];
      const result = train(config, data, () => undefined, { every: 1, identity: ID, save: (c) => saved.push(c) });
      const d = result.diverged!;
      assert.match(d.message, /the step overflowed/, 'the step was applied, then the optimizer threw');
      assert.equal(result.steps, d.step - 1);
      const last = saved[saved.length - 1]!;
      assert.equal(last.finished, true);
      assert.deepEqual(last.diverged, d);
      // 4 steps an epoch: the failed step's position.
      assert.deepEqual([last.epoch, last.step], [Math.floor((d.step - 1) / 4), (d.step - 1) % 4]);
      assert.ok(last.params.some((v) => !Number.isFinite(v)), 'the overflow is in the weights');

      const path = join(folder, `${optimizer}.json`);
      saveCheckpoint(path, last);
      const loaded = loadCheckpoint(path, config, 40, ID)!;
      assert.deepEqual(loaded.diverged, d);
      const again = train(config, data, () => undefined, { every: 1, identity: ID, save: () => assert.fail('a finished run saves nothing'), from: loaded });
      assert.deepEqual(again.diverged, result.diverged);
      assert.deepEqual(again.losses, result.losses);
      assert.deepEqual(again.testAccuracy, result.testAccuracy);
      assert.ok(Number.isNaN(again.trainLoss), 'no final training loss');
    });
  }

  it('a diverged record that contradicts the position, or a diverged run not finished, is refused', () => {
    const config: TrainConfig = { optimizer: 'sgd', lr: 3e38, epochs: 2, batch: 10, seed: 3, hidden: [4] };
    const saved: Checkpoint[] = [];
    train(config, digits(100), () => undefined, { every: 1, identity: ID, save: (c) => saved.push(c) });
    const path = join(folder, 'edited.json');
    const write = () => saveCheckpoint(path, saved[saved.length - 1]!);
    const step = saved[saved.length - 1]!.diverged!.step;

    write();
    edit(path, (r) => void ((r.diverged as { step: number }).step = step + 1));
    assert.throws(() => loadCheckpoint(path, config, 40, ID), { message: new RegExp(`^${path}: field 'diverged' is .*: the checkpoint is at step ${step} \\(epoch 1\\), the one that failed$`) });
    write();
    edit(path, (r) => void (r.finished = false));
    assert.throws(() => loadCheckpoint(path, config, 40, ID), { message: `${path}: field 'finished' is false: the run diverged` });
    // Without the record, the same file is an unfinished run with non-finite weights.
    write();
    edit(path, (r) => void (delete r.diverged, (r.finished = false)));
    assert.throws(() => loadCheckpoint(path, config, 40, ID), { message: /field 'params\[\d+\]' is -?Infinity: not a finite number$/ });
  });
});

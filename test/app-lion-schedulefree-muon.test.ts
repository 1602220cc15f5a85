/**
 * The main job's lion, schedulefree-adamw and muon: muon is Muon for the
 * hidden matrix W1 and AdamW for b1, W2 and b2 (one step equals the two run directly on
 * copies, bit for bit); schedulefree-adamw is evaluated at x (the average its eval()
 * gives), and its checkpoints are taken in train mode; a muon checkpoint holds both
 * members' states, each checked; --tune and --seeds run all three.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { AdamW, Muon, PARTITION_FORMAT, ScheduleFreeAdamW, type OptimizerStateDict, type PartitionStateDict } from 'nesterov';
import { CheckpointError, loadCheckpoint, saveCheckpoint, type Checkpoint } from '../app/checkpoint.ts';
import type { Digits } from '../app/data.ts';
import { Network } from '../app/nn/network.ts';
import { Rng } from '../app/nn/rng.ts';
import { OPTIMIZERS } from '../app/optimizers.ts';
import { trajectory, BOOK_SURFACE } from '../app/report.ts';
import { train, type TrainConfig } from '../app/train.ts';

/** The run these checkpoints belong to (its key and its digits' SHA-256), as the CLI records it. */
const ID = { runKey: 'sgd', dataSha256: 'ab'.repeat(32) };

const bytes = (a: Float32Array | Float64Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Random digits: `count` images of uniform pixels, uniform labels. */
function randomDigits(rng: Rng, count: number): Digits {
  return {
    images: Float32Array.from({ length: count * 784 }, () => rng.next()),
    labels: Uint8Array.from({ length: count }, () => rng.below(10)),
    count,
  };
}

describe('muon: Muon for W1, AdamW for b1, W2 and b2', () => {
  it('assigns W1 to Muon and the rest to AdamW', () => {
    const opt = OPTIMIZERS.muon!.make(0.02) as unknown as { memberOf(name: string): string };
    assert.deepEqual(['W1', 'b1', 'W2', 'b2'].map((name) => opt.memberOf(name)), ['muon', 'adamw', 'adamw', 'adamw']);
  });

  it('three steps on the network store equal Muon (lr 0.02, shape 784 x 100) and AdamW (lr 0.001, wd 0.01) run directly, bit for bit', () => {
    // The direct runs: Muon on a plain copy of W1 (its shape given), AdamW on the
    // other three in a second network's store (AdamW's wasm kernel runs on a float32
    // store; on plain arrays it would run in JS, rounding otherwise).
    const net = new Network({ inputSize: 784, hiddenSizes: [100], outputSize: 10 });
    const twin = new Network({ inputSize: 784, hiddenSizes: [100], outputSize: 10 });
    net.initialize(new Rng(5));
    twin.initialize(new Rng(5));
    const names = ['W1', 'b1', 'W2', 'b2'] as const;
    const w1 = Float32Array.from(net.store.params.W1!);
    const w1Grad = new Float32Array(w1.length);
    const muonDirect = new Muon({ lr: 0.02, shapes: { W1: [784, 100] } });
    const adamwDirect = new AdamW({ lr: 0.001, weightDecay: 0.01 });
    const entry = OPTIMIZERS.muon!.make(0.02);
    const rng = new Rng(11);
    for (let step = 0; step < 3; step++) {
      for (const n of names) {
        const g = net.store.grads[n]!;
        for (let i = 0; i < g.length; i++) g[i] = rng.normal() * 0.01;
        twin.store.grads[n]!.set(g);
      }
      w1Grad.set(net.store.grads.W1!);
      entry.update(net.store.params, net.store.grads);
      muonDirect.update({ W1: w1 }, { W1: w1Grad });
      adamwDirect.update<string>(twin.store.params, twin.store.grads, ['b1', 'W2', 'b2']);
      assert.ok(bytes(net.store.params.W1 as Float32Array).equals(bytes(w1)), `W1 after step ${step + 1}`);
      for (const n of ['b1', 'W2', 'b2'] as const) {
        assert.ok(bytes(net.store.params[n] as Float32Array).equals(bytes(twin.store.params[n] as Float32Array)), `${n} after step ${step + 1}`);
      }
    }
    // And the state is the two members' own.
    const state = entry.stateDict() as PartitionStateDict;
    assert.equal(state.format, PARTITION_FORMAT);
    assert.deepEqual(Object.keys(state.members.muon!.params), ['W1']);
    assert.deepEqual(Object.keys(state.members.adamw!.params).sort(), ['W2', 'b1', 'b2']);
    assert.ok(bytes(state.members.muon!.params.W1!.buffers.momentumBuffer!).equals(bytes(muonDirect.stateDict().params.W1!.buffers.momentumBuffer!)));
  });

  it("the panels run Muon alone on the point as a 1 x 2 matrix: the first step has length lr * q(1), the quintic's value at singular value 1", () => {
    // From (-7, 2) the gradient of x^2/20 + y^2 is (-0.7, 4); the Nesterov update
    // (1 - beta) g + beta m with m = (1 - beta) g is a positive multiple of g; a row
    // normalised to norm 1 (less the 1e-7) is its own polar factor, and each quintic step
    // maps s to a s + b s^3 + c s^5. Five steps from s = 1 - 1e-7 / |u|.
    const [a, b, c] = [3.4445, -4.775, 2.0315];
    const g = [-0.7, 4];
    const norm = Math.hypot(g[0]!, g[1]!);
    const u = 0.05 * norm + 0.95 * 0.05 * norm; // |(1 - beta) g + beta m| with m = (1 - beta) g, beta 0.95
    let s = u / (u + 1e-7);
    for (let k = 0; k < 5; k++) s = a * s + b * s ** 3 + c * s ** 5;
    const lr = OPTIMIZERS.muon!.pathLr;
    const [, first] = trajectory('muon', BOOK_SURFACE);
    const expected = [-7 - (lr * s * g[0]!) / norm, 2 - (lr * s * g[1]!) / norm];
    assert.ok(Math.abs(first![0] - expected[0]!) < 1e-12 && Math.abs(first![1] - expected[1]!) < 1e-12, `${first} vs ${expected}`);
  });
});

describe('schedulefree-adamw: evaluated at x, trained and saved at y', () => {
  const rng = new Rng(21);
  const data = { train: randomDigits(rng, 60), test: randomDigits(rng, 30) };
  const config: TrainConfig = { optimizer: 'schedulefree-adamw', lr: 0.0025, epochs: 2, batch: 10, seed: 7, hidden: [8] };
  const saved: Checkpoint[] = [];
  const result = train(config, data, () => undefined, { every: 4, identity: ID, save: (c) => saved.push(c) });

  /** The run by hand: the same initial weights and batches (train.ts's seeds), the accuracy and loss at x and at y after each epoch. */
  function byHand(): { atX: { accuracy: number; loss: number }[]; atY: { accuracy: number; loss: number }[] } {
    const net = new Network({ inputSize: 784, hiddenSizes: [8], outputSize: 10 });
    net.initialize(new Rng(7));
    const order = new Rng(8);
    const opt = new ScheduleFreeAdamW({ lr: 0.0025 });
    const indices = Uint32Array.from({ length: 60 }, (_, i) => i);
    const x = new Float32Array(10 * 784);
    const labels = new Uint8Array(10);
    const atX = [];
    const atY = [];
    for (let epoch = 0; epoch < 2; epoch++) {
      order.shuffle(indices);
      for (let step = 0; step < 6; step++) {
        for (let r = 0; r < 10; r++) {
          const k = indices[step * 10 + r]!;
          x.set(data.train.images.subarray(k * 784, (k + 1) * 784), r * 784);
          labels[r] = data.train.labels[k]!;
        }
        net.gradient(x, labels, 0, 10);
        opt.update(net.store.params, net.store.grads);
      }
      const y = Float32Array.from(net.store.view(0, 0, net.store.regionLength));
      atY.push(net.evaluate(data.test.images, data.test.labels, 0, 30));
      opt.eval(net.store.params);
      atX.push(net.evaluate(data.test.images, data.test.labels, 0, 30));
      opt.train(net.store.params);
      // The training goes on from what train() leaves: y after the round trip.
      assert.ok(Math.max(...Array.from(net.store.view(0, 0, net.store.regionLength), (v, i) => Math.abs(v - y[i]!))) < 1e-6);
    }
    return { atX, atY };
  }

  it('the reported test accuracy and loss after each epoch are those at x (eval), not at y', () => {
    const { atX, atY } = byHand();
    assert.deepEqual(result.testAccuracy, atX.map((e) => e.accuracy));
    assert.deepEqual(result.evalLoss, atX.map((e) => e.loss));
    // x and y differ: the test tells an evaluation at y from one at x.
    assert.notDeepEqual(atY.map((e) => e.loss), atX.map((e) => e.loss));
  });

  it('every checkpoint is in train mode (the parameters hold y), also the ones after an evaluation', () => {
    assert.deepEqual(
      saved.map((c) => [c.epoch, c.step]),
      [
        [0, 4],
        [1, 0],
        [1, 2],
        [2, 0],
      ],
    );
    for (const c of saved) {
      const state = c.optimizer as OptimizerStateDict;
      assert.deepEqual(Object.values(state.params).map((p) => p.scalars.trainMode), [1, 1, 1, 1], `epoch ${c.epoch} step ${c.step}`);
    }
  });

  it('a run resumed from the checkpoint after the first evaluation ends bit for bit as the uninterrupted one', () => {
    const folder = mkdtempSync(join(tmpdir(), 'nesterov-sf-'));
    const path = join(folder, 'schedulefree-adamw.json');
    saveCheckpoint(path, saved[1]!);
    const from = loadCheckpoint(path, config, 60, ID)!;
    const last: Checkpoint[] = [];
    const resumed = train(config, data, () => undefined, { every: 4, identity: ID, save: (c) => last.push(c), from });
    assert.deepEqual({ ...resumed, seconds: 0, optimizerSeconds: 0, samplesPerSecond: 0 }, { ...result, seconds: 0, optimizerSeconds: 0, samplesPerSecond: 0 });
    assert.ok(bytes(last[last.length - 1]!.params).equals(bytes(saved[saved.length - 1]!.params)));
  });
});

describe('muon checkpoints: both members saved and checked', () => {
  const rng = new Rng(9);
  const data = { train: randomDigits(rng, 40), test: randomDigits(rng, 10) };
  const config: TrainConfig = { optimizer: 'muon', lr: 0.02, epochs: 2, batch: 10, seed: 3, hidden: [3] };
  const saved: Checkpoint[] = [];
  train(config, data, () => undefined, { every: 3, identity: ID, save: (c) => saved.push(c) });
  const folder = mkdtempSync(join(tmpdir(), 'nesterov-muon-ckpt-'));

  it('every checkpoint loads back deep-equal, the optimizer field holding both members', () => {
    for (const [i, checkpoint] of saved.entries()) {
      const path = join(folder, `roundtrip-${i}.json`);
      saveCheckpoint(path, checkpoint);
      assert.deepEqual(loadCheckpoint(path, config, 40, ID), checkpoint);
      const body = JSON.parse(readFileSync(path, 'utf8').split('\n')[1]!) as { optimizer: string };
      const field = JSON.parse(body.optimizer) as { format: string; members: Record<string, string> };
      assert.equal(field.format, 'nesterov/partition-state');
      assert.deepEqual(Object.keys(field.members), ['muon', 'adamw']);
    }
  });

  it('refuses a member at another step count, naming the member', () => {
    const path = join(folder, 'stale-member.json');
    const state = saved[2]!.optimizer as PartitionStateDict;
    const stale = { format: PARTITION_FORMAT, members: { muon: (saved[1]!.optimizer as PartitionStateDict).members.muon!, adamw: state.members.adamw! } } as PartitionStateDict;
    saveCheckpoint(path, { ...saved[2]!, optimizer: stale });
    assert.throws(
      () => loadCheckpoint(path, config, 40, ID),
      (e: Error) => e instanceof CheckpointError && e.message === `${path}: field 'optimizer.members.muon.stepCount' is 4: the checkpoint is after 6 steps`,
    );
  });

  it("refuses a single optimizer's state for muon, naming the field", () => {
    const path = join(folder, 'single.json');
    const adamw = (saved[2]!.optimizer as PartitionStateDict).members.adamw!;
    saveCheckpoint(path, { ...saved[2]!, optimizer: adamw });
    assert.throws(
      () => loadCheckpoint(path, config, 40, ID),
      (e: Error) => e instanceof CheckpointError && e.message.startsWith(`${path}: field 'optimizer': partition.loadStateDict: expected a partition state`),
    );
  });
});

describe('--tune and --seeds with lion, schedulefree-adamw and muon (CLI)', () => {
  it('searches around each default rate, picks the lowest validation loss, and trains 2 seeds there', { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'nesterov-tune-new-'));
    const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
    const args = ['--optimizers', 'lion,schedulefree-adamw,muon', '--digits', '400', '--epochs', '1', '--tune-epochs', '1', '--hidden', '8', '--batch', '20', '--seed', '2', '--workers', '2', '--tune', '--seeds', '2', '--out', out];
    await promisify(execFile)(process.execPath, ['--import', 'tsx', main, ...args]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      seeds: number;
      tuned: boolean;
      optimizers: { name: string; lr: number; runs: { seed: number; testAccuracy: number }[]; search: { defaultLr: number; points: { lr: number; validationLoss: number | null; stage: number }[]; chosenLr: number } }[];
    };
    assert.deepEqual([summary.seeds, summary.tuned], [2, true]);
    assert.deepEqual(summary.optimizers.map((o) => o.name), ['lion', 'schedulefree-adamw', 'muon']);
    // The first grid: default * 10^(k/3), k = -3..3, to 4 significant digits.
    const grids: Record<string, number[]> = {
      lion: [0.00003, 0.00006463, 0.0001392, 0.0003, 0.0006463, 0.001392, 0.003],
      'schedulefree-adamw': [0.00025, 0.0005386, 0.00116, 0.0025, 0.005386, 0.0116, 0.025],
      muon: [0.002, 0.004309, 0.009283, 0.02, 0.04309, 0.09283, 0.2],
    };
    for (const o of summary.optimizers) {
      assert.deepEqual(o.search.points.filter((p) => p.stage === 1).map((p) => p.lr), grids[o.name], o.name);
      assert.equal(o.search.points.length, 9, o.name);
      const scored = o.search.points.map((p) => p.validationLoss ?? Infinity);
      const lowest = o.search.points[scored.indexOf(Math.min(...scored))]!.lr;
      assert.equal(o.search.chosenLr, lowest, o.name);
      assert.equal(o.lr, lowest, o.name);
      // 400 digits: 320 train, the full runs use seeds 2 and 4 (SEED + 2k).
      assert.deepEqual(o.runs.map((r) => r.seed), [2, 4], o.name);
    }
  });
});

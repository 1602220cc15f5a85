/**
 * tfOptimizer(partition(...)) beyond one model: a model saved with its partition whose
 * variables carried tfjs-layers' `_<n>` suffix (the second model of its layer names in the
 * process) trains on after `tf.loadLayersModel`, in this process and in a fresh one, bit
 * for bit as the saved model trains on; and a step one member refuses (its lr schedule
 * returns NaN) writes no variable and no state of any member, on both paths.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { AdamW, Muon, UpdateError, partition, type AnyOptimizer, type Partition } from 'nesterov';
import { tfOptimizer, type TfMembers, type TfWrappable } from 'nesterov/tfjs';
import { BACKENDS, batches, bitDifferences, exportedBits, lossFn, saveArtifacts, tf, useBackend, weightsOf } from './tfjs-helpers.ts';

const isKernel = (name: string): boolean => /kernel(_\d+)?$/.test(name);
const muonAndAdamW = (lr: number | ((step: number) => number) = 0.01): Partition<TfMembers> =>
  partition((name) => (isKernel(name) ? 'muon' : 'rest'), { muon: new Muon({ lr: 0.02 }) as TfWrappable, rest: new AdamW({ lr }) as unknown as AnyOptimizer }) as unknown as Partition<TfMembers>;

/** 6 -> 8 (tanh) -> 3 with named layers, fixed weights: its variables are 'hidden/kernel', ... (plus a suffix when taken). */
function namedModel(): tf.Sequential {
  const model = tf.sequential({ layers: [tf.layers.dense({ name: 'hidden', inputShape: [6], units: 8, activation: 'tanh' }), tf.layers.dense({ name: 'out', units: 3 })] });
  model.setWeights(model.getWeights().map((w, i) => tf.fill(w.shape, 0.1 * (i + 1) - 0.25)));
  return model;
}

const root = fileURLToPath(new URL('..', import.meta.url));

describe('a saved partition whose variables carried a suffix trains on after loading', () => {
  for (const path of ['kernel', 'ops'] as const) {
    it(`path '${path}': 'hidden/kernel_1' saved, loaded as 'hidden/kernel_2' here and as 'hidden/kernel' in a fresh process: both continue bit for bit`, async () => {
      await useBackend('cpu');
      const first = namedModel(); // takes 'hidden/kernel'
      const model = namedModel();
      const savedName = (model.trainableWeights[0]!.read() as tf.Variable).name;
      assert.match(savedName, /^hidden\/kernel_\d+$/); // 'hidden/kernel_1' when this test runs first
      const opt = tfOptimizer(muonAndAdamW(), { path });
      model.compile({ optimizer: opt, loss: 'meanSquaredError' });
      const { xs, ys } = batches(8);
      const [x1, y1, x2, y2] = [xs.slice([0, 0], [32, -1]), ys.slice([0, 0], [32, -1]), xs.slice([32, 0], [32, -1]), ys.slice([32, 0], [32, -1])];
      await model.fit(x1, y1, { batchSize: 8, epochs: 1, shuffle: false, verbose: 0 });
      const artifacts = await saveArtifacts(model);
      const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
      const loadedName = (loaded.trainableWeights[0]!.read() as tf.Variable).name;
      assert.match(loadedName, /^hidden\/kernel_\d+$/);
      assert.notEqual(loadedName, savedName);
      await model.fit(x2, y2, { batchSize: 8, epochs: 1, shuffle: false, verbose: 0 });
      await loaded.fit(x2, y2, { batchSize: 8, epochs: 1, shuffle: false, verbose: 0 });
      const expected = weightsOf(model);
      assert.equal(bitDifferences(weightsOf(loaded), expected), 0);
      // A fresh process: the same artifacts, the same second half.
      const dir = mkdtempSync(join(tmpdir(), 'nesterov-partition-'));
      const file = join(dir, 'model.json');
      writeFileSync(file, JSON.stringify({ ...artifacts, weightData: Buffer.from(artifacts.weightData as ArrayBuffer).toString('base64') }));
      const script = `
        import { readFileSync } from 'node:fs';
        await import('nesterov/tfjs');
        const { tf, batches, useBackend, weightsOf } = await import(${JSON.stringify(join(root, 'test/tfjs-helpers.ts'))});
        await useBackend('cpu');
        const saved = JSON.parse(readFileSync(${JSON.stringify(file)}, 'utf8'));
        const bytes = Buffer.from(saved.weightData, 'base64');
        saved.weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
        const model = await tf.loadLayersModel(tf.io.fromMemory(saved));
        const { xs, ys } = batches(8);
        await model.fit(xs.slice([32, 0], [32, -1]), ys.slice([32, 0], [32, -1]), { batchSize: 8, epochs: 1, shuffle: false, verbose: 0 });
        process.stdout.write(JSON.stringify({ name: model.trainableWeights[0].read().name, weights: weightsOf(model).map((w) => Array.from(w)) }));`;
      const out = JSON.parse(execFileSync(process.execPath, ['--conditions=nesterov-source', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })) as { name: string; weights: number[][] };
      assert.equal(out.name, 'hidden/kernel');
      assert.equal(bitDifferences(out.weights.map((w) => Float32Array.from(w)), expected), 0);
      for (const m of [first, model, loaded]) m.dispose();
      loaded.optimizer.dispose();
      opt.dispose();
      tf.dispose([xs, ys, x1, y1, x2, y2]);
    });
  }
});

describe("a step one member refuses writes nothing in any member", () => {
  for (const backend of BACKENDS) {
    for (const path of ['kernel', 'ops'] as const) {
      it(`on ${backend}, path '${path}': the second member's lr schedule returns NaN at step 1: Muon's variables and every member's state stay`, async () => {
        await useBackend(backend);
        const model = namedModel();
        const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const { xs, ys } = batches(2);
        const opt = tfOptimizer(muonAndAdamW((step) => (step === 1 ? NaN : 0.01)), { path });
        opt.minimize(lossFn(model, xs, ys, 0), false, vars);
        const before = weightsOf(model);
        const state = await exportedBits(opt);
        assert.throws(() => opt.minimize(lossFn(model, xs, ys, 1), false, vars), (error: unknown) => {
          assert.ok(error instanceof UpdateError);
          assert.match(error.message, /the lr schedule of parameter '.*' returned NaN at step 1/);
          return true;
        });
        assert.equal(bitDifferences(weightsOf(model), before), 0);
        assert.deepEqual(await exportedBits(opt), state);
        assert.equal(opt.members.muon!.stepCount, 1);
        opt.dispose();
        model.dispose();
        tf.dispose([xs, ys]);
      });
    }
  }
});

describe("the kernel path: a member's core checks run before any member writes", () => {
  for (const backend of BACKENDS) {
    it(`on ${backend}: the second member's override matches no variable: the first step is refused, no variable moves, no member counts a step`, async () => {
      await useBackend(backend);
      const model = namedModel();
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { xs, ys } = batches(2);
      const members = partition((name) => (isKernel(name) ? 'muon' : 'rest'), {
        muon: new Muon({ lr: 0.02 }) as TfWrappable,
        rest: new AdamW({ lr: 0.01, overrides: [{ params: 'no such variable', weightDecay: 0 }] }) as unknown as AnyOptimizer,
      }) as unknown as Partition<TfMembers>;
      const opt = tfOptimizer(members, { path: 'kernel' });
      const before = weightsOf(model);
      assert.throws(() => opt.minimize(lossFn(model, xs, ys, 0), false, vars), (error: unknown) => {
        assert.ok(error instanceof UpdateError);
        assert.match(error.message, /overrides\[0\] matches no parameter/);
        return true;
      });
      assert.equal(bitDifferences(weightsOf(model), before), 0);
      assert.equal(opt.members.muon!.stepCount, 0);
      assert.equal(opt.members.rest!.stepCount, 0);
      opt.dispose();
      model.dispose();
      tf.dispose([xs, ys]);
    });
  }
});

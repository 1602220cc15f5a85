/**
 * nesterov/tfjs beyond TF.js's own optimizers: rules and options TF.js lacks equal our
 * core optimizer run on the same gradients (bit for bit on the kernel path), state round
 * trips through getWeights / setWeights, a skipped step changes nothing, bad calls
 * throw before writing, no tensor leaks, and 'nesterov' alone does not load TF.js.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  AdaGrad,
  Adam,
  AdamW,
  Momentum,
  NAdam,
  Nesterov,
  RMSProp,
  SGD,
  UpdateError,
  warmupCosineDecay,
  RAdam,
  Adamax,
  Adadelta,
  Rprop,
  type AnyOptimizer,
} from 'nesterov';
import { STATE_WEIGHT_NAME, TfOptimizer, tfOptimizer, type TfOptimizerOptions } from 'nesterov/tfjs';
import { BACKENDS, BATCH, batches, bitDifferences, exportedBits, saveAndLoad, lossFn, maxRelativeDifference, runAgainstCore, smallModel, tf, useBackend, weightsOf } from './tfjs-helpers.ts';

const STEPS = 12;

const schedule = warmupCosineDecay({ lr: 0.05, warmupSteps: 3, decaySteps: 10 });
const RULES_TFJS_LACKS: [string, () => AnyOptimizer, TfOptimizerOptions][] = [
  ['AdamW with a warmup-cosine schedule', () => new AdamW({ lr: schedule, weightDecay: 0.1 }) as unknown as AnyOptimizer, {}],
  ["AdamW 'book', amsgrad-free, bias excluded from decay by override", () => new AdamW({ lr: 0.02, variant: 'book', overrides: [{ params: /bias$/, weightDecay: 0 }] }) as unknown as AnyOptimizer, {}],
  ['Adam amsgrad, maximize', () => new Adam({ lr: 0.01, amsgrad: true, maximize: true }) as unknown as AnyOptimizer, {}],
  ['NAdam', () => new NAdam({ lr: 0.01 }) as unknown as AnyOptimizer, {}],
  ["Nesterov 'book'", () => new Nesterov({ lr: 0.02, variant: 'book' }) as unknown as AnyOptimizer, {}],
  ["Nesterov 'nag' with global-norm clipping 0.05", () => new Nesterov({ lr: 0.05 }) as unknown as AnyOptimizer, { clipGradNorm: 0.05 }],
  ["Momentum 'pytorch' with dampening and weight decay", () => new Momentum({ lr: 0.05, variant: 'pytorch', dampening: 0.3, weightDecay: 0.01 }) as unknown as AnyOptimizer, {}],
  ["RMSProp centered with momentum", () => new RMSProp({ lr: 0.005, centered: true, momentum: 0.5 }) as unknown as AnyOptimizer, {}],
  ["RMSProp 'book'", () => new RMSProp({ lr: 0.005, variant: 'book' }) as unknown as AnyOptimizer, {}],
  ["AdaGrad 'book'", () => new AdaGrad({ lr: 0.05, variant: 'book' }) as unknown as AnyOptimizer, {}],
  ['AdaGrad lrDecay', () => new AdaGrad({ lr: 0.05, lrDecay: 0.1 }) as unknown as AnyOptimizer, {}],
  ['SGD with a step-3 NaN skipped', () => new SGD({ lr: 0.05, nonFinite: 'skip' }) as unknown as AnyOptimizer, {}],
  // torch 1.13's remaining rules: 12 steps of RAdam cross its rho_t > 5 switch at step 6.
  ['RAdam with weight decay', () => new RAdam({ lr: 0.01, weightDecay: 0.01 }) as unknown as AnyOptimizer, {}],
  ['Adamax', () => new Adamax({ lr: 0.01 }) as unknown as AnyOptimizer, {}],
  ['Adadelta', () => new Adadelta({ lr: 1, rho: 0.9 }) as unknown as AnyOptimizer, {}],
  ['Rprop', () => new Rprop({ lr: 0.01 }) as unknown as AnyOptimizer, {}],
];

for (const backend of BACKENDS) {
  describe(`rules TF.js lacks, backend ${backend}: the adapter equals our core optimizer on the same gradients`, () => {
    for (const [name, make, options] of RULES_TFJS_LACKS) {
      const nanAt = name.includes('NaN') ? 3 : -1;
      it(`${name}: kernel path, bit for bit`, async () => {
        await useBackend(backend);
        const { adapter, core, opt, core_ } = runAgainstCore(make, { ...options, path: 'kernel' }, { steps: STEPS, nanAt });
        assert.equal(bitDifferences(adapter, core), 0);
        assert.equal(opt.stepCount, core_.stepCount);
        assert.equal(opt.skippedSteps, nanAt >= 0 ? 1 : 0);
        assert.equal(opt.iterations, STEPS);
        assert.deepEqual(opt.optimizer.stateDict(), core_.stateDict());
        opt.dispose();
      });
      it(`${name}: ops path, to float32 rounding`, async () => {
        await useBackend(backend);
        const { adapter, core, opt } = runAgainstCore(make, { ...options, path: 'ops' }, { steps: STEPS, nanAt });
        // A different order of float32 operations: a few ulps per step over 12 steps.
        assert.ok(maxRelativeDifference(adapter, core) <= 1e-5, `difference ${maxRelativeDifference(adapter, core)}`);
        assert.equal(opt.skippedSteps, nanAt >= 0 ? 1 : 0);
        opt.dispose();
      });
    }
  });
}

for (const backend of BACKENDS) {
  for (const path of ['kernel', 'ops'] as const) {
    describe(`state, backend ${backend}, path '${path}'`, () => {
      it('setWeights(getWeights()) into a fresh adapter continues bit for bit like an uninterrupted run', async () => {
        await useBackend(backend);
        const make = (): AnyOptimizer => new NAdam({ lr: warmupCosineDecay({ lr: 0.02, warmupSteps: 4, decaySteps: 20 }) }) as unknown as AnyOptimizer;
        const { xs, ys } = batches(STEPS);
        // Uninterrupted.
        const whole = smallModel();
        const wholeVars = whole.trainableWeights.map((w) => w.read() as tf.Variable);
        const a = tfOptimizer(make(), { path });
        for (let step = 0; step < STEPS; step++) a.minimize(lossFn(whole, xs, ys, step), false, wholeVars);
        // Interrupted after 5 steps: the state moves to a fresh adapter through its weights.
        const split = smallModel();
        const splitVars = split.trainableWeights.map((w) => w.read() as tf.Variable);
        const first = tfOptimizer(make(), { path });
        for (let step = 0; step < 5; step++) first.minimize(lossFn(split, xs, ys, step), false, splitVars);
        const saved = await first.getWeights();
        const names = saved.map((w) => w.name);
        assert.deepEqual(names, ['iter', ...splitVars.flatMap((v) => [`${v.name}/expAvg`, `${v.name}/expAvgSq`]), STATE_WEIGHT_NAME]);
        assert.deepEqual(saved[1]!.tensor.shape, splitVars[0]!.shape);
        const meta = JSON.parse(String(saved.at(-1)!.tensor.dataSync()[0])) as { optimizer: string; stepCount: number; params: { step: number; scalars: { muProduct: number } }[] };
        assert.equal(meta.optimizer, 'NAdam');
        assert.equal(meta.stepCount, 5);
        assert.equal(meta.params[0]!.step, 5);
        // muProduct after 5 steps: prod of 0.9 (1 - 0.5 * 0.96^(0.004 t)), t = 1..5, in double.
        let muProduct = 1;
        for (let t = 1; t <= 5; t++) muProduct *= 0.9 * (1 - 0.5 * 0.96 ** (t * 0.004));
        assert.equal(meta.params[0]!.scalars.muProduct, muProduct);
        const second = tfOptimizer(make(), { path });
        await second.setWeights(saved);
        first.dispose();
        assert.equal(second.iterations, 5);
        for (let step = 5; step < STEPS; step++) second.minimize(lossFn(split, xs, ys, step), false, splitVars);
        assert.equal(bitDifferences(weightsOf(split), weightsOf(whole)), 0);
        // The same state, the variables' names aside (each model has its own).
        const anonymous = (bits: Map<string, string>, vars: tf.Variable[]): string[] =>
          [...bits.values()].map((text) => vars.reduce((t, v, i) => t.replaceAll(`"${v.name}"`, `"variable ${i}"`), text));
        assert.deepEqual(anonymous(await exportedBits(second), splitVars), anonymous(await exportedBits(a), wholeVars));
        a.dispose();
        second.dispose();
        whole.dispose();
        split.dispose();
        tf.dispose([xs, ys]);
      });

      it('model.save with includeOptimizer and tf.loadLayersModel: the loaded model continues bit for bit', async () => {
        await useBackend(backend);
        const model = smallModel();
        const opt = tfOptimizer(new Adam({ lr: 0.01 }), { path });
        model.compile({ optimizer: opt, loss: 'meanSquaredError' });
        const { xs, ys } = batches(8);
        const half = (from: number) => [xs.slice([from * BATCH, 0], [4 * BATCH, -1]), ys.slice([from * BATCH, 0], [4 * BATCH, -1])] as const;
        const [x1, y1] = half(0);
        const [x2, y2] = half(4);
        await model.fit(x1, y1, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
        const loaded = await saveAndLoad(model);
        assert.ok(loaded.optimizer instanceof TfOptimizer);
        assert.equal(loaded.optimizer.iterations, 4);
        // In this process the loaded variables are renamed (..._1): the state follows them by position.
        assert.notEqual((loaded.trainableWeights[0]!.read() as tf.Variable).name, (model.trainableWeights[0]!.read() as tf.Variable).name);
        await model.fit(x2, y2, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
        await loaded.fit(x2, y2, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
        assert.equal(bitDifferences(weightsOf(loaded), weightsOf(model)), 0);
        assert.equal(loaded.optimizer.iterations, 8);
        loaded.optimizer.dispose();
        opt.dispose();
        loaded.dispose();
        model.dispose();
        tf.dispose([xs, ys, x1, y1, x2, y2]);
      });

      it("a NaN gradient with nonFinite 'skip' leaves every variable and the state unchanged", async () => {
        await useBackend(backend);
        const model = smallModel();
        const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const { xs, ys } = batches(3);
        const opt = tfOptimizer(new Adam({ lr: 0.01, nonFinite: 'skip' }), { path, clipGradNorm: 1 });
        for (let step = 0; step < 2; step++) opt.minimize(lossFn(model, xs, ys, step), false, vars);
        const before = weightsOf(model);
        const stateBefore = await exportedBits(opt);
        const grads: tf.NamedTensorMap = {};
        vars.forEach((v, i) => (grads[v.name] = i === 2 ? tf.tensor(Float32Array.from({ length: v.size }, (_, k) => (k === 1 ? NaN : 0.5)), v.shape) : tf.onesLike(v)));
        opt.applyGradients(grads);
        tf.dispose(grads);
        assert.equal(bitDifferences(weightsOf(model), before), 0);
        assert.equal(opt.skippedSteps, 1);
        assert.equal(opt.stepCount, 2);
        const stateAfter = await exportedBits(opt);
        // Only 'iter' (TF.js counts every applyGradients call) and the skip count moved.
        assert.equal(stateAfter.get('iter'), Buffer.from(Int32Array.of(3).buffer).toString('hex'));
        for (const [name, bits] of stateBefore) {
          if (name === 'iter') continue;
          if (name === STATE_WEIGHT_NAME) assert.equal(stateAfter.get(name), bits.replace('"skippedSteps":0', '"skippedSteps":1'));
          else assert.equal(stateAfter.get(name), bits, name);
        }
        opt.dispose();
        model.dispose();
        tf.dispose([xs, ys]);
      });

      it('a gradient for an unknown variable, or of another shape, throws before anything is written', async () => {
        await useBackend(backend);
        const w = tf.variable(tf.tensor([1, 2, 3, 4], [2, 2]), true, `w_${backend}_${path}`);
        const b = tf.variable(tf.tensor([5, 6]), true, `b_${backend}_${path}`);
        const opt = tfOptimizer(new Nesterov({ lr: 0.5 }), { path });
        opt.applyGradients({ [w.name]: tf.ones([2, 2]), [b.name]: tf.ones([2]) });
        const before = [w.dataSync().slice(), b.dataSync().slice()];
        const state = await exportedBits(opt);
        const g = tf.ones([2]);
        assert.throws(() => opt.applyGradients({ [b.name]: g, nope: g }), (e: unknown) => {
          assert.ok(e instanceof UpdateError);
          assert.equal(e.message, "NesterovOptimizer.applyGradients: gradient 'nope' has no variable of that name (tf.engine().registeredVariables)");
          assert.equal(e.param, 'nope');
          return true;
        });
        assert.throws(() => opt.applyGradients([{ name: b.name, tensor: g }, { name: w.name, tensor: tf.ones([4]) }]), (e: unknown) => {
          assert.ok(e instanceof UpdateError);
          assert.equal(e.message, `NesterovOptimizer.applyGradients: gradient '${w.name}' has shape [4], its variable has shape [2, 2]`);
          return true;
        });
        assert.throws(() => opt.applyGradients([{ name: b.name, tensor: g }, { name: b.name, tensor: g }]), {
          message: `NesterovOptimizer.applyGradients: two gradients for variable '${b.name}'`,
        });
        assert.deepEqual([w.dataSync().slice(), b.dataSync().slice()], before);
        assert.deepEqual(await exportedBits(opt), state);
        assert.equal(opt.iterations, 1);
        opt.dispose();
        tf.dispose([w, b, g]);
      });

      it('a variable changed between steps is read again: no stale copy wins', async () => {
        await useBackend(backend);
        const v = tf.variable(tf.tensor([1, 2, 3]), true, `changed_${backend}_${path}`);
        const opt = tfOptimizer(new SGD({ lr: 0.5 }), { path });
        const g = tf.tensor([0.25, 0.5, 1]);
        opt.applyGradients({ [v.name]: g }); // [0.875, 1.75, 2.5]
        assert.deepEqual(Array.from(v.dataSync()), [0.875, 1.75, 2.5]);
        v.assign(tf.tensor([10, 20, 30]));
        opt.applyGradients([{ name: v.name, tensor: g }]); // from the assigned value: 10 - 0.125, ...
        assert.deepEqual(Array.from(v.dataSync()), [9.875, 19.75, 29.5]);
        const kept = v.clone(); // shares the variable's data: it must not change with the next step
        opt.applyGradients({ [v.name]: g });
        assert.deepEqual(Array.from(v.dataSync()), [9.75, 19.5, 29]);
        assert.deepEqual(Array.from(kept.dataSync()), [9.875, 19.75, 29.5]);
        kept.dispose();
        opt.dispose();
        tf.dispose([v, g]);
      });

      it('1,000 steps leak no tensor; dispose frees every tensor the optimizer made', async () => {
        await useBackend(backend);
        const vars = [tf.variable(tf.zeros([4, 3]), true, `leak_w_${backend}_${path}`), tf.variable(tf.zeros([3]), true, `leak_b_${backend}_${path}`)];
        const grads = { [vars[0]!.name]: tf.fill([4, 3], 0.01), [vars[1]!.name]: tf.fill([3], -0.01) };
        const baseline = tf.memory().numTensors;
        const opt = tfOptimizer(new Adam({ lr: 0.001, nonFinite: 'skip' }), { path, clipGradNorm: 10 });
        opt.applyGradients(grads);
        const afterFirst = tf.memory().numTensors;
        for (let i = 1; i < 1000; i++) opt.applyGradients(grads);
        assert.equal(tf.memory().numTensors, afterFirst);
        await opt.getWeights();
        await opt.getWeights();
        opt.dispose();
        assert.equal(tf.memory().numTensors, baseline);
        assert.equal(opt.iterations, 1000);
        tf.dispose([...vars, ...Object.values(grads)]);
      });
    });
  }
}

describe('the adapter as a TF.js serializable', () => {
  it('getConfig / fromConfig through the registered class name make the same optimizer', () => {
    const opt = tfOptimizer(new AdamW({ lr: 0.003, weightDecay: 0.05, beta2: 0.99, nonFinite: 'skip' }), { clipGradNorm: 2, path: 'kernel' });
    assert.equal(opt.getClassName(), 'NesterovOptimizer');
    const config = opt.getConfig();
    assert.deepEqual(config, {
      optimizer: 'AdamW',
      options: { lr: 0.003, weightDecay: 0.05, decoupledWeightDecay: true, maximize: false, beta1: 0.9, beta2: 0.99, eps: 1e-8, amsgrad: false, variant: 'pytorch', nonFinite: 'skip' },
      lrSchedule: false,
      path: 'kernel',
      clipGradNorm: 2,
    });
    // What tfjs-layers does to deserialize a registered class: [constructor, fromConfig].
    const registered = tf.serialization.SerializationMap.getMap().classNameMap['NesterovOptimizer'];
    assert.ok(registered !== undefined);
    const [cls, fromConfig] = registered;
    assert.equal(cls, TfOptimizer);
    const copy = fromConfig(cls, config) as unknown as TfOptimizer;
    assert.ok(copy instanceof TfOptimizer);
    assert.ok(copy.optimizer instanceof AdamW);
    assert.deepEqual(copy.getConfig(), config);
    assert.deepEqual(copy.optimizer.defaults, opt.optimizer.defaults);
  });

  it('refuses what it cannot use, naming it', () => {
    assert.throws(() => tfOptimizer({} as AnyOptimizer), { message: 'tfOptimizer: optimizer must be an optimizer of this library (new Nesterov(), new Adam(), ..., or EMA, SWA, GradientAccumulation, Lookahead around one), got an object' });
    assert.throws(() => tfOptimizer(new SGD(), { path: 'gpu' as 'ops' }), { message: `tfOptimizer: invalid path: "gpu" (expected 'auto', 'kernel' or 'ops')` });
    assert.throws(() => tfOptimizer(new SGD(), { clipGradNorm: -1 }), { message: 'tfOptimizer: invalid clipGradNorm: -1 (expected a finite number >= 0)' });
    assert.throws(() => tfOptimizer(new SGD(), { clipNorm: 1 } as TfOptimizerOptions), { message: `tfOptimizer: invalid option: "clipNorm" (expected 'path' or 'clipGradNorm')` });
  });
});

describe('TF.js stays optional', () => {
  it("importing 'nesterov' (and 'nesterov/node') loads no TF.js module; 'nesterov/tfjs' does", () => {
    const probe = (specifier: string): string =>
      execFileSync(process.execPath, ['--conditions=nesterov-source', '--import', 'tsx', '--input-type=module', '-e',
        `import { createRequire } from 'node:module';
         await import('${specifier}');
         const loaded = Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes('@tensorflow'));
         process.stdout.write(JSON.stringify({ loaded, engine: globalThis._tfengine !== undefined }));`], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    assert.equal(probe('nesterov'), '{"loaded":false,"engine":false}');
    assert.equal(probe('nesterov/node'), '{"loaded":false,"engine":false}');
    assert.equal(probe('nesterov/tfjs'), '{"loaded":true,"engine":true}');
  });

  it('no file of src/ outside src/tfjs imports TF.js', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (path !== join('src', 'tfjs')) walk(path);
        } else if (/\.ts$/.test(entry.name) && /from '@tensorflow\//.test(readFileSync(path, 'utf8'))) offenders.push(path);
      }
    };
    walk('src');
    assert.deepEqual(offenders, []);
  });
});

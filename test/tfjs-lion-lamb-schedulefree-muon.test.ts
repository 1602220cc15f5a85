/**
 * nesterov/tfjs for the rules of issue 13: Lion, LAMB, Schedule-Free SGD and AdamW, Muon.
 *
 * What is compared with what: each rule's core optimizer is checked against independent
 * fixtures elsewhere (test/reference-lion-lamb, schedulefree, muon). Here the adapter,
 * stepped through TF.js (applyGradients with the gradients of a small model), must equal
 * that core optimizer run on a float32 ParamStore with the same gradients read out of
 * TF.js: bit for bit on the 'kernel' path (the same kernels on the same float32 values),
 * and within a stated tolerance on the 'ops' path (TF.js's float32 tensor ops in another
 * order, see each case). A few facts are also derived by hand: LAMB's trust ratio is per
 * variable, Schedule-Free's x is the average of the z iterates (the paper's definition).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdamW, LAMB, Lion, Muon, ParamStore, ScheduleFreeAdamW, ScheduleFreeSGD, UpdateError, partition, Adam, type AnyOptimizer, type Partition } from 'nesterov';
import { TfOptimizer, TfPartition, tfOptimizer, type TfMembers, type TfOptimizerOptions, type TfWrappable } from 'nesterov/tfjs';
import { BACKENDS, batches, bitDifferences, exportedBits, saveAndLoad, lossFn, maxRelativeDifference, runAgainstCore, smallModel, tf, useBackend, weightsOf } from './tfjs-helpers.ts';

const STEPS = 12;

interface Case {
  name: string;
  make: () => TfWrappable;
  /** Matrices only (Muon). */
  useBias?: boolean;
  /** The largest |ops - core| / (1 + |core|) after STEPS steps, and why. */
  opsTolerance: number;
}

const CASES: Case[] = [
  // Every element moves by exactly lr (or 0): float32 rounding of c = beta1 m + (1 - beta1) g
  // can only matter where c is within an ulp of 0, which these gradients never are; m's
  // rounding (a few ulps) feeds only the sign. So the ops path agrees to the weight
  // decay's rounding: a few ulps of the weights (measured: equal, bit for bit).
  { name: 'Lion with decoupled weight decay', make: () => new Lion({ lr: 0.003, weightDecay: 0.5 }) as unknown as AnyOptimizer, opsTolerance: 1e-6 },
  { name: 'Lion, beta1 0.8, maximize', make: () => new Lion({ lr: 0.003, beta1: 0.8, maximize: true }) as unknown as AnyOptimizer, opsTolerance: 1e-6 },
  // Adam's normalised update (ulps) times the trust ratio, whose norms TF.js sums in
  // float32 and we in double (relative error <= n * 2^-24 = 3e-6 for the 48-element
  // matrix): a step moves a weight by lr ||p|| ~ 1e-2, so it differs by < 3e-8, and 12
  // steps by < 1e-6 (measured 2.3e-8).
  { name: 'LAMB with weight decay', make: () => new LAMB({ lr: 0.01, weightDecay: 0.01 }) as unknown as AnyOptimizer, opsTolerance: 1e-6 },
  // Schedule-Free: the scalars (c, lr_k, lrMax, weightSum) are the same doubles on both
  // paths; y and z are float32 ops in another order: ulps of the step per step, so well
  // under 1e-6 after 12 steps (measured: SGD equal, AdamW 2.4e-8).
  { name: 'ScheduleFreeSGD with warmup and weight decay', make: () => new ScheduleFreeSGD({ lr: 0.5, warmupSteps: 3, weightDecay: 0.01 }) as unknown as AnyOptimizer, opsTolerance: 1e-6 },
  { name: 'ScheduleFreeAdamW with warmup, r 1, weight decay', make: () => new ScheduleFreeAdamW({ lr: 0.02, warmupSteps: 4, r: 1, weightDecay: 0.01 }) as unknown as AnyOptimizer, opsTolerance: 1e-6 },
  // Muon: five quintic steps of float32 matrix products summed in another order (TF.js's
  // matMul against our register-blocked wasm kernels): the quintic amplifies rounding
  // (its slope at 0 is 3.4), ~1e-6 relative in X per step, and a weight moves by
  // lr * X ~ 1e-2 per step: < 1e-5 after 12 steps (measured 2.4e-7).
  { name: 'Muon (nesterov) with weight decay', make: () => new Muon({ lr: 0.02, weightDecay: 0.1 }), useBias: false, opsTolerance: 1e-5 },
  { name: 'Muon, plain momentum, 3 Newton-Schulz steps', make: () => new Muon({ lr: 0.02, nesterov: false, nsSteps: 3 }), useBias: false, opsTolerance: 1e-5 },
];

for (const backend of BACKENDS) {
  describe(`issue 13's rules, backend ${backend}: the adapter equals our core optimizer on the same gradients`, () => {
    for (const c of CASES) {
      it(`${c.name}: kernel path, bit for bit, and the same state`, async () => {
        await useBackend(backend);
        const { adapter, core, opt, core_ } = runAgainstCore(c.make, { path: 'kernel' }, { steps: STEPS, useBias: c.useBias });
        // The weights moved (not two untouched models).
        assert.ok(maxRelativeDifference(adapter, weightsOf(smallModel(1, c.useBias ?? true))) > 1e-3);
        assert.equal(bitDifferences(adapter, core), 0);
        assert.equal(opt.stepCount, STEPS);
        assert.equal(opt.iterations, STEPS);
        assert.deepEqual(opt.optimizer.stateDict(), core_.stateDict());
        opt.dispose();
      });
      it(`${c.name}: ops path, within ${c.opsTolerance}`, async () => {
        await useBackend(backend);
        const { adapter, core, opt } = runAgainstCore(c.make, { path: 'ops' }, { steps: STEPS, useBias: c.useBias });
        const difference = maxRelativeDifference(adapter, core);
        assert.ok(difference <= c.opsTolerance, `difference ${difference} > ${c.opsTolerance}`);
        assert.equal(opt.stepCount, STEPS);
        opt.dispose();
      });
    }
  });
}

describe("LAMB's trust ratio is per variable (hand-derived first step)", () => {
  // First step, g = [1, 0]: bias-corrected m = g and v = g^2, so u = g / (|g| + eps) =
  // [1 / (1 + 1e-6), 0] (0 / (0 + eps) = 0), and the ratio ||p|| / ||u|| makes the step
  // -lr ||p|| u / ||u|| = -lr ||p|| [1, 0]: p1 = [3, 4] (norm 5) -> [3 - 5 lr, 4],
  // p2 = [0.6, 0.8] (norm 1) -> [0.6 - lr, 0.8]. One ratio over both variables
  // (norm sqrt(26) / sqrt(2)) would move both first elements by 0.361 at lr 0.1.
  for (const backend of BACKENDS) {
    for (const path of ['kernel', 'ops'] as const) {
      it(`on ${backend}, path '${path}': [3, 4] -> [2.5, 4] and [0.6, 0.8] -> [0.5, 0.8] at lr 0.1`, async () => {
        await useBackend(backend);
        const p1 = tf.variable(tf.tensor([3, 4]), true, `lamb_p1_${backend}_${path}`);
        const p2 = tf.variable(tf.tensor([0.6, 0.8]), true, `lamb_p2_${backend}_${path}`);
        const opt = tfOptimizer(new LAMB({ lr: 0.1 }), { path });
        const g = tf.tensor([1, 0]);
        opt.applyGradients({ [p1.name]: g, [p2.name]: g });
        const close = (got: Float32Array, expected: number[]): void =>
          expected.forEach((x, i) => assert.ok(Math.abs(got[i]! - x) <= 1e-6 * (1 + Math.abs(x)), `${got[i]} vs ${x}`));
        close(p1.dataSync() as Float32Array, [2.5, 4]);
        close(p2.dataSync() as Float32Array, [0.5, 0.8]);
        opt.dispose();
        tf.dispose([p1, p2, g]);
      });
    }
  }
});

describe('Schedule-Free: eval() and train() on the adapter', () => {
  for (const backend of BACKENDS) {
    for (const [name, make] of [
      ['ScheduleFreeSGD', () => new ScheduleFreeSGD({ lr: 0.5, warmupSteps: 3, weightDecay: 0.01 })],
      ['ScheduleFreeAdamW', () => new ScheduleFreeAdamW({ lr: 0.02, warmupSteps: 4, weightDecay: 0.01 })],
    ] as const) {
      it(`${name} on ${backend}, kernel path: eval after 5 steps and at the end equals the core's eval bit for bit; train returns to y`, async () => {
        await useBackend(backend);
        let evaluated = 0;
        const { adapter, core } = runAgainstCore(make as () => AnyOptimizer, { path: 'kernel' }, {
          steps: STEPS,
          after: (step, opt, core, model, store) => {
            if (step !== 4 && step !== STEPS - 1) return;
            const sfCore = core as unknown as ScheduleFreeSGD;
            const y = weightsOf(model);
            assert.equal(opt.mode, 'train');
            opt.eval();
            sfCore.eval(store.params);
            assert.equal(opt.mode, 'eval');
            const x = weightsOf(model);
            assert.ok(maxRelativeDifference(x, y) > 1e-4); // x is not y
            assert.equal(bitDifferences(x, store.names.map((n) => store.params[n]!)), 0);
            opt.eval(); // in eval mode already: nothing moves
            assert.equal(bitDifferences(weightsOf(model), x), 0);
            if (step === STEPS - 1) return; // end in eval mode
            opt.train();
            sfCore.train(store.params);
            assert.equal(opt.mode, 'train');
            // Back to y within float32 rounding of the two lerps (a few ulps).
            assert.ok(maxRelativeDifference(weightsOf(model), y) <= 1e-6);
            assert.equal(bitDifferences(weightsOf(model), store.names.map((n) => store.params[n]!)), 0);
            evaluated += 1;
          },
        });
        assert.equal(evaluated, 1);
        assert.equal(bitDifferences(adapter, core), 0); // both end in eval mode, at x
      });

      it(`${name} on ${backend}, ops path: eval / train within float32 rounding of the core's`, async () => {
        await useBackend(backend);
        const { adapter, core, opt } = runAgainstCore(make as () => AnyOptimizer, { path: 'ops' }, {
          steps: STEPS,
          after: (step, opt, core, model, store) => {
            if (step !== 4 && step !== STEPS - 1) return;
            const y = weightsOf(model);
            opt.eval();
            (core as unknown as ScheduleFreeSGD).eval(store.params);
            assert.equal(opt.mode, 'eval');
            assert.ok(maxRelativeDifference(weightsOf(model), store.names.map((n) => store.params[n]!)) <= 1e-5);
            if (step === STEPS - 1) return;
            opt.train();
            (core as unknown as ScheduleFreeSGD).train(store.params);
            assert.ok(maxRelativeDifference(weightsOf(model), y) <= 1e-6);
          },
        });
        assert.ok(maxRelativeDifference(adapter, core) <= 1e-5);
        assert.equal(opt.mode, 'eval');
        const meta = JSON.parse(String((await opt.getWeights()).at(-1)!.tensor.dataSync()[0])) as { params: { scalars: { trainMode: number } }[] };
        assert.deepEqual(meta.params.map((p) => p.scalars.trainMode), [0, 0, 0, 0]);
        opt.dispose();
      });
    }
  }

  it('x is the average of the z iterates (the paper\'s definition; constant lr, r 0: equal weights)', async () => {
    // With warmupSteps 0, r 0 and a constant lr, every weight is lr^2: c_k = 1 / (k + 1) and
    // x_T = (z_1 + ... + z_T) / T, z_t the z after step t. z is read from the state after
    // each step and averaged in double; x comes out of eval() in float32.
    await useBackend('cpu');
    const zs: Float32Array[][] = [];
    let x: Float32Array[] = [];
    runAgainstCore(() => new ScheduleFreeSGD({ lr: 0.3 }) as unknown as AnyOptimizer, { path: 'kernel' }, {
      steps: 8,
      after: (step, opt, _core, model) => {
        const ours = opt.optimizer as unknown as ScheduleFreeSGD;
        zs.push(model.trainableWeights.map((w) => Float32Array.from(ours.stateOf((w.read() as tf.Variable).name)!.z)));
        if (step === 7) {
          opt.eval();
          x = weightsOf(model);
        }
      },
    });
    const mean = x.map((array, k) => Float64Array.from(array, (_, i) => zs.reduce((sum, z) => sum + z[k]![i]!, 0) / zs.length));
    x.forEach((array, k) => array.forEach((value, i) => assert.ok(Math.abs(value - mean[k]![i]!) <= 1e-6 * (1 + Math.abs(mean[k]![i]!)), `${value} vs ${mean[k]![i]}`)));
    // And x is not simply the last z.
    assert.ok(maxRelativeDifference(x, zs.at(-1)!) > 1e-4);
  });

  for (const backend of BACKENDS) {
    for (const path of ['kernel', 'ops'] as const) {
      it(`on ${backend}, path '${path}': applyGradients in eval mode throws, saying so, and changes nothing`, async () => {
        await useBackend(backend);
        const model = smallModel();
        const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const { xs, ys } = batches(3);
        const opt = tfOptimizer(new ScheduleFreeAdamW({ lr: 0.01 }), { path });
        for (let step = 0; step < 2; step++) opt.minimize(lossFn(model, xs, ys, step), false, vars);
        opt.eval();
        const before = weightsOf(model);
        const state = await exportedBits(opt);
        const grads: tf.NamedTensorMap = Object.fromEntries(vars.map((v) => [v.name, tf.onesLike(v)]));
        assert.throws(() => opt.applyGradients(grads), (e: unknown) => {
          assert.ok(e instanceof UpdateError);
          assert.equal(e.message, 'NesterovOptimizer.applyGradients: the ScheduleFreeAdamW optimizer is in eval mode (the variables hold the average x, not y): call train() before applyGradients');
          return true;
        });
        assert.equal(bitDifferences(weightsOf(model), before), 0);
        assert.deepEqual(await exportedBits(opt), state);
        assert.equal(opt.iterations, 2);
        assert.equal(opt.mode, 'eval');
        // After train() the same call steps.
        opt.train();
        opt.applyGradients(grads);
        assert.equal(opt.iterations, 3);
        assert.equal(opt.stepCount, 3);
        tf.dispose(grads);
        opt.dispose();
        model.dispose();
        tf.dispose([xs, ys]);
      });

      it(`on ${backend}, path '${path}': saved in eval mode, a fresh adapter loads eval mode and, after train(), continues bit for bit`, async () => {
        await useBackend(backend);
        const make = (): ScheduleFreeSGD => new ScheduleFreeSGD({ lr: 0.3, warmupSteps: 2 });
        const { xs, ys } = batches(STEPS);
        const whole = smallModel();
        const wholeVars = whole.trainableWeights.map((w) => w.read() as tf.Variable);
        const a = tfOptimizer(make(), { path });
        for (let step = 0; step < STEPS; step++) {
          a.minimize(lossFn(whole, xs, ys, step), false, wholeVars);
          if (step === 4) {
            a.eval();
            a.train();
          }
        }
        const split = smallModel();
        const splitVars = split.trainableWeights.map((w) => w.read() as tf.Variable);
        const first = tfOptimizer(make(), { path });
        for (let step = 0; step < 5; step++) first.minimize(lossFn(split, xs, ys, step), false, splitVars);
        first.eval(); // the model now holds x: its weights and the optimizer's are saved together
        const saved = await first.getWeights();
        assert.deepEqual(saved.map((w) => w.name), ['iter', ...splitVars.map((v) => `${v.name}/z`), 'nesterov/state']);
        const second = tfOptimizer(make(), { path });
        await second.setWeights(saved);
        first.dispose();
        assert.equal(second.mode, 'eval');
        second.train();
        for (let step = 5; step < STEPS; step++) second.minimize(lossFn(split, xs, ys, step), false, splitVars);
        assert.equal(bitDifferences(weightsOf(split), weightsOf(whole)), 0);
        a.dispose();
        second.dispose();
        whole.dispose();
        split.dispose();
        tf.dispose([xs, ys]);
      });
    }
  }

  it('eval / train on another rule is refused, naming it; mode is undefined', () => {
    const opt = tfOptimizer(new Lion());
    assert.equal(opt.mode, undefined);
    assert.throws(() => opt.eval(), { name: 'TypeError', message: 'NesterovOptimizer.eval: only Schedule-Free optimizers (ScheduleFreeSGD, ScheduleFreeAdamW) have a train and an eval mode; this one runs Lion' });
    assert.throws(() => opt.train(), { name: 'TypeError', message: 'NesterovOptimizer.train: only Schedule-Free optimizers (ScheduleFreeSGD, ScheduleFreeAdamW) have a train and an eval mode; this one runs Lion' });
  });

  // The core's eval() reports a moved value that is NaN or Infinity (test/schedulefree);
  // the adapter must too, on both paths, with the same error: momentum 5e-324 makes eval's
  // weight 1 - 1/beta = -Infinity, and -Infinity * (z - y) is NaN where z = y (both
  // elements: y - z = beta (x - z) rounds to 0). The ops path used to move silently.
  for (const backend of BACKENDS) {
    for (const path of ['kernel', 'ops'] as const) {
      it(`on ${backend}, path '${path}': an eval that writes NaN throws the core's UpdateError naming the variable; moved, and the mode is eval`, async () => {
        await useBackend(backend);
        const name = `sf_nan_${backend}_${path}`;
        const w = tf.variable(tf.tensor([0, 0]), true, name);
        const opt = tfOptimizer(new ScheduleFreeSGD({ lr: 0.1, momentum: 5e-324 }), { path });
        for (let step = 0; step < 2; step++) opt.applyGradients({ [name]: tf.tensor([1, 0]) });
        assert.throws(() => opt.eval(), (e: unknown) => {
          assert.ok(e instanceof UpdateError);
          assert.equal(e.message, `ScheduleFreeSGD.eval: parameter '${name}' became non-finite (beta 5e-324): the parameters were moved and the mode is now 'eval'`);
          assert.equal(e.param, name);
          return true;
        });
        const values = w.dataSync();
        assert.ok(Number.isNaN(values[0]) && Number.isNaN(values[1]), `${values}`);
        assert.equal(opt.mode, 'eval');
        opt.dispose();
        w.dispose();
      });
    }
  }

  it('eval refuses, before moving anything, when a variable with state was disposed', async () => {
    await useBackend('cpu');
    const keep = tf.variable(tf.tensor([1, 2]), true, 'sf_keep');
    const gone = tf.variable(tf.tensor([3]), true, 'sf_gone');
    const opt = tfOptimizer(new ScheduleFreeSGD({ lr: 0.1 }), { path: 'kernel' });
    opt.applyGradients({ sf_keep: tf.tensor([1, 1]), sf_gone: tf.tensor([1]) });
    opt.applyGradients({ sf_keep: tf.tensor([1, -1]), sf_gone: tf.tensor([1]) });
    gone.dispose();
    const before = keep.dataSync().slice();
    assert.throws(() => opt.eval(), (e: unknown) => {
      assert.ok(e instanceof UpdateError);
      assert.equal(e.message, "NesterovOptimizer.eval: variable 'sf_gone' has optimizer state but is not registered any more (disposed?): eval moves every variable the optimizer has updated");
      assert.equal(e.param, 'sf_gone');
      return true;
    });
    assert.deepEqual(keep.dataSync(), before);
    assert.equal(opt.mode, 'train');
    opt.dispose();
    keep.dispose();
  });
});

describe('Muon in TF.js', () => {
  for (const backend of BACKENDS) {
    for (const path of ['kernel', 'ops'] as const) {
      it(`on ${backend}, path '${path}': a variable that is not 2-D is refused, naming it and its shape, and nothing changes`, async () => {
        await useBackend(backend);
        const model = smallModel(); // with biases
        const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const before = weightsOf(model);
        const opt = tfOptimizer(new Muon(), { path });
        const grads: tf.NamedTensorMap = Object.fromEntries(vars.map((v) => [v.name, tf.onesLike(v)]));
        const bias = vars[1]!.name;
        assert.throws(() => opt.applyGradients(grads), (e: unknown) => {
          assert.ok(e instanceof UpdateError);
          assert.equal(e.message, `NesterovOptimizer.applyGradients: variable '${bias}' has shape [8]: Muon updates 2-D variables only (give '${bias}' to another optimizer: tfOptimizer(partition(assign, { muon, adamw })))`);
          assert.equal(e.param, bias);
          return true;
        });
        assert.equal(bitDifferences(weightsOf(model), before), 0);
        assert.equal(opt.iterations, 0);
        assert.equal(opt.stepCount, 0);
        assert.deepEqual((await opt.getWeights()).map((w) => w.name), ['iter', 'nesterov/state']);
        tf.dispose(grads);
        opt.dispose();
        model.dispose();
      });
    }

    it(`on ${backend}: Muon for the matrices and AdamW for the biases, as two adapters, equal our partition() on the same gradients`, async () => {
      // Without tfOptimizer(partition(...)) (below), the same split in a loop of one's own:
      // one gradient computation and one applyGradients per adapter, each with its variables.
      await useBackend(backend);
      const model = smallModel();
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const matrices = new Set([vars[0]!.name, vars[2]!.name]);
      const { xs, ys } = batches(STEPS);
      const muon = tfOptimizer(new Muon({ lr: 0.02 }), { path: 'kernel' });
      const adamw = tfOptimizer(new AdamW({ lr: 0.01, weightDecay: 0.01 }), { path: 'kernel' });
      const core = partition((name) => (matrices.has(name) ? 'muon' : 'adamw'), { muon: new Muon({ lr: 0.02 }), adamw: new AdamW({ lr: 0.01, weightDecay: 0.01 }) });
      const store = new ParamStore(Object.fromEntries(vars.map((v) => [v.name, v.shape])), { stateBuffers: [core] });
      for (const v of vars) store.params[v.name]!.set(v.dataSync());
      for (let step = 0; step < STEPS; step++) {
        const { value, grads } = tf.variableGrads(lossFn(model, xs, ys, step), vars);
        value.dispose();
        for (const v of vars) store.grads[v.name]!.set(grads[v.name]!.dataSync());
        core.update(store.params, store.grads);
        muon.applyGradients(Object.fromEntries(Object.entries(grads).filter(([name]) => matrices.has(name))));
        adamw.applyGradients(Object.fromEntries(Object.entries(grads).filter(([name]) => !matrices.has(name))));
        tf.dispose(grads);
      }
      assert.equal(bitDifferences(weightsOf(model), vars.map((v) => store.params[v.name]!)), 0);
      assert.deepEqual(muon.optimizer.stateDict(), core.members.muon.stateDict());
      assert.deepEqual(adamw.optimizer.stateDict(), core.members.adamw.stateDict());
      muon.dispose();
      adamw.dispose();
      model.dispose();
      tf.dispose([xs, ys]);
    });
  }
});

describe('state and config of the new rules', () => {
  const ROUND_TRIPS: [string, () => TfWrappable, boolean][] = [
    ['Lion', () => new Lion({ lr: 0.003, weightDecay: 0.1 }) as unknown as AnyOptimizer, true],
    ['LAMB', () => new LAMB({ lr: 0.01 }) as unknown as AnyOptimizer, true],
    ['ScheduleFreeSGD', () => new ScheduleFreeSGD({ lr: 0.3, warmupSteps: 3 }) as unknown as AnyOptimizer, true],
    ['ScheduleFreeAdamW', () => new ScheduleFreeAdamW({ lr: 0.01, warmupSteps: 3 }) as unknown as AnyOptimizer, true],
    ['Muon', () => new Muon({ lr: 0.02 }), false],
  ];
  for (const backend of BACKENDS) {
    for (const path of ['kernel', 'ops'] as const) {
      for (const [name, make, useBias] of ROUND_TRIPS) {
        it(`${name} on ${backend}, path '${path}': setWeights(getWeights()) into a fresh adapter continues bit for bit`, async () => {
          await useBackend(backend);
          const { xs, ys } = batches(STEPS);
          const whole = smallModel(1, useBias);
          const wholeVars = whole.trainableWeights.map((w) => w.read() as tf.Variable);
          const a = tfOptimizer(make(), { path });
          for (let step = 0; step < STEPS; step++) a.minimize(lossFn(whole, xs, ys, step), false, wholeVars);
          const split = smallModel(1, useBias);
          const splitVars = split.trainableWeights.map((w) => w.read() as tf.Variable);
          const first = tfOptimizer(make(), { path });
          for (let step = 0; step < 5; step++) first.minimize(lossFn(split, xs, ys, step), false, splitVars);
          const saved = await first.getWeights();
          const meta = JSON.parse(String(saved.at(-1)!.tensor.dataSync()[0])) as { optimizer: string; stepCount: number };
          assert.equal(meta.optimizer, name);
          assert.equal(meta.stepCount, 5);
          const second = tfOptimizer(make(), { path });
          await second.setWeights(saved);
          first.dispose();
          assert.equal(second.iterations, 5);
          for (let step = 5; step < STEPS; step++) second.minimize(lossFn(split, xs, ys, step), false, splitVars);
          assert.equal(bitDifferences(weightsOf(split), weightsOf(whole)), 0);
          assert.ok(maxRelativeDifference(weightsOf(split), weightsOf(smallModel(1, useBias))) > 1e-3);
          a.dispose();
          second.dispose();
          whole.dispose();
          split.dispose();
          tf.dispose([xs, ys]);
        });
      }
    }
  }

  // The defaults are the papers' and reference codes' (see each rule's file): Lion beta1 0.9;
  // LAMB optax's eps 1e-6; Schedule-Free r 0, weightLrPower 2, momentum / beta1 0.9, AdamW
  // eps 1e-8; Muon momentum 0.95, nesterov, 5 steps.
  const CONFIGS: [TfWrappable, TfOptimizerOptions, object][] = [
    [new Lion({ lr: 3e-4, weightDecay: 0.1, beta2: 0.98 }) as unknown as AnyOptimizer, {}, { lr: 3e-4, weightDecay: 0.1, decoupledWeightDecay: true, maximize: false, beta1: 0.9, beta2: 0.98, nonFinite: 'error' }],
    [new LAMB({ lr: 0.002, nonFinite: 'skip' }) as unknown as AnyOptimizer, { clipGradNorm: 1 }, { lr: 0.002, weightDecay: 0, decoupledWeightDecay: false, maximize: false, beta1: 0.9, beta2: 0.999, eps: 1e-6, nonFinite: 'skip' }],
    [new ScheduleFreeSGD({ lr: 2, warmupSteps: 10, momentum: 0.8 }) as unknown as AnyOptimizer, {}, { lr: 2, weightDecay: 0, decoupledWeightDecay: false, maximize: false, warmupSteps: 10, r: 0, weightLrPower: 2, momentum: 0.8, nonFinite: 'error' }],
    [new ScheduleFreeAdamW({ lr: 0.001, r: 1, weightDecay: 0.05 }) as unknown as AnyOptimizer, { path: 'ops' }, { lr: 0.001, weightDecay: 0.05, decoupledWeightDecay: false, maximize: false, warmupSteps: 0, r: 1, weightLrPower: 2, beta1: 0.9, beta2: 0.999, eps: 1e-8, nonFinite: 'error' }],
    [new Muon({ lr: 0.01, nsSteps: 4, weightDecay: 0.1 }), {}, { lr: 0.01, momentum: 0.95, nesterov: true, nsSteps: 4, weightDecay: 0.1, maximize: false, nonFinite: 'error' }],
  ];
  for (const [ours, adapterOptions, expected] of CONFIGS) {
    const name = (ours as { constructor: { name: string } }).constructor.name;
    it(`${name}: getConfig holds its options; fromConfig through the registered class makes the same optimizer`, () => {
      const opt = tfOptimizer(ours, adapterOptions);
      const config = opt.getConfig();
      assert.deepEqual(config, {
        optimizer: name,
        options: expected,
        lrSchedule: false,
        path: adapterOptions.path ?? 'auto',
        ...(adapterOptions.clipGradNorm !== undefined ? { clipGradNorm: adapterOptions.clipGradNorm } : {}),
      });
      const [cls, fromConfig] = tf.serialization.SerializationMap.getMap().classNameMap['NesterovOptimizer']!;
      const copy = fromConfig(cls, config) as unknown as TfOptimizer;
      assert.ok(copy instanceof TfOptimizer);
      assert.equal(copy.optimizer.constructor, ours.constructor);
      assert.deepEqual(copy.optimizer.defaults, ours.defaults);
      assert.deepEqual(copy.getConfig(), config);
    });
  }
});

describe('no tensor leaks with the new rules', () => {
  const LEAK_RULES: [string, () => TfWrappable][] = [
    ['Lion', () => new Lion({ lr: 1e-3 }) as unknown as AnyOptimizer],
    ['LAMB', () => new LAMB({ lr: 1e-3 }) as unknown as AnyOptimizer],
    ['ScheduleFreeSGD', () => new ScheduleFreeSGD({ lr: 0.1 }) as unknown as AnyOptimizer],
    ['ScheduleFreeAdamW', () => new ScheduleFreeAdamW({ lr: 1e-3 }) as unknown as AnyOptimizer],
    ['Muon', () => new Muon({ lr: 1e-3 })],
    // A partition (clipped: new tensors per step, disposed) with a Schedule-Free member.
    ['partition of Muon and ScheduleFreeAdamW', () => partition((name) => (name.includes('_w_') ? 'muon' : 'sf'), { muon: new Muon({ lr: 1e-3 }), sf: new ScheduleFreeAdamW() }) as unknown as TfWrappable],
  ];
  for (const backend of BACKENDS) {
    for (const path of ['kernel', 'ops'] as const) {
      it(`on ${backend}, path '${path}': 200 steps (Schedule-Free: with eval / train every 20) leave tf.memory().numTensors as after the first; dispose frees everything`, async () => {
        await useBackend(backend);
        for (const [name, make] of LEAK_RULES) {
          const vars = [tf.variable(tf.fill([4, 3], 0.5), true, `leak13_w_${name}_${backend}_${path}`), tf.variable(tf.fill([3, 5], -0.5), true, `leak13_v_${name}_${backend}_${path}`)];
          const grads = { [vars[0]!.name]: tf.fill([4, 3], 0.01), [vars[1]!.name]: tf.fill([3, 5], -0.02) };
          const baseline = tf.memory().numTensors;
          const opt = tfOptimizer(make(), { path, clipGradNorm: 10 });
          opt.applyGradients(grads);
          const afterFirst = tf.memory().numTensors;
          for (let i = 1; i < 200; i++) {
            opt.applyGradients(grads);
            if (opt.mode !== undefined && i % 20 === 0) {
              opt.eval();
              opt.train();
            }
          }
          assert.equal(tf.memory().numTensors, afterFirst, name);
          await opt.getWeights();
          opt.dispose();
          assert.equal(tf.memory().numTensors, baseline, name);
          tf.dispose([...vars, ...Object.values(grads)]);
        }
      });
    }
  }
});

/** Muon for the two matrices (names ending in 'kernel'), AdamW (or `rest`) for the biases. */
const isKernel = (name: string): boolean => /kernel(_\d+)?$/.test(name);
const muonAndAdamW = (rest: () => TfWrappable = () => new AdamW({ lr: 0.01, weightDecay: 0.01 }) as unknown as AnyOptimizer) => (): Partition<TfMembers> =>
  partition((name) => (isKernel(name) ? 'muon' : 'rest'), { muon: new Muon({ lr: 0.02 }) as TfWrappable, rest: rest() }) as unknown as Partition<TfMembers>;

describe('tfOptimizer(partition(...)): Muon for the matrices, AdamW for the biases, as one tf.Optimizer', () => {
  for (const backend of BACKENDS) {
    it(`on ${backend}, kernel path: equals our partition() on the same gradients, bit for bit, and the same state`, async () => {
      await useBackend(backend);
      const { adapter, core, opt, core_ } = runAgainstCore(muonAndAdamW(), { path: 'kernel' }, { steps: STEPS });
      assert.ok(opt instanceof TfPartition);
      assert.ok(maxRelativeDifference(adapter, weightsOf(smallModel())) > 1e-3);
      assert.equal(bitDifferences(adapter, core), 0);
      assert.deepEqual(opt.partition.stateDict(), core_.stateDict());
      // Each member holds exactly its variables' state.
      assert.deepEqual(Object.keys(opt.members.muon!.optimizer.stateDict().params).map(isKernel), [true, true]);
      assert.deepEqual(Object.keys(opt.members.rest!.optimizer.stateDict().params).map(isKernel), [false, false]);
      assert.equal(opt.stepCount, STEPS);
      assert.equal(opt.iterations, STEPS);
      opt.dispose();
    });

    it(`on ${backend}, kernel path, clipGradNorm 0.05: equals clipGradNorm then our partition(), bit for bit`, async () => {
      await useBackend(backend);
      const { adapter, core, opt } = runAgainstCore(muonAndAdamW(), { path: 'kernel', clipGradNorm: 0.05 }, { steps: STEPS });
      assert.equal(bitDifferences(adapter, core), 0);
      opt.dispose();
    });

    it(`on ${backend}, ops path: within 1e-5 of our partition() (Muon's float32 matrix products, see above)`, async () => {
      await useBackend(backend);
      const { adapter, core, opt } = runAgainstCore(muonAndAdamW(), { path: 'ops' }, { steps: STEPS });
      const difference = maxRelativeDifference(adapter, core);
      assert.ok(difference <= 1e-5, `difference ${difference}`);
      opt.dispose();
    });

    for (const path of ['kernel', 'ops'] as const) {
      it(`on ${backend}, path '${path}': model.fit, then model.save with the optimizer and tf.loadLayersModel: the loaded model continues bit for bit`, async () => {
        await useBackend(backend);
        const model = smallModel();
        const opt = tfOptimizer(muonAndAdamW()(), { path });
        model.compile({ optimizer: opt, loss: 'meanSquaredError' });
        const { xs, ys } = batches(8);
        const half = (from: number) => [xs.slice([from * 8, 0], [32, -1]), ys.slice([from * 8, 0], [32, -1])] as const;
        const [x1, y1] = half(0);
        const [x2, y2] = half(4);
        await model.fit(x1, y1, { batchSize: 8, epochs: 1, shuffle: false, verbose: 0 });
        assert.equal(opt.iterations, 4);
        assert.equal(opt.members.muon!.stepCount, 4);
        const loaded = await saveAndLoad(model);
        assert.ok(loaded.optimizer instanceof TfPartition);
        assert.equal(loaded.optimizer.iterations, 4);
        await model.fit(x2, y2, { batchSize: 8, epochs: 1, shuffle: false, verbose: 0 });
        await loaded.fit(x2, y2, { batchSize: 8, epochs: 1, shuffle: false, verbose: 0 });
        assert.equal(bitDifferences(weightsOf(loaded), weightsOf(model)), 0);
        assert.equal(loaded.optimizer.iterations, 8);
        loaded.optimizer.dispose();
        opt.dispose();
        loaded.dispose();
        model.dispose();
        tf.dispose([xs, ys, x1, y1, x2, y2]);
      });

      it(`on ${backend}, path '${path}': setWeights(getWeights()) into a fresh adapter continues bit for bit`, async () => {
        await useBackend(backend);
        const { xs, ys } = batches(STEPS);
        const whole = smallModel();
        const wholeVars = whole.trainableWeights.map((w) => w.read() as tf.Variable);
        const a = tfOptimizer(muonAndAdamW()(), { path });
        for (let step = 0; step < STEPS; step++) a.minimize(lossFn(whole, xs, ys, step), false, wholeVars);
        const split = smallModel();
        const splitVars = split.trainableWeights.map((w) => w.read() as tf.Variable);
        const first = tfOptimizer(muonAndAdamW()(), { path });
        for (let step = 0; step < 5; step++) first.minimize(lossFn(split, xs, ys, step), false, splitVars);
        const saved = await first.getWeights();
        const [w1, b1, w2, b2] = splitVars.map((v) => v.name);
        assert.deepEqual(saved.map((w) => w.name), [
          'iter',
          'nesterov/partition/muon/iter', `nesterov/partition/muon/${w1}/momentumBuffer`, `nesterov/partition/muon/${w2}/momentumBuffer`, 'nesterov/partition/muon/nesterov/state',
          'nesterov/partition/rest/iter', `nesterov/partition/rest/${b1}/expAvg`, `nesterov/partition/rest/${b1}/expAvgSq`, `nesterov/partition/rest/${b2}/expAvg`, `nesterov/partition/rest/${b2}/expAvgSq`, 'nesterov/partition/rest/nesterov/state',
          'nesterov/partition',
        ]);
        const second = tfOptimizer(muonAndAdamW()(), { path });
        await second.setWeights(saved);
        first.dispose();
        assert.equal(second.iterations, 5);
        assert.equal(second.stepCount, 5);
        for (let step = 5; step < STEPS; step++) second.minimize(lossFn(split, xs, ys, step), false, splitVars);
        assert.equal(bitDifferences(weightsOf(split), weightsOf(whole)), 0);
        // Loading into itself (its own exported tensors) works too, and changes nothing.
        const before = await exportedBits(second);
        await second.setWeights(await second.getWeights());
        assert.deepEqual(await exportedBits(second), before);
        a.dispose();
        second.dispose();
        whole.dispose();
        split.dispose();
        tf.dispose([xs, ys]);
      });

      it(`on ${backend}, path '${path}': a bad call (a bias sent to Muon, an unassigned variable, a NaN) throws before any member writes`, async () => {
        await useBackend(backend);
        const model = smallModel();
        const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const [w1, b1, w2] = vars.map((v) => v.name);
        const grads: tf.NamedTensorMap = Object.fromEntries(vars.map((v) => [v.name, tf.onesLike(v)]));
        // The first bias is assigned to Muon: AdamW's part is fine, Muon's is not.
        const wrong = tfOptimizer(partition((name) => (name === b1 || isKernel(name) ? 'muon' : 'rest'), { muon: new Muon(), rest: new AdamW() }), { path });
        const before = weightsOf(model);
        assert.throws(() => wrong.applyGradients(grads), {
          message: `NesterovOptimizer.applyGradients: variable '${b1}' has shape [8]: Muon updates 2-D variables only (give '${b1}' to another optimizer: tfOptimizer(partition(assign, { muon, adamw })))`,
        });
        // A variable assigned to no member.
        const unassigned = tfOptimizer(partition((name) => (name === w2 ? 'nope' : isKernel(name) ? 'muon' : 'rest'), { muon: new Muon(), rest: new AdamW() }), { path });
        assert.throws(() => unassigned.applyGradients(grads), (e: unknown) => {
          assert.ok(e instanceof UpdateError);
          assert.equal(e.message, `partition: parameter '${w2}' is assigned to "nope", which is not one of the optimizers [muon, rest]`);
          assert.equal(e.param, w2);
          return true;
        });
        assert.equal(bitDifferences(weightsOf(model), before), 0);
        for (const opt of [wrong, unassigned]) {
          assert.equal(opt.iterations, 0);
          assert.deepEqual((await opt.getWeights()).map((w) => w.name), [
            'iter', 'nesterov/partition/muon/iter', 'nesterov/partition/muon/nesterov/state', 'nesterov/partition/rest/iter', 'nesterov/partition/rest/nesterov/state', 'nesterov/partition',
          ]);
          opt.dispose();
        }
        // A NaN in a bias, after a good step: AdamW ('error') throws, naming it; Muon's matrices
        // do not move either, and no state changes.
        const nanGrads = { ...grads, [b1!]: tf.tensor(Float32Array.from({ length: 8 }, (_, i) => (i === 3 ? NaN : 1))) };
        const strict = tfOptimizer(muonAndAdamW()(), { path });
        const skipping = tfOptimizer(muonAndAdamW(() => new AdamW({ lr: 0.01, nonFinite: 'skip' }) as unknown as AnyOptimizer)(), { path });
        for (const opt of [strict, skipping]) {
          opt.applyGradients(grads);
          const weights = weightsOf(model);
          const state = await exportedBits(opt);
          if (opt === strict) {
            assert.throws(() => opt.applyGradients(nanGrads), { message: `AdamW.update: gradient '${b1}' is not finite at index 3 (NaN)` });
            assert.equal(opt.iterations, 1);
          } else {
            // With 'skip' on the bias member: the whole step is skipped, counted once.
            opt.applyGradients(nanGrads);
            assert.equal(opt.skippedSteps, 1);
            assert.equal(opt.stepCount, 1);
            assert.equal(opt.iterations, 2);
          }
          assert.equal(bitDifferences(weightsOf(model), weights), 0);
          const after = await exportedBits(opt);
          for (const [name, bits] of state) {
            if (name === 'iter') continue;
            assert.equal(after.get(name), name === 'nesterov/partition' ? bits.replace('"skippedSteps":0', `"skippedSteps":${opt.skippedSteps}`) : bits, name);
          }
          opt.dispose();
        }
        void w1;
        tf.dispose([...Object.values(grads), nanGrads[b1!]!]);
        model.dispose();
      });

      it(`on ${backend}, path '${path}': a Schedule-Free member: eval() / train() through the partition; a step in eval mode moves no variable of any member`, async () => {
        await useBackend(backend);
        const model = smallModel();
        const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const { xs, ys } = batches(3);
        const opt = tfOptimizer(muonAndAdamW(() => new ScheduleFreeAdamW({ lr: 0.01 }) as unknown as AnyOptimizer)(), { path });
        for (let step = 0; step < 2; step++) opt.minimize(lossFn(model, xs, ys, step), false, vars);
        const y = weightsOf(model);
        assert.equal(opt.mode, 'train');
        opt.eval();
        assert.equal(opt.mode, 'eval');
        const x = weightsOf(model);
        // Only the biases (the Schedule-Free member's) moved to x.
        assert.deepEqual(x.map((w, k) => bitDifferences([w], [y[k]!]) > 0), [false, true, false, true]);
        const grads: tf.NamedTensorMap = Object.fromEntries(vars.map((v) => [v.name, tf.onesLike(v)]));
        assert.throws(() => opt.applyGradients(grads), { message: 'NesterovOptimizer.applyGradients: the ScheduleFreeAdamW optimizer is in eval mode (the variables hold the average x, not y): call train() before applyGradients' });
        assert.equal(bitDifferences(weightsOf(model), x), 0);
        assert.equal(opt.iterations, 2);
        opt.train();
        assert.ok(maxRelativeDifference(weightsOf(model), y) <= 1e-6);
        tf.dispose(grads);
        opt.dispose();
        model.dispose();
        tf.dispose([xs, ys]);
      });
    }
  }

  it('getConfig holds each member\'s config and the assignment seen; fromConfig makes the same partition', async () => {
    await useBackend('cpu');
    const model = smallModel();
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const opt = tfOptimizer(muonAndAdamW()(), { clipGradNorm: 1 });
    opt.applyGradients(Object.fromEntries(vars.map((v) => [v.name, tf.zerosLike(v)])));
    const config = opt.getConfig();
    assert.deepEqual(config, {
      members: [
        {
          name: 'muon',
          config: { optimizer: 'Muon', options: { lr: 0.02, momentum: 0.95, nesterov: true, nsSteps: 5, weightDecay: 0, maximize: false, nonFinite: 'error' }, lrSchedule: false, path: 'auto' },
          variables: [{ name: vars[0]!.name }, { name: vars[2]!.name }],
        },
        {
          name: 'rest',
          config: { optimizer: 'AdamW', options: { lr: 0.01, weightDecay: 0.01, decoupledWeightDecay: true, maximize: false, beta1: 0.9, beta2: 0.999, eps: 1e-8, amsgrad: false, variant: 'pytorch', nonFinite: 'error' }, lrSchedule: false, path: 'auto' },
          variables: [{ name: vars[1]!.name }, { name: vars[3]!.name }],
        },
      ],
      path: 'auto',
      clipGradNorm: 1,
    });
    const [cls, fromConfig] = tf.serialization.SerializationMap.getMap().classNameMap['NesterovPartition']!;
    const copy = fromConfig(cls, config) as unknown as TfPartition;
    assert.ok(copy instanceof TfPartition);
    assert.ok(copy.members.muon!.optimizer instanceof Muon);
    assert.ok(copy.members.rest!.optimizer instanceof AdamW);
    assert.equal(copy.partition.memberOf(vars[0]!.name), 'muon');
    assert.equal(copy.partition.memberOf(`${vars[1]!.name}_1`), 'rest'); // renamed on load by tfjs-layers
    // The copy has seen no variable yet.
    assert.deepEqual(copy.getConfig(), { ...config, members: (config.members as { variables: unknown }[]).map((m) => ({ ...m, variables: [] })) });
    opt.dispose();
    model.dispose();
  });
});

describe("a partition's setWeights is all or nothing", () => {
  for (const path of ['kernel', 'ops'] as const) {
    it(`path '${path}': weights of another partition, or of a member of another rule, are refused, naming why, and no member's state changes`, async () => {
      await useBackend('cpu');
      const { xs, ys } = batches(3);
      const model = smallModel();
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const step = (opt: tf.Optimizer): void => {
        opt.minimize(lossFn(model, xs, ys, 0), false, vars);
      };
      const source = tfOptimizer(muonAndAdamW()(), { path });
      step(source);
      const saved = await source.getWeights();
      // The target: same keys, but its 'rest' is Adam, which cannot take AdamW's state.
      const target = tfOptimizer(partition((name) => (isKernel(name) ? 'muon' : 'rest'), { muon: new Muon({ lr: 0.02 }) as TfWrappable, rest: new Adam({ lr: 0.01 }) as unknown as TfWrappable }), { path });
      step(target);
      step(target);
      const before = await exportedBits(target);
      await assert.rejects(target.setWeights(saved), { message: 'Adam.loadStateDict: the state was saved by AdamW, not Adam' });
      assert.deepEqual(await exportedBits(target), before); // muon, loaded first, was put back
      assert.equal(target.iterations, 2);
      // Another partition's keys, and a single adapter's weights.
      const other = tfOptimizer(partition(() => 'only', { only: new AdamW() as unknown as TfWrappable }), { path });
      await assert.rejects(other.setWeights(await source.getWeights()), { message: 'NesterovPartition.setWeights: the weights were saved by a partition of [muon, rest], this one has [only]' });
      const single = tfOptimizer(new AdamW(), { path });
      await assert.rejects(other.setWeights(await single.getWeights()), { message: "NesterovPartition.setWeights: the weights lack 'iter' or 'nesterov/partition' (they were not saved by a NesterovPartition)" });
      for (const opt of [source, target, other, single]) opt.dispose();
      model.dispose();
      tf.dispose([xs, ys]);
    });
  }
});

/**
 * EMA, SWA, GradientAccumulation and Lookahead inside tfOptimizer: `model.fit` for 20
 * steps equals the same core wrapper driven by hand with TF.js's gradients
 * (`tf.variableGrads` of the loss model.fit minimizes, on the same model and batches), bit
 * for bit, averages and state included; EMA's averages read and swapped in from the TF.js
 * side; the wrappers' state through getWeights / setWeights and through model.save /
 * tf.loadLayersModel (getConfig / fromConfig); what is refused, refused before anything
 * changes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, AdamW, EMA, GradientAccumulation, Lookahead, Momentum, Muon, Nesterov, ParamStore, SWA, StateError, UpdateError, partition, type FloatArray, type OptimizerLike } from 'nesterov';
import { TfOptimizer, TfPartition, WRAPPERS_WEIGHT_NAME, tfOptimizer, type TfWrapper } from 'nesterov/tfjs';
import { BACKENDS, BATCH, batches, bitDifferences, exportedBits, saveAndLoad, smallModel, tf, useBackend, weightsOf } from './tfjs-helpers.ts';

const STEPS = 20;

/** The wrappers under test; each makes a fresh, identically configured one. */
const WRAPPERS: [string, () => TfWrapper][] = [
  ['EMA of Adam', () => new EMA(new Adam({ lr: 0.01 }), { decay: 0.9 })],
  ['EMA with warm-up of Nesterov', () => new EMA(new Nesterov({ lr: 0.05 }), { decay: 0.99, warmup: { gamma: 2, power: 0.75 } })],
  ['SWA of Momentum (start 5, every 3)', () => new SWA(new Momentum({ lr: 0.05, momentum: 0.9 }), { start: 5, every: 3 })],
  ['GradientAccumulation of AdamW (steps 4)', () => new GradientAccumulation(new AdamW({ lr: 0.02, weightDecay: 0.01 }), { steps: 4 })],
  ['Lookahead of Adam (k 3, alpha 0.5)', () => new Lookahead(new Adam({ lr: 0.02 }), { k: 3, alpha: 0.5 })],
  ['EMA around GradientAccumulation (steps 3) of Adam', () => new EMA(new GradientAccumulation(new Adam({ lr: 0.01 }), { steps: 3 }), { decay: 0.8 })],
  ['Lookahead around SWA of Nesterov', () => new Lookahead(new SWA(new Nesterov({ lr: 0.05 }), { start: 2 }), { k: 4, alpha: 0.7 })],
];

/** The loss model.fit minimizes for 'meanSquaredError': the batch mean of tfjs-layers' per-sample mean squared error. */
function fitLoss(model: tf.Sequential, xs: tf.Tensor2D, ys: tf.Tensor2D, step: number): () => tf.Scalar {
  return () => {
    const x = xs.slice([step * BATCH, 0], [BATCH, -1]);
    const y = ys.slice([step * BATCH, 0], [BATCH, -1]);
    return tf.mean(tf.metrics.meanSquaredError(y, model.predict(x) as tf.Tensor)) as tf.Scalar;
  };
}

/**
 * The small model trained `from` .. `to` - 1 by the core `wrapper` driven by hand: TF.js's
 * gradients (tf.variableGrads) copied into a float32 ParamStore (so the rule runs its
 * WebAssembly kernels, as in any ParamStore), `wrapper.update`, the variables assigned
 * the params. Returns the params by variable name.
 */
function byHand(model: tf.Sequential, wrapper: OptimizerLike, xs: tf.Tensor2D, ys: tf.Tensor2D, from: number, to: number): { [name: string]: Float32Array } {
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const shapes: { [name: string]: number[] } = {};
  for (const v of variables) shapes[v.name] = v.shape;
  const store = new ParamStore(shapes, { stateBuffers: wrapper.stateBuffersPerParam() });
  const params = store.params as { [name: string]: Float32Array };
  for (const v of variables) params[v.name]!.set(v.dataSync());
  for (let step = from; step < to; step++) {
    const { value, grads } = tf.variableGrads(fitLoss(model, xs, ys, step), variables);
    for (const v of variables) store.grads[v.name]!.set(grads[v.name]!.dataSync());
    tf.dispose([value, ...Object.values(grads)]);
    wrapper.update(store.params, store.grads);
    for (const v of variables) {
      const t = tf.tensor(params[v.name]!, v.shape);
      v.assign(t);
      t.dispose();
    }
  }
  return params;
}

/** `record`'s values in the order of `names` (two models name their variables differently). */
const inOrder = (record: { [name: string]: FloatArray }, names: readonly string[]): FloatArray[] => names.map((name) => record[name]!);
const namesOf = (model: tf.LayersModel): string[] => model.trainableWeights.map((w) => (w.read() as tf.Variable).name);

/** A state dict with the variables' names replaced by their positions (two models, two sets of names). */
function anonymous(state: unknown, names: readonly string[]): string {
  const text = JSON.stringify(state, (_key, value: unknown) => (ArrayBuffer.isView(value) ? Array.from(value as Float32Array) : value));
  return names.reduce((t, name, i) => t.replaceAll(`"${name}"`, `"variable ${i}"`), text);
}

async function fit(model: tf.Sequential, xs: tf.Tensor2D, ys: tf.Tensor2D, from: number, to: number): Promise<void> {
  const x = xs.slice([from * BATCH, 0], [(to - from) * BATCH, -1]);
  const y = ys.slice([from * BATCH, 0], [(to - from) * BATCH, -1]);
  await model.fit(x, y, { batchSize: BATCH, epochs: 1, shuffle: false, verbose: 0 });
  tf.dispose([x, y]);
}

for (const backend of BACKENDS) {
  describe(`wrappers inside tfOptimizer, backend ${backend}: model.fit equals the core wrapper on TF.js's gradients`, () => {
    for (const [label, make] of WRAPPERS) {
      it(`${label}: ${STEPS} steps of model.fit, bit for bit, the same state`, async () => {
        await useBackend(backend);
        const { xs, ys } = batches(STEPS);
        const fitted = smallModel();
        const opt = tfOptimizer(make());
        fitted.compile({ optimizer: opt, loss: 'meanSquaredError' });
        await fit(fitted, xs, ys, 0, STEPS);
        assert.equal(opt.path, 'kernel');
        const hand = smallModel();
        const core = make();
        const params = byHand(hand, core, xs, ys, 0, STEPS);
        // The model moved, and it moved as the core wrapper moved it.
        const start = smallModel();
        assert.ok(bitDifferences(weightsOf(fitted), weightsOf(start)) > 0);
        start.dispose();
        assert.equal(bitDifferences(weightsOf(fitted), inOrder(params, namesOf(hand)) as Float32Array[]), 0);
        assert.equal(anonymous(opt.optimizer.stateDict(), namesOf(fitted)), anonymous(core.stateDict(), namesOf(hand)));
        assert.equal(opt.iterations, STEPS);
        if (core instanceof EMA || core instanceof SWA) {
          const averaged = opt.averaged();
          assert.equal(bitDifferences(inOrder(averaged, namesOf(fitted)) as Float32Array[], inOrder(core.averaged(), namesOf(hand)) as Float32Array[]), 0);
        }
        opt.dispose();
        fitted.dispose();
        hand.dispose();
        tf.dispose([xs, ys]);
      });
    }
  });
}

describe('EMA from the TF.js side: averaged() and swap()', () => {
  it('swap() puts the averages into the variables and back, bit for bit; a step while swapped is refused and changes nothing', async () => {
    await useBackend('cpu');
    const { xs, ys } = batches(6);
    const model = smallModel();
    const opt = tfOptimizer(new EMA(new Adam({ lr: 0.01 }), { decay: 0.5 }));
    model.compile({ optimizer: opt, loss: 'meanSquaredError' });
    await fit(model, xs, ys, 0, 5);
    const training = weightsOf(model);
    const averages = inOrder(opt.averaged(), namesOf(model)) as Float32Array[];
    assert.ok(bitDifferences(averages, training) > 0);
    assert.equal(opt.swapped, false);
    opt.swap();
    assert.equal(opt.swapped, true);
    assert.equal(bitDifferences(weightsOf(model), averages), 0);
    // model.evaluate sees the averaged weights.
    const evaluated = model.evaluate(xs, ys, { batchSize: BATCH }) as tf.Scalar;
    const expected = tf.tidy(() => tf.mean(tf.metrics.meanSquaredError(ys, model.predict(xs) as tf.Tensor)));
    assert.ok(Math.abs(evaluated.dataSync()[0]! - expected.dataSync()[0]!) <= 1e-6);
    tf.dispose([evaluated, expected]);
    // While swapped: averaged() and a step are refused, nothing moves.
    assert.throws(() => opt.averaged(), { name: 'UpdateError', message: /^EMA\.averaged: the params hold the averages/ });
    const state = await exportedBits(opt);
    await assert.rejects(fit(model, xs, ys, 5, 6), (error: unknown) => error instanceof UpdateError && error.message === "NesterovOptimizer.applyGradients: the variables hold the EMA's averages (swap() was called): call swap() again to put the training weights back before applyGradients");
    assert.equal(bitDifferences(weightsOf(model), averages), 0);
    const after = await exportedBits(opt);
    for (const [name, bits] of state) if (name !== 'iter') assert.equal(after.get(name), bits, name);
    opt.swap();
    assert.equal(bitDifferences(weightsOf(model), training), 0);
    // Training goes on from the training weights.
    await fit(model, xs, ys, 5, 6);
    assert.equal(opt.stepCount, 6);
    opt.dispose();
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('averaged() and swap() of an adapter without EMA or SWA: a TypeError naming what it runs', () => {
    const opt = tfOptimizer(new Lookahead(new Adam()));
    assert.throws(() => opt.averaged(), { name: 'TypeError', message: 'NesterovOptimizer.averaged: only an EMA or SWA keeps averages; this optimizer runs Lookahead around Adam' });
    assert.throws(() => opt.swap(), { name: 'TypeError', message: 'NesterovOptimizer.swap: only an EMA or SWA keeps averages; this optimizer runs Lookahead around Adam' });
    assert.throws(() => tfOptimizer(new EMA(new Adam())).swap(), { name: 'UpdateError', message: 'EMA.swap: nothing is averaged yet (0 inner steps taken)' });
  });
});

describe('wrappers\' state through the adapter', () => {
  for (const [label, make] of WRAPPERS) {
    it(`${label}: setWeights(getWeights()) after 10 steps into a fresh adapter continues bit for bit like 20 uninterrupted`, async () => {
      await useBackend('cpu');
      const { xs, ys } = batches(STEPS);
      const whole = smallModel();
      const a = tfOptimizer(make());
      whole.compile({ optimizer: a, loss: 'meanSquaredError' });
      await fit(whole, xs, ys, 0, STEPS);
      const split = smallModel();
      const first = tfOptimizer(make());
      split.compile({ optimizer: first, loss: 'meanSquaredError' });
      await fit(split, xs, ys, 0, 10);
      const saved = await first.getWeights();
      assert.equal(saved.at(-1)!.name, WRAPPERS_WEIGHT_NAME);
      const second = tfOptimizer(make());
      await second.setWeights(saved);
      first.dispose();
      split.compile({ optimizer: second, loss: 'meanSquaredError' });
      await fit(split, xs, ys, 10, STEPS);
      assert.equal(bitDifferences(weightsOf(split), weightsOf(whole)), 0);
      assert.equal(anonymous(second.optimizer.stateDict(), namesOf(split)), anonymous(a.optimizer.stateDict(), namesOf(whole)));
      a.dispose();
      second.dispose();
      whole.dispose();
      split.dispose();
      tf.dispose([xs, ys]);
    });
  }

  it('model.save after the first micro-batch of a GradientAccumulation (its sums the only state) and tf.loadLayersModel: the window goes on under the renamed variables', async () => {
    await useBackend('cpu');
    const { xs, ys } = batches(8);
    const model = smallModel();
    const opt = tfOptimizer(new GradientAccumulation(new Adam({ lr: 0.01 }), { steps: 4 }));
    model.compile({ optimizer: opt, loss: 'meanSquaredError' });
    await fit(model, xs, ys, 0, 1);
    assert.equal(Object.keys(opt.optimizer.inner.stateDict().params).length, 0);
    const loaded = await saveAndLoad(model);
    assert.notEqual(namesOf(loaded)[0], namesOf(model)[0]);
    await fit(model, xs, ys, 1, 8);
    await fit(loaded as tf.Sequential, xs, ys, 1, 8);
    assert.equal(bitDifferences(weightsOf(loaded), weightsOf(model)), 0);
    assert.equal((loaded.optimizer as TfOptimizer).stepCount, 2);
    loaded.optimizer.dispose();
    opt.dispose();
    loaded.dispose();
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('model.save with includeOptimizer and tf.loadLayersModel: the same wrappers and options (config), the same state (weights), renamed variables followed', async () => {
    await useBackend('cpu');
    const { xs, ys } = batches(8);
    const model = smallModel();
    const opt = tfOptimizer(new Lookahead(new EMA(new GradientAccumulation(new Adam({ lr: 0.01 }), { steps: 2 }), { decay: 0.9, warmup: { gamma: 3, power: 0.5 } }), { k: 2, alpha: 0.6 }));
    model.compile({ optimizer: opt, loss: 'meanSquaredError' });
    await fit(model, xs, ys, 0, 5); // a window half full, a Lookahead between syncs
    const loaded = await saveAndLoad(model);
    assert.ok(loaded.optimizer instanceof TfOptimizer);
    const restored = loaded.optimizer.optimizer;
    assert.ok(restored instanceof Lookahead && restored.k === 2 && restored.alpha === 0.6);
    assert.ok(restored.inner instanceof EMA && restored.inner.decay === 0.9);
    assert.deepEqual(restored.inner.warmup, { gamma: 3, power: 0.5 });
    assert.ok(restored.inner.inner instanceof GradientAccumulation && restored.inner.inner.steps === 2);
    assert.notEqual(namesOf(loaded)[0], namesOf(model)[0]);
    await fit(model, xs, ys, 5, 8);
    await fit(loaded as tf.Sequential, xs, ys, 5, 8);
    assert.equal(bitDifferences(weightsOf(loaded), weightsOf(model)), 0);
    assert.equal(anonymous(restored.stateDict(), namesOf(loaded)), anonymous(opt.optimizer.stateDict(), namesOf(model)));
    loaded.optimizer.dispose();
    opt.dispose();
    loaded.dispose();
    model.dispose();
    tf.dispose([xs, ys]);
  });

  it('a partition whose members are wrappers: model.fit equals the core partition on TF.js\'s gradients; model.save and tf.loadLayersModel bring it back', async () => {
    await useBackend('cpu');
    const { xs, ys } = batches(STEPS);
    const isKernel = (name: string): boolean => /kernel(_\d+)?$/.test(name);
    const make = () => partition((name) => (isKernel(name) ? 'muon' : 'rest'), { muon: new EMA(new Muon({ lr: 0.02 }), { decay: 0.9 }), rest: new GradientAccumulation(new AdamW({ lr: 0.01 }), { steps: 2 }) });
    const fitted = smallModel();
    const opt = tfOptimizer(make());
    assert.ok(opt instanceof TfPartition);
    fitted.compile({ optimizer: opt, loss: 'meanSquaredError' });
    await fit(fitted, xs, ys, 0, STEPS);
    const hand = smallModel();
    const params = byHand(hand, make(), xs, ys, 0, STEPS);
    assert.equal(bitDifferences(weightsOf(fitted), inOrder(params, namesOf(hand)) as Float32Array[]), 0);
    // Saved with the model and loaded: the members' wrappers, options and state come back.
    const loaded = await saveAndLoad(fitted);
    assert.ok(loaded.optimizer instanceof TfPartition);
    const members = loaded.optimizer.members as { [key: string]: TfOptimizer<TfWrapper> };
    assert.ok(members.muon!.optimizer instanceof EMA && members.muon!.optimizer.decay === 0.9);
    assert.ok(members.rest!.optimizer instanceof GradientAccumulation && members.rest!.optimizer.steps === 2);
    const more = batches(STEPS + 4);
    await fit(fitted, more.xs, more.ys, STEPS, STEPS + 4);
    await fit(loaded as tf.Sequential, more.xs, more.ys, STEPS, STEPS + 4);
    assert.equal(bitDifferences(weightsOf(loaded), weightsOf(fitted)), 0);
    assert.equal(anonymous(members.muon!.averaged(), namesOf(loaded)), anonymous((opt.members as { [key: string]: TfOptimizer<TfWrapper> }).muon!.averaged(), namesOf(fitted)));
    loaded.optimizer.dispose();
    loaded.dispose();
    opt.dispose();
    fitted.dispose();
    hand.dispose();
    tf.dispose([xs, ys, more.xs, more.ys]);
  });
});

describe('a non-finite gradient under a wrapper', () => {
  /** A model after two steps of `opt`, and gradients of all ones with a NaN at index 1 of the third variable. */
  async function twoStepsThenNaN(opt: TfOptimizer<TfWrapper>): Promise<{ model: tf.Sequential; grads: tf.NamedTensorMap; cleanup: () => void }> {
    const { xs, ys } = batches(2);
    const model = smallModel();
    model.compile({ optimizer: opt, loss: 'meanSquaredError' });
    await fit(model, xs, ys, 0, 2);
    const grads: tf.NamedTensorMap = {};
    model.trainableWeights.forEach((w, i) => {
      const v = w.read() as tf.Variable;
      grads[v.name] = i === 2 ? tf.tensor(Float32Array.from({ length: v.size }, (_, k) => (k === 1 ? NaN : 1)), v.shape) : tf.onesLike(v);
    });
    return { model, grads, cleanup: () => { tf.dispose([xs, ys, ...Object.values(grads)]); model.dispose(); opt.dispose(); } };
  }

  for (const [label, make] of [
    ['EMA', (nonFinite: 'error' | 'skip') => new EMA(new Adam({ lr: 0.01, nonFinite }), { decay: 0.5 })],
    ['GradientAccumulation (steps 3)', (nonFinite: 'error' | 'skip') => new GradientAccumulation(new Adam({ lr: 0.01, nonFinite }), { steps: 3 })],
    ['Lookahead (k 3)', (nonFinite: 'error' | 'skip') => new Lookahead(new Adam({ lr: 0.01, nonFinite }), { k: 3 })],
  ] as const) {
    it(`${label}, nonFinite 'error': an UpdateError naming the gradient and index; the variables and every saved weight unchanged`, async () => {
      await useBackend('cpu');
      const opt = tfOptimizer(make('error'));
      const { model, grads, cleanup } = await twoStepsThenNaN(opt);
      const weights = weightsOf(model);
      const state = await exportedBits(opt);
      const name = namesOf(model)[2]!;
      assert.throws(() => opt.applyGradients(grads), (error: unknown) => error instanceof UpdateError && error.param === name && error.index === 1 && error.message.includes(`gradient '${name}' is not finite at index 1 (NaN)`));
      assert.equal(bitDifferences(weightsOf(model), weights), 0);
      assert.deepEqual(await exportedBits(opt), state);
      cleanup();
    });

    it(`${label}, nonFinite 'skip': the step (or micro-batch) is left out; the variables and the wrapper's state unchanged`, async () => {
      await useBackend('cpu');
      const opt = tfOptimizer(make('skip'));
      const { model, grads, cleanup } = await twoStepsThenNaN(opt);
      const weights = weightsOf(model);
      const before = JSON.stringify(opt.optimizer.stateDict(), (_k, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v));
      opt.applyGradients(grads);
      assert.equal(bitDifferences(weightsOf(model), weights), 0);
      const after = opt.optimizer.stateDict() as unknown as { counters: { [key: string]: number }; inner: { skippedSteps: number } };
      if (opt.optimizer instanceof GradientAccumulation) {
        assert.equal(opt.optimizer.skippedMicroBatches, 1);
        assert.equal(JSON.stringify({ ...after, counters: { ...after.counters, skipped: 0 } }, (_k, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v)), before);
      } else {
        assert.equal(opt.skippedSteps, 1);
        assert.equal(JSON.stringify({ ...after, inner: { ...after.inner, skippedSteps: 0 } }, (_k, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v)), before);
      }
      cleanup();
    });
  }
});

describe('refused, naming the wrapper, before anything changes', () => {
  it("path 'ops' with a wrapper: a RangeError naming it and the kernel path", () => {
    assert.throws(() => tfOptimizer(new SWA(new Adam()), { path: 'ops' }), {
      name: 'RangeError',
      message: "tfOptimizer: invalid path: \"ops\" (expected 'auto' or 'kernel' (SWA runs on the kernel path only, on any backend: its state is the core SWA's typed arrays; 'auto' picks the kernel path for it))",
    });
  });

  it('a wrapper around a partition: a TypeError saying to wrap each member', () => {
    const split = partition(() => 'a', { a: new Adam() });
    assert.throws(() => tfOptimizer(new EMA(split) as unknown as TfWrapper), (error: unknown) => error instanceof TypeError && /EMA wraps a partition: inside tfOptimizer a wrapper goes around one optimizer; wrap each member instead/.test(error.message));
  });

  it('setWeights of weights saved without the wrappers, or with other ones: refused, the state unchanged', async () => {
    await useBackend('cpu');
    const { xs, ys } = batches(3);
    const train = async (opt: tf.Optimizer): Promise<tf.Sequential> => {
      const model = smallModel();
      model.compile({ optimizer: opt, loss: 'meanSquaredError' });
      await fit(model, xs, ys, 0, 3);
      return model;
    };
    const plain = tfOptimizer(new Adam({ lr: 0.01 }));
    const ema = tfOptimizer(new EMA(new Adam({ lr: 0.01 }), { decay: 0.9 }));
    const swa = tfOptimizer(new SWA(new Adam({ lr: 0.01 })));
    const models = [await train(plain), await train(ema), await train(swa)];
    const before = await exportedBits(ema);
    await assert.rejects(ema.setWeights(await plain.getWeights()), { name: 'TypeError', message: `NesterovOptimizer.setWeights: the weights lack '${WRAPPERS_WEIGHT_NAME}' (saved without wrappers), this optimizer has [EMA]` });
    await assert.rejects(ema.setWeights(await swa.getWeights()), (error: unknown) => error instanceof StateError && /expected a state of wrapper 'EMA'/.test(error.message));
    assert.deepEqual(await exportedBits(ema), before);
    const plainBefore = await exportedBits(plain);
    await assert.rejects(plain.setWeights(await ema.getWeights()), { name: 'TypeError', message: `NesterovOptimizer.setWeights: the weights hold wrappers' state ('${WRAPPERS_WEIGHT_NAME}'), this optimizer has none (Adam alone)` });
    assert.deepEqual(await exportedBits(plain), plainBefore);
    for (const opt of [plain, ema, swa]) opt.dispose();
    for (const model of models) model.dispose();
    tf.dispose([xs, ys]);
  });
});

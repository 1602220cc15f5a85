/**
 * nesterov/tfjs against TF.js's own optimizers: the same small tf.sequential model, the
 * same initial weights and batches, 50 steps of model.fit (shuffle off), on the cpu and
 * the wasm backend, on both paths of the adapter.
 *
 * Which of our variants is TF.js's formula (read from tfjs-core 4.22's
 * dist/optimizers/*.js; c = -lr as a float32 scalar, every op a float32 tensor op):
 * - `momentum(lr, mu, true)`: a <- m * a + g; p <- c * (g + a * m) + p. That is our
 *   Nesterov variant 'pytorch' (first step b = g, since a starts at 0; p - lr (g + mu b)),
 *   the same float32 operations in the same order: the weights must be EQUAL, bit for bit.
 *   Variant 'nag' is the same method (same iterates in exact arithmetic, its velocity is
 *   -lr b) but a different rounding: a few float32 ulps after 50 steps.
 * - `momentum(lr, mu)`: our Momentum 'pytorch' (and 'classic' up to rounding), `sgd(lr)`:
 *   our SGD; both bit for bit for the same reason.
 * - `adam(lr)`: m/(1 - b1^t) / (sqrt(v/(1 - b2^t)) + eps), eps = backend epsilon 1e-7: our
 *   Adam variant 'pytorch' with eps 1e-7, NOT 'book' (which puts eps outside the bias
 *   correction). TF.js keeps b1^t and b2^t as float32 products (accBeta1 *= beta1), we
 *   compute them in double: at t = 1, 1 - b2^t = 1e-3 carries a float32 error of up to
 *   3e-8 absolute, 3e-5 relative, so each step can differ by ~1.5e-5 relative; weights
 *   move by at most ~lr per step, so after 50 steps |dw| <= 1e-5 (1 + |w|) is the bound
 *   we assert (measured: 1.8e-6).
 * - `rmsprop(lr, decay, momentum, eps)`: eps INSIDE the square root, sqrt(ms + eps); ours
 *   (PyTorch's) has it outside, sqrt(s) + eps: not expressible in general. With TF.js's
 *   eps at 1e-12 (absorbed by float32 rounding of ms ~ 1e-3) and ours at 0 both are
 *   sqrt(s): then our RMSProp (alpha = decay, same momentum form with a constant lr) agrees
 *   to float32 rounding. TF.js's centered form subtracts eps (sqrt(ms - mg^2 - eps)): not ours.
 * - `adagrad(lr, 0.1)`: sqrt(acc + 1e-7) with acc starting at 0.1; ours with
 *   initialAccumulatorValue 0.1 and eps 0 is sqrt(acc): 1e-7 against acc >= 0.1 changes
 *   the root by <= 5e-7 relative, i.e. about float32 rounding.
 * Rounding-level agreements (a different but equally rounded order of float32 ops) are
 * asserted at 1e-6 relative: 50 steps of a few ulps (2^-24 = 6e-8 each) stay below it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaGrad, Adam, Momentum, Nesterov, RMSProp, SGD } from 'nesterov';
import { tfOptimizer } from 'nesterov/tfjs';
import { BACKENDS, bitDifferences, fitSmall, maxRelativeDifference, tf, useBackend } from './tfjs-helpers.ts';

const LR = 0.05;
const MU = 0.9;
const STEPS = 50;

interface Case {
  name: string;
  theirs: () => tf.Optimizer;
  ours: (path: 'kernel' | 'ops') => tf.Optimizer;
  /** 0: bit for bit; otherwise the largest |ours - theirs| / (1 + |theirs|). */
  tolerance: number;
}

const CASES: Case[] = [
  { name: "momentum(lr, mu, true) = Nesterov 'pytorch'", theirs: () => tf.train.momentum(LR, MU, true), ours: (path) => tfOptimizer(new Nesterov({ lr: LR, momentum: MU, variant: 'pytorch' }), { path }), tolerance: 0 },
  { name: "momentum(lr, mu, true) ~ Nesterov 'nag'", theirs: () => tf.train.momentum(LR, MU, true), ours: (path) => tfOptimizer(new Nesterov({ lr: LR, momentum: MU }), { path }), tolerance: 1e-6 },
  { name: "momentum(lr, mu) = Momentum 'pytorch'", theirs: () => tf.train.momentum(LR, MU), ours: (path) => tfOptimizer(new Momentum({ lr: LR, momentum: MU, variant: 'pytorch' }), { path }), tolerance: 0 },
  { name: "momentum(lr, mu) ~ Momentum 'classic'", theirs: () => tf.train.momentum(LR, MU), ours: (path) => tfOptimizer(new Momentum({ lr: LR, momentum: MU }), { path }), tolerance: 1e-6 },
  { name: 'sgd(lr) = SGD', theirs: () => tf.train.sgd(LR), ours: (path) => tfOptimizer(new SGD({ lr: LR }), { path }), tolerance: 0 },
  { name: "adam(lr) ~ Adam 'pytorch', eps 1e-7", theirs: () => tf.train.adam(0.01), ours: (path) => tfOptimizer(new Adam({ lr: 0.01, eps: 1e-7 }), { path }), tolerance: 1e-5 },
  { name: 'rmsprop(lr, 0.9, 0.5, 1e-12) ~ RMSProp alpha 0.9, momentum 0.5, eps 0', theirs: () => tf.train.rmsprop(0.01, 0.9, 0.5, 1e-12), ours: (path) => tfOptimizer(new RMSProp({ lr: 0.01, alpha: 0.9, momentum: 0.5, eps: 0 }), { path }), tolerance: 1e-6 },
  { name: 'adagrad(lr) ~ AdaGrad initialAccumulatorValue 0.1, eps 0', theirs: () => tf.train.adagrad(0.1), ours: (path) => tfOptimizer(new AdaGrad({ lr: 0.1, initialAccumulatorValue: 0.1, eps: 0 }), { path }), tolerance: 1e-6 },
];

for (const backend of BACKENDS) {
  for (const path of ['kernel', 'ops'] as const) {
    describe(`model.fit, ${STEPS} steps, backend ${backend}, path '${path}': TF.js's optimizer vs ours`, () => {
      for (const c of CASES) {
        it(c.name, async () => {
          await useBackend(backend);
          const theirs = c.theirs();
          const ours = c.ours(path);
          const expected = await fitSmall(theirs, STEPS);
          const got = await fitSmall(ours, STEPS);
          assert.equal(ours.iterations, STEPS);
          assert.equal((ours as unknown as { path: string }).path, path);
          // The weights moved (the comparison is not of two untouched models).
          const start = await fitSmall(tf.train.sgd(0), STEPS);
          assert.ok(maxRelativeDifference(expected, start) > 1e-3);
          if (c.tolerance === 0) assert.equal(bitDifferences(got, expected), 0);
          else assert.ok(maxRelativeDifference(got, expected) <= c.tolerance, `difference ${maxRelativeDifference(got, expected)} > ${c.tolerance}`);
          theirs.dispose();
          ours.dispose();
        });
      }
    });
  }
}

describe('the adapter picks its path by backend', () => {
  for (const backend of BACKENDS) {
    it(`'auto' takes the kernel path on ${backend}`, async () => {
      await useBackend(backend);
      const opt = tfOptimizer(new SGD({ lr: LR }));
      assert.equal(opt.path, undefined);
      await fitSmall(opt, 1);
      assert.equal(opt.path, 'kernel');
      assert.equal(opt.optimizer.backendUsed, 'wasm'); // our WebAssembly kernels ran the step
    });
  }
});

describe("TF.js's Adam is our variant 'pytorch', not 'book' (hand-derived first step)", () => {
  // One step from p = 0 with g = 1e-6, lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7:
  // bias-corrected m = g and v = g^2, so 'pytorch' (TF.js's formula) steps
  // -lr g / (g + eps) = -1e-3 / 1.1 = -9.0909e-4; 'book' steps
  // -lr sqrt(1e-3) / 0.1 * 0.1 g / (sqrt(1e-3) g + eps) = -2.4025e-4.
  const pytorchStep = -1e-3 / 1.1;
  const bookStep = -1e-3 * Math.sqrt(1e-3) * 1e-6 / (Math.sqrt(1e-3) * 1e-6 + 1e-7);
  for (const backend of BACKENDS) {
    it(`on ${backend}: tf.train.adam, and tfOptimizer(new Adam({ eps: 1e-7 })) on both paths, step -lr/1.1`, async () => {
      await useBackend(backend);
      const step = (opt: tf.Optimizer, name: string): number => {
        const v = tf.variable(tf.zeros([1]), true, `${name}_${backend}`);
        const g = tf.tensor([1e-6]);
        opt.applyGradients({ [v.name]: g });
        const value = v.dataSync()[0]!;
        tf.dispose([v, g]);
        opt.dispose();
        return value;
      };
      const relative = (x: number, y: number): number => Math.abs(x - y) / Math.abs(y);
      // TF.js keeps beta2^t as a float32: 1 - fround(0.999) = 9.9998713e-4 is 1.3e-5 off, its
      // square root 6.4e-6: the reason the trajectories above agree to 1e-5, not to ulps.
      const theirs = step(tf.train.adam(1e-3), 'adam_tf');
      assert.ok(relative(theirs, pytorchStep) < 1e-5 && relative(theirs, bookStep) > 1);
      for (const path of ['kernel', 'ops'] as const) {
        assert.ok(relative(step(tfOptimizer(new Adam({ lr: 1e-3, eps: 1e-7 }), { path }), `adam_ours_${path}`), pytorchStep) < 1e-6);
        assert.ok(relative(step(tfOptimizer(new Adam({ lr: 1e-3, variant: 'book' }), { path }), `adam_book_${path}`), bookStep) < 1e-6);
      }
    });
  }
});

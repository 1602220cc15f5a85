/**
 * The TF.js adapter with scheduled hyperparameters and setHyperparameters, on both paths:
 * the kernel path runs the core optimizer (which evaluates the schedules), the ops path
 * the rule's TF.js ops, which must be given each step's values. Expected values are
 * derived by hand (dyadic numbers: exact in float32).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Adam, Nesterov, UpdateError } from 'nesterov';
import { TfOptimizer, tfOptimizer } from 'nesterov/tfjs';
import { tf, useBackend } from './tfjs-helpers.ts';

const PATHS = ['kernel', 'ops'] as const;
let counter = 0;
const variable = (values: number[]): tf.Variable => tf.variable(tf.tensor1d(values), true, `hyper_${counter++}`);

describe('scheduled hyperparameters in the TF.js adapter', () => {
  for (const path of PATHS) {
    it(`path '${path}': Nesterov 'nag' with mu_t = 0.5, 0.25, 0.75 takes the hand-derived steps`, async () => {
      await useBackend('cpu');
      const mus = [0.5, 0.25, 0.75];
      const opt = tfOptimizer(new Nesterov({ lr: 0.5, momentum: (t) => mus[t]! }), { path });
      const v = variable([1]);
      // p <- p + mu_t^2 v - (1 + mu_t) lr g;  v <- mu_t v - lr g  (see hyperparameter-schedules.test.ts)
      const expected = [0.25, -1.03125, -0.7890625];
      [1, 2, -1].forEach((g, t) => {
        const grad = tf.tensor1d([g]);
        opt.applyGradients({ [v.name]: grad });
        grad.dispose();
        assert.equal(v.dataSync()[0], expected[t], `step ${t}`);
      });
      opt.dispose();
      v.dispose();
    });

    it(`path '${path}': Adam with scheduled beta1 and eps follows torch's formula with each step's values`, async () => {
      await useBackend('cpu');
      const beta1s = [0.5, 0.8, 0.9];
      const epss = [1e-3, 1e-2, 0.1];
      const opt = tfOptimizer(new Adam({ lr: 0.1, beta1: (t) => beta1s[t]!, eps: (t) => epss[t]! }), { path });
      const v = variable([1]);
      let x = 1;
      let m = 0;
      let s = 0;
      [1, -0.5, 2].forEach((g, k) => {
        const t = k + 1;
        const b1 = beta1s[k]!;
        m = b1 * m + (1 - b1) * g;
        s = 0.999 * s + 0.001 * g * g;
        x -= (0.1 / (1 - b1 ** t)) * m / (Math.sqrt(s) / Math.sqrt(1 - 0.999 ** t) + epss[k]!);
        const grad = tf.tensor1d([g]);
        opt.applyGradients({ [v.name]: grad });
        grad.dispose();
        const got = v.dataSync()[0]!;
        assert.ok(Math.abs(got - x) <= 1e-6 * Math.abs(x), `step ${k}: ${got} vs ${x}`);
      });
      opt.dispose();
      v.dispose();
    });

    it(`path '${path}': a bad scheduled value is an UpdateError at its step, the variable unchanged`, async () => {
      await useBackend('cpu');
      const opt = tfOptimizer(new Nesterov({ lr: 0.5, momentum: (t) => (t < 2 ? 0.5 : 1.5) }), { path });
      const v = variable([1, 2]);
      const grad = tf.tensor1d([1, 1]);
      opt.applyGradients({ [v.name]: grad });
      opt.applyGradients({ [v.name]: grad });
      const before = Array.from(v.dataSync());
      assert.throws(() => opt.applyGradients({ [v.name]: grad }), (error: unknown) => error instanceof UpdateError && /momentum schedule returned 1\.5 at step 2/.test(error.message));
      assert.deepEqual(Array.from(v.dataSync()), before);
      assert.equal(opt.stepCount, 2);
      grad.dispose();
      opt.dispose();
      v.dispose();
    });

    it(`path '${path}': setHyperparameters passes through, in force from the next step, and the weights carry it`, async () => {
      await useBackend('cpu');
      const opt = tfOptimizer(new Nesterov({ variant: 'pytorch', lr: 0.5, momentum: 0.5 }), { path });
      const v = variable([1]);
      const step = (g: number): void => {
        const grad = tf.tensor1d([g]);
        opt.applyGradients({ [v.name]: grad });
        grad.dispose();
      };
      step(1); // b = 1; p = 1 - 0.5 (1 + 0.5) = 0.25
      opt.setHyperparameters({ momentum: 0.25 });
      step(2); // b = 0.25 + 2 = 2.25; p = 0.25 - 0.5 (2 + 0.25 * 2.25) = -1.03125
      assert.equal(v.dataSync()[0], -1.03125);
      assert.throws(() => opt.setHyperparameters({ momentum: 1 }), /momentum: 1/);
      const weights = await opt.getWeights();
      const other = tfOptimizer(new Nesterov({ variant: 'pytorch', lr: 0.5, momentum: 0.9 }), { path });
      await other.setWeights(weights);
      assert.equal(other.optimizer.defaults.momentum, 0.25);
      opt.dispose();
      other.dispose();
      v.dispose();
    });
  }

  it('a config does not hold a schedule: getConfig lists the scheduled options and fromConfig refuses them', async () => {
    await useBackend('cpu');
    const opt = tfOptimizer(new Adam({ beta1: (t) => (t < 10 ? 0.5 : 0.9) }));
    const config = opt.getConfig();
    assert.deepEqual(config.schedules, ['beta1']);
    assert.equal((config.options as Record<string, unknown>).beta1, undefined);
    assert.throws(() => TfOptimizer.fromConfig(TfOptimizer, config), /used schedules for beta1/);
    opt.dispose();
  });
});

/**
 * The network of the main job: backprop against central differences in float64, the
 * seeded RNG, and a short training run on the real digits.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Nesterov } from 'nesterov';
import { Network } from '../app/nn/network.ts';
import { Rng } from '../app/nn/rng.ts';
import { loadPackageDigits, split } from '../app/data.ts';

describe('Rng', () => {
  it('is a pure function of the seed, and its state can be saved and restored', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const first = Array.from({ length: 5 }, () => a.nextUint32());
    assert.deepEqual(Array.from({ length: 5 }, () => b.nextUint32()), first);
    const saved = a.state.slice();
    const next = a.next();
    a.state.set(saved);
    assert.equal(a.next(), next);
    assert.notDeepEqual(Array.from({ length: 5 }, () => new Rng(43).nextUint32()), first);
  });
  it('normal() has mean 0 and variance 1 (100,000 draws: within 5 standard errors)', () => {
    const rng = new Rng(7);
    const n = 100_000;
    let sum = 0;
    let squares = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.normal();
      sum += x;
      squares += x * x;
    }
    const mean = sum / n;
    const variance = squares / n - mean * mean;
    assert.ok(Math.abs(mean) < 5 / Math.sqrt(n), `mean ${mean}`);
    assert.ok(Math.abs(variance - 1) < 5 * Math.sqrt(2 / n), `variance ${variance}`); // var of s^2 is 2/n
  });
});

describe('Network', () => {
  it('backprop equals central differences in float64 (relative 1e-6)', () => {
    const net = new Network({ inputSize: 6, hiddenSizes: [5, 4], outputSize: 3, dtype: 'float64' });
    const rng = new Rng(1);
    net.initialize(rng);
    for (const layer of net.layers) for (let i = 0; i < layer.b.length; i++) layer.b[i] = 0.1 * rng.normal();
    const batch = 4;
    const x = Float64Array.from({ length: batch * 6 }, () => rng.normal());
    const labels = Uint8Array.from([0, 2, 1, 2]);
    net.gradient(x, labels, 0, batch);
    const analytic = Object.fromEntries(net.store.names.map((n) => [n, net.store.grads[n]!.slice()]));
    const h = 1e-6;
    let worst = 0;
    for (const name of net.store.names) {
      const p = net.store.params[name]!;
      for (let i = 0; i < p.length; i++) {
        const keep = p[i]!;
        p[i] = keep + h;
        const up = net.loss(x, labels, 0, batch);
        p[i] = keep - h;
        const down = net.loss(x, labels, 0, batch);
        p[i] = keep;
        const numeric = (up - down) / (2 * h);
        const exact = analytic[name]![i]!;
        const error = Math.abs(numeric - exact) / Math.max(1e-3, Math.abs(numeric) + Math.abs(exact));
        worst = Math.max(worst, error);
      }
    }
    assert.ok(worst < 1e-6, `largest relative difference ${worst}`);
  });

  it('rejects a bad layer size', () => {
    assert.throws(() => new Network({ inputSize: 0, hiddenSizes: [], outputSize: 3 }), /invalid layer size: 0/);
  });

  it('learns the real digits: 3 epochs of Nesterov on 2,000 reach > 85% on 1,000 held out', () => {
    const rng = new Rng(3);
    const { train: all } = split(loadPackageDigits(), 0, rng);
    const trainCount = 2000;
    const net = new Network({ inputSize: 784, hiddenSizes: [50], outputSize: 10 });
    net.initialize(rng);
    const opt = new Nesterov({ lr: 0.05, momentum: 0.9 });
    const batch = 50;
    const x = all.images;
    for (let epoch = 0; epoch < 3; epoch++) {
      for (let start = 0; start < trainCount; start += batch) {
        net.gradient(x.subarray(start * 784), all.labels, start, batch);
        opt.update(net.store.params, net.store.grads);
      }
    }
    const accuracy = net.accuracy(x.subarray(trainCount * 784), all.labels, trainCount, 1000);
    assert.ok(accuracy > 0.85, `test accuracy ${accuracy}`);
  });
});

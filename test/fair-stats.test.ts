/**
 * The statistics of --seeds and the rules of the --tune search, on values worked out by
 * hand (and, for Student's t, the quantiles printed in every statistics table).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mean, sampleStd, stats, studentTCdf, studentTQuantile } from '../app/stats.ts';
import { argmin, chooseRate, dataFor, firstGrid, refinedGrid, runKey, searchKey, seedOf, validationCount } from '../app/tune.ts';
import type { Digits } from '../app/data.ts';
import { smoothLikeTensorBoard } from '../app/report.ts';

const close = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, expected ${expected} +/- ${tolerance}`);

describe('Student t quantiles', () => {
  // t(0.975, df) from the standard tables (3 decimals).
  const table: [number, number][] = [
    [1, 12.706],
    [2, 4.303],
    [3, 3.182],
    [4, 2.776],
    [5, 2.571],
    [9, 2.262],
    [10, 2.228],
    [30, 2.042],
    [100, 1.984],
  ];
  for (const [df, t] of table) {
    it(`t(0.975, ${df}) = ${t}`, () => close(studentTQuantile(0.975, df), t, 0.0005, `df ${df}`));
  }
  it('closed forms: df 1 is Cauchy, tan(pi (p - 1/2)); df 2 is (2p - 1) sqrt(2 / (1 - (2p - 1)^2))', () => {
    close(studentTQuantile(0.975, 1), Math.tan(Math.PI * 0.475), 1e-7, 'df 1');
    close(studentTQuantile(0.9, 1), Math.tan(Math.PI * 0.4), 1e-7, 'df 1, p 0.9');
    const a = 2 * 0.975 - 1;
    close(studentTQuantile(0.975, 2), a * Math.sqrt(2 / (1 - a * a)), 1e-7, 'df 2');
    close(studentTCdf(1, 1), 0.75, 1e-8, 'Cauchy CDF at 1');
    close(studentTCdf(0, 7), 0.5, 1e-8, 'CDF at 0');
    close(studentTQuantile(0.025, 4), -2.776, 0.0005, 'lower tail');
  });
  it('approaches the normal quantile 1.95996 for many degrees of freedom', () => close(studentTQuantile(0.975, 1e6), 1.959966, 1e-5, 'df 1e6'));
});

describe('mean, sample standard deviation, 95% confidence interval', () => {
  it('on 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample sd sqrt(32/7)', () => {
    const values = [2, 4, 4, 4, 5, 5, 7, 9];
    assert.equal(mean(values), 5);
    // squared deviations: 9 1 1 1 0 0 4 16 = 32, divided by n - 1 = 7
    close(sampleStd(values), Math.sqrt(32 / 7), 1e-15, 'sd');
  });
  it('on two runs 0.95 and 0.97: sd 0.01414, CI 0.96 -/+ 12.706 * 0.01 = [0.83294, 1.08706]', () => {
    const s = stats([0.95, 0.97]);
    assert.equal(s.n, 2);
    close(s.mean, 0.96, 1e-15, 'mean');
    close(s.std!, Math.SQRT2 * 0.01, 1e-15, 'sd');
    // half width t * s / sqrt(n) = 12.7062 * 0.014142 / 1.41421 = 0.127062
    close(s.ci95![0], 0.96 - 0.127062, 1e-6, 'lower');
    close(s.ci95![1], 0.96 + 0.127062, 1e-6, 'upper');
  });
  it('on five runs 1..5: mean 3, sd sqrt(2.5), CI 3 -/+ 2.7764 * sqrt(2.5) / sqrt(5) = [1.0368, 4.9632]', () => {
    const s = stats([1, 2, 3, 4, 5]);
    assert.equal(s.mean, 3);
    close(s.std!, Math.sqrt(2.5), 1e-15, 'sd');
    close(s.ci95![0], 3 - 2.776445 * Math.sqrt(0.5), 1e-5, 'lower');
    close(s.ci95![1], 3 + 2.776445 * Math.sqrt(0.5), 1e-5, 'upper');
  });
  it('one run: no sd, no interval', () => assert.deepEqual(stats([0.9]), { n: 1, mean: 0.9, std: null, ci95: null }));
});

describe('the --tune search rules', () => {
  it('the first grid: 7 rates a third of a decade apart from lr/10 to lr*10 (4 significant digits)', () => {
    assert.deepEqual(firstGrid(0.1), [0.01, 0.02154, 0.04642, 0.1, 0.2154, 0.4642, 1]);
    assert.deepEqual(firstGrid(0.001), [0.0001, 0.0002154, 0.0004642, 0.001, 0.002154, 0.004642, 0.01]);
  });
  it('the refinement: half a step (1/6 decade) either side of the best first-stage rate', () => {
    // best is index 4 (0.2154 = 0.1 * 10^(1/3)): 0.1 * 10^(1/6) = 0.1468, 0.1 * 10^(1/2) = 0.3162
    assert.deepEqual(refinedGrid(0.1, [2, 1.5, 1, 0.8, 0.7, 0.9, NaN]), [0.1468, 0.3162]);
    // a diverged (NaN) point is never the best
    assert.deepEqual(refinedGrid(0.1, [NaN, NaN, NaN, NaN, NaN, NaN, 3]), [0.6813, 1.468]);
  });
  it('argmin takes the first of ties and skips NaN; chooseRate takes the lowest validation loss over both stages', () => {
    assert.equal(argmin([3, 1, 1, 2]), 1);
    assert.equal(argmin([NaN, 2, NaN]), 1);
    assert.equal(
      chooseRate([
        { lr: 0.1, validationLoss: 0.31, stage: 1 },
        { lr: 0.1468, validationLoss: 0.29, stage: 2 },
        { lr: 0.2154, validationLoss: 0.3, stage: 1 },
        { lr: 1, validationLoss: null, stage: 1 },
      ]),
      0.1468,
    );
  });
  it('seeds, keys and the validation share', () => {
    assert.deepEqual([0, 1, 2, 3, 4].map((k) => seedOf(7, k)), [7, 9, 11, 13, 15]);
    assert.deepEqual([runKey('adam', 0, false), runKey('adam', 2, false), runKey('adam', 0, true), searchKey('adam', 2, 1)], ['adam', 'adam.run-2', 'adam.tuned-0', 'adam.search-2-1']);
    assert.equal(validationCount(8000), 1600);
  });
});

describe('the search never reads the test set (by construction)', () => {
  const rowsOf = (n: number, first: number): Digits => ({
    images: Float32Array.from({ length: n * 784 }, (_, i) => first + Math.floor(i / 784)),
    labels: Uint8Array.from({ length: n }, (_, i) => (first + i) % 10),
    count: n,
  });
  const train = rowsOf(10, 100);
  // Any read of the test set throws.
  const poisoned = new Proxy({} as Digits, {
    get: (_, property) => {
      throw new Error(`the test set was read (${String(property)})`);
    },
  });
  const config = { optimizer: 'sgd', lr: 0.1, epochs: 1, batch: 2, seed: 1, hidden: [3] };
  it('a search run gets the first 8 training rows to fit and the last 2 to validate, views of the training digits', () => {
    const data = dataFor({ ...config, validation: 2 }, { train, test: poisoned });
    assert.equal(data.train.count, 8);
    assert.equal(data.test.count, 2);
    // row r of the training set holds the value 100 + r everywhere
    assert.deepEqual([data.train.images[0], data.train.images[8 * 784 - 1], data.test.images[0], data.test.images[2 * 784 - 1]], [100, 107, 108, 109]);
    assert.deepEqual(Array.from(data.test.labels), [8, 9]);
    assert.equal(data.train.images.buffer, train.images.buffer, 'a view of the training digits');
    assert.equal(data.test.images.buffer, train.images.buffer, 'a view of the training digits');
  });
  it('a full run gets the test set', () => {
    const test = rowsOf(2, 500);
    assert.equal(dataFor(config, { train, test }).test, test);
  });
});

describe("the report's smoothing, as TensorBoard's", () => {
  it('weight 0.5 on 1, 2, 3: the debiased moving average 1, 5/3, 17/7', () => {
    // last: 0.5, 1.25, 2.125; divided by 1 - 0.5^n: 0.5, 0.75, 0.875
    const smoothed = smoothLikeTensorBoard([1, 2, 3], 0.5);
    assert.deepEqual(smoothed.map((v) => Number(v.toPrecision(12))), [1, Number((5 / 3).toPrecision(12)), Number((17 / 7).toPrecision(12))]);
  });
  it('a non-finite value passes through and does not count; weight 0 is the raw curve', () => {
    const smoothed = smoothLikeTensorBoard([1, NaN, 3], 0.5);
    assert.equal(smoothed[0], 1);
    assert.ok(Number.isNaN(smoothed[1]));
    // last: 0.5, then 0.25 + 1.5 = 1.75 after 2 finite values, / 0.75
    assert.ok(Math.abs(smoothed[2]! - 7 / 3) < 1e-15);
    assert.deepEqual(smoothLikeTensorBoard([4, 1, 9], 0), [4, 1, 9]);
  });
});

/**
 * Shared test helpers: the optimizer registry by class name, the fixture problem's
 * gradient, and a comparison that prints index, actual, expected, difference and
 * tolerance on failure.
 */
import assert from 'node:assert/strict';
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { RULES, type FloatArray, type Optimizer, type ParamSet } from 'nesterov';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test-only registry over differently-typed option records
type AnyOptimizer = Optimizer<any, any, any>;
type Factory = (options: Record<string, unknown>) => AnyOptimizer;

/** Every elementwise rule of the registry, by class name (Muon, a matrix iteration, has its own tests). */
export const OPTIMIZERS: Record<string, Factory> = Object.fromEntries(
  RULES.filter((entry) => entry.rule !== undefined).map((entry) => [entry.name, (options: Record<string, unknown>) => entry.make(options) as unknown as AnyOptimizer]),
);

export function makeOptimizer(name: string, options: Record<string, unknown>): AnyOptimizer {
  const factory = OPTIMIZERS[name];
  if (factory === undefined) throw new Error(`no optimizer ${name}`);
  return factory(options);
}

const identity = (x: number): number => x;

/**
 * Gradient of f(x) = sum (x_i^2 - c_i)^2 / 4 + s * sum x_i x_{i+1} (cyclic), in the
 * operation order of generate.py; `round` is Math.fround for float32 (torch and numpy
 * round after every operation), identity for float64.
 */
export function doubleWellGradient(x: FloatArray, c: FloatArray, coupling: number, out: FloatArray): void {
  const round = x instanceof Float32Array ? Math.fround : identity;
  const s = round(coupling);
  const n = x.length;
  for (let i = 0; i < n; i++) {
    const xi = x[i]!;
    const next = x[(i + 1) % n]!;
    const previous = x[(i - 1 + n) % n]!;
    const cubic = round(xi * round(round(xi * xi) - c[i]!));
    out[i] = round(cubic + round(s * round(next + previous)));
  }
}

/**
 * Asserts |actual_i - expected_i| <= rtol * max_j |expected_j| for every i: a normwise
 * relative tolerance, scaled to the array's magnitude.
 */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  const tolerance = rtol * Math.max(scale, Number.MIN_VALUE);
  for (let i = 0; i < expected.length; i++) {
    const difference = Math.abs(actual[i]! - expected[i]!);
    if (!(difference <= tolerance)) {
      assert.fail(
        `${label}[${i}]: actual ${actual[i]} expected ${expected[i]} difference ${difference} tolerance ${tolerance} (rtol ${rtol} x scale ${scale})`,
      );
    }
  }
}

/** The largest normwise relative difference (for reporting measured agreement). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]!));
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  }
  return scale === 0 ? worst : worst / scale;
}

/**
 * The young generation's growth, and the garbage collections, over 50,000 updates of
 * `opt` on a small fixed set (after 60,000 of warm-up and compilation; the best of three
 * windows, so that a collection the machine triggered elsewhere does not count).
 */
export async function youngGenerationGrowth(opt: { update(params: ParamSet, grads: ParamSet): unknown }): Promise<{ bytes: number; collections: number }> {
  let collections = 0;
  const observer = new PerformanceObserver((list) => {
    collections += list.getEntries().length;
  });
  observer.observe({ entryTypes: ['gc'] });
  const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_used_size;
  const params = { W: new Float32Array(64).fill(0.5), b: new Float32Array(8).fill(-0.5) };
  const grads = { W: new Float32Array(64).fill(0.1), b: new Float32Array(8).fill(-0.2) };
  const steps = (count: number) => {
    for (let t = 0; t < count; t++) opt.update(params, grads);
  };
  steps(50_000);
  await new Promise((resolve) => setTimeout(resolve, 200));
  steps(10_000);
  let young = 0;
  let windowCollections = 0;
  for (let attempt = 0; attempt < 3; attempt++) {
    const before = collections;
    const used = newSpace();
    steps(50_000);
    young = newSpace() - used;
    await new Promise((resolve) => setTimeout(resolve, 20));
    windowCollections = collections - before;
    if (windowCollections === 0 && young < 16 * 1024) break;
  }
  observer.disconnect();
  return { bytes: young, collections: windowCollections };
}

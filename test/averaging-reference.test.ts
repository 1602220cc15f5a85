/**
 * EMA (with and without warm-up) and SWA against torch 1.13's
 * torch.optim.swa_utils.AveragedModel over 60 steps of torch.optim.SGD with momentum
 * (test/fixtures/generate_averaging.py, reference-averaging.json).
 *
 * float64: our Momentum('pytorch') runs inside the wrapper on the same problem, its
 * gradient recomputed here with torch's operation order; the params and the averages
 * follow torch's to 1e-14 (relative to 1 + |value|; they differ by an ulp or two: torch's
 * SGD step and the warm-up's `pow` round differently in the last bit).
 *
 * float32: the averaging alone, on torch's own float32 trajectory, replayed by an inner
 * optimizer that writes the recorded params. Ours computes each element in double and
 * rounds once; torch rounds every float32 operation: the averages agree to a few float32
 * ulps (4e-7 relative to 1 + |value|).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { EMA, Momentum, SWA, type FloatArray, type OptimizerLike, type ParamSet } from 'nesterov';

interface Case {
  kind: 'EMA' | 'SWA';
  decay?: number;
  gamma?: number;
  power?: number;
  start?: number;
  every?: number;
}

interface Run {
  params: number[][];
  averages: Record<string, (number[] | null)[]>;
}

interface Reference {
  torch: string;
  steps: number;
  a: number[];
  c: number[];
  w0: number[];
  lr: number;
  momentum: number;
  configs: Record<string, Case>;
  float64: Run;
  float32: Run;
}

const reference = JSON.parse(readFileSync(fileURLToPath(new URL('./fixtures/reference-averaging.json', import.meta.url)), 'utf8')) as Reference;

function wrap(kase: Case, inner: OptimizerLike): EMA | SWA {
  if (kase.kind === 'SWA') return new SWA(inner, { start: kase.start!, every: kase.every! });
  return kase.gamma === undefined ? new EMA(inner, { decay: kase.decay! }) : new EMA(inner, { decay: kase.decay!, warmup: { gamma: kase.gamma, power: kase.power! } });
}

/** The generator's gradient, in its operation order. */
function gradient(w: Float64Array, t: number): Float64Array {
  const { a, c } = reference;
  return Float64Array.from(w, (x, i) => a[i]! * (x - c[i]!) + 0.05 * x * x * x + 0.1 * ((((7 * t + 3 * i) % 11) - 5) / 5));
}

function assertClose(actual: ArrayLike<number>, expected: readonly number[], tolerance: number, what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i]! - expected[i]!) / (1 + Math.abs(expected[i]!));
    assert.ok(error <= tolerance, `${what}[${i}]: ${actual[i]} vs torch ${expected[i]} (relative error ${error})`);
  }
}

/** An inner optimizer that writes torch's recorded params: step t sets params.w to the t-th row. */
class Replay implements OptimizerLike {
  readonly nonFinite = 'error' as const;
  #t = 0;
  constructor(private readonly rows: readonly number[][]) {}
  check(): boolean {
    return true;
  }
  update(params: ParamSet): boolean {
    ((params as Record<string, FloatArray>).w!).set(this.rows[this.#t]!);
    this.#t += 1;
    return true;
  }
  stateDict(): unknown {
    return { t: this.#t };
  }
  loadStateDict(): void {}
  reset(): void {}
  stateBuffersPerParam(): number {
    return 0;
  }
}

describe(`EMA and SWA against torch ${reference.torch} AveragedModel, ${reference.steps} steps of SGD with momentum`, () => {
  for (const [name, kase] of Object.entries(reference.configs)) {
    it(`${name} (float64, our Momentum('pytorch') inside): params and averages at every step to 1e-14`, () => {
      const opt = wrap(kase, new Momentum({ variant: 'pytorch', lr: reference.lr, momentum: reference.momentum }));
      const params = { w: Float64Array.from(reference.w0) };
      for (let t = 1; t <= reference.steps; t++) {
        assert.equal(opt.update(params, { w: gradient(params.w, t) }), true);
        assertClose(params.w, reference.float64.params[t - 1]!, 1e-14, `params after step ${t}`);
        const expected = reference.float64.averages[name]![t - 1]!;
        const average = opt.averaged().w;
        if (expected === null) assert.equal(average, undefined, `no average yet after step ${t}`);
        else assertClose(average!, expected, 1e-14, `${name} average after step ${t}`);
      }
    });

    it(`${name} (float32, torch's trajectory replayed): the averages at every step to 4e-7`, () => {
      const opt = wrap(kase, new Replay(reference.float32.params));
      const params = { w: new Float32Array(reference.w0) };
      const grads = { w: new Float32Array(5) };
      for (let t = 1; t <= reference.steps; t++) {
        opt.update(params, grads);
        const expected = reference.float32.averages[name]![t - 1]!;
        const average = opt.averaged().w;
        if (expected === null) {
          assert.equal(average, undefined);
          continue;
        }
        assert.ok(average instanceof Float32Array, 'the average is kept in the parameter dtype');
        assertClose(average, expected, 4e-7, `${name} average after step ${t}`);
      }
    });
  }

  it('the SWA schedule: start 10, every 3 averages steps 10, 13, ..., 58 (17 averages)', () => {
    const opt = new SWA(new Replay(reference.float64.params), { start: 10, every: 3 });
    const params = { w: new Float64Array(5) };
    const taken: number[] = [];
    for (let t = 1; t <= reference.steps; t++) {
      const before = opt.count('w');
      opt.update(params, { w: new Float64Array(5) });
      if (opt.count('w') > before) taken.push(t);
    }
    assert.deepEqual(taken, Array.from({ length: 17 }, (_v, k) => 10 + 3 * k));
  });
});

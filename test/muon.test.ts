/**
 * Muon against the reference algorithm (test/fixtures/generate_muon.py: the
 * authors' muon.py written out in numpy, float64 with a float32 run beside it).
 *
 * Tolerances (normwise relative: ||actual - expected|| / ||expected|| over the array):
 * - Orthogonalised update, JS on float64: 1e-9. The fixture stores the outputs to 10
 *   significant digits (0.9 MB less JSON), which is the whole of the measured error:
 *   1.7e-10 (100x50, 50x100), 8.9e-11 (784x100).
 * - Orthogonalised update in float32 (JS and wasm) against the float64 reference: 1e-5.
 *   Rounding to float32 (6e-8) in every product, amplified by the quintic's slope at the
 *   small singular values (a = 3.4 per step); numpy's own float32 run is 1.3e-6 to 1.6e-6
 *   from float64 (the generator prints it). Measured: JS float32 (double sums, rounded
 *   on store) 2.1e-7 to 2.8e-7; wasm (float32 sums, 4 lanes) 1.0e-6 to 1.2e-6.
 * - Since every singular value moves by at most the spectral norm of the difference,
 *   which is at most its Frobenius norm (Weyl), the band [0.68, 1.14] that the generator
 *   checks by SVD on the reference holds for ours within tolerance x ||X||_F.
 * - Trajectories (25 steps, params at 5 checkpoints and the final momentumBuffer): float64
 *   against the float64 reference 1e-12 (measured worst 4.6e-16: summation order only);
 *   float32 (JS and wasm) against numpy's float32 run 1e-5 (measured worst 4.4e-7 JS,
 *   4.2e-7 wasm, both with weight decay).
 */
import assert from 'node:assert/strict';
import { PerformanceObserver } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { getHeapSpaceStatistics } from 'node:v8';
import { AdamW, Muon, ParamStore, StateError, UpdateError, decodeState, encodeState, partition, type FloatArray } from 'nesterov';

interface OrthoCase { name: string; rows: number; cols: number; seed: number; output: number[]; singularValues: number[] }
interface TrajectoryCase {
  label: string;
  options: Record<string, unknown>;
  dtype: 'float32' | 'float64';
  trajectory: { step: number; params: Record<string, number[]> }[];
  state: Record<string, number[]>;
}
interface MuonFixture {
  band: [number, number];
  orthogonalisation: OrthoCase[];
  problem: { shapes: Record<string, [number, number]>; steps: number; checkpoints: number[]; paramSeeds: number[]; targetSeeds: number[] };
  cases: TrajectoryCase[];
}

const fixture = JSON.parse(readFileSync(fileURLToPath(new URL('./fixtures/reference-muon.json', import.meta.url)), 'utf8')) as MuonFixture;

/** mulberry32, the twin of the generator's. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1) >>> 0;
    t = (t ^ ((t + (Math.imul(t ^ (t >>> 7), t | 61) >>> 0)) >>> 0)) >>> 0;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n standard normals by Box-Muller, the twin of the generator's `gaussian`. */
function gaussian(seed: number, n: number): number[] {
  const next = mulberry32(seed);
  const out: number[] = [];
  while (out.length < n) {
    const u1 = 1 - next();
    const u2 = next();
    const r = Math.sqrt(-2 * Math.log(u1));
    out.push(r * Math.cos(2 * Math.PI * u2), r * Math.sin(2 * Math.PI * u2));
  }
  return out.slice(0, n);
}

function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < expected.length; i++) {
    diff += (actual[i]! - expected[i]!) ** 2;
    norm += expected[i]! ** 2;
  }
  return Math.sqrt(diff / norm);
}

function frobenius(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! ** 2;
  return Math.sqrt(sum);
}

type Kind = 'js64' | 'js32' | 'wasm';

/**
 * The orthogonalised update of G, read off one Muon step: with momentum 0 (so u = g),
 * lr 1 and p = 0, p becomes -sqrt(max(1, rows / cols)) X.
 */
function orthogonalised(c: OrthoCase, kind: Kind): FloatArray {
  const g = gaussian(c.seed, c.rows * c.cols);
  const Type = kind === 'js64' ? Float64Array : Float32Array;
  const store = kind === 'wasm' ? new ParamStore({ w: [c.rows, c.cols] }) : undefined;
  const p = store?.params.w ?? new Type(g.length);
  const grad = store?.grads.w ?? new Type(g.length);
  grad.set(g);
  const opt = new Muon({ lr: 1, momentum: 0, backend: kind === 'wasm' ? 'wasm' : 'js', shapes: store ? undefined : { w: [c.rows, c.cols] } });
  if (store !== undefined) opt.update(store.params, store.grads);
  else opt.update({ w: p }, { w: grad });
  assert.equal(opt.backendUsed, kind === 'wasm' ? 'wasm' : 'js');
  const scale = Math.sqrt(Math.max(1, c.rows / c.cols));
  return p.map((v) => -v / scale);
}

const measured: Record<string, number> = {};
after(() => {
  if (process.env.MUON_MEASURED !== undefined) console.log(JSON.stringify(measured, null, 1));
});

describe('Muon: the orthogonalised update against the reference (SVD band checked in the generator)', () => {
  const [lo, hi] = fixture.band;
  for (const c of fixture.orthogonalisation) {
    it(`${c.name} (${c.rows > c.cols ? 'tall: the transposed path' : 'wide'}): the reference's singular values lie in [${lo}, ${hi}]`, () => {
      const sv = c.singularValues;
      assert.equal(sv.length, Math.min(c.rows, c.cols));
      assert.ok(Math.min(...sv) >= lo && Math.max(...sv) <= hi, `${Math.min(...sv)} .. ${Math.max(...sv)}`);
      // sum sigma^2 = ||X||_F^2: the stored output and the stored SVD agree.
      assert.ok(Math.abs(frobenius(c.output) - Math.sqrt(sv.reduce((a, s) => a + s * s, 0))) < 1e-8);
    });
    for (const kind of ['js64', 'js32', 'wasm'] as const) {
      const tol = kind === 'js64' ? 1e-9 : 1e-5;
      it(`${c.name} on ${kind}: within ${tol} of the reference, so its singular values lie in [${lo} - ${tol} ||X||, ${hi} + ${tol} ||X||]`, () => {
        const x = orthogonalised(c, kind);
        const error = relativeError(x, c.output);
        measured[`${c.name} ${kind}`] = error;
        assert.ok(error <= tol, `relative error ${error} > ${tol}`);
        // Weyl: |sigma_i(X) - sigma_i(ref)| <= ||X - ref||_2 <= ||X - ref||_F.
        const shift = error * frobenius(c.output);
        assert.ok(lo - shift > 0.67 && hi + shift < 1.15, `shift ${shift}`);
      });
    }
  }
});

function runTrajectory(c: TrajectoryCase, kind: Kind, split?: number): { params: Record<string, FloatArray>[]; opt: Muon } {
  const shapes = fixture.problem.shapes;
  const names = Object.keys(shapes);
  const Type = c.dtype === 'float64' ? Float64Array : Float32Array;
  const store = kind === 'wasm' ? new ParamStore(shapes) : undefined;
  const params: Record<string, FloatArray> = {};
  const grads: Record<string, FloatArray> = {};
  const targets: Record<string, FloatArray> = {};
  names.forEach((name, k) => {
    const [r, cols] = shapes[name]!;
    params[name] = store?.params[name] ?? new Type(r * cols);
    grads[name] = store?.grads[name] ?? new Type(r * cols);
    params[name].set(gaussian(fixture.problem.paramSeeds[k]!, r * cols));
    targets[name] = new Type(gaussian(fixture.problem.targetSeeds[k]!, r * cols));
  });
  const options = { ...c.options, backend: kind === 'wasm' ? 'wasm' : 'js', shapes: store ? undefined : shapes } as const;
  let opt = new Muon(options);
  const snapshots: Record<string, FloatArray>[] = [];
  for (let step = 1; step <= fixture.problem.steps; step++) {
    for (const name of names) {
      const p = params[name]!;
      const g = grads[name]!;
      const t = targets[name]!;
      for (let i = 0; i < p.length; i++) g[i] = p[i]! - t[i]! + 0.1 * p[i]! * p[i]! * p[i]!;
    }
    opt.update(store?.params ?? params, store?.grads ?? grads);
    if (split === step) {
      // Save, drop, resume in a fresh optimizer (bytes through the file format).
      const saved = decodeState(encodeState(opt.stateDict()));
      opt = new Muon(options);
      opt.loadStateDict(saved);
    }
    if (fixture.problem.checkpoints.includes(step)) {
      snapshots.push(Object.fromEntries(names.map((n) => [n, params[n]!.slice()])));
    }
  }
  return { params: snapshots, opt };
}

describe('Muon: trajectories against the reference (25 steps, tall 6x4 and wide 3x5)', () => {
  for (const c of fixture.cases) {
    const kinds: Kind[] = c.dtype === 'float64' ? ['js64'] : ['js32', 'wasm'];
    for (const kind of kinds) {
      const tol = c.dtype === 'float64' ? 1e-12 : 1e-5;
      it(`${c.label}, ${c.dtype} on ${kind}: params at every checkpoint and the final momentumBuffer within ${tol}`, () => {
        const { params, opt } = runTrajectory(c, kind);
        let worst = 0;
        c.trajectory.forEach((point, i) => {
          for (const [name, expected] of Object.entries(point.params)) {
            const error = relativeError(params[i]![name]!, expected);
            worst = Math.max(worst, error);
            assert.ok(error <= tol, `step ${point.step} ${name}: relative error ${error} > ${tol}`);
          }
        });
        for (const [name, expected] of Object.entries(c.state)) {
          const state = opt.stateOf(name)!;
          assert.equal(state.step, fixture.problem.steps);
          const error = relativeError(state.momentumBuffer, expected);
          worst = Math.max(worst, error);
          assert.ok(error <= tol, `momentumBuffer ${name}: relative error ${error} > ${tol}`);
        }
        measured[`${c.label} ${kind}`] = worst;
      });
    }
  }
});

describe('Muon: hand-worked steps on rank-1 matrices', () => {
  /**
   * For a rank-1 u = s v w^T (unit v, w), X = u / (||u|| + 1e-7) has one singular value
   * x0 = s / (s + 1e-7), and each Newton-Schulz step maps it by the scalar quintic
   * x -> a x + b x^3 + c x^5 (A = x^2 v v^T, B X = (b x^2 + c x^4) x v w^T).
   */
  function quintic(x0: number, steps: number): number {
    let x = x0;
    for (let i = 0; i < steps; i++) x = 3.4445 * x - 4.775 * x ** 3 + 2.0315 * x ** 5;
    return x;
  }

  it('wide 1x2, g = [3, 4], defaults: u = 0.0975 g, p = -0.02 sigma5 [0.6, 0.8]', () => {
    // m = 0.05 g; u = 0.05 g + 0.95 * 0.05 g = 0.0975 g, ||u|| = 0.4875.
    const sigma = quintic(0.4875 / (0.4875 + 1e-7), 5);
    assert.ok(Math.abs(sigma - 0.8) < 0.2); // the band's middle, as a sanity bound
    const p = new Float64Array(2);
    const opt = new Muon({ shapes: { w: [1, 2] }, backend: 'js' });
    opt.update({ w: p }, { w: new Float64Array([3, 4]) });
    assert.ok(Math.abs(p[0]! - -0.02 * sigma * 0.6) < 1e-16, `${p[0]}`);
    assert.ok(Math.abs(p[1]! - -0.02 * sigma * 0.8) < 1e-16, `${p[1]}`);
    // m = 0.95 * 0 + (1 - 0.95) g, with 1 - 0.95 as a double computes it (0.05000000000000004).
    assert.deepEqual([...opt.stateOf('w')!.momentumBuffer], [(1 - 0.95) * 3, (1 - 0.95) * 4]);
  });

  it('tall 2x1 (the transposed path), nesterov false, weight decay: scaled by sqrt(2)', () => {
    // m = u = 0.05 g, ||u|| = 0.25; p = p (1 - 0.1 * 0.5) - 0.1 sqrt(2) sigma3 [0.6, 0.8].
    const sigma = quintic(0.25 / (0.25 + 1e-7), 3);
    const p = new Float64Array([1, -1]);
    const opt = new Muon({ shapes: { w: [2, 1] }, backend: 'js', lr: 0.1, weightDecay: 0.5, nesterov: false, nsSteps: 3 });
    opt.update({ w: p }, { w: new Float64Array([3, 4]) });
    const expected = [1 * 0.95 - 0.1 * Math.SQRT2 * sigma * 0.6, -1 * 0.95 - 0.1 * Math.SQRT2 * sigma * 0.8];
    assert.ok(Math.abs(p[0]! - expected[0]!) < 1e-15 && Math.abs(p[1]! - expected[1]!) < 1e-15, `${[...p]} vs ${expected}`);
  });

  it('maximize negates the gradient: the same step the other way', () => {
    const sigma = quintic(0.4875 / (0.4875 + 1e-7), 5);
    const p = new Float32Array(2);
    new Muon({ shapes: { w: [1, 2] }, backend: 'wasm', maximize: true }).update({ w: p }, { w: new Float32Array([3, 4]) });
    assert.ok(Math.abs(p[0]! - 0.02 * sigma * 0.6) < 1e-8 && Math.abs(p[1]! - 0.02 * sigma * 0.8) < 1e-8, `${[...p]}`);
  });
});

describe('Muon: resume', () => {
  for (const [dtype, kind] of [['float64', 'js64'], ['float32', 'js32'], ['float32', 'wasm']] as const) {
    it(`saved at step 10 and loaded into a fresh Muon: bit-identical to the uninterrupted run (${kind})`, () => {
      const c = fixture.cases.find((k) => k.dtype === dtype && k.label === 'defaults')!;
      const straight = runTrajectory(c, kind);
      const resumed = runTrajectory(c, kind, 10);
      straight.params.forEach((snapshot, i) => {
        for (const name of Object.keys(snapshot)) assert.deepEqual(resumed.params[i]![name], snapshot[name]);
      });
      assert.deepEqual(resumed.opt.stateDict(), straight.opt.stateDict());
    });
  }
});

describe('Muon: errors name the parameter and leave params and state as they were', () => {
  function setup() {
    const store = new ParamStore({ W: [3, 4], b: 4 });
    store.grads.W.fill(0.5);
    store.grads.b.fill(0.5);
    return store;
  }

  it('a parameter with no shape', () => {
    const p = new Float64Array([1, 2]);
    assert.throws(() => new Muon().update({ bias: p }, { bias: new Float64Array(2) }), {
      name: 'UpdateError',
      message: "Muon.update: parameter 'bias' has no shape: Muon updates 2-D parameters only (give it in options.shapes as [rows, cols], use a ParamStore, or send 'bias' to another optimizer with partition())",
    });
    assert.deepEqual([...p], [1, 2]);
  });

  it('a 1-D parameter of a ParamStore, before anything is written', () => {
    const store = setup();
    const opt = new Muon();
    assert.throws(() => opt.update(store.params, store.grads), (error: unknown) => {
      assert.ok(error instanceof UpdateError);
      assert.equal(error.message, "Muon.update: parameter 'b' has shape [4]: Muon updates 2-D parameters only (send 'b' to another optimizer with partition())");
      assert.equal(error.param, 'b');
      return true;
    });
    assert.deepEqual([...store.params.W], new Array(12).fill(0));
    assert.equal(opt.stateOf('W'), undefined);
    assert.equal(opt.stepCount, 0);
  });

  it('a shape that does not match the length', () => {
    assert.throws(() => new Muon({ shapes: { w: [2, 2] } }).update({ w: new Float32Array(6) }, { w: new Float32Array(6) }), {
      message: "Muon.update: parameter 'w' has 6 elements, not the 2 x 2 of its shape",
    });
  });

  it('options', () => {
    assert.throws(() => new Muon({ shapes: { w: [2, 3, 4] } }), { message: "Muon: invalid shapes['w']: an Array of length 3 (expected [rows, cols], two integers >= 1 (Muon updates 2-D parameters only))" });
    assert.throws(() => new Muon({ momentum: 1 }), { message: 'Muon: invalid momentum: 1 (expected a number in [0, 1))' });
    assert.throws(() => new Muon({ nsSteps: 2.5 }), { message: 'Muon: invalid nsSteps: 2.5 (expected an integer >= 0)' });
  });

  it('a non-finite gradient: nothing written', () => {
    const p = new Float32Array([1, 2, 3, 4]);
    const opt = new Muon({ shapes: { w: [2, 2] } });
    assert.throws(() => opt.update({ w: p }, { w: new Float32Array([0, NaN, 0, 0]) }), { message: "Muon.update: gradient 'w' is not finite at index 1 (NaN)" });
    assert.deepEqual([...p], [1, 2, 3, 4]);
    assert.equal(opt.stateOf('w'), undefined);
  });

  it('a state saved by another optimizer: the state is kept', () => {
    const opt = new Muon({ shapes: { w: [2, 2] } });
    opt.update({ w: new Float64Array(4) }, { w: new Float64Array([1, 2, 3, 4]) });
    const before = opt.stateDict();
    assert.throws(() => opt.loadStateDict({ ...before, optimizer: 'Adam' }), (error: unknown) => {
      assert.ok(error instanceof StateError);
      assert.equal(error.message, 'Muon.loadStateDict: the state was saved by Adam, not Muon');
      return true;
    });
    assert.deepEqual(opt.stateDict(), before);
  });
});

// ---------------------------------------------------------------------------------
// No allocation after the first step: this file run as a child process with
// MUON_ALLOCATION_PROBE=<kind> measures the young generation over 20,000 steps after a
// warm-up (a process per kind, so no run meets code another deoptimised).

type ProbeKind = 'plain-js' | 'plain-wasm' | 'partition-store' | 'partition-plain';
const PROBE_STEPS = 20_000;

function probeSetup(kind: ProbeKind): { opt: { update(p: never, g: never): boolean }; params: unknown; grads: unknown } {
  const lr = (t: number): number => 0.02 / (1 + t);
  const assignOf = (name: string): string => (name === 'b' ? 'adamw' : 'muon');
  if (kind === 'partition-store') {
    const store = new ParamStore({ W: [8, 4], b: 4, V: [4, 12] });
    store.grads.W.fill(0.1);
    store.grads.b.fill(0.3);
    store.grads.V.fill(-0.2);
    const opt = partition(assignOf, { muon: new Muon({ backend: 'wasm', lr }), adamw: new AdamW({ backend: 'wasm', lr }) });
    return { opt, params: store.params, grads: store.grads };
  }
  const params = { W: new Float32Array(32), b: new Float32Array(4), V: new Float32Array(48) };
  const grads = { W: new Float32Array(32).fill(0.1), b: new Float32Array(4).fill(0.3), V: new Float32Array(48).fill(-0.2) };
  const shapes = { W: [8, 4], V: [4, 12] } as const;
  if (kind === 'partition-plain') {
    const opt = partition(assignOf, { muon: new Muon({ shapes, lr }), adamw: new AdamW({ lr }) });
    return { opt, params, grads };
  }
  const opt = new Muon({ shapes, lr, backend: kind === 'plain-js' ? 'js' : 'wasm' });
  return { opt, params: { W: params.W, V: params.V }, grads: { W: grads.W, V: grads.V } };
}

function probeSteps(opt: { update(p: never, g: never): boolean }, params: unknown, grads: unknown, count: number): void {
  for (let t = 0; t < count; t++) opt.update(params as never, grads as never);
}

const probeKind = process.env.MUON_ALLOCATION_PROBE as ProbeKind | undefined;
if (probeKind !== undefined) {
  const { opt, params, grads } = probeSetup(probeKind);
  const newSpace = () => getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')!.space_used_size;
  probeSteps(opt, params, grads, PROBE_STEPS);
  await new Promise((resolve) => setTimeout(resolve, 200)); // background compilation
  probeSteps(opt, params, grads, 2000);
  // The least growth of three windows: an allocation per step shows in every window, while
  // a loaded machine's late compilation and deoptimisation (which allocate on the heap
  // too) land in one window at a time.
  // A window in which a collection ran says nothing (the space was emptied): it is not counted.
  let collections = 0;
  const observer = new PerformanceObserver((list) => {
    collections += list.getEntries().length;
  });
  observer.observe({ entryTypes: ['gc'] });
  let grown = Infinity;
  for (let attempt = 0; attempt < 5 && grown >= 65536; attempt++) {
    const [before, collected] = [newSpace(), collections];
    probeSteps(opt, params, grads, PROBE_STEPS);
    const used = newSpace() - before;
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (collections === collected) grown = Math.min(grown, used);
  }
  observer.disconnect();
  console.log(`PROBE ${JSON.stringify({ grown })}`);
} else {
  describe('Muon: no allocation after the first step', () => {
    const run = promisify(execFile);
    const self = fileURLToPath(import.meta.url);
    for (const kind of ['plain-js', 'plain-wasm', 'partition-store', 'partition-plain'] as const) {
      it(`${kind}: the young generation grows by less than 64 KB over ${PROBE_STEPS} steps (one object per step would be 320 KB)`, async () => {
        const { stdout } = await run(process.execPath, ['--import', 'tsx', self], { env: { ...process.env, NODE_TEST_CONTEXT: undefined, MUON_ALLOCATION_PROBE: kind } });
        const line = stdout.split('\n').find((l) => l.startsWith('PROBE '))!;
        const { grown } = JSON.parse(line.slice(6)) as { grown: number };
        assert.ok(grown < 65536, `grew by ${grown} bytes`);
      });
    }
  });
}

describe('Muon: the wasm layout pads a dimension of 256 floats (cache aliasing) with zero columns', () => {
  it('256x8 (tall: the iteration runs on 8 x 256, stored 8 x 272): wasm within 1e-5 of JS float64', () => {
    const c: OrthoCase = { name: '256x8', rows: 256, cols: 8, seed: 4, output: [], singularValues: [] };
    const expected = orthogonalised(c, 'js64');
    const error = relativeError(orthogonalised(c, 'wasm'), expected);
    assert.ok(error <= 1e-5, `relative error ${error}`);
  });
});

describe('Muon: a step that overflows is applied, then reported', () => {
  it('float32 p = 3e38 pushed past 3.4e38 by lr 1e38: UpdateError naming the parameter, p is Infinity, the step counted', () => {
    const p = new Float32Array([3e38, 3e38]);
    const opt = new Muon({ shapes: { w: [1, 2] }, lr: 1e38, backend: 'js' });
    assert.throws(() => opt.update({ w: p }, { w: new Float32Array([-1, -1]) }), (error: unknown) => {
      assert.ok(error instanceof UpdateError);
      assert.equal(
        error.message,
        "Muon.update: the step overflowed: parameter 'w' or its momentumBuffer holds a NaN or an Infinity, from finite gradients. " +
          'This step WAS applied, to every parameter. Use a smaller lr, and restore the params and state saved before this step',
      );
      assert.equal(error.param, 'w');
      return true;
    });
    // X = sigma5 [-0.707, -0.707] with sigma5 in [0.68, 1.14]: p - lr X >= 3e38 + 0.48e38 > 3.4e38.
    assert.deepEqual([...p], [Infinity, Infinity]);
    assert.equal(opt.stepCount, 1);
  });
});

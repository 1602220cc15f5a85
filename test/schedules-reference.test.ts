/**
 * The schedules against their references at every step, through the package's exports:
 * torch 1.13's OneCycleLR, CosineAnnealingWarmRestarts and ReduceLROnPlateau, optax 0.2.8's
 * polynomial_schedule, and Keras's PiecewiseConstantDecay and warmup-stable-decay written
 * out from their definitions (test/fixtures/generate_schedules.py and
 * generate_schedules_optax.py).
 *
 * Tolerance 1e-12 relative, per step: the closed forms are torch's and optax's expressions
 * in their order, in float64, so they differ only where V8's Math.cos / Math.pow and the C
 * library's round a last bit differently (a few ulps, 1e-15). The plateau's rates and the
 * piecewise constants are compared exactly: no arithmetic differs there.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  cosineRestarts,
  oneCycle,
  oneCycleMomentum,
  piecewiseConstant,
  polynomialDecay,
  reduceOnPlateau,
  SGD,
  warmupStableDecay,
  type Anneal,
  type CosineRestartsOptions,
  type OneCycleOptions,
  type PiecewiseConstantOptions,
  type PolynomialDecayOptions,
  type ReduceOnPlateauOptions,
  type Schedule,
  type WarmupStableDecayOptions,
} from 'nesterov';

interface Case<O> {
  id: string;
  options: O;
  lr: number[];
}

interface Reference {
  versions: Record<string, string>;
  oneCycle: (Case<OneCycleOptions> & { momentumOptions: { baseMomentum?: number; maxMomentum?: number }; momentum: number[] })[];
  cosineRestarts: Case<CosineRestartsOptions>[];
  metrics: Record<string, number[]>;
  reduceOnPlateau: (Case<ReduceOnPlateauOptions> & { metric: string; best: (number | null)[]; numBadEpochs: number[]; cooldownCounter: number[] })[];
  piecewiseConstant: Case<PiecewiseConstantOptions>[];
  warmupStableDecay: Case<WarmupStableDecayOptions>[];
}

const read = <T>(name: string): T => JSON.parse(readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), 'utf8')) as T;
const torch = read<Reference>('reference-schedules.json');
const optax = read<{ versions: Record<string, string>; polynomialDecay: Case<PolynomialDecayOptions>[] }>('reference-schedules-optax.json');

const RTOL = 1e-12;

/** |actual - expected| <= RTOL * |expected| at every step (0 only where the reference is 0). */
function assertSteps(schedule: Schedule, expected: readonly number[], label: string): void {
  assert.ok(expected.length >= 300, `${label}: at least 300 steps`);
  for (let step = 0; step < expected.length; step++) {
    const actual = schedule(step);
    const want = expected[step]!;
    const difference = Math.abs(actual - want);
    if (!(difference <= RTOL * Math.abs(want))) {
      assert.fail(`${label} at step ${step}: actual ${actual} expected ${want} relative difference ${difference / Math.abs(want)} (tolerance ${RTOL})`);
    }
  }
}

describe(`oneCycle = torch ${torch.versions.torch} OneCycleLR`, () => {
  for (const c of torch.oneCycle) {
    it(`${c.id}: the lr and the momentum of every one of ${c.lr.length} updates`, () => {
      assertSteps(oneCycle(c.options), c.lr, `${c.id} lr`);
      const momentum = oneCycleMomentum({
        ...c.momentumOptions,
        totalSteps: c.options.totalSteps,
        pctStart: c.options.pctStart,
        anneal: c.options.anneal as Anneal | undefined,
        threePhase: c.options.threePhase,
      });
      assertSteps(momentum, c.momentum, `${c.id} momentum`);
    });
  }
  it('the cases cover both anneals, two and three phases, and a rise shorter than one step', () => {
    const covered = new Set(torch.oneCycle.map((c) => `${c.options.anneal ?? 'cos'}/${c.options.threePhase === true ? 3 : 2}`));
    assert.deepEqual([...covered].sort(), ['cos/2', 'cos/3', 'linear/2', 'linear/3']);
    assert.ok(torch.oneCycle.some((c) => (c.options.pctStart ?? 0.3) * c.options.totalSteps < 1));
  });
});

describe(`cosineRestarts = torch ${torch.versions.torch} CosineAnnealingWarmRestarts`, () => {
  for (const c of torch.cosineRestarts) {
    it(`${c.id}: every one of ${c.lr.length} updates`, () => assertSteps(cosineRestarts(c.options), c.lr, c.id));
  }
});

describe(`polynomialDecay = optax ${optax.versions.optax} polynomial_schedule (float64)`, () => {
  for (const c of optax.polynomialDecay) {
    it(`${c.id}: every one of ${c.lr.length} updates`, () => assertSteps(polynomialDecay(c.options), c.lr, c.id));
  }
});

describe("piecewiseConstant = Keras's PiecewiseConstantDecay (step <= boundary keeps the earlier value)", () => {
  for (const c of torch.piecewiseConstant) {
    it(`${c.id}: every one of ${c.lr.length} updates, exactly`, () => {
      const schedule = piecewiseConstant(c.options);
      assert.deepEqual(c.lr.map((_, step) => schedule(step)), c.lr);
    });
  }
});

describe('warmupStableDecay = its definition', () => {
  for (const c of torch.warmupStableDecay) {
    it(`${c.id}: every one of ${c.lr.length} updates`, () => assertSteps(warmupStableDecay(c.options), c.lr, c.id));
  }
});

describe(`reduceOnPlateau = torch ${torch.versions.torch} ReduceLROnPlateau fed the committed metrics`, () => {
  for (const c of torch.reduceOnPlateau) {
    it(`${c.id}: the rate and the counters after each of ${c.lr.length} reports, exactly`, () => {
      const plateau = reduceOnPlateau(c.options);
      const metrics = torch.metrics[c.metric]!;
      metrics.forEach((metric, epoch) => {
        const returned = plateau.report(metric);
        const state = plateau.stateDict();
        const where = `${c.id} after report ${epoch} (metric ${metric})`;
        assert.equal(returned, c.lr[epoch], `${where}: lr`);
        assert.equal(plateau(epoch), c.lr[epoch], `${where}: schedule value`);
        assert.equal(state.best, c.best[epoch], `${where}: best`);
        assert.equal(state.numBadEpochs, c.numBadEpochs[epoch], `${where}: numBadEpochs`);
        assert.equal(state.cooldownCounter, c.cooldownCounter[epoch], `${where}: cooldownCounter`);
        assert.equal(state.epochs, epoch + 1);
      });
      assert.ok(new Set(c.lr).size >= 3, 'the sequence makes the rate drop at least twice');
    });
  }
  it('the cases cover both modes and both threshold modes, with cooldown', () => {
    const covered = new Set(torch.reduceOnPlateau.map((c) => `${c.options.mode ?? 'min'}/${c.options.thresholdMode ?? 'rel'}`));
    assert.deepEqual([...covered].sort(), ['max/abs', 'max/rel', 'min/abs', 'min/rel']);
    assert.ok(torch.reduceOnPlateau.some((c) => Math.max(...c.cooldownCounter) > 0));
  });
  it('an SGD with lr: plateau steps at the reported rate (update k uses the rate after the reports so far)', () => {
    const c = torch.reduceOnPlateau.find((x) => x.id === 'min-abs-cooldown')!;
    const plateau = reduceOnPlateau(c.options);
    const opt = new SGD({ lr: plateau });
    const w = new Float64Array([0]);
    const metrics = torch.metrics[c.metric]!;
    let expected = 0;
    for (let epoch = 0; epoch < 60; epoch++) {
      opt.update({ w }, { w: new Float64Array([-1]) }); // w += lr
      expected += epoch === 0 ? c.options.lr : c.lr[epoch - 1]!;
      plateau.report(metrics[epoch]!);
    }
    assert.ok(Math.abs(w[0]! - expected) <= 1e-15 * expected, `w ${w[0]} expected ${expected}`);
  });
});

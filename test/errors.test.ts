/**
 * Bad input, table-driven. Every invalid option fails at construction naming the
 * option and the value. Every bad `update` throws naming the parameter (and the first
 * bad index) with params and optimizer state deep-equal to what they were before.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Adam,
  EMA,
  GradientAccumulation,
  Lookahead,
  Nesterov,
  QHM,
  SGD,
  SWA,
  UpdateError,
  clipGradValue,
  cosineRestarts,
  oneCycle,
  oneCycleMomentum,
  piecewiseConstant,
  polynomialDecay,
  reduceOnPlateau,
  warmupStableDecay,
  type FloatArray,
  type OptimizerLike,
  type ParamSet,
} from 'nesterov';
import { makeOptimizer } from './helpers.ts';
import { REGISTRY } from './registry.ts';

describe('invalid options fail at construction', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['SGD', { lr: -1 }, /^SGD: invalid lr: -1 \(expected a finite number >= 0\)$/],
    ['SGD', { lr: NaN }, /invalid lr: NaN/],
    ['SGD', { lr: '0.1' }, /invalid lr: "0.1"/],
    ['SGD', { weightDecay: -0.1 }, /invalid weightDecay: -0.1/],
    ['SGD', { maximize: 1 }, /invalid maximize: 1 \(expected true or false\)/],
    // Torch's SGD options point to the classes that have them.
    ['SGD', { momentum: 0.9 }, /^SGD: unknown option 'momentum' \(SGD here is plain SGD: for momentum use Momentum, or Nesterov for NAG; known options: lr, weightDecay, decoupledWeightDecay, maximize\)$/],
    ['SGD', { nesterov: true }, /^SGD: unknown option 'nesterov' \(use the Nesterov class; known options/],
    ['Momentum', { momentum: 1 }, /Momentum: invalid momentum: 1 \(expected a number in \[0, 1\)\)/],
    ['Momentum', { momentum: -0.5 }, /invalid momentum: -0.5/],
    ['Momentum', { dampening: 0.5 }, /invalid dampening: 0.5 \(expected 0 with variant 'classic'/],
    ['Momentum', { variant: 'pytorch', dampening: 2 }, /invalid dampening: 2 \(expected a number in \[0, 1\]\)/],
    ['Nesterov', { variant: 'sutskever' }, /Nesterov: invalid variant: "sutskever" \(expected one of 'nag', 'pytorch', 'book'\)/],
    ['Nesterov', { dampening: 0.1 }, /invalid dampening: 0.1 \(expected 0 with variant 'nag'/],
    ['Nesterov', { variant: 'book', dampening: 0.1 }, /expected 0 with variant 'book'/],
    ['Nesterov', { momentun: 0.9 }, /Nesterov: unknown option 'momentun' \(known options: lr, weightDecay, decoupledWeightDecay, maximize, momentum, dampening, variant\)/],
    ['AdaGrad', { eps: -1e-10 }, /AdaGrad: invalid eps: -1e-10/],
    ['AdaGrad', { lrDecay: -1 }, /invalid lrDecay: -1/],
    ['AdaGrad', { variant: 'book', lrDecay: 0.1 }, /invalid lrDecay: 0.1 \(expected 0 with variant 'book'\)/],
    ['AdaGrad', { initialAccumulatorValue: -1 }, /invalid initialAccumulatorValue: -1/],
    ['RMSProp', { alpha: 1 }, /RMSProp: invalid alpha: 1/],
    ['RMSProp', { centered: 'yes' }, /invalid centered: "yes"/],
    ['RMSProp', { variant: 'book', centered: true }, /invalid centered: true \(expected false with variant 'book'\)/],
    ['RMSProp', { variant: 'book', momentum: 0.9 }, /invalid momentum: 0.9 \(expected 0 with variant 'book'\)/],
    ['Adam', { beta1: 1 }, /Adam: invalid beta1: 1 \(expected a number in \[0, 1\)\)/],
    ['Adam', { beta2: -0.1 }, /invalid beta2: -0.1/],
    ['Adam', { eps: Infinity }, /invalid eps: Infinity/],
    ['Adam', { variant: 'book', amsgrad: true }, /invalid amsgrad: true \(expected false with variant 'book'\)/],
    ['Adam', { betas: [0.9, 0.999] }, /Adam: unknown option 'betas'/],
    ['AdamW', { weightDecay: -0.01 }, /AdamW: invalid weightDecay: -0.01/],
    ['NAdam', { momentumDecay: -1 }, /NAdam: invalid momentumDecay: -1/],
    ['NAdam', { nonFinite: 'warn' }, /NAdam: invalid nonFinite: "warn" \(expected one of 'error', 'skip', 'ignore'\)/],
    ['NAdam', { checkInputs: 'no' }, /invalid checkInputs: "no"/],
    ['Adam', { overrides: {} }, /Adam: invalid overrides: an object \(expected an array of \{ params, \.\.\.options \}\)/],
    ['Adam', { overrides: [{ params: 3, lr: 0.1 }] }, /invalid overrides\[0\]\.params: 3/],
    ['Adam', { overrides: [{ params: 'b', lr: -0.1 }] }, /Adam: invalid lr: -0.1/],
    ['Adam', { overrides: [{ params: 'b', variant: 'book' }] }, /overrides\[0\] may not set 'variant'/],
    // PyTorch 1.13 parity rules: torch's ranges, our option names.
    ['RAdam', { beta1: 1 }, /^RAdam: invalid beta1: 1 \(expected a number in \[0, 1\)\)$/],
    ['RAdam', { beta2: -0.1 }, /^RAdam: invalid beta2: -0.1 \(expected a number in \[0, 1\)\)$/],
    ['RAdam', { eps: -1e-8 }, /^RAdam: invalid eps: -1e-8 \(expected a finite number >= 0\)$/],
    ['RAdam', { betas: [0.9, 0.999] }, /^RAdam: unknown option 'betas' \(known options: lr, weightDecay, decoupledWeightDecay, maximize, beta1, beta2, eps\)$/],
    ['RAdam', { decoupledWeightDecay: 'yes' }, /^RAdam: invalid decoupledWeightDecay: "yes" \(expected true or false\)$/],
    ['Adamax', { beta2: 1 }, /^Adamax: invalid beta2: 1 \(expected a number in \[0, 1\)\)$/],
    ['Adamax', { eps: NaN }, /^Adamax: invalid eps: NaN \(expected a finite number >= 0\)$/],
    ['Adamax', { weightDecay: -0.01 }, /^Adamax: invalid weightDecay: -0.01/],
    ['Adadelta', { rho: 1.5 }, /^Adadelta: invalid rho: 1.5 \(expected a number in \[0, 1\]\)$/],
    ['Adadelta', { eps: -1e-6 }, /^Adadelta: invalid eps: -0.000001 \(expected a finite number >= 0\)$/],
    ['Adadelta', { lr: -1 }, /^Adadelta: invalid lr: -1 \(expected a finite number >= 0\)$/],
    ['Rprop', { etaMinus: 0 }, /^Rprop: invalid etaMinus: 0 \(expected a number in \(0, 1\)\)$/],
    ['Rprop', { etaMinus: 1 }, /^Rprop: invalid etaMinus: 1 \(expected a number in \(0, 1\)\)$/],
    ['Rprop', { etaMinus: '0.5' }, /^Rprop: invalid etaMinus: "0.5" \(expected a number in \(0, 1\)\)$/],
    ['Rprop', { etaPlus: 1 }, /^Rprop: invalid etaPlus: 1 \(expected a finite number > 1\)$/],
    ['Rprop', { etaPlus: Infinity }, /^Rprop: invalid etaPlus: Infinity \(expected a finite number > 1\)$/],
    ['Rprop', { stepSizeMin: -1 }, /^Rprop: invalid stepSizeMin: -1 \(expected a finite number >= 0\)$/],
    ['Rprop', { stepSizeMin: 1, stepSizeMax: 0.5 }, /^Rprop: invalid stepSizeMax: 0.5 \(expected a finite number >= stepSizeMin \(1\)\)$/],
    ['Rprop', { etas: [0.5, 1.2] }, /^Rprop: unknown option 'etas' \(known options: lr, weightDecay, decoupledWeightDecay, maximize, etaMinus, etaPlus, stepSizeMin, stepSizeMax\)$/],
    // Schedule-Free: momentum in (0, 1) as the reference checks; beta1 > 0 (eval divides by it).
    ['ScheduleFreeSGD', { momentum: 1 }, /^ScheduleFreeSGD: invalid momentum: 1 \(expected a number in \(0, 1\)\)$/],
    ['ScheduleFreeSGD', { momentum: 0 }, /^ScheduleFreeSGD: invalid momentum: 0 \(expected a number in \(0, 1\)\)$/],
    ['ScheduleFreeSGD', { warmupSteps: 2.5 }, /^ScheduleFreeSGD: invalid warmupSteps: 2.5 \(expected an integer >= 0\)$/],
    ['ScheduleFreeSGD', { r: -1 }, /^ScheduleFreeSGD: invalid r: -1 \(expected a finite number >= 0\)$/],
    ['ScheduleFreeSGD', { weightLrPower: NaN }, /^ScheduleFreeSGD: invalid weightLrPower: NaN \(expected a finite number >= 0\)$/],
    ['ScheduleFreeAdamW', { beta1: 0 }, /^ScheduleFreeAdamW: invalid beta1: 0 \(expected a number in \(0, 1\]\)$/],
    ['ScheduleFreeAdamW', { beta2: 1 }, /^ScheduleFreeAdamW: invalid beta2: 1 \(expected a number in \[0, 1\)\)$/],
    ['ScheduleFreeAdamW', { warmupSteps: -1 }, /^ScheduleFreeAdamW: invalid warmupSteps: -1 \(expected an integer >= 0\)$/],
    ['ScheduleFreeAdamW', { betas: [0.9, 0.999] }, /^ScheduleFreeAdamW: unknown option 'betas' \(known options: lr, weightDecay, decoupledWeightDecay, maximize, warmupSteps, r, weightLrPower, beta1, beta2, eps\)$/],
    ['Lion', { beta1: 1.5 }, /^Lion: invalid beta1: 1.5 \(expected a number in \[0, 1\]\)$/],
    ['Lion', { beta2: -0.1 }, /^Lion: invalid beta2: -0.1 \(expected a number in \[0, 1\]\)$/],
    ['Lion', { lr: -1 }, /^Lion: invalid lr: -1/],
    ['Lion', { weightDecay: NaN }, /^Lion: invalid weightDecay: NaN \(expected a finite number >= 0\)$/],
    ['Lion', { betas: [0.9, 0.99] }, /^Lion: unknown option 'betas' \(known options: lr, weightDecay, decoupledWeightDecay, maximize, beta1, beta2\)$/],
    ['LAMB', { beta1: 1 }, /^LAMB: invalid beta1: 1 \(expected a number in \[0, 1\)\)$/],
    ['LAMB', { beta2: -0.5 }, /^LAMB: invalid beta2: -0.5 \(expected a number in \[0, 1\)\)$/],
    ['LAMB', { eps: -1e-6 }, /^LAMB: invalid eps: -0.000001 \(expected a finite number >= 0\)$/],
    ['LAMB', { weightDecay: Infinity }, /^LAMB: invalid weightDecay: Infinity \(expected a finite number >= 0\)$/],
    ['LAMB', { trustCoefficient: 1 }, /^LAMB: unknown option 'trustCoefficient' \(known options: lr, weightDecay, decoupledWeightDecay, maximize, beta1, beta2, eps\)$/],
  ];
  for (const [name, options, message] of cases) {
    it(`${name}(${JSON.stringify(options)})`, () => {
      assert.throws(() => makeOptimizer(name, options), (error: Error) => error instanceof RangeError && message.test(error.message));
    });
  }
});

describe('invalid options of the wrappers, the schedules, clipGradValue and QHM: named with their value, nothing changed', () => {
  /** An inner optimizer with state of its own (one step taken). */
  const trained = (): Adam => {
    const inner = new Adam({ lr: 0.1 });
    inner.update({ w: new Float64Array([1, 2]) }, { w: new Float64Array([0.5, -0.5]) });
    return inner;
  };
  type Make = (inner: OptimizerLike) => unknown;
  const wrappers: [string, Make, string][] = [
    ['EMA decay -0.1', (inner) => new EMA(inner, { decay: -0.1 }), 'EMA: invalid decay: -0.1 (expected a number in [0, 1])'],
    ['EMA decay 1.5', (inner) => new EMA(inner, { decay: 1.5 }), 'EMA: invalid decay: 1.5 (expected a number in [0, 1])'],
    ['EMA decay NaN', (inner) => new EMA(inner, { decay: NaN }), 'EMA: invalid decay: NaN (expected a number in [0, 1])'],
    ['EMA decay "0.9"', (inner) => new EMA(inner, { decay: '0.9' as unknown as number }), 'EMA: invalid decay: "0.9" (expected a number in [0, 1])'],
    ['EMA warmup null', (inner) => new EMA(inner, { warmup: null as unknown as undefined }), 'EMA: invalid warmup: null (expected an object { gamma, power })'],
    ['EMA warmup []', (inner) => new EMA(inner, { warmup: [] as unknown as undefined }), 'EMA: invalid warmup: an Array of length 0 (expected an object { gamma, power })'],
    ['EMA warmup.gamma 0', (inner) => new EMA(inner, { warmup: { gamma: 0 } }), 'EMA: invalid warmup.gamma: 0 (expected a finite number > 0)'],
    ['EMA warmup.power Infinity', (inner) => new EMA(inner, { warmup: { power: Infinity } }), 'EMA: invalid warmup.power: Infinity (expected a finite number > 0)'],
    ['EMA warmup.beta', (inner) => new EMA(inner, { warmup: { beta: 1 } as never }), "EMA warmup: unknown option 'beta' (known options: gamma, power)"],
    ['EMA unknown option', (inner) => new EMA(inner, { beta: 0.9 } as never), "EMA: unknown option 'beta' (known options: decay, warmup)"],
    ['SWA start 0', (inner) => new SWA(inner, { start: 0 }), 'SWA: invalid start: 0 (expected an integer >= 1)'],
    ['SWA start 2.5', (inner) => new SWA(inner, { start: 2.5 }), 'SWA: invalid start: 2.5 (expected an integer >= 1)'],
    ['SWA every 0', (inner) => new SWA(inner, { every: 0 }), 'SWA: invalid every: 0 (expected an integer >= 1)'],
    ['SWA every "2"', (inner) => new SWA(inner, { every: '2' as unknown as number }), 'SWA: invalid every: "2" (expected an integer >= 1)'],
    ['SWA unknown option', (inner) => new SWA(inner, { swaLr: 0.1 } as never), "SWA: unknown option 'swaLr' (known options: start, every)"],
    ['GradientAccumulation without steps', (inner) => new GradientAccumulation(inner), 'GradientAccumulation: invalid steps: undefined (expected an integer >= 1)'],
    ['GradientAccumulation steps 0', (inner) => new GradientAccumulation(inner, { steps: 0 }), 'GradientAccumulation: invalid steps: 0 (expected an integer >= 1)'],
    ['GradientAccumulation steps 1.5', (inner) => new GradientAccumulation(inner, { steps: 1.5 }), 'GradientAccumulation: invalid steps: 1.5 (expected an integer >= 1)'],
    ['GradientAccumulation steps -Infinity', (inner) => new GradientAccumulation(inner, { steps: -Infinity }), 'GradientAccumulation: invalid steps: -Infinity (expected an integer >= 1)'],
    ['GradientAccumulation unknown option', (inner) => new GradientAccumulation(inner, { every: 2 } as never), "GradientAccumulation: unknown option 'every' (known options: steps)"],
    ['Lookahead k 0', (inner) => new Lookahead(inner, { k: 0 }), 'Lookahead: invalid k: 0 (expected an integer >= 1)'],
    ['Lookahead alpha 0', (inner) => new Lookahead(inner, { alpha: 0 }), 'Lookahead: invalid alpha: 0 (expected a number in (0, 1])'],
  ];
  for (const [what, make, message] of wrappers) {
    it(`${what}: a RangeError naming it, the inner optimizer's state unchanged`, () => {
      const inner = trained();
      const before = inner.stateDict();
      assert.throws(() => make(inner), (error: Error) => error instanceof RangeError && error.message === message);
      assert.deepEqual(inner.stateDict(), before);
    });
  }

  const schedules: [string, () => unknown, string][] = [
    ['oneCycle null', () => oneCycle(null as never), 'oneCycle: invalid options: null (expected { maxLr, totalSteps, pctStart?, anneal?, divFactor?, finalDivFactor?, threePhase? })'],
    ['oneCycle maxLr -1', () => oneCycle({ maxLr: -1, totalSteps: 10 }), 'oneCycle: invalid maxLr: -1 (expected a finite number >= 0)'],
    ['oneCycle totalSteps 0', () => oneCycle({ maxLr: 1, totalSteps: 0 }), 'oneCycle: invalid totalSteps: 0 (expected an integer >= 1)'],
    ['oneCycle pctStart 1.5', () => oneCycle({ maxLr: 1, totalSteps: 10, pctStart: 1.5 }), 'oneCycle: invalid pctStart: 1.5 (expected a number in [0, 1])'],
    ['oneCycle pctStart 0.1 of 10 steps', () => oneCycle({ maxLr: 1, totalSteps: 10, pctStart: 0.1 }), 'oneCycle: invalid pctStart: 0.1 (expected a fraction with pctStart * totalSteps != 1 (a rising phase of zero length; totalSteps is 10))'],
    ['oneCycle anneal "exp"', () => oneCycle({ maxLr: 1, totalSteps: 10, anneal: 'exp' as never }), "oneCycle: invalid anneal: \"exp\" (expected 'cos' or 'linear')"],
    ['oneCycle divFactor 0', () => oneCycle({ maxLr: 1, totalSteps: 10, divFactor: 0 }), 'oneCycle: invalid divFactor: 0 (expected a finite number > 0)'],
    ['oneCycle threePhase "yes"', () => oneCycle({ maxLr: 1, totalSteps: 10, threePhase: 'yes' as never }), 'oneCycle: invalid threePhase: "yes" (expected true or false)'],
    ['oneCycleMomentum baseMomentum 1.2', () => oneCycleMomentum({ totalSteps: 10, baseMomentum: 1.2 }), 'oneCycleMomentum: invalid baseMomentum: 1.2 (expected a number in [0, 1])'],
    ['oneCycleMomentum maxMomentum NaN', () => oneCycleMomentum({ totalSteps: 10, maxMomentum: NaN }), 'oneCycleMomentum: invalid maxMomentum: NaN (expected a number in [0, 1])'],
    ['oneCycleMomentum totalSteps 2.5', () => oneCycleMomentum({ totalSteps: 2.5 }), 'oneCycleMomentum: invalid totalSteps: 2.5 (expected an integer >= 1)'],
    ['cosineRestarts t0 0', () => cosineRestarts({ lr: 0.1, t0: 0 }), 'cosineRestarts: invalid t0: 0 (expected an integer >= 1)'],
    ['cosineRestarts tMult 1.5', () => cosineRestarts({ lr: 0.1, t0: 5, tMult: 1.5 }), 'cosineRestarts: invalid tMult: 1.5 (expected an integer >= 1)'],
    ['cosineRestarts etaMin -0.1', () => cosineRestarts({ lr: 0.1, t0: 5, etaMin: -0.1 }), 'cosineRestarts: invalid etaMin: -0.1 (expected a finite number >= 0)'],
    ['polynomialDecay power 0', () => polynomialDecay({ lr: 0.1, decaySteps: 10, power: 0 }), 'polynomialDecay: invalid power: 0 (expected a finite number > 0)'],
    ['polynomialDecay decaySteps 0', () => polynomialDecay({ lr: 0.1, decaySteps: 0 }), 'polynomialDecay: invalid decaySteps: 0 (expected an integer >= 1)'],
    ['polynomialDecay beginStep -1', () => polynomialDecay({ lr: 0.1, decaySteps: 10, beginStep: -1 }), 'polynomialDecay: invalid beginStep: -1 (expected an integer >= 0)'],
    ['polynomialDecay endLr Infinity', () => polynomialDecay({ lr: 0.1, decaySteps: 10, endLr: Infinity }), 'polynomialDecay: invalid endLr: Infinity (expected a finite number >= 0)'],
    ['piecewiseConstant boundaries 5', () => piecewiseConstant({ boundaries: 5 as never, values: [1] }), 'piecewiseConstant: invalid boundaries: 5 (expected an array of increasing integers >= 0)'],
    ['piecewiseConstant two values for two boundaries', () => piecewiseConstant({ boundaries: [1, 2], values: [1, 2] }), 'piecewiseConstant: invalid values: an Array of length 2 (expected 3 rates for 2 boundaries)'],
    ['piecewiseConstant boundaries not increasing', () => piecewiseConstant({ boundaries: [3, 3], values: [1, 2, 3] }), 'piecewiseConstant: invalid boundaries[1]: 3 (expected increasing integers >= 0)'],
    ['piecewiseConstant values[1] -1', () => piecewiseConstant({ boundaries: [3], values: [1, -1] }), 'piecewiseConstant: invalid values[1]: -1 (expected a finite number >= 0)'],
    ['warmupStableDecay warmupSteps -1', () => warmupStableDecay({ lr: 0.1, warmupSteps: -1, stableSteps: 0, decaySteps: 5 }), 'warmupStableDecay: invalid warmupSteps: -1 (expected an integer >= 0)'],
    ['warmupStableDecay decaySteps 0', () => warmupStableDecay({ lr: 0.1, warmupSteps: 0, stableSteps: 0, decaySteps: 0 }), 'warmupStableDecay: invalid decaySteps: 0 (expected an integer >= 1)'],
    ['warmupStableDecay decay "exp"', () => warmupStableDecay({ lr: 0.1, warmupSteps: 0, stableSteps: 0, decaySteps: 5, decay: 'exp' as never }), "warmupStableDecay: invalid decay: \"exp\" (expected 'linear' or 'cosine' or 'sqrt')"],
    ['reduceOnPlateau factor 1', () => reduceOnPlateau({ lr: 0.1, factor: 1 }), 'reduceOnPlateau: invalid factor: 1 (expected a number in [0, 1))'],
    ['reduceOnPlateau mode "up"', () => reduceOnPlateau({ lr: 0.1, mode: 'up' as never }), "reduceOnPlateau: invalid mode: \"up\" (expected 'min' or 'max')"],
    ['reduceOnPlateau patience 1.5', () => reduceOnPlateau({ lr: 0.1, patience: 1.5 }), 'reduceOnPlateau: invalid patience: 1.5 (expected an integer >= 0)'],
    ['reduceOnPlateau thresholdMode "pct"', () => reduceOnPlateau({ lr: 0.1, thresholdMode: 'pct' as never }), "reduceOnPlateau: invalid thresholdMode: \"pct\" (expected 'rel' or 'abs')"],
    ['reduceOnPlateau minLr -1', () => reduceOnPlateau({ lr: 0.1, minLr: -1 }), 'reduceOnPlateau: invalid minLr: -1 (expected a finite number >= 0)'],
    ['QHM nu 1.5', () => new QHM({ nu: 1.5 }), 'QHM: invalid nu: 1.5 (expected a number in [0, 1])'],
    ['QHM nu NaN', () => new QHM({ nu: NaN }), 'QHM: invalid nu: NaN (expected a number in [0, 1])'],
    ['QHM momentum 1', () => new QHM({ momentum: 1 }), 'QHM: invalid momentum: 1 (expected a number in [0, 1))'],
    ['QHM.fromNesterov momentum 1', () => QHM.fromNesterov({ lr: 0.1, momentum: 1 }), 'QHM.fromNesterov: invalid momentum: 1 (expected a number in [0, 1))'],
  ];
  for (const [what, make, message] of schedules) {
    it(`${what}: a RangeError naming it and its value`, () => {
      assert.throws(make, (error: Error) => error instanceof RangeError && error.message === message);
    });
  }

  it('reduceOnPlateau.report(NaN): a RangeError naming the metric, the schedule\'s state unchanged', () => {
    const plateau = reduceOnPlateau({ lr: 0.1, patience: 0 });
    plateau.report(1);
    plateau.report(2);
    const before = plateau.stateDict();
    assert.throws(() => plateau.report(NaN), { name: 'RangeError', message: 'reduceOnPlateau.report: invalid metric: NaN (expected a number, not NaN)' });
    assert.deepEqual(plateau.stateDict(), before);
  });

  for (const [max, shown] of [[0, '0'], [-1, '-1'], [NaN, 'NaN'], [Infinity, 'Infinity'], ['1', '"1"']] as const) {
    it(`clipGradValue(grads, ${shown}): a RangeError naming max and the value, the gradients unchanged`, () => {
      const grads = { w: new Float32Array([3, -3, 0.5]) };
      assert.throws(() => clipGradValue(grads, max as number), { name: 'RangeError', message: `clipGradValue: invalid max: ${shown} (expected a finite number > 0)` });
      assert.deepEqual(grads.w, new Float32Array([3, -3, 0.5]));
    });
  }

  it('clipGradValue with one bad array among good ones: refused before any array is clipped', () => {
    const grads = { a: new Float32Array([3, -3]), b: [1, 2] as unknown as Float32Array };
    assert.throws(() => clipGradValue(grads, 1), { name: 'UpdateError', message: "clipGradValue: gradient 'b' must be a Float32Array or Float64Array, got an Array of length 2" });
    assert.deepEqual(grads.a, new Float32Array([3, -3]));
  });
});

describe('a bad update throws naming the parameter, and nothing changes', () => {
  const good = () => ({ W: new Float32Array([1, 2, 3]), b: new Float32Array([0.5]) });
  type Case = [string, (params: Record<string, FloatArray>) => { params: ParamSet; grads: ParamSet }, RegExp];
  const cases: Case[] = [
    ['a missing gradient', (p) => ({ params: p, grads: { W: new Float32Array(3) } }), /no gradient for parameter 'b'/],
    ['an extra gradient', (p) => ({ params: p, grads: { ...good(), c: new Float32Array(1) } }), /gradient 'c' has no parameter of that name/],
    ['a length mismatch', (p) => ({ params: p, grads: { W: new Float32Array(2), b: new Float32Array(1) } }), /gradient 'W' has length 2 but the parameter has length 3/],
    ['a dtype mismatch', (p) => ({ params: p, grads: { W: new Float64Array(3), b: new Float32Array(1) } }), /gradient 'W' is a Float64Array but the parameter is a Float32Array/],
    ['a plain array gradient', (p) => ({ params: p, grads: { W: [1, 2, 3] as unknown as Float32Array, b: new Float32Array(1) } }), /gradient 'W' must be a Float32Array or Float64Array, got an Array of length 3/],
    ['an Int32Array parameter', (p) => ({ params: { ...p, b: new Int32Array(1) as unknown as Float32Array }, grads: good() }), /parameter 'b' must be a Float32Array or Float64Array, got an Int32Array/],
    ['a param that changed size', () => ({ params: { W: new Float32Array(4), b: new Float32Array(1) }, grads: { W: new Float32Array(4), b: new Float32Array(1) } }), /parameter 'W' has length 4 but its optimizer state was made for length 3/],
    ['a param that changed dtype', () => ({ params: { W: new Float64Array(3), b: new Float32Array(1) }, grads: { W: new Float64Array(3), b: new Float32Array(1) } }), /parameter 'W' is float64 but its optimizer state is float32/],
    ['a NaN in a gradient', (p) => ({ params: p, grads: { W: new Float32Array([0, 0, 0]), b: new Float32Array([NaN]) } }), /gradient 'b' is not finite at index 0 \(NaN\)/],
    ['an Infinity in a gradient', (p) => ({ params: p, grads: { W: new Float32Array([0, 0, -Infinity]), b: new Float32Array(1) } }), /gradient 'W' is not finite at index 2 \(-Infinity\)/],
    ['a gradient aliasing its parameter', (p) => ({ params: p, grads: { W: p.W!, b: new Float32Array(1) } }), /gradient 'W' shares memory with its parameter/],
    // Every overlap among all params and grads, not only a gradient with its own parameter.
    ['a gradient sharing memory with another parameter', (p) => ({ params: p, grads: { W: new Float32Array(3), b: p.W!.subarray(2) } }), /^[A-Za-z]+\.update: gradient 'b' shares memory with parameter 'W' \(every parameter and gradient needs memory of its own\)$/],
    ['one array as two parameters', (p) => ({ params: { W: p.W!, b: p.W!.subarray(0, 1) }, grads: good() }), /parameter 'b' shares memory with parameter 'W'/],
    ['two gradients on one array', (p) => { const g = new Float32Array(4); return { params: p, grads: { W: g.subarray(0, 3), b: g.subarray(2, 3) } }; }, /gradient 'b' shares memory with gradient 'W'/],
    // A Map key that is not a string would lose its state on resume.
    ['a numeric Map key', (p) => ({ params: new Map<unknown, FloatArray>([['W', p.W!], [1, p.b!]]) as unknown as ParamSet, grads: new Map<unknown, FloatArray>([['W', new Float32Array(3)], [1, new Float32Array(1)]]) as unknown as ParamSet }), /parameter names must be strings, got the Map key 1/],
    ['params that are not a set', () => ({ params: [new Float32Array(1)] as unknown as ParamSet, grads: good() }), /params must be an object or a Map/],
    ['grads that are null', (p) => ({ params: p, grads: null as unknown as ParamSet }), /grads must be an object or a Map/],
  ];
  for (const entry of REGISTRY) {
    for (const [what, build, message] of cases) {
      it(`${entry.id}: ${what}`, () => {
        const optimizer = entry.make(0.01);
        const params = good();
        // One good step first, so that there is state to keep intact.
        optimizer.update(params, { W: new Float32Array([0.1, -0.2, 0.3]), b: new Float32Array([0.4]) });
        const paramsBefore = structuredClone(params);
        const stateBefore = optimizer.stateDict();
        const call = build(params);
        assert.throws(() => optimizer.update(call.params, call.grads), (error: Error) => message.test(error.message));
        assert.deepEqual(params, paramsBefore);
        assert.deepEqual(optimizer.stateDict(), stateBefore);
        assert.equal(optimizer.stepCount, 1);
      });
    }
  }

  it('UpdateError carries the parameter name and the first non-finite index', () => {
    const opt = new Nesterov();
    try {
      opt.update({ w: new Float64Array(4) }, { w: new Float64Array([1, 2, NaN, NaN]) });
      assert.fail('no error');
    } catch (error) {
      assert.ok(error instanceof UpdateError);
      assert.equal(error.param, 'w');
      assert.equal(error.index, 2);
    }
  });

  it('a schedule that returns a bad lr is caught before anything is written', () => {
    const opt = new SGD({ lr: (t) => (t === 0 ? 0.1 : -1) });
    const params = { w: new Float64Array([1]) };
    opt.update(params, { w: new Float64Array([1]) });
    // An UpdateError naming the parameter, as the README documents.
    assert.throws(
      () => opt.update(params, { w: new Float64Array([1]) }),
      (error: Error) =>
        error instanceof UpdateError &&
        error.param === 'w' &&
        error.message === "SGD.update: the lr schedule of parameter 'w' returned -1 at step 1 (expected a finite number >= 0)",
    );
    assert.deepEqual(params.w, new Float64Array([0.9]));
  });
});

describe("nonFinite: 'skip' and 'ignore'", () => {
  it("'skip' skips the whole step, counts it, and goes on", () => {
    const opt = new Adam({ lr: 0.1, nonFinite: 'skip' });
    const params = { a: new Float64Array([1]), b: new Float64Array([1]) };
    assert.equal(opt.update(params, { a: new Float64Array([1]), b: new Float64Array([1]) }), true);
    const stateBefore = opt.stateDict();
    const paramsBefore = structuredClone(params);
    assert.equal(opt.update(params, { a: new Float64Array([2]), b: new Float64Array([Infinity]) }), false);
    assert.deepEqual(params, paramsBefore);
    assert.deepEqual({ ...opt.stateDict(), skippedSteps: 0 }, stateBefore);
    assert.equal(opt.skippedSteps, 1);
    assert.equal(opt.stepCount, 1);
    assert.equal(opt.update(params, { a: new Float64Array([1]), b: new Float64Array([1]) }), true);
    assert.equal(opt.stepCount, 2);
  });

  it("'ignore' lets NaN through (the caller asked for no check)", () => {
    const opt = new SGD({ lr: 0.1, nonFinite: 'ignore' });
    const params = { a: new Float64Array([1]) };
    opt.update(params, { a: new Float64Array([NaN]) });
    assert.ok(Number.isNaN(params.a[0]));
  });

  it('checkInputs: false skips the structure checks (no-check mode) and still computes the same step', () => {
    const fast = new Nesterov({ lr: 0.1, checkInputs: false, nonFinite: 'ignore' });
    const safe = new Nesterov({ lr: 0.1 });
    const a = { w: new Float64Array([1, 2]) };
    const b = { w: new Float64Array([1, 2]) };
    for (let t = 0; t < 3; t++) {
      fast.update(a, { w: new Float64Array([0.5, -0.5]) });
      safe.update(b, { w: new Float64Array([0.5, -0.5]) });
    }
    assert.deepEqual(a, b);
  });
});

/**
 * The new schedules' contracts: values worked by hand at the phase edges, the bad options
 * each names, and reduceOnPlateau's reports and state dict (bad input changes nothing).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cosineRestarts,
  oneCycle,
  oneCycleMomentum,
  piecewiseConstant,
  polynomialDecay,
  reduceOnPlateau,
  SGD,
  StateError,
  warmupStableDecay,
  type PlateauStateDict,
} from 'nesterov';

const at = (schedule: (t: number) => number, steps: number[]) => steps.map(schedule);

/** Within 2 ulps-ish: the hand values are exact decimals, the schedules compute them in floats. */
function close(actual: number[], expected: number[]): void {
  actual.forEach((a, i) => assert.ok(Math.abs(a - expected[i]!) <= 1e-15 * Math.max(1, Math.abs(expected[i]!)), `[${i}] ${a} vs ${expected[i]}`));
}

describe('schedules by hand', () => {
  it('oneCycle: maxLr / 25 at step 0, maxLr at pctStart * T - 1, maxLr / 25 / 1e4 at T - 1, then flat', () => {
    const schedule = oneCycle({ maxLr: 1, totalSteps: 10, pctStart: 0.5 });
    // rise over steps 0..4: (1 + cos(pi x)) / 2 from 0.04 to 1; at x = 1/2, the midpoint 0.52
    close(at(schedule, [0, 2, 4, 9, 10, 1000]), [0.04, 0.52, 1, 4e-6, 4e-6, 4e-6]);
    const linear = oneCycle({ maxLr: 1, totalSteps: 10, pctStart: 0.5, anneal: 'linear', divFactor: 10, finalDivFactor: 10 });
    // fall over steps 4..9 (5 steps) from 1 to 0.01: step 5 = 1 - 0.99 / 5
    close(at(linear, [0, 1, 4, 5, 9]), [0.1, 0.325, 1, 0.802, 0.01]);
  });
  it('oneCycle threePhase: back to maxLr / divFactor at 2 (pctStart T - 1), then down to the final rate', () => {
    const schedule = oneCycle({ maxLr: 1, totalSteps: 12, pctStart: 0.25, anneal: 'linear', divFactor: 5, finalDivFactor: 2, threePhase: true });
    // phase ends 2, 4, 11: 0.2 -> 1 -> 0.2 -> 0.1
    close(at(schedule, [0, 1, 2, 3, 4, 11]), [0.2, 0.6, 1, 0.6, 0.2, 0.1]);
  });
  it('oneCycleMomentum: maxMomentum, down to baseMomentum at the peak, back to maxMomentum', () => {
    const momentum = oneCycleMomentum({ totalSteps: 10, pctStart: 0.5, anneal: 'linear' });
    close(at(momentum, [0, 4, 9, 50]), [0.95, 0.85, 0.95, 0.95]);
    const three = oneCycleMomentum({ totalSteps: 12, pctStart: 0.25, anneal: 'linear', threePhase: true, baseMomentum: 0.5, maxMomentum: 0.9 });
    close(at(three, [0, 2, 4, 8, 11]), [0.9, 0.5, 0.9, 0.9, 0.9]);
  });
  it('cosineRestarts: t0 4, tMult 2 restarts at 4 and 12; halfway through each period the midpoint', () => {
    const schedule = cosineRestarts({ lr: 1, t0: 4, tMult: 2, etaMin: 0.2 });
    close(at(schedule, [0, 2, 4, 8, 12, 20, 28]), [1, 0.6, 1, 0.6, 1, 0.6, 1]);
    close(at(cosineRestarts({ lr: 1, t0: 4 }), [0, 2, 4, 6, 8]), [1, 0.5, 1, 0.5, 1]);
  });
  it('polynomialDecay: power 2 over 4 steps from 1 to 0 = 1, 9/16, 1/4, 1/16, 0, then 0; flat before beginStep', () => {
    close(at(polynomialDecay({ lr: 1, power: 2, decaySteps: 4 }), [0, 1, 2, 3, 4, 9]), [1, 0.5625, 0.25, 0.0625, 0, 0]);
    close(at(polynomialDecay({ lr: 0.5, endLr: 0.1, decaySteps: 2, beginStep: 3 }), [0, 3, 4, 5, 6]), [0.5, 0.5, 0.3, 0.1, 0.1]);
  });
  it("piecewiseConstant: Keras's step <= boundary: the value changes at boundary + 1", () => {
    assert.deepEqual(at(piecewiseConstant({ boundaries: [2, 4], values: [1, 0.5, 0.25] }), [0, 2, 3, 4, 5, 99]), [1, 1, 0.5, 0.5, 0.25, 0.25]);
    assert.deepEqual(at(piecewiseConstant({ boundaries: [], values: [0.3] }), [0, 7]), [0.3, 0.3]);
  });
  it('warmupStableDecay: lr k / 4 for 4 steps, lr for 2, 1 - sqrt(x) over 4, then endLr', () => {
    const schedule = warmupStableDecay({ lr: 1, warmupSteps: 4, stableSteps: 2, decaySteps: 4, decay: 'sqrt' });
    close(at(schedule, [0, 1, 3, 4, 5, 6, 7, 10, 50]), [0, 0.25, 0.75, 1, 1, 1, 0.5, 0, 0]);
    const cosine = warmupStableDecay({ lr: 1, warmupSteps: 0, stableSteps: 0, decaySteps: 2, decay: 'cosine', endLr: 0.5 });
    close(at(cosine, [0, 1, 2]), [1, 0.75, 0.5]);
  });
});

describe('bad schedule options name the option and the value', () => {
  const cases: [string, () => unknown, RegExp][] = [
    ['oneCycle maxLr', () => oneCycle({ maxLr: -1, totalSteps: 10 }), /^RangeError: oneCycle: invalid maxLr: -1 \(expected a finite number >= 0\)$/],
    ['oneCycle totalSteps', () => oneCycle({ maxLr: 1, totalSteps: 2.5 }), /^RangeError: oneCycle: invalid totalSteps: 2.5 \(expected an integer >= 1\)$/],
    ['oneCycle pctStart', () => oneCycle({ maxLr: 1, totalSteps: 10, pctStart: 1.5 }), /^RangeError: oneCycle: invalid pctStart: 1.5 \(expected a number in \[0, 1\]\)$/],
    ['oneCycle empty rise', () => oneCycle({ maxLr: 1, totalSteps: 10, pctStart: 0.1 }), /^RangeError: oneCycle: invalid pctStart: 0.1 \(expected a fraction with pctStart \* totalSteps != 1/],
    ['oneCycle anneal', () => oneCycle({ maxLr: 1, totalSteps: 10, anneal: 'cosine' as never }), /^RangeError: oneCycle: invalid anneal: "cosine" \(expected 'cos' or 'linear'\)$/],
    ['oneCycle divFactor', () => oneCycle({ maxLr: 1, totalSteps: 10, divFactor: 0 }), /^RangeError: oneCycle: invalid divFactor: 0 \(expected a finite number > 0\)$/],
    ['oneCycle threePhase', () => oneCycle({ maxLr: 1, totalSteps: 10, threePhase: 'yes' as never }), /^RangeError: oneCycle: invalid threePhase: "yes"/],
    ['oneCycle options', () => oneCycle(undefined as never), /^RangeError: oneCycle: invalid options: undefined/],
    ['oneCycle missing totalSteps', () => oneCycle({ maxLr: 1 } as never), /^RangeError: oneCycle: invalid totalSteps: undefined/],
    ['oneCycleMomentum baseMomentum', () => oneCycleMomentum({ totalSteps: 10, baseMomentum: 2 }), /^RangeError: oneCycleMomentum: invalid baseMomentum: 2 \(expected a number in \[0, 1\]\)$/],
    ['cosineRestarts t0', () => cosineRestarts({ lr: 1, t0: 0 }), /^RangeError: cosineRestarts: invalid t0: 0 \(expected an integer >= 1\)$/],
    ['cosineRestarts tMult', () => cosineRestarts({ lr: 1, t0: 5, tMult: 1.5 }), /^RangeError: cosineRestarts: invalid tMult: 1.5 \(expected an integer >= 1\)$/],
    ['cosineRestarts etaMin', () => cosineRestarts({ lr: 1, t0: 5, etaMin: NaN }), /^RangeError: cosineRestarts: invalid etaMin: NaN/],
    ['polynomialDecay power', () => polynomialDecay({ lr: 1, decaySteps: 5, power: 0 }), /^RangeError: polynomialDecay: invalid power: 0 \(expected a finite number > 0\)$/],
    ['polynomialDecay beginStep', () => polynomialDecay({ lr: 1, decaySteps: 5, beginStep: -1 }), /^RangeError: polynomialDecay: invalid beginStep: -1 \(expected an integer >= 0\)$/],
    ['polynomialDecay decaySteps', () => polynomialDecay({ lr: 1, decaySteps: 0 }), /^RangeError: polynomialDecay: invalid decaySteps: 0/],
    ['piecewiseConstant lengths', () => piecewiseConstant({ boundaries: [1, 2], values: [1, 2] }), /^RangeError: piecewiseConstant: invalid values: an Array of length 2 \(expected 3 rates for 2 boundaries\)$/],
    ['piecewiseConstant order', () => piecewiseConstant({ boundaries: [5, 5], values: [1, 2, 3] }), /^RangeError: piecewiseConstant: invalid boundaries\[1\]: 5 \(expected increasing integers >= 0\)$/],
    ['piecewiseConstant value', () => piecewiseConstant({ boundaries: [5], values: [1, -2] }), /^RangeError: piecewiseConstant: invalid values\[1\]: -2/],
    ['piecewiseConstant boundaries', () => piecewiseConstant({ boundaries: 5 as never, values: [1] }), /^RangeError: piecewiseConstant: invalid boundaries: 5/],
    ['warmupStableDecay decay', () => warmupStableDecay({ lr: 1, warmupSteps: 1, stableSteps: 1, decaySteps: 1, decay: 'exp' as never }), /^RangeError: warmupStableDecay: invalid decay: "exp" \(expected 'linear' or 'cosine' or 'sqrt'\)$/],
    ['warmupStableDecay stableSteps', () => warmupStableDecay({ lr: 1, warmupSteps: 1, decaySteps: 1 } as never), /^RangeError: warmupStableDecay: invalid stableSteps: undefined \(expected an integer >= 0\)$/],
    ['reduceOnPlateau factor', () => reduceOnPlateau({ lr: 1, factor: 1 }), /^RangeError: reduceOnPlateau: invalid factor: 1 \(expected a number in \[0, 1\)\)$/],
    ['reduceOnPlateau mode', () => reduceOnPlateau({ lr: 1, mode: 'avg' as never }), /^RangeError: reduceOnPlateau: invalid mode: "avg" \(expected 'min' or 'max'\)$/],
    ['reduceOnPlateau thresholdMode', () => reduceOnPlateau({ lr: 1, thresholdMode: 'pct' as never }), /^RangeError: reduceOnPlateau: invalid thresholdMode: "pct"/],
    ['reduceOnPlateau patience', () => reduceOnPlateau({ lr: 1, patience: -1 }), /^RangeError: reduceOnPlateau: invalid patience: -1 \(expected an integer >= 0\)$/],
    ['reduceOnPlateau lr', () => reduceOnPlateau({ lr: Infinity }), /^RangeError: reduceOnPlateau: invalid lr: Infinity/],
  ];
  for (const [label, call, message] of cases) it(label, () => assert.throws(call, (error: Error) => (assert.match(String(error), message), true)));
});

describe('reduceOnPlateau', () => {
  const drive = (plateau: ReturnType<typeof reduceOnPlateau>, metrics: number[]) => metrics.map((m) => plateau.report(m));

  it('by hand: patience 1, factor 0.5: the third report without improvement lowers the rate, cooldown 1 skips one', () => {
    const plateau = reduceOnPlateau({ lr: 1, patience: 1, factor: 0.5, cooldown: 1 });
    // best 5; 5 (bad 1); 5 (bad 2 > 1: drop, cooldown 1); 5 (cooldown: bad 0); 5 (bad 1); 5 (bad 2: drop)
    assert.deepEqual(drive(plateau, [5, 5, 5, 5, 5, 5]), [1, 1, 0.5, 0.5, 0.5, 0.25]);
  });
  it('a metric of Infinity is a bad epoch, as in torch (a diverged loss lowers the rate)', () => {
    const plateau = reduceOnPlateau({ lr: 1, patience: 0 });
    assert.deepEqual(drive(plateau, [1, Infinity]), [1, 0.1]);
  });
  it('a non-number or NaN metric is an error naming it, and changes nothing', () => {
    const plateau = reduceOnPlateau({ lr: 1, patience: 1 });
    drive(plateau, [3, 4]);
    const before = plateau.stateDict();
    assert.throws(() => plateau.report('2' as never), (e: Error) => e instanceof TypeError && e.message === 'reduceOnPlateau.report: the metric must be a number, got "2"');
    assert.throws(() => plateau.report(NaN), (e: Error) => e instanceof RangeError && e.message === 'reduceOnPlateau.report: invalid metric: NaN (expected a number, not NaN)');
    assert.throws(() => plateau.report(undefined as never), /metric must be a number, got undefined/);
    assert.deepEqual(plateau.stateDict(), before);
    assert.equal(plateau.report(4), 0.1, 'the next bad report is the second: the rate drops as if the bad ones had not been made');
  });
  it('the schedule is the current rate at any step, and an SGD reads it', () => {
    const plateau = reduceOnPlateau({ lr: 0.1, patience: 0 });
    const opt = new SGD({ lr: plateau });
    assert.equal(opt.learningRate(), 0.1);
    drive(plateau, [1, 2]);
    assert.equal(plateau(0), plateau(12345));
    assert.equal(opt.learningRate(), 0.1 * 0.1);
  });
  it('stateDict survives JSON (best null before any report) and a restored schedule continues identically', () => {
    const metrics = [5, 4, 4.5, 4.2, 4, 3.9999, 4.1, 4, 3, 3.1, 3.05, 3.2, 3.3, 2, 2.5, 2.4];
    const options = { lr: 0.3, patience: 2, cooldown: 1, factor: 0.5, threshold: 0.01 };
    const fresh = reduceOnPlateau(options);
    assert.equal(fresh.stateDict().best, null);
    const whole = drive(reduceOnPlateau(options), metrics);
    for (const cut of [0, 3, 7, 12]) {
      const first = reduceOnPlateau(options);
      drive(first, metrics.slice(0, cut));
      const saved = JSON.parse(JSON.stringify(first.stateDict())) as unknown;
      const second = reduceOnPlateau(options);
      second.loadStateDict(saved);
      assert.deepEqual(second.stateDict(), first.stateDict());
      assert.deepEqual([...whole.slice(0, cut), ...drive(second, metrics.slice(cut))], whole, `cut at ${cut}`);
    }
  });
  it('a bad state is a StateError naming the field, and changes nothing', () => {
    const plateau = reduceOnPlateau({ lr: 0.3, patience: 2, cooldown: 1 });
    drive(plateau, [3, 4]);
    const good = plateau.stateDict();
    const bad: [Partial<Record<keyof PlateauStateDict, unknown>> | unknown, RegExp][] = [
      [null, /the state must be an object, got null/],
      [[], /the state must be an object, got an Array of length 0/],
      [{ ...good, format: 'nesterov.lookahead' }, /invalid format: "nesterov.lookahead"/],
      [{ ...good, version: 2 }, /invalid version: 2 \(expected 1\)/],
      [{ ...good, mode: 'max' }, /invalid mode: "max" \(expected 'min', the mode of this schedule\)/],
      [{ ...good, lr: -1 }, /invalid lr: -1 \(expected a finite number >= 0\)/],
      [{ ...good, lr: '0.1' }, /invalid lr: "0.1"/],
      [{ ...good, best: NaN }, /invalid best: NaN \(expected a number or null\)/],
      [{ ...good, best: undefined }, /invalid best: undefined/],
      [{ ...good, numBadEpochs: 3 }, /invalid numBadEpochs: 3 \(expected an integer in \[0, 2\]\)/],
      [{ ...good, cooldownCounter: 1.5 }, /invalid cooldownCounter: 1.5 \(expected an integer in \[0, 1\]\)/],
      [{ ...good, epochs: -1 }, /invalid epochs: -1 \(expected an integer >= 0\)/],
    ];
    for (const [state, message] of bad) {
      assert.throws(
        () => plateau.loadStateDict(state),
        (e: Error) => e instanceof StateError && e.message.startsWith('reduceOnPlateau.loadStateDict: ') && message.test(e.message),
        String(message),
      );
      assert.deepEqual(plateau.stateDict(), good);
    }
  });
});

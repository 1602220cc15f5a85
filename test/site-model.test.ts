/**
 * The playground's model (site/model.ts) without a browser: the state survives the URL,
 * a bad URL falls back to defaults, the typed formula is differentiated right, bad
 * formulas get their messages, the post's picture is NAG's step by hand, and minimize's
 * rates have the slopes the theory gives.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_STATE,
  FormulaError,
  RATE_KAPPAS,
  RATE_METHODS,
  clampStart,
  customSurface,
  customSurfaceFrom,
  logLogSlope,
  pictureOf,
  rateIterations,
  runPath,
  stateFromQuery,
  stateToQuery,
  surfaceOf,
  type PlaygroundState,
} from '../site/model.ts';
import { differentiate } from '../site/formula.ts';
import { en } from '../site/i18n/en.ts';
import { say, type Message } from '../site/i18n/index.ts';

/** A path's stop, its reason worded in English (the page words it in the language shown). */
const stopOf = (stopped: { step: number; reason: Message } | undefined) => stopped && { step: stopped.step, reason: say(en, stopped.reason) };

const close = (actual: readonly number[], expected: readonly number[], tolerance = 1e-12) =>
  assert.ok(
    actual.length === expected.length && actual.every((v, i) => Math.abs(v - expected[i]!) <= tolerance),
    `${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`,
  );

describe('the playground state in the URL', () => {
  it('an empty query is the post comparison', () => {
    const state = stateFromQuery('');
    assert.deepEqual(state, { ...DEFAULT_STATE, start: [-7, 2], optimizers: ['nesterov', 'nesterov-book'] });
    assert.equal(state.lr, 0.1);
    assert.equal(state.momentum, 0.9);
  });

  it('every field survives a round trip', () => {
    const state: PlaygroundState = {
      fn: 'custom',
      kappa: 20,
      expr: 'x^2 + 3*sin(y) & more?',
      start: [-1.25, 3.5],
      optimizers: ['adam', 'nesterov-pytorch', 'sgd'],
      lr: 0.0123,
      momentum: 0.75,
      beta1: 0.8,
      beta2: 0.99,
      steps: 250,
      shown: 17,
      picture: 'nesterov-book',
      pictureStep: 12,
    };
    assert.deepEqual(stateFromQuery(stateToQuery(state)), state);
    const quadratic: PlaygroundState = { ...state, fn: 'quadratic', kappa: 316, expr: DEFAULT_STATE.expr };
    assert.deepEqual(stateFromQuery(stateToQuery(quadratic)), quadratic);
  });

  it('what is invalid takes the default or is clamped; unknown and repeated optimizers are dropped', () => {
    const state = stateFromQuery('?fn=nope&lr=abc&momentum=1.5&opt=adam,bogus,adam&steps=5000&start=1,x&picture=sgd&pstep=-3');
    assert.equal(state.fn, 'book');
    assert.equal(state.lr, 0.1);
    assert.equal(state.momentum, 0.99);
    assert.deepEqual(state.optimizers, ['adam']);
    assert.equal(state.steps, 1000);
    assert.deepEqual(state.start, [-7, 2]);
    assert.equal(state.picture, 'nesterov');
    assert.equal(state.pictureStep, 0);
  });

  it("a function named in the URL brings its own start, lr and steps unless given", () => {
    const state = stateFromQuery('?fn=rosenbrock');
    assert.deepEqual([state.start, state.lr, state.steps], [[-1.2, 1], 0.001, 1000]);
  });
});

describe('a start past the plot', () => {
  it('is moved to the nearest point of the plot, with a note; a start inside stays, without one', () => {
    assert.deepEqual(clampStart('book', [-7, 2]), { start: [-7, 2], note: undefined });
    assert.deepEqual(clampStart('book', [10, -5]), { start: [10, -5], note: undefined });
    // The book's plot: x in [-10, 10], y in [-5, 5].
    const moved = clampStart('book', [1e308, -1e308]);
    assert.deepEqual(moved.start, [10, -5]);
    assert.equal(say(en, moved.note!), 'The start (1e+308, -1e+308) is outside the plot (x from -10 to 10, y from -5 to 5): it was moved to (10, -5).');
    // Rosenbrock's: x in [-2, 2], y in [-1, 3].
    assert.deepEqual(clampStart('rosenbrock', [-Infinity, 0.5]).start, [-2, 0.5]);
    assert.deepEqual(clampStart('rosenbrock', [0, NaN]).start, [0, 1]);
  });

  it('from the URL, infinite numbers included, as the page opens it', () => {
    assert.deepEqual(stateFromQuery('?start=1e308,-1e308').start, [10, -5]);
    assert.deepEqual(stateFromQuery('?fn=rosenbrock&start=5,-1e400').start, [2, -1]);
    assert.deepEqual(stateFromQuery('?fn=custom&start=-4.5,4').start, [-4.5, 4]);
    assert.deepEqual(stateFromQuery('?start=1,').start, [-7, 2]); // not two numbers: the preset
  });
});

describe('a path that meets NaN or Infinity', () => {
  const knobs = { lr: 0.1, momentum: 0.9, beta1: 0.9, beta2: 0.999 };
  const show = (v: number) => String(+v.toPrecision(6));

  it('stops at its last finite point: SGD on log(x) from (1, 1) stops before x < 0, where f is NaN', () => {
    // By hand: x <- x - 0.1 / x, y stays 1.
    const xs = [1];
    while (xs[xs.length - 1]! - 0.1 / xs[xs.length - 1]! > 0) xs.push(xs[xs.length - 1]! - 0.1 / xs[xs.length - 1]!);
    const next = xs[xs.length - 1]! - 0.1 / xs[xs.length - 1]!;
    const path = runPath('sgd', customSurface('log(x)'), [1, 1], 60, knobs);
    assert.equal(path.length, xs.length);
    close(Array.from(path.xy.subarray(0, 2 * path.length)), xs.flatMap((x) => [x, 1]));
    assert.deepEqual(stopOf(path.stopped), { step: xs.length - 1, reason: `step ${xs.length} would go to (${show(next)}, 1), where f is NaN` });
  });

  it('says when f is not finite at the start, and when the gradient is not', () => {
    const sqrt = runPath('nesterov', customSurface('sqrt(x) + y^2'), [-4, 1], 60, knobs);
    assert.deepEqual([sqrt.length, stopOf(sqrt.stopped)], [1, { step: 0, reason: 'f at the start (-4, 1) is NaN, not a finite number' }]);
    // f = sqrt(abs(x)) is 0 at x = 0, its derivative there is not finite.
    const cusp = runPath('sgd', customSurface('sqrt(abs(x)) + y^2'), [0, 1], 60, knobs);
    assert.equal(cusp.length, 1);
    assert.match(say(en, cusp.stopped!.reason), /^the gradient at \(0, 1\) is \((NaN|-?Infinity), 2\), not finite$/);
  });

  it("stops where f overflows before the point does: SGD at lr 10 on the book's function multiplies y by -19 a step", () => {
    // x1 = -7 - 10 * (-7 / 10) = 0; y <- y - 10 * 2y, so f = y^2 = 4 * 361^t passes 1.8e308 at t = 121.
    let y = 2;
    const ys = [y];
    for (;;) {
      const next = y - 10 * (2 * y);
      if (!Number.isFinite(next * next)) break;
      ys.push((y = next));
    }
    assert.equal(ys.length - 1, 120);
    const path = runPath('sgd', surfaceOf({ fn: 'book', kappa: 20, expr: '' }), [-7, 2], 1000, { ...knobs, lr: 10 });
    assert.equal(path.length, 121);
    assert.equal(path.xy[2 * 120 + 1], ys[120]);
    assert.deepEqual(stopOf(path.stopped), { step: 120, reason: `step 121 would go to (0, ${show(y - 20 * y)}), where f is Infinity` });
  });

  it('runs to the end, with nothing said, when every point is finite', () => {
    const path = runPath('nesterov', surfaceOf({ fn: 'book', kappa: 20, expr: '' }), [-7, 2], 30, knobs);
    assert.deepEqual([path.length, path.stopped], [31, undefined]);
  });
});

describe('the built-in functions', () => {
  it('the quadratic takes its condition number from the slider: x^2/kappa + y^2', () => {
    const surface = surfaceOf({ fn: 'quadratic', kappa: 316, expr: '' });
    assert.equal(surface.formula, 'x^2/316 + y^2');
    const g = new Float64Array(2);
    surface.gradient(3.16, -2, g);
    close(Array.from(g), [0.02, -4]);
  });

  it('each gradient agrees with a central difference of its f (a typo in either would show)', () => {
    const points: [number, number][] = [
      [-1.2, 1],
      [0.7, -0.4],
      [2.5, 1.5],
    ];
    for (const fn of ['book', 'rosenbrock', 'beale', 'saddle', 'himmelblau', 'quadratic'] as const) {
      const surface = surfaceOf({ fn, kappa: 20, expr: '' });
      for (const [x, y] of points) {
        const g = new Float64Array(2);
        surface.gradient(x, y, g);
        const h = 1e-6;
        const dx = (surface.f(x + h, y) - surface.f(x - h, y)) / (2 * h);
        const dy = (surface.f(x, y + h) - surface.f(x, y - h)) / (2 * h);
        close(Array.from(g), [dx, dy], 1e-5 * Math.max(1, Math.abs(dx), Math.abs(dy)));
      }
    }
  });
});

describe('a typed formula', () => {
  it('is differentiated symbolically: x^2 + 3*sin(y) has gradient (2x, 3 cos y)', () => {
    const surface = customSurface('x^2 + 3*sin(y)');
    const g = new Float64Array(2);
    surface.gradient(1.5, 2, g);
    close(Array.from(g), [3, 3 * Math.cos(2)]);
    assert.equal(surface.f(1.5, 2), 2.25 + 3 * Math.sin(2));
  });

  it("is differentiated in one place (the page's worker) and compiled from the derivatives' text in another", () => {
    // f = sin(x) y^3 + e^(x y): df/dx = cos(x) y^3 + y e^(x y), df/dy = 3 sin(x) y^2 + x e^(x y).
    const text = 'sin(x) * y^3 + e^(x*y)';
    const surface = customSurfaceFrom(text, differentiate(text));
    for (const [x, y] of [
      [0.3, -1.2],
      [-2, 0.5],
    ] as const) {
      const g = new Float64Array(2);
      surface.gradient(x, y, g);
      close(Array.from(g), [Math.cos(x) * y ** 3 + y * Math.exp(x * y), 3 * Math.sin(x) * y ** 2 + x * Math.exp(x * y)], 1e-12);
    }
  });

  it("unsimplified, is differentiated in milliseconds where mathjs's simplify takes half a minute: a 317-character sum of sin(x)*exp(y/k), with the hand gradient", () => {
    const text = Array.from({ length: 17 }, (_, i) => `sin(x)*exp(y/${i + 7})`).join(' + ');
    assert.equal(text.length, 317);
    const t0 = performance.now();
    const derivatives = differentiate(text, { simplify: false });
    const elapsed = performance.now() - t0;
    // Milliseconds on any host; the bound leaves room for a busy one and none for simplifying.
    assert.ok(elapsed < 1000, `${elapsed.toFixed(0)} ms`);
    const surface = customSurfaceFrom(text, derivatives);
    // f = sin(x) sum_k exp(y/k) over k = 7..23: grad f = (cos(x) sum_k exp(y/k), sin(x) sum_k exp(y/k)/k).
    const sum = (term: (k: number) => number) => Array.from({ length: 17 }, (_, i) => term(i + 7)).reduce((a, b) => a + b);
    for (const [x, y] of [
      [0.5, 1],
      [-2, -3.5],
    ] as const) {
      const g = new Float64Array(2);
      surface.gradient(x, y, g);
      close(Array.from(g), [Math.cos(x) * sum((k) => Math.exp(y / k)), Math.sin(x) * sum((k) => Math.exp(y / k) / k)], 1e-12);
    }
  });

  it("unsimplified, Beale's formula has the built-in Beale's gradient", () => {
    const beale = surfaceOf({ fn: 'beale', kappa: 1, expr: '' });
    const surface = customSurfaceFrom(beale.formula, differentiate(beale.formula, { simplify: false }));
    for (const [x, y] of [
      [3, 0.5],
      [-1.2, 1.7],
    ] as const) {
      const [got, want] = [new Float64Array(2), new Float64Array(2)];
      surface.gradient(x, y, got);
      beale.gradient(x, y, want);
      close(Array.from(got), Array.from(want), 1e-9);
    }
  });

  it('longer than 500 characters is refused before anything else', () => {
    const text = `x^2${'+y'.repeat(249)}`;
    assert.equal(text.length, 501);
    assert.throws(() => customSurface(text), (error: unknown) => error instanceof FormulaError && error.message === 'The formula is 501 characters long: the playground takes at most 500.');
    // (Not 248 more terms: mathjs's simplify would take minutes over them, which is the worker's budget's business.)
    const longest = 'x^2 + y'.padEnd(500, ' ');
    assert.equal(customSurface(longest).f(2, 3), 7);
  });

  it('that is slow to evaluate is refused: isPrime of a prime near 2^53 tries some 5e7 divisors a call', () => {
    assert.throws(
      () => customSurface('x^2 + isPrime(9007199254740881)'),
      (error: unknown) =>
        error instanceof FormulaError &&
        /^The formula "x\^2 \+ isPrime\(9007199254740881\)" takes [\d.]+ ms to evaluate with its gradient at one point: the page does that thousands of times a redraw, so it takes at most 1 ms; try a simpler formula\.$/.test(error.message),
    );
  });

  it('bad formulas get a message that says why', () => {
    const cases: [string, string][] = [
      ['x^2 + (', 'Cannot read the formula "x^2 + (": Unexpected end of expression (char 8).'],
      ['x^2 + z', 'The formula "x^2 + z" uses "z": only x, y, pi and e are known.'],
      ['a = x', 'The formula "a = x" assigns or has several statements: type one expression in x and y.'],
      ['x; y', 'The formula "x; y" assigns or has several statements: type one expression in x and y.'],
      ['sqrt(-1 - x^2)', 'The formula "sqrt(-1 - x^2)" is not a real number at any point tried (e.g. x = 0.5, y = 0.5).'],
      ['   ', 'The formula is empty: type an expression in x and y, e.g. x^2 + 3*sin(y).'],
      ['"text"', 'The formula ""text"" is not a real number at any point tried (e.g. x = 0.5, y = 0.5).'],
    ];
    for (const [text, message] of cases) {
      assert.throws(() => customSurface(text), (error: unknown) => error instanceof FormulaError && error.message === message, text);
    }
    assert.throws(() => surfaceOf({ fn: 'custom', kappa: 1, expr: 'x +' }), FormulaError);
  });
});

describe("the post's picture", () => {
  const knobs = { lr: 0.1, momentum: 0.9, beta1: 0.9, beta2: 0.999 };
  const book = surfaceOf({ fn: 'book', kappa: 20, expr: '' });

  it('NAG at step 1 from (-7, 2): by hand, with theta = p - mu v', () => {
    // Step 0: g(-7, 2) = (-0.7, 4), v1 = (0.07, -0.4), p1 = (-6.867, 1.24) (nag.md).
    // theta1 = p1 - 0.9 v1 = (-6.93, 1.6); momentum step 0.9 v1 = (0.063, -0.36) lands on p1;
    // g(p1) = (-0.6867, 2.48), gradient step (0.06867, -0.248); theta2 = p1 - 0.1 g(p1) = (-6.79833, 0.992).
    const picture = pictureOf('nesterov', book, [-7, 2], 1, knobs)!;
    close(picture.from, [-6.93, 1.6]);
    close(picture.momentumStep, [0.063, -0.36]);
    close(picture.gradientAt, [-6.867, 1.24]);
    close(picture.gradientStep, [0.06867, -0.248]);
    close(picture.to, [-6.79833, 0.992]);
  });

  it("Momentum and the book's code take the gradient at the current point; the book's steps are mu^3 v and (1 + mu + mu^2) lr g", () => {
    // Momentum step 0: v1 = (0.07, -0.4), p1 = (-6.93, 1.6); step 1: g(p1) = (-0.693, 3.2).
    const momentum = pictureOf('momentum', book, [-7, 2], 1, knobs)!;
    close(momentum.gradientAt, [-6.93, 1.6]);
    close(momentum.momentumStep, [0.063, -0.36]);
    close(momentum.gradientStep, [0.0693, -0.32]);
    close(momentum.to, [-6.93 + 0.063 + 0.0693, 1.6 - 0.36 - 0.32]);
    // The book, step 0: v1 = (0.07, -0.4), p1 = (-6.8103, 0.916) (nag.md). Step 1:
    // momentum 0.729 v1 = (0.05103, -0.2916); g(p1) = (-0.68103, 1.832) times 2.71 * 0.1.
    const bookPicture = pictureOf('nesterov-book', book, [-7, 2], 1, knobs)!;
    close(bookPicture.gradientAt, [-6.8103, 0.916]);
    close(bookPicture.momentumStep, [0.05103, -0.2916]);
    close(bookPicture.gradientStep, [0.271 * 0.68103, -0.271 * 1.832]);
    close(bookPicture.to, [-6.57471087, 0.127928]); // nag.md, step 2
  });
});

describe("minimize's rates, as the page computes them", () => {
  it('gd grows like kappa, nesterov with mu like sqrt(kappa)', () => {
    const slopeOf = (label: string) =>
      logLogSlope(
        RATE_KAPPAS,
        RATE_KAPPAS.map((kappa) => rateIterations(kappa, RATE_METHODS.find(([name]) => name === label)![1])!),
      );
    const gd = slopeOf('gd');
    const nesterov = slopeOf('nesterov (known mu)');
    assert.ok(gd >= 0.85 && gd <= 1.15, `gd slope ${gd}`);
    assert.ok(nesterov >= 0.4 && nesterov <= 0.6, `nesterov slope ${nesterov}`);
  });
});

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
  customSurface,
  logLogSlope,
  pictureOf,
  rateIterations,
  stateFromQuery,
  stateToQuery,
  surfaceOf,
  type PlaygroundState,
} from '../site/model.ts';

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

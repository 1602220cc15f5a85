/**
 * A formula the user typed: read and checked (cheap, on the page), differentiated
 * symbolically (costly: mathjs's `derivative` simplifies by default, and that can take
 * minutes on an ordinary formula of a few hundred characters, while the unsimplified
 * derivatives take milliseconds; so the page runs it in site/formula-worker.ts under a
 * time budget, simplified first and unsimplified if that runs out), and compiled into a
 * surface from the derivatives' text. mathjs only: the worker loads this module and not
 * the optimizer library.
 */
import { en } from './i18n/en.ts';
import { message, say, type Message } from './i18n/index.ts';
import { derivative, parse, type EvalFunction, type MathNode } from 'mathjs/number';

/** A formula the user typed that cannot be used; the message says why, for people. */
/** Why a formula is refused: `said` for the page to word in the language shown, `message` in English. */
export class FormulaError extends Error {
  constructor(readonly said: Message) {
    super(say(en, said));
  }
}

/** The longest formula the page takes: enough for any surface worth plotting, short enough to parse and evaluate fast. */
export const MAX_FORMULA_LENGTH = 500;

/**
 * How long the page lets mathjs simplify the derivatives. Simplified ones are shorter
 * and cheaper to evaluate, and most formulas get them in milliseconds; past this, the
 * page takes the unsimplified ones instead.
 */
export const SIMPLIFY_BUDGET_MS = 750;

/**
 * How long the page lets mathjs work out the derivatives in all, simplified and then
 * unsimplified, before it gives up on the formula.
 */
export const DERIVATIVE_BUDGET_MS = 2500;

/**
 * The longest derivative text the page compiles: mathjs parses and evaluates in time
 * that grows with the text, and the page evaluates the gradient on every step.
 */
export const MAX_DERIVATIVE_LENGTH = 20_000;

/**
 * The most one evaluation of f and its gradient may cost on average: the page evaluates
 * them some 30,000 times a redraw (contours, paths, f - f*). An elementary formula of
 * the longest length costs a fraction of it; a function that loops (isPrime of a large
 * prime) costs a thousand times more.
 */
export const MAX_EVALUATION_MS = 1;

const ALLOWED_CONSTANTS = new Set(['pi', 'e']);

/** Where the formula is tried when it is checked: somewhere in the plot, away from 0. */
const SAMPLES: readonly (readonly [number, number])[] = [
  [0.5, 0.5],
  [-1.5, 1],
  [2, -2.5],
  [-3, -1],
];

/** Reads `text` and checks it is one expression in x and y (throws FormulaError saying why not). */
export function checkFormula(text: string): MathNode {
  if (text.trim() === '') throw new FormulaError({ key: 'formulaEmpty' });
  if (text.length > MAX_FORMULA_LENGTH) {
    throw new FormulaError(message('formulaTooLong', { length: text.length, max: MAX_FORMULA_LENGTH }));
  }
  let node: MathNode;
  try {
    node = parse(text);
  } catch (error) {
    throw new FormulaError(message('formulaUnreadable', { text, detail: (error as Error).message }));
  }
  const unknown = new Set<string>();
  let statements = false;
  node.traverse((child, path, parent) => {
    if (child.type === 'SymbolNode' && !(parent?.type === 'FunctionNode' && path === 'fn')) {
      const name = (child as unknown as { name: string }).name;
      if (name !== 'x' && name !== 'y' && !ALLOWED_CONSTANTS.has(name)) unknown.add(name);
    }
    if (child.type === 'AssignmentNode' || child.type === 'FunctionAssignmentNode' || child.type === 'BlockNode') statements = true;
  });
  if (statements) throw new FormulaError(message('formulaStatements', { text }));
  if (unknown.size > 0) {
    throw new FormulaError(message('formulaUnknown', { text, names: [...unknown].map((n) => `"${n}"`).join(', ') }));
  }
  return node;
}

/** A compiled expression evaluated at (x, y); anything but a number (a matrix, a string, an error) is NaN. */
function evaluator(compiled: EvalFunction): (x: number, y: number) => number {
  const scope = { x: 0, y: 0 };
  return (x, y) => {
    scope.x = x;
    scope.y = y;
    let result: unknown;
    try {
      result = compiled.evaluate(scope);
    } catch {
      return NaN;
    }
    return typeof result === 'number' ? result : NaN;
  };
}

/** The partial derivatives of a formula, as mathjs text. */
export interface Derivatives {
  readonly dx: string;
  readonly dy: string;
}

/**
 * Checks `text`, tries it at a few points, and differentiates it symbolically: the
 * costly part, which the page runs in a worker it can stop (throws FormulaError).
 * `simplify: false` skips mathjs's simplify, which is where the time goes: the same
 * derivatives, in longer text.
 */
export function differentiate(text: string, { simplify = true }: { readonly simplify?: boolean } = {}): Derivatives {
  const node = checkFormula(text);
  let dx: string;
  let dy: string;
  let value: (x: number, y: number) => number;
  try {
    value = evaluator(node.compile());
    // toString with every parenthesis kept: the text parses back into the same tree.
    dx = derivative(node, 'x', { simplify }).toString({ parenthesis: 'all' });
    dy = derivative(node, 'y', { simplify }).toString({ parenthesis: 'all' });
  } catch (error) {
    throw new FormulaError(message('formulaNotDifferentiable', { text, detail: (error as Error).message }));
  }
  // A formula that is nowhere a real number (a matrix, a string, ...) cannot be drawn.
  if (!SAMPLES.some(([x, y]) => Number.isFinite(value(x, y)))) {
    throw new FormulaError(message('formulaNotReal', { text }));
  }
  if (dx.length + dy.length > MAX_DERIVATIVE_LENGTH) {
    throw new FormulaError(message('formulaDerivativesTooLong', { text, length: dx.length + dy.length, max: MAX_DERIVATIVE_LENGTH }));
  }
  const cost = evaluationCost(compileFormula(text, { dx, dy }));
  if (cost > MAX_EVALUATION_MS) {
    throw new FormulaError(message('formulaTooSlow', { text, ms: +cost.toPrecision(2), max: MAX_EVALUATION_MS }));
  }
  return { dx, dy };
}

/**
 * Milliseconds one evaluation of f and its gradient takes at the samples: the fastest of
 * five short windows, after a warm-up. The fastest, not the mean: a window the machine
 * spent on another process (or a garbage collection) says nothing about the formula, and
 * one slow call (isPrime of a large number) is slow in every window. A window ends after
 * 4 ms, or after its first call where that call takes longer.
 */
function evaluationCost({ f, gradient }: CompiledFormula): number {
  const g = new Float64Array(2);
  const once = (n: number): void => {
    const [x, y] = SAMPLES[n % SAMPLES.length]!;
    f(x, y);
    gradient(x, y, g);
  };
  // Warm-up: the first calls of a compiled formula run before the engine has optimised it.
  const warm = performance.now();
  for (let n = 0; n < 200 && performance.now() - warm < 10; n++) once(n);
  let best = Infinity;
  for (let window = 0; window < 5; window++) {
    const t0 = performance.now();
    let n = 0;
    while (n < 1000) {
      once(n++);
      if (performance.now() - t0 >= 4) break;
    }
    best = Math.min(best, (performance.now() - t0) / n);
  }
  return best;
}

/** A formula and its derivatives compiled: f(x, y) and its gradient. */
export interface CompiledFormula {
  f(x: number, y: number): number;
  gradient(x: number, y: number, out: Float64Array): void;
}

/** Compiles a formula checked by `differentiate` and the derivatives it returned (throws FormulaError). */
export function compileFormula(text: string, derivatives: Derivatives): CompiledFormula {
  const node = checkFormula(text);
  let f: (x: number, y: number) => number;
  let dx: (x: number, y: number) => number;
  let dy: (x: number, y: number) => number;
  try {
    f = evaluator(node.compile());
    dx = evaluator(parse(derivatives.dx).compile());
    dy = evaluator(parse(derivatives.dy).compile());
  } catch (error) {
    throw new FormulaError(message('formulaNotDifferentiable', { text, detail: (error as Error).message }));
  }
  return {
    f,
    gradient: (x, y, out) => {
      out[0] = dx(x, y);
      out[1] = dy(x, y);
    },
  };
}

/**
 * The playground's model: the functions, the optimizers (named as `npm start` names
 * them), the paths they take, the post's picture of one step, the state that lives in
 * the URL, and minimize's rates. No DOM here, so Node tests can hold it to numbers.
 *
 * Everything that moves a point is the library itself, imported as users import it.
 */
import { AdaGrad, Adam, AdamW, Momentum, NAdam, Nesterov, RMSProp, SGD, minimize, type AnyOptimizer, type MinimizeOptions } from 'nesterov';
import { compileFormula, differentiate, type Derivatives } from './formula.ts';
import { en } from './i18n/en.ts';
import { message, say, type Message, type PlainKey } from './i18n/index.ts';

// ---------------------------------------------------------------- functions

export type FunctionId = 'book' | 'rosenbrock' | 'beale' | 'saddle' | 'himmelblau' | 'quadratic' | 'custom';
export const FUNCTION_IDS: readonly FunctionId[] = ['book', 'rosenbrock', 'beale', 'saddle', 'himmelblau', 'quadratic', 'custom'];

export interface Surface {
  readonly id: FunctionId;
  readonly title: string;
  /** The formula as mathjs reads it (what the JSON download calls `function`). */
  readonly formula: string;
  f(x: number, y: number): number;
  /** Writes the gradient at (x, y) into out[0], out[1]. */
  gradient(x: number, y: number, out: Float64Array): void;
  readonly xDomain: readonly [number, number];
  readonly yDomain: readonly [number, number];
  /** Where the minima are (drawn as black dots); empty when unknown. */
  readonly minima: readonly (readonly [number, number])[];
  /** The minimum value, when known (the f - f* view estimates it otherwise). */
  readonly fStar: number | undefined;
}

/** What a function suggests when it is chosen: a start, a learning rate and a step count. */
export interface Preset {
  readonly start: readonly [number, number];
  readonly lr: number;
  readonly steps: number;
}

export const PRESETS: Record<FunctionId, Preset> = {
  book: { start: [-7, 2], lr: 0.1, steps: 30 },
  rosenbrock: { start: [-1.2, 1], lr: 0.001, steps: 1000 },
  beale: { start: [1, 1], lr: 0.01, steps: 300 },
  saddle: { start: [-1.8, 0.001], lr: 0.05, steps: 100 },
  himmelblau: { start: [0, 0], lr: 0.01, steps: 100 },
  quadratic: { start: [-7, 2], lr: 0.1, steps: 60 },
  custom: { start: [-4, 1], lr: 0.1, steps: 60 },
};

/** Each function's name in the language tables (site/i18n/). */
export const FUNCTION_TITLE_KEYS = {
  book: 'fnBook',
  rosenbrock: 'fnRosenbrock',
  beale: 'fnBeale',
  saddle: 'fnSaddle',
  himmelblau: 'fnHimmelblau',
  quadratic: 'fnQuadratic',
  custom: 'fnCustom',
} as const satisfies Record<FunctionId, keyof typeof en>;

/** The functions' names in English (the page words them in the language shown). */
export const FUNCTION_TITLES = Object.fromEntries(Object.entries(FUNCTION_TITLE_KEYS).map(([id, key]) => [id, en[key]])) as Record<FunctionId, string>;

/** The part of the plane each function's plot shows; a start is kept inside it. */
export const DOMAINS: Record<FunctionId, { readonly x: readonly [number, number]; readonly y: readonly [number, number] }> = {
  book: { x: [-10, 10], y: [-5, 5] },
  rosenbrock: { x: [-2, 2], y: [-1, 3] },
  beale: { x: [-4.5, 4.5], y: [-4.5, 4.5] },
  saddle: { x: [-2, 2], y: [-2, 2] },
  himmelblau: { x: [-5, 5], y: [-5, 5] },
  quadratic: { x: [-10, 10], y: [-5, 5] },
  custom: { x: [-5, 5], y: [-5, 5] },
};

const BOOK: Surface = {
  id: 'book',
  title: FUNCTION_TITLES.book,
  formula: 'x^2/20 + y^2',
  f: (x, y) => (x * x) / 20 + y * y,
  gradient: (x, y, out) => {
    out[0] = x / 10;
    out[1] = 2 * y;
  },
  xDomain: DOMAINS.book.x,
  yDomain: DOMAINS.book.y,
  minima: [[0, 0]],
  fStar: 0,
};

const ROSENBROCK: Surface = {
  id: 'rosenbrock',
  title: FUNCTION_TITLES.rosenbrock,
  formula: '(1 - x)^2 + 100 * (y - x^2)^2',
  f: (x, y) => (1 - x) ** 2 + 100 * (y - x * x) ** 2,
  gradient: (x, y, out) => {
    const r = y - x * x;
    out[0] = -2 * (1 - x) - 400 * x * r;
    out[1] = 200 * r;
  },
  xDomain: DOMAINS.rosenbrock.x,
  yDomain: DOMAINS.rosenbrock.y,
  minima: [[1, 1]],
  fStar: 0,
};

const BEALE: Surface = {
  id: 'beale',
  title: FUNCTION_TITLES.beale,
  formula: '(1.5 - x + x*y)^2 + (2.25 - x + x*y^2)^2 + (2.625 - x + x*y^3)^2',
  f: (x, y) => (1.5 - x + x * y) ** 2 + (2.25 - x + x * y * y) ** 2 + (2.625 - x + x * y * y * y) ** 2,
  gradient: (x, y, out) => {
    const a = 1.5 - x + x * y;
    const b = 2.25 - x + x * y * y;
    const c = 2.625 - x + x * y * y * y;
    out[0] = 2 * a * (y - 1) + 2 * b * (y * y - 1) + 2 * c * (y * y * y - 1);
    out[1] = 2 * a * x + 4 * b * x * y + 6 * c * x * y * y;
  },
  xDomain: DOMAINS.beale.x,
  yDomain: DOMAINS.beale.y,
  minima: [[3, 0.5]],
  fStar: 0,
};

const SADDLE: Surface = {
  id: 'saddle',
  title: FUNCTION_TITLES.saddle,
  formula: 'x^2 + y^4/4 - y^2/2',
  f: (x, y) => x * x + (y * y * y * y) / 4 - (y * y) / 2,
  gradient: (x, y, out) => {
    out[0] = 2 * x;
    out[1] = y * y * y - y;
  },
  xDomain: DOMAINS.saddle.x,
  yDomain: DOMAINS.saddle.y,
  minima: [
    [0, 1],
    [0, -1],
  ],
  fStar: -0.25,
};

const HIMMELBLAU: Surface = {
  id: 'himmelblau',
  title: FUNCTION_TITLES.himmelblau,
  formula: '(x^2 + y - 11)^2 + (x + y^2 - 7)^2',
  f: (x, y) => (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2,
  gradient: (x, y, out) => {
    const a = x * x + y - 11;
    const b = x + y * y - 7;
    out[0] = 4 * x * a + 2 * b;
    out[1] = 2 * a + 4 * y * b;
  },
  xDomain: DOMAINS.himmelblau.x,
  yDomain: DOMAINS.himmelblau.y,
  minima: [
    [3, 2],
    [-2.805118, 3.131312],
    [-3.77931, -3.283186],
    [3.584428, -1.848126],
  ],
  fStar: 0,
};

function quadratic(kappa: number): Surface {
  return {
    id: 'quadratic',
    title: say(en, message('quadraticTitle', { kappa })),
    formula: `x^2/${kappa} + y^2`,
    f: (x, y) => (x * x) / kappa + y * y,
    gradient: (x, y, out) => {
      out[0] = (2 * x) / kappa;
      out[1] = 2 * y;
    },
    xDomain: DOMAINS.quadratic.x,
    yDomain: DOMAINS.quadratic.y,
    minima: [[0, 0]],
    fStar: 0,
  };
}

export { FormulaError, MAX_FORMULA_LENGTH } from './formula.ts';

/** The surface of a typed formula whose derivatives are known (from `differentiate`, maybe in the worker). */
export function customSurfaceFrom(text: string, derivatives: Derivatives): Surface {
  const { f, gradient } = compileFormula(text, derivatives);
  return {
    id: 'custom',
    title: `f(x, y) = ${text}`,
    formula: text,
    f,
    gradient,
    xDomain: DOMAINS.custom.x,
    yDomain: DOMAINS.custom.y,
    minima: [],
    fStar: undefined,
  };
}

/**
 * Parses `text` with mathjs, checks it names only x and y, and differentiates it
 * symbolically, here and now: the page does the differentiation in a worker instead.
 */
export function customSurface(text: string): Surface {
  return customSurfaceFrom(text, differentiate(text));
}

/** The surface a state names (throws FormulaError for a bad custom formula). */
export function surfaceOf(state: Pick<PlaygroundState, 'fn' | 'kappa' | 'expr'>): Surface {
  switch (state.fn) {
    case 'book':
      return BOOK;
    case 'rosenbrock':
      return ROSENBROCK;
    case 'beale':
      return BEALE;
    case 'saddle':
      return SADDLE;
    case 'himmelblau':
      return HIMMELBLAU;
    case 'quadratic':
      return quadratic(state.kappa);
    case 'custom':
      return customSurface(state.expr);
  }
}

// ---------------------------------------------------------------- optimizers

/** The knobs every optimizer reads what it needs from. */
export interface Knobs {
  lr: number;
  momentum: number;
  beta1: number;
  beta2: number;
}

export interface OptimizerEntry {
  /** What the legend says, as its key in the language tables (site/i18n/). */
  readonly label: PlainKey;
  /** Which knobs it reads besides lr. */
  readonly knobs: readonly ('momentum' | 'beta1' | 'beta2')[];
  make(knobs: Knobs): AnyOptimizer;
}

// The page recomputes every path on every knob move: the per-call structure checks and
// the non-finite scan are off (a diverging path is cut where it stops being finite).
const FAST = { checkInputs: false, nonFinite: 'ignore' } as const;

/** Our optimizers and variants; the first nine are `npm start`'s names, the rest name their variant. */
export const OPTIMIZERS: Record<string, OptimizerEntry> = {
  sgd: { label: 'optSgd', knobs: [], make: ({ lr }) => new SGD({ ...FAST, lr }) },
  momentum: { label: 'optMomentum', knobs: ['momentum'], make: ({ lr, momentum }) => new Momentum({ ...FAST, lr, momentum }) },
  nesterov: { label: 'optNesterov', knobs: ['momentum'], make: ({ lr, momentum }) => new Nesterov({ ...FAST, lr, momentum }) },
  'nesterov-book': {
    label: 'optNesterovBook',
    knobs: ['momentum'],
    make: ({ lr, momentum }) => new Nesterov({ ...FAST, lr, momentum, variant: 'book' }),
  },
  adagrad: { label: 'optAdagrad', knobs: [], make: ({ lr }) => new AdaGrad({ ...FAST, lr }) },
  rmsprop: { label: 'optRmsprop', knobs: [], make: ({ lr }) => new RMSProp({ ...FAST, lr }) },
  adam: { label: 'optAdam', knobs: ['beta1', 'beta2'], make: ({ lr, beta1, beta2 }) => new Adam({ ...FAST, lr, beta1, beta2 }) },
  adamw: { label: 'optAdamw', knobs: ['beta1', 'beta2'], make: ({ lr, beta1, beta2 }) => new AdamW({ ...FAST, lr, beta1, beta2 }) },
  nadam: { label: 'optNadam', knobs: ['beta1', 'beta2'], make: ({ lr, beta1, beta2 }) => new NAdam({ ...FAST, lr, beta1, beta2 }) },
  'momentum-pytorch': {
    label: 'optMomentumPytorch',
    knobs: ['momentum'],
    make: ({ lr, momentum }) => new Momentum({ ...FAST, lr, momentum, variant: 'pytorch' }),
  },
  'nesterov-pytorch': {
    label: 'optNesterovPytorch',
    knobs: ['momentum'],
    make: ({ lr, momentum }) => new Nesterov({ ...FAST, lr, momentum, variant: 'pytorch' }),
  },
  'adagrad-book': { label: 'optAdagradBook', knobs: [], make: ({ lr }) => new AdaGrad({ ...FAST, lr, variant: 'book' }) },
  'rmsprop-book': { label: 'optRmspropBook', knobs: [], make: ({ lr }) => new RMSProp({ ...FAST, lr, variant: 'book' }) },
  'adam-book': {
    label: 'optAdamBook',
    knobs: ['beta1', 'beta2'],
    make: ({ lr, beta1, beta2 }) => new Adam({ ...FAST, lr, beta1, beta2, variant: 'book' }),
  },
  'adamw-book': {
    label: 'optAdamwBook',
    knobs: ['beta1', 'beta2'],
    make: ({ lr, beta1, beta2 }) => new AdamW({ ...FAST, lr, beta1, beta2, variant: 'book' }),
  },
};

export const OPTIMIZER_NAMES = Object.keys(OPTIMIZERS);

/** A path: the start and then one point per step, as x0, y0, x1, y1, ...; cut at its last finite point. */
export interface Path {
  readonly name: string;
  readonly xy: Float64Array;
  /** Points in the path (steps + 1 unless it stopped). */
  readonly length: number;
  /**
   * Why the path stopped before its last step, when it did: the step it stopped at (its
   * last point, length - 1) and what was not finite, for people (worded by the page).
   */
  readonly stopped: { readonly step: number; readonly reason: Message } | undefined;
}

const show = (v: number) => String(+v.toPrecision(6));
const pair = (a: number, b: number) => `(${show(a)}, ${show(b)})`;

/**
 * Runs optimizer `name` from `start` for `steps` updates on `surface`, through the
 * library. The path stops at its last finite point: where f or the gradient there is
 * NaN or infinite, or where the next step would leave the finite numbers or land where f
 * is not finite (the start is always kept, to be drawn with the reason).
 */
export function runPath(name: string, surface: Surface, start: readonly [number, number], steps: number, knobs: Knobs): Path {
  const opt = OPTIMIZERS[name]!.make(knobs);
  const params = { xy: Float64Array.of(start[0], start[1]) };
  const grads = { xy: new Float64Array(2) };
  const p = params.xy;
  const g = grads.xy;
  const xy = new Float64Array(2 * (steps + 1));
  xy[0] = start[0];
  xy[1] = start[1];
  let length = 1;
  let reason: Message | undefined;
  const f0 = surface.f(start[0], start[1]);
  if (!Number.isFinite(f0)) reason = message('stopStart', { point: pair(start[0], start[1]), value: String(f0) });
  for (let t = 0; t < steps && reason === undefined; t++) {
    const [x, y] = [p[0]!, p[1]!];
    surface.gradient(x, y, g);
    if (!Number.isFinite(g[0]!) || !Number.isFinite(g[1]!)) {
      reason = message('stopGradient', { point: pair(x, y), gradient: pair(g[0]!, g[1]!) });
      break;
    }
    opt.update(params, grads);
    if (!Number.isFinite(p[0]!) || !Number.isFinite(p[1]!)) {
      reason = message('stopOverflow', { step: t + 1, point: pair(p[0]!, p[1]!) });
      break;
    }
    const f = surface.f(p[0]!, p[1]!);
    if (!Number.isFinite(f)) {
      reason = message('stopValue', { step: t + 1, point: pair(p[0]!, p[1]!), value: String(f) });
      break;
    }
    xy[2 * length] = p[0]!;
    xy[2 * length + 1] = p[1]!;
    length++;
  }
  return { name, xy, length, stopped: reason === undefined ? undefined : { step: length - 1, reason } };
}

export function pathsOf(state: PlaygroundState, surface: Surface): Path[] {
  const knobs: Knobs = { lr: state.lr, momentum: state.momentum, beta1: state.beta1, beta2: state.beta2 };
  return state.optimizers.map((name) => runPath(name, surface, state.start, state.steps, knobs));
}

/** The JSON the "Download paths" button saves: the start first, names as `npm start` names them. */
export interface PathsDownload {
  function: string;
  start: [number, number];
  paths: Record<string, [number, number][]>;
  settings: { lr: number; momentum: number; beta1: number; beta2: number; steps: number };
}

export function pathsDownload(state: PlaygroundState, surface: Surface, paths: readonly Path[]): PathsDownload {
  const out: Record<string, [number, number][]> = {};
  for (const path of paths) {
    const points: [number, number][] = [];
    for (let i = 0; i < path.length; i++) points.push([path.xy[2 * i]!, path.xy[2 * i + 1]!]);
    out[path.name] = points;
  }
  return {
    function: surface.formula,
    start: [state.start[0], state.start[1]],
    paths: out,
    settings: { lr: state.lr, momentum: state.momentum, beta1: state.beta1, beta2: state.beta2, steps: state.steps },
  };
}

// ---------------------------------------------------------------- the post's picture

export type PictureOptimizer = 'nesterov' | 'momentum' | 'nesterov-book';
export const PICTURE_OPTIMIZERS: readonly PictureOptimizer[] = ['nesterov', 'momentum', 'nesterov-book'];

type Point = readonly [number, number];

/** One step of NAG, Momentum or the book's code, as the post draws it: arrows that add up. */
export interface Picture {
  readonly name: PictureOptimizer;
  readonly step: number;
  /** Where the step starts (for NAG: theta = p - mu v, the point before the look-ahead). */
  readonly from: Point;
  /** The momentum step: from `from` to `from + momentumStep`. */
  readonly momentumStep: Point;
  /** Where the gradient is taken. */
  readonly gradientAt: Point;
  /** The gradient step, drawn from the tip of the momentum step. */
  readonly gradientStep: Point;
  /** The actual step, from the library's update: `from` to `to`. */
  readonly to: Point;
  /** The stored point before and after the update (the path's points k and k + 1). */
  readonly stored: readonly [Point, Point];
  readonly caption: Message;
}

/**
 * Step `step` (0-based: the update from point k to point k + 1) of one of the three, with
 * the state read from the library (`stateOf('xy').velocity`) before and after its update.
 */
export function pictureOf(name: PictureOptimizer, surface: Surface, start: readonly [number, number], step: number, knobs: Knobs): Picture | undefined {
  const opt = OPTIMIZERS[name]!.make(knobs);
  const params = { xy: Float64Array.of(start[0], start[1]) };
  const grads = { xy: new Float64Array(2) };
  const p = params.xy;
  for (let t = 0; t < step; t++) {
    surface.gradient(p[0]!, p[1]!, grads.xy);
    opt.update(params, grads);
  }
  if (!Number.isFinite(p[0]!) || !Number.isFinite(p[1]!)) return undefined;
  const velocity = (): Point => {
    // Momentum 'classic', Nesterov 'nag' and 'book' keep the velocity v as `velocity`.
    const v = (opt.stateOf('xy') as { velocity?: Float64Array } | undefined)?.velocity;
    return v === undefined ? [0, 0] : [v[0]!, v[1]!];
  };
  const mu = knobs.momentum;
  const lr = knobs.lr;
  const before: Point = [p[0]!, p[1]!];
  const v0 = velocity();
  surface.gradient(before[0], before[1], grads.xy);
  const g: Point = [grads.xy[0]!, grads.xy[1]!];
  opt.update(params, grads);
  const after: Point = [p[0]!, p[1]!];
  const v1 = velocity();
  // A step whose gradient or result is not finite has no arrows to draw.
  if (![...g, ...after, ...v0, ...v1].every(Number.isFinite)) return undefined;
  const f = (n: number) => String(+n.toFixed(4));
  if (name === 'nesterov') {
    // The library stores the look-ahead point p = theta + mu v (Bengio's form); the
    // post's picture is Sutskever's: from theta, the momentum step mu v lands on p,
    // the gradient is taken there, and theta moves by v+ = mu v - lr g(p).
    const theta: Point = [before[0] - mu * v0[0], before[1] - mu * v0[1]];
    const thetaNext: Point = [after[0] - mu * v1[0], after[1] - mu * v1[1]];
    return {
      name,
      step,
      from: theta,
      momentumStep: [mu * v0[0], mu * v0[1]],
      gradientAt: before,
      gradientStep: [-lr * g[0], -lr * g[1]],
      to: thetaNext,
      stored: [before, after],
      caption: message('captionNag', { mu: f(mu), lr: f(lr) }),
    };
  }
  if (name === 'momentum') {
    return {
      name,
      step,
      from: before,
      momentumStep: [mu * v0[0], mu * v0[1]],
      gradientAt: before,
      gradientStep: [-lr * g[0], -lr * g[1]],
      to: after,
      stored: [before, after],
      caption: message('captionMomentum', { mu: f(mu), lr: f(lr) }),
    };
  }
  const k = 1 + mu + mu * mu;
  return {
    name,
    step,
    from: before,
    momentumStep: [mu * mu * mu * v0[0], mu * mu * mu * v0[1]],
    gradientAt: before,
    gradientStep: [-k * lr * g[0], -k * lr * g[1]],
    to: after,
    stored: [before, after],
    caption: message('captionBook', { mu: f(mu), lr: f(lr) }),
  };
}

// ---------------------------------------------------------------- the URL

export interface PlaygroundState {
  fn: FunctionId;
  kappa: number;
  expr: string;
  start: [number, number];
  optimizers: string[];
  lr: number;
  momentum: number;
  beta1: number;
  beta2: number;
  steps: number;
  /** How many steps of the paths are shown (playback); = steps shows all. */
  shown: number;
  /** The post's picture: which optimizer, at which step. */
  picture: PictureOptimizer;
  pictureStep: number;
}

export const DEFAULT_STATE: Readonly<PlaygroundState> = Object.freeze({
  fn: 'book',
  kappa: 20,
  expr: 'x^2 + 3*sin(y)',
  start: [-7, 2],
  optimizers: ['nesterov', 'nesterov-book'],
  lr: 0.1,
  momentum: 0.9,
  beta1: 0.9,
  beta2: 0.999,
  steps: 30,
  shown: 30,
  picture: 'nesterov',
  // Step 1 is the first with a velocity; there the two arrows are of a size.
  pictureStep: 1,
}) as Readonly<PlaygroundState>;

export const LIMITS = {
  lr: [1e-4, 10],
  momentum: [0, 0.99],
  beta1: [0, 0.999],
  beta2: [0.9, 0.9999],
  steps: [1, 1000],
  kappa: [1, 1000],
} as const;

const clamp = (v: number, [lo, hi]: readonly [number, number]) => Math.min(hi, Math.max(lo, v));

/** The start a URL asks for, if it names two numbers (infinite ones too: clampStart moves them into the plot). */
export function requestedStart(search: string): [number, number] | undefined {
  const raw = (new URLSearchParams(search).get('start') ?? '').split(',').map((v) => (v.trim() === '' ? NaN : Number(v)));
  return raw.length === 2 && !raw.some(Number.isNaN) ? [raw[0]!, raw[1]!] : undefined;
}

/**
 * `start` moved into the plot of `fn` (each coordinate to the nearest edge when past
 * it), and a note for people when it moved (undefined when it did not): a point far outside
 * the plot cannot be drawn, and near the largest numbers its first step already overflows.
 */
export function clampStart(fn: FunctionId, start: readonly [number, number]): { start: [number, number]; note: Message | undefined } {
  const { x, y } = DOMAINS[fn];
  const inside = (v: number, range: readonly [number, number]) => (Number.isNaN(v) ? (range[0] + range[1]) / 2 : clamp(v, range));
  const clamped: [number, number] = [inside(start[0], x), inside(start[1], y)];
  if (clamped[0] === start[0] && clamped[1] === start[1]) return { start: clamped, note: undefined };
  return {
    start: clamped,
    note: message('startMoved', { start: pair(start[0], start[1]), x0: x[0], x1: x[1], y0: y[0], y1: y[1], moved: pair(clamped[0], clamped[1]) }),
  };
}

/** The state as URL search parameters: every knob, so a link keeps its view even if the defaults change. */
export function stateToQuery(state: PlaygroundState): string {
  const q = new URLSearchParams();
  q.set('fn', state.fn);
  if (state.fn === 'quadratic') q.set('kappa', String(state.kappa));
  if (state.fn === 'custom') q.set('expr', state.expr);
  q.set('start', `${state.start[0]},${state.start[1]}`);
  q.set('opt', state.optimizers.join(','));
  q.set('lr', String(state.lr));
  q.set('momentum', String(state.momentum));
  q.set('beta1', String(state.beta1));
  q.set('beta2', String(state.beta2));
  q.set('steps', String(state.steps));
  if (state.shown !== state.steps) q.set('shown', String(state.shown));
  q.set('picture', state.picture);
  q.set('pstep', String(state.pictureStep));
  return q.toString();
}

/** Reads a state from URL search parameters; what is missing or invalid takes the default. */
export function stateFromQuery(search: string): PlaygroundState {
  const q = new URLSearchParams(search);
  const d = DEFAULT_STATE;
  const num = (key: string, fallback: number, limits?: readonly [number, number]): number => {
    const raw = q.get(key);
    const v = raw === null || raw.trim() === '' ? NaN : Number(raw);
    if (!Number.isFinite(v)) return fallback;
    return limits ? clamp(v, limits) : v;
  };
  const fnRaw = q.get('fn');
  const fn = FUNCTION_IDS.includes(fnRaw as FunctionId) ? (fnRaw as FunctionId) : d.fn;
  const preset = PRESETS[fn];
  const start = clampStart(fn, requestedStart(search) ?? preset.start).start;
  const optRaw = q.get('opt');
  const optimizers = optRaw === null ? [...d.optimizers] : optRaw.split(',').filter((n, i, all) => OPTIMIZER_NAMES.includes(n) && all.indexOf(n) === i);
  const steps = Math.round(num('steps', fnRaw === null ? d.steps : preset.steps, LIMITS.steps));
  const pictureRaw = q.get('picture');
  return {
    fn,
    kappa: num('kappa', d.kappa, LIMITS.kappa),
    expr: q.get('expr') ?? d.expr,
    start,
    optimizers,
    lr: num('lr', fnRaw === null ? d.lr : preset.lr, LIMITS.lr),
    momentum: num('momentum', d.momentum, LIMITS.momentum),
    beta1: num('beta1', d.beta1, LIMITS.beta1),
    beta2: num('beta2', d.beta2, LIMITS.beta2),
    steps,
    shown: Math.round(num('shown', steps, [0, steps])),
    picture: PICTURE_OPTIMIZERS.includes(pictureRaw as PictureOptimizer) ? (pictureRaw as PictureOptimizer) : d.picture,
    pictureStep: Math.round(num('pstep', d.pictureStep, [0, steps - 1])),
  };
}

// ---------------------------------------------------------------- contours

/** f on an nx-by-ny grid over the surface's domain, row 0 at the top (d3-contour's order). */
export function grid(surface: Surface, nx: number, ny: number, xDomain = surface.xDomain, yDomain = surface.yDomain): Float64Array {
  const [x0, x1] = xDomain;
  const [y0, y1] = yDomain;
  const values = new Float64Array(nx * ny);
  for (let j = 0; j < ny; j++) {
    const y = y1 - ((y1 - y0) * (j + 0.5)) / ny;
    for (let i = 0; i < nx; i++) values[j * nx + i] = surface.f(x0 + ((x1 - x0) * (i + 0.5)) / nx, y);
  }
  return values;
}

/**
 * Contour levels that suit any function: quantiles of the grid's values, spaced so that
 * the low region (where the paths end) gets more lines.
 */
export function levels(values: Float64Array, count = 18): number[] {
  const finite = Array.from(values).filter(Number.isFinite).sort((a, b) => a - b);
  if (finite.length === 0) return [];
  const out: number[] = [];
  for (let i = 1; i <= count; i++) {
    const q = (i / (count + 1)) ** 2;
    const v = finite[Math.min(finite.length - 1, Math.floor(q * finite.length))]!;
    if (out.length === 0 || v > out[out.length - 1]!) out.push(v);
  }
  return out;
}

// ---------------------------------------------------------------- minimize's rates

export const RATE_METHODS: readonly (readonly [string, MinimizeOptions])[] = [
  ['gd', { method: 'gd' }],
  ['heavy ball (known mu)', { method: 'heavy-ball', mu: 1 }],
  ['nesterov (known mu)', { method: 'nesterov', mu: 1 }],
  ['nesterov (no mu)', { method: 'nesterov' }],
  ['nesterov, function restart (no mu)', { method: 'nesterov', restart: 'function' }],
];
export const RATE_KAPPAS: readonly number[] = [10, 31.6, 100, 316, 1000, 3162];
export const RATE_DIMENSION = 20;

/**
 * Iterations `minimize` needs to bring f - f* below 1e-8 f(x0) on a diagonal quadratic
 * of dimension 20 with eigenvalues log-spaced from 1 to kappa (mu = 1, L = kappa), from
 * x0 = (1, ..., 1). The methods are invariant under rotation, so diagonal loses nothing.
 */
export function rateIterations(kappa: number, options: MinimizeOptions, maxIterations = 400_000): number | undefined {
  const n = RATE_DIMENSION;
  const eigen = Float64Array.from({ length: n }, (_, i) => kappa ** (i / (n - 1)));
  const fg = (x: Float64Array, g: Float64Array): number => {
    let f = 0;
    for (let i = 0; i < n; i++) {
      const gi = eigen[i]! * x[i]!;
      g[i] = gi;
      f += 0.5 * gi * x[i]!;
    }
    return f;
  };
  const x0 = new Float64Array(n).fill(1);
  const f0 = fg(x0, new Float64Array(n));
  const target = 1e-8 * f0;
  const result = minimize(fg, x0, { ...options, L: kappa, history: true, gradTol: Math.sqrt(2 * target) * 1e-3, maxIterations });
  const index = result.history!.findIndex((f) => f <= target);
  return index < 0 ? undefined : index;
}

/** Least-squares slope of log y against log x. */
export function logLogSlope(xs: readonly number[], ys: readonly number[]): number {
  const lx = xs.map(Math.log);
  const ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let num = 0;
  let den = 0;
  for (let i = 0; i < lx.length; i++) {
    num += (lx[i]! - mx) * (ly[i]! - my);
    den += (lx[i]! - mx) ** 2;
  }
  return num / den;
}

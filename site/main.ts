/**
 * The playground page: reads the state from the URL, draws it, and redraws as a knob
 * moves. The model (site/model.ts) runs the library; this file only draws.
 */
import { contours } from 'd3-contour';
import { scaleLinear, scaleLog } from 'd3-scale';
import {
  FUNCTION_IDS,
  FUNCTION_TITLE_KEYS,
  FormulaError,
  MAX_FORMULA_LENGTH,
  OPTIMIZERS,
  OPTIMIZER_NAMES,
  PRESETS,
  RATE_KAPPAS,
  RATE_METHODS,
  clampStart,
  customSurfaceFrom,
  grid,
  levels,
  logLogSlope,
  pathsDownload,
  pathsOf,
  pictureOf,
  rateIterations,
  requestedStart,
  stateFromQuery,
  stateToQuery,
  surfaceOf,
  type FunctionId,
  type Path,
  type PictureOptimizer,
  type PlaygroundState,
  type Surface,
} from './model.ts';
import { STYLES, markerPath, type PathStyle } from './style.ts';
import { DerivativeWorker } from './derivatives.ts';
import { checkFormula } from './formula.ts';
import { STRINGS, chooseLanguage, say, type Language, type Message, type Strings } from './i18n/index.ts';

const SVG = 'http://www.w3.org/2000/svg';
const $ = <T extends Element = HTMLElement>(id: string) => document.getElementById(id) as unknown as T;
const fmt = (v: number, digits = 4) => String(+v.toPrecision(digits));

let state: PlaygroundState = stateFromQuery(location.search);

// The language: the address's `lang`, else the browser's. Only a choice (the address's
// or the select's) is written back into the address, so a shared link without one opens
// in each visitor's own language.
const visit = chooseLanguage(location.search, navigator.language);
let language: Language = visit.language;
let languageChosen = visit.chosen;
let t: Strings = STRINGS[language];
/** `m` in the language shown. */
const tell = (m: Message) => say(t, m);
/** Said under the start's inputs when a start asked for (URL, inputs, a click) was moved into the plot. */
let startNote = clampStart(state.fn, requestedStart(location.search) ?? state.start).note;

/** Sets the start, kept inside the plot, and says so when it had to be moved. */
function setStart(requested: readonly [number, number]) {
  const { start, note } = clampStart(state.fn, requested);
  state.start = start;
  startNote = note;
}

// ---------------------------------------------------------------- caches

let surfaceKey = '';
let surface: Surface | undefined;
let surfaceError: Message | undefined;
/** The typed formula's derivatives are being worked out (in the worker). */
let surfacePending = false;
const derivatives = new DerivativeWorker(() => update());
let pathsKey = '';
let paths: Path[] = [];
/** Milliseconds of each recompute of the paths (the last 1,000; read by the e2e test's measurement). */
const recomputeTimes: number[] = [];
/** Milliseconds of each whole update: recompute and every view redrawn (the last 1,000). */
const updateTimes: number[] = [];
const record = (times: number[], ms: number) => {
  times.push(ms);
  if (times.length > 1000) times.splice(0, times.length - 1000);
};
(window as unknown as { playground: unknown }).playground = { recomputeTimes, updateTimes, state: () => state };

function currentSurface(): Surface | undefined {
  const key = `${state.fn}|${state.kappa}|${state.fn === 'custom' ? state.expr : ''}`;
  if (key !== surfaceKey || surfacePending) {
    surfaceKey = key;
    surfacePending = false;
    surface = undefined;
    surfaceError = undefined;
    try {
      if (state.fn !== 'custom') {
        surface = surfaceOf(state);
      } else {
        // Reading and checking the formula is quick and answers at once; the derivatives
        // can take minutes, so they are worked out in the worker, which is stopped past its budget.
        checkFormula(state.expr);
        const derivation = derivatives.get(state.expr);
        if (derivation.status === 'pending') surfacePending = true;
        else if (derivation.status === 'refused') surfaceError = derivation.said;
        else surface = customSurfaceFrom(state.expr, derivation);
      }
    } catch (error) {
      if (!(error instanceof FormulaError)) throw error;
      surfaceError = error.said;
    }
  }
  return surface;
}

function currentPaths(s: Surface): Path[] {
  const key = `${surfaceKey}|${state.start}|${state.optimizers}|${state.lr}|${state.momentum}|${state.beta1}|${state.beta2}|${state.steps}`;
  if (key !== pathsKey) {
    const t0 = performance.now();
    paths = pathsOf(state, s);
    record(recomputeTimes, performance.now() - t0);
    pathsKey = key;
  }
  return paths;
}

// ---------------------------------------------------------------- the main plot

const W = 640;
const H = 440;
const M = { left: 44, right: 12, top: 22, bottom: 32 };

function el<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, parent?: Element): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  parent?.appendChild(node);
  return node;
}

function axes(svg: SVGSVGElement, x: (v: number) => number, y: (v: number) => number, xTicks: number[], yTicks: number[], xLabel: string, yLabel: string, yFormat = (v: number) => fmt(v, 3)) {
  const [w, h] = [svg.viewBox.baseVal.width, svg.viewBox.baseVal.height];
  const g = el('g', { class: 'axes', 'aria-hidden': 'true' }, svg);
  el('line', { x1: M.left, y1: h - M.bottom, x2: w - M.right, y2: h - M.bottom }, g);
  el('line', { x1: M.left, y1: M.top, x2: M.left, y2: h - M.bottom }, g);
  for (const t of xTicks) {
    el('line', { x1: x(t), x2: x(t), y1: h - M.bottom, y2: h - M.bottom + 4 }, g);
    el('text', { x: x(t), y: h - M.bottom + 15, 'text-anchor': 'middle' }, g).textContent = fmt(t, 3);
  }
  for (const t of yTicks) {
    el('line', { x1: M.left - 4, x2: M.left, y1: y(t), y2: y(t) }, g);
    el('text', { x: M.left - 6, y: y(t) + 4, 'text-anchor': 'end' }, g).textContent = yFormat(t);
  }
  el('text', { x: w - M.right, y: h - 4, 'text-anchor': 'end', class: 'label' }, g).textContent = xLabel;
  el('text', { x: 4, y: 13, class: 'label' }, g).textContent = yLabel;
}

/** d3-contour's rings are in grid cells; this maps them to pixels (x and y scale differently). */
function contourSvg(s: Surface, xDomain: readonly [number, number], yDomain: readonly [number, number], px: (v: number) => number, py: (v: number) => number, n: number): string {
  // The grid reaches two cells past each edge, so the rings d3-contour closes along the
  // grid's border fall outside the (clipped) plot instead of drawing lines on its edge.
  const padX = ((xDomain[1] - xDomain[0]) * 2) / (n - 4);
  const padY = ((yDomain[1] - yDomain[0]) * 2) / (n - 4);
  const [x0, x1] = [xDomain[0] - padX, xDomain[1] + padX];
  const [y0, y1] = [yDomain[0] - padY, yDomain[1] + padY];
  const values = grid(s, n, n, [x0, x1], [y0, y1]);
  const shapes = contours().size([n, n]).thresholds(levels(values))(Array.from(values, (v) => (Number.isFinite(v) ? v : Number.MAX_VALUE)));
  let d = '';
  for (const shape of shapes) {
    let one = '';
    for (const polygon of shape.coordinates) {
      for (const ring of polygon) {
        one += ring.map(([gx = 0, gy = 0], i) => `${i ? "L" : "M"}${px(x0 + ((x1 - x0) * gx) / n).toFixed(1)},${py(y1 - ((y1 - y0) * gy) / n).toFixed(1)}`).join('') + 'Z';
      }
    }
    d += `<path d="${one}"/>`;
  }
  return d;
}

const clampPx = (v: number) => Math.max(-1e5, Math.min(1e5, v));

/**
 * A polyline through the points, skipping those closer than half a pixel to the last one
 * drawn (a slow path on Rosenbrock has hundreds per pixel); the last point always counts.
 */
function polyline(n: number, px: (i: number) => number, py: (i: number) => number): string {
  let d = '';
  let lastX = NaN;
  let lastY = NaN;
  for (let i = 0; i < n; i++) {
    const X = clampPx(px(i));
    const Y = clampPx(py(i));
    if (i > 0 && i < n - 1 && Math.abs(X - lastX) < 0.5 && Math.abs(Y - lastY) < 0.5) continue;
    d += `${i ? 'L' : 'M'}${Math.round(X * 10) / 10},${Math.round(Y * 10) / 10}`;
    lastX = X;
    lastY = Y;
  }
  return d;
}

/** The plot's layers that only change with the function: built once per surface. */
let plotLayersKey = '';
let pathLayer: SVGGElement | undefined;
let startMark: SVGCircleElement | undefined;

function drawPlot(s: Surface | undefined, ps: Path[]) {
  const svg = $<SVGSVGElement>('plot');
  if (s === undefined) {
    plotLayersKey = '';
    svg.replaceChildren();
    const text = surfacePending ? t.workingOut : t.plotFixFormula;
    el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: surfacePending ? 'waiting' : 'empty' }, svg).textContent = text;
    $('plot-title').textContent = surfacePending ? t.plotWorking : t.noFunction;
    return;
  }
  const x = scaleLinear().domain(s.xDomain).range([M.left, W - M.right]);
  const y = scaleLinear().domain(s.yDomain).range([H - M.bottom, M.top]);
  if (plotLayersKey !== surfaceKey || !pathLayer || !startMark) {
    plotLayersKey = surfaceKey;
    svg.replaceChildren();
    const defs = el('defs', {}, svg);
    const clip = el('clipPath', { id: 'plot-clip' }, defs);
    el('rect', { x: M.left, y: M.top, width: W - M.left - M.right, height: H - M.top - M.bottom }, clip);
    const body = el('g', { 'clip-path': 'url(#plot-clip)' }, svg);
    el('g', { class: 'contours' }, body).innerHTML = contourSvg(s, s.xDomain, s.yDomain, x, y, 120);
    for (const [mx, my] of s.minima) el('circle', { cx: x(mx), cy: y(my), r: 3.5, class: 'minimum' }, body);
    pathLayer = el('g', { class: 'paths' }, body);
    startMark = el('circle', { r: 6, class: 'start' }, svg);
    axes(svg, x, y, x.ticks(8), y.ticks(6), 'x', 'y');
  }
  startMark.setAttribute('cx', String(clampPx(x(state.start[0]))));
  startMark.setAttribute('cy', String(clampPx(y(state.start[1]))));
  const shown = state.shown;
  const every = (n: number) => (n <= 80 ? 1 : Math.ceil(n / 40));
  // The scales as px = a v + b: d3's scale call costs more than the rest of the loop.
  const [ax, bx] = [x(1) - x(0), x(0)];
  const [ay, by] = [y(1) - y(0), y(0)];
  const groups: SVGGElement[] = [];
  for (const path of ps) {
    const style = STYLES[path.name]!;
    const n = Math.min(path.length, shown + 1);
    const xy = path.xy;
    const d = polyline(n, (i) => ax * xy[2 * i]! + bx, (i) => ay * xy[2 * i + 1]! + by);
    const g = el('g', { class: 'path', 'data-name': path.name });
    el('path', { d, class: 'trajectory', stroke: style.color, 'stroke-dasharray': style.dash, 'data-name': path.name }, g);
    let marks = '';
    const k = every(n);
    for (let i = 0; i < n; i += k) marks += markerPath(style.marker, clampPx(x(xy[2 * i]!)), clampPx(y(xy[2 * i + 1]!)), 3.2);
    el('path', { d: marks, class: 'markers', stroke: style.color }, g);
    groups.push(g);
  }
  pathLayer.replaceChildren(...groups);
  $('plot-title').textContent = t.plotTitle({ title: surfaceTitle(s), x: fmt(state.start[0]), y: fmt(state.start[1]), count: ps.length, shown: Math.min(shown, state.steps), steps: state.steps });

  // Click or drag to set the start.
  svg.onpointerdown = (event) => {
    svg.setPointerCapture(event.pointerId);
    moveStart(event, x.invert, y.invert);
  };
  svg.onpointermove = (event) => {
    if (svg.hasPointerCapture(event.pointerId)) moveStart(event, x.invert, y.invert);
  };
}

let dragFrame = 0;
function moveStart(event: PointerEvent, ix: (v: number) => number, iy: (v: number) => number) {
  const svg = $<SVGSVGElement>('plot');
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM()!.inverse());
  setStart([+ix(point.x).toFixed(3), +iy(point.y).toFixed(3)]);
  if (dragFrame === 0) {
    dragFrame = requestAnimationFrame(() => {
      dragFrame = 0;
      update();
    });
  }
}

function drawLegend(ps: Path[]) {
  const list = $('legend');
  list.replaceChildren();
  const stops: string[] = [];
  for (const path of ps) {
    const li = document.createElement('li');
    li.append(swatch(path.name));
    const last = path.length - 1;
    const end = Math.min(last, state.shown);
    const text = document.createElement('span');
    text.textContent =
      t.legendItem({ name: path.name, step: end, x: fmt(path.xy[2 * end]!), y: fmt(path.xy[2 * end + 1]!) }) +
      (path.stopped !== undefined ? t.legendStopped({ step: path.stopped.step }) : '');
    li.append(text);
    list.append(li);
    if (path.stopped) stops.push(t.stopNote({ name: path.name, step: path.stopped.step, steps: state.steps, reason: tell(path.stopped.reason) }));
  }
  $('path-note').textContent = stops.length ? `${stops.join(' ')} ${t.drawnUpTo({ count: stops.length })}` : '';
}

function swatch(name: string): SVGSVGElement {
  const style = STYLES[name]!;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 44 12');
  svg.setAttribute('class', 'swatch');
  svg.setAttribute('aria-hidden', 'true');
  el('line', { x1: 2, y1: 6, x2: 42, y2: 6, stroke: style.color, 'stroke-dasharray': style.dash, class: 'trajectory' }, svg);
  el('path', { d: markerPath(style.marker, 22, 6, 3.2), stroke: style.color, class: 'markers' }, svg);
  return svg;
}

// ---------------------------------------------------------------- the post's picture

function arrow(parent: Element, from: readonly [number, number], to: readonly [number, number], cls: string, label: string) {
  if (Math.hypot(to[0] - from[0], to[1] - from[1]) < 0.5) return;
  el('line', { x1: from[0], y1: from[1], x2: to[0], y2: to[1], class: cls, 'marker-end': `url(#head-${cls})`, 'data-label': label }, parent);
}

function drawPicture(s: Surface | undefined) {
  const svg = $<SVGSVGElement>('picture-plot');
  svg.replaceChildren();
  const caption = $('picture-caption');
  const picture = s ? pictureOf(state.picture, s, state.start, state.pictureStep, state) : undefined;
  if (!s || !picture) {
    caption.textContent = s ? t.pictureNotFinite : t.noFunction;
    return;
  }
  const pw = 640;
  const ph = 420;
  const tipM: [number, number] = [picture.from[0] + picture.momentumStep[0], picture.from[1] + picture.momentumStep[1]];
  const tipG: [number, number] = [tipM[0] + picture.gradientStep[0], tipM[1] + picture.gradientStep[1]];
  const pts = [picture.from, tipM, tipG, picture.to, picture.gradientAt, ...picture.stored];
  let [xa, xb] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [ya, yb] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  // Same scale on both axes, so the arrows' angles are true; padded by a quarter.
  const span = Math.max(xb - xa, ((yb - ya) * pw) / ph, 1e-6) * 1.5;
  const cx = (xa + xb) / 2;
  const cy = (ya + yb) / 2;
  [xa, xb] = [cx - span / 2, cx + span / 2];
  [ya, yb] = [cy - (span * ph) / pw / 2, cy + (span * ph) / pw / 2];
  const x = scaleLinear().domain([xa, xb]).range([0, pw]);
  const y = scaleLinear().domain([ya, yb]).range([ph, 0]);
  const defs = el('defs', {}, svg);
  for (const cls of ['arrow-momentum', 'arrow-gradient', 'arrow-actual']) {
    const marker = el('marker', { id: `head-${cls}`, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
    el('path', { d: 'M0,0L10,5L0,10z', class: `head ${cls}` }, marker);
  }
  const contourGroup = el('g', { class: 'contours' }, svg);
  contourGroup.innerHTML = contourSvg(s, [xa, xb], [ya, yb], x, y, 36);
  // The stored points of the path around this step, faint, for orientation.
  const all = paths.find((p) => p.name === state.picture);
  if (all) {
    let d = '';
    for (let i = Math.max(0, state.pictureStep - 3); i < Math.min(all.length, state.pictureStep + 5); i++) {
      d += `${d ? 'L' : 'M'}${clampPx(x(all.xy[2 * i]!)).toFixed(1)},${clampPx(y(all.xy[2 * i + 1]!)).toFixed(1)}`;
    }
    el('path', { d, class: 'context-path' }, svg);
  }
  const P = (p: readonly [number, number]): [number, number] => [x(p[0]), y(p[1])];
  const g = el('g', { class: 'arrows' }, svg);
  // The actual step underneath: it is often nearly parallel to the momentum step.
  arrow(g, P(picture.from), P(picture.to), 'arrow-actual', 'actual step');
  arrow(g, P(picture.from), P(tipM), 'arrow-momentum', 'momentum step');
  arrow(g, P(tipM), P(tipG), 'arrow-gradient', 'gradient step');
  el('circle', { cx: P(picture.from)[0], cy: P(picture.from)[1], r: 4, class: 'from-point' }, g);
  el('circle', { cx: P(picture.gradientAt)[0], cy: P(picture.gradientAt)[1], r: 6, class: 'gradient-point' }, g);
  const note = (p: readonly [number, number], text: string, dy: number) => {
    el('text', { x: Math.min(pw - 4, Math.max(4, P(p)[0] + 8)), y: P(p)[1] + dy, class: 'note' }, g).textContent = text;
  };
  note(picture.from, state.picture === 'nesterov' ? 'θ (before the look-ahead)' : 'p (current point)', -8);
  note(picture.gradientAt, '∇f taken here', 18);
  note(picture.to, 'next', 22);
  caption.textContent = t.pictureCaption({ step: picture.step, text: tell(picture.caption) });
}

// ---------------------------------------------------------------- f - f*

function drawError(s: Surface | undefined, ps: Path[]) {
  const svg = $<SVGSVGElement>('error-plot');
  svg.replaceChildren();
  const caption = $('error-caption');
  if (!s || ps.length === 0) {
    caption.textContent = s ? t.chooseOptimizer : t.noFunction;
    return;
  }
  // Each path's values up to the first that is not finite (a path stops there; only its start can be).
  const series = ps.map((p) => {
    const v = Float64Array.from({ length: p.length }, (_, i) => s.f(p.xy[2 * i]!, p.xy[2 * i + 1]!));
    const bad = v.findIndex((f) => !Number.isFinite(f));
    return bad < 0 ? v : v.subarray(0, bad);
  });
  let fStar = s.fStar;
  let estimated = false;
  if (fStar === undefined) {
    estimated = true;
    let low = Infinity;
    for (const v of series) for (const f of v) low = Math.min(low, f);
    for (const f of grid(s, 60, 60)) if (Number.isFinite(f)) low = Math.min(low, f);
    fStar = low;
  }
  if (!Number.isFinite(fStar) || series.every((v) => v.length === 0)) {
    caption.textContent = t.noFiniteValue;
    return;
  }
  // The axis spans the errors seen, down to 1e-16 at most (below that is rounding).
  let top = 0;
  let low = Infinity;
  for (const v of series) {
    for (const f of v) {
      const e = f - fStar;
      if (!Number.isFinite(e)) continue;
      top = Math.max(top, e);
      if (e > 0) low = Math.min(low, e);
    }
  }
  const floor = Math.max(1e-16, 10 ** Math.floor(Math.log10(Number.isFinite(low) ? low : 1e-16)));
  top = Math.max(top, floor * 10);
  const w = 640;
  const h = 320;
  const x = scaleLinear().domain([0, Math.max(1, state.steps)]).range([M.left, w - M.right]);
  const y = scaleLog().domain([floor, top]).range([h - M.bottom, M.top]).clamp(true);
  const g = el('g', {}, svg);
  const [ax, bx] = [x(1) - x(0), x(0)];
  const ay = (y(top) - y(floor)) / (Math.log10(top) - Math.log10(floor));
  const by = y(floor) - ay * Math.log10(floor);
  ps.forEach((p, k) => {
    const style = STYLES[p.name]!;
    const v = series[k]!;
    const d = polyline(v.length, (i) => ax * i + bx, (i) => ay * Math.log10(Math.min(top, Math.max(floor, v[i]! - fStar))) + by);
    el('path', { d, class: 'trajectory', stroke: style.color, 'stroke-dasharray': style.dash, 'data-name': p.name }, g);
    let marks = '';
    const every = Math.max(1, Math.ceil(v.length / 15));
    for (let i = 0; i < v.length; i += every) marks += markerPath(style.marker, x(i), y(Math.max(floor, v[i]! - fStar)), 3);
    el('path', { d: marks, class: 'markers', stroke: style.color }, g);
  });
  const [dLow, dHigh] = [Math.round(Math.log10(floor)), Math.ceil(Math.log10(top))];
  const every = Math.max(1, Math.ceil((dHigh - dLow) / 7));
  const thin: number[] = [];
  for (let d = dLow; d <= dHigh; d += every) if (10 ** d <= top) thin.push(10 ** d);
  axes(svg, x, y, x.ticks(8), thin, t.axisStep, 'f − f*', (tick) => `1e${Math.round(Math.log10(tick))}`);
  caption.textContent = estimated ? t.fStarEstimated({ value: fmt(fStar) }) : t.fStarKnown({ value: fStar, floor: y.domain()[0]!.toExponential(0) });
}

// ---------------------------------------------------------------- minimize's rates

let ratesRun = 0;
async function computeRates() {
  const run = ++ratesRun;
  const status = $('rates-status');
  const results: (number | undefined)[][] = RATE_METHODS.map(() => []);
  const t0 = performance.now();
  for (let m = 0; m < RATE_METHODS.length; m++) {
    for (const kappa of RATE_KAPPAS) {
      status.textContent = t.ratesComputing({ method: RATE_METHODS[m]![0], kappa });
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (run !== ratesRun) return;
      results[m]!.push(rateIterations(kappa, RATE_METHODS[m]![1]));
    }
  }
  const seconds = ((performance.now() - t0) / 1000).toFixed(2);
  const slopes = RATE_METHODS.map(([name], m) => {
    const ys = results[m]!;
    return ys.every((v) => v !== undefined) ? t.ratesSlope({ method: name, slope: logLogSlope(RATE_KAPPAS, ys as number[]).toFixed(2) }) : t.ratesDiverged({ method: name });
  });
  status.textContent = t.ratesComputed({ seconds, slopes: slopes.join('; ') });
  drawRates(results);
}

const RATE_STYLES = ['sgd', 'momentum', 'nesterov', 'nesterov-book', 'adam'];

function drawRates(results: (number | undefined)[][]) {
  const svg = $<SVGSVGElement>('rates-plot');
  svg.replaceChildren();
  const w = 640;
  const h = 340;
  const all = results.flat().filter((v): v is number => v !== undefined);
  const x = scaleLog().domain([RATE_KAPPAS[0]!, RATE_KAPPAS[RATE_KAPPAS.length - 1]!]).range([M.left + 10, w - 230]);
  const y = scaleLog().domain([Math.min(...all) / 1.5, Math.max(...all) * 1.5]).range([h - M.bottom, M.top]);
  const labels: { name: string; x: number; y: number; style: PathStyle }[] = [];
  RATE_METHODS.forEach(([name], m) => {
    const style = STYLES[RATE_STYLES[m]!]!;
    const pts = RATE_KAPPAS.map((k, i) => [k, results[m]![i]] as const).filter((p): p is readonly [number, number] => p[1] !== undefined);
    const d = pts.map(([k, v], i) => `${i ? 'L' : 'M'}${x(k).toFixed(1)},${y(v).toFixed(1)}`).join('');
    el('path', { d, class: 'trajectory', stroke: style.color, 'stroke-dasharray': style.dash, 'data-name': name }, svg);
    el('path', { d: pts.map(([k, v]) => markerPath(style.marker, x(k), y(v), 3.5)).join(''), class: 'markers', stroke: style.color }, svg);
    const last = pts[pts.length - 1];
    if (last) labels.push({ name, y: y(last[1]), x: x(last[0]) + 10, style });
  });
  // Labels at the lines' ends, pushed apart so that none overlaps another.
  labels.sort((a, b) => a.y - b.y);
  for (let i = 1; i < labels.length; i++) labels[i]!.y = Math.max(labels[i]!.y, labels[i - 1]!.y + 14);
  // Each label repeats its line's dash and marker, so it is matched without colour.
  for (const label of labels) {
    el('line', { x1: label.x, x2: label.x + 20, y1: label.y, y2: label.y, class: 'trajectory', stroke: label.style.color, 'stroke-dasharray': label.style.dash }, svg);
    el('path', { d: markerPath(label.style.marker, label.x + 10, label.y, 3), class: 'markers', stroke: label.style.color }, svg);
    el('text', { x: label.x + 25, y: label.y + 4, class: 'note' }, svg).textContent = label.name;
  }
  axes(svg, x, y, [...RATE_KAPPAS], y.ticks(5).filter((t) => Number.isInteger(Math.log10(t))), 'κ', t.axisIterations, (tick) => fmt(tick, 3));
}

// ---------------------------------------------------------------- controls

function buildControls() {
  $('expr-max').textContent = String(MAX_FORMULA_LENGTH);
  const fnSelect = $<HTMLSelectElement>('fn');
  for (const id of FUNCTION_IDS) {
    const option = document.createElement('option');
    option.value = id;
    fnSelect.append(option);
  }
  fnSelect.onchange = () => {
    const fn = fnSelect.value as FunctionId;
    const preset = PRESETS[fn];
    state = { ...state, fn, start: [preset.start[0], preset.start[1]], lr: preset.lr, steps: preset.steps, shown: preset.steps, pictureStep: Math.min(state.pictureStep, preset.steps - 1) };
    startNote = undefined;
    update();
  };
  const fieldset = $('optimizers');
  for (const name of OPTIMIZER_NAMES) {
    const label = document.createElement('label');
    label.className = 'check';
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.id = `opt-${name}`;
    box.value = name;
    box.onchange = () => {
      state.optimizers = OPTIMIZER_NAMES.filter((n) => $<HTMLInputElement>(`opt-${n}`).checked);
      update();
    };
    const text = document.createElement('span');
    text.textContent = `${name}`;
    const detail = document.createElement('span');
    detail.className = 'detail';
    detail.dataset['optimizer'] = name;
    label.append(box, swatch(name), text, detail);
    fieldset.append(label);
  }
  const slider = (id: keyof PlaygroundState & string, toValue: (v: number) => number, inputId: string = id) => {
    const input = $<HTMLInputElement>(inputId);
    input.oninput = () => {
      const value = toValue(Number(input.value));
      (state as unknown as Record<string, number>)[id] = value;
      if (id === 'steps') {
        state.shown = value;
        state.pictureStep = Math.min(state.pictureStep, value - 1);
      }
      update();
    };
  };
  slider('lr', (v) => +(10 ** v).toPrecision(3));
  slider('momentum', (v) => v);
  slider('beta1', (v) => v);
  slider('beta2', (v) => v);
  slider('steps', (v) => Math.round(v));
  slider('kappa', (v) => +(10 ** v).toPrecision(3));
  slider('shown', (v) => Math.round(v));
  slider('pictureStep', (v) => Math.round(v), 'picture-step');
  const expr = $<HTMLInputElement>('expr');
  let typing = 0;
  expr.oninput = () => {
    clearTimeout(typing);
    typing = window.setTimeout(() => {
      state.expr = expr.value;
      update();
    }, 250);
  };
  expr.onchange = () => {
    clearTimeout(typing);
    state.expr = expr.value;
    update();
  };
  const startInput = (axis: 0 | 1, id: string) => {
    const input = $<HTMLInputElement>(id);
    input.onchange = () => {
      const v = Number(input.value);
      // A number past the plot, infinite included, is moved to its edge (with a note).
      if (input.value.trim() !== '' && !Number.isNaN(v)) {
        setStart(axis === 0 ? [v, state.start[1]] : [state.start[0], v]);
        update();
      }
    };
  };
  startInput(0, 'start-x');
  startInput(1, 'start-y');
  $('reset-start').onclick = () => {
    setStart(PRESETS[state.fn].start);
    update();
  };
  $<HTMLSelectElement>('picture-opt').onchange = () => {
    state.picture = $<HTMLSelectElement>('picture-opt').value as PictureOptimizer;
    update();
  };
  let timer = 0;
  const play = $('play');
  const stop = () => {
    clearInterval(timer);
    timer = 0;
    play.textContent = t.play;
    play.setAttribute('aria-pressed', 'false');
  };
  play.onclick = () => {
    if (timer) return stop();
    if (state.shown >= state.steps) state.shown = 0;
    play.textContent = t.pause;
    play.setAttribute('aria-pressed', 'true');
    timer = window.setInterval(
      () => {
        state.shown++;
        if (state.shown >= state.steps) stop();
        update();
      },
      Math.max(16, 3000 / state.steps),
    );
    update();
  };
  $('step-back').onclick = () => {
    state.shown = Math.max(0, state.shown - 1);
    update();
  };
  $('step-forward').onclick = () => {
    state.shown = Math.min(state.steps, state.shown + 1);
    update();
  };
  $('copy-link').onclick = async () => {
    try {
      await navigator.clipboard.writeText(location.href);
      $('share-status').textContent = t.linkCopied;
    } catch {
      $('share-status').textContent = t.copyRefused;
    }
  };
  $('download').onclick = () => {
    const s = currentSurface();
    if (!s) {
      $('share-status').textContent = surfacePending ? t.downloadPending : t.downloadNothing;
      return;
    }
    const json = JSON.stringify(pathsDownload(state, s, currentPaths(s)), null, 1);
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
    a.download = `paths-${state.fn}.json`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    $('share-status').textContent = t.downloadSaved({ file: a.download });
  };
  $('rates-run').onclick = () => void computeRates();
  const languageSelect = $<HTMLSelectElement>('lang');
  languageSelect.onchange = () => {
    language = languageSelect.value as Language;
    languageChosen = true;
    t = STRINGS[language];
    applyLanguage();
    update();
    void computeRates();
  };
}

/** The function's name as the plot's title says it, in the language shown. */
function surfaceTitle(s: Surface): string {
  if (s.id === 'quadratic') return t.quadraticTitle({ kappa: state.kappa });
  if (s.id === 'custom') return t.customTitle({ text: state.expr });
  return t[FUNCTION_TITLE_KEYS[s.id]];
}

/**
 * Words every fixed string of the page in the language shown: the elements marked
 * `data-i18n` (text), `data-i18n-html` (the table's own markup: <code>, a <span> the
 * page fills) and `data-i18n-label` (an accessible name), then the lists built in code.
 */
function applyLanguage() {
  document.documentElement.lang = language;
  document.title = t.pageTitle;
  $<HTMLSelectElement>('lang').value = language;
  const table = t as unknown as Record<string, unknown>;
  for (const node of Array.from(document.querySelectorAll<HTMLElement>('[data-i18n]'))) node.textContent = table[node.dataset['i18n']!] as string;
  for (const node of Array.from(document.querySelectorAll<HTMLElement>('[data-i18n-html]'))) node.innerHTML = table[node.dataset['i18nHtml']!] as string;
  for (const node of Array.from(document.querySelectorAll<HTMLElement>('[data-i18n-label]'))) node.setAttribute('aria-label', table[node.dataset['i18nLabel']!] as string);
  $('expr-max').textContent = String(MAX_FORMULA_LENGTH);
  for (const option of Array.from($<HTMLSelectElement>('fn').options)) option.textContent = t[FUNCTION_TITLE_KEYS[option.value as FunctionId]];
  for (const detail of Array.from(document.querySelectorAll<HTMLElement>('[data-optimizer]'))) detail.textContent = ` ${t[OPTIMIZERS[detail.dataset['optimizer']!]!.label]}`;
  const play = $('play');
  play.textContent = play.getAttribute('aria-pressed') === 'true' ? t.pause : t.play;
}

/** Puts the state into every control (after a load, a function change, or a drag). */
function syncControls() {
  const set = (id: string, value: string) => {
    const input = $<HTMLInputElement>(id);
    if (document.activeElement !== input || input.type !== 'text') input.value = value;
  };
  $<HTMLSelectElement>('fn').value = state.fn;
  $('kappa-row').hidden = state.fn !== 'quadratic';
  $('expr-row').hidden = state.fn !== 'custom';
  set('kappa', String(Math.log10(state.kappa)));
  $('kappa-out').textContent = fmt(state.kappa, 3);
  set('expr', state.expr);
  set('start-x', String(state.start[0]));
  set('start-y', String(state.start[1]));
  for (const name of OPTIMIZER_NAMES) $<HTMLInputElement>(`opt-${name}`).checked = state.optimizers.includes(name);
  set('lr', String(Math.log10(state.lr)));
  $('lr-out').textContent = fmt(state.lr, 3);
  // These two sliders move along log10 of the value: tell screen readers the value itself.
  $('lr').setAttribute('aria-valuetext', fmt(state.lr, 3));
  $('kappa').setAttribute('aria-valuetext', fmt(state.kappa, 3));
  for (const id of ['momentum', 'beta1', 'beta2'] as const) {
    set(id, String(state[id]));
    $(`${id}-out`).textContent = String(state[id]);
  }
  set('steps', String(state.steps));
  $('steps-out').textContent = String(state.steps);
  const shown = $<HTMLInputElement>('shown');
  shown.max = String(state.steps);
  set('shown', String(state.shown));
  $('shown-out').textContent = String(state.shown);
  $<HTMLSelectElement>('picture-opt').value = state.picture;
  const pstep = $<HTMLInputElement>('picture-step');
  pstep.max = String(Math.max(0, state.steps - 1));
  set('picture-step', String(state.pictureStep));
  $('picture-step-out').textContent = String(state.pictureStep);
}

/** Recomputes what changed, redraws everything, and writes the state into the URL. */
function update() {
  const t0 = performance.now();
  state.shown = Math.min(state.shown, state.steps);
  const s = currentSurface();
  $('formula-error').textContent = state.fn === 'custom' && surfaceError !== undefined ? tell(surfaceError) : '';
  $('formula-status').textContent = state.fn === 'custom' && surfacePending ? t.workingOut : '';
  $('start-note').textContent = startNote === undefined ? '' : tell(startNote);
  $<HTMLInputElement>('expr').setAttribute('aria-invalid', String(state.fn === 'custom' && surfaceError !== undefined));
  const ps = s ? currentPaths(s) : [];
  syncControls();
  drawPlot(s, ps);
  drawLegend(ps);
  drawPicture(s);
  drawError(s, ps);
  const times = recomputeTimes.slice(-1);
  if (times.length) $('timing').textContent = t.timing({ ms: times[0]!.toFixed(1), count: ps.length, steps: state.steps });
  writeUrlSoon();
  record(updateTimes, performance.now() - t0);
}

// Chromium throttles history.replaceState (a few ms each, and a warning past ~100 calls
// in 10 s), so a dragged slider writes the URL once it rests for a moment.
let urlTimer = 0;
function writeUrlSoon() {
  clearTimeout(urlTimer);
  urlTimer = window.setTimeout(() => history.replaceState(null, '', `?${stateToQuery(state)}${languageChosen ? `&lang=${language}` : ''}`), 150);
}

buildControls();
applyLanguage();
update();
void computeRates();

/**
 * The main job's report: one self-contained HTML file (inline SVG, no script, no
 * network), drawn with d3's scales, shapes and contours.
 */
import { contours } from 'd3-contour';
import { geoIdentity, geoPath } from 'd3-geo';
import { scaleLinear, scaleLog, type ScaleContinuousNumeric } from 'd3-scale';
import { area, line } from 'd3-shape';
import { EN, MESSAGES, type Lang, type Messages } from './i18n.ts';
import { OPTIMIZERS } from './optimizers.ts';
import type { Divergence, RunGroup, TrainResult } from './types.ts';

/**
 * An optimizer's style is a colour and a marker. The colours are Okabe & Ito's
 * colour-blind-safe palette without its yellow (too pale for a thin line on white): seven,
 * fewer than the optimizers, so the marker tells apart two of one colour. Optimizer i of
 * the table gets colour i mod 7 and marker i mod 6: 7 and 6 are coprime, so the first 42
 * optimizers get 42 different pairs, and two of one colour always differ in marker.
 * Dashes are not a style: a dashed line is a companion (an EMA) of the solid one.
 */
const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#d55e00', '#56b4e9', '#cc79a7', '#000000'];
export const MARKERS = ['circle', 'square', 'triangle', 'diamond', 'triangle-down', 'plus'] as const;
export type Marker = (typeof MARKERS)[number];

// For series that are not one of the optimizers (the rates plots): other hues.
const EXTRA_PALETTE = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#a6761d', '#666666'];
const extraColors = new Map<string, string>();

export function colorOf(name: string): string {
  const index = Object.keys(OPTIMIZERS).indexOf(name);
  if (index >= 0) return PALETTE[index % PALETTE.length]!;
  if (!extraColors.has(name)) extraColors.set(name, EXTRA_PALETTE[extraColors.size % EXTRA_PALETTE.length]!);
  return extraColors.get(name)!;
}

/** The marker of an optimizer's series; undefined for a series that is not an optimizer. */
export function markerOf(name: string): Marker | undefined {
  const index = Object.keys(OPTIMIZERS).indexOf(name);
  return index >= 0 ? MARKERS[index % MARKERS.length]! : undefined;
}

/** The outline of `marker` centred on (0, 0), about 2r across, as SVG path data. */
function markerPathData(marker: Marker, r: number): string {
  const f = (v: number) => +v.toFixed(2);
  switch (marker) {
    case 'circle':
      return `M${f(-r)} 0a${f(r)} ${f(r)} 0 1 0 ${f(2 * r)} 0a${f(r)} ${f(r)} 0 1 0 ${f(-2 * r)} 0Z`;
    case 'square': {
      const a = 0.85 * r;
      return `M${f(-a)} ${f(-a)}H${f(a)}V${f(a)}H${f(-a)}Z`;
    }
    case 'triangle':
      return `M0 ${f(-1.2 * r)}L${f(1.1 * r)} ${f(0.8 * r)}H${f(-1.1 * r)}Z`;
    case 'triangle-down':
      return `M0 ${f(1.2 * r)}L${f(1.1 * r)} ${f(-0.8 * r)}H${f(-1.1 * r)}Z`;
    case 'diamond':
      return `M0 ${f(-1.25 * r)}L${f(r)} 0L0 ${f(1.25 * r)}L${f(-r)} 0Z`;
    case 'plus': {
      const a = 1.1 * r;
      const w = 0.4 * r;
      return `M${f(-w)} ${f(-a)}H${f(w)}V${f(-w)}H${f(a)}V${f(w)}H${f(w)}V${f(a)}H${f(-w)}V${f(w)}H${f(-a)}V${f(-w)}H${f(-w)}Z`;
    }
  }
}

/** `name`'s marker at (x, y): filled in its colour, or hollow (a companion series). */
function markerAt(name: string, x: number, y: number, hollow = false, r = 3.5): string {
  const marker = markerOf(name);
  if (marker === undefined) return '';
  const color = colorOf(name);
  const paint = hollow ? `fill="#fff" stroke="${color}" stroke-width="1.2"` : `fill="${color}" stroke="#fff" stroke-width="0.7"`;
  return `<path class="marker" d="${markerPathData(marker, r)}" transform="translate(${+x.toFixed(2)} ${+y.toFixed(2)})" ${paint}/>`;
}

/** The small line-and-marker key of an optimizer, for the tables (beside its name). */
export function swatch(name: string): string {
  return `<svg class="swatch" width="22" height="12" viewBox="0 0 22 12" aria-hidden="true"><line x1="0" x2="22" y1="6" y2="6" stroke="${colorOf(name)}" stroke-width="2"/>${markerAt(name, 11, 6, false, 4)}</svg>`;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

interface Series {
  name: string;
  points: [number, number][];
  /** The colour of this optimizer (default: the series' own name's). */
  colorOf?: string;
  /** Drawn dashed and left out of the legend (a companion of a solid series, such as its EMA). */
  companion?: boolean;
}

const MARGIN = { top: 30, right: 150, bottom: 40, left: 60 };

const powersOfTen = (ticks: number[]) => ticks.filter((t) => Math.abs(Math.log10(t) - Math.round(Math.log10(t))) < 1e-9);
const tickText = (t: number) => (t !== 0 && (Math.abs(t) < 1e-3 || Math.abs(t) >= 1e5) ? t.toExponential(0) : String(+t.toPrecision(3)));

function axes(x: ScaleContinuousNumeric<number, number>, y: ScaleContinuousNumeric<number, number>, height: number, xLabel: string, yLabel: string, logY: boolean, logX = false): string {
  const out: string[] = [];
  const [x0, x1] = x.range();
  const [y0, y1] = y.range();
  out.push(`<g class="axis x-axis"><line x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}" stroke="#333"/>`);
  const xTicks = logX ? powersOfTen(x.ticks(6)) : x.ticks(6);
  for (const t of xTicks) out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${y0}" y2="${y0! + 5}" stroke="#333"/><text x="${x(t)}" y="${y0! + 18}" text-anchor="middle">${tickText(t)}</text>`);
  out.push(`<text x="${(x0! + x1!) / 2}" y="${height - 4}" text-anchor="middle">${escape(xLabel)}</text></g>`);
  out.push(`<g class="axis y-axis"><line x1="${x0}" x2="${x0}" y1="${y0}" y2="${y1}" stroke="#333"/>`);
  // Log scale: every tick when few, else the powers of ten, else (a domain within about a decade) 1, 2 and 5 times them.
  const leading125 = (t: number) => [1, 2, 5].includes(Math.round(t / 10 ** Math.floor(Math.log10(t) + 1e-9)));
  const ticks = logY ? (y.ticks(5).length < 8 ? y.ticks(5) : powersOfTen(y.ticks(5)).length >= 2 ? powersOfTen(y.ticks(5)) : y.ticks(5).filter(leading125)) : y.ticks(6);
  for (const t of ticks) out.push(`<line x1="${x0! - 5}" x2="${x0}" y1="${y(t)}" y2="${y(t)}" stroke="#333"/><text x="${x0! - 8}" y="${y(t) + 4}" text-anchor="end">${tickText(t)}</text>`);
  out.push(`<text transform="translate(14 ${(y0! + y1!) / 2}) rotate(-90)" text-anchor="middle">${escape(yLabel)}</text></g>`);
  return out.join('');
}

function legend(names: string[], x: number, y: number, dashedNote?: string): string {
  const note =
    dashedNote === undefined
      ? ''
      : `<g class="legend-note" transform="translate(${x} ${y + names.length * 18 + 6})"><line x1="0" x2="18" y1="0" y2="0" stroke="#555" stroke-width="2" stroke-dasharray="5 4"/><text x="24" y="4">${escape(dashedNote)}</text></g>`;
  return `<g class="legend">${names
    .map((name, i) => `<g transform="translate(${x} ${y + i * 18})"><line x1="0" x2="18" y1="0" y2="0" stroke="${colorOf(name)}" stroke-width="3"/>${markerAt(name, 9, 0)}<text x="24" y="4">${escape(name)}</text></g>`)
    .join('')}${note}</g>`;
}

/** Extra layers of a line chart, drawn behind its series. */
export interface ChartLayers {
  /** Unsmoothed series, drawn faint (the series on top are their smoothed versions). */
  raw?: Series[];
  /** Shaded bands: x, low, high. */
  bands?: { name: string; points: [number, number, number][] }[];
  /** Dots: the points of a series worth marking (a search's grid), and rings (its choice). */
  dots?: { name: string; points: [number, number][]; ring?: [number, number] }[];
  /** The y axis spans the data exactly (not widened to whole decades): for curves whose detail is within a decade. */
  tightY?: boolean;
  /** A legend line for the companion series (dashed), e.g. 'dashed: EMA 0.999'. */
  companionNote?: string;
}

/** A line chart of several series (log-scale y when asked). */
export function lineChart(title: string, series: Series[], xLabel: string, yLabel: string, logY: boolean, logX = false, dashed: readonly string[] = [], layers: ChartLayers = {}): string {
  const longest = Math.max(...series.map((s) => s.name.length), (layers.companionNote?.length ?? 0) - 4);
  const right = Math.max(MARGIN.right, 40 + 7 * longest);
  const width = 570 + right;
  const height = 360;
  const all = [...series, ...(layers.raw ?? []), ...(layers.dots ?? [])].flatMap((s) => s.points);
  for (const band of layers.bands ?? []) for (const [bx, lo, hi] of band.points) all.push([bx, lo], [bx, hi]);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]).filter((v) => Number.isFinite(v) && (!logY || v > 0));
  const x = (logX ? scaleLog() : scaleLinear()).domain([Math.min(...xs), Math.max(...xs)]).range([MARGIN.left, width - right]);
  const y = (logY ? scaleLog() : scaleLinear()).domain([Math.min(...ys), Math.max(...ys)]).range([height - MARGIN.bottom, MARGIN.top]);
  if (!layers.tightY) y.nice();
  const usable = (v: number) => Number.isFinite(v) && (!logY || v > 0);
  const path = line<[number, number]>()
    .defined((p) => usable(p[1]))
    .x((p) => x(p[0]))
    .y((p) => y(p[1]));
  const shade = area<[number, number, number]>()
    .defined((p) => usable(p[1]) && usable(p[2]))
    .x((p) => x(p[0]))
    .y0((p) => y(p[1]))
    .y1((p) => y(p[2]));
  const bands = (layers.bands ?? []).map((b) => `<path class="band" data-name="${escape(b.name)}" d="${shade(b.points) ?? ''}" fill="${colorOf(b.name)}" fill-opacity="0.18" stroke="none"/>`);
  const raw = (layers.raw ?? []).map((s) => `<path class="raw" data-name="${escape(s.name)}" d="${path(s.points) ?? ''}" fill="none" stroke="${colorOf(s.name)}" stroke-opacity="0.3" stroke-width="1"/>`);
  const lines = series.map(
    (s) =>
      `<path class="${s.companion ? 'series companion' : 'series'}" data-name="${escape(s.name)}" d="${path(s.points) ?? ''}" fill="none" stroke="${s.colorOf === undefined ? colorOf(s.name) : colorOf(s.colorOf)}" stroke-width="1.5"${dashed.includes(s.name) || s.companion ? ' stroke-dasharray="5 4"' : ''}/>`,
  );
  // Markers along each series: on every point of a short one (epochs, a search's rates),
  // else at MARKS points spread evenly, each series shifted by its own phase so that two
  // series' markers do not sit on one another.
  const MARKS = 8;
  const markers = series.map((s, k) => {
    const owner = s.colorOf ?? s.name;
    const n = s.points.length;
    const phase = (k * 0.618) % 1;
    const at = n <= 12 ? s.points : Array.from({ length: MARKS }, (_, j) => s.points[Math.min(n - 1, Math.floor(((j + phase) * n) / MARKS))]!);
    return `<g class="markers" data-name="${escape(s.name)}">${at
      .filter((p) => usable(p[1]))
      .map((p) => markerAt(owner, x(p[0]), y(p[1]), s.companion === true))
      .join('')}</g>`;
  });
  const dots = (layers.dots ?? []).map(
    (d) =>
      `<g class="dots" data-name="${escape(d.name)}">${d.points
        .filter((p) => usable(p[1]))
        .map((p) => `<circle cx="${x(p[0])}" cy="${y(p[1])}" r="2.5" fill="${colorOf(d.name)}"/>`)
        .join('')}${d.ring && usable(d.ring[1]) ? `<circle class="chosen" cx="${x(d.ring[0])}" cy="${y(d.ring[1])}" r="6" fill="none" stroke="${colorOf(d.name)}" stroke-width="2"/>` : ''}</g>`,
  );
  return `<figure><svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escape(title)}">
<text class="title" x="${MARGIN.left}" y="18">${escape(title)}</text>
${axes(x, y, height, xLabel, yLabel, logY, logX)}
${[...bands, ...raw, ...lines, ...markers, ...dots].join('\n')}
${legend(series.filter((s) => !s.companion).map((s) => s.name), width - right + 16, MARGIN.top + 8, layers.companionNote)}
</svg></figure>`;
}

/**
 * TensorBoard's smoothing of a scalar curve: an exponential moving average,
 * last = weight * last + (1 - weight) * value, divided by 1 - weight^n (n finite values
 * so far) so that the start is not pulled towards 0; a non-finite value passes through.
 */
export function smoothLikeTensorBoard(values: readonly number[], weight: number): number[] {
  let last = 0;
  let count = 0;
  return values.map((value) => {
    if (!Number.isFinite(value)) return value;
    last = last * weight + (1 - weight) * value;
    count += 1;
    return weight === 1 ? last : last / (1 - weight ** count);
  });
}

/** The weight of the smoothing (TensorBoard's slider); 0.9 averages over about ten steps. */
export const SMOOTHING = 0.9;

/**
 * Test accuracy per optimizer: each run a faint dot, the mean a filled dot, and the 95%
 * confidence interval of the mean as a bar with caps; sorted by mean, best on top.
 */
export function accuracyErrorBars(title: string, groups: readonly RunGroup[], m: Messages = EN): string {
  // Groups whose every run diverged have no accuracy: listed last, with a word instead of dots.
  const sorted = [...groups].sort((a, b) => (b.testAccuracy?.mean ?? -Infinity) - (a.testAccuracy?.mean ?? -Infinity));
  const rowHeight = 26;
  const left = 120;
  const width = 720;
  const height = MARGIN.top + 10 + rowHeight * sorted.length + MARGIN.bottom;
  const last = (r: TrainResult) => r.testAccuracy[r.testAccuracy.length - 1]!;
  const finished = (g: RunGroup) => g.runs.filter((r) => r.diverged === undefined);
  const values = sorted.flatMap((g) => [...finished(g).map(last), ...(g.testAccuracy?.ci95 ?? [])]);
  if (values.length === 0) values.push(0, 1);
  const x = scaleLinear()
    .domain([Math.max(0, Math.min(...values)), Math.min(1, Math.max(...values))])
    .nice()
    .range([left, width - 30]);
  const clamp = (v: number) => x(Math.max(x.domain()[0]!, Math.min(x.domain()[1]!, v)));
  const bottom = height - MARGIN.bottom;
  const out: string[] = [];
  out.push(`<g class="axis x-axis"><line x1="${left}" x2="${width - 30}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`);
  for (const t of x.ticks(6)) out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${bottom}" y2="${bottom + 5}" stroke="#333"/><text x="${x(t)}" y="${bottom + 18}" text-anchor="middle">${(100 * t).toFixed(1)}%</text>`);
  out.push(`<text x="${(left + width - 30) / 2}" y="${height - 4}" text-anchor="middle">${escape(m.errorBarsAxis)}</text></g>`);
  sorted.forEach((g, i) => {
    const cy = MARGIN.top + 10 + rowHeight * i + rowHeight / 2;
    const color = colorOf(g.name);
    out.push(`<g class="errorbar" data-name="${escape(g.name)}"><text x="${left - 10}" y="${cy + 4}" text-anchor="end">${escape(g.name)}</text>`);
    const diverged = g.runs.length - finished(g).length;
    if (g.testAccuracy === null) {
      out.push(`<text class="diverged" x="${left}" y="${cy + 4}">${escape(m.everyRunDiverged)}</text></g>`);
      return;
    }
    if (g.testAccuracy.ci95) {
      const [lo, hi] = g.testAccuracy.ci95.map(clamp) as [number, number];
      out.push(`<line class="ci" x1="${lo}" x2="${hi}" y1="${cy}" y2="${cy}" stroke="${color}" stroke-width="2"/><line x1="${lo}" x2="${lo}" y1="${cy - 6}" y2="${cy + 6}" stroke="${color}" stroke-width="2"/><line x1="${hi}" x2="${hi}" y1="${cy - 6}" y2="${cy + 6}" stroke="${color}" stroke-width="2"/>`);
    }
    for (const r of finished(g)) out.push(`<circle class="run" cx="${x(last(r))}" cy="${cy}" r="3" fill="${color}" fill-opacity="0.35"/>`);
    out.push(`<circle class="mean" cx="${x(g.testAccuracy.mean)}" cy="${cy}" r="5" fill="${color}" stroke="#222" stroke-width="0.8"/>`);
    if (diverged > 0) out.push(`<text class="diverged" x="${width - 30}" y="${cy + 4}" text-anchor="end">${escape(m.nDiverged({ count: diverged }))}</text>`);
    out.push('</g>');
  });
  return `<figure><svg class="chart errorbars" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escape(title)}">
<text class="title" x="${MARGIN.left}" y="18">${escape(title)}</text>
${out.join('\n')}
</svg></figure>`;
}

export interface Surface {
  title: string;
  f: (x: number, y: number) => number;
  gradient: (x: number, y: number, out: Float64Array) => void;
  start: [number, number];
  minimum: [number, number];
  xDomain: [number, number];
  yDomain: [number, number];
  steps: number;
  /** Contour levels. */
  levels: number[];
}

/** Runs `name` (the library's optimizer) from the surface's start; returns the visited points. */
export function trajectory(name: string, surface: Surface): [number, number][] {
  const entry = OPTIMIZERS[name]!;
  const lr = surface === ROSENBROCK_SURFACE ? entry.rosenbrockLr : entry.pathLr;
  const opt = (entry.makeForPanels ?? entry.make)(lr);
  const p = { xy: Float64Array.from(surface.start) };
  const g = { xy: new Float64Array(2) };
  const points: [number, number][] = [[p.xy[0]!, p.xy[1]!]];
  for (let t = 0; t < surface.steps; t++) {
    surface.gradient(p.xy[0]!, p.xy[1]!, g.xy);
    opt.update(p, g);
    // Schedule-Free: the point is x, the average it evaluates at (eval), not y.
    opt.eval?.(p);
    points.push([p.xy[0]!, p.xy[1]!]);
    opt.train?.(p);
  }
  return points;
}

/** One panel: contour lines of the surface (d3-contour) and an optimizer's path over them. */
export function trajectoryPanel(surface: Surface, name: string, points: [number, number][], m: Messages = EN): string {
  const title = surface === ROSENBROCK_SURFACE ? m.rosenbrockSurface : surface === BOOK_SURFACE ? m.bookSurface : surface.title;
  const size = 260;
  const pad = 24;
  const [x0, x1] = surface.xDomain;
  const [y0, y1] = surface.yDomain;
  const nx = 120;
  const ny = 120;
  const values = new Array<number>(nx * ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) values[j * nx + i] = surface.f(x0 + ((x1 - x0) * (i + 0.5)) / nx, y1 - ((y1 - y0) * (j + 0.5)) / ny);
  }
  const shapes = contours().size([nx, ny]).thresholds(surface.levels)(values);
  const toPixels = geoPath(geoIdentity().scale((size - 2 * pad) / nx).translate([pad, pad]));
  const x = scaleLinear().domain([x0, x1]).range([pad, size - pad]);
  const y = scaleLinear().domain([y0, y1]).range([size - pad, pad]);
  const clipped = points.map(([a, b]) => [Math.max(x0, Math.min(x1, a)), Math.max(y0, Math.min(y1, b))] as [number, number]);
  const path = line<[number, number]>()
    .x((p) => x(p[0]))
    .y((p) => y(p[1]))(clipped);
  const last = points[points.length - 1]!;
  return `<svg class="panel" viewBox="0 0 ${size} ${size + 16}" width="${size}" height="${size + 16}" role="img" aria-label="${escape(m.panelOn({ name, surface: title }))}">
<text class="title" x="${pad}" y="14">${escape(name)}</text>
<g class="contours" fill="none" stroke="#bbb">${shapes.map((s) => `<path d="${toPixels(s) ?? ''}"/>`).join('')}</g>
<circle cx="${x(surface.minimum[0])}" cy="${y(surface.minimum[1])}" r="3" fill="#333"/>
<path class="trajectory" d="${path ?? ''}" fill="none" stroke="${colorOf(name)}" stroke-width="1.6"/>
<circle cx="${x(surface.start[0])}" cy="${y(surface.start[1])}" r="3" fill="${colorOf(name)}"/>
<text x="${pad}" y="${size + 10}" class="small">${escape(m.panelEnd({ steps: points.length - 1, x: last[0].toFixed(3), y: last[1].toFixed(3) }))}</text>
</svg>`;
}

export const BOOK_SURFACE: Surface = {
  title: 'f(x, y) = x²/20 + y² from (-7, 2)',
  f: (x, y) => (x * x) / 20 + y * y,
  gradient: (x, y, out) => {
    out[0] = x / 10;
    out[1] = 2 * y;
  },
  start: [-7, 2],
  minimum: [0, 0],
  xDomain: [-10, 10],
  yDomain: [-5, 5],
  steps: 30,
  levels: [0.1, 0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 16, 20],
};

export const ROSENBROCK_SURFACE: Surface = {
  title: 'Rosenbrock (1 - x)² + 100 (y - x²)² from (-1.2, 1)',
  f: (x, y) => (1 - x) ** 2 + 100 * (y - x * x) ** 2,
  gradient: (x, y, out) => {
    out[0] = -2 * (1 - x) - 400 * x * (y - x * x);
    out[1] = 200 * (y - x * x);
  },
  start: [-1.2, 1],
  minimum: [1, 1],
  xDomain: [-2, 2],
  yDomain: [-1, 3],
  steps: 2000,
  levels: [0.5, 2, 5, 10, 25, 50, 100, 200, 400, 800, 1600],
};


export interface ReportInput {
  results: TrainResult[];
  config: { epochs: number; batch: number; seed: number; hidden: number[]; data: string; trainCount: number; testCount: number };
  paths: { book: Record<string, [number, number][]>; rosenbrock: Record<string, [number, number][]> };
  /** The run's id, also in summary.json: the two files of one run carry the same one. */
  run?: string;
  /** --seeds / --tune: every run of every optimizer, with the statistics and the search. */
  groups?: RunGroup[];
  /** The language of the words (default English). */
  lang?: Lang;
}

const how = (text: string) => `<p class="how">${escape(text)}</p>`;

/** Mean and sample standard deviation across runs, step by step (curves of equal length). */
function meanAndSpread(curves: readonly number[][]): { mean: number[]; low: number[]; high: number[] } {
  const length = Math.min(...curves.map((c) => c.length));
  const meanCurve: number[] = [];
  const low: number[] = [];
  const high: number[] = [];
  for (let i = 0; i < length; i++) {
    const values = curves.map((c) => c[i]!);
    const m = values.reduce((a, b) => a + b, 0) / values.length;
    const sd = values.length > 1 ? Math.sqrt(values.reduce((sum, v) => sum + (v - m) ** 2, 0) / (values.length - 1)) : 0;
    meanCurve.push(m);
    low.push(m - sd);
    high.push(m + sd);
  }
  return { mean: meanCurve, low, high };
}

/** Loss per step of one run per optimizer: the raw curve faint, TensorBoard's smoothing on top. */
function smoothedLossChart(title: string, results: readonly TrainResult[], stepsPerEpoch: number, m: Messages): string {
  const points = (values: readonly number[]) => values.map((l, i) => [(i + 1) / stepsPerEpoch, l] as [number, number]);
  return lineChart(
    title,
    results.map((r) => ({ name: r.name, points: points(smoothLikeTensorBoard(r.losses, SMOOTHING)) })),
    m.epoch,
    m.crossEntropy,
    true,
    false,
    [],
    { raw: results.map((r) => ({ name: r.name, points: points(r.losses) })) },
  );
}

/** Where a diverged run stopped, for the report's tables. */
function stoppedAt(diverged: Divergence, totalSteps: number, m: Messages): string {
  return escape(m.divergedAt({ step: diverged.step, total: totalSteps, epoch: diverged.epoch, message: diverged.message }));
}

/**
 * The solid series of test accuracy per epoch, and with --ema each one's EMA dashed in its
 * colour beside it.
 */
function accuracySeries(items: readonly { name: string; accuracy: readonly number[]; ema?: readonly number[] }[]): Series[] {
  return items.flatMap((item) => [
    { name: item.name, points: item.accuracy.map((a, i) => [i + 1, a] as [number, number]) },
    ...(item.ema === undefined ? [] : [{ name: `${item.name} EMA`, colorOf: item.name, companion: true, points: item.ema.map((a, i) => [i + 1, a] as [number, number]) }]),
  ]);
}

function fairSection(groups: readonly RunGroup[], stepsPerEpoch: number, epochs: number, m: Messages): string {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const interval = (ci: [number, number] | null, f: (v: number) => string) => (ci ? m.interval({ low: f(ci[0]), high: f(ci[1]) }) : '-');
  const withEma = groups.some((g) => g.emaTestAccuracy !== undefined);
  const rows = groups
    .map((g) => {
      const diverged = g.runs.filter((r) => r.diverged !== undefined).length;
      const runs = diverged === 0 ? String(g.runs.length) : m.runsWithDiverged({ runs: g.runs.length, diverged });
      const acc = g.testAccuracy;
      const loss = g.trainLoss;
      return `<tr><td>${swatch(g.name)}${escape(g.name)}</td><td>${g.lr}</td><td>${g.search ? g.search.defaultLr : g.learningRateFree ? escape(m.notSearchedCell) : ''}</td><td>${runs}</td><td>${acc === null ? escape(m.diverged) : pct(acc.mean)}</td><td>${acc === null || acc.std === null ? '-' : pct(acc.std)}</td><td>${interval(acc?.ci95 ?? null, pct)}</td>${withEma ? `<td>${g.emaTestAccuracy ? pct(g.emaTestAccuracy.mean) : '-'}</td>` : ''}<td>${loss === null ? '-' : loss.mean.toFixed(4)}</td><td>${loss === null || loss.std === null ? '-' : loss.std.toFixed(4)}</td><td>${interval(loss?.ci95 ?? null, (v) => v.toFixed(4))}</td></tr>`;
    })
    .join('\n');
  const stops = groups.flatMap((g) => g.runs.flatMap((r, k) => (r.diverged ? [`${escape(m.runLabel({ name: g.name, run: k + 1, seed: g.seeds[k]! }))} ${stoppedAt(r.diverged, stepsPerEpoch * epochs, m)}`] : [])));
  const h = m.reportHeaders;
  const n = groups[0]?.runs.length ?? 1;
  const out: string[] = [];
  out.push(`<table id="summary"><thead><tr><th>${h.optimizer}</th><th>${h.lr}</th><th>${h.searchedAround}</th><th>${h.runs}</th><th>${h.testAccuracy}</th><th>${h.sd}</th><th>${h.ci}</th>${withEma ? `<th>${h.emaTestAccuracy}</th>` : ''}<th>${h.finalTrainLoss}</th><th>${h.sd}</th><th>${h.ci}</th></tr></thead><tbody>
${rows}
</tbody></table>`);
  const free = groups.filter((g) => g.learningRateFree === true);
  if (free.length > 0) out.push(`<p id="not-searched">${free.map((g) => escape(m.notSearched({ name: g.name, lr: g.lr }))).join(' ')}</p>`);
  if (stops.length > 0) out.push(`<p id="diverged">${stops.join('<br>')}.<br>${escape(m.statsOverFinished)}</p>`);
  out.push(accuracyErrorBars(m.errorBarsTitle({ epochs, seeds: n }), groups, m));
  out.push(how(m.errorBarsHow({ seeds: n, dof: n - 1 })));
  const searched = groups.filter((g) => g.search !== undefined);
  if (searched.length > 0) {
    const first = searched[0]!.search!;
    out.push(
      lineChart(
        m.searchTitle,
        searched.map((g) => ({ name: g.name, points: g.search!.points.map((p) => [p.lr, p.validationLoss ?? NaN] as [number, number]) })),
        m.learningRate,
        m.validationLossAfter({ epochs: first.epochs }),
        true,
        true,
        [],
        { tightY: true, dots: searched.map((g) => ({ name: g.name, points: g.search!.points.map((p) => [p.lr, p.validationLoss ?? NaN] as [number, number]), ring: [g.search!.chosenLr, g.search!.points.find((p) => p.lr === g.search!.chosenLr)?.validationLoss ?? NaN] })) },
      ),
    );
    out.push(how(m.searchHow({ points: first.points.length, epochs: first.epochs, fit: first.fitDigits, validation: first.validationDigits })));
  }
  // The curves are of the runs that did not diverge: a diverged run's stop short, and its
  // loss before the failed step (up to 1e30 and more) would flatten every other curve.
  const finished = groups.map((g) => ({ name: g.name, runs: g.runs.filter((r) => r.diverged === undefined) })).filter((g) => g.runs.length > 0);
  if (finished.length === 0) return out.join('\n');
  const curves = finished.map((g) => ({ name: g.name, ...meanAndSpread(g.runs.map((r) => smoothLikeTensorBoard(r.losses, SMOOTHING))) }));
  const x = (i: number) => (i + 1) / stepsPerEpoch;
  out.push(
    lineChart(
      m.meanLossTitle({ seeds: n }),
      curves.map((c) => ({ name: c.name, points: c.mean.map((v, i) => [x(i), v] as [number, number]) })),
      m.epoch,
      m.crossEntropy,
      true,
      false,
      [],
      { bands: curves.map((c) => ({ name: c.name, points: c.mean.map((_, i) => [x(i), c.low[i]!, c.high[i]!] as [number, number, number]) })) },
    ),
  );
  out.push(how(m.meanLossHow({ seeds: n })));
  out.push(smoothedLossChart(m.firstSeedLossTitle({ someDiverged: stops.length > 0 }), finished.map((g) => g.runs[0]!), stepsPerEpoch, m));
  out.push(how(m.firstSeedLossHow({ weight: SMOOTHING })));
  const decay = groups.find((g) => g.runs[0]?.ema !== undefined)?.runs[0]!.ema!.decay;
  out.push(
    lineChart(
      m.meanAccuracyTitle({ seeds: n }),
      accuracySeries(
        finished.map((g) => ({
          name: g.name,
          accuracy: meanAndSpread(g.runs.map((r) => r.testAccuracy)).mean,
          ...(g.runs[0]!.ema ? { ema: meanAndSpread(g.runs.map((r) => r.ema!.testAccuracy)).mean } : {}),
        })),
      ),
      m.epoch,
      m.testAccuracy,
      false,
      false,
      [],
      decay === undefined ? {} : { companionNote: m.emaLegend({ decay }) },
    ),
  );
  out.push(how(m.meanAccuracyHow));
  if (decay !== undefined) out.push(how(m.emaHow({ decay })));
  return out.join('\n');
}

export function renderReport(input: ReportInput): string {
  const { results, config, paths, groups } = input;
  const lang = input.lang ?? 'en';
  const m = MESSAGES[lang];
  const h = m.reportHeaders;
  // From the data, not from a run: a run that diverged stopped short.
  const stepsPerEpoch = Math.max(1, Math.floor(config.trainCount / config.batch));
  // The charts leave out runs that diverged (see fairSection); the table says where they stopped.
  const finished = results.filter((r) => r.diverged === undefined);
  const decay = results.find((r) => r.ema !== undefined)?.ema!.decay;
  const lossChart = smoothedLossChart(m.lossChartTitle, finished, stepsPerEpoch, m);
  const accuracyChart = lineChart(
    m.accuracyChartTitle,
    accuracySeries(finished.map((r) => ({ name: r.name, accuracy: r.testAccuracy, ...(r.ema ? { ema: r.ema.testAccuracy } : {}) }))),
    m.epoch,
    m.testAccuracy,
    false,
    false,
    [],
    decay === undefined ? {} : { companionNote: m.emaLegend({ decay }) },
  );
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const rows = results
    .map(
      (r) =>
        `<tr><td>${swatch(r.name)}${escape(r.name)}</td><td>${r.lr}</td><td>${r.diverged ? '-' : r.trainLoss.toFixed(4)}</td><td>${r.diverged ? `${stoppedAt(r.diverged, stepsPerEpoch * config.epochs, m)}` : pct(r.testAccuracy[r.testAccuracy.length - 1]!)}</td>${decay === undefined ? '' : `<td>${r.diverged || !r.ema ? '-' : pct(r.ema.testAccuracy[r.ema.testAccuracy.length - 1]!)}</td>`}<td>${r.seconds.toFixed(1)}</td><td>${Math.round(r.samplesPerSecond)}</td><td>${((100 * r.optimizerSeconds) / r.seconds).toFixed(1)}%</td></tr>`,
    )
    .join('\n');
  const charts = `${lossChart}
${how(m.lossHow({ weight: SMOOTHING }))}
${accuracyChart}
${how(m.accuracyHow)}${decay === undefined ? '' : `\n${how(m.emaHow({ decay }))}`}`;
  const single = `<table id="summary"><thead><tr><th>${h.optimizer}</th><th>${h.lr}</th><th>${h.finalTrainLoss}</th><th>${h.testAccuracy}</th>${decay === undefined ? '' : `<th>${h.emaTestAccuracy}</th>`}<th>${h.seconds}</th><th>${h.samples}</th><th>${h.optShare}</th></tr></thead><tbody>
${rows}
</tbody></table>
${finished.length < results.length ? `<p id="diverged">${escape(m.chartsLeaveOut)}</p>\n` : ''}${finished.length > 0 ? charts : ''}`;
  const intro = `${escape(groups ? m.fairIntro({ searched: groups.some((g) => g.search !== undefined), runs: groups[0]!.runs.length, seeds: groups[0]!.seeds.join(', ') }) : m.sameStart)}${decay === undefined ? '' : `\n${escape(m.emaIntro({ decay }))}`}`;
  const panels = (which: 'book' | 'rosenbrock', surface: Surface) =>
    Object.entries(paths[which])
      .map(([name, points]) => trajectoryPanel(surface, name, points, m))
      .join('\n');
  // What the panels of schedulefree-adamw and muon show (x; Muon alone on a 1 x 2 matrix).
  const noteOf = (name: string): string | undefined => (OPTIMIZERS[name]?.panelNote === undefined ? undefined : (m.panelNotes[name] ?? OPTIMIZERS[name]!.panelNote));
  const notes = Object.keys(paths.book).flatMap((name) => noteOf(name) ?? []);
  const panelNotes = notes.length === 0 ? '' : `<p id="panel-notes">${notes.map(escape).join(' ')}</p>\n`;
  const net = [784, ...config.hidden, 10].join('-');
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8">${input.run === undefined ? '' : `<meta name="nesterov-run" content="${escape(input.run)}">`}<title>${escape(m.pageTitle)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
svg text { font: 12px system-ui, sans-serif; fill: #222; } svg .title { font-weight: 600; } svg .small { font-size: 11px; fill: #555; }
table { border-collapse: collapse; } td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; } td:first-child, th:first-child { text-align: left; }
.swatch { vertical-align: middle; margin-right: 6px; }
.panels { display: flex; flex-wrap: wrap; gap: 8px; } figure { margin: 0; } p.how { color: #444; max-width: 760px; margin: 2px 0 18px; font-size: 13px; }
</style></head><body>
<h1>${escape(m.heading)}</h1>
<p>${escape(m.intro({ net, seed: config.seed, epochs: config.epochs, batch: config.batch, train: config.trainCount, test: config.testCount, data: config.data }))}
${intro}</p>
${groups ? fairSection(groups, stepsPerEpoch, config.epochs, m) : single}
<h2>${escape(m.bookHeading)}</h2>
<p>${escape(m.bookPaths({ surface: m.bookSurface, steps: BOOK_SURFACE.steps, rates: Object.keys(paths.book).map((name) => `${name} ${OPTIMIZERS[name]!.pathLr}`).join(', ') }))}</p>
${panelNotes}<div class="panels" id="book-panels">${panels('book', BOOK_SURFACE)}</div>
<h2>${escape(m.rosenbrockHeading)}</h2>
<p>${escape(m.rosenbrockPaths({ surface: m.rosenbrockSurface, steps: ROSENBROCK_SURFACE.steps, rates: Object.keys(paths.rosenbrock).map((name) => `${name} ${OPTIMIZERS[name]!.rosenbrockLr}`).join(', ') }))}</p>
<div class="panels" id="rosenbrock-panels">${panels('rosenbrock', ROSENBROCK_SURFACE)}</div>
</body></html>
`;
}

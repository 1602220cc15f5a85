/**
 * The main job's report: one self-contained HTML file (inline SVG, no script, no
 * network), drawn with d3's scales, shapes and contours.
 */
import { contours } from 'd3-contour';
import { geoIdentity, geoPath } from 'd3-geo';
import { scaleLinear, scaleLog, type ScaleContinuousNumeric } from 'd3-scale';
import { line } from 'd3-shape';
import { OPTIMIZERS } from './optimizers.ts';
import type { TrainResult } from './types.ts';

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

// For series that are not one of the nine optimizers (the rates plots): other hues.
const EXTRA_PALETTE = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#a6761d', '#666666'];
const extraColors = new Map<string, string>();

export function colorOf(name: string): string {
  const index = Object.keys(OPTIMIZERS).indexOf(name);
  if (index >= 0) return PALETTE[index % PALETTE.length]!;
  if (!extraColors.has(name)) extraColors.set(name, EXTRA_PALETTE[extraColors.size % EXTRA_PALETTE.length]!);
  return extraColors.get(name)!;
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

interface Series {
  name: string;
  points: [number, number][];
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
  const ticks = logY ? (y.ticks(5).length < 8 ? y.ticks(5) : powersOfTen(y.ticks(5))) : y.ticks(6);
  for (const t of ticks) out.push(`<line x1="${x0! - 5}" x2="${x0}" y1="${y(t)}" y2="${y(t)}" stroke="#333"/><text x="${x0! - 8}" y="${y(t) + 4}" text-anchor="end">${tickText(t)}</text>`);
  out.push(`<text transform="translate(14 ${(y0! + y1!) / 2}) rotate(-90)" text-anchor="middle">${escape(yLabel)}</text></g>`);
  return out.join('');
}

function legend(names: string[], x: number, y: number): string {
  return `<g class="legend">${names
    .map((name, i) => `<g transform="translate(${x} ${y + i * 18})"><line x1="0" x2="18" y1="0" y2="0" stroke="${colorOf(name)}" stroke-width="3"/><text x="24" y="4">${escape(name)}</text></g>`)
    .join('')}</g>`;
}

/** A line chart of several series (log-scale y when asked). */
export function lineChart(title: string, series: Series[], xLabel: string, yLabel: string, logY: boolean, logX = false, dashed: readonly string[] = []): string {
  const longest = Math.max(...series.map((s) => s.name.length));
  const right = Math.max(MARGIN.right, 40 + 7 * longest);
  const width = 570 + right;
  const height = 360;
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]).filter((v) => Number.isFinite(v) && (!logY || v > 0));
  const x = (logX ? scaleLog() : scaleLinear()).domain([Math.min(...xs), Math.max(...xs)]).range([MARGIN.left, width - right]);
  const y = (logY ? scaleLog() : scaleLinear()).domain([Math.min(...ys), Math.max(...ys)]).nice().range([height - MARGIN.bottom, MARGIN.top]);
  const path = line<[number, number]>()
    .defined((p) => Number.isFinite(p[1]) && (!logY || p[1] > 0))
    .x((p) => x(p[0]))
    .y((p) => y(p[1]));
  const lines = series.map(
    (s) =>
      `<path class="series" data-name="${escape(s.name)}" d="${path(s.points) ?? ''}" fill="none" stroke="${colorOf(s.name)}" stroke-width="1.5"${dashed.includes(s.name) ? ' stroke-dasharray="5 4"' : ''}/>`,
  );
  return `<figure><svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escape(title)}">
<text class="title" x="${MARGIN.left}" y="18">${escape(title)}</text>
${axes(x, y, height, xLabel, yLabel, logY, logX)}
${lines.join('\n')}
${legend(series.map((s) => s.name), width - right + 16, MARGIN.top + 8)}
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
  const opt = entry.make(surface === ROSENBROCK_SURFACE ? entry.rosenbrockLr : entry.pathLr);
  const p = { xy: Float64Array.from(surface.start) };
  const g = { xy: new Float64Array(2) };
  const points: [number, number][] = [[p.xy[0]!, p.xy[1]!]];
  for (let t = 0; t < surface.steps; t++) {
    surface.gradient(p.xy[0]!, p.xy[1]!, g.xy);
    opt.update(p, g);
    points.push([p.xy[0]!, p.xy[1]!]);
  }
  return points;
}

/** One panel: contour lines of the surface (d3-contour) and an optimizer's path over them. */
export function trajectoryPanel(surface: Surface, name: string, points: [number, number][]): string {
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
  return `<svg class="panel" viewBox="0 0 ${size} ${size + 16}" width="${size}" height="${size + 16}" role="img" aria-label="${escape(name)} on ${escape(surface.title)}">
<text class="title" x="${pad}" y="14">${escape(name)}</text>
<g class="contours" fill="none" stroke="#bbb">${shapes.map((s) => `<path d="${toPixels(s) ?? ''}"/>`).join('')}</g>
<circle cx="${x(surface.minimum[0])}" cy="${y(surface.minimum[1])}" r="3" fill="#333"/>
<path class="trajectory" d="${path ?? ''}" fill="none" stroke="${colorOf(name)}" stroke-width="1.6"/>
<circle cx="${x(surface.start[0])}" cy="${y(surface.start[1])}" r="3" fill="${colorOf(name)}"/>
<text x="${pad}" y="${size + 10}" class="small">${points.length - 1} steps, end (${last[0].toFixed(3)}, ${last[1].toFixed(3)})</text>
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
}

export function renderReport(input: ReportInput): string {
  const { results, config, paths } = input;
  const stepsPerEpoch = results[0] ? results[0].steps / config.epochs : 1;
  const lossChart = lineChart(
    'Training loss per step (log scale)',
    results.map((r) => ({ name: r.name, points: r.losses.map((l, i) => [(i + 1) / stepsPerEpoch, l] as [number, number]) })),
    'epoch',
    'cross-entropy loss',
    true,
  );
  const accuracyChart = lineChart(
    'Test accuracy after each epoch',
    results.map((r) => ({ name: r.name, points: r.testAccuracy.map((a, i) => [i + 1, a] as [number, number]) })),
    'epoch',
    'test accuracy',
    false,
  );
  const rows = results
    .map(
      (r) =>
        `<tr><td><span class="swatch" style="background:${colorOf(r.name)}"></span>${escape(r.name)}</td><td>${r.lr}</td><td>${r.trainLoss.toFixed(4)}</td><td>${(100 * r.testAccuracy[r.testAccuracy.length - 1]!).toFixed(2)}%</td><td>${r.seconds.toFixed(1)}</td><td>${Math.round(r.samplesPerSecond)}</td><td>${((100 * r.optimizerSeconds) / r.seconds).toFixed(1)}%</td></tr>`,
    )
    .join('\n');
  const panels = (which: 'book' | 'rosenbrock', surface: Surface) =>
    Object.entries(paths[which])
      .map(([name, points]) => trajectoryPanel(surface, name, points))
      .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">${input.run === undefined ? '' : `<meta name="nesterov-run" content="${escape(input.run)}">`}<title>nesterov: optimizers on MNIST</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
svg text { font: 12px system-ui, sans-serif; fill: #222; } svg .title { font-weight: 600; } svg .small { font-size: 11px; fill: #555; }
table { border-collapse: collapse; } td, th { padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; } td:first-child, th:first-child { text-align: left; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
.panels { display: flex; flex-wrap: wrap; gap: 8px; } figure { margin: 0; }
</style></head><body>
<h1>Nesterov and its family on handwritten digits</h1>
<p>A ${[784, ...config.hidden, 10].join('-')} network (ReLU, softmax cross-entropy, He initialisation, seed ${config.seed}) trained
for ${config.epochs} epochs with batches of ${config.batch} on ${config.trainCount} digits, tested on ${config.testCount} held out (${escape(config.data)}).
Every optimizer starts from the same weights and sees the same batches.</p>
<table id="summary"><thead><tr><th>optimizer</th><th>lr</th><th>final train loss</th><th>test accuracy</th><th>seconds</th><th>samples/s</th><th>optimizer share</th></tr></thead><tbody>
${rows}
</tbody></table>
${lossChart}
${accuracyChart}
<h2>Paths on the book's function</h2>
<p>${escape(BOOK_SURFACE.title)}, ${BOOK_SURFACE.steps} steps with the learning rates of the book's picture. NAG and the book's Nesterov code side by side: they part from the first step.</p>
<div class="panels" id="book-panels">${panels('book', BOOK_SURFACE)}</div>
<h2>Paths on Rosenbrock</h2>
<p>${escape(ROSENBROCK_SURFACE.title)}, ${ROSENBROCK_SURFACE.steps} steps, learning rates: ${Object.entries(paths.rosenbrock).map(([name]) => `${escape(name)} ${OPTIMIZERS[name]!.rosenbrockLr}`).join(', ')}.</p>
<div class="panels" id="rosenbrock-panels">${panels('rosenbrock', ROSENBROCK_SURFACE)}</div>
</body></html>
`;
}

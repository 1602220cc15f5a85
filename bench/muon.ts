/**
 * Muon's rows of `npm run bench` (also alone: `npm run bench:muon`): ms per step of one
 * matrix, 784x100 (the app's hidden layer) and 1024x1024, median of repeated steps,
 * inputs built outside the timed region; ours on the WebAssembly kernels (and the JS
 * fallback for the small one) against the same float32 computation in Python on one
 * thread (bench/torch_muon.py): torch 1.13's matmul, the same chain through torch's
 * bundled oneDNN, and numpy when its BLAS is an optimized one.
 *
 * Where the time goes: the step is timed whole, and its Newton-Schulz iteration alone on
 * the same kernels (assembly/kernels.ts `newtonSchulz` on a workspace laid out as
 * src/rules/muon.ts lays it out), and each of its four kernels alone: per step on a
 * rows x cols matrix (rows <= cols after the transpose, both padded), the gram X X^T
 * (rows^2 cols / 2 multiply-adds: the symmetric half), the gram of A (rows^3 / 2), the
 * polynomial B = b A + c A A (elementwise) and B X (rows^2 cols). The elementwise part
 * (momentum, norm, transposes, update) is the step with nsSteps: 0. GFLOP/s are
 * of the multiply-adds the kernels do (2 flops each), against two peaks: the clock's
 * (/proc/cpuinfo MHz x 8: a 128-bit multiply and a 128-bit add per cycle, wasm SIMD has
 * no fused multiply-add) and the gram kernel's own speed on a matrix that stays in L1.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Muon, NEWTON_SCHULZ_COEFFICIENTS, ParamStore } from 'nesterov';
import { instantiateKernels, SCALAR_BLOCK_DOUBLES } from '../src/wasm/kernels.ts';

export const MUON_SHAPES: readonly (readonly [number, number])[] = [
  [784, 100],
  [1024, 1024],
];
const NS_STEPS = 5;

export interface MuonRow {
  shape: string;
  impl: string;
  ms: number | null;
  note?: string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/** Median ms of `fn` over repeats filling about `budget` seconds (3 to 30 of them). */
function medianMs(fn: () => void, budget: number, before?: () => void): number {
  before?.();
  fn();
  before?.();
  const once = performance.now();
  fn();
  const reps = Math.max(3, Math.min(30, Math.floor((budget * 1000) / Math.max(performance.now() - once, 0.001))));
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    before?.();
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

function stepMs(rows: number, cols: number, backend: 'wasm' | 'js', budget: number, nsSteps = NS_STEPS): number {
  const store = new ParamStore({ w: [rows, cols] });
  store.grads.w.forEach((_v, i, a) => (a[i] = Math.sin(i * 0.37)));
  const opt = new Muon({ backend, nsSteps });
  const ms = medianMs(() => opt.update(store.params, store.grads), budget);
  if (!Number.isFinite(store.params.w[0]!)) throw new Error(`Muon ${rows}x${cols} ${backend}: the parameters are not finite after the bench`);
  return ms;
}

/** As src/rules/muon.ts pads a dimension: a multiple of 4, not of 256 (see there). */
function padded(n: number): number {
  const p = (n + 3) & ~3;
  return p % 256 === 0 ? p + 16 : p;
}

interface IterationTimes {
  whole: number;
  gramX: number;
  gramA: number;
  poly: number;
  apply: number;
  /** Multiply-adds the kernels do in one Newton-Schulz step (padded dims, symmetric halves). */
  macsPerStep: number;
}

/** The iteration and its kernels alone, on a workspace laid out as muon.ts's wasmWorkspace. */
function iterationMs(rows: number, cols: number, budget: number): IterationTimes {
  const [r, c] = rows > cols ? [cols, rows] : [rows, cols];
  const pr = padded(r);
  const pc = padded(c);
  const header = SCALAR_BLOCK_DOUBLES * 8;
  const xBytes = pr * pc * 4;
  const aBytes = pr * pr * 4;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((header + 2 * xBytes + 2 * aBytes) / 65536) });
  const k = instantiateKernels(memory, false, 0);
  k.scalars.set(NEWTON_SCHULZ_COEFFICIENTS);
  const x = header;
  const t = x + xBytes;
  const aa = t + xBytes;
  const bm = aa + aBytes;
  // A normalised input (Frobenius norm 1), as the step hands the iteration; restored
  // before every timed call (the iteration works in place).
  const input = new Float32Array(pr * pc);
  let norm = 0;
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) norm += Math.sin((i * c + j) * 0.37) ** 2;
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) input[i * pc + j] = Math.sin((i * c + j) * 0.37) / Math.sqrt(norm);
  const xView = new Float32Array(memory.buffer, x, pr * pc);
  const restore = () => xView.set(input);
  const e = k.exports;
  const whole = medianMs(() => e.newtonSchulz(x, t, aa, bm, pr, pc, NS_STEPS, k.address), budget, restore);
  restore();
  const gramX = medianMs(() => e.gram(x, pr, pc, aa), budget / 4);
  const gramA = medianMs(() => e.gram(aa, pr, pr, bm), budget / 4);
  const poly = medianMs(() => e.nsPoly(aa, bm, pr * pr, k.address), budget / 4);
  const apply = medianMs(() => e.nsApply(bm, x, pr, pc, t, k.address), budget / 4);
  const blocks = ((pr / 4) * (pr / 4 + 1)) / 2; // 4x4 blocks on and above the diagonal
  const macsPerStep = blocks * 16 * pc + blocks * 16 * pr + pr * pr * pc;
  return { whole, gramX, gramA, poly, apply, macsPerStep };
}

/** GFLOP/s of the gram kernel on 32 x 256 floats (32 KB, in L1): the kernels' practical peak here. */
function gramPeakGflops(budget: number): number {
  const rows = 32;
  const cols = 256;
  const memory = new WebAssembly.Memory({ initial: 2 });
  const k = instantiateKernels(memory, false, 0);
  const x = SCALAR_BLOCK_DOUBLES * 8;
  const out = x + rows * cols * 4;
  new Float32Array(memory.buffer, x, rows * cols).forEach((_v, i, a) => (a[i] = Math.sin(i)));
  const repeat = 200;
  const ms = medianMs(() => {
    for (let i = 0; i < repeat; i++) k.exports.gram(x, rows, cols, out);
  }, budget);
  const macs = (((rows / 4) * (rows / 4 + 1)) / 2) * 16 * cols;
  return (2 * macs * repeat) / (ms * 1e6);
}

function clockMHz(): number | null {
  try {
    const match = /cpu MHz\s*:\s*([\d.]+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

interface PythonMuon {
  torch: string;
  blasInfo: string;
  onednn: boolean;
  numpyBlas: { numpy: string; libraries: string[]; 'libblas.so.3': string; optimized: boolean } | null;
  results: Record<string, Record<string, number>>;
}

function runPython(budget: number): PythonMuon | string {
  const python = '/usr/bin/python3';
  if (!existsSync(python)) return `${python} not found`;
  try {
    const script = join(dirname(fileURLToPath(import.meta.url)), 'torch_muon.py');
    const out = execFileSync(python, [script, MUON_SHAPES.map(([r, c]) => `${r}x${c}`).join(','), String(budget)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, OMP_NUM_THREADS: '1' },
    });
    return JSON.parse(out) as PythonMuon;
  } catch (error) {
    const message = (error as { stderr?: string }).stderr ?? String(error);
    return /No module named 'torch'/.test(message) ? 'python3-torch is not installed (apt-get install python3-torch)' : message.split('\n').slice(-2).join(' ');
  }
}

const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));

/** Times every row and returns them with the section's text (a table and notes). */
export function muonSection(options: { torch: boolean; quick?: boolean; log?: (line: string) => void }): { rows: MuonRow[]; lines: string[]; targets: string[] } {
  const budget = options.quick ? 0.5 : 2;
  const log = options.log ?? (() => undefined);
  const rows: MuonRow[] = [];
  const lines: string[] = [];
  const targets: string[] = [];
  const record = (shape: string, impl: string, ms: number | null, note?: string) => {
    rows.push({ shape, impl, ms, ...(note === undefined ? {} : { note }) });
    log(`  muon ${shape} ${impl}: ${ms === null ? `skipped (${note})` : `${fmt(ms)} ms`}`);
  };
  const python = options.torch ? runPython(budget) : 'skipped (--no-torch)';
  const mhz = clockMHz();
  const clockPeak = mhz === null ? null : (mhz * 8) / 1000;
  const l1Peak = gramPeakGflops(budget / 2);
  const breakdown: string[] = [];
  for (const [r, c] of MUON_SHAPES) {
    const shape = `${r}x${c}`;
    const wasm = stepMs(r, c, 'wasm', budget);
    record(shape, 'ours, wasm (whole step)', wasm);
    const it = iterationMs(r, c, budget);
    const elementwise = stepMs(r, c, 'wasm', budget, 0);
    record(shape, 'ours, wasm, Newton-Schulz alone (5 steps)', it.whole);
    record(shape, 'ours, wasm, elementwise part (the step with nsSteps: 0)', elementwise);
    if (r * c <= 1e5) record(shape, 'ours, JS (whole step)', stepMs(r, c, 'js', budget));
    else record(shape, 'ours, JS (whole step)', null, 'not run at this size (minutes per step)');
    const gflops = (2 * it.macsPerStep * NS_STEPS) / (it.whole * 1e6);
    const parts = it.gramX + it.gramA + it.poly + it.apply;
    breakdown.push(
      `- ${shape}: step ${fmt(wasm)} ms; Newton-Schulz alone ${fmt(it.whole)} ms (${((100 * it.whole) / wasm).toFixed(0)}% of the step), elementwise part ${fmt(elementwise)} ms ` +
        `(momentum, norm, copy into the padded workspace${r > c ? ' transposed' : ''}, update: the step with nsSteps 0; ${((100 * elementwise) / wasm).toFixed(1)}%). ` +
        `Per Newton-Schulz step (${padded(Math.min(r, c))}x${padded(Math.max(r, c))} padded): X X^T ${fmt(it.gramX)} ms, A A ${fmt(it.gramA)} ms, b A + c A A ${fmt(it.poly)} ms, B X ${fmt(it.apply)} ms ` +
        `(sum ${fmt(parts)} ms x 5 = ${fmt(parts * NS_STEPS)} ms). ${(gflops).toFixed(1)} GFLOP/s on ${(it.macsPerStep * NS_STEPS * 2 / 1e9).toFixed(2)} GFLOP: ` +
        `${clockPeak === null ? '' : `${((100 * gflops) / clockPeak).toFixed(0)}% of the clock's ${clockPeak.toFixed(1)}, `}${((100 * gflops) / l1Peak).toFixed(0)}% of the gram kernel in L1 (${l1Peak.toFixed(1)}).`,
    );
    if (typeof python === 'string') {
      record(shape, 'torch 1.13, 1 thread, matmul', null, `missing: ${python}`);
      continue;
    }
    const py = python.results[shape] ?? {};
    record(shape, `torch 1.13, 1 thread, matmul (BLAS_INFO=${python.blasInfo}), whole step`, py.torch ?? null);
    record(shape, `torch 1.13, 1 thread, matmul (BLAS_INFO=${python.blasInfo}), its Newton-Schulz part`, py['torch NS'] ?? null);
    if (python.onednn) {
      record(shape, 'torch 1.13, 1 thread, oneDNN (mkldnn_linear), whole step', py.onednn ?? null);
      record(shape, 'torch 1.13, 1 thread, oneDNN (mkldnn_linear), its Newton-Schulz part', py['onednn NS'] ?? null);
    } else record(shape, 'torch 1.13, 1 thread, oneDNN (mkldnn_linear), whole step', null, 'this torch has no oneDNN');
    if (python.numpyBlas?.optimized) record(shape, `numpy ${python.numpyBlas.numpy}, Newton-Schulz alone`, py['numpy NS'] ?? null);
    else record(shape, 'numpy, Newton-Schulz alone', null, python.numpyBlas === null ? 'no numpy' : `not run: numpy's BLAS is the reference one (${python.numpyBlas['libblas.so.3']})`);
  }

  const torchNote =
    typeof python === 'string'
      ? `Python peers: ${python}.`
      : `torch ${python.torch}, torch.set_num_threads(1). This torch (Debian's python3-torch) is built with BLAS_INFO=${python.blasInfo}: ` +
        `${python.blasInfo === 'generic' ? "its float32 matmul is the reference BLAS (netlib sgemm, no blocking for cache, no AVX kernels), so the 'matmul' rows flatter us. " : ''}` +
        `${python.onednn ? "The 'oneDNN' rows run the same chain through the oneDNN this torch bundles (mkldnn_linear, JIT AVX-512/AVX2 kernels with fused multiply-add): the fair peer. " : ''}` +
        `numpy ${python.numpyBlas === null ? 'is not installed' : `${python.numpyBlas.numpy} links ${python.numpyBlas['libblas.so.3']}${python.numpyBlas.optimized ? ' (an optimized BLAS: its row is run)' : ' (the same reference BLAS: no fairer peer, not run)'}`}.`;
  lines.push('Muon: one step of one float32 matrix (nesterov, 5 Newton-Schulz steps), ms, median of repeats; ratio = time / ours, wasm (whole step).');
  lines.push('');
  lines.push(`| shape | implementation | ms | ratio |`);
  lines.push('|---|---|---:|---:|');
  for (const row of rows) {
    const ours = rows.find((x) => x.shape === row.shape && x.impl === 'ours, wasm (whole step)')!.ms!;
    lines.push(`| ${row.shape} | ${row.impl} | ${row.ms === null ? (row.note ?? 'n/a') : fmt(row.ms)} | ${row.ms === null ? '' : (row.ms / ours).toFixed(2)} |`);
  }
  lines.push('');
  lines.push(torchNote);
  lines.push('');
  lines.push('Where the time goes (ours, wasm):');
  lines.push(...breakdown);
  for (const [r, c] of MUON_SHAPES) {
    const shape = `${r}x${c}`;
    const ours = rows.find((x) => x.shape === shape && x.impl === 'ours, wasm (whole step)')!.ms!;
    const peer = (prefix: string) => rows.find((x) => x.shape === shape && x.impl.startsWith(prefix) && x.impl.endsWith('whole step'))?.ms ?? null;
    for (const [label, ms] of [
      [`torch 1.13 matmul${typeof python === 'string' ? '' : ` (BLAS_INFO=${python.blasInfo})`}`, peer('torch 1.13, 1 thread, matmul')],
      ['torch 1.13 through oneDNN', peer('torch 1.13, 1 thread, oneDNN')],
    ] as const) {
      const ok = ms === null ? null : ours <= 3 * ms;
      targets.push(`- [${ok === null ? '?' : ok ? 'x' : ' '}] Muon ${shape} wasm within 3x of ${label}, one thread: ${ms === null ? 'peer missing' : `${(ours / ms).toFixed(2)}x its time`}`);
    }
  }
  return { rows, lines, targets };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const section = muonSection({ torch: !process.argv.includes('--no-torch'), quick: process.argv.includes('--quick'), log: (line) => process.stderr.write(`${line}\n`) });
  console.log([...section.lines, '', 'Targets:', ...section.targets].join('\n'));
}

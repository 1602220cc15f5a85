/**
 * Muon's rows of `npm run bench` (also alone: `npm run bench:muon`): ms per step of one
 * matrix, 784x100 (the app's hidden layer) and 1024x1024, median of repeated steps,
 * inputs built outside the timed region; ours on the WebAssembly kernels (and the JS
 * fallback for the small one) against the same float32 computation in Python on one
 * thread (bench/torch_muon.py): torch 1.13's matmul, the same chain through torch's
 * bundled oneDNN, and numpy when its BLAS is an optimized one.
 *
 * Where the time goes: the step is timed whole, and its Newton-Schulz iteration alone on
 * the same kernels (assembly/muon.ts `newtonSchulz` on a workspace laid out as
 * src/rules/muon/wasm.ts lays it out), and each of its four kernels alone: per step on a
 * rows x cols matrix (rows <= cols after the transpose, both padded), the gram X X^T
 * (rows^2 cols / 2 multiply-adds: the symmetric half), the gram of A (rows^3 / 2), the
 * polynomial B = b A + c A A (elementwise) and B X (rows^2 cols). The elementwise part
 * (momentum, norm, transposes, update) is the step with nsSteps: 0. GFLOP/s are
 * of the multiply-adds the kernels do (2 flops each), against the gram kernel's own
 * speed on a matrix that stays in L1 (the practical peak of 128-bit wasm SIMD without
 * fused multiply-add here), with the nominal clock's 8 flops/cycle (/proc/cpuinfo MHz)
 * beside it. All of a shape's rows are timed in interleaved rounds.
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
function medianMs(fn: () => void, budget: number): number {
  return interleavedMs([{ run: fn }], budget)[0]!;
}

/**
 * Median ms of each callable, timed in rounds (every round runs each once, in turn, its
 * `before` untimed first): on this shared machine the noise comes in spells, and rows
 * that are compared (a step and its parts) should live through the same ones.
 */
function interleavedMs(cells: { run: () => void; before?: () => void }[], budget: number): number[] {
  let round = 0;
  for (const cell of cells) {
    cell.before?.();
    const t0 = performance.now();
    cell.run();
    round += performance.now() - t0;
  }
  const rounds = Math.max(3, Math.min(30, Math.floor((budget * 1000 * cells.length) / Math.max(round, 0.001))));
  const times: number[][] = cells.map(() => []);
  for (let r = 0; r < rounds; r++) {
    cells.forEach((cell, k) => {
      cell.before?.();
      const t0 = performance.now();
      cell.run();
      times[k]!.push(performance.now() - t0);
    });
  }
  return times.map(median);
}

/**
 * Seeded uniform values in [-1, 1) (mulberry32): a full-rank matrix, as a gradient is.
 * (A closed form like sin(i) makes a rank-2 matrix, whose Newton-Schulz iterates fill
 * with subnormal floats, far slower than a real step's.)
 */
function fillRandom(array: Float32Array, seed: number): void {
  let a = seed >>> 0;
  for (let i = 0; i < array.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    array[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
}

/** A Muon step on a rows x cols ParamStore matrix (nsSteps 0: the elementwise part alone). */
function muonStep(rows: number, cols: number, backend: 'wasm' | 'js', nsSteps = NS_STEPS): { run: () => void; check: () => void } {
  const store = new ParamStore({ w: [rows, cols] });
  fillRandom(store.grads.w as Float32Array, 1);
  const opt = new Muon({ backend, nsSteps });
  return {
    run: () => opt.update(store.params, store.grads),
    check: () => {
      if (!Number.isFinite(store.params.w[0]!)) throw new Error(`Muon ${rows}x${cols} ${backend}: the parameters are not finite after the bench`);
    },
  };
}

/** As src/rules/muon/wasm.ts pads a dimension: a multiple of 4, not of 256 (see there). */
function padded(n: number): number {
  const p = (n + 3) & ~3;
  return p % 256 === 0 ? p + 16 : p;
}

interface ShapeTimes {
  step: number;
  elementwise: number;
  whole: number;
  gramX: number;
  gramA: number;
  poly: number;
  apply: number;
  /** Multiply-adds the kernels do in one Newton-Schulz step (padded dims, symmetric halves). */
  macsPerStep: number;
  /** The gram kernel's GFLOP/s in L1, timed in the same rounds. */
  peakGflops: number;
}

/**
 * The step, its elementwise part (nsSteps 0), the iteration alone and each of its
 * kernels alone (on a workspace laid out as src/rules/muon/wasm.ts's wasmWorkspace), interleaved.
 */
function shapeTimes(rows: number, cols: number, budget: number): ShapeTimes {
  const peak = gramPeakCell();
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
  // before every timed call of the iteration (it works in place).
  const values = new Float32Array(r * c);
  fillRandom(values, 2);
  let norm = 0;
  for (const value of values) norm += value * value;
  const input = new Float32Array(pr * pc);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) input[i * pc + j] = values[i * c + j]! / Math.sqrt(norm);
  const xView = new Float32Array(memory.buffer, x, pr * pc);
  const restore = () => xView.set(input);
  const e = k.exports;
  const step = muonStep(rows, cols, 'wasm');
  const elementwise = muonStep(rows, cols, 'wasm', 0);
  // Two groups of interleaved rounds: the step with its two parts, then the kernels of
  // one Newton-Schulz step and the L1 peak. (All eight in one round leave the step's
  // arrays evicted by the others: measured 13 ms for the 784x100 step against 7.3 ms
  // beside the iteration alone.)
  const [stepMs, elementwiseMs, whole] = interleavedMs(
    [step, elementwise, { run: () => e.newtonSchulz(x, t, aa, bm, pr, pc, NS_STEPS, k.address), before: restore }],
    budget,
  ) as [number, number, number];
  const [gramX, gramA, poly, apply, peakMs] = interleavedMs(
    [
      // One Newton-Schulz step's kernels, on the normalised input (A, then B, then B X).
      { run: () => e.gram(x, pr, pc, aa), before: restore },
      { run: () => e.gram(aa, pr, pr, bm) },
      { run: () => e.nsPoly(aa, bm, pr * pr, k.address) },
      { run: () => e.nsApply(bm, x, pr, pc, t, k.address) },
      peak,
    ],
    budget / 2,
  ) as [number, number, number, number, number];
  step.check();
  const blocks = ((pr / 4) * (pr / 4 + 1)) / 2; // 4x4 blocks on and above the diagonal
  const macsPerStep = blocks * 16 * pc + blocks * 16 * pr + pr * pr * pc;
  return { step: stepMs, elementwise: elementwiseMs, whole, gramX, gramA, poly, apply, macsPerStep, peakGflops: peak.gflops(peakMs) };
}

/**
 * The gram kernel on 32 x 256 floats (32 KB, in L1), 200 times: the kernels' practical
 * peak here. Returns the cell to time and the GFLOP/s for its ms.
 */
function gramPeakCell(): { run: () => void; gflops: (ms: number) => number } {
  const rows = 32;
  const cols = 256;
  const memory = new WebAssembly.Memory({ initial: 2 });
  const k = instantiateKernels(memory, false, 0);
  const x = SCALAR_BLOCK_DOUBLES * 8;
  const out = x + rows * cols * 4;
  new Float32Array(memory.buffer, x, rows * cols).forEach((_v, i, a) => (a[i] = Math.sin(i)));
  const repeat = 200;
  const macs = (((rows / 4) * (rows / 4 + 1)) / 2) * 16 * cols;
  return {
    run: () => {
      for (let i = 0; i < repeat; i++) k.exports.gram(x, rows, cols, out);
    },
    gflops: (ms) => (2 * macs * repeat) / (ms * 1e6),
  };
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
  const breakdown: string[] = [];
  for (const [r, c] of MUON_SHAPES) {
    const shape = `${r}x${c}`;
    const it = shapeTimes(r, c, budget);
    const wasm = it.step;
    record(shape, 'ours, wasm (whole step)', wasm);
    record(shape, 'ours, wasm, Newton-Schulz alone (5 steps)', it.whole);
    record(shape, 'ours, wasm, elementwise part (the step with nsSteps: 0)', it.elementwise);
    if (r * c <= 1e5) {
      const js = muonStep(r, c, 'js');
      record(shape, 'ours, JS (whole step)', medianMs(js.run, budget));
      js.check();
    } else record(shape, 'ours, JS (whole step)', null, 'not run at this size (minutes per step)');
    const gflops = (2 * it.macsPerStep * NS_STEPS) / (it.whole * 1e6);
    const l1Peak = it.peakGflops;
    const parts = it.gramX + it.gramA + it.poly + it.apply;
    breakdown.push(
      `- ${shape}: step ${fmt(wasm)} ms; Newton-Schulz alone ${fmt(it.whole)} ms (${((100 * it.whole) / wasm).toFixed(0)}% of the step), elementwise part ${fmt(it.elementwise)} ms ` +
        `(momentum, norm, copy into the padded workspace${r > c ? ' transposed' : ''}, update: the step with nsSteps 0; ${((100 * it.elementwise) / wasm).toFixed(1)}%). ` +
        `Per Newton-Schulz step (${padded(Math.min(r, c))}x${padded(Math.max(r, c))} padded): X X^T ${fmt(it.gramX)} ms, A A ${fmt(it.gramA)} ms, b A + c A A ${fmt(it.poly)} ms, B X ${fmt(it.apply)} ms ` +
        `(sum ${fmt(parts)} ms x 5 = ${fmt(parts * NS_STEPS)} ms). ${gflops.toFixed(1)} GFLOP/s on ${((it.macsPerStep * NS_STEPS * 2) / 1e9).toFixed(2)} GFLOP: ` +
        `${((100 * gflops) / l1Peak).toFixed(0)}% of the gram kernel's speed in L1 (${l1Peak.toFixed(1)} GFLOP/s, the practical wasm SIMD peak here: 128-bit multiplies and adds, no FMA` +
        `${mhz === null ? '' : `; the nominal ${mhz.toFixed(0)} MHz x 8 flops/cycle would be ${((mhz * 8) / 1000).toFixed(1)}`}).`,
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

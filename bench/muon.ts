/**
 * Muon's bench row: ms per step of one matrix (784x100, the app's hidden layer shape
 * transposed, and 1024x1024), ours on the WebAssembly kernels (and the JS fallback for
 * the small one) against torch 1.13 doing the same float32 computation on one thread
 * (bench/torch_muon.py). Medians of repeated steps; inputs built outside the timed region.
 *
 *   node --conditions=nesterov-source --import tsx bench/muon.ts [--no-torch]
 *
 * Where the time goes (per Newton-Schulz step on rows x cols, rows <= cols): the gram
 * X X^T (rows^2 cols / 2 multiply-adds: the symmetric half), the gram of A (rows^3 / 2),
 * and B X (rows^2 cols): for the 1024 square that is 25%, 25% and 50% of 1.6e9
 * multiply-adds; the momentum, the normalisation and the parameter update are O(rows cols).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Muon, ParamStore } from 'nesterov';

const SHAPES: [number, number][] = [[784, 100], [1024, 1024]];
const withTorch = !process.argv.includes('--no-torch') && existsSync('/usr/bin/python3');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

function timeSteps(rows: number, cols: number, backend: 'wasm' | 'js'): number {
  const store = new ParamStore({ w: [rows, cols] });
  store.grads.w.forEach((_v, i, a) => (a[i] = Math.sin(i * 0.37)));
  const opt = new Muon({ backend });
  opt.update(store.params, store.grads);
  const once = performance.now();
  opt.update(store.params, store.grads);
  const reps = Math.max(3, Math.min(30, Math.floor(2000 / Math.max(performance.now() - once, 0.001))));
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    opt.update(store.params, store.grads);
    times.push(performance.now() - t0);
  }
  if (!Number.isFinite(store.params.w[0]!)) throw new Error('not finite');
  return median(times);
}

const torch = withTorch
  ? (JSON.parse(execFileSync('/usr/bin/python3', [join(dirname(fileURLToPath(import.meta.url)), 'torch_muon.py'), SHAPES.map(([r, c]) => `${r}x${c}`).join(',')], { encoding: 'utf8' })) as { torch: string; results: Record<string, number> })
  : undefined;
console.log(`Muon, one step of one float32 matrix (ms, median)${torch ? `; torch ${torch.torch}, 1 thread` : ''}`);
for (const [rows, cols] of SHAPES) {
  const wasm = timeSteps(rows, cols, 'wasm');
  const js = rows * cols <= 1e5 ? timeSteps(rows, cols, 'js') : undefined;
  const t = torch?.results[`${rows}x${cols}`];
  console.log(
    `${`${rows}x${cols}`.padEnd(10)} wasm ${wasm.toFixed(1).padStart(8)}` +
      (js !== undefined ? `  js ${js.toFixed(1).padStart(8)}` : '') +
      (t !== undefined ? `  torch ${t.toFixed(1).padStart(8)}  wasm/torch ${(wasm / t).toFixed(2)}` : ''),
  );
}

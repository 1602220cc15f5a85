/**
 * The ParamStore layout's rows of `npm run bench` (also alone: `npm run bench:layout`):
 * the same wasm kernels on the same memory, once with their arrays a multiple of 4096
 * bytes apart (the layout a ParamStore had before its regions were skewed: regions of
 * 1.6e7 floats are 64,000,000 bytes = 15,625 pages apart) and once with every region 832
 * bytes further on modulo 4096 (src/store.ts REGION_SKEW). Intel cores take a load for a
 * load of an address just stored when the two agree in their low 12 bits ("4K aliasing")
 * and make it wait; the skew is what a ParamStore does about it. Both layouts are timed
 * in interleaved rounds, so the ratio comes from the same moments of a noisy machine.
 */
import { fileURLToPath } from 'node:url';
import { LION } from '../src/rules/lion.ts';
import { NESTEROV_KERNELS } from '../src/rules/nesterov.ts';
import { SCHEDULE_FREE_ADAMW_KERNELS } from '../src/rules/schedulefree-adamw.ts';
import { instantiateKernels, SCALAR_BLOCK_DOUBLES } from '../src/wasm/kernels.ts';
import type { KernelLayout } from '../src/kernel.ts';
import { benchKernels, writeScalars } from './kernels.ts';

const SKEW_BYTES = 13 * 64; // src/store.ts REGION_SKEW, in bytes for float32
const HEADER = SCALAR_BLOCK_DOUBLES * 8;

export interface LayoutRow {
  kernel: string;
  aliased: number;
  skewed: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

/** ns per element of each kernel on both layouts, `rounds` interleaved rounds, n a multiple of 1024. */
export function layoutRows(n = 16_000_000, rounds = 11): LayoutRow[] {
  const regionBytes = n * 4;
  const bytes = HEADER + 4 * (regionBytes + SKEW_BYTES);
  const pages = Math.ceil(bytes / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
  const kernels = instantiateKernels(memory, false, 0);
  const k = kernels.exports;
  // Non-zero values (Intel drops stores of zeros over zeros), the same in every region:
  // none of the loops below grows them faster than linearly, so they stay finite.
  const values = new Float32Array(memory.buffer, HEADER, (bytes - HEADER) >> 2);
  for (let i = 0; i < values.length; i++) values[i] = 1e-3 * (1 + (i % 7));
  const at = (layout: 'aliased' | 'skewed', region: number) => HEADER + region * (regionBytes + (layout === 'skewed' ? SKEW_BYTES : 0));
  const bench = benchKernels(memory);
  const write = <N extends string>(layout: KernelLayout<N>, values: { readonly [K in N]: number }) => writeScalars(kernels, layout, values);
  const nag = NESTEROV_KERNELS.nag, lion = LION, sfAdamw = SCHEDULE_FREE_ADAMW_KERNELS.step;
  const cells: { kernel: string; layout: 'aliased' | 'skewed'; run: () => void }[] = [];
  for (const layout of ['aliased', 'skewed'] as const) {
    const [a, b, c, d] = [0, 1, 2, 3].map((region) => at(layout, region)) as [number, number, number, number];
    cells.push(
      { kernel: 'Nesterov (nesterovNag: p, g, v)', layout, run: () => (write(nag, { lr: 0.01, mu: 0.9, sign: 1, wd: 0, shrink: 1 }), k.nesterovNag(a, b, c, n, 0)) },
      { kernel: 'Lion (lion: p, g, m)', layout, run: () => (write(lion, { lr: 1e-4, beta1: 0.9, beta2: 0.99, sign: 1, decay: 1 }), k.lion(a, b, c, n, 0)) },
      {
        kernel: 'Schedule-Free AdamW (scheduleFreeAdamw: p, g, z, v)',
        layout,
        run: () => (
          write(sfAdamw, { c: 0.5, yStep: -0.0025 * (1 - 0.9 * 0.5), zStep: -0.0025, wd: 0, sign: 1, first: 0, beta2: 0.999, bc2: 1 - 0.999 ** 2, eps: 1e-8 }),
          k.scheduleFreeAdamw(a, b, c, d, n, 0)
        ),
      },
      { kernel: 'streaming bound, read 3 write 2 (four quarters)', layout, run: () => bench.stream3to2Quarters(a, b, c, n) },
      { kernel: 'streaming bound, read 4 write 3 (four quarters)', layout, run: () => bench.stream4to3Quarters(a, b, c, d, n) },
    );
  }
  const times: number[][] = cells.map(() => []);
  for (let r = 0; r < rounds; r++) {
    cells.forEach((cell, i) => {
      cell.run(); // untimed: the first pass over memory left alone for a while runs slow
      const start = process.hrtime.bigint();
      cell.run();
      times[i]!.push(Number(process.hrtime.bigint() - start) / n);
    });
  }
  const rows: LayoutRow[] = [];
  for (let i = 0; i < cells.length / 2; i++) {
    rows.push({ kernel: cells[i]!.kernel, aliased: median(times[i]!), skewed: median(times[i + cells.length / 2]!) });
  }
  return rows;
}

/** The section's lines: a table of both layouts and their ratio. */
export function layoutSection(n = 16_000_000, rounds = 11): { lines: string[]; rows: LayoutRow[] } {
  const rows = layoutRows(n, rounds);
  const lines = [
    `ParamStore layout at ${n.toExponential(1)} floats per array: the same kernel on arrays a multiple of 4096 bytes apart ("aliased", a ParamStore's layout before the skew) and with each region 832 bytes further on modulo 4096 ("skewed", today's), ns/el, medians of ${rounds} interleaved rounds:`,
    '',
    '| kernel | aliased | skewed | skewed / aliased |',
    '|---|---:|---:|---:|',
    ...rows.map((row) => `| ${row.kernel} | ${row.aliased.toFixed(3)} | ${row.skewed.toFixed(3)} | ${(row.skewed / row.aliased).toFixed(2)} |`),
  ];
  return { lines, rows };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(layoutSection().lines.join('\n'));

/**
 * The bench's own WebAssembly module (bench/assembly/, built by `npm run build:wasm` into
 * bench/kernels.generated.ts, not part of the package): the streaming-bound loops and
 * the unchecked twins of two kernels, instantiated over a ParamStore's memory so that
 * they run on the same bytes as its kernels.
 */
import type { KernelLayout } from '../src/kernel.ts';
import type { WasmKernels } from '../src/wasm/kernels.ts';
import { BENCH_KERNELS_WASM } from './kernels.generated.ts';

export interface BenchKernels {
  /** Reads a, b, c and writes a and c: a Nesterov step's traffic. */
  stream3to2(a: number, b: number, c: number, n: number): void;
  /** Reads a, b, c, d and writes a, c, d: an Adam step's traffic. */
  stream4to3(a: number, b: number, c: number, d: number, n: number): void;
  /** stream3to2 / stream4to3 with one vector in each quarter of the arrays per iteration. */
  stream3to2Quarters(a: number, b: number, c: number, n: number): void;
  stream4to3Quarters(a: number, b: number, c: number, d: number, n: number): void;
  /** Reads a..f and writes a, c, d, e, f (an Adan step's traffic): one vector per iteration, and in quarters. */
  stream6to5(a: number, b: number, c: number, d: number, e: number, f: number, n: number): void;
  stream6to5Quarters(a: number, b: number, c: number, d: number, e: number, f: number, n: number): void;
  /** The reads of stream3to2Quarters alone, no store; 1 if a value read is not finite. */
  read3Quarters(a: number, b: number, c: number, n: number): number;
  /** The library's `nesterovNag` and `adam` without their finiteness probe (return 0). */
  nesterovNagUnchecked(p: number, g: number, v: number, n: number, s: number): number;
  adamUnchecked(p: number, g: number, m: number, v: number, vmax: number, n: number, s: number): number;
}

let compiled: WebAssembly.Module | undefined;

/** The bench module over `memory` (a ParamStore's, float32, not shared). */
export function benchKernels(memory: WebAssembly.Memory): BenchKernels {
  compiled ??= new WebAssembly.Module(Buffer.from(BENCH_KERNELS_WASM, 'base64'));
  return new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as BenchKernels;
}

/** Writes a kernel's scalars into `kernels`' block by the names its rule declares (src/rules/*.ts `kernels`). */
export function writeScalars<N extends string>(kernels: WasmKernels, layout: KernelLayout<N>, values: { readonly [K in N]: number }): void {
  for (const name of layout.scalars) kernels.scalars[layout.at[name]] = values[name];
}

/** Bytes one step moves per float32 element: 4 per array read and per array written (the rule's declared traffic). */
export function bytesPerElementOf(layout: KernelLayout): number {
  return 4 * (layout.reads.length + layout.writes.length);
}

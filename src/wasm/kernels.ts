/**
 * Loading the WebAssembly SIMD kernels (assembly/, built into
 * kernels.generated.ts by scripts/build-wasm.ts) over a given memory.
 *
 * `new WebAssembly.Module` compiles synchronously, which Node and workers allow for any
 * size; a browser's main thread allows it only for small modules, so call
 * `await loadKernels()` once there before making a ParamStore.
 */
import { KERNEL_POINTERS, KERNELS_SHARED_WASM, KERNELS_WASM } from './kernels.generated.ts';

/**
 * A rule's kernel: the byte offsets of its arrays (as many, and in the order, its rule's
 * layout declares: src/rules/*.ts `kernels`), then the element count and the address of
 * its scalars (f64, at the indices the layout names). Returns 0 when every value it wrote
 * (params and state) is finite, 1 when one is NaN or +-Infinity (rarely 1 falsely, for a
 * sum of two huge finite values: see kernel.ts).
 */
export type RuleKernel = (...pointersThenNAndScalars: number[]) => number;

/**
 * The exports of the kernels' module (assembly/): every rule's kernel by the entry name
 * its layout declares (the build lists them, so a new rule needs no line here), the
 * finiteness scans, and Muon's matrix kernels.
 */
export type KernelExports = { readonly [Entry in keyof typeof KERNEL_POINTERS]: RuleKernel } & {
  /** 1 if any of the `n` floats at `x` is NaN or +-Infinity, else 0 (splits across threads). */
  anyNonFinite(x: number, n: number): number;
  /** The index of the first NaN or +-Infinity, or -1. */
  firstNonFinite(x: number, n: number): number;
  /** Muon (src/rules/muon.ts): `out = x x^T`, rows and cols multiples of 4. */
  gram(x: number, rows: number, cols: number, out: number): void;
  /** Muon: `m = b a + c m` over `n` floats (a multiple of 4); scalars a, b, c. */
  nsPoly(a: number, m: number, n: number, s: number): void;
  /** Muon: `out = a x + bm x`, bm rows x rows; scalars a, b, c. */
  nsApply(bm: number, x: number, rows: number, cols: number, out: number, s: number): void;
  /** Muon: `steps` Newton-Schulz steps on x (t, aa, bm scratch); returns the result's address. */
  newtonSchulz(x: number, t: number, aa: number, bm: number, rows: number, cols: number, steps: number, s: number): number;
  /**
   * The main job's network (app/nn/network.ts): `out (m x n) = (accumulate ? out : 0) + A B`,
   * A read at `a + i aRow + p aCol` (bytes), B and out row-major (row stride n); m and n
   * multiples of 4. Not a library kernel: the app's, beside Muon's products it generalises.
   */
  matmul(a: number, aRow: number, aCol: number, b: number, m: number, k: number, n: number, out: number, accumulate: number): void;
};

/** The kernels over one memory, with the block their scalars travel in. */
export interface WasmKernels {
  readonly exports: KernelExports;
  /** The scalar block: write a kernel's scalars here, then pass `address`. */
  readonly scalars: Float64Array;
  readonly address: number;
}

/**
 * How many leading arguments of each kernel are pointers (the threaded path splits
 * them): for a rule's kernel, its arrays as the rule declares them (src/rules/*.ts
 * `kernels`, counted by the build into KERNEL_POINTERS); the finiteness scans and Muon's
 * matrix kernels are not a rule's. `firstNonFinite` returns an index, which does not
 * combine across chunks: the threaded path runs it on the calling thread. Muon's matrix
 * kernels run on Muon's own single-threaded instance (never split by a thread pool: a
 * matrix product does not divide into independent element ranges).
 */
export const POINTER_COUNT: Record<keyof KernelExports, number> = {
  ...KERNEL_POINTERS,
  anyNonFinite: 1,
  firstNonFinite: 1,
  gram: 1,
  nsPoly: 2,
  nsApply: 2,
  newtonSchulz: 4,
  matmul: 1,
} satisfies Record<keyof KernelExports, number>;

function decode(base64: string): Uint8Array {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const modules: { plain?: WebAssembly.Module; shared?: WebAssembly.Module } = {};

/** Compiles both kernel modules asynchronously (for a browser's main thread). */
export async function loadKernels(): Promise<void> {
  modules.plain ??= await WebAssembly.compile(decode(KERNELS_WASM) as BufferSource);
  modules.shared ??= await WebAssembly.compile(decode(KERNELS_SHARED_WASM) as BufferSource);
}

function kernelModule(shared: boolean): WebAssembly.Module {
  if (shared) return (modules.shared ??= new WebAssembly.Module(decode(KERNELS_SHARED_WASM) as BufferSource));
  return (modules.plain ??= new WebAssembly.Module(decode(KERNELS_WASM) as BufferSource));
}

/** Whether this runtime compiles the WebAssembly SIMD kernels. */
export function wasmSimdSupported(): boolean {
  return wasmUnavailableReason() === undefined;
}

/**
 * Why the WebAssembly kernels cannot run here, or undefined when they can: no
 * WebAssembly at all, a Content-Security-Policy that blocks compiling it (a page needs
 * `script-src 'wasm-unsafe-eval'`), or an engine without WebAssembly SIMD.
 */
export function wasmUnavailableReason(): string | undefined {
  if (typeof WebAssembly === 'undefined') return 'this runtime has no WebAssembly';
  try {
    kernelModule(false);
    return undefined;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // Chrome: "Wasm code generation disallowed by embedder"; Firefox: "... blocked by CSP";
    // Safari: "Refused to create a WebAssembly object because 'unsafe-eval' or
    // 'wasm-unsafe-eval' is not an allowed source of script".
    if (/disallowed by embedder|CSP|Content[- ]Security[- ]Policy|unsafe-eval/i.test(message)) {
      return `the page's Content-Security-Policy blocks compiling WebAssembly (allow it with script-src 'wasm-unsafe-eval'; the engine said: ${message})`;
    }
    return `this runtime does not compile the WebAssembly SIMD kernels (${message})`;
  }
}

/**
 * A `WebAssembly.Memory`, spelled out (as TypeScript's DOM lib declares it) so that the
 * published declarations type-check without the DOM lib (`lib: ["ES2022"]`, Node types).
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(delta: number): number;
}

/**
 * The kernels, instantiated over `memory` (which they never grow), with their scalar
 * block of 64 doubles at byte `address`.
 */
export function instantiateKernels(memory: WasmMemory, shared: boolean, address: number): WasmKernels {
  const instance = new WebAssembly.Instance(kernelModule(shared), { env: { memory } });
  return {
    exports: instance.exports as unknown as KernelExports,
    scalars: new Float64Array(memory.buffer, address, SCALAR_BLOCK_DOUBLES),
    address,
  };
}

/** Doubles in a kernel scalar block (the largest kernel reads 10). */
export const SCALAR_BLOCK_DOUBLES = 64;

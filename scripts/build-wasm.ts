/**
 * Builds the WebAssembly SIMD kernels with AssemblyScript (an npm devDependency, pinned).
 * Run by `npm run build:wasm` (and so by `npm run build`, `npm test`, `npm start` and the
 * bench):
 *
 * 1. assembly/layout.generated.ts: the byte offset of every scalar the rules declare
 *    (their `kernels`, walked from the registry, src/rules/index.ts), the names the
 *    kernels load them by. Committed (so the
 *    AssemblyScript reads as it runs); test/kernel.test.ts fails while it is stale.
 * 2. assembly/generated/: each rule file of assembly/rules/ with the shared loops
 *    written out (scripts/kernel-source.ts), and the module's entry, index.ts.
 * 3. The library's module, twice: for a plain memory and for a shared one (threads),
 *    into src/wasm/kernels.generated.ts as base64 (so the library loads it the same way
 *    in Node and in a browser, with no file to fetch), with the pointer count of every
 *    rule kernel (from the rules' `arrays`).
 * 4. The bench's module (bench/assembly/: the streaming-bound loops and the unchecked
 *    twins of the kernels), into bench/kernels.generated.ts. Not in the package.
 *
 * Nothing but layout.generated.ts is committed.
 */
import asc from 'assemblyscript/asc';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { KernelLayout } from '../src/kernel.ts';
import { expandRule, layoutSource } from './kernel-source.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const generatedModule = `${root}/src/wasm/kernels.generated.ts`;

/** Every kernel layout the registered rules declare (src/rules/index.ts RULES, each rule's `kernels`). */
export async function ruleLayouts(): Promise<KernelLayout[]> {
  // The rules import the kernels' loader, which imports the built module: a first build
  // in a fresh checkout, or over a module built by an older build (without the exports the
  // loader now imports), starts from an empty one.
  if (!existsSync(generatedModule) || !readFileSync(generatedModule, 'utf8').includes('KERNEL_POINTERS')) {
    writeFileSync(generatedModule, "export const KERNELS_WASM = '';\nexport const KERNELS_SHARED_WASM = '';\nexport const KERNEL_POINTERS = {} as const;\n");
  }
  const { RULES } = await import('../src/rules/index.ts');
  return RULES.flatMap((entry) => Object.values(entry.rule?.kernels ?? {}));
}

async function compile(entry: string, extra: string[]): Promise<Buffer> {
  let binary: Uint8Array | undefined;
  const { error, stderr } = await asc.main(
    [entry, '-O3', '--noAssert', '--runtime', 'stub', '--importMemory', '--noExportMemory', '--enable', 'simd', ...extra, '--outFile', 'kernels.wasm'],
    // baseDir resolves the entry and its imports from the repository (asc's API accepts it; its types omit it).
    {
      baseDir: root,
      writeFile(name: string, contents: string | Uint8Array) {
        if (typeof contents === 'string') return;
        if (name.endsWith('.wasm')) binary = contents;
      },
    } as Parameters<typeof asc.main>[1],
  );
  if (error) {
    process.stderr.write(stderr.toString());
    throw error;
  }
  return Buffer.from(binary!);
}

const digest = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function main(): Promise<void> {
  const layouts = await ruleLayouts();
  writeFileSync(`${root}/assembly/layout.generated.ts`, layoutSource(layouts));

  rmSync(`${root}/assembly/generated`, { recursive: true, force: true });
  mkdirSync(`${root}/assembly/generated`);
  const exported: string[] = [];
  const pointersOf = new Map<string, readonly string[]>();
  for (const file of readdirSync(`${root}/assembly/rules`).filter((name) => name.endsWith('.ts')).sort()) {
    const { source, kernels, pointers } = expandRule(readFileSync(`${root}/assembly/rules/${file}`, 'utf8'), file);
    writeFileSync(`${root}/assembly/generated/${file}`, source);
    exported.push(`export { ${kernels.join(', ')} } from './${file.replace(/\.ts$/, '')}';`);
    for (const kernel of kernels) pointersOf.set(kernel, pointers[kernel]!);
  }
  // A rule's `arrays` are its kernel's pointer arguments, by name and in order: the
  // thread pool splits that many, the bench counts their bytes.
  for (const layout of layouts) {
    const pointers = pointersOf.get(layout.entry);
    if (pointers !== undefined && pointers.join() !== layout.arrays.join()) {
      throw new Error(`the rule's arrays for ${layout.entry} (${layout.arrays.join(', ')}) are not the kernel's pointer arguments (${pointers.join(', ')})`);
    }
  }
  const declared = new Set(layouts.map((layout) => layout.entry));
  const built = new Set(exported.flatMap((line) => /\{ (.*) \}/.exec(line)![1]!.split(', ')));
  for (const entry of declared) if (!built.has(entry)) throw new Error(`a rule declares the wasm kernel ${entry}, which no file of assembly/rules/ defines`);
  for (const entry of built) if (!declared.has(entry)) throw new Error(`assembly/rules/ defines the kernel ${entry}, which no rule declares (src/rules/*.ts kernels)`);
  writeFileSync(
    `${root}/assembly/generated/index.ts`,
    [
      '// Generated by scripts/build-wasm.ts: the library module\'s exports. Do not edit.',
      ...exported,
      "export { anyNonFinite, firstNonFinite } from '../finite';",
      "export { gram, nsPoly, nsApply, newtonSchulz, matmul } from '../muon';",
      '',
    ].join('\n'),
  );

  const plain = await compile('assembly/generated/index.ts', []);
  // 65536 pages = 4 GiB, the wasm32 limit: the module accepts any shared memory.
  const shared = await compile('assembly/generated/index.ts', ['--sharedMemory', '--maximumMemory', '65536', '--enable', 'threads']);
  const pointers = [...new Map(layouts.map((layout) => [layout.entry, layout.arrays.length])).entries()].sort(([a], [b]) => (a < b ? -1 : 1));
  writeFileSync(
    generatedModule,
    `// Generated by scripts/build-wasm.ts from assembly/ (AssemblyScript ${asc.version}). Do not edit.
// sha256 ${digest(plain)} (plain memory), ${digest(shared)} (shared memory)
export const KERNELS_WASM: string = '${plain.toString('base64')}';
export const KERNELS_SHARED_WASM: string = '${shared.toString('base64')}';
/** The pointer arguments of each rule kernel: its arrays (src/rules/*.ts \`kernels\`). */
export const KERNEL_POINTERS = {
${pointers.map(([entry, count]) => `  ${entry}: ${count},`).join('\n')}
} as const;
`,
  );

  const bench = await compile('bench/assembly/index.ts', []);
  writeFileSync(
    `${root}/bench/kernels.generated.ts`,
    `// Generated by scripts/build-wasm.ts from bench/assembly/. Do not edit.
export const BENCH_KERNELS_WASM: string = '${bench.toString('base64')}';
`,
  );
  // On stderr: `npm pack --json` and other tools that parse npm's stdout run this script
  // first (prepack), and a line before their JSON breaks them.
  process.stderr.write(
    `wasm kernels: ${plain.length} bytes (plain), ${shared.length} bytes (shared memory), sha256 ${digest(plain).slice(0, 16)}; bench module ${bench.length} bytes\n`,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();

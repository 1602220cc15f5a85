/**
 * The published package, as a user gets it: the build (`npm run build`) emits ESM with declarations;
 * every name docs/api.md documents, and every name the README and docs/ import, imports
 * through the package's own `exports` (a child `node` without the nesterov-source
 * condition, so it loads dist/); `require()` works (Node 20.19+ loads ESM synchronously);
 * a strict TypeScript project without the DOM lib and without skipLibCheck type-checks
 * the code of the README and docs/ against dist/*.d.ts; the core has no Node import (it
 * runs in a browser); `npm pack` holds only what a user needs, the docs and their images
 * included.
 *
 * Everything reading dist/ lives in this one file: it builds dist/ once, and test files
 * run in parallel.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import ts from 'typescript';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** The README and the pages under docs/, by their path from the package root. */
const pages = new Map<string, string>([
  ['README.md', readFileSync(join(root, 'README.md'), 'utf8')],
  ['README.ko.md', readFileSync(join(root, 'README.ko.md'), 'utf8')],
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name): [string, string] => [`docs/${name}`, readFileSync(join(root, 'docs', name), 'utf8')]),
]);
const allPages = [...pages.values()].join('\n\n');
/** The API reference: every name it mentions must be an export. */
const apiPage = pages.get('docs/api.md')!;
/** TypeScript blocks of the README and docs/, without those marked `<!-- not run: reason -->` (test/readme.test.ts). */
const runnableBlocks = [...pages.values()].flatMap((text) =>
  [...text.matchAll(/^```(?:ts|typescript)\n([\s\S]*?)^```/gm)]
    .filter((m) => !/^<!--\s*not run:/.test(text.slice(0, m.index).split('\n').at(-2) ?? ''))
    .map((m) => m[1]!),
);
const ENTRY_POINTS = { nesterov: 'dist/index.d.ts', 'nesterov/node': 'dist/node/index.d.ts' } as const;
type Entry = keyof typeof ENTRY_POINTS;

function files(folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** Runs `node` as a user would: without the nesterov-source condition, so 'nesterov' is dist/. */
function userNode(args: string[], cwd = root): { status: number | null; stdout: string; stderr: string } {
  const { NODE_OPTIONS: _testConditions, ...env } = process.env;
  const done = spawnSync(process.execPath, args, { cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { status: done.status, stdout: done.stdout, stderr: done.stderr };
}

/** The names each entry point's declarations export (values and types), read by the compiler. */
function declaredExports(): Record<Entry, string[]> {
  const paths = Object.values(ENTRY_POINTS).map((path) => join(root, path));
  const program = ts.createProgram(paths, { strict: true, lib: ['lib.es2022.d.ts'], types: ['node'], module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext });
  const checker = program.getTypeChecker();
  const names = (path: string) => checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(join(root, path))!)!).map((symbol) => symbol.name);
  return { nesterov: names(ENTRY_POINTS.nesterov), 'nesterov/node': names(ENTRY_POINTS['nesterov/node']) };
}

// --- The names the docs document ---------------------------------------------------

/**
 * Words in docs/api.md that read like names but are not ours to export: fields of
 * the saved state record, an npm package. (snake_case words, other libraries' names,
 * are skipped by their form: this package's names are camelCase.)
 */
const NOT_EXPORTS = new Set(['format', 'version', 'assemblyscript']);
const KEYWORDS = new Set(['await', 'const', 'let', 'new', 'return', 'typeof', 'import', 'from', 'true', 'false', 'null', 'undefined', 'function', 'if', 'for']);
const IDENTIFIER = /^[A-Za-z$][A-Za-z0-9$]*$/;

interface Documented {
  /** From the import statements of the README and docs/: the module each name is imported from. */
  imported: { name: string; from: Entry; typeOnly: boolean }[];
  /** From docs/api.md: names, and whether their sentence says they come from nesterov/node. */
  api: { name: string; node: boolean; called: boolean }[];
}

function documentedNames(text: string, section: string): Documented {
  const imported: Documented['imported'] = [];
  for (const [, typeImport, list, from] of text.matchAll(/import\s+(type\s+)?\{([^}]*)\}\s*from\s*'(nesterov(?:\/node)?)'/g)) {
    for (const part of list!.split(',')) {
      const spec = part.trim();
      if (spec === '') continue;
      const typeOnly = typeImport !== undefined || spec.startsWith('type ');
      imported.push({ name: spec.replace(/^type\s+/, '').split(/\s+as\s+/)[0]!, from: from as Entry, typeOnly });
    }
  }

  const api: Documented['api'] = [];
  // Words the docs use as options, properties or arguments, not as exports.
  const code = [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!).concat([...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!));
  const notNames = new Set<string>();
  for (const snippet of code) {
    for (const [, word] of snippet.matchAll(/\.\s*([A-Za-z_$][\w$]*)/g)) notNames.add(word!);
    for (const [, word] of snippet.matchAll(/([A-Za-z_$][\w$]*)\??\s*:/g)) notNames.add(word!);
    for (const [, args] of snippet.matchAll(/\(([^()]*)\)/g)) for (const [word] of args!.matchAll(/[A-Za-z_$][\w$]*/g)) notNames.add(word);
  }
  for (const [, word] of text.matchAll(/^\| `([^`]+)` \|/gm)) notNames.add(word!);

  const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const prose = section.replace(/```[\s\S]*?```/g, '\n\n');
  const sentences = prose.split(/\n\s*\n|\n- |(?<=[.;])\s+(?=[A-Z(`])/).concat(blocks);
  for (const sentence of sentences) {
    const node = sentence.includes('`nesterov/node`');
    const isBlock = blocks.includes(sentence);
    const snippets = isBlock ? [sentence] : [...sentence.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const calledHere: string[] = [];
    for (const snippet of snippets) {
      // calls and constructions: `name(` not preceded by `.` (a method) or a word
      for (const [, name] of snippet.replace(/\/\/.*$/gm, '').matchAll(/(?<![.\w$])([A-Za-z_$][\w$]*)\(/g)) {
        if (KEYWORDS.has(name!)) continue;
        api.push({ name: name!, node, called: true });
        calledHere.push(name!);
      }
      // a comment listing more of the same kind: `// and SGD, Momentum, ...`
      for (const [, list] of snippet.matchAll(/\/\/\s*and\s+([A-Za-z_$][\w$]*(?:,\s*[A-Za-z_$][\w$]*)+)/g)) {
        for (const name of list!.split(/,\s*/)) api.push({ name, node, called: true });
      }
      if (snippet === '...Sync') for (const name of calledHere) api.push({ name: `${name}Sync`, node, called: true });
      if (!isBlock && IDENTIFIER.test(snippet) && !KEYWORDS.has(snippet) && !(snippet in globalThis) && !notNames.has(snippet) && !NOT_EXPORTS.has(snippet)) {
        api.push({ name: snippet, node, called: false });
      }
    }
  }
  return { imported, api };
}

describe('the built package', () => {
  let declared: Record<Entry, string[]>;
  let runtime: Record<Entry, string[]>;

  before(() => {
    // `npm run build` without its first step, build:wasm: that rewrites
    // src/wasm/kernels.generated.ts, which test files running in parallel are importing
    // (npm test has just run it).
    const { scripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.equal(scripts.build, 'npm run build:wasm && rm -rf dist && tsc -p tsconfig.build.json', 'the build this test repeats');
    rmSync(join(root, 'dist'), { recursive: true, force: true });
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'pipe' });
    declared = declaredExports();
    const listed = userNode(['--input-type=module', '-e', `import * as core from 'nesterov'; import * as node from 'nesterov/node';
      console.log(JSON.stringify({ nesterov: Object.keys(core), 'nesterov/node': Object.keys(node) }));`]);
    assert.equal(listed.status, 0, listed.stderr);
    runtime = JSON.parse(listed.stdout) as Record<Entry, string[]>;
  });

  it('builds ESM with declarations; the core imports no Node module', () => {
    const built = files(join(root, 'dist'));
    assert.ok(built.includes(join(root, 'dist/index.js')) && built.includes(join(root, 'dist/index.d.ts')));
    for (const file of built.filter((f) => f.endsWith('.js') && !f.includes(`${join('dist', 'node')}`))) {
      const source = readFileSync(file, 'utf8');
      assert.doesNotMatch(source, /from ["']node:|require\(/, `${file} is core and must not import Node modules`);
    }
  });

  it('the names that the test reads from the docs include the ones a user meets first', () => {
    // A check of the extraction itself: these are in the imports and in docs/api.md.
    const { imported, api } = documentedNames(allPages, apiPage);
    const names = new Set([...imported.map((i) => i.name), ...api.map((a) => a.name)]);
    for (const name of ['Nesterov', 'AdamW', 'saveState', 'loadStateSync', 'startThreads', 'ParamStore', 'stepDecay', 'warmupCosineDecay', 'zerosLike', 'stateFromJSON', 'UpdateError', 'minimize']) {
      assert.ok(names.has(name), `${name} not found in the docs by the extraction`);
    }
    assert.ok(api.some((a) => a.name === 'startThreads' && a.node), 'startThreads is documented as coming from nesterov/node');
  });

  it('every name the docs document imports through the exports map, from the module it names', () => {
    const { imported, api } = documentedNames(allPages, apiPage);
    const wanted: Record<Entry, Set<string>> = { nesterov: new Set(), 'nesterov/node': new Set() };
    const missing: string[] = [];
    for (const { name, from, typeOnly } of imported) {
      if (!typeOnly) wanted[from].add(name);
      else if (!declared[from].includes(name)) missing.push(`${name} (a type imported from '${from}' in the docs)`);
    }
    for (const { name, node, called } of api) {
      if (runtime.nesterov.includes(name)) wanted.nesterov.add(name);
      else if (node && runtime['nesterov/node'].includes(name)) wanted['nesterov/node'].add(name);
      else if (!called && (declared.nesterov.includes(name) || (node && declared['nesterov/node'].includes(name)))) continue; // a type
      else {
        missing.push(
          `${name} (docs/api.md names it${node ? " beside 'nesterov/node'" : ''}; if it is not meant as an export, add it to NOT_EXPORTS in this test)`,
        );
      }
    }
    assert.deepEqual(missing, [], 'documented but not exported');

    // Named imports, as the docs write them: a missing one is a link error.
    const source = (Object.keys(wanted) as Entry[])
      .map((from, i) => `import { ${[...wanted[from]].join(', ')} } from '${from}'; globalThis.m${i} = { ${[...wanted[from]].join(', ')} };`)
      .join('\n');
    const imported_ = userNode(['--input-type=module', '-e', `${source}\nconsole.log(JSON.stringify([m0, m1].map((m) => Object.entries(m).map(([k, v]) => k + ':' + typeof v))));`]);
    assert.equal(imported_.status, 0, imported_.stderr);
    const [core, node] = JSON.parse(imported_.stdout) as [string[], string[]];
    // Classes and functions, the rule objects (`nesterovRule`, ...) and the registry (`RULES`): never undefined.
    const value = (name: string) => `${name}:${/Rule$/.test(name) || name === 'RULES' ? 'object' : 'function'}`;
    assert.deepEqual(core, [...wanted.nesterov].map(value));
    assert.deepEqual(node, [...wanted['nesterov/node']].map(value));
    assert.ok(wanted['nesterov/node'].has('startThreads') && wanted['nesterov/node'].has('saveStateSync'));
  });

  it('imports and runs from dist/ (not the source): one Nesterov step', () => {
    const out = userNode([
      '--input-type=module',
      '-e',
      `import { Nesterov } from 'nesterov'; import { saveState } from 'nesterov/node';
       const p = { w: new Float32Array([1]) }; new Nesterov({ lr: 0.1 }).update(p, { w: new Float32Array([1]) });
       console.log(p.w[0], typeof saveState, import.meta.resolve('nesterov').slice(-'dist/index.js'.length));`,
    ]);
    assert.equal(out.status, 0, out.stderr);
    // NAG: v = 0.9 * 0 - 0.1 * 1; p += 0.9 v - 0.1 g = 1 - 0.09 - 0.1 (in float32)
    assert.equal(out.stdout.trim(), `${Math.fround(1 - 1.9 * 0.1)} function dist/index.js`);
  });

  it("require('nesterov') and require('nesterov/node') work (Node 20.19+ requires ESM; no top-level await)", () => {
    const out = userNode([
      '-e',
      `const { Nesterov, minimize } = require('nesterov'); const { startThreads, saveState } = require('nesterov/node');
       const p = { w: new Float64Array([1]) }; new Nesterov({ lr: 0.1 }).update(p, { w: new Float64Array([1]) });
       console.log(p.w[0], typeof minimize, typeof startThreads, typeof saveState, require.resolve('nesterov/node').slice(-'dist/node/index.js'.length));`,
    ]);
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stdout.trim(), `${1 - 0.09 - 0.1} function function function dist/node/index.js`);
  });

  for (const resolution of ['NodeNext', 'bundler'] as const) {
    it(`a strict consumer project (lib ES2022, types node, no skipLibCheck, moduleResolution ${resolution}) type-checks the code of the README and docs/ against dist/`, () => {
      const folder = mkdtempSync(join(tmpdir(), 'nesterov-consumer-'));
      writeFileSync(join(folder, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      mkdirSync(join(folder, 'node_modules'));
      symlinkSync(root, join(folder, 'node_modules/nesterov'), 'dir');
      symlinkSync(join(root, 'node_modules/@types'), join(folder, 'node_modules/@types'), 'dir');
      const compilerOptions = {
        strict: true,
        target: 'ES2022',
        lib: ['ES2022'],
        types: ['node'],
        skipLibCheck: false,
        noEmit: true,
        ...(resolution === 'NodeNext' ? { module: 'NodeNext', moduleResolution: 'NodeNext' } : { module: 'ESNext', moduleResolution: 'bundler' }),
      };
      writeFileSync(join(folder, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['*.ts'] }));
      const blocks = runnableBlocks.filter((block) => /from 'nesterov(\/node)?'/.test(block) && !block.includes('@tensorflow'));
      // The TF.js blocks need TF.js installed beside the package: test/readme.test.ts runs them.
      assert.ok(blocks.length >= 12, `${blocks.length} blocks with imports in the README and docs/`);
      blocks.forEach((block, i) => writeFileSync(join(folder, `block-${i}.ts`), block));
      // Every exported name, by its name (values and types): each must resolve.
      writeFileSync(
        join(folder, 'every-name.ts'),
        (Object.keys(ENTRY_POINTS) as Entry[])
          .map((from, i) => `import { ${declared[from].map((name) => `${name} as m${i}_${name}`).join(', ')} } from '${from}';\nvoid [${runtime[from].map((name) => `m${i}_${name}`).join(', ')}];`)
          .join('\n'),
      );
      const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', folder], { cwd: folder, encoding: 'utf8' });
      assert.equal(tsc.stdout + tsc.stderr, '');
      assert.equal(tsc.status, 0);
    });
  }

  it('every dependency with an install script has a decision in allowScripts (npm ci warns otherwise)', () => {
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
    const withScripts = Object.entries(lock.packages)
      .filter(([, entry]) => entry.hasInstallScript === true)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
    const names = [...new Set(withScripts)].sort(); // vite brings a second esbuild: one decision per name
    const { allowScripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
    // core-js's postinstall prints an advertisement; esbuild's checks the binary that its
    // optional dependency @esbuild/<platform> already installed (tsx runs without it).
    assert.deepEqual(names, ['core-js', 'esbuild']);
    assert.deepEqual(allowScripts, { 'core-js': false, esbuild: false });
  });

  it("the wasm build (npm pack's prepack runs it) writes nothing on stdout, so `npm pack --json` stays JSON", () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build-wasm.ts'], { cwd: root, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^wasm kernels: \d+ bytes/m);
  });

  it('packs only what a user needs, with the docs and their images', () => {
    const [pack] = JSON.parse(execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })) as [{ files: { path: string }[] }];
    const paths = pack.files.map((f) => f.path);
    for (const path of paths) {
      assert.match(path, /^(dist\/.*\.(js|d\.ts)|docs\/(report|rates|playground|report-tune)\.png|docs\/[a-z-]+\.md|README(\.ko)?\.md|CHANGELOG\.md|LICENSE|package\.json)$/, `unexpected file in the package: ${path}`);
    }
    // Every image the README and docs/ show, by its path from the package root.
    const images = [...new Set([...pages].flatMap(([file, text]) => [...text.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => normalize(join(dirname(file), m[1]!)))))];
    assert.deepEqual(images.sort(), ['docs/playground.png', 'docs/rates.png', 'docs/report-tune.png', 'docs/report.png']);
    for (const needed of ['dist/index.js', 'dist/index.d.ts', 'dist/node/index.js', 'dist/node/index.d.ts', 'README.md', 'LICENSE', 'CHANGELOG.md', ...pages.keys(), ...images]) {
      assert.ok(paths.includes(needed), `${needed} missing from the package`);
    }
  });
});

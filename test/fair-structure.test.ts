/**
 * The layout issue 14 asks for: the network and its RNG belong to the main job (app/nn/),
 * src/ is the library alone, and the main job's modules import one another without a
 * cycle (checkpoint.ts and train.ts share their types through app/types.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const root = fileURLToPath(new URL('..', import.meta.url));

function tsFiles(folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    return statSync(path).isDirectory() ? tsFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Relative imports of a module (type-only ones included: a cycle of types is still a cycle to read). */
function relativeImports(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.{1,2}\/[^']+)'/gms)].map((m) => resolve(dirname(path), m[1]!));
}

/** Every cycle of the import graph, each as 'a.ts -> b.ts -> a.ts' (relative to app/). */
function cycles(files: string[], base: string): string[] {
  const found = new Set<string>();
  const visit = (path: string, stack: string[]) => {
    const at = stack.indexOf(path);
    if (at >= 0) {
      const loop = stack.slice(at).map((p) => relative(base, p));
      // One name per cycle, whichever module it is entered from.
      const first = loop.indexOf([...loop].sort()[0]!);
      const rotated = [...loop.slice(first), ...loop.slice(0, first)];
      found.add([...rotated, rotated[0]].join(' -> '));
      return;
    }
    if (!existsSync(path)) return;
    for (const next of relativeImports(path)) visit(next, [...stack, path]);
  };
  for (const file of files) visit(file, []);
  return [...found].sort();
}

describe('issue 14: the main job owns its network', () => {
  it('src/ holds no network code; app/nn/ holds the network and the RNG', () => {
    assert.equal(existsSync(join(root, 'src', 'nn')), false);
    assert.deepEqual(readdirSync(join(root, 'app', 'nn')).sort(), ['network.ts', 'rng.ts']);
    const reachingOut = tsFiles(join(root, 'src')).filter((path) => relativeImports(path).some((target) => !target.startsWith(join(root, 'src'))));
    assert.deepEqual(reachingOut, []);
  });

  it('the modules of app/ import one another without a cycle', () => {
    assert.deepEqual(cycles(tsFiles(join(root, 'app')), join(root, 'app')), []);
  });
});

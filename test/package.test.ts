/**
 * The published package: `npm run build` emits ESM with declarations, the exports
 * resolve, the core has no Node import (it runs in a browser), and `npm pack` holds
 * only what a user needs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function files(folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

it('builds, imports through package.json exports, and packs cleanly', { timeout: 120_000 }, async () => {
  execFileSync(npm, ['run', 'build'], { cwd: root, stdio: 'pipe' });
  const built = files(join(root, 'dist'));
  assert.ok(built.includes(join(root, 'dist/index.js')) && built.includes(join(root, 'dist/index.d.ts')));

  for (const file of built.filter((f) => f.endsWith('.js') && !f.includes(`${join('dist', 'node')}`))) {
    const source = readFileSync(file, 'utf8');
    assert.doesNotMatch(source, /from ["']node:|require\(/, `${file} is core and must not import Node modules`);
  }

  // Self-reference: the package's own name resolves through its exports map to dist/.
  const out = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { Nesterov } from 'nesterov'; import { saveState } from 'nesterov/node';
       const p = { w: new Float32Array([1]) }; new Nesterov({ lr: 0.1 }).update(p, { w: new Float32Array([1]) });
       console.log(p.w[0], typeof saveState);`,
    ],
    { cwd: root, encoding: 'utf8' },
  );
  assert.equal(out.trim(), `${Math.fround(1 - 1.9 * 0.1)} function`);

  const [pack] = JSON.parse(execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })) as [
    { files: { path: string }[] },
  ];
  const paths = pack.files.map((f) => f.path);
  for (const path of paths) {
    assert.match(path, /^(dist\/.*\.(js|d\.ts)|README\.md|CHANGELOG\.md|LICENSE|package\.json)$/, `unexpected file in the package: ${path}`);
  }
  for (const needed of ['dist/index.js', 'dist/index.d.ts', 'dist/node/index.js', 'README.md', 'LICENSE', 'CHANGELOG.md']) {
    assert.ok(paths.includes(needed), `${needed} missing from the package`);
  }
});

/**
 * The README's code blocks run as written, importing 'nesterov' and 'nesterov/node'
 * through the package's exports map (in a temp folder whose node_modules/nesterov links
 * to this package, as an install would; the nesterov-source condition points the map at
 * src/, so no build is needed), and print what the README says. The set-up it gives is
 * the two commands that .ci/run runs.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { it } from 'node:test';

const root = fileURLToPath(new URL('..', import.meta.url));
// tsx by absolute URL: the blocks run in a temp folder, outside this package.
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

function runBlock(code: string): string {
  const folder = mkdtempSync(join(tmpdir(), 'nesterov-readme-'));
  mkdirSync(join(folder, 'node_modules'));
  symlinkSync(root, join(folder, 'node_modules/nesterov'), 'dir');
  symlinkSync(join(root, 'node_modules/@tensorflow'), join(folder, 'node_modules/@tensorflow'), 'dir');
  const file = join(folder, 'block.mts');
  writeFileSync(file, code);
  return execFileSync(process.execPath, ['--conditions=nesterov-source', '--import', tsx, file], { cwd: folder, encoding: 'utf8' });
}

it('the blocks import the package by its name, as a user does', () => {
  const imports = blocks.flatMap((block) => [...block.matchAll(/from '([^']+)'/g)].map((m) => m[1]!));
  assert.ok(imports.length >= 5);
  assert.deepEqual([...new Set(imports)].sort(), ['@tensorflow/tfjs', 'nesterov', 'nesterov/node', 'nesterov/tfjs']);
});

it('the quick start prints the NAG point the README promises', () => {
  const quickStart = blocks[0]!;
  const promised = /console\.log\(.*\); \/\/ (.*)$/m.exec(quickStart)![1]!;
  const printed = runBlock(quickStart).trim();
  assert.deepEqual(JSON.parse(printed.replace(/^\[ /, '[').replace(/ \]$/, ']')), JSON.parse(promised.replace(/^\[ /, '[').replace(/ \]$/, ']')));
  // and it is nag.md's third step (-6.446257587, -0.216704)
  assert.ok(Math.abs(JSON.parse(promised.replace(/^\[ /, '[').replace(/ \]$/, ']'))[0] + 6.446257587) < 1e-12);
});

it('the network example runs: AdamW with a schedule, overrides, clipping, save and load', () => {
  assert.equal(runBlock(blocks[1]!), '');
});

it('the ParamStore example runs: one memory, views, one update', () => {
  const block = blocks.find((b) => b.includes('new ParamStore'))!;
  assert.equal(runBlock(block), '');
});

it('the minimize example prints what its comment says', () => {
  const block = blocks.find((b) => b.includes('minimize(') && !b.includes('nesterov/tfjs'))!;
  const promised = /console\.log\(.*\); \/\/ (.*)$/m.exec(block)![1]!;
  assert.equal(runBlock(block).trim(), promised);
});

it('the set-up is two commands, `npm ci && npm start` then `npm test`, and .ci/run runs exactly them', () => {
  const setUp = /^## Install and run\n[\s\S]*?From a [^\n]*\n\n```sh\n([\s\S]*?)```/m.exec(readme)![1]!;
  const commands = setUp
    .split('\n')
    .map((line) => line.replace(/#.*$/, '').trim())
    .filter((line) => line !== '');
  assert.deepEqual(commands, ['npm ci && npm start', 'npm test']);
  const ci = readFileSync(join(root, '.ci/run'), 'utf8')
    .split('\n')
    .filter((line) => /^npm /.test(line))
    .map((line) => line.replace(/ \|\| exit$/, '')); // set -e does not stop inside an && list
  assert.deepEqual(ci, commands);
});

for (const [k, block] of blocks.filter((b) => b.includes("from 'nesterov/tfjs'")).entries()) {
  it(`TensorFlow.js example ${k + 1} prints what its comments say`, { timeout: 120_000 }, () => {
    const promised = [...block.matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)].map((m) => m[1]!);
    assert.ok(promised.length >= 2);
    const printed = runBlock(block).trim().split('\n');
    assert.deepEqual(printed, promised);
  });
}

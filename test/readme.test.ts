/** The README's code blocks run as written (imports pointed at the source) and print what it says. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
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
  const file = join(folder, 'block.mts');
  const source = code
    .replaceAll("from 'nesterov/node'", `from '${join(root, 'src/node/index.ts')}'`)
    .replaceAll("from 'nesterov'", `from '${join(root, 'src/index.ts')}'`);
  writeFileSync(file, source);
  return execFileSync(process.execPath, ['--import', tsx, file], { cwd: folder, encoding: 'utf8' });
}

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
  const block = blocks.find((b) => b.includes('minimize('))!;
  const promised = /console\.log\(.*\); \/\/ (.*)$/m.exec(block)![1]!;
  assert.equal(runBlock(block).trim(), promised);
});

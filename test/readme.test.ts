/**
 * The README, its Korean sibling README.ko.md and the pages under docs/ as a user reads them:
 * - every TypeScript block runs as written, importing 'nesterov', 'nesterov/node' and
 *   'nesterov/tfjs' through the package's exports map (in a temp folder whose
 *   node_modules/nesterov links to this package, as an install would; the
 *   nesterov-source condition points the map at src/, so no build is needed), and each
 *   `console.log(...); // text` prints that text, in order. A block that cannot run
 *   that way says why on the line before it: `<!-- not run: the reason -->`;
 * - the set-up the README gives is the two commands that .ci/run runs;
 * - every rule of the registry has a row in the README's table (by its class name) and
 *   a section in docs/rules.md, and every row is a registered rule;
 * - every relative link and anchor resolves.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { RULES } from 'nesterov';

const root = fileURLToPath(new URL('..', import.meta.url));
// tsx by absolute URL: the blocks run in a temp folder, outside this package.
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

/** The README and every page under docs/, by their path from the package root. */
const pages = new Map<string, string>([
  ['README.md', readFileSync(join(root, 'README.md'), 'utf8')],
  ['README.ko.md', readFileSync(join(root, 'README.ko.md'), 'utf8')],
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name): [string, string] => [`docs/${name}`, readFileSync(join(root, 'docs', name), 'utf8')]),
]);
const readme = pages.get('README.md')!;
const readmeKo = pages.get('README.ko.md')!;

interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  /** Why the block is not run, from `<!-- not run: reason -->` on the line before it. */
  notRun: string | undefined;
}

function tsBlocks(file: string, text: string): Block[] {
  return [...text.matchAll(/^```(?:ts|typescript)\n([\s\S]*?)^```/gm)].map((m) => {
    const before = text.slice(0, m.index).split('\n');
    const previous = before[before.length - 2] ?? '';
    const marker = /^<!--\s*not run:(.*)-->\s*$/.exec(previous);
    return { file, line: before.length, code: m[1]!, notRun: marker === null ? undefined : marker[1]!.trim() };
  });
}

const blocks = [...pages].flatMap(([file, text]) => tsBlocks(file, text));
const readmeBlocks = blocks.filter((b) => b.file === 'README.md');

function runBlock(code: string): string {
  const folder = mkdtempSync(join(tmpdir(), 'nesterov-readme-'));
  mkdirSync(join(folder, 'node_modules'));
  symlinkSync(root, join(folder, 'node_modules/nesterov'), 'dir');
  symlinkSync(join(root, 'node_modules/@tensorflow'), join(folder, 'node_modules/@tensorflow'), 'dir');
  const file = join(folder, 'block.mts');
  writeFileSync(file, code);
  return execFileSync(process.execPath, ['--conditions=nesterov-source', '--import', tsx, file], { cwd: folder, encoding: 'utf8' });
}

/** What a block promises to print: the comment after each `console.log(...);`, in order. */
function promises(block: Block): string[] {
  const lines = block.code.split('\n').filter((line) => /console\.log\(/.test(line));
  return lines.map((line) => {
    const promised = /console\.log\(.*\); \/\/ (.*)$/.exec(line);
    assert.ok(promised, `${block.file}:${block.line}: every console.log says what it prints in a comment after it: ${line.trim()}`);
    return promised[1]!;
  });
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(text: string): Set<string> {
  const withoutCode = text.replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...withoutCode.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1]!)));
}

describe('the code blocks', () => {
  it('are found in the README and in docs/, and import the package by its name, as a user does', () => {
    assert.ok(readmeBlocks.length >= 6, `${readmeBlocks.length} README blocks`);
    assert.ok(blocks.length > readmeBlocks.length, 'docs/ has TypeScript blocks too');
    const imports = readmeBlocks.flatMap((block) => [...block.code.matchAll(/from '([^']+)'/g)].map((m) => m[1]!));
    assert.deepEqual([...new Set(imports)].sort(), ['@tensorflow/tfjs', 'nesterov', 'nesterov/node', 'nesterov/tfjs']);
    for (const block of blocks) {
      for (const [, from] of block.code.matchAll(/from '([^']+)'/g)) {
        assert.match(from!, /^(nesterov(\/node|\/tfjs|\/webgpu)?|@tensorflow\/tfjs|node:\w+)$/, `${block.file}:${block.line} imports '${from}'`);
      }
    }
  });

  it('that do not run say why', () => {
    for (const block of blocks.filter((b) => b.notRun !== undefined)) {
      assert.ok(block.notRun!.length >= 10, `${block.file}:${block.line}: '<!-- not run: ... -->' needs a reason`);
    }
  });

  it("the quick start's promise is NAG's third step, worked by hand in nag.md", () => {
    const quickStart = readmeBlocks[0]!;
    const [promised] = promises(quickStart);
    const point = JSON.parse(promised!.replace(/^\[ /, '[').replace(/ \]$/, ']')) as number[];
    // (-6.446257587, -0.216704), exactly, in float64 up to rounding.
    assert.ok(Math.abs(point[0]! + 6.446257587) < 1e-12 && Math.abs(point[1]! + 0.216704) < 1e-12, promised);
  });

  for (const block of blocks.filter((b) => b.notRun === undefined)) {
    const tfjs = block.code.includes("from 'nesterov/tfjs'");
    it(`${block.file}:${block.line} runs and prints what its comments say`, { timeout: tfjs ? 180_000 : 60_000 }, () => {
      const promised = promises(block);
      const printed = runBlock(block.code);
      assert.deepEqual(printed === '' ? [] : printed.replace(/\n$/, '').split('\n'), promised);
    });
  }
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

it('every relative link in the README and docs/ reaches a file, and its anchor a heading', (t) => {
  const broken: string[] = [];
  for (const [file, text] of pages) {
    const prose = text.replace(/^```[\s\S]*?^```/gm, '');
    for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target!)) continue; // an absolute URL
      const [path, anchor] = target!.split('#') as [string, string | undefined];
      const resolved = path === '' ? file : normalize(join(dirname(file), path));
      if (resolved === 'docs/benchmarks.md' && !existsSync(join(root, resolved))) {
        t.diagnostic('docs/benchmarks.md is written by npm run bench; not there yet');
        continue;
      }
      if (!existsSync(join(root, resolved))) {
        broken.push(`${file}: ${target} (no file ${resolved})`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md') && !anchors(readFileSync(join(root, resolved), 'utf8')).has(anchor)) {
        broken.push(`${file}: ${target} (no heading #${anchor} in ${resolved})`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

/** The cells of each row of the first table after `heading`, by the class name in its first cell. */
function tableAfter(text: string, heading: string): Map<string, string[]> {
  const start = text.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `no heading '${heading}'`);
  const lines = text.slice(start).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  const rows = new Map<string, string[]>();
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim());
    const name = /^\[?`([^`]+)`/.exec(cells[0]!);
    assert.ok(name, `a row whose first cell is not a class name: ${line}`);
    rows.set(name[1]!, cells);
  }
  return rows;
}

describe('every rule of the registry (RULES) is documented', () => {
  const rulesPage = pages.get('docs/rules.md')!;
  const readmeRows = tableAfter(readme, '## The optimizers');
  const sections = anchors(rulesPage);

  for (const entry of RULES) {
    it(`${entry.name}: a row in the README's table, linking to its section in docs/rules.md, with its paper`, () => {
      const row = readmeRows.get(entry.name);
      assert.ok(row, `the README's table under '## The optimizers' has no row for ${entry.name}: add one`);
      assert.ok(rulesPage.includes(`\n## ${entry.name}\n`), `docs/rules.md has no section '## ${entry.name}': add one`);
      assert.ok(sections.has(slug(entry.name)));
      assert.ok(row[0]!.includes(`(docs/rules.md#${slug(entry.name)})`), `the README row of ${entry.name} links to docs/rules.md#${slug(entry.name)}: ${row[0]}`);
      // The paper as the rule names it: "Kingma & Ba (2015), ..." -> Kingma, 2015.
      const [, author, year] = /^([^\s,&(]+)[^(]*\((\d{4})\)/.exec(entry.paper)!;
      assert.ok(row[1]!.includes(author!) && row[1]!.includes(year!), `the README row of ${entry.name} names ${author} ${year} (${entry.paper}): ${row[1]}`);
    });
  }

  it("the README's table and docs/rules.md's table of peers list only registered rules, in the registry's order", () => {
    assert.deepEqual([...readmeRows.keys()], RULES.map((entry) => entry.name));
    const peerRows = tableAfter(rulesPage, '## The same rule elsewhere');
    assert.deepEqual([...peerRows.keys()], RULES.map((entry) => entry.name));
  });

  it("docs/rules.md's table of peers is the registry's: each peer's name, or a dash where it has none, and the weight decay's kind", () => {
    const peerRows = tableAfter(rulesPage, '## The same rule elsewhere');
    const cell = (name: string | undefined) => (name === undefined ? '—' : `\`${name}\``);
    for (const entry of RULES) {
      const { torch, optax, keras, tfjs } = entry.peers;
      assert.deepEqual(peerRows.get(entry.name)!.slice(1), [cell(torch), cell(optax), cell(keras), cell(tfjs), entry.weightDecayKind], entry.name);
    }
  });
});

describe('README.ko.md, for the seed post\'s Korean readers', () => {
  it('is linked from the top of README.md', () => {
    const top = readme.split('\n').slice(0, 6).join('\n');
    assert.match(top, /\]\(README\.ko\.md\)/);
  });

  it('gives the same two commands as the README', () => {
    const commands = (text: string) =>
      /```sh\n(npm ci && npm start[\s\S]*?)```/
        .exec(text)![1]!
        .split('\n')
        .map((line) => line.replace(/#.*$/, '').trim())
        .filter((line) => line !== '');
    assert.deepEqual(commands(readmeKo), commands(readme));
  });

  it("has the book's function table of docs/rules.md, number for number", () => {
    const rows = (text: string) => [...text.matchAll(/^\| (\d) \| (\([^)]*\)) \| (\([^)]*\)) \|$/gm)].map((m) => [m[1], m[2], m[3]]);
    const ours = rows(readmeKo);
    assert.equal(ours.length, 3);
    assert.deepEqual(ours, rows(pages.get('docs/rules.md')!));
  });
});

/**
 * `npm run bench:webgpu` through its process, at a tiny size: it exits 0 and its
 * `--json` file is `{ adapter, rows: [{ rule, size, impl, nsPerElement, gbPerSecond }] }`,
 * one row per rule, size and impl (ours and the bound for every rule, TF.js where it has
 * the rule: Adam and Nesterov), with gbPerSecond the rule's bytes over the time. And a bad
 * flag is refused, naming it, with exit code 2. Skipped, saying so, where
 * /usr/bin/chromium is missing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`;

function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--conditions=nesterov-source', '--import', 'tsx', 'bench/webgpu/run.ts', ...args], { cwd: root, timeout: 240_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

it('bench:webgpu --json at 1000 elements: { adapter, rows } with a row per rule, size and impl', { skip, timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-webgpu-'));
  try {
    const file = join(dir, 'out.json');
    const { code, stdout, stderr } = await bench(['--rules', 'nesterov,adam,lion', '--sizes', '1000,2000', '--rounds', '1', '--json', file]);
    assert.equal(code, 0, stderr);
    const report = JSON.parse(readFileSync(file, 'utf8')) as { adapter: unknown; rows: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(report).sort(), ['adapter', 'rows']);
    assert.equal(typeof report.adapter, 'string');
    assert.match(stdout, new RegExp(`adapter: ${String(report.adapter).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const expected = ['nesterov', 'adam', 'lion'].flatMap((rule) => [1000, 2000].flatMap((size) => (rule === 'lion' ? ['ours', 'bound'] : ['ours', 'bound', 'tfjs']).map((impl) => `${rule} ${size} ${impl}`)));
    assert.deepEqual(report.rows.map((r) => `${String(r.rule)} ${String(r.size)} ${String(r.impl)}`).sort(), expected.sort());
    // Bytes per element from the kernel layouts (4 bytes per array read or written): Nesterov and Lion read p, g and one state array and write p and it; Adam has two state arrays.
    const bytes: Record<string, number> = { nesterov: 20, adam: 28, lion: 20 };
    for (const row of report.rows) {
      assert.deepEqual(Object.keys(row).sort(), ['gbPerSecond', 'impl', 'nsPerElement', 'rule', 'size']);
      const ns = row.nsPerElement as number;
      assert.ok(Number.isFinite(ns) && ns > 0, `${String(row.rule)} ${String(row.impl)}: nsPerElement ${ns}`);
      assert.ok(Math.abs((row.gbPerSecond as number) - bytes[row.rule as string]! / ns) <= 1e-9 * (row.gbPerSecond as number));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('bench:webgpu refuses an unknown rule, a bad --rounds and a bad --non-finite, naming them, exit code 2', { skip, timeout: 60_000 }, async () => {
  const unknown = await bench(['--rules', 'nope']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--rules: unknown rule 'nope'/);
  const rounds = await bench(['--rounds', '0']);
  assert.equal(rounds.code, 2);
  assert.match(rounds.stderr, /--rounds: '0' is not an integer/);
  const policy = await bench(['--non-finite', 'skip']);
  assert.equal(policy.code, 2);
  assert.match(policy.stderr, /--non-finite: 'skip' is not error or ignore/);
});

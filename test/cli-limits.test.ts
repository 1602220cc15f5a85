/**
 * The CLI's refusals at the edges of its flags, through its process: a count too large
 * to run (--seeds 99999999999), a name that is a key of every object but not an
 * optimizer (--optimizers constructor), a --tune search whose rates leave the doubles
 * (--lr sgd=5e-324 searches down to lr/10 = 0). Each is one line on stderr naming the
 * flag and the value, exit code 2 (the CLI's code for a bad flag), no stack trace, and
 * the --out folder is not created.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { OPTIMIZER_NAMES } from '../app/optimizers.ts';

const run = promisify(execFile);
const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
// The list the error gives is the main job's table (this test is about names every object has).
const KNOWN = OPTIMIZER_NAMES.join(', ');

async function start(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Runs the CLI with `args` and a fresh --out; asserts a one-line refusal and no folder; returns the line. */
async function refused(args: string[]): Promise<string> {
  const out = join(mkdtempSync(join(tmpdir(), 'nesterov-limits-')), 'out');
  const result = await start([...args, '--out', out]);
  assert.equal(result.code, 2, result.stderr);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line, no stack trace:\n${result.stderr}`);
  assert.equal(existsSync(out), false, '--out is not created for refused arguments');
  return lines[0]!;
}

describe('npm start: counts too large to run', () => {
  // 99999999999 runs made an array longer than JavaScript allows (RangeError), 1000000
  // overflowed the call stack while listing the runs' checkpoint names.
  for (const seeds of ['99999999999', '1000000', '1001']) {
    it(`--seeds ${seeds}: refused with the range, naming the flag and the value`, async () => {
      const line = await refused(['--optimizers', 'sgd', '--seeds', seeds]);
      assert.equal(line, `error: option '--seeds <n>' argument '${seeds}' is invalid. expected an integer from 1 to 1000, got '${seeds}'`);
    });
  }
  it('--seeds 1000 passes the flag check (the next check, --batch, is what refuses)', async () => {
    const line = await refused(['--optimizers', 'sgd', '--seeds', '1000', '--batch', '9000']);
    assert.equal(line, 'error: --batch: 9000 is larger than the training set (8000 digits)');
  });
  it('--hidden too large for a WebAssembly memory: refused before any worker starts', async () => {
    assert.equal(await refused(['--optimizers', 'sgd', '--hidden', '3000000']), "error: option '--hidden <n>' argument '3000000' is invalid. expected an integer from 1 to 10000, got '3000000'");
  });
  it('--seed beyond 32 bits (it would train as its low 32 bits: 4294967296 as 0)', async () => {
    assert.equal(
      await refused(['--optimizers', 'sgd', '--seed', '4294967296']),
      "error: option '--seed <n>' argument '4294967296' is invalid. expected an integer from 0 to 4294967295 (the generator's seeds are 32-bit), got '4294967296'",
    );
    assert.equal(await refused(['--optimizers', 'sgd', '--seed', '4294967295', '--batch', '9000']), 'error: --batch: 9000 is larger than the training set (8000 digits)');
  });
  it('a count past the integers a double holds exactly is refused, not rounded', async () => {
    assert.equal(
      await refused(['--optimizers', 'sgd', '--epochs', '99999999999999999999']),
      "error: option '--epochs <n>' argument '99999999999999999999' is invalid. expected an integer from 1 to 9007199254740991, got '99999999999999999999'",
    );
  });
  it('--workers: at most 64', async () => {
    assert.equal(await refused(['--optimizers', 'sgd', '--workers', '100000']), "error: option '--workers <n>' argument '100000' is invalid. expected an integer from 1 to 64, got '100000'");
  });
});

describe('npm start: names that are keys of every object are not optimizers', () => {
  for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
    it(`--optimizers ${name}: unknown, with the list of the optimizers`, async () => {
      assert.equal(await refused(['--optimizers', name]), `error: --optimizers: unknown optimizer '${name}' (known: ${KNOWN})`);
      assert.equal(await refused(['--optimizers', `sgd,${name}`]), `error: --optimizers: unknown optimizer '${name}' (known: ${KNOWN})`);
    });
  }
  it('--lr constructor=1: not an optimizer name either', async () => {
    assert.equal(await refused(['--optimizers', 'sgd', '--lr', 'constructor=1']), `error: --lr: expected NAME=VALUE with NAME one of ${KNOWN}, got 'constructor=1'`);
  });
});

describe('npm start: every rate of a --tune search is checked as --lr is', () => {
  it('--lr sgd=0 is refused, and so is a search whose lr/10 rounds to 0 (5e-324 / 10)', async () => {
    assert.equal(await refused(['--optimizers', 'sgd', '--lr', 'sgd=0']), "error: --lr: the learning rate of sgd must be a number > 0, got '0'");
    // 5e-324 is the smallest double: a tenth of it is 0, a third of a decade below it too.
    assert.equal(
      await refused(['--optimizers', 'sgd', '--tune', '--lr', 'sgd=5e-324']),
      'error: --lr: with --tune the search around sgd=5e-324 would train at lr 0 (it tries lr/10 to lr*10; every rate must be a number > 0)',
    );
  });
  it('a search whose lr*10 overflows to Infinity (1e308 * 10) is refused', async () => {
    assert.equal(
      await refused(['--optimizers', 'sgd', '--tune', '--lr', 'sgd=1e308']),
      'error: --lr: with --tune the search around sgd=1e+308 would train at lr Infinity (it tries lr/10 to lr*10; every rate must be a number > 0)',
    );
  });
  it('the refinement half a step beyond the grid is checked too (1.5e307 * 10 is a double, 1.5e307 * 10^(7/6) is not)', async () => {
    const line = await refused(['--optimizers', 'sgd', '--tune', '--lr', 'sgd=1.5e307']);
    assert.equal(line, 'error: --lr: with --tune the search around sgd=1.5e+307 would train at lr Infinity (it tries lr/10 to lr*10; every rate must be a number > 0)');
  });
  it('an ordinary rate passes (the next check, --batch, is what refuses)', async () => {
    assert.equal(await refused(['--optimizers', 'sgd', '--tune', '--lr', 'sgd=0.3', '--batch', '9000']), 'error: --batch: 9000 is larger than the training set (8000 digits)');
  });
});

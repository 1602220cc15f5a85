/**
 * A checkpoint records the run and the digits it belongs to, and --resume refuses one of
 * another run, through the CLI's process (one line naming the file, exit code 2, nothing
 * trained or written).
 *
 * The case that made this necessary: with --seeds 2 --seed 1, run 1 of sgd trains with
 * seed 3 on the split of seed 1. Its checkpoint renamed to sgd.json matches every flag of
 * `--seed 3` (run 0: seed 3), whose split by seed 3 puts some of run 1's training digits
 * in the test set: resuming it would score the network on digits it trained on.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { Rng } from '../app/nn/rng.ts';

const run = promisify(execFile);
const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
const SMALL = ['--optimizers', 'sgd', '--epochs', '1', '--hidden', '8', '--batch', '20', '--workers', '1'];

async function start(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The standard IDX files (big-endian header, then bytes) of `count` random 28 x 28 images and labels. */
function writeIdx(folder: string, prefix: 'train' | 't10k', count: number, rng: Rng): void {
  const header = (magic: number, dims: number[]) => {
    const bytes = Buffer.alloc(4 + 4 * dims.length);
    bytes.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => bytes.writeUInt32BE(d, 4 + 4 * i));
    return bytes;
  };
  const pixels = Buffer.from(Array.from({ length: count * 784 }, () => rng.below(256)));
  const labels = Buffer.from(Array.from({ length: count }, () => rng.below(10)));
  writeFileSync(join(folder, `${prefix}-images-idx3-ubyte`), Buffer.concat([header(0x803, [count, 28, 28]), pixels]));
  writeFileSync(join(folder, `${prefix}-labels-idx1-ubyte`), Buffer.concat([header(0x801, [count]), labels]));
}

/** Asserts a one-line refusal, exit code 2, and that the resumed folder got no summary; returns the line. */
function refusal(result: { code: number; stderr: string }, out: string): string {
  assert.equal(result.code, 2, result.stderr);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, result.stderr);
  assert.ok(!existsSync(join(out, 'summary.json')), 'nothing trained');
  return lines[0]!;
}

describe('--resume refuses a checkpoint of another run', () => {
  it("run 1 of --seeds 2 --seed 1 (seed 3), renamed sgd.json, is refused under --seed 3: it is not run 0's", { timeout: 120_000 }, async () => {
    const first = mkdtempSync(join(tmpdir(), 'nesterov-identity-a-'));
    const made = await start([...SMALL, '--digits', '600', '--seeds', '2', '--seed', '1', '--out', first, '--checkpoint-every', '10']);
    assert.equal(made.code, 0, made.stderr);
    const other = mkdtempSync(join(tmpdir(), 'nesterov-identity-b-'));
    mkdirSync(join(other, 'checkpoints'));
    const path = join(other, 'checkpoints', 'sgd.json');
    copyFileSync(join(first, 'checkpoints', 'sgd.run-1.json'), path);
    const before = readFileSync(path);
    const line = refusal(await start([...SMALL, '--digits', '600', '--seed', '3', '--out', other, '--resume']), other);
    assert.equal(line, `error: --resume: ${path}: the checkpoint of run sgd.run-1, not of sgd (a renamed or copied file; delete it or use another --out)`);
    assert.deepEqual(readFileSync(path), before, 'the checkpoint is left as it was');

    // The same file where it belongs resumes (it is finished: nothing trains again).
    const resumed = await start([...SMALL, '--digits', '600', '--seeds', '2', '--seed', '1', '--out', first, '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
  });

  it('a checkpoint made on other --data digits (same counts, same flags) is refused', { timeout: 120_000 }, async () => {
    const rng = new Rng(11);
    const [dataA, dataB] = [mkdtempSync(join(tmpdir(), 'nesterov-idx-a-')), mkdtempSync(join(tmpdir(), 'nesterov-idx-b-'))];
    for (const folder of [dataA, dataB]) {
      writeIdx(folder, 'train', 100, rng);
      writeIdx(folder, 't10k', 20, rng);
    }
    const first = mkdtempSync(join(tmpdir(), 'nesterov-identity-data-'));
    const made = await start([...SMALL, '--data', dataA, '--out', first, '--checkpoint-every', '2']);
    assert.equal(made.code, 0, made.stderr);
    const other = mkdtempSync(join(tmpdir(), 'nesterov-identity-data-b-'));
    mkdirSync(join(other, 'checkpoints'));
    const path = join(other, 'checkpoints', 'sgd.json');
    copyFileSync(join(first, 'checkpoints', 'sgd.json'), path);
    const line = refusal(await start([...SMALL, '--data', dataB, '--out', other, '--resume']), other);
    assert.equal(
      line,
      `error: --resume: ${path}: made on other digits than this run trains and tests on (another --seed splits the embedded digits otherwise; or other --data or --digits): use the same flags, or another --out`,
    );
    // On its own digits it resumes.
    const resumed = await start([...SMALL, '--data', dataA, '--out', other, '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
  });
});

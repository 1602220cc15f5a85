/**
 * Crash safety of the main job: a run killed with SIGKILL in the middle of training and
 * resumed with --resume ends with the same summary as a run never interrupted (every
 * number but the wall-clock seconds), and bad or foreign checkpoints are refused with
 * one line, exit code 2.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
const run = promisify(execFile);
const ARGS = ['--optimizers', 'nesterov,adam', '--epochs', '2', '--workers', '1', '--seed', '4'];

function summaryWithoutSeconds(out: string): unknown {
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { run?: string; optimizers: Record<string, unknown>[] };
  for (const o of summary.optimizers) delete o.seconds;
  // Each run has its own id (the one its report.html carries too).
  assert.match(summary.run!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  delete summary.run;
  return summary;
}

async function fails(args: string[]): Promise<string> {
  try {
    await run(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8' });
  } catch (error) {
    const e = error as { code: number; stderr: string };
    assert.equal(e.code, 2, e.stderr);
    const lines = e.stderr.trim().split('\n');
    assert.equal(lines.length, 1, e.stderr);
    return lines[0]!;
  }
  assert.fail('the run should have failed');
}

describe('--checkpoint-every and --resume', () => {
  it('a run killed with SIGKILL mid-training and resumed equals an uninterrupted run', { timeout: 180_000 }, async () => {
    const straight = mkdtempSync(join(tmpdir(), 'nesterov-straight-'));
    const killed = mkdtempSync(join(tmpdir(), 'nesterov-killed-'));
    await run(process.execPath, ['--import', 'tsx', main, ...ARGS, '--out', straight]);

    const child = spawn(process.execPath, ['--import', 'tsx', main, ...ARGS, '--out', killed, '--checkpoint-every', '25'], { stdio: 'ignore' });
    const checkpoint = join(killed, 'checkpoints', 'nesterov.json');
    const deadline = Date.now() + 60_000;
    while (!existsSync(checkpoint) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(existsSync(checkpoint), 'a checkpoint was written');
    await new Promise((r) => setTimeout(r, 150)); // somewhere after it, mid-run
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(!existsSync(join(killed, 'summary.json')), 'killed before the end');
    // The body follows the header line that carries its SHA-256.
    const saved = JSON.parse(readFileSync(checkpoint, 'utf8').split('\n')[1]!) as { epoch: number; step: number; finished: boolean };
    assert.equal(saved.finished, false, 'the kill came before nesterov finished');

    await run(process.execPath, ['--import', 'tsx', main, ...ARGS, '--out', killed, '--checkpoint-every', '25', '--resume']);
    assert.deepEqual(summaryWithoutSeconds(killed), summaryWithoutSeconds(straight));
  });

  // Issue 13: the newer optimizers, killed after the first epoch's evaluation (for
  // schedulefree-adamw, the parameters went to x and back to y before that checkpoint;
  // muon's checkpoint holds Muon's and AdamW's states).
  for (const name of ['lion', 'schedulefree-adamw', 'muon']) {
    it(`${name}: killed with SIGKILL in its second epoch and resumed, equals an uninterrupted run`, { timeout: 180_000 }, async () => {
      const args = ['--optimizers', name, '--epochs', '2', '--workers', '1', '--seed', '4'];
      const straight = mkdtempSync(join(tmpdir(), `nesterov-straight-${name}-`));
      const killed = mkdtempSync(join(tmpdir(), `nesterov-killed-${name}-`));
      await run(process.execPath, ['--import', 'tsx', main, ...args, '--out', straight]);

      const child = spawn(process.execPath, ['--import', 'tsx', main, ...args, '--out', killed, '--checkpoint-every', '25'], { stdio: 'ignore' });
      const checkpoint = join(killed, 'checkpoints', `${name}.json`);
      const position = (): { epoch: number; step: number; finished: boolean } | undefined =>
        existsSync(checkpoint) ? (JSON.parse(readFileSync(checkpoint, 'utf8').split('\n')[1]!) as { epoch: number; step: number; finished: boolean }) : undefined;
      const deadline = Date.now() + 120_000;
      // 80 steps an epoch, a checkpoint every 25: the first one of epoch 2 is at its step 20.
      while (!((position()?.epoch ?? 0) >= 1 && (position()?.step ?? 0) > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      assert.ok(!existsSync(join(killed, 'summary.json')), 'killed before the end');
      const saved = position()!;
      assert.equal(saved.epoch, 1, 'killed in the second epoch');
      assert.equal(saved.finished, false);

      await run(process.execPath, ['--import', 'tsx', main, ...args, '--out', killed, '--checkpoint-every', '25', '--resume']);
      assert.deepEqual(summaryWithoutSeconds(killed), summaryWithoutSeconds(straight));
    });
  }

  it('refuses a corrupt checkpoint and one made with other flags, naming the file', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nesterov-bad-ckpt-'));
    await run(process.execPath, ['--import', 'tsx', main, '--optimizers', 'sgd', '--epochs', '1', '--out', out, '--checkpoint-every', '40']);
    const path = join(out, 'checkpoints', 'sgd.json');
    const good = readFileSync(path, 'utf8');
    assert.match(await fails(['--optimizers', 'sgd', '--epochs', '1', '--batch', '50', '--out', out, '--resume']), /^error: --resume: .*sgd\.json: made with batch 100, this run has 50/);
    writeFileSync(path, good.slice(0, 1000));
    assert.match(await fails(['--optimizers', 'sgd', '--epochs', '1', '--out', out, '--resume']), /^error: --resume: .*sgd\.json: corrupt checkpoint/);
    writeFileSync(path, '{"format":"something else"}');
    assert.match(await fails(['--optimizers', 'sgd', '--epochs', '1', '--out', out, '--resume']), /^error: --resume: .*sgd\.json: not a checkpoint of this program/);
    // the report of the earlier good run is still there
    assert.ok(existsSync(join(out, 'report.html')));
  });
});

/**
 * `npm start -- --ema DECAY` through the CLI's process: bad decays are one line naming
 * the flag and the value (exit 2); the EMA leaves training as it was (the same losses and
 * accuracies as without it), decay 0 averages nothing away (its accuracy is the weights'),
 * the report draws a dashed EMA curve per optimizer, and a run killed mid-training resumes
 * from a checkpoint holding the EMA state to the same summary as an uninterrupted run.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
const run = promisify(execFile);
const SMALL = ['--optimizers', 'sgd,muon', '--digits', '600', '--epochs', '2', '--hidden', '8', '--batch', '20', '--workers', '2'];

async function start(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

interface Summary {
  run?: string;
  optimizers: { name: string; trainLoss: number; testAccuracy: number; seconds?: number; ema?: { decay: number; testAccuracy: number; testLoss: number; testAccuracyByEpoch: number[] } }[];
}

const summaryOf = (out: string) => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;

function withoutTimes(summary: Summary): Summary {
  delete summary.run;
  for (const o of summary.optimizers) delete o.seconds;
  return summary;
}

describe('--ema', () => {
  for (const value of ['1.5', 'x', '1', '-0.1', '']) {
    it(`--ema '${value}' is refused: one line naming the flag and the value, exit code 2`, async () => {
      const out = mkdtempSync(join(tmpdir(), 'nesterov-ema-bad-'));
      const result = await start([...SMALL, '--out', out, '--ema', value]);
      assert.equal(result.code, 2, result.stderr);
      assert.equal(result.stderr, `error: option '--ema <decay>' argument '${value}' is invalid. expected a decay in [0, 1), such as 0.999, got '${value}'\n`);
      assert.equal(result.stdout, '');
      assert.ok(!existsSync(join(out, 'summary.json')));
    });
  }

  it('trains as without it, reports the averaged weights beside them, and decay 0 is the weights themselves', { timeout: 180_000 }, async () => {
    const [plain, averaged, zero] = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'nesterov-ema-')));
    const results = await Promise.all([start([...SMALL, '--out', plain!]), start([...SMALL, '--out', averaged!, '--ema', '0.9']), start([...SMALL, '--out', zero!, '--ema', '0'])]);
    for (const result of results) assert.equal(result.code, 0, result.stderr);
    const [a, b, c] = [summaryOf(plain!), summaryOf(averaged!), summaryOf(zero!)];
    for (const [i, o] of b.optimizers.entries()) {
      // The wrapper changes no step, and the swap for the EMA's evaluation puts the weights back bit for bit.
      assert.equal(o.trainLoss, a.optimizers[i]!.trainLoss, o.name);
      assert.equal(o.testAccuracy, a.optimizers[i]!.testAccuracy, o.name);
      assert.equal(a.optimizers[i]!.ema, undefined);
      assert.equal(o.ema!.decay, 0.9);
      assert.equal(o.ema!.testAccuracyByEpoch.length, 2);
      assert.equal(o.ema!.testAccuracyByEpoch[1], o.ema!.testAccuracy);
      assert.ok(o.ema!.testAccuracy >= 0 && o.ema!.testAccuracy <= 1 && o.ema!.testLoss > 0, JSON.stringify(o.ema));
      // Decay 0: the average after each step is that step's weights.
      assert.equal(c.optimizers[i]!.ema!.testAccuracy, o.testAccuracy, `${o.name}, decay 0`);
    }
    // The table prints the EMA's column; the report draws one dashed curve per optimizer, in its colour.
    assert.match(results[1]!.stdout, /^--ema 0\.9: /m);
    assert.match(results[1]!.stdout, /test acc +EMA acc/);
    const html = readFileSync(join(averaged!, 'report.html'), 'utf8');
    const dashed = [...html.matchAll(/<path class="series companion" data-name="([^"]+)"[^>]*stroke-dasharray="5 4"/g)].map((match) => match[1]);
    assert.deepEqual(dashed, ['sgd EMA', 'muon EMA']);
    assert.match(html, /<th>EMA test accuracy<\/th>/);
    assert.match(html, /dashed: EMA 0\.9/);
    assert.doesNotMatch(readFileSync(join(plain!, 'report.html'), 'utf8'), /companion|EMA/);
  });

  it('a run killed mid-training resumes from its checkpoint with the EMA state to the summary of an uninterrupted run', { timeout: 240_000 }, async () => {
    const args = ['--optimizers', 'sgd', '--epochs', '3', '--workers', '1', '--ema', '0.95', '--checkpoint-every', '20'];
    const straight = mkdtempSync(join(tmpdir(), 'nesterov-ema-straight-'));
    const killed = mkdtempSync(join(tmpdir(), 'nesterov-ema-killed-'));
    assert.equal((await start([...args, '--out', straight])).code, 0);
    const child = spawn(process.execPath, ['--import', 'tsx', main, ...args, '--out', killed], { stdio: 'ignore' });
    const checkpoint = join(killed, 'checkpoints', 'sgd.json');
    const deadline = Date.now() + 60_000;
    while (!existsSync(checkpoint) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const saved = JSON.parse(readFileSync(checkpoint, 'utf8').split('\n')[1]!) as { finished: boolean; optimizer: string; ema: { decay: number } };
    assert.equal(saved.finished, false, 'the kill came before sgd finished');
    assert.equal(saved.ema.decay, 0.95);
    assert.match(saved.optimizer, /"wrapper":"EMA"/);
    // Another decay, or none, is another run: refused with one line.
    const other = await start([...args.slice(0, -4), '--ema', '0.9', '--checkpoint-every', '20', '--out', killed, '--resume']);
    assert.equal(other.code, 2);
    assert.equal(other.stderr, `error: --resume: ${checkpoint}: made with ema 0.95, this run has 0.9 (use the same flags, or another --out)\n`);
    const none = await start(['--optimizers', 'sgd', '--epochs', '3', '--workers', '1', '--checkpoint-every', '20', '--out', killed, '--resume']);
    assert.equal(none.stderr, `error: --resume: ${checkpoint}: made with ema 0.95, this run has none (use the same flags, or another --out)\n`);
    const resumed = await start([...args, '--out', killed, '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(withoutTimes(summaryOf(killed)), withoutTimes(summaryOf(straight)));
  });
});

/**
 * A learning rate that is valid but too large (`--lr sgd=1e30`, `--lr lion=1e9`) makes
 * the optimizer's step overflow; the library throws an UpdateError. Through the CLI's
 * process: that run is reported as diverged (the table, summary.json and the report say
 * at which step), the other runs go on, the exit code is 0 and nothing is on stderr; a
 * --tune search scores a diverged rate `validationLoss: null` and chooses among the
 * others; and a run killed or resumed after it diverged resumes to the same summary.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const run = promisify(execFile);
const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
// 600 of the embedded digits (480 train, 120 test), a 784-16-10 network: 24 steps an epoch.
const SMALL = ['--digits', '600', '--hidden', '16', '--batch', '20', '--seed', '5', '--workers', '2'];
const STEPS_PER_EPOCH = 24;

async function start(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

interface Divergence {
  step: number;
  epoch: number;
  message: string;
}
interface RunJson {
  name?: string;
  seed?: number;
  trainLoss: number | null;
  testAccuracy: number | null;
  seconds?: number;
  steps: number;
  diverged?: Divergence;
}
interface GroupJson extends RunJson {
  name: string;
  lr: number;
  runs: RunJson[];
  stats: { testAccuracy: { n: number } | null; trainLoss: { n: number } | null };
  divergedRuns?: number;
  search: { points: { lr: number; validationLoss: number | null; stage: number }[]; chosenLr: number };
}

function summaryOf(out: string): { optimizers: GroupJson[] } {
  return JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { optimizers: GroupJson[] };
}

/** The summary without what a clock decides (seconds) or a fresh id. */
function withoutTimes(out: string): unknown {
  const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { run?: string; optimizers: { seconds?: number; runs?: { seconds?: number }[] }[] };
  delete summary.run;
  for (const o of summary.optimizers) {
    delete o.seconds;
    for (const r of o.runs ?? []) delete r.seconds;
  }
  return summary;
}

/** A diverged run: stopped at `step`, having done the steps before it, within the run. */
function assertDiverged(r: RunJson, optimizerClass: string, epochs: number): Divergence {
  const d = r.diverged!;
  assert.ok(d, `${r.name ?? ''} diverged`);
  assert.equal(r.testAccuracy, null);
  assert.equal(r.trainLoss, null);
  assert.ok(Number.isInteger(d.step) && d.step >= 1 && d.step <= epochs * STEPS_PER_EPOCH, `step ${d.step}`);
  assert.equal(r.steps, d.step - 1, 'the steps before the one that failed');
  assert.equal(d.epoch, Math.floor((d.step - 1) / STEPS_PER_EPOCH) + 1);
  // The library's UpdateError, by the optimizer that threw it.
  assert.match(d.message, new RegExp(`^${optimizerClass}\\.update: `));
  return d;
}

describe('npm start: a learning rate that makes the step overflow', () => {
  it('--lr sgd=1e30 lion=1e9: those runs are reported as diverged, adam trains on; exit 0, nothing on stderr', { timeout: 120_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'nesterov-diverge-'));
    const result = await start(['--optimizers', 'sgd,lion,adam', '--lr', 'sgd=1e30', 'lion=1e9', '--epochs', '2', ...SMALL, '--out', out]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const [sgd, lion, adam] = summaryOf(out).optimizers;
    const stops = [assertDiverged(sgd!, 'SGD', 2), assertDiverged(lion!, 'Lion', 2)];
    assert.equal(adam!.diverged, undefined);
    assert.ok(adam!.testAccuracy! > 0.1 && adam!.testAccuracy! <= 1, `adam trained: ${adam!.testAccuracy}`);
    assert.equal(adam!.steps, 2 * STEPS_PER_EPOCH);
    // The table: "diverged" in the accuracy column, and where, under it.
    assert.match(result.stdout, /^sgd +1e\+30 +- +diverged /m);
    assert.match(result.stdout, /^lion +1000000000 +- +diverged /m);
    assert.match(result.stdout, /^adam +0\.001 +\d\.\d{4} +\d+\.\d\d% /m);
    for (const [name, d] of [['sgd', stops[0]!], ['lion', stops[1]!]] as const) {
      assert.ok(result.stdout.includes(`\n${name} diverged at step ${d.step} of ${2 * STEPS_PER_EPOCH} (epoch ${d.epoch}): ${d.message}\n`), result.stdout);
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.equal((html.match(/<td>diverged at step \d+ of 48 \(epoch \d\): /g) ?? []).length, 2, 'the report\'s table says so too');
  });

  it('--tune: a diverged rate of the search is validationLoss null and not chosen; the search and the runs go on', { timeout: 300_000 }, async () => {
    // Lion moves every weight by lr a step: around 100, the grid's top rates (215, 464, 1000) overflow the network.
    const out = mkdtempSync(join(tmpdir(), 'nesterov-diverge-tune-'));
    const args = ['--optimizers', 'lion,sgd', '--lr', 'lion=100', '--tune', '--tune-epochs', '1', '--epochs', '1', '--seeds', '2', ...SMALL, '--out', out, '--checkpoint-every', '10'];
    const result = await start(args);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    const [lion, sgd] = summaryOf(out).optimizers;
    const points = lion!.search.points;
    assert.equal(points.length, 9);
    const lost = points.filter((p) => p.validationLoss === null);
    const kept = points.filter((p) => p.validationLoss !== null);
    assert.ok(lost.length > 0 && kept.length > 0, JSON.stringify(points));
    assert.ok(lost.some((p) => p.lr === 1000), 'lion at lr 1000 diverges');
    // The choice is the lowest validation loss among the rates that did not diverge.
    const best = kept.reduce((a, b) => (b.validationLoss! < a.validationLoss! ? b : a));
    assert.equal(lion!.search.chosenLr, best.lr);
    assert.equal(lion!.lr, best.lr);
    for (const r of [...lion!.runs, ...sgd!.runs]) assert.equal(typeof r.testAccuracy, 'number');
    assert.ok(result.stdout.includes(`\nlion: the search's rate${lost.length === 1 ? '' : 's'} ${lost.map((p) => p.lr).join(', ')} diverged (not chosen)\n`), result.stdout);

    // The diverged search runs' checkpoints are finished: --resume reads them and ends the same.
    const before = withoutTimes(out);
    const resumed = await start([...args, '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(withoutTimes(out), before);
  });

  it('--seeds 2 with every run diverging: the table says so and the statistics are null; --resume from the diverged checkpoints gives the same summary', { timeout: 120_000 }, async () => {
    const straight = mkdtempSync(join(tmpdir(), 'nesterov-diverge-seeds-'));
    const args = ['--optimizers', 'sgd,adam', '--lr', 'sgd=1e30', '--epochs', '1', '--seeds', '2', ...SMALL];
    const result = await start([...args, '--out', straight]);
    assert.equal(result.code, 0, result.stderr);
    const [sgd, adam] = summaryOf(straight).optimizers;
    assert.equal(sgd!.runs.length, 2);
    for (const r of sgd!.runs) assertDiverged(r, 'SGD', 1);
    assert.equal(sgd!.divergedRuns, 2);
    assert.deepEqual(sgd!.stats, { testAccuracy: null, trainLoss: null });
    assert.equal(sgd!.testAccuracy, null);
    assert.equal(adam!.stats.testAccuracy!.n, 2);
    assert.match(result.stdout, /^sgd +1e\+30 +2 \(2 diverged\) +diverged +- +- +- +- +- /m);
    assert.match(result.stdout, /^sgd run 2 \(seed 7\) diverged at step \d+ of 24 \(epoch 1\): SGD\.update: /m);

    const checkpointed = mkdtempSync(join(tmpdir(), 'nesterov-diverge-seeds-ckpt-'));
    assert.equal((await start([...args, '--out', checkpointed, '--checkpoint-every', '5'])).code, 0);
    const resumed = await start([...args, '--out', checkpointed, '--checkpoint-every', '5', '--resume']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(withoutTimes(checkpointed), withoutTimes(straight));
  });
});

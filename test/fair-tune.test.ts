/**
 * `npm start -- --tune --seeds 2` end to end on a small subset (600 of the embedded
 * digits, a 784-16-10 network): the search's grid and choice, the statistics of the
 * seeds, that the search never reads the test set, and that a search killed with
 * SIGKILL resumes to the same summary.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { IMAGE_SIZE, loadPackageDigits, split, type Digits } from '../app/data.ts';
import { Rng } from '../app/nn/rng.ts';
import { train } from '../app/train.ts';

const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
const run = promisify(execFile);
const ARGS = ['--optimizers', 'sgd,adam', '--digits', '600', '--epochs', '2', '--tune-epochs', '1', '--hidden', '16', '--batch', '20', '--seed', '5', '--workers', '2', '--tune', '--seeds', '2'];

interface StatsJson {
  n: number;
  mean: number;
  std: number | null;
  ci95: [number, number] | null;
}
interface OptimizerJson {
  name: string;
  lr: number;
  trainLoss: number;
  testAccuracy: number;
  seconds?: number;
  steps: number;
  stats: { testAccuracy: StatsJson; trainLoss: StatsJson };
  runs: { seed: number; trainLoss: number; testAccuracy: number; seconds?: number; steps: number }[];
  search: { defaultLr: number; epochs: number; fitDigits: number; validationDigits: number; points: { lr: number; validationLoss: number | null; stage: number }[]; chosenLr: number };
}
interface SummaryJson {
  run?: string;
  seeds: number;
  tuned: boolean;
  optimizers: OptimizerJson[];
}

function readSummary(out: string): SummaryJson {
  return JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as SummaryJson;
}

/** The summary without what a clock decides (seconds) or a fresh id. */
function withoutTimes(summary: SummaryJson): SummaryJson {
  const copy = structuredClone(summary);
  delete copy.run;
  for (const o of copy.optimizers) {
    delete o.seconds;
    for (const r of o.runs) delete r.seconds;
  }
  return copy;
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

describe('npm start -- --tune --seeds 2 on 600 digits', { timeout: 300_000 }, () => {
  const straight = mkdtempSync(join(tmpdir(), 'nesterov-tune-'));
  let summary: SummaryJson;
  before(async () => {
    await run(process.execPath, ['--import', 'tsx', main, ...ARGS, '--out', straight]);
    summary = readSummary(straight);
  });

  it('searches 7 rates from lr/10 to lr*10 a third of a decade apart, then half a step either side of the best', () => {
    assert.equal(summary.tuned, true);
    assert.equal(summary.seeds, 2);
    // 600 digits: 480 train (120 test); the search fits on 384 and validates on the last 96.
    const grids: Record<string, number[]> = { sgd: [0.01, 0.02154, 0.04642, 0.1, 0.2154, 0.4642, 1], adam: [0.0001, 0.0002154, 0.0004642, 0.001, 0.002154, 0.004642, 0.01] };
    for (const o of summary.optimizers) {
      assert.deepEqual([o.search.epochs, o.search.fitDigits, o.search.validationDigits, o.search.defaultLr], [1, 384, 96, o.name === 'sgd' ? 0.1 : 0.001]);
      const first = o.search.points.filter((p) => p.stage === 1);
      assert.deepEqual(first.map((p) => p.lr), grids[o.name]);
      let best = 0;
      first.forEach((p, i) => {
        if (p.validationLoss! < first[best]!.validationLoss!) best = i;
      });
      // 10^(-1/6) = 0.68129, 10^(1/6) = 1.46780 times the best first-stage rate, 4 significant digits
      const around = [first[best]!.lr * 10 ** (-1 / 6), first[best]!.lr * 10 ** (1 / 6)].map((v) => Number(v.toPrecision(4)));
      const second = o.search.points.filter((p) => p.stage === 2).map((p) => p.lr);
      second.forEach((lr, i) => assert.ok(Math.abs(lr - around[i]!) <= 1e-3 * around[i]!, `${o.name}: stage 2 rate ${lr}, expected ${around[i]}`));
      assert.equal(o.search.points.length, 9);
      assert.deepEqual(o.search.points.map((p) => p.lr), [...o.search.points.map((p) => p.lr)].sort((a, b) => a - b), 'points by increasing lr');
    }
  });

  it('chooses the grid point with the lowest validation loss, and trains the seeds at it', () => {
    for (const o of summary.optimizers) {
      const losses = o.search.points.map((p) => p.validationLoss!);
      assert.ok(losses.every((l) => Number.isFinite(l) && l > 0), `${o.name}: ${losses}`);
      const lowest = o.search.points[losses.indexOf(Math.min(...losses))]!.lr;
      assert.equal(o.search.chosenLr, lowest);
      assert.equal(o.lr, lowest);
      assert.deepEqual(o.runs.map((r) => r.seed), [5, 7]);
      assert.deepEqual(o.runs.map((r) => r.steps), [48, 48], '2 epochs of 480 digits / 20');
      assert.notEqual(o.runs[0]!.trainLoss, o.runs[1]!.trainLoss, 'other weights and batches per seed');
    }
  });

  it('reports mean, sample sd and the Student-t 95% CI of the runs, and keeps the old fields as the means', () => {
    for (const o of summary.optimizers) {
      for (const field of ['testAccuracy', 'trainLoss'] as const) {
        const [a, b] = o.runs.map((r) => r[field]) as [number, number];
        const m = (a + b) / 2;
        // n = 2: sd = |a - b| / sqrt(2); half width = t(0.975, 1) sd / sqrt(2) = 12.7062 |a - b| / 2
        const sd = Math.abs(a - b) / Math.SQRT2;
        const half = (12.706205 * Math.abs(a - b)) / 2;
        const s = o.stats[field];
        assert.equal(s.n, 2);
        assert.ok(Math.abs(s.mean - m) < 1e-15, `${field} mean`);
        assert.ok(Math.abs(s.std! - sd) < 1e-12, `${field} sd`);
        assert.ok(Math.abs(s.ci95![0] - (m - half)) < 1e-6 * Math.max(half, 1e-9) + 1e-12, `${field} CI low`);
        assert.ok(Math.abs(s.ci95![1] - (m + half)) < 1e-6 * Math.max(half, 1e-9) + 1e-12, `${field} CI high`);
        assert.equal(o[field], s.mean);
      }
    }
  });

  it('a search run scores on training digits alone: the same validation loss with a test set that throws when read', () => {
    // The digits main.ts trains on: the seeded 8,000 / 2,000 split, then the first 480 training digits.
    const all = split(loadPackageDigits(), 2000, new Rng(5));
    const train480: Digits = { images: all.train.images.slice(0, 480 * IMAGE_SIZE), labels: all.train.labels.slice(0, 480), count: 480 };
    const poisoned = new Proxy({} as Digits, {
      get: (_, property) => {
        throw new Error(`the test set was read (${String(property)})`);
      },
    });
    const sgd = summary.optimizers.find((o) => o.name === 'sgd')!;
    const point = sgd.search.points[0]!;
    const result = train({ optimizer: 'sgd', lr: point.lr, epochs: 1, batch: 20, seed: 5, hidden: [16], validation: 96 }, { train: train480, test: poisoned }, () => undefined);
    assert.equal(result.evalLoss[0], point.validationLoss);
  });

  it('a search killed with SIGKILL and resumed with --resume ends with the same summary', async () => {
    const killed = mkdtempSync(join(tmpdir(), 'nesterov-tune-killed-'));
    const args = [...ARGS, '--out', killed, '--checkpoint-every', '5'];
    const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { stdio: 'ignore' });
    const folder = join(killed, 'checkpoints');
    const deadline = Date.now() + 60_000;
    const saved = () => (existsSync(folder) ? readdirSync(folder).filter((f) => f.endsWith('.json')) : []);
    while (saved().length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.ok(!existsSync(join(killed, 'summary.json')), 'killed before the end');
    const before = saved();
    assert.ok(before.length >= 4 && before.some((f) => f.includes('.search-1-')), `checkpoints at the kill: ${before}`);
    assert.ok(!before.some((f) => f.includes('.tuned-1')), `killed before the last full runs: ${before}`);

    await run(process.execPath, ['--import', 'tsx', main, ...args, '--resume']);
    assert.deepEqual(withoutTimes(readSummary(killed)), withoutTimes(summary));

    // Every checkpoint of the search, full runs included, is checked before anything trains.
    const last = join(folder, 'adam.tuned-1.json');
    const text = readFileSync(last, 'utf8');
    const at = text.indexOf('"losses":[') + 12;
    writeFileSync(last, text.slice(0, at) + (text[at] === '1' ? '2' : '1') + text.slice(at + 1));
    const summaryBytes = readFileSync(join(killed, 'summary.json'));
    assert.match(await fails([...args, '--resume']), /^error: --resume: .*adam\.tuned-1\.json: corrupt checkpoint \(the SHA-256 of its content does not match its header/);
    assert.deepEqual(readFileSync(join(killed, 'summary.json')), summaryBytes, 'summary.json untouched');
  });

  it('refuses a checkpoint of a later stage whose earlier stage is unfinished', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nesterov-tune-stray-'));
    const args = [...ARGS, '--optimizers', 'sgd', '--out', out, '--checkpoint-every', '5'];
    await run(process.execPath, ['--import', 'tsx', main, ...args]);
    // Stage 1 unfinished (its checkpoint gone): the stage-2 rates are unknown.
    const folder = join(out, 'checkpoints');
    unlinkSync(join(folder, 'sgd.search-1-0.json'));
    assert.match(await fails([...args, '--resume']), /^error: --resume: .*sgd\.search-2-0\.json: a checkpoint of a later stage of the search while the stage before it is unfinished/);
  });
});

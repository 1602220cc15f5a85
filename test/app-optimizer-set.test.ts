/**
 * The main job's optimizer set: `npm start` trains the default set (the book's nine, lion,
 * schedulefree-adamw, muon and prodigy), `--optimizers` offers every entry (qhm, adan,
 * qhadam, dadapt-adamw and adafactor too), each trains on the digits to a finite loss and
 * is in the report; `--tune` does not search the learning-rate-free prodigy and
 * dadapt-adamw (they train at lr 1, or --lr's, and the report says so); every offered
 * optimizer has its own colour-and-marker style.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { Network } from '../app/nn/network.ts';
import { Rng } from '../app/nn/rng.ts';
import { DEFAULT_OPTIMIZERS, OPTIMIZER_NAMES, OPTIMIZERS } from '../app/optimizers.ts';
import { colorOf, markerOf } from '../app/report.ts';

const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
const run = promisify(execFile);
/** Small and fast: 320 training digits, a hidden layer of 8, batches of 20. */
const SMALL = ['--digits', '400', '--hidden', '8', '--batch', '20', '--seed', '3', '--workers', '2'];

const NEW = ['prodigy', 'qhm', 'adan', 'qhadam', 'dadapt-adamw', 'adafactor'];
const DEFAULT = ['sgd', 'momentum', 'nesterov', 'nesterov-book', 'adagrad', 'rmsprop', 'adam', 'adamw', 'nadam', 'nadamw', 'lion', 'schedulefree-adamw', 'muon', 'prodigy'];

interface Summary {
  optimizers: { name: string; lr: number; trainLoss: number | null; testAccuracy: number | null; diverged?: unknown; search?: { chosenLr: number }; runs?: { seed: number; trainLoss: number | null }[] }[];
}

describe('the default set and --optimizers', () => {
  it('the default set is the twelve, nadamw and prodigy; --optimizers offers those and qhm, adan, qhadam, dadapt-adamw, adafactor', () => {
    assert.deepEqual(DEFAULT_OPTIMIZERS, DEFAULT);
    assert.deepEqual([...OPTIMIZER_NAMES].sort(), [...DEFAULT, 'qhm', 'adan', 'qhadam', 'dadapt-adamw', 'adafactor'].sort());
  });

  it('npm start without --optimizers trains the default set; --help lists every optimizer', { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'nesterov-default-set-'));
    await run(process.execPath, ['--import', 'tsx', main, ...SMALL, '--digits', '100', '--epochs', '1', '--hidden', '2', '--out', out]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
    assert.deepEqual(summary.optimizers.map((o) => o.name), DEFAULT);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', main, '--help']);
    const help = stdout.replace(/\s+/g, ' ');
    for (const name of OPTIMIZER_NAMES) assert.ok(help.includes(`${name},`) || help.includes(`${name} `), `--help lists ${name}`);
    assert.ok(help.includes(`(default: "${DEFAULT.join(',')}")`), 'the default of --optimizers is the default set');
  });

  it('prodigy, qhm, adan, qhadam, dadapt-adamw and adafactor each train 1 epoch to a finite loss, and the report lists them', { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'nesterov-new-optimizers-'));
    const { stdout } = await run(process.execPath, ['--import', 'tsx', main, '--optimizers', NEW.join(','), '--epochs', '1', ...SMALL, '--out', out]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
    assert.deepEqual(summary.optimizers.map((o) => o.name), NEW);
    for (const o of summary.optimizers) {
      assert.equal(o.diverged, undefined, o.name);
      assert.ok(Number.isFinite(o.trainLoss) && o.trainLoss! > 0, `${o.name}: train loss ${o.trainLoss}`);
      assert.ok(o.testAccuracy !== null && o.testAccuracy >= 0 && o.testAccuracy <= 1, o.name);
      assert.match(stdout, new RegExp(`^${o.name} +${OPTIMIZERS[o.name]!.lr} +\\d+\\.\\d{4} +\\d+\\.\\d\\d%`, 'm'), `${o.name}'s row of the table`);
    }
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    const table = html.slice(html.indexOf('<table id="summary">'), html.indexOf('</table>'));
    const rows = [...table.matchAll(/<tr><td>.*?<\/svg>([^<]+)<\/td>/g)].map((m) => m[1]);
    assert.deepEqual(rows, NEW);
    for (const name of NEW) {
      assert.ok(html.includes(`<path class="trajectory"`) && html.includes(`aria-label="${name} on `), `${name}'s panels`);
    }
  });

  it('adafactor factors both weight matrices, their shapes taken from the network\'s ParamStore', () => {
    const net = new Network({ inputSize: 784, hiddenSizes: [100], outputSize: 10 });
    net.initialize(new Rng(1));
    for (const g of Object.values(net.store.grads)) g.fill(0.01);
    const opt = OPTIMIZERS.adafactor!.make(OPTIMIZERS.adafactor!.lr);
    opt.update(net.store.params, net.store.grads);
    const state = opt.stateDict() as { params: Record<string, { scalars: Record<string, number> }> };
    const shape = (name: string) => [state.params[name]!.scalars.rows, state.params[name]!.scalars.cols];
    // Both matrices factored (the paper factors every matrix); a vector keeps its full v.
    assert.deepEqual(shape('W1'), [784, 100]);
    assert.deepEqual(shape('W2'), [100, 10]);
    assert.deepEqual(shape('b1'), [0, 0]);
  });
});

describe('--tune and the learning-rate-free optimizers', () => {
  it('prodigy is not searched and trains at lr 1, dadapt-adamw at --lr\'s rate; sgd beside them is searched; the table and the report say so', { timeout: 300_000 }, async () => {
    const out = mkdtempSync(join(tmpdir(), 'nesterov-tune-free-'));
    const args = ['--optimizers', 'prodigy,sgd,dadapt-adamw', '--lr', 'dadapt-adamw=0.5', '--epochs', '1', '--tune-epochs', '1', '--tune', '--seeds', '2', ...SMALL, '--out', out];
    const { stdout } = await run(process.execPath, ['--import', 'tsx', main, ...args]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
    const byName = Object.fromEntries(summary.optimizers.map((o) => [o.name, o]));
    assert.equal(byName.prodigy!.lr, 1);
    assert.equal(byName['dadapt-adamw']!.lr, 0.5);
    assert.equal(byName.prodigy!.search, undefined);
    assert.equal(byName['dadapt-adamw']!.search, undefined);
    assert.equal(byName.sgd!.search?.chosenLr, byName.sgd!.lr);
    for (const o of summary.optimizers) {
      assert.deepEqual(o.runs!.map((r) => r.seed), [3, 5], o.name);
      assert.ok(o.runs!.every((r) => Number.isFinite(r.trainLoss)), o.name);
    }
    assert.match(stdout, /^prodigy is learning-rate free: its rate is not searched; its runs train at lr 1, /m);
    assert.match(stdout, /^dadapt-adamw is learning-rate free: its rate is not searched; its runs train at lr 0\.5, /m);
    assert.doesNotMatch(stdout, /^sgd is learning-rate free/m);
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    assert.match(html, /<p id="not-searched">prodigy is learning-rate free[^<]*dadapt-adamw is learning-rate free[^<]*<\/p>/);
    assert.equal(html.match(/<td>not searched \(learning-rate free\)<\/td>/g)?.length, 2);
    // Only sgd's search is drawn.
    assert.deepEqual([...html.matchAll(/<g class="dots" data-name="([^"]+)"/g)].map((m) => m[1]), ['sgd']);
  });
});

describe('report styles', () => {
  it('every offered optimizer has a colour and a marker, and no two share both', () => {
    const styles = OPTIMIZER_NAMES.map((name) => `${colorOf(name)} ${markerOf(name)}`);
    assert.ok(OPTIMIZER_NAMES.every((name) => markerOf(name) !== undefined));
    assert.equal(new Set(styles).size, OPTIMIZER_NAMES.length, styles.join(', '));
  });
});

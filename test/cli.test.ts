/**
 * The main job as a user runs it: bad input (one line, exit 2, nothing destroyed), and a
 * short real run whose summary and report are complete and repeatable.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const run = promisify(execFile);
const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));

async function start(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm start: bad input', () => {
  const folder = mkdtempSync(join(tmpdir(), 'nesterov-cli-'));
  writeFileSync(join(folder, 'train-images-idx3-ubyte'), 'not an idx file');
  writeFileSync(join(folder, 'train-labels-idx1-ubyte'), Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 1, 7]));
  const cases: [string, string[], RegExp][] = [
    ['an unknown optimizer', ['--optimizers', 'nesterov,sophia'], /^error: --optimizers: unknown optimizer 'sophia' \(known: sgd, momentum, nesterov, nesterov-book, adagrad, rmsprop, adam, adamw, nadam, nadamw, lion, schedulefree-adamw, muon, prodigy, qhm, adan, qhadam, dadapt-adamw, adafactor\)$/],
    ['a non-numeric count', ['--epochs', 'ten'], /^error: option '--epochs <n>' argument 'ten' is invalid\. expected an integer >= 1, got 'ten'$/],
    ['a negative count', ['--batch', '-5'], /^error: .*--batch/],
    ['a zero count', ['--epochs', '0'], /expected an integer >= 1, got '0'/],
    ['a bad learning rate', ['--lr', 'adam=fast'], /^error: --lr: the learning rate of adam must be a number > 0, got 'fast'$/],
    ['an unknown flag', ['--epoch', '3'], /^error: unknown option '--epoch' \(Did you mean --epochs\?\)$/],
    ['a missing data folder', ['--data', join(folder, 'none')], /^error: --data: .*none: no such folder$/],
    ['a file that is not IDX', ['--data', folder], /^error: --data: .*train-images-idx3-ubyte: not an IDX file of unsigned bytes/],
    // The embedded data has 8,000 training digits.
    ['a batch larger than the training set', ['--batch', '10000'], /^error: --batch: 10000 is larger than the training set \(8000 digits\)$/],
    ['an optimizer given twice', ['--optimizers', 'nesterov,adam,nesterov'], /^error: --optimizers: 'nesterov' is given twice \(each optimizer trains once\)$/],
    ['a learning rate for an optimizer not chosen', ['--optimizers', 'sgd,adam', '--lr', 'momentum=0.1'], /^error: --lr: momentum is not among the optimizers of this run \(sgd, adam\), got 'momentum=0\.1'$/],
    ['a learning rate given twice', ['--optimizers', 'sgd', '--lr', 'sgd=0.1', 'sgd=0.2'], /^error: --lr: the learning rate of sgd is given twice$/],
    ['zero seeds', ['--seeds', '0'], /^error: option '--seeds <n>' argument '0' is invalid\. expected an integer from 1 to 1000, got '0'$/],
    ['a fractional seed count', ['--seeds', '2.5', '--tune'], /^error: option '--seeds <n>' argument '2\.5' is invalid\. expected an integer from 1 to 1000, got '2\.5'$/],
    ['zero search epochs', ['--tune', '--tune-epochs', '0'], /^error: option '--tune-epochs <n>' argument '0' is invalid\. expected an integer >= 1, got '0'$/],
    // 8,000 training digits: the search fits on 6,400 and validates on 1,600.
    ['a batch larger than what the search fits on', ['--tune', '--batch', '7000'], /^error: --batch: 7000 is larger than the digits the --tune search trains on \(6400 of 8000; 1600 validate\)$/],
    ['--digits with --data', ['--digits', '100', '--data', folder], /^error: --digits: only with the embedded digits, not with --data$/],
  ];
  for (const [what, args, message] of cases) {
    it(`${what}: one line naming the flag, exit code 2, no stack trace`, async () => {
      const out = join(folder, 'out');
      const result = await start([...args, '--out', out]);
      assert.equal(result.code, 2, result.stderr);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0]!, message);
    });
  }
});

describe('npm start: --help and --version', () => {
  it('--help prints the help once, with the data cap and the exit codes, exit code 0', async () => {
    const result = await start(['--help']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.equal(result.stdout.match(/^Usage: npm start -- \[options\]$/gm)?.length, 1, result.stdout);
    assert.equal(result.stdout.match(/--optimizers <list>/g)?.length, 1);
    // Commander wraps the line: compare with the white space collapsed.
    const help = result.stdout.replace(/\s+/g, ' ');
    // Every optimizer is offered; the default is the default set (not qhm, adan, qhadam, dadapt-adamw, adafactor).
    const defaults = 'sgd, momentum, nesterov, nesterov-book, adagrad, rmsprop, adam, adamw, nadam, nadamw, lion, schedulefree-adamw, muon, prodigy';
    const all = `${defaults}, qhm, adan, qhadam, dadapt-adamw, adafactor`;
    assert.ok(help.includes(`comma-separated, from: ${all} (default: "${defaults.replace(/, /g, ',')}")`), help);
    assert.match(result.stdout, /^muon is Muon for the hidden matrix W1 and AdamW \(lr 0\.001, weight decay 0\.01\) for b1, W2 and b2;$/m);
    assert.match(result.stdout, /^--lr muon=X sets Muon's rate\. schedulefree-adamw is evaluated \(test accuracy and loss\) at x, the$/m);
    assert.match(result.stdout, /--data reads at most 250,000 images \(and labels\) per IDX file/);
    assert.match(result.stdout, /^Exit codes: 0 done; 2 a bad flag, data file, checkpoint or output folder/m);
    assert.match(result.stdout, /^ {2}--seeds <n> {2,}train every optimizer N times/m);
    assert.match(result.stdout, /^ {2}--tune {2,}search each learning rate first/m);
    assert.doesNotMatch(result.stdout, /--digits/, 'a test-only option, hidden');
  });
  it("--version prints package.json's version, exit code 0", async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const result = await start(['--version']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `${version}\n`);
    assert.equal(result.stderr, '');
  });
});

describe('npm start: a short run', () => {
  it('writes summary.json and a report with every plot, the same numbers for the same seed', { timeout: 120_000 }, async () => {
    const outs = [mkdtempSync(join(tmpdir(), 'nesterov-run-')), mkdtempSync(join(tmpdir(), 'nesterov-run-'))];
    const args = ['--optimizers', 'nesterov,nesterov-book,adam', '--epochs', '1', '--seed', '3'];
    const runs = await Promise.all(outs.map((out) => start([...args, '--out', out, '--workers', '1'])));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.match(runs[0]!.stdout, /nesterov-book/);
    const summaries = outs.map((out) => JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { optimizers: { name: string; trainLoss: number; testAccuracy: number; seconds: number; steps: number }[] });
    const [a, b] = summaries;
    assert.deepEqual(a!.optimizers.map((o) => o.name), ['nesterov', 'nesterov-book', 'adam']);
    for (const [i, o] of a!.optimizers.entries()) {
      assert.equal(o.steps, 80); // 8,000 training digits / batch 100
      assert.ok(o.testAccuracy > 0.8 && o.testAccuracy <= 1, `${o.name}: ${o.testAccuracy}`);
      assert.equal(o.trainLoss, b!.optimizers[i]!.trainLoss, 'deterministic loss');
      assert.equal(o.testAccuracy, b!.optimizers[i]!.testAccuracy, 'deterministic accuracy');
    }
    // NAG and the book's variant are different methods: different losses.
    assert.notEqual(a!.optimizers[0]!.trainLoss, a!.optimizers[1]!.trainLoss);
    const html = readFileSync(join(outs[0]!, 'report.html'), 'utf8');
    assert.doesNotMatch(html, /<script|https?:\/\//, 'self-contained');
    assert.equal((html.match(/<path class="series"/g) ?? []).length, 6, 'loss and accuracy lines for 3 optimizers');
    assert.equal((html.match(/<path class="trajectory" d="M/g) ?? []).length, 6, 'a drawn path per optimizer on both surfaces');
    assert.ok((html.match(/<g class="contours"[^>]*><path d="M/g) ?? []).length === 6, 'contour lines under every panel');
  });
});

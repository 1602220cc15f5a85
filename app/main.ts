/**
 * The main job (`npm start`): trains a from-scratch network on real handwritten digits
 * with every optimizer, shows progress, prints a table, and writes OUT/summary.json and
 * OUT/report.html. `npm start -- --help` lists the options.
 */
import { SingleBar, MultiBar, Presets } from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Rng } from './nn/rng.ts';
import { CheckpointError, checkpointPath, dataSha256, loadCheckpoint, type Checkpoint } from './checkpoint.ts';
import { DataError, IMAGE_SIZE, loadIdxFolder, loadPackageDigits, MAX_IDX_ITEMS, split, type Digits } from './data.ts';
import { checkOutputFolder, newRunId, prepareOutputFolder, removeStaleTempFiles, WriteError, writeFilesTogether } from './files.ts';
import { isLang, LANGS, MESSAGES, type Lang, type Messages } from './i18n.ts';
import { DEFAULT_OPTIMIZERS, isOptimizerName, OPTIMIZER_NAMES, OPTIMIZERS } from './optimizers.ts';
import { BOOK_SURFACE, renderReport, ROSENBROCK_SURFACE, trajectory } from './report.ts';
import { mean, stats } from './stats.ts';
import { chooseRate, firstGrid, GRID_STEPS, refinedGrid, runKey, searchKey, searchRates, seedOf, validationCount, type Job } from './tune.ts';
import type { Divergence, RunGroup, SearchPoint, Stats, TrainResult } from './types.ts';

/** A bad flag or file: one line on stderr, exit code 2, nothing on disk touched. */
class UsageError extends Error {}

const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

const HELP_AFTER = `
Exit codes: 0 done; 2 a bad flag, data file, checkpoint or output folder (one line on
stderr, before any training and with nothing on disk changed), or a write that failed
during the run (full disk, permissions; the last good files stay).
--data reads at most ${MAX_IDX_ITEMS.toLocaleString('en-US')} images (and labels) per IDX file; gzip files are
decompressed only up to the size their header declares.
--resume checks every checkpoint (SHA-256, every field, and that it is this run's, on these digits)
before any training starts.
A run whose optimizer step overflows (too large an lr) stops there and is reported as diverged,
with the step; the other runs go on, and --tune chooses among the rates that did not diverge.
muon is Muon for the hidden matrix W1 and AdamW (lr 0.001, weight decay 0.01) for b1, W2 and b2;
--lr muon=X sets Muon's rate. schedulefree-adamw is evaluated (test accuracy and loss) at x, the
average its eval() gives; it trains and is checkpointed at y.
--seeds N: run k (0 to N-1) of every optimizer uses seed SEED + 2k (weights) and SEED + 2k + 1 (batch
order); the data split stays that of --seed. The table gives the mean, the sample standard deviation
and the 95% confidence interval of the mean (Student t, N-1 degrees of freedom).
--tune: per optimizer, ${GRID_STEPS.length} rates from lr/10 to lr*10 (lr: the default or --lr's), then 2 half a
step either side of the best, each trained --tune-epochs epochs on the first 4/5 of the training digits and
scored by its loss on the last 1/5 (never the test set); then --seeds runs (default 5) at the rate with
the lowest validation loss. With --checkpoint-every or --resume every run of the search has its
checkpoint, so --resume continues a killed search. The learning-rate-free optimizers (${OPTIMIZER_NAMES.filter((n) => OPTIMIZERS[n]!.learningRateFree).join(', ')})
learn their step size: their rate is not searched, their runs train at lr 1 (or --lr's) beside the tuned ones.
--ema DECAY: every run steps the library's EMA wrapper around its optimizer (avg <- DECAY avg + (1 - DECAY) w
after every step; the training itself is unchanged) and tests the averaged weights after every epoch beside
the weights: an EMA column, dashed curves, an "ema" entry in summary.json; checkpoints hold the averages. The
average lags the weights by about 1/(1 - DECAY) steps (1000 at 0.999; the default run takes 800). For
schedulefree-adamw it averages y, the weights it steps. --tune still scores the weights themselves.
--lang ko: the printed lines and the report in Korean, with the same numbers; error messages stay English.`;

/**
 * A parser of a whole-number flag in [min, max]. Every count has a ceiling: the
 * default, the largest integer a double holds exactly (a longer digit string would be
 * read as a rounded number, and a checkpoint could not record it); flags that size an
 * allocation or a number of runs have their own, lower one.
 */
function count(flag: string, min: number, max = Number.MAX_SAFE_INTEGER, why = '') {
  return (value: string): number => {
    const above = /^\d+$/.test(value) && Number(value) > max;
    const range = max === Number.MAX_SAFE_INTEGER && !above ? `>= ${min}` : `from ${min} to ${max}${why}`;
    if (!/^\d+$/.test(value) || Number(value) < min || above) throw new InvalidArgumentError(`expected an integer ${range}, got '${value}'`);
    return Number(value);
  };
}

/**
 * --ema's decay: a number in [0, 1). The library's EMA takes 1 too, but an average with
 * decay 1 never leaves the weights of the first step: nothing to compare.
 */
function emaDecay(value: string): number {
  const decay = Number(value);
  if (value.trim() === '' || !Number.isFinite(decay) || decay < 0 || decay >= 1) throw new InvalidArgumentError(`expected a decay in [0, 1), such as 0.999, got '${value}'`);
  return decay;
}

/** --lang: one of the report's languages. */
function language(value: string): Lang {
  if (!isLang(value)) throw new InvalidArgumentError(`expected one of ${LANGS.join(', ')}, got '${value}'`);
  return value;
}

/** A learning rate the optimizers can train at: --lr's values, and every rate a --tune search tries. */
function isRate(value: number): boolean {
  return Number.isFinite(value) && value > 0;
}

/**
 * The most runs per optimizer --seeds asks for. The 95% interval narrows as 1/sqrt(N):
 * at 1000 runs it is 0.06 standard deviations wide either side, and 12 optimizers x
 * 1000 runs of the default are days of training on two cores.
 */
const MAX_SEEDS = 1000;
/** The generator takes 32-bit seeds: a larger --seed would train as its low 32 bits. */
const MAX_SEED = 0xffffffff;
/**
 * The most hidden units: 10,000 is 100 times the default (7.9 M weights). Each worker
 * holds the network's weights, gradients and optimizer state in one WebAssembly memory
 * (at most 4 GiB); far larger layers do not fit it.
 */
const MAX_HIDDEN = 10_000;
/** The most worker threads: each holds its own copy of the embedded digits (31 MB). */
const MAX_WORKERS = 64;

function parseArgs(argv: string[]) {
  const program = new Command()
    .name('npm start --')
    .description('Train a 784-100-10 network on real MNIST digits with every optimizer; write a report with plots.')
    .option('--optimizers <list>', `comma-separated, from: ${OPTIMIZER_NAMES.join(', ')}`, DEFAULT_OPTIMIZERS.join(','))
    .option('--epochs <n>', 'passes over the training digits', count('--epochs', 1), 10)
    .option('--batch <n>', 'mini-batch size', count('--batch', 1), 100)
    .option('--lr <name=value...>', 'learning-rate override, e.g. --lr adam=0.002 sgd=0.2', [])
    .option('--seed <n>', 'seed of the initial weights, the data split and the batch order', count('--seed', 0, MAX_SEED, " (the generator's seeds are 32-bit)"), 1)
    .option('--data <dir>', 'a folder with the standard MNIST IDX files (train-*, t10k-*, plain or .gz) instead of the embedded 10,000 digits')
    .option('--out <dir>', 'where summary.json and report.html go', 'out')
    .option('--workers <n>', 'worker threads (one optimizer each at a time)', count('--workers', 1, MAX_WORKERS), Math.max(1, Math.min(2, cpus().length)))
    .option('--hidden <n>', 'hidden units', count('--hidden', 1, MAX_HIDDEN), 100)
    .option('--checkpoint-every <steps>', 'save a checkpoint of every run each STEPS steps and after every epoch (OUT/checkpoints)', count('--checkpoint-every', 1))
    .option('--resume', 'continue each run from its checkpoint in OUT/checkpoints (bit for bit), or start it if it has none', false)
    .option('--seeds <n>', `train every optimizer N times (seeds SEED, SEED+2, ...: other initial weights and batch orders) and report mean, sd and 95% CI (default 1, 5 with --tune; at most ${MAX_SEEDS})`, count('--seeds', 1, MAX_SEEDS))
    .option('--tune', 'search each learning rate first: 9 rates from lr/10 to lr*10 on a validation split of the training digits, then --seeds runs at the best (the learning-rate-free optimizers are not searched)', false)
    .option('--tune-epochs <n>', 'epochs of each run of the --tune search', count('--tune-epochs', 1), 3)
    .option('--ema <decay>', "also keep every run's exponential moving average of the weights (the library's EMA, decay in [0, 1), e.g. 0.999) and test it after every epoch beside the weights", emaDecay)
    .option('--lang <code>', `the language of the printed lines and the report: ${LANGS.join(', ')}`, language, 'en')
    .addOption(new Option('--digits <n>', 'use only N of the embedded digits (4/5 train, 1/5 test): for quick tests').argParser(count('--digits', 10)).hideHelp())
    .version(VERSION, '--version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .addHelpText('after', HELP_AFTER)
    .exitOverride()
    .configureOutput({ writeErr: () => undefined });
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has printed the help or the version already.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') process.exit(0);
      throw new UsageError(error.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' '));
    }
    throw error;
  }
  const options = program.opts<{
    optimizers: string;
    epochs: number;
    batch: number;
    lr: string[];
    seed: number;
    data?: string;
    out: string;
    workers: number;
    hidden: number;
    checkpointEvery?: number;
    resume: boolean;
    seeds?: number;
    tune: boolean;
    tuneEpochs: number;
    ema?: number;
    lang: Lang;
    digits?: number;
  }>();
  const names = options.optimizers.split(',').map((s) => s.trim()).filter(Boolean);
  // Own names only: 'constructor' or '__proto__' are keys of every object, not optimizers.
  for (const name of names) {
    if (!isOptimizerName(name)) throw new UsageError(`--optimizers: unknown optimizer '${name}' (known: ${OPTIMIZER_NAMES.join(', ')})`);
  }
  if (names.length === 0) throw new UsageError('--optimizers: no optimizer given');
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) throw new UsageError(`--optimizers: '${twice}' is given twice (each optimizer trains once)`);
  const lrs = new Map<string, number>();
  for (const item of options.lr) {
    const match = /^([a-z-]+)=(.+)$/.exec(item);
    if (!match || !isOptimizerName(match[1]!)) throw new UsageError(`--lr: expected NAME=VALUE with NAME one of ${OPTIMIZER_NAMES.join(', ')}, got '${item}'`);
    const name = match[1]!;
    const value = Number(match[2]);
    if (!isRate(value)) throw new UsageError(`--lr: the learning rate of ${name} must be a number > 0, got '${match[2]}'`);
    if (!names.includes(name)) throw new UsageError(`--lr: ${name} is not among the optimizers of this run (${names.join(', ')}), got '${item}'`);
    if (lrs.has(name)) throw new UsageError(`--lr: the learning rate of ${name} is given twice`);
    lrs.set(name, value);
  }
  if (options.tune) {
    // The search trains at rates from lr/10 to lr*10 (rounded to 4 digits): each must be a rate as --lr's is.
    for (const name of names.filter((n) => !OPTIMIZERS[n]!.learningRateFree)) {
      const center = lrs.get(name) ?? OPTIMIZERS[name]!.lr;
      const bad = searchRates(center).find((rate) => !isRate(rate));
      if (bad !== undefined) {
        throw new UsageError(`--lr: with --tune the search around ${name}=${center} would train at lr ${bad} (it tries lr/10 to lr*10; every rate must be a number > 0)`);
      }
    }
  }
  return { ...options, names, lrs };
}

/** The first `count` rows of `digits` (a copy: a worker gets it by structured clone). */
function firstRows(digits: Digits, count: number): Digits {
  return { images: digits.images.slice(0, count * IMAGE_SIZE), labels: digits.labels.slice(0, count), count };
}

async function loadData(options: { data?: string; seed: number; digits?: number }, m: Messages): Promise<{ train: Digits; test: Digits; source: string }> {
  if (options.data !== undefined && options.digits !== undefined) throw new UsageError('--digits: only with the embedded digits, not with --data');
  if (options.data !== undefined) {
    try {
      return await loadIdxFolder(resolve(options.data));
    } catch (error) {
      if (error instanceof DataError) throw new UsageError(`--data: ${error.message}`);
      throw error;
    }
  }
  const { train, test } = split(loadPackageDigits(), 2000, new Rng(options.seed));
  if (options.digits !== undefined) {
    const trainCount = Math.min(train.count, options.digits - Math.floor(options.digits / 5));
    const testCount = Math.min(test.count, Math.floor(options.digits / 5));
    return { train: firstRows(train, trainCount), test: firstRows(test, testCount), source: m.dataDigits({ train: trainCount, test: testCount, digits: options.digits }) };
  }
  return { train, test, source: m.dataEmbedded };
}

/** The worker module; from source it registers tsx itself (a loader hook does not follow a worker). */
function workerEntry(): URL {
  if (!import.meta.url.endsWith('.ts')) return new URL('./worker.js', import.meta.url);
  const code = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(code)}`);
}

interface JobOptions {
  out: string;
  checkpointEvery: number;
  /** The digits' identity, recorded in every checkpoint. */
  dataSha256: string;
  /** The validated checkpoint each run continues from, by job key. */
  from: Map<string, Checkpoint>;
  /** Remove a run's progress bar when it ends (many runs: the screen holds the running ones). */
  transientBars: boolean;
  /** The words of the progress lines (--lang). */
  messages: Messages;
}

type WorkerMessage = { type: 'progress'; epoch: number; step: number; steps: number; loss: number } | { type: 'done'; result: TrainResult } | { type: 'failed'; message: string; write: boolean };

/**
 * Trains `initial` and whatever `next` adds as runs end, on `workers` threads: each
 * thread takes the next run from the queue, and a run that `next` adds goes to the front
 * (so the full runs a search unlocks start before the remaining short search runs, and
 * the last minutes are short runs on both cores). Returns every result by job key.
 */
async function trainAll(initial: Job[], data: { train: Digits; test: Digits }, workers: number, jobOptions: JobOptions, next: (job: Job, result: TrainResult) => Job[] = () => []): Promise<Map<string, TrainResult>> {
  const tty = process.stdout.isTTY === true;
  const multi = tty ? new MultiBar({ format: jobOptions.messages.progressBar, hideCursor: true, clearOnComplete: false }, Presets.shades_classic) : null;
  const width = Math.max(13, ...initial.map((job) => job.key.length));
  const results = new Map<string, TrainResult>();
  const queue = [...initial];
  let running = 0;
  let waiting: (() => void)[] = [];
  const started = performance.now();
  const runOn = (worker: Worker, current: Job) =>
    new Promise<TrainResult>((resolveResult, reject) => {
      let bar: SingleBar | undefined;
      const onMessage = (message: WorkerMessage) => {
        if (message.type === 'progress') {
          const total = current.config.epochs * message.steps;
          const done = message.epoch * message.steps + message.step;
          if (multi) {
            bar ??= multi.create(total, 0, { name: current.key.padEnd(width), epoch: 1, epochs: current.config.epochs, loss: '-' });
            bar.update(done, { epoch: message.epoch + 1, loss: message.loss.toFixed(4) });
          } else if (message.step === message.steps) {
            const elapsed = ((performance.now() - started) / 1000).toFixed(1);
            process.stdout.write(jobOptions.messages.progressLine({ elapsed, key: current.key, epoch: message.epoch + 1, epochs: current.config.epochs, loss: message.loss.toFixed(4) }));
          }
        } else if (message.type === 'done') {
          worker.off('message', onMessage);
          worker.off('error', reject);
          if (bar && jobOptions.transientBars) multi?.remove(bar);
          resolveResult(message.result);
        } else {
          worker.off('message', onMessage);
          reject(message.write ? new UsageError(message.message) : new Error(message.message));
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      const from = jobOptions.from.get(current.key);
      worker.postMessage({ key: current.key, config: current.config, out: jobOptions.out, checkpointEvery: jobOptions.checkpointEvery, dataSha256: jobOptions.dataSha256, ...(from ? { from } : {}) });
    });
  await Promise.all(
    Array.from({ length: Math.min(workers, initial.length) }, async () => {
      const worker = new Worker(workerEntry(), { workerData: data });
      try {
        for (;;) {
          const job = queue.shift();
          if (job === undefined) {
            if (running === 0) break;
            // Another thread's run may still add runs.
            await new Promise<void>((wake) => waiting.push(wake));
            continue;
          }
          running += 1;
          try {
            const result = await runOn(worker, job);
            results.set(job.key, result);
            queue.unshift(...next(job, result));
          } finally {
            running -= 1;
            const wake = waiting;
            waiting = [];
            for (const w of wake) w();
          }
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  multi?.stop();
  return results;
}

/**
 * The last validation loss of a search run (a result or its finished checkpoint); null
 * when it diverged: stopped by an overflowing step, or ended on a loss that is not finite.
 */
function validationLoss(run: { evalLoss: readonly number[]; diverged?: Divergence }): number | null {
  if (run.diverged !== undefined) return null;
  const last = run.evalLoss[run.evalLoss.length - 1];
  return last !== undefined && Number.isFinite(last) ? last : null;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const m = MESSAGES[options.lang];
  // --ema: every run (the search's too) steps the EMA wrapper; the search scores the weights themselves.
  const ema = options.ema === undefined ? {} : { ema: options.ema };
  const outDir = resolve(options.out);
  const checkpointsDir = join(outDir, 'checkpoints');
  const checkpointing = options.checkpointEvery !== undefined || options.resume;
  const seeds = options.seeds ?? (options.tune ? 5 : 1);
  // The book's comparison (one seed, the default rates) prints and writes what it always did.
  const fair = options.tune || seeds > 1;
  // Everything that can refuse the run is checked before anything is written.
  try {
    checkOutputFolder(outDir);
  } catch (error) {
    if (error instanceof WriteError) throw new UsageError(`--out: ${error.message}`);
    throw error;
  }
  const data = await loadData(options, m);
  if (data.train.count === 0 || data.test.count === 0) {
    throw new UsageError(`--data: the ${data.train.count === 0 ? 'training' : 'test'} set is empty`);
  }
  if (options.batch > data.train.count) {
    throw new UsageError(`--batch: ${options.batch} is larger than the training set (${data.train.count} digits)`);
  }
  const validation = validationCount(data.train.count);
  if (options.tune && (validation === 0 || options.batch > data.train.count - validation)) {
    throw new UsageError(`--batch: ${options.batch} is larger than the digits the --tune search trains on (${data.train.count - validation} of ${data.train.count}; ${validation} validate)`);
  }
  const hidden = [options.hidden];
  const center = (name: string): number => options.lrs.get(name) ?? OPTIMIZERS[name]!.lr;
  const fullRuns = (name: string, lr: number, tuned: boolean): Job[] =>
    Array.from({ length: seeds }, (_, k) => ({
      key: runKey(name, k, tuned),
      config: { optimizer: name, lr, epochs: options.epochs, batch: options.batch, seed: seedOf(options.seed, k), hidden, ...ema },
    }));
  const searchRuns = (name: string, stage: 1 | 2, lrs: number[]): Job[] =>
    lrs.map((lr, i) => ({
      key: searchKey(name, stage, i),
      config: { optimizer: name, lr, epochs: options.tuneEpochs, batch: options.batch, seed: options.seed, hidden, validation, ...ema },
    }));
  const firstStage = (name: string) => searchRuns(name, 1, firstGrid(center(name)));
  // Under --tune, whether `name`'s rate is searched: a learning-rate-free optimizer's is
  // not (its lr multiplies the step size it learns); its runs are untuned runs at center.
  const searched = (name: string): boolean => options.tune && OPTIMIZERS[name]!.learningRateFree !== true;
  const secondStage = (name: string, losses: (number | null)[]) => searchRuns(name, 2, refinedGrid(center(name), losses.map((l) => l ?? NaN)));

  // Every checkpoint the run will continue from, before the first run trains and writes.
  // A search's later stages have rates that follow from the earlier stages' results, so
  // they are known (and checked) once the earlier stages' checkpoints are all finished.
  const from = new Map<string, Checkpoint>();
  const digitsSha256 = checkpointing ? dataSha256(data) : '';
  if (options.resume) {
    const load = (job: Job): Checkpoint | undefined => {
      try {
        const checkpoint = loadCheckpoint(checkpointPath(outDir, job.key), job.config, data.train.count, { runKey: job.key, dataSha256: digitsSha256 });
        if (checkpoint !== undefined) from.set(job.key, checkpoint);
        return checkpoint;
      } catch (error) {
        if (error instanceof CheckpointError) throw new UsageError(`--resume: ${error.message}`);
        throw error;
      }
    };
    const known = new Set<string>();
    const loadAll = (jobs: Job[]) => jobs.map((job) => (known.add(job.key), load(job)));
    for (const name of options.names) {
      if (!searched(name)) {
        loadAll(fullRuns(name, center(name), false));
        continue;
      }
      const first = loadAll(firstStage(name));
      if (!first.every((c) => c?.finished === true)) continue;
      const second = loadAll(secondStage(name, first.map((c) => validationLoss(c!))));
      if (!second.every((c) => c?.finished === true)) continue;
      const points = [...first, ...second].map((c) => ({ lr: c!.config.lr, validationLoss: validationLoss(c!), stage: 1 as const }));
      loadAll(fullRuns(name, chooseRate(points), true));
    }
    if (options.tune) {
      let names: string[] = [];
      try {
        names = readdirSync(checkpointsDir);
      } catch {
        names = [];
      }
      const later = new RegExp(`^(${options.names.map((n) => n.replace(/[-]/g, '\\-')).join('|')})\\.(search-2-\\d+|tuned-\\d+)\\.json$`);
      const stray = names.find((file) => later.test(file) && !known.has(file.slice(0, -'.json'.length)));
      if (stray !== undefined) {
        throw new UsageError(`--resume: ${join(checkpointsDir, stray)}: a checkpoint of a later stage of the search while the stage before it is unfinished; not from this search (delete it or use another --out)`);
      }
    }
  }
  try {
    prepareOutputFolder(outDir);
    if (checkpointing) prepareOutputFolder(checkpointsDir);
    removeStaleTempFiles(outDir, new Set(['summary.json', 'report.html', 'write-probe']));
    const keys = options.names.flatMap((name) => [
      ...Array.from({ length: seeds }, (_, k) => [runKey(name, k, false), runKey(name, k, true)]).flat(),
      ...GRID_STEPS.map((_, i) => searchKey(name, 1, i)),
      searchKey(name, 2, 0),
      searchKey(name, 2, 1),
    ]);
    removeStaleTempFiles(checkpointsDir, new Set([...OPTIMIZER_NAMES.map((name) => `${name}.json`), ...keys.map((key) => `${key}.json`), 'write-probe']));
  } catch (error) {
    if (error instanceof WriteError) throw new UsageError(`--out: ${error.message}`);
    throw error;
  }
  const workers = options.workers;
  process.stdout.write(
    m.training({
      net: [784, ...hidden, 10].join('-'),
      train: data.train.count,
      test: data.test.count,
      epochs: options.epochs,
      batch: options.batch,
      seed: options.seed,
      workers: Math.min(workers, options.tune ? Infinity : options.names.length * seeds),
    }),
  );
  if (options.tune) {
    process.stdout.write(m.tuneLine({ rates: GRID_STEPS.length + 2, grid: GRID_STEPS.length, epochs: options.tuneEpochs, fit: data.train.count - validation, validation, seeds }));
    for (const name of options.names.filter((n) => !searched(n))) process.stdout.write(`${m.notSearched({ name, lr: center(name) })}\n`);
  } else if (fair) {
    process.stdout.write(m.seedsLine({ seeds, first: options.seed, second: seedOf(options.seed, 1) }));
  }
  if (options.ema !== undefined) process.stdout.write(m.emaLine({ decay: options.ema }));
  const started = performance.now();
  const jobOptions: JobOptions = {
    out: outDir,
    checkpointEvery: options.checkpointEvery ?? (options.resume ? Math.floor(data.train.count / options.batch) : 0),
    dataSha256: digitsSha256,
    from,
    transientBars: fair,
    messages: m,
  };
  const searches = new Map<string, SearchPoint[]>();
  const chosen = new Map<string, number>();
  let byKey: Map<string, TrainResult>;
  // The costliest runs first (muon), so that the last minute is not one long run on one core.
  const cost = (name: string): number => OPTIMIZERS[name]!.cost ?? 1;
  if (!options.tune) {
    const jobs = options.names.flatMap((name) => fullRuns(name, center(name), false));
    byKey = await trainAll(jobs.sort((a, b) => cost(b.config.optimizer) - cost(a.config.optimizer)), data, workers, jobOptions);
  } else {
    // The search of an optimizer goes on as its runs end: stage 1 done -> stage 2 -> full runs.
    const pending = new Map<string, Map<string, TrainResult>>();
    const stageOf = (key: string): 1 | 2 | 0 => (key.includes('.search-1-') ? 1 : key.includes('.search-2-') ? 2 : 0);
    const costliestFirst = [...options.names].sort((a, b) => cost(b) - cost(a));
    const initial = costliestFirst.flatMap((name) => (searched(name) ? firstStage(name) : fullRuns(name, center(name), false)));
    byKey = await trainAll(initial, data, workers, jobOptions, (job, result) => {
      const name = job.config.optimizer;
      const stage = stageOf(job.key);
      if (stage === 0) return [];
      const done = pending.get(name) ?? new Map<string, TrainResult>();
      pending.set(name, done);
      done.set(job.key, result);
      const first = firstStage(name).map((j) => done.get(j.key));
      if (stage === 1) {
        if (!first.every((r) => r !== undefined)) return [];
        return secondStage(name, first.map((r) => validationLoss(r!)));
      }
      const second = secondStage(name, first.map((r) => validationLoss(r!))).map((j) => done.get(j.key));
      if (!second.every((r) => r !== undefined)) return [];
      const points: SearchPoint[] = [
        ...first.map((r) => ({ lr: r!.lr, validationLoss: validationLoss(r!), stage: 1 as const })),
        ...second.map((r) => ({ lr: r!.lr, validationLoss: validationLoss(r!), stage: 2 as const })),
      ];
      searches.set(name, points.sort((a, b) => a.lr - b.lr));
      chosen.set(name, chooseRate(points));
      return fullRuns(name, chooseRate(points), true);
    });
  }
  const wall = (performance.now() - started) / 1000;
  const runsOf = (name: string): TrainResult[] => fullRuns(name, chosen.get(name) ?? center(name), searched(name)).map((job) => byKey.get(job.key)!);
  const results = options.names.map((name) => runsOf(name)[0]!);

  const paths = { book: {} as Record<string, [number, number][]>, rosenbrock: {} as Record<string, [number, number][]> };
  for (const name of options.names) {
    paths.book[name] = trajectory(name, BOOK_SURFACE);
    paths.rosenbrock[name] = trajectory(name, ROSENBROCK_SURFACE);
  }
  const lastAccuracy = (r: TrainResult) => r.testAccuracy[r.testAccuracy.length - 1]!;
  const lastEmaAccuracy = (r: TrainResult) => r.ema!.testAccuracy[r.ema!.testAccuracy.length - 1]!;
  // The statistics are over the runs that finished; null when every run diverged.
  const statsOf = (runs: TrainResult[], value: (r: TrainResult) => number): Stats | null => {
    const finished = runs.filter((r) => r.diverged === undefined);
    return finished.length === 0 ? null : stats(finished.map(value));
  };
  const groups: RunGroup[] = options.names.map((name) => {
    const runs = runsOf(name);
    const search = searches.get(name);
    return {
      name,
      lr: runs[0]!.lr,
      runs,
      seeds: runs.map((_, k) => seedOf(options.seed, k)),
      testAccuracy: statsOf(runs, lastAccuracy),
      trainLoss: statsOf(runs, (r) => r.trainLoss),
      ...(options.ema === undefined ? {} : { emaTestAccuracy: statsOf(runs, lastEmaAccuracy) }),
      ...(options.tune && !searched(name) ? { learningRateFree: true } : {}),
      ...(search ? { search: { defaultLr: center(name), epochs: options.tuneEpochs, fitDigits: data.train.count - validation, validationDigits: validation, points: search, chosenLr: chosen.get(name)! } } : {}),
    };
  });

  // Where each diverged run stopped, under the table.
  const totalSteps = options.epochs * Math.floor(data.train.count / options.batch);
  const stopped = (label: string, d: Divergence) => m.stopped({ label, step: d.step, total: totalSteps, epoch: d.epoch, message: d.message });
  let notes = '';
  if (!fair) {
    process.stdout.write(`\n${singleTable(results, m, options.ema !== undefined)}`);
    notes = results.map((r) => (r.diverged ? stopped(r.name, r.diverged) : '')).join('');
    process.stdout.write(`${notes === '' ? '' : `\n${notes}`}\n${m.wallTime({ seconds: wall.toFixed(1) })}`);
  } else {
    for (const g of groups) {
      const points = g.search?.points ?? [];
      const lost = points.filter((p) => p.validationLoss === null).map((p) => p.lr);
      if (lost.length === points.length && lost.length > 0) notes += m.everyRateDiverged({ name: g.name, lr: g.lr });
      else if (lost.length > 0) notes += m.someRatesDiverged({ name: g.name, rates: lost.join(', '), count: lost.length });
      g.runs.forEach((r, k) => {
        if (r.diverged) notes += stopped(m.runLabel({ name: g.name, run: k + 1, seed: g.seeds[k]! }), r.diverged);
      });
    }
    process.stdout.write(`\n${fairTable(groups, m)}${notes === '' ? '' : `\n${notes}`}\n${m.wallTime({ seconds: wall.toFixed(1) })}`);
  }

  // A diverged run has no final accuracy or loss: null, and `diverged` says where it stopped.
  const outcome = (r: TrainResult) => ({
    ...(r.diverged ? { trainLoss: null, testAccuracy: null } : { trainLoss: r.trainLoss, testAccuracy: lastAccuracy(r) }),
    // --ema: the averaged weights' final accuracy and loss, and their curve per epoch.
    ...(r.ema ? { ema: { decay: r.ema.decay, testAccuracy: r.diverged ? null : lastEmaAccuracy(r), testLoss: r.diverged ? null : r.ema.evalLoss[r.ema.evalLoss.length - 1]!, testAccuracyByEpoch: r.ema.testAccuracy } } : {}),
  });
  const run = newRunId();
  const summary = fair
    ? {
        run,
        seeds,
        tuned: options.tune,
        optimizers: groups.map((g) => {
          const diverged = g.runs.filter((r) => r.diverged !== undefined).length;
          return {
            name: g.name,
            trainLoss: g.trainLoss?.mean ?? null,
            testAccuracy: g.testAccuracy?.mean ?? null,
            seconds: mean(g.runs.map((r) => r.seconds)),
            steps: Math.max(...g.runs.map((r) => r.steps)),
            lr: g.lr,
            stats: { testAccuracy: g.testAccuracy, trainLoss: g.trainLoss, ...(g.emaTestAccuracy === undefined ? {} : { emaTestAccuracy: g.emaTestAccuracy }) },
            runs: g.runs.map((r, k) => ({
              seed: g.seeds[k]!,
              ...outcome(r),
              seconds: r.seconds,
              steps: r.steps,
              ...(r.diverged ? { diverged: r.diverged } : {}),
            })),
            ...(diverged > 0 ? { divergedRuns: diverged } : {}),
            ...(g.search ? { search: g.search } : {}),
          };
        }),
      }
    : {
        run,
        optimizers: results.map((r) => ({
          name: r.name,
          ...outcome(r),
          seconds: r.seconds,
          steps: r.steps,
          ...(r.diverged ? { diverged: r.diverged } : {}),
        })),
      };
  const html = renderReport({
    run,
    results,
    paths,
    ...(fair ? { groups } : {}),
    lang: options.lang,
    config: { epochs: options.epochs, batch: options.batch, seed: options.seed, hidden, data: data.source, trainCount: data.train.count, testCount: data.test.count },
  });
  // Both or neither: summary.json, the one scripts read, is renamed last (see writeFilesTogether).
  try {
    writeFilesTogether([
      { path: join(outDir, 'report.html'), data: html },
      { path: join(outDir, 'summary.json'), data: `${JSON.stringify(summary, null, 2)}\n` },
    ]);
  } catch (error) {
    if (error instanceof WriteError) throw new UsageError(error.message);
    throw error;
  }
  process.stdout.write(m.wrote({ summary: join(outDir, 'summary.json'), report: join(outDir, 'report.html') }));
}

/** Columns padded to their widest cell (display width: a Hangul syllable takes two columns); the first left-aligned. */
function columns(header: string[], rows: string[][]): string {
  // Hangul syllables and jamo are East Asian wide: two columns of a terminal.
  const width = (text: string) => text.length + (text.match(/[\u1100-\u115f\u3130-\u318f\uac00-\ud7a3]/g)?.length ?? 0);
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i]!))));
  const pad = (c: string, i: number) => ' '.repeat(widths[i]! - width(c));
  const format = (cells: string[]) => cells.map((c, i) => (i === 0 ? c + pad(c, i) : pad(c, i) + c)).join('  ');
  return `${[format(header), ...rows.map(format)].join('\n')}\n`;
}

/** The table of the book's comparison (one run per optimizer): with --ema, the averaged weights' accuracy beside. */
function singleTable(results: TrainResult[], m: Messages, withEma: boolean): string {
  const h = m.tableHeaders;
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const last = (values: readonly number[]) => values[values.length - 1]!;
  if (!withEma && m === MESSAGES.en) {
    // The English table as it always printed (scripts may read its columns).
    const nameWidth = Math.max(14, ...results.map((r) => r.name.length));
    const header = `${'optimizer'.padEnd(nameWidth)} ${'lr'.padStart(7)} ${'train loss'.padStart(10)} ${'test acc'.padStart(9)} ${'seconds'.padStart(8)} ${'samples/s'.padStart(10)} ${'opt share'.padStart(9)}`;
    const lines = results.map(
      (r) =>
        `${r.name.padEnd(nameWidth)} ${String(r.lr).padStart(7)} ${(r.diverged ? '-' : r.trainLoss.toFixed(4)).padStart(10)} ${(r.diverged ? 'diverged' : pct(last(r.testAccuracy))).padStart(9)} ${r.seconds.toFixed(1).padStart(8)} ${Math.round(r.samplesPerSecond).toString().padStart(10)} ${`${((100 * r.optimizerSeconds) / r.seconds).toFixed(1)}%`.padStart(9)}`,
    );
    return `${header}\n${lines.join('\n')}\n`;
  }
  const header = [h.optimizer, h.lr, h.trainLoss, h.testAcc, ...(withEma ? [h.emaAcc] : []), h.seconds, h.samples, h.optShare];
  const rows = results.map((r) => [
    r.name,
    String(r.lr),
    r.diverged ? '-' : r.trainLoss.toFixed(4),
    r.diverged ? m.diverged : pct(last(r.testAccuracy)),
    ...(withEma ? [r.diverged || !r.ema ? '-' : pct(last(r.ema.testAccuracy))] : []),
    r.seconds.toFixed(1),
    Math.round(r.samplesPerSecond).toString(),
    `${((100 * r.optimizerSeconds) / r.seconds).toFixed(1)}%`,
  ]);
  return columns(header, rows);
}

/** The table of --seeds / --tune: per optimizer the rate, then mean, sd and 95% CI of the test accuracy and the final training loss. */
function fairTable(groups: RunGroup[], m: Messages): string {
  const withEma = groups.some((g) => g.emaTestAccuracy !== undefined);
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const ci = (s: Stats | null, f: (v: number) => string) => (s?.ci95 ? `[${f(s.ci95[0])}, ${f(s.ci95[1])}]` : '-');
  const sd = (s: Stats | null, f: (v: number) => string) => (s === null || s.std === null ? '-' : f(s.std));
  const rows = groups.map((g) => {
    const diverged = g.runs.filter((r) => r.diverged !== undefined).length;
    return [
      g.name,
      String(g.lr),
      diverged === 0 ? String(g.runs.length) : m.runsWithDiverged({ runs: g.runs.length, diverged }),
      g.testAccuracy === null ? m.diverged : pct(g.testAccuracy.mean),
      sd(g.testAccuracy, pct),
      ci(g.testAccuracy, pct),
      ...(withEma ? [g.emaTestAccuracy ? pct(g.emaTestAccuracy.mean) : '-'] : []),
      g.trainLoss === null ? '-' : g.trainLoss.mean.toFixed(4),
      sd(g.trainLoss, (v) => v.toFixed(4)),
      ci(g.trainLoss, (v) => v.toFixed(4)),
      (g.runs.reduce((a, r) => a + r.seconds, 0) / g.runs.length).toFixed(1),
    ];
  });
  const h = m.fairHeaders;
  const header = [h.optimizer, h.lr, h.runs, h.testAcc, h.sd, h.ci, ...(withEma ? [h.emaAcc] : []), h.trainLoss, h.sd, h.ci, h.perRun];
  return columns(header, rows);
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`error: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
});

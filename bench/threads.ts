/**
 * `npm run bench:threads`: where threads start to pay. One checked step (the default
 * nonFinite 'error': the gradient scan, then the step) of one tensor, on one thread and
 * split across every core (`threads: n`, which splits every call whatever its size), at
 * sizes around the crossover. Medians of interleaved samples, so both sides see the same
 * moments of a noisy machine. 'auto' splits from `AUTO_MIN_ELEMENTS` on: this table is
 * what that constant stands on.
 *
 *   npm run bench:threads                     Nesterov and Adam, 2^14 to 2^24 elements
 *   npm run bench:threads -- --rules adam     one rule
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Adam, AUTO_MIN_ELEMENTS, Lion, Nesterov, ParamStore } from 'nesterov';

const { values: args } = parseArgs({ options: { rules: { type: 'string', default: 'nesterov,adam' }, budget: { type: 'string', default: '0.6' } } });
const RULES = { nesterov: () => new Nesterov({ lr: 0.01 }), adam: () => new Adam({ lr: 1e-3 }), lion: () => new Lion({ lr: 1e-4 }) } as const;
const threads = Math.max(2, availableParallelism());
const budget = Number(args.budget);

type Step = () => void;
function make(rule: keyof typeof RULES, n: number, threadCount: number | false): { step: Step; threadsUsed: () => number | undefined } {
  const opt = RULES[rule]();
  const store = new ParamStore({ w: n }, { threads: threadCount, stateBuffers: [opt] });
  const g = store.grads.w;
  for (let i = 0; i < n; i++) g[i] = Math.sin(i) * 1e-3;
  return { step: () => opt.update(store.params, store.grads), threadsUsed: () => opt.threadsUsed };
}

/** Median ns per element of each step, sampled in interleaved rounds. */
function measure(steps: Step[], n: number): number[] {
  const counts = steps.map((step) => {
    for (let i = 0; i < 3; i++) step();
    const t = process.hrtime.bigint();
    step();
    return Math.max(1, Math.floor(0.004 / Math.max(Number(process.hrtime.bigint() - t) / 1e9, 1e-7)));
  });
  const times: number[][] = steps.map(() => []);
  const end = Date.now() + budget * 1000 * steps.length;
  for (let round = 0; round < 9 || (Date.now() < end && round < 61); round++) {
    steps.forEach((step, k) => {
      step();
      const t = process.hrtime.bigint();
      for (let i = 0; i < counts[k]!; i++) step();
      times[k]!.push(Number(process.hrtime.bigint() - t) / counts[k]! / n);
    });
  }
  return times.map((t) => t.sort((a, b) => a - b)[Math.floor(t.length / 2)]!);
}

console.log(`Threads' crossover: one checked step, ns per element (median), one thread against ${threads}; ${availableParallelism()} cores available. 'auto' splits calls of ${AUTO_MIN_ELEMENTS} elements or more.`);
console.log('');
console.log(`| rule | elements | 1 thread | ${threads} threads | speed-up |`);
console.log('|---|---:|---:|---:|---:|');
for (const rule of args.rules.split(',') as (keyof typeof RULES)[]) {
  if (!(rule in RULES)) throw new RangeError(`bench:threads: invalid rule: ${rule} (expected ${Object.keys(RULES).join(', ')})`);
  for (let log2 = 14; log2 <= 24; log2++) {
    const n = 2 ** log2;
    const one = make(rule, n, false);
    const many = make(rule, n, threads);
    // Wait for the workers (the store starts them without waiting).
    for (let i = 0; i < 2000 && many.threadsUsed() !== threads; i++) {
      many.step();
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const [a, b] = measure([one.step, many.step], n) as [number, number];
    console.log(`| ${rule} | 2^${log2} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(a / b).toFixed(2)}x |`);
  }
}

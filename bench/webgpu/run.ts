/**
 * `npm run bench:webgpu`: one optimizer step on WebGPU, in ns per float32 element: ours
 * (GPUOptimizer on a GPUParamStore, nonFinite 'error' as by default: the scan pass and
 * the step), the device's streaming bound for the rule's bytes (a copy kernel reading and
 * writing as many arrays as the rule's kernel layout does, timed in the same rounds) and
 * TF.js's own optimizer on its webgpu backend (tf.train.adam, tf.train.momentum with
 * useNesterov, ... where TF.js has the rule), on the same adapter.
 *
 *   npm run bench:webgpu                       Nesterov, Adam, AdamW and Lion at 1e5 and 1.6e7
 *                                              elements (a few minutes on SwiftShader)
 *   npm run bench:webgpu -- --rules all        every rule with a GPU kernel
 *   npm run bench:webgpu -- --sizes 1e5,1e6    only these sizes
 *   npm run bench:webgpu -- --rounds 9         timed samples per cell (default 5; median)
 *   npm run bench:webgpu -- --json out.json    also write { adapter, rows } as JSON
 *   npm run bench:webgpu -- --no-tfjs          without TF.js
 *   npm run bench:webgpu -- --non-finite ignore  ours without the finiteness scan (the step
 *                                              kernel alone; default error, as users get it)
 *   npm run bench:webgpu -- --chromium PATH    the browser (default /usr/bin/chromium)
 *
 * It runs where the tests do: Chromium headless with WebGPU on SwiftShader (Chromium's
 * CPU implementation of WebGPU; no GPU needed), the page served from 127.0.0.1. The
 * numbers are then those of a CPU emulating a GPU: ratios between the rows (ours over the
 * bound, ours over TF.js) carry more than the absolute times. `--adapter default` lets
 * Chromium pick a hardware adapter instead, where there is one.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { GPU_KERNELS } from 'nesterov/webgpu';
import { parseBenchArgs } from '../rules.ts';
import type { BenchConfig, BenchReport, BenchRow } from './shape.ts';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string' },
    rules: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    json: { type: 'string' },
    'no-tfjs': { type: 'boolean', default: false },
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    adapter: { type: 'string', default: 'swiftshader' },
    'non-finite': { type: 'string', default: 'error' },
  },
});

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

let config: BenchConfig;
try {
  const selected = parseBenchArgs({ sizes: args.sizes, rules: args.rules });
  const all = args.rules === 'all';
  const rules = selected.rules.filter((rule) => GPU_KERNELS[rule.id] !== undefined);
  const missing = selected.rules.filter((rule) => GPU_KERNELS[rule.id] === undefined);
  if (!all && missing.length > 0) fail(`--rules: '${missing[0]!.id}' has no GPU kernel (rules with one: ${Object.keys(GPU_KERNELS).join(', ')})`);
  const rounds = Number(args.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1000) fail(`--rounds: '${args.rounds}' is not an integer from 1 to 1000`);
  if (args.adapter !== 'swiftshader' && args.adapter !== 'default') fail(`--adapter: '${args.adapter}' is not swiftshader or default`);
  const nonFinite = args['non-finite'];
  if (nonFinite !== 'error' && nonFinite !== 'ignore') fail(`--non-finite: '${nonFinite}' is not error or ignore`);
  config = { rules: rules.map((rule) => rule.id), sizes: selected.sizes, rounds, tfjs: !args['no-tfjs'], nonFinite };
} catch (error) {
  fail((error as Error).message);
}

function serve(script: Uint8Array, json: string): Promise<{ server: Server; origin: string }> {
  const server = createServer((request, response) => {
    if (request.url === '/page.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(script);
    } else if (request.url === '/config.json') {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(json);
    } else {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<!doctype html><meta charset="utf-8"><title>nesterov/webgpu bench</title><script type="module" src="/page.js"></script>');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const address = server.address() as { port: number };
    resolve({ server, origin: `http://127.0.0.1:${address.port}` });
  }));
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const bundle = await build({
  entryPoints: [fileURLToPath(new URL('./page.ts', import.meta.url))],
  bundle: true, format: 'esm', platform: 'browser', conditions: ['nesterov-source'], write: false, logLevel: 'warning', absWorkingDir: root,
});
const { server, origin } = await serve(bundle.outputFiles[0]!.contents, JSON.stringify(config));
const browser = await chromium.launch({
  executablePath: args.chromium,
  args: [
    '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu',
    ...(args.adapter === 'swiftshader' ? ['--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader'] : []),
    '--disable-background-networking', '--disable-component-update', '--no-first-run',
  ],
});

const fmt = (x: number, digits = 3): string => (Number.isFinite(x) ? x.toPrecision(digits) : String(x));
const pad = (s: string, n: number): string => s.padEnd(n);

let report: BenchReport;
try {
  const tab = await browser.newPage();
  const errors: string[] = [];
  tab.on('pageerror', (error) => errors.push(error.message));
  const reported = new Promise<string>((resolve) => {
    tab.on('console', (message) => {
      const text = message.text();
      if (text.startsWith('result ')) resolve(text.slice(7));
      else if (text.startsWith('progress ')) {
        for (const row of JSON.parse(text.slice(9)) as BenchRow[]) {
          console.error(`  ${pad(row.rule, 20)} ${pad(String(row.size), 9)} ${pad(row.impl, 6)} ${fmt(row.nsPerElement)} ns/el`);
        }
      }
    });
  });
  await tab.goto(`${origin}/`);
  const result = JSON.parse(await reported) as BenchReport | { failed: string };
  if (errors.length > 0) throw new Error(`the page raised: ${errors.join('; ')}`);
  if ('failed' in result) throw new Error(result.failed);
  report = result;
} finally {
  await browser.close();
  server.close();
}

console.log(`adapter: ${report.adapter}`);
console.log(`ours with nonFinite '${config.nonFinite}'; median of ${config.rounds} samples per cell; ns per element of one step; GB/s of the rule's bytes (its kernel layout's reads and writes)`);
console.log(`${pad('rule', 20)} ${pad('size', 9)} ${pad('ours ns/el', 11)} ${pad('GB/s', 7)} ${pad('bound', 9)} ${pad('GB/s', 7)} ${pad('ours/bound', 11)} ${pad('tfjs', 9)} ours/tfjs`);
for (const id of config.rules) {
  for (const size of config.sizes) {
    const row = (impl: BenchRow['impl']): BenchRow | undefined => report.rows.find((r) => r.rule === id && r.size === size && r.impl === impl);
    const o = row('ours')!;
    const b = row('bound')!;
    const t = row('tfjs');
    console.log(
      `${pad(id, 20)} ${pad(String(size), 9)} ${pad(fmt(o.nsPerElement), 11)} ${pad(fmt(o.gbPerSecond), 7)} ${pad(fmt(b.nsPerElement), 9)} ${pad(fmt(b.gbPerSecond), 7)} ${pad(fmt(o.nsPerElement / b.nsPerElement), 11)} ${pad(t === undefined ? '-' : fmt(t.nsPerElement), 9)} ${t === undefined ? '-' : fmt(o.nsPerElement / t.nsPerElement)}`,
    );
  }
}
if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(report, null, 2)}\n`);

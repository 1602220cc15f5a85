/**
 * Threads in a browser, in Debian's Chromium: the page (test/threads-browser-page.ts,
 * bundled by esbuild, the worker module beside it where `new URL('./browser-thread-worker.js',
 * import.meta.url)` finds it) served from 127.0.0.1 twice:
 * - with `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy:
 *   require-corp` (and a Content-Security-Policy of `default-src 'none'; script-src 'self'
 *   'wasm-unsafe-eval'`), the page is cross-origin isolated and may share memory with workers: a
 *   large float32 store steps on min(navigator.hardwareConcurrency, 8) threads once its
 *   workers are up, every registered rule gives one thread's bits, and a NaN gradient is
 *   refused ('error', naming the parameter and index) or skipped, writing nothing, in the
 *   calling thread's chunk and in a worker's;
 * - without them, one thread, and `threadSupport()` says the page is not isolated.
 * Skipped, saying so, where /usr/bin/chromium is missing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));

interface RuleReport { id: string; backend: string; threadsUsed: number[]; sameParams: boolean; sameState: boolean }
interface NonFiniteReport {
  index: number; mode: 'error' | 'skip'; threadsUsed: number; outcome: unknown; unchanged: boolean; sameState: boolean; sameAsOneThread: boolean;
  error: { message: string; param: string; index: number } | null;
}
interface PageReport {
  failed?: string; isolated: boolean; cores: number; support: string | null;
  large: { threads: number; shared: boolean }; firstThreads: number[]; rules: RuleReport[]; nonFinite: NonFiniteReport[];
}

let server: Server;
let origin = '';
let browser: Browser;

async function bundle(entry: string): Promise<Uint8Array> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', conditions: ['nesterov-source'], write: false, logLevel: 'warning', absWorkingDir: root,
  });
  return result.outputFiles[0]!.contents;
}

/** Opens `/isolated/` or `/plain/` and returns what the page logged. */
async function report(path: string): Promise<PageReport> {
  const tab = await browser.newPage();
  const errors: string[] = [];
  tab.on('pageerror', (error) => errors.push(error.message));
  const reported = new Promise<string>((resolve) => {
    tab.on('console', (message) => {
      if (message.text().startsWith('result ')) resolve(message.text().slice(7));
    });
  });
  await tab.goto(`${origin}${path}`);
  const result = JSON.parse(await reported) as PageReport;
  await tab.close();
  assert.deepEqual(errors, []);
  assert.equal(result.failed, undefined, result.failed);
  return result;
}

function assertOneThreadsBits(page: PageReport): void {
  assert.ok(page.rules.length >= 10, `${page.rules.length} rules ran`);
  for (const rule of page.rules) {
    assert.ok(rule.sameParams, `${rule.id}: params differ from threads: false`);
    assert.ok(rule.sameState, `${rule.id}: state differs from threads: false`);
  }
}

function assertNonFinite(page: PageReport, threads: number): void {
  assert.equal(page.nonFinite.length, 4);
  for (const r of page.nonFinite) {
    const at = `${r.mode}, NaN at index ${r.index}`;
    assert.equal(r.threadsUsed, threads, at);
    assert.ok(r.unchanged, `${at}: params were written`);
    assert.ok(r.sameState, `${at}: state changed`);
    assert.ok(r.sameAsOneThread, `${at}: differs from threads: false`);
    if (r.mode === 'error') {
      assert.deepEqual(r.error, { message: `Nesterov.update: gradient 'W' is not finite at index ${r.index} (NaN)`, param: 'W', index: r.index });
    } else {
      assert.equal(r.error, null);
      assert.equal(r.outcome, false);
    }
  }
}

describe('threads in Chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`, timeout: 300_000 }, () => {
  before(async () => {
    const files: Record<string, Uint8Array> = {
      'page.js': await bundle('./threads-browser-page.ts'),
      'browser-thread-worker.js': await bundle('../src/browser-thread-worker.ts'),
    };
    server = createServer((request, response) => {
      const [, folder = '', file = ''] = /^\/(isolated|plain)\/(.*)$/.exec(request.url ?? '') ?? [];
      if (folder === '') {
        response.writeHead(404).end();
        return;
      }
      // The isolated page also has the strict policy docs/performance.md asks for: no eval, WebAssembly allowed.
      const headers: Record<string, string> = folder === 'isolated'
        ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp', 'content-security-policy': "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'" }
        : {};
      const script = files[file];
      if (script !== undefined) {
        response.writeHead(200, { ...headers, 'content-type': 'text/javascript' }).end(script);
      } else if (file === '') {
        response.writeHead(200, { ...headers, 'content-type': 'text/html' }).end('<!doctype html><meta charset="utf-8"><title>nesterov threads</title><script type="module" src="./page.js"></script>');
      } else {
        response.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
  });
  after(async () => {
    await browser?.close();
    server?.close();
  });

  it('a cross-origin isolated page: a large store steps on min(hardwareConcurrency, 8) threads, with one thread\'s bits and the non-finite contract', async () => {
    const page = await report('/isolated/');
    const threads = Math.min(page.cores, 8);
    assert.equal(page.isolated, true);
    assert.equal(page.support, null);
    assert.deepEqual(page.large, { threads, shared: threads > 1 });
    // The first steps may run on one thread while the workers start; then every one.
    assert.equal(page.firstThreads.at(-1), threads, `the pool of ${threads} threads did not start: ${page.firstThreads.join(' ')}`);
    assert.ok(page.firstThreads.every((n) => n === 1 || n === threads));
    assertOneThreadsBits(page);
    const threaded = page.rules.filter((rule) => rule.backend === 'wasm');
    assert.ok(threaded.length >= 10, `${threaded.length} rules ran on the wasm kernels`);
    for (const rule of threaded) assert.deepEqual(rule.threadsUsed, [threads, threads, threads], rule.id);
    assertNonFinite(page, threads);
  });

  it('a page that is not isolated: one thread, and threadSupport() says why', async () => {
    const page = await report('/plain/');
    assert.equal(page.isolated, false);
    assert.match(page.support ?? '', /cross-origin isolated page \(served with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp\)/);
    assert.deepEqual(page.large, { threads: 1, shared: false });
    assert.ok(page.firstThreads.every((n) => n === 1));
    assertOneThreadsBits(page);
    for (const rule of page.rules) assert.ok(rule.threadsUsed.every((n) => n === 1), rule.id);
    assertNonFinite(page, 1);
  });
});

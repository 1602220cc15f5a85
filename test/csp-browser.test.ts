/**
 * Under a Content-Security-Policy without 'wasm-unsafe-eval' the
 * library names the real cause, 'auto' falls back to the JS kernels and says which
 * backend ran; with 'wasm-unsafe-eval' the WebAssembly kernels run. The built library
 * (dist/, as a user's page loads it) in Debian's Chromium, served from 127.0.0.1 with the
 * policy as an HTTP header. Skipped, saying so, where /usr/bin/chromium is missing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));

const PAGE = '<!doctype html><meta charset="utf-8"><title>csp</title><script type="module" src="/probe.js"></script>';
const PROBE = `
import { Adam, ParamStore, loadKernels, wasmUnavailableReason } from '/dist/index.js';
const result = {};
try { await loadKernels(); result.loaded = true; } catch (error) { result.loaded = false; }
result.reason = wasmUnavailableReason() ?? null;
const store = new ParamStore({ w: 4 });
store.params.w.set([1, 2, 3, 4]);
store.grads.w.fill(1);
const forced = new Adam({ backend: 'wasm' });
try { forced.update(store.params, store.grads); result.wasm = 'ran'; } catch (error) { result.wasm = error.message; }
forced.reset(); // gives its state regions in the store back
const auto = new Adam({ lr: 0.5 });
auto.update(store.params, store.grads);
result.autoBackend = auto.backendUsed;
result.params = Array.from(store.params.w);
console.log('result ' + JSON.stringify(result));
`;

function serve(dist: string): Promise<{ server: Server; origin: string }> {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const policy = url.pathname === '/allowed.html' ? "script-src 'self' 'wasm-unsafe-eval'" : "script-src 'self'";
    if (url.pathname.endsWith('.html')) {
      response.writeHead(200, { 'content-type': 'text/html', 'content-security-policy': policy });
      response.end(PAGE);
    } else if (url.pathname === '/probe.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(PROBE);
    } else if (url.pathname.startsWith('/dist/') && existsSync(join(dist, normalize(url.pathname.slice(6))))) {
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(readFileSync(join(dist, normalize(url.pathname.slice(6)))));
    } else {
      response.writeHead(404);
      response.end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const address = server.address() as { port: number };
    resolve({ server, origin: `http://127.0.0.1:${address.port}` });
  }));
}

it('a CSP without wasm-unsafe-eval is named as the cause; auto falls back to JS and says so', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`, timeout: 120_000 }, async () => {
  const dist = mkdtempSync(join(tmpdir(), 'nesterov-csp-'));
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', dist], { cwd: root });
  const { server, origin } = await serve(dist);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const results: Record<string, { loaded: boolean; reason: string | null; wasm: string; autoBackend: string; params: number[] }> = {};
    for (const page of ['strict', 'allowed']) {
      const tab = await browser.newPage();
      // The probe reports on the console: the policy also forbids the eval that
      // waitForFunction would use.
      const reported = new Promise<string>((resolve, reject) => {
        tab.on('console', (message) => {
          if (message.text().startsWith('result ')) resolve(message.text().slice(7));
        });
        tab.on('pageerror', reject);
        setTimeout(() => reject(new Error(`${page}.html reported nothing in 30 s`)), 30_000).unref();
      });
      await tab.goto(`${origin}/${page}.html`);
      results[page] = JSON.parse(await reported) as (typeof results)[string];
      await tab.close();
    }
    const strict = results.strict!;
    assert.equal(strict.loaded, false);
    assert.match(strict.reason!, /^the page's Content-Security-Policy blocks compiling WebAssembly \(allow it with script-src 'wasm-unsafe-eval'; the engine said: .+\)$/);
    assert.equal(strict.wasm, `Adam.update: backend 'wasm' is not available: ${strict.reason}`);
    assert.equal(strict.autoBackend, 'js');
    const allowed = results.allowed!;
    assert.deepEqual([allowed.loaded, allowed.reason, allowed.wasm, allowed.autoBackend], [true, null, 'ran', 'wasm']);
    // A first Adam step moves every element by lr * g / (|g| + eps) = lr (to float32):
    // the strict page took one step of lr 0.5 (in JS), the allowed page one of 0.001 (in
    // wasm) and then a fresh Adam's of 0.5.
    assert.deepEqual(strict.params, [0.5, 1.5, 2.5, 3.5]);
    assert.deepEqual(allowed.params, [1, 2, 3, 4].map((x) => Math.fround(Math.fround(x - 0.001) - 0.5)));
  } finally {
    await browser.close();
    server.closeAllConnections();
    server.close();
  }
});

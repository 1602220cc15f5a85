/**
 * nesterov/tfjs on TF.js's GPU backends, in Debian's Chromium: webgl, and webgpu on
 * SwiftShader (WebGPU without a GPU), the page bundled by esbuild from
 * test/tfjs-browser-page.ts and served from 127.0.0.1. On each backend (the ops path):
 * model.fit with tfOptimizer(new Adam({ lr: 1e-2 })) equals the cpu backend's run (the
 * kernel path) within float32 rounding, 200 steps leave tf.memory().numTensors as after
 * the first, and a NaN gradient is refused with the core's error (nonFinite 'error') or
 * skipped ('skip'), writing nothing, after which a finite step proceeds.
 *
 * The bound: 12 steps of a 6-8-3 network, each step a few dozen float32 operations whose
 * GPU implementations (tanh, exp, sqrt) round differently from the cpu backend's by an ulp
 * or two (2^-24 = 6e-8 relative): 1e-6 relative is about sixteen ulps.
 * Skipped, saying so, where /usr/bin/chromium is missing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));

interface NanResult { error: string | null; changed: boolean; stepCount: number; skippedSteps: number; next: boolean }
interface BackendReport { failed?: string; backend: string; weights: number[][]; leak: [number, number, number]; nanError: NanResult; nanSkip: NanResult }

function serve(script: Uint8Array): Promise<{ server: Server; origin: string }> {
  const server = createServer((request, response) => {
    if (request.url === '/page.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(script);
    } else {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<!doctype html><meta charset="utf-8"><title>nesterov/tfjs</title><script type="module" src="/page.js"></script>');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const address = server.address() as { port: number };
    resolve({ server, origin: `http://127.0.0.1:${address.port}` });
  }));
}

it('webgl and webgpu: model.fit equals the cpu backend within float32 rounding, no tensor leak, a NaN gradient refused or skipped', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`, timeout: 300_000 }, async () => {
  const bundle = await build({
    entryPoints: [fileURLToPath(new URL('./tfjs-browser-page.ts', import.meta.url))],
    bundle: true, format: 'esm', platform: 'browser', conditions: ['nesterov-source'], write: false, logLevel: 'warning', absWorkingDir: root,
  });
  const { server, origin } = await serve(bundle.outputFiles[0]!.contents);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-unsafe-swiftshader', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  try {
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (error) => errors.push(error.message));
    const reported = new Promise<string>((resolve) => {
      tab.on('console', (message) => {
        if (message.text().startsWith('result ')) resolve(message.text().slice(7));
      });
    });
    await tab.goto(`${origin}/`);
    const report = JSON.parse(await reported) as Record<string, BackendReport>;
    assert.deepEqual(errors, []);
    const cpu = report.cpu!;
    assert.equal(cpu.failed, undefined, cpu.failed);
    for (const backend of ['webgl', 'webgpu']) {
      const r = report[backend]!;
      assert.equal(r.failed, undefined, `${backend}: ${r.failed}`);
      assert.equal(r.backend, backend);
      let worst = 0;
      r.weights.forEach((w, k) => w.forEach((x, i) => {
        const y = cpu.weights[k]![i]!;
        worst = Math.max(worst, Math.abs(x - y) / (1 + Math.abs(y)));
      }));
      assert.ok(worst <= 1e-6, `${backend}: model.fit differs from the cpu backend's by ${worst}`);
      const [first, last, leftAfterDispose] = r.leak;
      assert.equal(last, first, `${backend}: ${first} tensors after the first step, ${last} after 200`);
      assert.equal(leftAfterDispose, 0);
      assert.deepEqual(r.nanError, { error: `Adam.update: gradient 'nan_${backend}_error' is not finite at index 1 (NaN)`, changed: false, stepCount: 1, skippedSteps: 0, next: true });
      assert.deepEqual(r.nanSkip, { error: null, changed: false, stepCount: 1, skippedSteps: 1, next: true });
    }
  } finally {
    await browser.close();
    server.close();
  }
});

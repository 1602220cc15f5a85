/**
 * What the browser tests share: a test page module (test/*-page.ts) is bundled by
 * esbuild, served from 127.0.0.1 (a secure context, which WebGPU needs), opened in
 * Debian's Chromium with WebGPU on SwiftShader, and reports its results as one console
 * line `result <json>`. Page errors and a page's own `{ failed }` fail the test.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
/** The tests' `skip` where Chromium is missing (.ci/run installs it). */
export const chromiumMissing = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`;

const root = fileURLToPath(new URL('..', import.meta.url));

/** Serves the bundle as /page.js, `files` by path, and a page that loads the bundle. */
function serve(script: Uint8Array, title: string, files: Readonly<Record<string, string>>): Promise<{ server: Server; origin: string }> {
  const server = createServer((request, response) => {
    const path = request.url ?? '/';
    if (path === '/page.js') {
      response.writeHead(200, { 'content-type': 'text/javascript' });
      response.end(script);
    } else if (Object.hasOwn(files, path)) {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(files[path]);
    } else {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(`<!doctype html><meta charset="utf-8"><title>${title}</title><script type="module" src="/page.js"></script>`);
    }
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as { port: number };
      resolve({ server, origin: `http://127.0.0.1:${address.port}` });
    }),
  );
}

/**
 * Runs the page module `page` in Chromium and returns its report, parsed. `query` is
 * appended to the page's address; `files` are served beside it (JSON, by path).
 */
export async function pageReport<T>(page: URL, { title, query = '', files = {} }: { title: string; query?: string; files?: Readonly<Record<string, string>> }): Promise<T> {
  const bundle = await build({
    entryPoints: [fileURLToPath(page)],
    bundle: true, format: 'esm', platform: 'browser', conditions: ['nesterov-source'], write: false, logLevel: 'warning', absWorkingDir: root,
  });
  const { server, origin } = await serve(bundle.outputFiles[0]!.contents, title, files);
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
    await tab.goto(`${origin}/${query}`);
    const report = JSON.parse(await reported) as T | { failed: string };
    assert.deepEqual(errors, []);
    if (report !== null && typeof report === 'object' && 'failed' in report && typeof report.failed === 'string') assert.fail(report.failed);
    return report as T;
  } finally {
    await browser.close();
    server.close();
  }
}

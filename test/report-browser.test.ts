/**
 * The report as a person sees it: headless Chromium (Debian's, driven by playwright-core)
 * opens OUT/report.html from a short run, finds every plot drawn (non-empty paths,
 * legends, axes), no console error, and saves a screenshot (out/report-test.png).
 * Skipped, saying so, where /usr/bin/chromium is missing; .ci/run installs it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { it } from 'node:test';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
const screenshots = fileURLToPath(new URL('../out/', import.meta.url));

it('the report renders every plot in Chromium, with no console error', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`, timeout: 180_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'nesterov-report-'));
  await promisify(execFile)(process.execPath, ['--import', 'tsx', main, '--epochs', '2', '--out', out, '--workers', '2']);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1250, height: 1400 } });
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(pathToFileURL(join(out, 'report.html')).href);
    // A string, not a function: tsx's transform adds helpers a serialized function
    // would reference in the page.
    const facts = (await page.evaluate(`(() => {
      const lengthOf = (selector) => Array.from(document.querySelectorAll(selector)).map((p) => p.getTotalLength());
      return {
        rows: document.querySelectorAll('#summary tbody tr').length,
        charts: document.querySelectorAll('svg.chart').length,
        series: lengthOf('path.series'),
        legends: Array.from(document.querySelectorAll('svg.chart .legend')).map((l) => l.querySelectorAll('text').length),
        axes: document.querySelectorAll('svg.chart .x-axis text').length + document.querySelectorAll('svg.chart .y-axis text').length,
        bookPaths: lengthOf('#book-panels path.trajectory'),
        rosenbrockPaths: lengthOf('#rosenbrock-panels path.trajectory'),
        contours: lengthOf('.contours path'),
      };
    })()`)) as {
      rows: number;
      charts: number;
      series: number[];
      legends: number[];
      axes: number;
      bookPaths: number[];
      rosenbrockPaths: number[];
      contours: number[];
    };
    assert.equal(facts.rows, 9);
    assert.equal(facts.charts, 2);
    assert.equal(facts.series.length, 18);
    assert.ok(facts.series.every((length) => length > 50), `series lengths ${facts.series}`);
    assert.deepEqual(facts.legends, [9, 9]);
    assert.ok(facts.axes > 12, `axis labels ${facts.axes}`);
    assert.equal(facts.bookPaths.length, 9);
    assert.equal(facts.rosenbrockPaths.length, 9);
    assert.ok([...facts.bookPaths, ...facts.rosenbrockPaths].every((length) => length > 10), 'every trajectory drawn');
    assert.ok(facts.contours.length >= 18 * 5 && facts.contours.every((length) => length > 0), 'contour lines drawn');
    assert.deepEqual(errors, []);
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, 'report-test.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});

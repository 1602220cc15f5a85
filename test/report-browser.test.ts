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
        names: Array.from(document.querySelectorAll('#summary tbody tr td:first-child')).map((td) => td.textContent),
        panelTitles: Array.from(document.querySelectorAll('#book-panels svg.panel text.title')).map((t) => t.textContent),
        panelNotes: document.querySelector('#panel-notes')?.textContent ?? null,
        charts: document.querySelectorAll('svg.chart').length,
        series: lengthOf('path.series'),
        raw: lengthOf('path.raw'),
        how: document.querySelectorAll('p.how').length,
        legends: Array.from(document.querySelectorAll('svg.chart .legend')).map((l) => l.querySelectorAll('text').length),
        axes: document.querySelectorAll('svg.chart .x-axis text').length + document.querySelectorAll('svg.chart .y-axis text').length,
        bookPaths: lengthOf('#book-panels path.trajectory'),
        rosenbrockPaths: lengthOf('#rosenbrock-panels path.trajectory'),
        contours: lengthOf('.contours path'),
      };
    })()`)) as {
      rows: number;
      names: string[];
      panelTitles: string[];
      panelNotes: string | null;
      charts: number;
      series: number[];
      raw: number[];
      how: number;
      legends: number[];
      axes: number;
      bookPaths: number[];
      rosenbrockPaths: number[];
      contours: number[];
    };
    // The default run: the book's nine, nadamw, then lion, schedulefree-adamw, muon and prodigy.
    const all = ['sgd', 'momentum', 'nesterov', 'nesterov-book', 'adagrad', 'rmsprop', 'adam', 'adamw', 'nadam', 'nadamw', 'lion', 'schedulefree-adamw', 'muon', 'prodigy'];
    assert.equal(facts.rows, 14);
    assert.deepEqual(facts.names, all);
    assert.deepEqual(facts.panelTitles, all);
    assert.match(facts.panelNotes ?? '', /^The schedulefree-adamw panels draw x, .* The muon panels run Muon alone on the point as a 1 x 2 matrix/);
    assert.equal(facts.charts, 2);
    assert.equal(facts.series.length, 28);
    assert.ok(facts.series.every((length) => length > 50), `series lengths ${facts.series}`);
    // Behind each smoothed loss curve its raw curve, faint; a sentence under each chart.
    assert.equal(facts.raw.length, 14);
    assert.ok(facts.raw.every((length) => length > 50), `raw lengths ${facts.raw}`);
    assert.equal(facts.how, 2);
    assert.deepEqual(facts.legends, [14, 14]);
    assert.ok(facts.axes > 12, `axis labels ${facts.axes}`);
    assert.equal(facts.bookPaths.length, 14);
    assert.equal(facts.rosenbrockPaths.length, 14);
    assert.ok([...facts.bookPaths, ...facts.rosenbrockPaths].every((length) => length > 10), 'every trajectory drawn');
    assert.ok(facts.contours.length >= 24 * 5 && facts.contours.every((length) => length > 0), 'contour lines drawn');
    assert.deepEqual(errors, []);
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, 'report-test.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});

it('the --tune --seeds report renders error bars, search curves, bands and smoothed curves in Chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`, timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'nesterov-report-tune-'));
  await promisify(execFile)(process.execPath, ['--import', 'tsx', main, '--tune', '--seeds', '3', '--digits', '1000', '--epochs', '2', '--tune-epochs', '1', '--hidden', '32', '--batch', '20', '--out', out, '--workers', '2']);
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
    const facts = (await page.evaluate(`(() => {
      const lengthOf = (selector) => Array.from(document.querySelectorAll(selector)).map((p) => p.getTotalLength());
      const charts = Array.from(document.querySelectorAll('svg.chart'));
      return {
        rows: document.querySelectorAll('#summary tbody tr').length,
        titles: charts.map((c) => c.querySelector('text.title').textContent),
        errorbars: Array.from(document.querySelectorAll('g.errorbar')).map((g) => [g.querySelectorAll('circle.run').length, g.querySelectorAll('circle.mean').length, g.querySelector('line.ci').getTotalLength() > 0]),
        searchDots: Array.from(charts[1].querySelectorAll('g.dots')).map((g) => g.querySelectorAll('circle:not(.chosen)').length),
        rings: charts[1].querySelectorAll('circle.chosen').length,
        searchSeries: Array.from(charts[1].querySelectorAll('path.series')).map((p) => p.getTotalLength()),
        bands: Array.from(charts[2].querySelectorAll('path.band')).map((p) => p.getBBox().height),
        raw: lengthOf('path.raw'),
        how: document.querySelectorAll('p.how').length,
        xTicks: Array.from(charts[1].querySelectorAll('.x-axis text')).map((t) => t.textContent),
      };
    })()`)) as { rows: number; titles: string[]; errorbars: [number, number, boolean][]; searchDots: number[]; rings: number; searchSeries: number[]; bands: number[]; raw: number[]; how: number; xTicks: string[] };
    assert.equal(facts.rows, 14);
    assert.deepEqual(facts.titles, [
      'Test accuracy after 2 epochs, 3 seeds per optimizer',
      'Learning-rate search: validation loss against lr (log scales)',
      'Training loss, mean of 3 seeds and a band of one sd (smoothed, log scale)',
      'Training loss of the first seed: raw (faint) and smoothed (log scale)',
      'Test accuracy after each epoch, mean of 3 seeds',
    ]);
    assert.deepEqual(facts.errorbars, Array.from({ length: 14 }, () => [3, 1, true]));
    // 9 rates per optimizer, each a dot (no run diverged at this size), and the chosen one
    // ringed; prodigy, learning-rate free, is not searched.
    assert.deepEqual(facts.searchDots, Array.from({ length: 13 }, () => 9));
    assert.equal(facts.rings, 13);
    assert.ok(facts.searchSeries.length === 13 && facts.searchSeries.every((length) => length > 20), `search curves ${facts.searchSeries}`);
    assert.ok(facts.bands.length === 14 && facts.bands.every((height) => height > 1), `bands ${facts.bands}`);
    assert.ok(facts.raw.length === 14 && facts.raw.every((length) => length > 50), `raw curves ${facts.raw}`);
    assert.equal(facts.how, 5);
    // log-scale lr axis: the default rates span 0.001 to 0.1, the grids 1e-4 to 1
    assert.deepEqual(facts.xTicks.slice(0, -1), ['1e-4', '0.001', '0.01', '0.1', '1']);
    assert.deepEqual(errors, []);
    mkdirSync(screenshots, { recursive: true });
    await page.screenshot({ path: join(screenshots, 'report-tune-test.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});

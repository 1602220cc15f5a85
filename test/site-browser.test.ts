/**
 * The playground as a visitor meets it: the site is built (site/dist/, so the build
 * cannot rot; this part runs without Chromium too), served from 127.0.0.1 under a sub-path (proving the relative base), and
 * driven in Debian's Chromium through playwright-core. The expected numbers come from
 * nag.md's table and from hand derivation, not from the page.
 * Skipped, saying so, where /usr/bin/chromium is missing; .ci/run installs it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { en } from '../site/i18n/en.ts';
import { ko } from '../site/i18n/ko.ts';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'site', 'dist');
const screenshots = join(root, 'out');
const SUB = '/some/sub-path/';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed`;

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml' };

let server: Server;
let origin = '';
let browser: Browser;
/** Every request the page made, to check none leaves 127.0.0.1. */
const requests: string[] = [];

async function open(query = '', viewport = { width: 1280, height: 900 }, bypassCSP = false): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport, acceptDownloads: true, bypassCSP });
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('request', (request) => {
    requests.push(request.url());
  });
  await page.goto(`${origin}${SUB}${query}`);
  await page.waitForSelector('#plot > *', { state: 'attached' }); // a path, or the message that there is none
  return { page, errors };
}

async function download(page: Page): Promise<{ function: string; start: number[]; paths: Record<string, number[][]> }> {
  const [file] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  return JSON.parse(readFileSync((await file.path())!, 'utf8')) as never;
}

/** A string, not a function: tsx's transform adds helpers a serialized function would reference. */
const trajectoryOf = (page: Page, name: string) => page.getAttribute(`#plot path.trajectory[data-name="${name}"]`, 'd');

// The build is part of `npm test` (with or without Chromium): a site that no longer
// builds fails it. The browser tests below run against what it writes.
it('the site builds into site/dist/, every URL in it relative', { timeout: 180_000 }, async () => {
  rmSync(dist, { recursive: true, force: true });
  await promisify(execFile)(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'site/vite.config.ts', '--logLevel', 'warn'], {
    cwd: root,
  });
  const html = readFileSync(join(dist, 'index.html'), 'utf8');
  const urls = [...html.matchAll(/(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
  assert.deepEqual(
    urls.filter((url) => !url.startsWith('./') && !url.startsWith('#') && url !== 'data:,'),
    [],
  );
  for (const url of urls.filter((u) => u.startsWith('./'))) assert.ok(existsSync(join(dist, url)), `${url} is in site/dist/`);
});

describe('the playground in Chromium', { skip, timeout: 300_000 }, () => {
  before(async () => {
    server = createServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      if (!url.pathname.startsWith(SUB)) {
        response.writeHead(404).end();
        return;
      }
      const relative = normalize(decodeURIComponent(url.pathname.slice(SUB.length)) || 'index.html');
      const file = join(dist, relative);
      if (!file.startsWith(dist) || !existsSync(file)) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    origin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  after(async () => {
    await browser?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('opens on the post comparison with no console error and no request off 127.0.0.1', async () => {
    const { page, errors } = await open();
    assert.equal(await page.inputValue('#fn'), 'book');
    assert.deepEqual(await page.$$eval('#optimizers input:checked', (boxes) => boxes.map((b) => (b as HTMLInputElement).value)), ['nesterov', 'nesterov-book']);
    assert.equal(await page.textContent('#lr-out'), '0.1');
    assert.equal(await page.getAttribute('#lr', 'aria-valuetext'), '0.1'); // the slider runs on log10(lr)
    assert.equal(await page.textContent('#momentum-out'), '0.9');
    assert.equal(await page.inputValue('#start-x'), '-7');
    assert.equal(await page.inputValue('#start-y'), '2');
    assert.ok((await page.$$('#plot .contours path')).length >= 10, 'contour lines drawn');
    // Colour AND dash AND marker tell the two paths apart.
    const looks = await page.$$eval('#plot g.path', (groups) =>
      groups.map((g) => [g.querySelector('.trajectory')!.getAttribute('stroke'), g.querySelector('.trajectory')!.getAttribute('stroke-dasharray'), g.querySelector('.markers')!.getAttribute('d')!.slice(0, 12)]),
    );
    assert.equal(looks.length, 2);
    assert.notEqual(looks[0]![0], looks[1]![0]);
    assert.notEqual(looks[0]![1], looks[1]![1]);
    assert.deepEqual(errors, []);
    assert.deepEqual(
      requests.filter((url) => !url.startsWith(`${origin}${SUB}`) && !url.startsWith('blob:')),
      [],
    );
    await page.close();
  });

  it("downloads NAG's and the book's paths equal to nag.md's table", async () => {
    const { page } = await open();
    const json = await download(page);
    assert.equal(json.function, 'x^2/20 + y^2');
    assert.deepEqual(json.start, [-7, 2]);
    assert.deepEqual(Object.keys(json.paths), ['nesterov', 'nesterov-book']);
    // nag.md, "Example on the book's function", to the printed digits.
    const table: Record<string, string[][]> = {
      nesterov: [
        ['-7', '2'],
        ['-6.867', '1.24'],
        ['-6.679827', '0.4448'],
        ['-6.446257587', '-0.216704'],
      ],
      'nesterov-book': [
        ['-7', '2'],
        ['-6.8103', '0.916'],
        ['-6.57471087', '0.127928'],
        ['-6.300962118423', '-0.337401776'],
      ],
    };
    const decimals = (s: string) => (s.split('.')[1] ?? '').length;
    for (const [name, rows] of Object.entries(table)) {
      assert.equal(json.paths[name]!.length, 31, `${name}: the start and 30 steps`);
      rows.forEach((row, step) => {
        const got = json.paths[name]![step]!.map((v, i) => v.toFixed(decimals(row[i]!)));
        assert.deepEqual(got, row.map((s) => Number(s).toFixed(decimals(s))), `${name} step ${step}`);
      });
    }
    await page.close();
  });

  it('moving the lr slider (by keyboard) changes the NAG path and the URL', async () => {
    const { page } = await open();
    const before = await trajectoryOf(page, 'nesterov');
    const book = await trajectoryOf(page, 'nesterov-book');
    await page.focus('#lr');
    await page.keyboard.press('ArrowRight'); // log10(lr) -1 -> -0.99: lr 0.102
    assert.equal(await page.textContent('#lr-out'), '0.102');
    const afterMove = await trajectoryOf(page, 'nesterov');
    assert.notEqual(afterMove, before);
    assert.notEqual(await trajectoryOf(page, 'nesterov-book'), book);
    await page.waitForFunction(() => new URL(location.href).searchParams.get('lr') === '0.102');
    // The first step of NAG is (1 + mu) lr g: g(-7, 2) = (-0.7, 4), so x1 = -7 + 1.9 * 0.102 * 0.7.
    const json = await download(page);
    assert.equal(json.paths.nesterov![1]![0]!.toFixed(6), (-7 + 1.9 * 0.102 * 0.7).toFixed(6));
    assert.equal(json.paths.nesterov![1]![1]!.toFixed(6), (2 - 1.9 * 0.102 * 4).toFixed(6));
    await page.close();
  });

  it('plays the paths step by step', async () => {
    const { page, errors } = await open('?shown=0');
    assert.equal(await page.textContent('#shown-out'), '0');
    // Only the start. The plot maps x in [-10, 10] to pixels [44, 628] and y in [-5, 5] to
    // [408, 22]: x(-7) = 44 + 584 * 3/20 = 131.6, y(2) = 408 - 386 * 7/10 = 137.8.
    assert.equal(await trajectoryOf(page, 'nesterov'), 'M131.6,137.8');
    await page.click('#step-forward');
    assert.equal(await page.textContent('#shown-out'), '1');
    assert.match((await page.textContent('#legend li'))!, /^nesterov: step 1 at \(-6\.867, 1\.24\)$/);
    await page.click('#play');
    assert.equal(await page.getAttribute('#play', 'aria-pressed'), 'true');
    await page.waitForFunction(() => document.getElementById('shown-out')!.textContent === '30', undefined, { timeout: 20_000 });
    assert.equal(await page.getAttribute('#play', 'aria-pressed'), 'false');
    assert.equal((await trajectoryOf(page, 'nesterov'))!.split('L').length, 31);
    await page.click('#step-back');
    assert.match((await page.textContent('#legend li'))!, /^nesterov: step 29 at /);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('a click or a drag on the plot sets the start', async () => {
    const { page } = await open();
    const box = (await (await page.$('#plot'))!.boundingBox())!;
    // Plot pixels (viewBox 640 x 440) of a point: x in [-10, 10] -> [44, 628], y in [-5, 5] -> [408, 22].
    const at = (x: number, y: number): [number, number] => [box.x + ((44 + (584 * (x + 10)) / 20) * box.width) / 640, box.y + ((408 - (386 * (y + 5)) / 10) * box.height) / 440];
    const start = async () => {
      await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))'); // a drag redraws on the next frame
      return [Number(await page.inputValue('#start-x')), Number(await page.inputValue('#start-y'))];
    };
    await page.mouse.click(...at(0, 0));
    const [x0, y0] = await start();
    assert.ok(Math.abs(x0!) < 0.05 && Math.abs(y0!) < 0.05, `click at (0, 0) set the start to (${x0}, ${y0})`);
    await page.mouse.move(...at(-5, 3));
    await page.mouse.down();
    await page.mouse.move(...at(-2, 1), { steps: 5 });
    await page.mouse.move(...at(5, -3), { steps: 5 });
    await page.mouse.up();
    const [x1, y1] = await start();
    assert.ok(Math.abs(x1! - 5) < 0.05 && Math.abs(y1! + 3) < 0.05, `drag ended at (5, -3), start (${x1}, ${y1})`);
    const json = await download(page);
    assert.deepEqual(json.paths.nesterov![0], [x1, y1]);
    await page.waitForFunction((expected) => new URL(location.href).searchParams.get('start') === expected, `${x1},${y1}`);
    await page.close();
  });

  it('a URL with a state opens that state', async () => {
    const { page, errors } = await open('?fn=rosenbrock&start=-1,2&opt=adam,sgd&lr=0.01&momentum=0.5&beta1=0.8&steps=200&picture=momentum&pstep=7');
    assert.equal(await page.inputValue('#fn'), 'rosenbrock');
    assert.deepEqual(await page.$$eval('#optimizers input:checked', (boxes) => boxes.map((b) => (b as HTMLInputElement).value)), ['sgd', 'adam']);
    assert.equal(await page.textContent('#lr-out'), '0.01');
    assert.equal(await page.textContent('#momentum-out'), '0.5');
    assert.equal(await page.textContent('#beta1-out'), '0.8');
    assert.equal(await page.textContent('#steps-out'), '200');
    assert.equal(await page.inputValue('#start-x'), '-1');
    assert.equal(await page.inputValue('#start-y'), '2');
    assert.equal(await page.inputValue('#picture-opt'), 'momentum');
    assert.equal(await page.textContent('#picture-step-out'), '7');
    const json = await download(page);
    assert.deepEqual(json.start, [-1, 2]);
    // Rosenbrock at (-1, 2): y - x^2 = 1, so g = (-2 * 2 + 400, 200) = (396, 200); SGD: (-1, 2) - 0.01 g.
    assert.deepEqual(json.paths.sgd![1], [-1 - 3.96, 0]);
    assert.equal(json.paths.adam!.length, 201);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('a typed formula draws its contours; a broken one is announced in role="alert"', async () => {
    const { page, errors } = await open();
    await page.selectOption('#fn', 'custom');
    await page.fill('#expr', 'x^2 + 3*sin(y)');
    await page.press('#expr', 'Enter');
    await page.waitForFunction(() => new URL(location.href).searchParams.get('expr') === 'x^2 + 3*sin(y)');
    await page.waitForSelector('#plot .contours path'); // once the worker has sent the derivatives
    assert.equal(await page.textContent('#formula-error'), '');
    assert.ok((await page.$$('#plot .contours path')).length >= 10);
    // f = x^2 + 3 sin(y), grad (2x, 3 cos y) at the preset start (-4, 1), lr 0.1 NAG: x1 = -4 + 1.9 * 0.1 * 8.
    const json = await download(page);
    assert.equal(json.function, 'x^2 + 3*sin(y)');
    assert.equal(json.paths.nesterov![1]![0]!.toFixed(9), (-4 + 1.9 * 0.1 * 8).toFixed(9));
    assert.equal(json.paths.nesterov![1]![1]!.toFixed(9), (1 - 1.9 * 0.1 * 3 * Math.cos(1)).toFixed(9));

    await page.fill('#expr', 'x^2 + (');
    await page.press('#expr', 'Enter');
    assert.equal(await page.getAttribute('#formula-error', 'role'), 'alert');
    assert.equal(await page.textContent('#formula-error'), 'Cannot read the formula "x^2 + (": Unexpected end of expression (char 8).');
    assert.equal(await page.getAttribute('#expr', 'aria-invalid'), 'true');
    assert.equal((await page.$$('#plot .contours path')).length, 0);

    await page.fill('#expr', 'x^2 + z');
    await page.press('#expr', 'Enter');
    assert.equal(await page.textContent('#formula-error'), 'The formula "x^2 + z" uses "z": only x, y, pi and e are known.');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it("draws the post's picture for NAG at the chosen step: the arrows add up, the gradient is taken after the momentum step", async () => {
    const { page } = await open('?pstep=3');
    const arrows = (await page.$$eval('#picture-plot .arrows line', (lines) =>
      lines.map((l) => [l.getAttribute('class'), ...['x1', 'y1', 'x2', 'y2'].map((a) => Number(l.getAttribute(a)))]),
    )) as [string, number, number, number, number][];
    assert.deepEqual(arrows.map((a) => a[0]).sort(), ['arrow-actual', 'arrow-gradient', 'arrow-momentum']);
    const [momentum, gradient, actual] = ['arrow-momentum', 'arrow-gradient', 'arrow-actual'].map((c) => arrows.find((a) => a[0] === c));
    assert.deepEqual(gradient!.slice(1, 3), momentum!.slice(3, 5), 'the gradient step starts at the tip of the momentum step');
    assert.deepEqual(actual!.slice(1, 3), momentum!.slice(1, 3), 'the actual step starts where the momentum step does');
    for (const i of [3, 4]) assert.ok(Math.abs((actual![i] as number) - (gradient![i] as number)) < 1e-6, 'the two arrows add up to the actual step');
    const ring = await page.$eval('#picture-plot .gradient-point', (c) => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]);
    assert.deepEqual(ring, momentum!.slice(3, 5), 'NAG takes the gradient at the look-ahead point');
    assert.match((await page.textContent('#picture-caption'))!, /^Step 3 → 4\. NAG: v ← μv − lr·∇f\(θ \+ μv\), θ ← θ \+ v/);

    await page.selectOption('#picture-opt', 'momentum');
    const ringMomentum = await page.$eval('#picture-plot .gradient-point', (c) => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]);
    const fromMomentum = await page.$eval('#picture-plot .arrows line.arrow-momentum', (l) => [Number(l.getAttribute('x1')), Number(l.getAttribute('y1'))]);
    assert.deepEqual(ringMomentum, fromMomentum, 'Momentum takes the gradient at the current point');
    await page.close();
  });

  it('axe-core finds no serious or critical violation (default view, a formula error, phone width)', async () => {
    const axe = readFileSync(join(root, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');
    for (const [query, viewport] of [
      ['', { width: 1280, height: 900 }],
      ['?fn=custom&expr=x%5E2%20%2B%20(', { width: 1280, height: 900 }],
      ['?fn=rosenbrock&opt=sgd,nesterov,adam,rmsprop-book', { width: 390, height: 844 }],
      ['?lang=ko', { width: 1280, height: 900 }],
      ['?lang=ko&fn=custom&expr=x%5E2%20%2B%20(', { width: 1280, height: 900 }],
      ['?lang=ko&fn=rosenbrock&opt=sgd,nesterov,adam,rmsprop-book', { width: 390, height: 844 }],
    ] as const) {
      // The page's CSP forbids inline scripts, axe's included: the test's own script is let in.
      const { page } = await open(query, viewport, true);
      await page.addScriptTag({ content: axe });
      // label-content-name-mismatch (WCAG 2.5.3: a control's accessible name contains its
      // visible text) is experimental in axe, off by default: turned on here.
      const violations = (await page.evaluate(
        `axe.run(document, { rules: { 'label-content-name-mismatch': { enabled: true } } }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })))`,
      )) as {
        id: string;
        impact: string;
      }[];
      assert.deepEqual(
        violations.filter((v) => v.impact === 'serious' || v.impact === 'critical' || v.id === 'label-content-name-mismatch'),
        [],
        query,
      );
      await page.close();
    }
  });

  it('a Korean browser gets the page in Korean; the language select switches, the address keeps it, and nothing computed changes', async () => {
    const context = await browser.newContext({ locale: 'ko-KR', acceptDownloads: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${origin}${SUB}?fn=book&opt=nesterov,nesterov-book&shown=0`);
    await page.waitForSelector('#plot path.trajectory', { state: 'attached' });
    assert.equal(await page.getAttribute('html', 'lang'), 'ko');
    assert.equal(await page.inputValue('#lang'), 'ko');
    assert.equal(await page.textContent('label[for="lang"]'), '언어');
    // The picture's key in the post's own words.
    const key = (await page.textContent('ul.key'))!;
    for (const word of ['관성', '기울기', '실제 이동']) assert.ok(key.includes(word), `the key says ${word}: ${key}`);
    // No fixed English phrase is left: every plain string of the English table is absent
    // from the page's text, unless the Korean quotes it (the post's own 'momentum step').
    const text = (await page.evaluate('document.body.innerText')) as string;
    for (const [name, value] of Object.entries(en)) {
      const korean = (ko as Record<string, unknown>)[name] as string;
      if (typeof value === 'string' && !/Html$/.test(name) && /[a-z]{3} [a-z]{3}/.test(value) && !korean.includes(value)) {
        assert.ok(!text.includes(value), `'${value}' (${name}) is still in English`);
      }
    }
    // The numbers are the page's, whatever the language: NAG's first step (nag.md).
    await page.click('#step-forward');
    assert.match((await page.textContent('#legend li'))!, /^nesterov: 1스텝에서 \(-6\.867, 1\.24\)$/);
    const koreanPath = await trajectoryOf(page, 'nesterov');
    const koreanDownload = await download(page);
    // Switching to English: the same paths, the page in English, the choice in the address.
    await page.selectOption('#lang', 'en');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal(await page.textContent('h1'), 'The NAG playground');
    assert.match((await page.textContent('#legend li'))!, /^nesterov: step 1 at \(-6\.867, 1\.24\)$/);
    assert.equal(await trajectoryOf(page, 'nesterov'), koreanPath);
    assert.deepEqual(await download(page), koreanDownload);
    await page.waitForFunction(() => location.search.includes('lang=en'));
    // The address's choice wins over the browser's language on the next visit.
    await page.reload();
    await page.waitForSelector('#plot path.trajectory', { state: 'attached' });
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    await context.close();
    // An English browser opens in English, and in Korean where the address says lang=ko.
    const english = await open('?lang=ko');
    assert.equal(await english.page.getAttribute('html', 'lang'), 'ko');
    assert.equal(await english.page.textContent('h1'), 'NAG 플레이그라운드');
    await english.page.close();
    const plain = await open();
    assert.equal(await plain.page.getAttribute('html', 'lang'), 'en');
    await plain.page.close();
    assert.deepEqual(errors, []);
  });

  it('the keyboard reaches every control, and focus is visible', async () => {
    const { page } = await open();
    const controls = (await page.evaluate(
      `Array.from(document.querySelectorAll('input, select, button')).filter((e) => !e.closest('[hidden]')).map((e) => e.id)`,
    )) as string[];
    const reached = new Set<string>();
    for (let i = 0; i < controls.length + 5; i++) {
      await page.keyboard.press('Tab');
      const focus = (await page.evaluate(`(() => {
        const e = document.activeElement;
        const style = getComputedStyle(e);
        return { id: e.id || e.tagName, outline: style.outlineStyle + ' ' + style.outlineWidth };
      })()`)) as { id: string; outline: string };
      if (focus.id === 'BODY') continue; // the cycle passes through the browser's own UI once
      reached.add(focus.id);
      assert.equal(focus.outline, 'solid 3px', `focus ring on #${focus.id}`);
    }
    assert.deepEqual(controls.filter((id) => !reached.has(id)), []);
    await page.close();
  });

  // How fast the page recomputes is not a test's to say (a timed assertion fails on a
  // loaded machine, not on a slow page); that every move is answered is.
  it('recomputes nine optimizers for 1,000 steps on Rosenbrock at each of 41 slider moves, none dropped', async () => {
    const names = ['sgd', 'momentum', 'nesterov', 'nesterov-book', 'adagrad', 'rmsprop', 'adam', 'adamw', 'nadam'];
    const { page, errors } = await open(`?fn=rosenbrock&opt=${names.join(',')}&steps=1000&lr=0.001`);
    assert.equal(await page.$$eval('#plot path.trajectory', (p) => p.length), 9);
    const before = await trajectoryOf(page, 'sgd');
    // Each move sets the lr slider and fires its input event, as a drag does; the page
    // notes each recompute (window.playground.recomputeTimes).
    const counts = (await page.evaluate(`(() => {
      const slider = document.getElementById('lr');
      const start = window.playground.recomputeTimes.length;
      const startUpdates = window.playground.updateTimes.length;
      for (let i = 1; i <= 41; i++) {
        slider.value = String(-3 + 0.01 * i);
        slider.dispatchEvent(new Event('input', { bubbles: true }));
      }
      return [window.playground.recomputeTimes.length - start, window.playground.updateTimes.length - startUpdates];
    })()`)) as number[];
    assert.deepEqual(counts, [41, 41]);
    // The last move's lr, 10^-2.59, is on the slider's readout and moved the paths.
    assert.equal(await page.textContent('#lr-out'), String(+(10 ** (-3 + 0.41)).toPrecision(3)));
    assert.notEqual(await trajectoryOf(page, 'sgd'), before);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('saves screenshots at desktop and phone width; the phone layout does not scroll sideways', async () => {
    mkdirSync(screenshots, { recursive: true });
    const desktop = await open('', { width: 1280, height: 900 });
    // The third view computes minimize's rates after the page is up, in slices.
    await desktop.page.waitForFunction(() => document.getElementById('rates-status')!.textContent!.startsWith('Computed in'), undefined, { timeout: 60_000 });
    assert.deepEqual(
      await desktop.page.$$eval('#rates-plot path.trajectory', (paths) => paths.map((p) => p.getAttribute('data-name'))),
      ['gd', 'heavy ball (known mu)', 'nesterov (known mu)', 'nesterov (no mu)', 'nesterov, function restart (no mu)'],
    );
    assert.match(desktop.errors.join('\n'), /^$/);
    await desktop.page.screenshot({ path: join(screenshots, 'site-desktop.png'), fullPage: true });
    await desktop.page.close();
    const phone = await open('', { width: 390, height: 844 });
    assert.ok((await phone.page.evaluate('document.documentElement.scrollWidth')) as number <= 390, 'no sideways scroll at 390 px');
    await phone.page.screenshot({ path: join(screenshots, 'site-phone.png'), fullPage: true });
    assert.deepEqual(phone.errors, []);
    await phone.page.close();
  });
});

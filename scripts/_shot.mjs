import { chromium } from 'playwright-core';
const [file, out, w, h] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
const page = await browser.newPage({ viewport: { width: Number(w), height: Number(h) } });
await page.goto('file://' + file);
await page.waitForTimeout(500);
await page.screenshot({ path: out, fullPage: false });
await browser.close();

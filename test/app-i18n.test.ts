/**
 * `npm start -- --lang ko`: the words come from one table per language (app/i18n.ts).
 * Both tables have the same keys; the Korean report says the same numbers as the English
 * one (rendered from the same runs, and printed by the CLI); a bad --lang is one line.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { EN, KO, LANGS, MESSAGES } from '../app/i18n.ts';
import { OPTIMIZERS } from '../app/optimizers.ts';
import { BOOK_SURFACE, renderReport, ROSENBROCK_SURFACE, trajectory } from '../app/report.ts';
import { Rng } from '../app/nn/rng.ts';
import { stats } from '../app/stats.ts';
import { train } from '../app/train.ts';
import type { Digits } from '../app/data.ts';
import type { RunGroup, TrainResult } from '../app/types.ts';

const main = fileURLToPath(new URL('../app/main.ts', import.meta.url));
const run = promisify(execFile);

/** Every key path of a table: nested objects by their keys, functions and strings as leaves. */
function keyPaths(value: object, prefix = ''): string[] {
  return Object.entries(value)
    .filter(([key]) => key !== 'panelNotes')
    .flatMap(([key, item]) => (item !== null && typeof item === 'object' ? keyPaths(item as object, `${prefix}${key}.`) : [`${prefix}${key}:${typeof item}`]))
    .sort();
}

/** The numbers a reader sees: every number in the text of the HTML (tags and entities stripped), sorted. */
function numbersOf(html: string): string[] {
  const text = html
    .replace(/<style>[\s\S]*?<\/style>/, '')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&[a-z]+;/g, ' ');
  return (text.match(/\d+(?:\.\d+)?/g) ?? []).sort();
}

describe('--lang', () => {
  it('the tables of every language have the same keys, of the same kinds', () => {
    assert.deepEqual([...LANGS], ['en', 'ko']);
    for (const lang of LANGS) assert.deepEqual(keyPaths(MESSAGES[lang]), keyPaths(EN), lang);
  });

  it('every optimizer whose panels need a note has it in Korean', () => {
    const noted = Object.keys(OPTIMIZERS).filter((name) => OPTIMIZERS[name]!.panelNote !== undefined);
    assert.deepEqual(Object.keys(KO.panelNotes).sort(), noted.sort());
  });

  it('the Korean report has the numbers of the English one, from the same runs (one seed, and --seeds 2)', () => {
    const rng = new Rng(5);
    const make = (count: number): Digits => ({
      images: Float32Array.from({ length: count * 784 }, () => (rng.next() < 0.7 ? 0 : rng.next())),
      labels: Uint8Array.from({ length: count }, () => rng.below(10)),
      count,
    });
    const data = { train: make(60), test: make(20) };
    const names = ['sgd', 'schedulefree-adamw', 'muon'];
    const runs = (seed: number): TrainResult[] => names.map((optimizer) => train({ optimizer, lr: OPTIMIZERS[optimizer]!.lr, epochs: 2, batch: 20, seed, hidden: [8], ema: 0.9 }, data, () => undefined));
    const first = runs(1);
    const second = runs(3);
    const last = (r: TrainResult) => r.testAccuracy[r.testAccuracy.length - 1]!;
    const groups: RunGroup[] = names.map((name, i) => {
      const pair = [first[i]!, second[i]!];
      return {
        name,
        lr: pair[0]!.lr,
        runs: pair,
        seeds: [1, 3],
        testAccuracy: stats(pair.map(last)),
        trainLoss: stats(pair.map((r) => r.trainLoss)),
        emaTestAccuracy: stats(pair.map((r) => r.ema!.testAccuracy[1]!)),
      };
    });
    const paths = { book: {} as Record<string, [number, number][]>, rosenbrock: {} as Record<string, [number, number][]> };
    for (const name of names) {
      paths.book[name] = trajectory(name, BOOK_SURFACE);
      paths.rosenbrock[name] = trajectory(name, ROSENBROCK_SURFACE);
    }
    const config = { epochs: 2, batch: 20, seed: 1, hidden: [8], data: 'random digits', trainCount: 60, testCount: 20 };
    for (const extra of [{}, { groups }]) {
      const en = renderReport({ results: first, paths, config, ...extra });
      const ko = renderReport({ results: first, paths, config, ...extra, lang: 'ko' });
      assert.match(ko, /<html lang="ko">/);
      assert.match(ko, /테스트 정확도/);
      assert.doesNotMatch(ko, /Test accuracy|test accuracy|Training loss/);
      assert.deepEqual(numbersOf(ko), numbersOf(en));
    }
  });

  it('the CLI prints the same numbers in Korean, and refuses an unknown language in one line', { timeout: 120_000 }, async () => {
    const args = ['--optimizers', 'sgd,nesterov', '--digits', '400', '--epochs', '2', '--hidden', '8', '--batch', '20', '--workers', '1', '--ema', '0.9'];
    const [en, ko] = await Promise.all(
      ['en', 'ko'].map(async (lang) => (await run(process.execPath, ['--import', 'tsx', main, ...args, '--out', mkdtempSync(join(tmpdir(), `nesterov-lang-${lang}-`)), '--lang', lang], { encoding: 'utf8' })).stdout),
    );
    // Everything but the clock (the progress lines' elapsed time, the table's seconds, samples/s and share) and the
    // output folders' random names.
    const untimed = (stdout: string) =>
      stdout
        .split('\n')
        .map((line) => line.replace(/^\[[\d.]+[^\]]*\]/, ''))
        .map((line) => (/^(sgd|nesterov) /.test(line) ? line.trim().split(/ +/).slice(0, 5).join(' ') : line))
        .filter((line) => !/^(wall time|총 소요 시간)/.test(line) && !line.includes('summary.json'))
        .join('\n')
        .match(/\d+(?:\.\d+)?/g);
    assert.match(ko!, /^784-8-10 신경망을 손글씨 숫자 320장으로 학습합니다/);
    assert.match(ko!, /^옵티마이저 +학습률 +훈련 손실 +테스트 정확도 +EMA 정확도/m);
    assert.deepEqual(untimed(ko!), untimed(en!));
    const bad = await run(process.execPath, ['--import', 'tsx', main, '--lang', 'xx']).then(
      () => assert.fail('--lang xx should fail'),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, "error: option '--lang <code>' argument 'xx' is invalid. expected one of en, ko, got 'xx'\n");
  });
});

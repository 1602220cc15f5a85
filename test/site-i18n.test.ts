/**
 * The playground's two languages: the tables have the same keys, each entry the same
 * kind (a string, or a wording of values), and each wording shows the same values, so a
 * Korean visitor sees every number an English one does. Which language a visit gets.
 * The page itself in both languages is site-browser.test.ts's.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LANGUAGES, STRINGS, chooseLanguage } from '../site/i18n/index.ts';

/** The values a wording reads, found by handing it a record that notes each read. */
function valuesRead(wording: (values: unknown) => string): string[] {
  const read = new Set<string>();
  const values = new Proxy({}, { get: (_, name) => (read.add(String(name)), `<${String(name)}>`) });
  const text = wording(values);
  // Each value read must also be shown (a count that only picks a plural is read but not shown).
  return [...read].filter((name) => text.includes(`<${name}>`)).sort();
}

describe('the language tables', () => {
  const first = ['en', STRINGS.en] as const;
  const others = LANGUAGES.filter((language) => language !== 'en').map((language) => [language, STRINGS[language]] as const);
  it('have the same keys, both ways', () => {
    for (const [language, table] of others) assert.deepEqual(Object.keys(table).sort(), Object.keys(first[1]).sort(), language);
  });

  it('give each key the same kind of entry, and each wording shows the same values', () => {
    for (const [language, table] of others) {
      for (const [key, value] of Object.entries(first[1])) {
        const other = (table as Record<string, unknown>)[key];
        assert.equal(typeof other, typeof value, `${language}.${key}`);
        if (typeof value === 'function') assert.deepEqual(valuesRead(other as (v: unknown) => string), valuesRead(value as (v: unknown) => string), `${language}.${key}`);
      }
    }
  });

  it('name their own language, and no entry is left empty or copied untranslated where it has words', () => {
    for (const language of LANGUAGES) assert.equal(STRINGS[language].lang, language);
    const { en, ko } = STRINGS;
    for (const [key, value] of Object.entries(en)) {
      const korean = (ko as Record<string, unknown>)[key];
      if (typeof value !== 'string') continue;
      assert.ok((korean as string).length > 0, key);
      // A sentence of English words is translated; names (SGD, Adam, 'nesterov (NAG)') stay.
      if (/[a-z]{3,} [a-z]{3,} [a-z]{3,}/.test(value.replace(/<[^>]*>/g, ''))) assert.notEqual(korean, value, key);
    }
  });

  it("the picture's key and the NAG caption use the post's words: 관성, 기울기, 실제 이동", () => {
    const { ko } = STRINGS;
    assert.match(ko.keyMomentum, /관성/);
    assert.match(ko.keyGradient, /기울기/);
    assert.match(ko.keyActual, /실제 이동/);
    assert.match(ko.captionNag({ mu: 0.9, lr: 0.1 }), /관성만큼 간 위치 θ \+ μv에서 기울기/);
  });
});

describe('the language of a visit', () => {
  it("is the address's lang when it names one, else Korean for a ko* browser, else English", () => {
    assert.deepEqual(chooseLanguage('', 'ko-KR'), { language: 'ko', chosen: false });
    assert.deepEqual(chooseLanguage('', 'ko'), { language: 'ko', chosen: false });
    assert.deepEqual(chooseLanguage('', 'en-US'), { language: 'en', chosen: false });
    assert.deepEqual(chooseLanguage('', 'ja'), { language: 'en', chosen: false });
    assert.deepEqual(chooseLanguage('?fn=book&lang=en', 'ko-KR'), { language: 'en', chosen: true });
    assert.deepEqual(chooseLanguage('?lang=ko', 'en-US'), { language: 'ko', chosen: true });
    // An unknown lang is not a choice: the browser's language decides.
    assert.deepEqual(chooseLanguage('?lang=fr', 'ko-KR'), { language: 'ko', chosen: false });
  });
});

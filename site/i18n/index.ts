/**
 * The playground's languages: one table of strings per language (en.ts, ko.ts), the
 * language a visit gets, and messages: what the model and the formula checks say,
 * kept as a key and its values so that the page words them in the language shown.
 */
import { en } from './en.ts';
import { ko } from './ko.ts';

export type Strings = typeof en;
export const LANGUAGES = ['en', 'ko'] as const;
export type Language = (typeof LANGUAGES)[number];
export const STRINGS: Readonly<Record<Language, Strings>> = { en, ko };

/** The keys of entries that take values, and the values each takes. */
type ValuesOf<K extends keyof Strings> = Strings[K] extends (values: infer V) => string ? V : never;
export type MessageKey = { [K in keyof Strings]: Strings[K] extends string ? never : K }[keyof Strings];
export type PlainKey = Exclude<keyof Strings, MessageKey>;

/** Something to say, not yet worded: a key of the tables and its values. */
export type Message = { [K in MessageKey]: { readonly key: K; readonly values: ValuesOf<K> } }[MessageKey] | { readonly key: PlainKey };

export function message<K extends MessageKey>(key: K, values: ValuesOf<K>): Message {
  return { key, values } as Message;
}

/** `m` worded in the language of `table`. */
export function say(table: Strings, m: Message): string {
  const entry = table[m.key] as string | ((values: unknown) => string);
  return typeof entry === 'string' ? entry : entry('values' in m ? m.values : undefined);
}

/**
 * The language of a visit: `lang=ko` or `lang=en` in the address wins (a shared link or
 * the visitor's own choice), then the browser's language (Korean for any `ko*`), then
 * English.
 */
export function chooseLanguage(search: string, browserLanguage: string): { language: Language; chosen: boolean } {
  const asked = new URLSearchParams(search).get('lang');
  if (asked === 'ko' || asked === 'en') return { language: asked, chosen: true };
  return { language: browserLanguage.toLowerCase().startsWith('ko') ? 'ko' : 'en', chosen: false };
}

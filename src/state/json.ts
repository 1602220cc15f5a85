/**
 * JSON
 *
 * The text is `{"checksum":"crc32:XXXXXXXX","format":...}`: the checksum is the first
 * member, and covers the UTF-8 bytes of the whole text from its `{` to its `}` except
 * its own 8 hex digits. Whitespace and a byte order mark around the object are not
 * content (an editor's final newline does not break a file).
 */
import { describeValue } from '../errors.ts';
import { type OptimizerStateDict, type SavedState, checkSavedState, fail, isRecord } from './records.ts';
import { checkChecksum, crc32, hex8 } from './checksum.ts';
import { arrayFromBytes, bytesOf, fromBase64, toBase64 } from './bytes.ts';
import { refuseVersion1, stateFromRecord, treeMetadata } from './metadata.ts';


const JSON_CHECKSUM_LEAD = '{"checksum":"crc32:';
export const CHECKSUM_PATTERN = /^crc32:[0-9a-f]{8}$/;

function isJsonWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

/** The text without a leading byte order mark and surrounding JSON whitespace (no regex: linear). */
function jsonContent(text: string): string {
  let begin = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let end = text.length;
  while (begin < end && isJsonWhitespace(text.charCodeAt(begin))) begin++;
  while (end > begin && isJsonWhitespace(text.charCodeAt(end - 1))) end--;
  return begin === 0 && end === text.length ? text : text.slice(begin, end);
}

/**
 * A JSON string of the state (a single optimizer's or a wrapper's); buffers as base64
 * of their bytes (exact).
 */
export function stateToJSON(state: SavedState): string {
  checkSavedState(state);
  const body = JSON.stringify(treeMetadata(state, '', '', (_tensor, _owner, array) => toBase64(bytesOf(array))));
  const rest = `",${body.slice(1)}`;
  const utf8 = new TextEncoder();
  const crc = crc32(utf8.encode(rest), crc32(utf8.encode(JSON_CHECKSUM_LEAD)));
  return `${JSON_CHECKSUM_LEAD}${hex8(crc)}${rest}`;
}

/**
 * Parses and validates what `stateToJSON` wrote (checksum first). The type parameter
 * is the state the caller expects (a single optimizer's by default); the value is
 * whatever valid state the text holds: tell a wrapper's by its `format`.
 */
export function stateFromJSON<S extends SavedState = OptimizerStateDict>(text: string): S {
  if (typeof text !== 'string') fail(`expected the text of stateToJSON, got ${describeValue(text)}`);
  const content = jsonContent(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(content);
  } catch (error) {
    fail(`not JSON (${(error as Error).message})`);
  }
  if (!isRecord(parsed)) fail(`expected an object, got ${describeValue(parsed)}`);
  refuseVersion1(parsed);
  if (!content.startsWith(JSON_CHECKSUM_LEAD)) {
    fail(
      parsed.checksum === undefined
        ? 'the text has no checksum: not written by stateToJSON'
        : `the checksum ${describeValue(parsed.checksum)} is not the first member, where stateToJSON writes it`,
    );
  }
  checkChecksum(new TextEncoder().encode(content), JSON_CHECKSUM_LEAD.length, 'text');
  if (typeof parsed.checksum !== 'string' || !CHECKSUM_PATTERN.test(parsed.checksum)) {
    fail(`the checksum is ${describeValue(parsed.checksum)}, expected crc32: and 8 lowercase hex digits`);
  }
  return stateFromRecord(parsed, (where, dtype, value) => {
    if (typeof value !== 'string') fail(`${where} is ${describeValue(value)}, expected base64 text`);
    return arrayFromBytes(dtype, fromBase64(value, where), where);
  }) as S;
}

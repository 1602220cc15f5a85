/** One message format for every error the library throws: who, what, which value. */

/** Strings longer than this are described by their length, not quoted. */
const LONGEST_QUOTED_STRING = 200;

/**
 * Renders a value for an error message: numbers as JS prints them (NaN, -1), strings
 * quoted; a long string by its length, so that passing a 10 MB text where an object
 * belongs does not make a 10 MB message.
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > LONGEST_QUOTED_STRING ? `a string of ${value.length} characters` : JSON.stringify(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return `an Array of length ${value.length}`;
  if (value instanceof RegExp) return String(value);
  const type = (value as object).constructor?.name;
  if (type === undefined || type === 'Object') return 'an object';
  return `${/^[AEIOU]/.test(type) ? 'an' : 'a'} ${type}`;
}

/** `Adam: invalid beta1: 1.5 (expected a number in [0, 1))` */
export function optionError(owner: string, option: string, value: unknown, expected: string): RangeError {
  return new RangeError(`${owner}: invalid ${option}: ${describeValue(value)} (expected ${expected})`);
}

/** Thrown by `update` when the gradients do not fit the parameters, or are not finite. */
export class UpdateError extends Error {
  /** The parameter (or gradient) name the error is about. */
  readonly param: string;
  /** The first index of a non-finite gradient, or of the element a step made non-finite. */
  readonly index: number | undefined;
  constructor(message: string, param: string, index?: number) {
    super(message);
    this.name = 'UpdateError';
    this.param = param;
    this.index = index;
  }
}

/** Thrown by `loadStateDict` and the state decoders for a state that does not fit. */
export class StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateError';
  }
}

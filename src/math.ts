/**
 * Scalar helpers computed once per step, outside the element loops.
 *
 * `powInt` exists because V8's `**` is not correctly rounded (`0.9 ** 4` gives
 * 0.6561000000000001), while CPython, numpy and PyTorch call the C library's pow,
 * which is. Adam's bias corrections `1 - beta^t` use it, so they are the same
 * doubles as the book's and PyTorch's, and a float64 run can match them bit for bit.
 */

const SPLITTER = 134217729; // 2^27 + 1, Veltkamp's split constant for doubles

/** beta^n for an integer n >= 0, rounded once from a double-double product. */
export function powInt(base: number, n: number): number {
  result[0] = base;
  powIntInto(result, 0, n);
  return result[0]!;
}

const result = new Float64Array(1);

/**
 * Replaces `out[index]` (the base) by base^n: powInt as the optimizer steps call it.
 * A double passed to or returned from a call V8 does not inline is boxed, an allocation
 * per call (seen: Adam's step allocated in some processes and not in others, as V8's
 * inlining went); one read from and written into a caller's typed array is not.
 */
export function powIntInto(out: Float64Array, index: number, n: number): void {
  const base = out[index]!;
  if (n > 0xffffffff) {
    out[index] = Math.pow(base, n); // past 2^32 steps; not reached by any training run
    return;
  }
  // Exponentiation by squaring on double-double numbers (hi + lo). The product of two
  // double-doubles is written out inline, twice: a helper returning two doubles would
  // box them whenever V8 declines to inline it.
  let resultHi = 1;
  let resultLo = 0;
  let baseHi = base;
  let baseLo = 0;
  // Halved with integer operations: Math.floor(exponent / 2) would be a double.
  let exponent = n >>> 0;
  while (exponent !== 0) {
    if ((exponent & 1) === 1) {
      // result *= base
      const product = resultHi * baseHi;
      let t = SPLITTER * resultHi;
      const aHi = t - (t - resultHi);
      const aLo = resultHi - aHi;
      t = SPLITTER * baseHi;
      const bHi = t - (t - baseHi);
      const bLo = baseHi - bHi;
      const error = aHi * bHi - product + aHi * bLo + aLo * bHi + aLo * bLo + (resultHi * baseLo + resultLo * baseHi);
      resultHi = product + error;
      resultLo = error - (resultHi - product);
    }
    exponent >>>= 1;
    if (exponent !== 0) {
      // base *= base
      const product = baseHi * baseHi;
      const t = SPLITTER * baseHi;
      const aHi = t - (t - baseHi);
      const aLo = baseHi - aHi;
      const error = aHi * aHi - product + 2 * (aHi * aLo) + aLo * aLo + 2 * (baseHi * baseLo);
      baseHi = product + error;
      baseLo = error - (baseHi - product);
    }
  }
  out[index] = resultHi + resultLo;
}

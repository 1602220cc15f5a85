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
  let resultHi = 1;
  let resultLo = 0;
  let baseHi = base;
  let baseLo = 0;
  let exponent = n;
  while (exponent > 0) {
    if (exponent % 2 === 1) {
      const hi = multiplyHi(resultHi, resultLo, baseHi, baseLo);
      resultLo = multiplyLoLast;
      resultHi = hi;
    }
    exponent = Math.floor(exponent / 2);
    if (exponent > 0) {
      const hi = multiplyHi(baseHi, baseLo, baseHi, baseLo);
      baseLo = multiplyLoLast;
      baseHi = hi;
    }
  }
  return resultHi + resultLo;
}

// The low word of the last double-double product (a second return value without allocating).
let multiplyLoLast = 0;

function multiplyHi(aHi: number, aLo: number, bHi: number, bLo: number): number {
  const product = aHi * bHi;
  let t = SPLITTER * aHi;
  const aHiHi = t - (t - aHi);
  const aHiLo = aHi - aHiHi;
  t = SPLITTER * bHi;
  const bHiHi = t - (t - bHi);
  const bHiLo = bHi - bHiHi;
  let error = aHiHi * bHiHi - product + aHiHi * bHiLo + aHiLo * bHiHi + aHiLo * bHiLo;
  error += aHi * bLo + aLo * bHi;
  const sum = product + error;
  multiplyLoLast = error - (sum - product);
  return sum;
}

/** powInt against beta^t correctly rounded by 100-digit decimal arithmetic (generate.py). */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { powInt } from '../src/math.ts';
import { reference } from './fixtures.ts';

it('powInt(beta, t) is correctly rounded, and 1 - beta^t equals what C pow gives Python', () => {
  let cPowDiffers = 0;
  for (const [beta, t, exact, cPow] of (reference as unknown as { powers: [number, number, number, number][] }).powers) {
    assert.equal(powInt(beta, t), exact, `${beta}^${t}`);
    if (exact !== cPow) cPowDiffers += 1;
    // The bias corrections of Adam and NAdam therefore match the book's and PyTorch's.
    assert.equal(1 - powInt(beta, t), 1 - cPow, `1 - ${beta}^${t}`);
  }
  // V8's own ** is further off (0.9 ** 4 is 0.6561000000000001): the reason powInt exists.
  assert.notEqual(0.9 ** 4, powInt(0.9, 4));
  assert.equal(powInt(0.9, 4), 0.6561);
  assert.ok(cPowDiffers > 0, 'the table includes cases where C pow is not correctly rounded');
});

it('powInt at the ends of the exponent range', () => {
  assert.equal(powInt(0.9, 0), 1);
  assert.equal(powInt(0.9, 1), 0.9);
  // The exponent is halved with 32-bit integer operations up to 2^32 - 1 ...
  assert.equal(powInt(-1, 2 ** 32 - 1), -1); // odd
  assert.equal(powInt(-1, 2 ** 32 - 2), 1); // even
  assert.equal(powInt(0.5, 2 ** 32 - 1), 0); // 2^-(2^32 - 1) underflows
  assert.equal(powInt(1, 2 ** 32 - 1), 1);
  // ... and past it by Math.pow (no training run takes 2^32 steps).
  assert.equal(powInt(-1, 2 ** 32 + 1), -1);
  assert.equal(powInt(1, 2 ** 40), 1);
  assert.equal(powInt(0.999, 2 ** 33), 0);
});

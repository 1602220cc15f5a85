/**
 * The optimizer state a 784 x 100 matrix (the app's hidden layer) keeps, in numbers:
 * Adam's two per element against Adafactor's factored row and column (one per row and
 * one per column: 884), and Adafactor at optax's default minDimSizeToFactor 128, which
 * does not factor a matrix with a dimension of 100 (it keeps the full second moment).
 * Counted from each optimizer's stateDict() after one step, as a user would.
 */
import { Adafactor, Adam, type OptimizerStateDict } from 'nesterov';

const ROWS = 784;
const COLS = 100;

function numbersOf(dict: OptimizerStateDict): number {
  return Object.values(dict.params).reduce((sum, record) => sum + Object.values(record.buffers).reduce((s, buffer) => s + buffer.length, 0), 0);
}

/** `optimizer state of a 784 x 100 matrix (<optimizer>), numbers` -> count. */
export function stateSizeLines(): Record<string, number> {
  const optimizers: [string, { update(p: object, g: object): unknown; stateDict(): OptimizerStateDict }][] = [
    ['Adam', new Adam()],
    ['Adafactor, minDimSizeToFactor 100', new Adafactor({ minDimSizeToFactor: 100, shapes: { W: [ROWS, COLS] } })],
    ['Adafactor, minDimSizeToFactor 128 (its default: not factored)', new Adafactor({ shapes: { W: [ROWS, COLS] } })],
  ];
  const lines: Record<string, number> = {};
  for (const [label, optimizer] of optimizers) {
    optimizer.update({ W: new Float32Array(ROWS * COLS).fill(0.1) }, { W: new Float32Array(ROWS * COLS).fill(0.01) });
    lines[`optimizer state of a ${ROWS} x ${COLS} matrix (${label}), numbers`] = numbersOf(optimizer.stateDict());
  }
  return lines;
}

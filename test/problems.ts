/** Standard test functions with known minimizers: value and gradient in float64. */

export interface Problem {
  name: 'quadratic' | 'book' | 'rosenbrock';
  start: number[];
  minimizer: number[];
  /** Writes the gradient into `out`, returns f(x). */
  gradient(x: Float64Array, out: Float64Array): number;
}

// f(x) = sum_i a_i (x_i - t_i)^2 / 2 with a_i = 1..10 (condition number 10), t_i = 1 + i / 10.
const CURVATURES = Array.from({ length: 10 }, (_, i) => i + 1);
const TARGETS = Array.from({ length: 10 }, (_, i) => 1 + i / 10);

export const PROBLEMS: Problem[] = [
  {
    name: 'quadratic',
    start: new Array<number>(10).fill(0),
    minimizer: TARGETS,
    gradient(x, out) {
      let f = 0;
      for (let i = 0; i < x.length; i++) {
        const d = x[i]! - TARGETS[i]!;
        out[i] = CURVATURES[i]! * d;
        f += (CURVATURES[i]! * d * d) / 2;
      }
      return f;
    },
  },
  {
    // The book's comparison function f(x, y) = x^2 / 20 + y^2, from (-7, 2).
    name: 'book',
    start: [-7, 2],
    minimizer: [0, 0],
    gradient(x, out) {
      out[0] = x[0]! / 10;
      out[1] = 2 * x[1]!;
      return (x[0]! * x[0]!) / 20 + x[1]! * x[1]!;
    },
  },
  {
    // Rosenbrock (1960): f = (1 - x)^2 + 100 (y - x^2)^2, from the classic (-1.2, 1).
    name: 'rosenbrock',
    start: [-1.2, 1],
    minimizer: [1, 1],
    gradient(x, out) {
      const a = 1 - x[0]!;
      const b = x[1]! - x[0]! * x[0]!;
      out[0] = -2 * a - 400 * x[0]! * b;
      out[1] = 200 * b;
      return a * a + 100 * b * b;
    },
  },
];

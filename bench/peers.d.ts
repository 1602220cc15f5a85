// The two JavaScript minimizers bench/lbfgs.ts compares against ship no types.
declare module 'fmin';
declare module 'numeric' {
  const numeric: { uncmin(f: (x: number[]) => number, x0: number[], tol?: number, gradient?: (x: number[]) => number[], maxit?: number): unknown };
  export default numeric;
}

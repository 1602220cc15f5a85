/**
 * The book's optimizer code ("Deep Learning from Scratch", common/optimizer.py) in
 * JavaScript as written: one pass per numpy statement, and a new temporary array for
 * every numpy expression that makes one. What a reader of the seed post would write.
 */
type Dict = { [name: string]: Float32Array };

function scaled(a: Float32Array, c: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = c * a[i]!;
  return out;
}

/** v *= mu; v -= lr * g; p += mu * mu * v; p -= (1 + mu) * lr * g */
export function bookNesterovStep(params: Dict, grads: Dict, state: { v: Float32Array }, lr: number, mu: number): void {
  for (const key of Object.keys(params)) {
    const p = params[key]!;
    const g = grads[key]!;
    const v = state.v;
    for (let i = 0; i < v.length; i++) v[i] = v[i]! * mu;
    const lrG = scaled(g, lr);
    for (let i = 0; i < v.length; i++) v[i] = v[i]! - lrG[i]!;
    const mmV = scaled(v, mu * mu);
    for (let i = 0; i < p.length; i++) p[i] = p[i]! + mmV[i]!;
    const cG = scaled(g, (1 + mu) * lr);
    for (let i = 0; i < p.length; i++) p[i] = p[i]! - cG[i]!;
  }
}

/**
 * iter += 1; lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)
 * m += (1 - b1) * (g - m); v += (1 - b2) * (g ** 2 - v); p -= lr_t * m / (sqrt(v) + 1e-7)
 */
export function bookAdamStep(params: Dict, grads: Dict, state: { m: Float32Array; v: Float32Array; iter: number }, lr: number, beta1: number, beta2: number): void {
  state.iter += 1;
  const lrT = (lr * Math.sqrt(1 - beta2 ** state.iter)) / (1 - beta1 ** state.iter);
  for (const key of Object.keys(params)) {
    const p = params[key]!;
    const g = grads[key]!;
    const { m, v } = state;
    const n = p.length;
    const gMinusM = new Float32Array(n);
    for (let i = 0; i < n; i++) gMinusM[i] = g[i]! - m[i]!;
    const dm = scaled(gMinusM, 1 - beta1);
    for (let i = 0; i < n; i++) m[i] = m[i]! + dm[i]!;
    const g2 = new Float32Array(n);
    for (let i = 0; i < n; i++) g2[i] = g[i]! ** 2;
    const g2MinusV = new Float32Array(n);
    for (let i = 0; i < n; i++) g2MinusV[i] = g2[i]! - v[i]!;
    const dv = scaled(g2MinusV, 1 - beta2);
    for (let i = 0; i < n; i++) v[i] = v[i]! + dv[i]!;
    const lrM = scaled(m, lrT);
    const root = new Float32Array(n);
    for (let i = 0; i < n; i++) root[i] = Math.sqrt(v[i]!);
    const denominator = new Float32Array(n);
    for (let i = 0; i < n; i++) denominator[i] = root[i]! + 1e-7;
    const update = new Float32Array(n);
    for (let i = 0; i < n; i++) update[i] = lrM[i]! / denominator[i]!;
    for (let i = 0; i < n; i++) p[i] = p[i]! - update[i]!;
  }
}

// Muon's Newton-Schulz iteration (src/rules/muon.ts): dense float32 matrix products.
// Matrices are row-major with both dimensions padded to multiples of 4 by zeros (the
// padding stays zero through the iteration: a zero row or column of X gives a zero row
// and column of A = X X^T, of A A and of B X). Register-blocked: 4 x 4 dot products in
// `gram`, 4 rows x 16 columns of accumulators in `nsApply`, so that each vector loaded is
// used four times and the working set of the inner loop stays in the first cache levels.

// @ts-nocheck: AssemblyScript, not TypeScript (v128 and f32x4 are its builtins).

/** Horizontal sum of the four lanes. */
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/**
 * out (rows x rows) = x x^T for x (rows x cols); rows and cols multiples of 4. Each 4 x 4
 * block of dot products above the diagonal is computed once and written to both halves
 * (the product is symmetric; both halves then hold the same bits).
 */
export function gram(x: usize, rows: i32, cols: i32, out: usize): void {
  const rowBytes = <usize>cols << 2;
  const outRow = <usize>rows << 2;
  for (let i = 0; i < rows; i += 4) {
    const xi0 = x + <usize>i * rowBytes, xi1 = xi0 + rowBytes, xi2 = xi1 + rowBytes, xi3 = xi2 + rowBytes;
    for (let j = i; j < rows; j += 4) {
      const xj0 = x + <usize>j * rowBytes, xj1 = xj0 + rowBytes, xj2 = xj1 + rowBytes, xj3 = xj2 + rowBytes;
      let a00 = f32x4.splat(0), a01 = f32x4.splat(0), a02 = f32x4.splat(0), a03 = f32x4.splat(0);
      let a10 = f32x4.splat(0), a11 = f32x4.splat(0), a12 = f32x4.splat(0), a13 = f32x4.splat(0);
      let a20 = f32x4.splat(0), a21 = f32x4.splat(0), a22 = f32x4.splat(0), a23 = f32x4.splat(0);
      let a30 = f32x4.splat(0), a31 = f32x4.splat(0), a32 = f32x4.splat(0), a33 = f32x4.splat(0);
      for (let o: usize = 0; o < rowBytes; o += 16) {
        const u0 = v128.load(xi0 + o), u1 = v128.load(xi1 + o), u2 = v128.load(xi2 + o), u3 = v128.load(xi3 + o);
        const w0 = v128.load(xj0 + o), w1 = v128.load(xj1 + o), w2 = v128.load(xj2 + o), w3 = v128.load(xj3 + o);
        a00 = f32x4.add(a00, f32x4.mul(u0, w0)); a01 = f32x4.add(a01, f32x4.mul(u0, w1));
        a02 = f32x4.add(a02, f32x4.mul(u0, w2)); a03 = f32x4.add(a03, f32x4.mul(u0, w3));
        a10 = f32x4.add(a10, f32x4.mul(u1, w0)); a11 = f32x4.add(a11, f32x4.mul(u1, w1));
        a12 = f32x4.add(a12, f32x4.mul(u1, w2)); a13 = f32x4.add(a13, f32x4.mul(u1, w3));
        a20 = f32x4.add(a20, f32x4.mul(u2, w0)); a21 = f32x4.add(a21, f32x4.mul(u2, w1));
        a22 = f32x4.add(a22, f32x4.mul(u2, w2)); a23 = f32x4.add(a23, f32x4.mul(u2, w3));
        a30 = f32x4.add(a30, f32x4.mul(u3, w0)); a31 = f32x4.add(a31, f32x4.mul(u3, w1));
        a32 = f32x4.add(a32, f32x4.mul(u3, w2)); a33 = f32x4.add(a33, f32x4.mul(u3, w3));
      }
      const r0 = out + <usize>i * outRow + (<usize>j << 2), r1 = r0 + outRow, r2 = r1 + outRow, r3 = r2 + outRow;
      const c0 = out + <usize>j * outRow + (<usize>i << 2), c1 = c0 + outRow, c2 = c1 + outRow, c3 = c2 + outRow;
      const s00 = hsum(a00), s01 = hsum(a01), s02 = hsum(a02), s03 = hsum(a03);
      const s10 = hsum(a10), s11 = hsum(a11), s12 = hsum(a12), s13 = hsum(a13);
      const s20 = hsum(a20), s21 = hsum(a21), s22 = hsum(a22), s23 = hsum(a23);
      const s30 = hsum(a30), s31 = hsum(a31), s32 = hsum(a32), s33 = hsum(a33);
      store<f32>(r0, s00); store<f32>(r0, s01, 4); store<f32>(r0, s02, 8); store<f32>(r0, s03, 12);
      store<f32>(r1, s10); store<f32>(r1, s11, 4); store<f32>(r1, s12, 8); store<f32>(r1, s13, 12);
      store<f32>(r2, s20); store<f32>(r2, s21, 4); store<f32>(r2, s22, 8); store<f32>(r2, s23, 12);
      store<f32>(r3, s30); store<f32>(r3, s31, 4); store<f32>(r3, s32, 8); store<f32>(r3, s33, 12);
      store<f32>(c0, s00); store<f32>(c0, s10, 4); store<f32>(c0, s20, 8); store<f32>(c0, s30, 12);
      store<f32>(c1, s01); store<f32>(c1, s11, 4); store<f32>(c1, s21, 8); store<f32>(c1, s31, 12);
      store<f32>(c2, s02); store<f32>(c2, s12, 4); store<f32>(c2, s22, 8); store<f32>(c2, s32, 12);
      store<f32>(c3, s03); store<f32>(c3, s13, 4); store<f32>(c3, s23, 8); store<f32>(c3, s33, 12);
    }
  }
}

/** m (n elements, a multiple of 4) = b a + c m: Newton-Schulz's B = b A + c A A, in place. */
export function nsPoly(a: usize, m: usize, n: i32, s: usize): void {
  const vb = f32x4.splat(<f32>load<f64>(s, 8)), vc = f32x4.splat(<f32>load<f64>(s, 16));
  const end = <usize>n << 2;
  for (let o: usize = 0; o < end; o += 16) {
    v128.store(m + o, f32x4.add(f32x4.mul(vb, v128.load(a + o)), f32x4.mul(vc, v128.load(m + o))));
  }
}

/**
 * out (rows x cols) = a x + bm x, bm (rows x rows); rows and cols multiples of 4.
 * Column tiles of 16 (then 4), rows in fours: the tile's accumulators stay in registers
 * over the whole sum, and the rows x 16 strip of x it reads stays in cache across rows.
 */
export function nsApply(bm: usize, x: usize, rows: i32, cols: i32, out: usize, s: usize): void {
  const va = f32x4.splat(<f32>load<f64>(s, 0));
  const rowBytes = <usize>cols << 2;
  const bRow = <usize>rows << 2;
  const wide = <usize>(cols & ~15) << 2;
  for (let t: usize = 0; t < wide; t += 64) {
    for (let i = 0; i < rows; i += 4) {
      const b0 = bm + <usize>i * bRow, b1 = b0 + bRow, b2 = b1 + bRow, b3 = b2 + bRow;
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c02 = f32x4.splat(0), c03 = f32x4.splat(0);
      let c10 = f32x4.splat(0), c11 = f32x4.splat(0), c12 = f32x4.splat(0), c13 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c22 = f32x4.splat(0), c23 = f32x4.splat(0);
      let c30 = f32x4.splat(0), c31 = f32x4.splat(0), c32 = f32x4.splat(0), c33 = f32x4.splat(0);
      let xk = x + t;
      for (let k: usize = 0; k < bRow; k += 4) {
        const x0 = v128.load(xk), x1 = v128.load(xk, 16), x2 = v128.load(xk, 32), x3 = v128.load(xk, 48);
        const e0 = f32x4.splat(load<f32>(b0 + k)), e1 = f32x4.splat(load<f32>(b1 + k));
        const e2 = f32x4.splat(load<f32>(b2 + k)), e3 = f32x4.splat(load<f32>(b3 + k));
        c00 = f32x4.add(c00, f32x4.mul(e0, x0)); c01 = f32x4.add(c01, f32x4.mul(e0, x1));
        c02 = f32x4.add(c02, f32x4.mul(e0, x2)); c03 = f32x4.add(c03, f32x4.mul(e0, x3));
        c10 = f32x4.add(c10, f32x4.mul(e1, x0)); c11 = f32x4.add(c11, f32x4.mul(e1, x1));
        c12 = f32x4.add(c12, f32x4.mul(e1, x2)); c13 = f32x4.add(c13, f32x4.mul(e1, x3));
        c20 = f32x4.add(c20, f32x4.mul(e2, x0)); c21 = f32x4.add(c21, f32x4.mul(e2, x1));
        c22 = f32x4.add(c22, f32x4.mul(e2, x2)); c23 = f32x4.add(c23, f32x4.mul(e2, x3));
        c30 = f32x4.add(c30, f32x4.mul(e3, x0)); c31 = f32x4.add(c31, f32x4.mul(e3, x1));
        c32 = f32x4.add(c32, f32x4.mul(e3, x2)); c33 = f32x4.add(c33, f32x4.mul(e3, x3));
        xk += rowBytes;
      }
      const xr0 = x + <usize>i * rowBytes + t, xr1 = xr0 + rowBytes, xr2 = xr1 + rowBytes, xr3 = xr2 + rowBytes;
      const o0 = out + <usize>i * rowBytes + t, o1 = o0 + rowBytes, o2 = o1 + rowBytes, o3 = o2 + rowBytes;
      v128.store(o0, f32x4.add(f32x4.mul(va, v128.load(xr0)), c00)); v128.store(o0, f32x4.add(f32x4.mul(va, v128.load(xr0, 16)), c01), 16);
      v128.store(o0, f32x4.add(f32x4.mul(va, v128.load(xr0, 32)), c02), 32); v128.store(o0, f32x4.add(f32x4.mul(va, v128.load(xr0, 48)), c03), 48);
      v128.store(o1, f32x4.add(f32x4.mul(va, v128.load(xr1)), c10)); v128.store(o1, f32x4.add(f32x4.mul(va, v128.load(xr1, 16)), c11), 16);
      v128.store(o1, f32x4.add(f32x4.mul(va, v128.load(xr1, 32)), c12), 32); v128.store(o1, f32x4.add(f32x4.mul(va, v128.load(xr1, 48)), c13), 48);
      v128.store(o2, f32x4.add(f32x4.mul(va, v128.load(xr2)), c20)); v128.store(o2, f32x4.add(f32x4.mul(va, v128.load(xr2, 16)), c21), 16);
      v128.store(o2, f32x4.add(f32x4.mul(va, v128.load(xr2, 32)), c22), 32); v128.store(o2, f32x4.add(f32x4.mul(va, v128.load(xr2, 48)), c23), 48);
      v128.store(o3, f32x4.add(f32x4.mul(va, v128.load(xr3)), c30)); v128.store(o3, f32x4.add(f32x4.mul(va, v128.load(xr3, 16)), c31), 16);
      v128.store(o3, f32x4.add(f32x4.mul(va, v128.load(xr3, 32)), c32), 32); v128.store(o3, f32x4.add(f32x4.mul(va, v128.load(xr3, 48)), c33), 48);
    }
  }
  for (let t: usize = wide; t < rowBytes; t += 16) {
    for (let i = 0; i < rows; i += 4) {
      const b0 = bm + <usize>i * bRow, b1 = b0 + bRow, b2 = b1 + bRow, b3 = b2 + bRow;
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
      let xk = x + t;
      for (let k: usize = 0; k < bRow; k += 4) {
        const x0 = v128.load(xk);
        c0 = f32x4.add(c0, f32x4.mul(f32x4.splat(load<f32>(b0 + k)), x0));
        c1 = f32x4.add(c1, f32x4.mul(f32x4.splat(load<f32>(b1 + k)), x0));
        c2 = f32x4.add(c2, f32x4.mul(f32x4.splat(load<f32>(b2 + k)), x0));
        c3 = f32x4.add(c3, f32x4.mul(f32x4.splat(load<f32>(b3 + k)), x0));
        xk += rowBytes;
      }
      const xr0 = x + <usize>i * rowBytes + t, xr1 = xr0 + rowBytes, xr2 = xr1 + rowBytes, xr3 = xr2 + rowBytes;
      const o0 = out + <usize>i * rowBytes + t, o1 = o0 + rowBytes, o2 = o1 + rowBytes, o3 = o2 + rowBytes;
      v128.store(o0, f32x4.add(f32x4.mul(va, v128.load(xr0)), c0));
      v128.store(o1, f32x4.add(f32x4.mul(va, v128.load(xr1)), c1));
      v128.store(o2, f32x4.add(f32x4.mul(va, v128.load(xr2)), c2));
      v128.store(o3, f32x4.add(f32x4.mul(va, v128.load(xr3)), c3));
    }
  }
}

/**
 * Muon's Newton-Schulz iteration on x (rows x cols, rows <= cols, padded as above):
 * `steps` times A = x x^T, B = b A + c A A, x <- a x + B x, ping-ponging between x and t;
 * aa and bm are rows x rows scratch. Scalars: a, b, c. Returns the address holding the
 * result (x after an even number of steps, t after an odd one).
 */
export function newtonSchulz(x: usize, t: usize, aa: usize, bm: usize, rows: i32, cols: i32, steps: i32, s: usize): usize {
  let from = x, to = t;
  for (let k = 0; k < steps; k++) {
    gram(from, rows, cols, aa);
    gram(aa, rows, rows, bm);
    nsPoly(aa, bm, rows * rows, s);
    nsApply(bm, from, rows, cols, to, s);
    const swap = from;
    from = to;
    to = swap;
  }
  return from;
}

/**
 * out (m x n) = (accumulate ? out : 0) + A B: the main job's network (app/nn/network.ts)
 * runs its forward and backward products here. A (m x k) is read at a + i aRow + p aCol
 * (bytes), so the same kernel takes X, X^T or a delta matrix without a transposing copy;
 * B (k x n) and out are row-major with row stride n. m and n multiples of 4. Tiles as
 * nsApply's: 4 rows by 16 (then 4) columns of accumulators, the sum over p in order.
 * A step p whose four values of A are all zero is skipped: ReLU outputs and MNIST
 * backgrounds are mostly zero, and adding 0 b to a finite sum changes nothing (the
 * network's JS loops skip the same terms).
 */
export function matmul(a: usize, aRow: i32, aCol: i32, b: usize, m: i32, k: i32, n: i32, out: usize, accumulate: i32): void {
  const rowBytes = <usize>n << 2;
  const wide = <usize>(n & ~15) << 2;
  const rowStep = <usize>aRow;
  const colStep = <usize>aCol;
  const zero = f32x4.splat(0);
  for (let t: usize = 0; t < wide; t += 64) {
    for (let i = 0; i < m; i += 4) {
      const o0 = out + <usize>i * rowBytes + t, o1 = o0 + rowBytes, o2 = o1 + rowBytes, o3 = o2 + rowBytes;
      let c00 = zero, c01 = zero, c02 = zero, c03 = zero;
      let c10 = zero, c11 = zero, c12 = zero, c13 = zero;
      let c20 = zero, c21 = zero, c22 = zero, c23 = zero;
      let c30 = zero, c31 = zero, c32 = zero, c33 = zero;
      if (accumulate != 0) {
        c00 = v128.load(o0); c01 = v128.load(o0, 16); c02 = v128.load(o0, 32); c03 = v128.load(o0, 48);
        c10 = v128.load(o1); c11 = v128.load(o1, 16); c12 = v128.load(o1, 32); c13 = v128.load(o1, 48);
        c20 = v128.load(o2); c21 = v128.load(o2, 16); c22 = v128.load(o2, 32); c23 = v128.load(o2, 48);
        c30 = v128.load(o3); c31 = v128.load(o3, 16); c32 = v128.load(o3, 32); c33 = v128.load(o3, 48);
      }
      let a0 = a + <usize>i * rowStep;
      let bk = b + t;
      for (let p = 0; p < k; p++) {
        const s0 = load<f32>(a0), s1 = load<f32>(a0 + rowStep), s2 = load<f32>(a0 + 2 * rowStep), s3 = load<f32>(a0 + 3 * rowStep);
        if (((reinterpret<u32>(s0) | reinterpret<u32>(s1) | reinterpret<u32>(s2) | reinterpret<u32>(s3)) << 1) != 0) {
          const x0 = v128.load(bk), x1 = v128.load(bk, 16), x2 = v128.load(bk, 32), x3 = v128.load(bk, 48);
          const e0 = f32x4.splat(s0), e1 = f32x4.splat(s1), e2 = f32x4.splat(s2), e3 = f32x4.splat(s3);
          c00 = f32x4.add(c00, f32x4.mul(e0, x0)); c01 = f32x4.add(c01, f32x4.mul(e0, x1));
          c02 = f32x4.add(c02, f32x4.mul(e0, x2)); c03 = f32x4.add(c03, f32x4.mul(e0, x3));
          c10 = f32x4.add(c10, f32x4.mul(e1, x0)); c11 = f32x4.add(c11, f32x4.mul(e1, x1));
          c12 = f32x4.add(c12, f32x4.mul(e1, x2)); c13 = f32x4.add(c13, f32x4.mul(e1, x3));
          c20 = f32x4.add(c20, f32x4.mul(e2, x0)); c21 = f32x4.add(c21, f32x4.mul(e2, x1));
          c22 = f32x4.add(c22, f32x4.mul(e2, x2)); c23 = f32x4.add(c23, f32x4.mul(e2, x3));
          c30 = f32x4.add(c30, f32x4.mul(e3, x0)); c31 = f32x4.add(c31, f32x4.mul(e3, x1));
          c32 = f32x4.add(c32, f32x4.mul(e3, x2)); c33 = f32x4.add(c33, f32x4.mul(e3, x3));
        }
        a0 += colStep;
        bk += rowBytes;
      }
      v128.store(o0, c00); v128.store(o0, c01, 16); v128.store(o0, c02, 32); v128.store(o0, c03, 48);
      v128.store(o1, c10); v128.store(o1, c11, 16); v128.store(o1, c12, 32); v128.store(o1, c13, 48);
      v128.store(o2, c20); v128.store(o2, c21, 16); v128.store(o2, c22, 32); v128.store(o2, c23, 48);
      v128.store(o3, c30); v128.store(o3, c31, 16); v128.store(o3, c32, 32); v128.store(o3, c33, 48);
    }
  }
  for (let t: usize = wide; t < rowBytes; t += 16) {
    for (let i = 0; i < m; i += 4) {
      const o0 = out + <usize>i * rowBytes + t, o1 = o0 + rowBytes, o2 = o1 + rowBytes, o3 = o2 + rowBytes;
      let c0 = zero, c1 = zero, c2 = zero, c3 = zero;
      if (accumulate != 0) {
        c0 = v128.load(o0); c1 = v128.load(o1); c2 = v128.load(o2); c3 = v128.load(o3);
      }
      let a0 = a + <usize>i * rowStep;
      let bk = b + t;
      for (let p = 0; p < k; p++) {
        const s0 = load<f32>(a0), s1 = load<f32>(a0 + rowStep), s2 = load<f32>(a0 + 2 * rowStep), s3 = load<f32>(a0 + 3 * rowStep);
        if (((reinterpret<u32>(s0) | reinterpret<u32>(s1) | reinterpret<u32>(s2) | reinterpret<u32>(s3)) << 1) != 0) {
          const x0 = v128.load(bk);
          c0 = f32x4.add(c0, f32x4.mul(f32x4.splat(s0), x0));
          c1 = f32x4.add(c1, f32x4.mul(f32x4.splat(s1), x0));
          c2 = f32x4.add(c2, f32x4.mul(f32x4.splat(s2), x0));
          c3 = f32x4.add(c3, f32x4.mul(f32x4.splat(s3), x0));
        }
        a0 += colStep;
        bk += rowBytes;
      }
      v128.store(o0, c0); v128.store(o1, c1); v128.store(o2, c2); v128.store(o3, c3);
    }
  }
}

#!/usr/bin/python3
"""The Python side of the Muon rows of `npm run bench` (bench/muon.ts): ms per Muon step
of one matrix, float32, one thread, the computation of KellerJordan/Muon muon.py (commit
857d1adc) in float32 instead of bfloat16 (as ours). Prints one JSON object.

Peers, each timed as the whole step and, inside the same calls, its Newton-Schulz part:
- "torch": torch 1.13's `@` (torch.matmul). Debian's build says BLAS_INFO=generic: its
  float32 matmul is the reference BLAS (netlib sgemm), not OpenBLAS or MKL.
- "onednn": the same chain through torch 1.13's bundled oneDNN (mkldnn_linear, x w^T),
  the optimized matrix product this torch has; conversions to and from its layout are
  inside the timed region.
- "numpy": the same chain in numpy float32, only when numpy's BLAS is an optimized one
  (on Debian's default numpy links libblas.so.3, the reference BLAS: then skipped).

Usage: torch_muon.py ROWSxCOLS[,ROWSxCOLS...] [seconds-per-cell]
"""
import json
import os
import sys
import time

import torch

torch.set_num_threads(1)
A, B, C = 3.4445, -4.7750, 2.0315


def medians_ms(step, budget):
    """Medians (ms) of the whole step and of its Newton-Schulz part, both from the same
    calls: `step` returns the seconds its Newton-Schulz took. One warm-up call."""
    t0 = time.perf_counter()
    step()
    once = time.perf_counter() - t0
    reps = max(3, min(15, int(budget / max(once, 1e-6))))
    whole, ns = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        ns.append(step())
        whole.append(time.perf_counter() - t0)
    whole.sort()
    ns.sort()
    return whole[len(whole) // 2] * 1000, ns[len(ns) // 2] * 1000


def ns_torch(G, steps=5):
    X = G
    tall = G.size(0) > G.size(1)
    if tall:
        X = X.T
    X = X / (X.norm() + 1e-7)
    for _ in range(steps):
        Am = X @ X.T
        Bm = B * Am + C * Am @ Am
        X = A * X + Bm @ X
    return X.T if tall else X


def ns_onednn(G, steps=5):
    # mkldnn_linear(x, w) = x w^T on oneDNN tensors: A = X X^T, A A = A A^T (A is
    # symmetric), B X = B (X^T)^T.
    lin = torch._C._nn.mkldnn_linear
    X = G
    tall = G.size(0) > G.size(1)
    if tall:
        X = X.T
    X = (X / (X.norm() + 1e-7)).contiguous()
    for _ in range(steps):
        Xm = X.to_mkldnn()
        Am = lin(Xm, Xm, None)
        AAm = lin(Am, Am, None)
        Bm = (B * Am.to_dense() + C * AAm.to_dense()).to_mkldnn()
        BX = lin(Bm, X.T.contiguous().to_mkldnn(), None).to_dense()
        X = A * X + BX
    return X.T if tall else X


def ns_numpy(np, G, steps=5):
    X = G.T if G.shape[0] > G.shape[1] else G
    X = X / (np.linalg.norm(X) + np.float32(1e-7))
    for _ in range(steps):
        Am = X @ X.T
        Bm = np.float32(B) * Am + np.float32(C) * (Am @ Am)
        X = np.float32(A) * X + Bm @ X
    return X.T if G.shape[0] > G.shape[1] else X


def numpy_blas():
    """numpy and its BLAS library (the file libblas.so.3 resolves to), or None without numpy."""
    try:
        import numpy as np
    except ImportError:
        return None, None
    target = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    libraries = []
    try:
        libraries = np.__config__.get_info("blas_opt_info").get("libraries", [])
    except Exception:  # numpy >= 1.26 has no get_info
        pass
    optimized = any(name in (target + " ".join(libraries)).lower() for name in ("openblas", "mkl", "blis", "atlas", "accelerate"))
    return np, {"numpy": np.__version__, "libraries": libraries, "libblas.so.3": target, "optimized": optimized}


def main():
    budget = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    config = torch.__config__.show()
    blas = next((part.split("=")[1] for part in config.replace(",", " ").split() if part.startswith("BLAS_INFO=")), "unknown")
    np, numpy_info = numpy_blas()
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blasInfo": blas,
        "onednn": torch.backends.mkldnn.is_available(),
        "numpyBlas": numpy_info,
        "results": {},
    }
    for shape in sys.argv[1].split(","):
        rows, cols = (int(d) for d in shape.split("x"))
        torch.manual_seed(0)
        g = torch.randn(rows, cols)
        m = torch.zeros(rows, cols)
        p = torch.zeros(rows, cols)
        scale = max(1, rows / cols) ** 0.5

        def step(ns):
            m.lerp_(g, 0.05)
            u = g.lerp(m, 0.95)
            t0 = time.perf_counter()
            X = ns(u)
            seconds = time.perf_counter() - t0
            p.mul_(1.0)
            p.add_(X, alpha=-0.02 * scale)
            return seconds

        result = {}
        result["torch"], result["torch NS"] = medians_ms(lambda: step(ns_torch), budget)
        if out["onednn"]:
            result["onednn"], result["onednn NS"] = medians_ms(lambda: step(ns_onednn), budget)
        if numpy_info is not None and numpy_info["optimized"]:
            gn = g.numpy()

            def numpy_ns():
                t0 = time.perf_counter()
                ns_numpy(np, gn)
                return time.perf_counter() - t0

            result["numpy NS"] = medians_ms(numpy_ns, budget)[1]
        out["results"][shape] = result
    print(json.dumps(out))


if __name__ == "__main__":
    with torch.no_grad():
        main()

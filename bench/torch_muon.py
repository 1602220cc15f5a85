#!/usr/bin/python3
"""PyTorch's side of the Muon bench (bench/muon.ts): ms per Muon step of one matrix,
float32, one thread, the computation of KellerJordan/Muon muon.py (commit 857d1adc) in
float32 instead of bfloat16 (as ours). Prints one JSON object.
Usage: torch_muon.py ROWSxCOLS[,ROWSxCOLS...]
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
A, B, C = 3.4445, -4.7750, 2.0315


def newton_schulz5(G, steps=5):
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


def main():
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "results": {}}
    for shape in sys.argv[1].split(","):
        rows, cols = (int(d) for d in shape.split("x"))
        g = torch.randn(rows, cols)
        m = torch.zeros(rows, cols)
        p = torch.zeros(rows, cols)
        scale = max(1, rows / cols) ** 0.5

        def step():
            m.lerp_(g, 0.05)
            u = g.lerp(m, 0.95)
            X = newton_schulz5(u)
            p.mul_(1.0)
            p.add_(X, alpha=-0.02 * scale)

        step()
        t0 = time.perf_counter()
        step()
        once = time.perf_counter() - t0
        reps = max(3, min(30, int(2.0 / max(once, 1e-6))))
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        times.sort()
        out["results"][shape] = times[len(times) // 2] * 1000
    print(json.dumps(out))


if __name__ == "__main__":
    with torch.no_grad():
        main()

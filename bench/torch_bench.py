#!/usr/bin/python3
"""PyTorch's side of `npm run bench`: ns per element of one optimizer step, one thread.

Run by bench/run.ts through /usr/bin/python3 (Debian's python3-torch 1.13); prints one
JSON object. Same method as the JS side: inputs built outside the timed region, warm-up
discarded, the median of repeated samples, each sample several steps long.
Usage: torch_bench.py SIZE[,SIZE...] [seconds-per-cell]
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)


def measure(step, n, budget):
    step()
    t0 = time.perf_counter()
    step()
    once = max(time.perf_counter() - t0, 1e-7)
    per_sample = max(1, int(0.005 / once))  # samples of about 5 ms
    samples = max(5, min(31, int(budget / (once * per_sample))))
    for _ in range(2):
        step()
    times = []
    for _ in range(samples):
        t0 = time.perf_counter_ns()
        for _ in range(per_sample):
            step()
        times.append((time.perf_counter_ns() - t0) / per_sample)
    times.sort()
    return times[len(times) // 2] / n


def main():
    sizes = [int(float(s)) for s in sys.argv[1].split(",")]
    budget = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "results": {}}
    for rule in ("nesterov", "adam"):
        for foreach in (True, False):
            for n in sizes:
                p = torch.zeros(n, dtype=torch.float32)
                p.grad = torch.full((n,), 0.001, dtype=torch.float32)
                if rule == "nesterov":
                    opt = torch.optim.SGD([p], lr=0.01, momentum=0.9, nesterov=True, foreach=foreach)
                else:
                    opt = torch.optim.Adam([p], lr=0.001, foreach=foreach)
                ns = measure(opt.step, n, budget)
                out["results"]["%s/foreach=%s/%d" % (rule, foreach, n)] = ns
                del opt, p
    print(json.dumps(out))


if __name__ == "__main__":
    with torch.no_grad():
        main()

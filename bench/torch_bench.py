#!/usr/bin/python3
"""PyTorch's side of `npm run bench`: ns per element of one optimizer step, one thread.

Run by bench/run.ts through /usr/bin/python3 (Debian's python3-torch 1.13); prints one
JSON object. Same method as the JS side: inputs built outside the timed region, warm-up
discarded, the median of repeated samples, each sample several steps long.
Usage: torch_bench.py SIZE[,SIZE...] [seconds-per-cell] [RULE[,RULE...]] [FOREACH[,FOREACH]]
RULE is a bench/rules.ts id (default nesterov,adam); the options are those of the rule's
defaults where torch names them the same. FOREACH is True, False or True,False (default).
NESTEROV_TORCH_THREADS=default leaves torch's thread count as a user gets it (every
core); otherwise torch runs on one thread.
"""
import os
import json
import sys
import time

import torch

if os.environ.get("NESTEROV_TORCH_THREADS") != "default":
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


OPTIMIZERS = {
    "nesterov": lambda ps, f: torch.optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True, foreach=f),
    "adam": lambda ps, f: torch.optim.Adam(ps, lr=0.001, foreach=f),
    "sgd": lambda ps, f: torch.optim.SGD(ps, lr=0.01, foreach=f),
    "momentum": lambda ps, f: torch.optim.SGD(ps, lr=0.01, momentum=0.9, foreach=f),
    "adagrad": lambda ps, f: torch.optim.Adagrad(ps, lr=0.01, foreach=f),
    "rmsprop": lambda ps, f: torch.optim.RMSprop(ps, lr=0.01, foreach=f),
    "adamw": lambda ps, f: torch.optim.AdamW(ps, lr=0.001, foreach=f),
    "nadam": lambda ps, f: torch.optim.NAdam(ps, foreach=f),
    "radam": lambda ps, f: torch.optim.RAdam(ps, foreach=f),
    "adamax": lambda ps, f: torch.optim.Adamax(ps, foreach=f),
    "adadelta": lambda ps, f: torch.optim.Adadelta(ps, foreach=f),
    "rprop": lambda ps, f: torch.optim.Rprop(ps, foreach=f),
}


def main():
    sizes = [int(float(s)) for s in sys.argv[1].split(",")]
    budget = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
    rules = sys.argv[3].split(",") if len(sys.argv) > 3 else ["nesterov", "adam"]
    foreachs = [f == "True" for f in sys.argv[4].split(",")] if len(sys.argv) > 4 else [True, False]
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "results": {}, "errors": {}}
    for rule in rules:
        for foreach in foreachs:
            for n in sizes:
                key = "%s/foreach=%s/%d" % (rule, foreach, n)
                p = torch.zeros(n, dtype=torch.float32)
                p.grad = torch.full((n,), 0.001, dtype=torch.float32)
                try:
                    opt = OPTIMIZERS[rule]([p], foreach)
                except (KeyError, TypeError) as error:
                    out["errors"][key] = "%s: %s" % (type(error).__name__, error)
                    continue
                out["results"][key] = measure(opt.step, n, budget)
                del opt, p
    print(json.dumps(out))


if __name__ == "__main__":
    with torch.no_grad():
        main()

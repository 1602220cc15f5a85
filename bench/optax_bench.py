"""optax's side of `npm run bench`: ns per float32 element of one jitted optimizer step.

Run by bench/run.ts through the interpreter it finds (NESTEROV_OPTAX_PYTHON or
--optax-python, else a few usual places); reads one JSON object on stdin and prints one:

  in:  {"sizes": [1e5, ...], "budget": seconds per cell,
        "rules": [{"key": "adam", "hyper": {our resolved hyperparameters}}, ...]}
  out: {"jax": ..., "optax": ..., "results": {"adam/100000": ns}, "errors": {"adam": why}}

The step is optax as a user writes it: `jax.jit` of update + apply_updates, with the
params and the optimizer state donated (`donate_argnums`), so XLA updates them in place
instead of allocating new buffers every step; float32; the hyperparameters are ours (the
row's resolved options, passed in), mapped to optax's names. Timed as the JS and torch
sides are: warm-up (the compile) discarded, the median of repeated samples of several
steps each, `block_until_ready` closing each sample (jax dispatches asynchronously).

Before a rule is timed, one short run of it on random data is compared with our rule's
formula written out below in numpy (float64): a rule whose optax computation is not ours
is reported in "errors" and not timed. Nothing is printed besides the JSON.
"""
import json
import os
import sys
import time

# One core, as the other rows (ours is one thread; torch runs with set_num_threads(1)).
# XLA's CPU client sizes its thread pool from the process's CPU affinity, read when the
# client starts, so the affinity is set before jax is imported. XLA_FLAGS
# (--xla_cpu_multi_thread_eigen=false, intra_op_parallelism_threads=1) is not enough with
# jax 0.10: per-thread CPU time (/proc/self/task/*/stat) still shows two threads busy
# during a step at 1.6e7 elements; with the affinity set, one thread does all the work.
# NESTEROV_OPTAX_CORES=all leaves XLA as a user gets it: every core of the affinity.
_cpu = "all"
if os.environ.get("NESTEROV_OPTAX_CORES") != "all":
    _cpu = int(os.environ.get("NESTEROV_OPTAX_CPU", min(os.sched_getaffinity(0))))
    os.sched_setaffinity(0, {_cpu})
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import optax.contrib  # noqa: E402


class NotOurs(Exception):
    """optax has this rule, but not with these options (or computes it differently)."""


def _coupled(h, tx):
    """Our coupled weight decay (g += wd p) in front of an optax transformation."""
    return optax.chain(optax.add_decayed_weights(h["weightDecay"]), tx) if h["weightDecay"] else tx


def _plain(h):
    if h.get("maximize"):
        raise NotOurs("maximize has no optax option")


def build(key, h):
    """optax's transformation for our rule `key` with our resolved hyperparameters `h`."""
    _plain(h)
    lr = h["lr"]
    if key == "sgd":
        return _coupled(h, optax.sgd(lr))
    if key in ("momentum", "nesterov"):
        if h.get("dampening"):
            raise NotOurs("optax.sgd has no dampening")
        return _coupled(h, optax.sgd(lr, momentum=h["momentum"], nesterov=key == "nesterov"))
    if key == "adagrad":
        if h["lrDecay"]:
            raise NotOurs("optax.adagrad has no lr decay")
        # optax divides by sqrt(h + eps), torch and we by sqrt(h) + eps: the same step
        # but where h is below eps^2.
        return _coupled(h, optax.adagrad(lr, initial_accumulator_value=h["initialAccumulatorValue"], eps=h["eps"]))
    if key == "rmsprop":
        return _coupled(
            h,
            optax.rmsprop(lr, decay=h["alpha"], eps=h["eps"], eps_in_sqrt=False, centered=h["centered"], momentum=h["momentum"] or None),
        )
    if key == "adam":
        if h["amsgrad"]:
            return _coupled(h, optax.amsgrad(lr, b1=h["beta1"], b2=h["beta2"], eps=h["eps"]))
        return _coupled(h, optax.adam(lr, b1=h["beta1"], b2=h["beta2"], eps=h["eps"]))
    if key == "adamw":
        return optax.adamw(lr, b1=h["beta1"], b2=h["beta2"], eps=h["eps"], weight_decay=h["weightDecay"])
    if key == "nadam":
        return _coupled(h, optax.nadam(lr, b1=h["beta1"], b2=h["beta2"], eps=h["eps"]))
    if key == "radam":
        return _coupled(h, optax.radam(lr, b1=h["beta1"], b2=h["beta2"], eps=h["eps"], threshold=5.0))
    if key == "adamax":
        return _coupled(h, optax.adamax(lr, b1=h["beta1"], b2=h["beta2"], eps=h["eps"]))
    if key == "adadelta":
        return _coupled(h, optax.adadelta(lr, rho=h["rho"], eps=h["eps"]))
    if key == "rprop":
        return _coupled(h, optax.rprop(lr, eta_minus=h["etaMinus"], eta_plus=h["etaPlus"], min_step_size=h["stepSizeMin"], max_step_size=h["stepSizeMax"]))
    if key == "lion":
        return optax.lion(lr, b1=h["beta1"], b2=h["beta2"], weight_decay=h["weightDecay"])
    if key == "lamb":
        return optax.lamb(lr, b1=h["beta1"], b2=h["beta2"], eps=h["eps"], weight_decay=h["weightDecay"])
    if key in ("schedulefree-sgd", "schedulefree-adamw"):
        if h["r"]:
            raise NotOurs("optax's schedule_free has no r")
        warmup = h["warmupSteps"] or None
        if key == "schedulefree-sgd":
            return optax.contrib.schedule_free_sgd(lr, warmup_steps=warmup, b1=h["momentum"], weight_decay=h["weightDecay"] or None, weight_lr_power=h["weightLrPower"])
        return optax.contrib.schedule_free_adamw(
            lr, warmup_steps=warmup, b1=h["beta1"], b2=h["beta2"], eps=h["eps"], weight_decay=h["weightDecay"], weight_lr_power=h["weightLrPower"]
        )
    raise NotOurs("no optax transformation is mapped to this rule in bench/optax_bench.py")


# ---------------------------------------------------------------------------------------
# Our rules, written out (src/rules/*.ts; the default variants the bench times), for the
# check that optax computes the same thing. Each takes p, g, a state dict and the 1-based
# step t, and returns the new p (float64 numpy).


def _sgd(h, p, g, s, t):
    return p - h["lr"] * (g + h["weightDecay"] * p)


def _momentum(h, p, g, s, t):
    g = g + h["weightDecay"] * p
    s["b"] = g if t == 1 else h["momentum"] * s["b"] + (1 - h["dampening"]) * g
    return p - h["lr"] * s["b"]


def _nesterov(h, p, g, s, t):
    # variant 'nag': p <- p + mu^2 v - (1 + mu) lr g, v <- mu v - lr g (old v on the right).
    g = g + h["weightDecay"] * p
    mu, lr = h["momentum"], h["lr"]
    v = s.get("v", np.zeros_like(p))
    s["v"] = mu * v - lr * g
    return p + mu * mu * v - (1 + mu) * lr * g


def _adagrad(h, p, g, s, t):
    g = g + h["weightDecay"] * p
    s["h"] = s.get("h", np.full_like(p, h["initialAccumulatorValue"])) + g * g
    return p - h["lr"] * g / (np.sqrt(s["h"]) + h["eps"])


def _rmsprop(h, p, g, s, t):
    g = g + h["weightDecay"] * p
    a = h["alpha"]
    s["sq"] = a * s.get("sq", np.zeros_like(p)) + (1 - a) * g * g
    return p - h["lr"] * g / (np.sqrt(s["sq"]) + h["eps"])


def _moments(h, g, s):
    b1, b2 = h["beta1"], h["beta2"]
    s["m"] = b1 * s.get("m", np.zeros_like(g)) + (1 - b1) * g
    s["v"] = b2 * s.get("v", np.zeros_like(g)) + (1 - b2) * g * g
    return s["m"], s["v"]


def _adam(h, p, g, s, t):
    if h.get("decoupled"):
        p = p * (1 - h["lr"] * h["weightDecay"])
    else:
        g = g + h["weightDecay"] * p
    m, v = _moments(h, g, s)
    return p - (h["lr"] / (1 - h["beta1"] ** t)) * m / (np.sqrt(v) / np.sqrt(1 - h["beta2"] ** t) + h["eps"])


def _nadam(h, p, g, s, t):
    # torch.optim.NAdam: the momentum schedule mu_t = beta1 (1 - 0.5 * 0.96^(t psi)).
    g = g + h["weightDecay"] * p
    b1, psi = h["beta1"], h["momentumDecay"]
    mu = b1 * (1 - 0.5 * 0.96 ** (t * psi))
    mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
    s["prod"] = s.get("prod", 1.0) * mu
    m, v = _moments(h, g, s)
    denom = np.sqrt(v / (1 - h["beta2"] ** t)) + h["eps"]
    return p - h["lr"] * (1 - mu) / (1 - s["prod"]) * g / denom - h["lr"] * mu_next / (1 - s["prod"] * mu_next) * m / denom


def _radam(h, p, g, s, t):
    g = g + h["weightDecay"] * p
    b1, b2 = h["beta1"], h["beta2"]
    m, v = _moments(h, g, s)
    m_hat = m / (1 - b1**t)
    rho_inf = 2 / (1 - b2) - 1
    rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
    if rho <= 5:
        return p - h["lr"] * m_hat
    r = np.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    return p - h["lr"] * m_hat * r * np.sqrt(1 - b2**t) / (np.sqrt(v) + h["eps"])


def _adamax(h, p, g, s, t):
    g = g + h["weightDecay"] * p
    b1, b2 = h["beta1"], h["beta2"]
    s["m"] = b1 * s.get("m", np.zeros_like(p)) + (1 - b1) * g
    s["u"] = np.maximum(b2 * s.get("u", np.zeros_like(p)), np.abs(g) + h["eps"])
    return p - h["lr"] / (1 - b1**t) * s["m"] / s["u"]


def _adadelta(h, p, g, s, t):
    g = g + h["weightDecay"] * p
    rho, eps = h["rho"], h["eps"]
    s["sq"] = rho * s.get("sq", np.zeros_like(p)) + (1 - rho) * g * g
    acc = s.get("acc", np.zeros_like(p))
    delta = np.sqrt(acc + eps) / np.sqrt(s["sq"] + eps) * g
    s["acc"] = rho * acc + (1 - rho) * delta * delta
    return p - h["lr"] * delta


def _rprop(h, p, g, s, t):
    g = g + h["weightDecay"] * p
    step = s.get("step", np.full_like(p, h["lr"]))
    prod = g * s.get("prev", np.zeros_like(p))
    step = np.where(prod > 0, np.minimum(step * h["etaPlus"], h["stepSizeMax"]), np.where(prod < 0, np.maximum(step * h["etaMinus"], h["stepSizeMin"]), step))
    g = np.where(prod < 0, 0.0, g)
    s["step"], s["prev"] = step, g
    return p - step * np.sign(g)


def _lion(h, p, g, s, t):
    b1, b2 = h["beta1"], h["beta2"]
    m = s.get("m", np.zeros_like(p))
    c = b1 * m + (1 - b1) * g
    s["m"] = b2 * m + (1 - b2) * g
    return p * (1 - h["lr"] * h["weightDecay"]) - h["lr"] * np.sign(c)


def _lamb(h, p, g, s, t):
    m, v = _moments(h, g, s)
    u = (m / (1 - h["beta1"] ** t)) / (np.sqrt(v / (1 - h["beta2"] ** t)) + h["eps"]) + h["weightDecay"] * p
    pn, un = np.linalg.norm(p), np.linalg.norm(u)
    return p - h["lr"] * (pn / un if pn > 0 and un > 0 else 1.0) * u


def _schedule_free(h, p, g, s, t, beta, normalised):
    # y (the params) and z; warmupSteps 0, r 0: lr_k = lr, w_k = lr^power, c = w_k / sum w.
    lr = h["lr"]
    z = s.get("z", p.copy())
    s["wsum"] = s.get("wsum", 0.0) + lr ** h["weightLrPower"]
    c = lr ** h["weightLrPower"] / s["wsum"]
    gn = normalised(g, s, t) + h["weightDecay"] * p
    y = p + c * (z - p) + lr * (beta * (1 - c) - 1) * gn
    s["z"] = z - lr * gn
    return y


def _schedulefree_sgd(h, p, g, s, t):
    return _schedule_free(h, p, g, s, t, h["momentum"], lambda g, s, t: g)


def _schedulefree_adamw(h, p, g, s, t):
    def normalised(g, s, t):
        s["v"] = h["beta2"] * s.get("v", np.zeros_like(g)) + (1 - h["beta2"]) * g * g
        return g / (np.sqrt(s["v"] / (1 - h["beta2"] ** t)) + h["eps"])

    return _schedule_free(h, p, g, s, t, h["beta1"], normalised)


OURS = {
    "sgd": _sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": _adam,
    "nadam": _nadam,
    "radam": _radam,
    "adamax": _adamax,
    "adadelta": _adadelta,
    "rprop": _rprop,
    "lion": _lion,
    "lamb": _lamb,
    "schedulefree-sgd": _schedulefree_sgd,
    "schedulefree-adamw": _schedulefree_adamw,
}


# Why optax's transformation of that name is another rule, where we know.
DIFFERENT = {
    "nadam": "optax.nadam is Dozat's NAdam (adam with nesterov=True), without torch's momentum schedule mu_t",
    "rprop": "optax's scale_by_rprop returns the previous step's update (state.prev_updates), one step behind torch's Rprop",
}


def check(key, h, tx):
    """Twelve steps of optax against our formula on 256 random elements: raises NotOurs."""
    ours = OURS.get(key)
    if ours is None:
        raise NotOurs("bench/optax_bench.py has no formula of this rule to check optax against")
    rng = np.random.default_rng(7)
    p = rng.standard_normal(256).astype(np.float32)
    x = jnp.asarray(p)
    state = tx.init(x)
    expected, s = p.astype(np.float64), {}
    worst = 0.0
    for t in range(1, 13):
        # Every third gradient flips sign (Rprop's backtracking, Lion's sign); magnitudes
        # near 1, so eps placements (inside or outside a square root) do not show. The
        # tolerance, 1e-3 relative, is float32's arithmetic: optax computes its per-step
        # scalars in float32 (RAdam's rho_t - 4 near rho_t = 5 loses 1e-4 to
        # cancellation); a different rule is off by far more (optax's nadam: 3).
        g = (rng.standard_normal(256) * (-1 if t % 3 == 0 else 1)).astype(np.float32)
        updates, state = tx.update(jnp.asarray(g), state, x)
        x = optax.apply_updates(x, updates)
        expected = ours(h, expected, g.astype(np.float64), s, t)
        worst = max(worst, float(np.max(np.abs(np.asarray(x, np.float64) - expected) / (1e-3 + np.abs(expected)))))
    if not worst < 1e-3:
        why = DIFFERENT.get(key, "not the same rule")
        raise NotOurs("optax's step differs from ours by up to %.2g (relative) in twelve steps: %s" % (worst, why))


def measure(step, n, budget):
    """Median ns per element of step(), in samples of about 5 ms, for about `budget` s."""
    step()
    t0 = time.perf_counter()
    step().block_until_ready()
    once = max(time.perf_counter() - t0, 1e-7)
    per_sample = max(1, int(0.005 / once))
    samples = max(5, min(31, int(budget / (once * per_sample))))
    for _ in range(2):
        step()
    times = []
    for _ in range(samples):
        t0 = time.perf_counter_ns()
        for _ in range(per_sample):
            out = step()
        out.block_until_ready()
        times.append((time.perf_counter_ns() - t0) / per_sample)
    times.sort()
    return times[len(times) // 2] / n


def bench(tx, n, budget):
    def update(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    jitted = jax.jit(update, donate_argnums=(0, 1))
    params = jnp.zeros(n, jnp.float32)
    grads = jnp.asarray((np.sin(np.arange(n, dtype=np.float64)) * 1e-3).astype(np.float32))
    box = [params, tx.init(params)]

    def step():
        box[0], box[1] = jitted(box[0], box[1], grads)
        return box[0]

    return measure(step, n, budget)


def main():
    job = json.load(sys.stdin)
    out = {"jax": jax.__version__, "optax": optax.__version__, "cpu": _cpu, "results": {}, "errors": {}}
    for rule in job["rules"]:
        key, h = rule["key"], rule["hyper"]
        try:
            tx = build(key, h)
            check(key, h, tx)
        except NotOurs as error:
            out["errors"][key] = str(error)
            continue
        for n in job["sizes"]:
            out["results"]["%s/%d" % (key, n)] = bench(tx, int(n), job["budget"])
    print(json.dumps(out))


if __name__ == "__main__":
    # A donated buffer XLA cannot reuse is a warning, not an error: make it one, so a
    # step that silently copies is not timed as an in-place one.
    warnings.filterwarnings("error", message=".*donated buffers were not usable.*")
    main()

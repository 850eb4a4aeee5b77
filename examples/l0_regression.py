"""Sparse linear regression with hard-concrete gates (the L0 objective), against the Lasso.

The model of Louizos, Welling and Kingma (2018), section 3, on a linear
regression whose sparse truth is known: every weight ``w_j`` is multiplied by
a hard-concrete gate ``z_j = hard_concrete(log_alpha_j)`` (``tau = 2/3``,
stretch ``(-0.1, 1.1)``, the paper's values and the library's defaults), and
``w`` and ``log_alpha`` minimise

    E_z[ mean_i (y_i - x_i . (w * z))**2 ] + lambda * sum_j P(z_j != 0),

the expected training mean squared error plus ``lambda`` times the expected
number of nonzero gates, ``sum(hard_concrete_l0(log_alpha))``.  The
expectation over the gates is estimated by ``--gate-samples`` (4)
reparameterised samples per step (``hard_concrete(..., rng=generator,
return_soft=True)``: a fresh key from one ``numpy.random.Generator`` at each
step); every gradient through the gates comes from gumbel_np,
``hard_concrete_backward`` for the sampled gates and
``hard_concrete_l0_backward`` for the penalty, and the rest (the gradient of
the squared error, a hand-written Adam) is a few lines of NumPy.  All the
penalty strengths of the sweep train at once, as one batch of independent
models (one row of parameters each).  ``w`` starts at 0 and ``log_alpha`` at
``--init-log-alpha`` (0: the median gate 1/2, ``P(z != 0) = 0.83``).

The objective is not convex, and where a run ends depends on where it
starts: a gate clipped to 1 passes no gradient to ``log_alpha`` and the
penalty's gradient ``lambda p (1 - p)`` vanishes as ``p = P(z != 0)``
approaches 1, so a useless feature whose gate opened fully early on (while
``w`` was still far from its fit) stays selected.  Measured at the default
settings, ``lambda = 0.02``: starting at ``log alpha = 2`` leaves 20 false
positives where 0 leaves 3, and starting at -2 leaves none but drops one of
the 10 true features.

The data (a fixed seed): ``--features`` (200) Gaussian features with the
correlation ``rho**|j - l|`` (``--rho`` 0.5, an AR(1) design), of which
``--informative`` (10) at random positions carry coefficients of random sign
and magnitudes evenly spaced from 0.25 to 1; the response is ``X beta`` plus
Gaussian noise of standard deviation ``--sigma`` (1).  ``--train`` (500)
rows to fit, ``--test`` (5000) held-out rows to score; no intercept (every
variable has mean 0).  With more rows than features the Lasso is a well-posed
baseline and ordinary least squares on the true support (the oracle) the
reference: its held-out MSE is about ``sigma**2 (1 + k / n)``.

Test-time gate: ``hard_concrete(log_alpha, noise=0)``, the noise-free gate
``clip(sigmoid(log_alpha / tau) (hi - lo) + lo, 0, 1)`` at the training
temperature, which is the median of the gate's law (the paper uses
``sigmoid(log_alpha)``, the same formula at ``tau = 1``).  A feature is
selected when its test-time gate is above 0, which is the same as
``hard_concrete_l0(log_alpha) > 1/2`` (both say ``log_alpha > tau
log(-lo / hi)``); the test predictions use the weights ``w * gate``, gates
strictly between 0 and 1 included.

The baseline: ``sklearn.linear_model.Lasso`` (objective ``||y - X w||**2 /
(2 n) + alpha ||w||_1``) over ``--alphas`` (20) values of ``alpha`` from
``alpha_max = max |X^T y| / n`` (the smallest alpha that selects nothing)
down to ``alpha_max / 100``, log-spaced, each fit warm-started from the
previous one; its support is the nonzero coefficients.  For both methods the table reports, per
penalty strength, the true and false positives of the support and the
held-out MSE, and the results paragraph the best held-out MSE of each over
its sweep (both chosen on the same held-out rows, so equally optimistic).

Usage::

    python examples/l0_regression.py [--small] [--train 500] [--features 200]
        [--informative 10] [--rho 0.5] [--sigma 1] [--steps 3000] [--lr 0.02]
        [--gate-samples 4] [--init-log-alpha 0] [--lambdas 0.001,...] [--alphas 20]
        [--seed 0] [--out FILE.png] [--results FILE.md]

References: C. Louizos, M. Welling and D. P. Kingma, "Learning Sparse Neural
Networks through L0 Regularization", ICLR 2018; R. Tibshirani, "Regression
Shrinkage and Selection via the Lasso", JRSS B 58, 1996.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys
import time
import warnings

import numpy as np

import gumbel_np as gnp

HERE = pathlib.Path(__file__).resolve().parent
TAU = 2.0 / 3.0
LIMITS = (-0.1, 1.1)
LAMBDAS = (1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 0.1, 0.2, 0.5)
SMALL = ["--train", "300", "--test", "1000", "--features", "40", "--informative", "5",
         "--steps", "1500", "--lambdas", "0.01,0.03,0.1", "--alphas", "12"]
"""``--small``: a problem of a few seconds, for the tests (options given
after ``--small`` override these)."""


# --------------------------------------------------------------------------- data


def make_data(n_train, n_test, p, k, rho, sigma, seed):
    """The design, the sparse truth and the responses (float64).

    Returns a dict: ``x``, ``y`` (training), ``x_test``, ``y_test``,
    ``beta`` (p,) and ``support`` (the sorted indices of its k nonzeros).
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    # AR(1) columns: unit variance, corr(x_j, x_l) = rho**|j - l|.
    e = rng.standard_normal((n, p))
    x = np.empty((n, p))
    x[:, 0] = e[:, 0]
    for j in range(1, p):
        x[:, j] = rho * x[:, j - 1] + math.sqrt(1.0 - rho * rho) * e[:, j]
    support = np.sort(rng.choice(p, size=k, replace=False))
    beta = np.zeros(p)
    beta[support] = rng.permutation(np.linspace(0.25, 1.0, k)) * rng.choice([-1.0, 1.0], size=k)
    y = x @ beta + sigma * rng.standard_normal(n)
    return {"x": x[:n_train], "y": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:],
            "beta": beta, "support": support}


def recovery(selected, support):
    """(true positives, false positives) of the boolean mask ``selected``."""
    truth = np.zeros(selected.shape[-1], dtype=bool)
    truth[support] = True
    return int((selected & truth).sum()), int((selected & ~truth).sum())


def mse(x, y, coef):
    return float(np.mean((y - x @ coef) ** 2))


# --------------------------------------------------------------------------- L0 model


def objective_and_gradients(w, log_alpha, x, y, lambdas, gates, y_soft):
    """The L0 objective of each model and its gradients, for given gate samples.

    ``w`` and ``log_alpha`` are (L, p), one row per penalty strength in
    ``lambdas`` (L,); ``gates`` and ``y_soft`` (L, S, p) are S samples of
    ``hard_concrete(log_alpha, return_soft=True)``.  Returns ``(objective
    (L,), mse (L,), dw, dlog_alpha)``, the sample mean of the squared error
    plus ``lambda * sum(hard_concrete_l0(log_alpha))``.
    """
    n = len(y)
    s = gates.shape[1]
    coef = w[:, None, :] * gates  # (L, S, p)
    resid = coef @ x.T - y  # (L, S, n)
    err = np.mean(resid**2, axis=(1, 2))
    dcoef = (2.0 / (n * s)) * (resid @ x)  # d mean_s mse_s / d coef, (L, S, p)
    dw = (dcoef * gates).sum(1)
    dgates = dcoef * w[:, None, :]
    dlog_alpha = gnp.hard_concrete_backward(dgates, y_soft, tau=TAU, limits=LIMITS).sum(1)
    l0 = gnp.hard_concrete_l0(log_alpha, tau=TAU, limits=LIMITS)
    dlog_alpha += gnp.hard_concrete_l0_backward(
        np.broadcast_to(lambdas[:, None], l0.shape), log_alpha, tau=TAU, limits=LIMITS)
    return err + lambdas * l0.sum(1), err, dw, dlog_alpha


class Adam:
    """Adam (Kingma and Ba 2015) on a dict of arrays, updated in place."""

    def __init__(self, params, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = {key: np.zeros_like(v) for key, v in params.items()}
        self.v = {key: np.zeros_like(v) for key, v in params.items()}
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for key, g in grads.items():
            m, v = self.m[key], self.v[key]
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * (g * g)
            params[key] -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def eval_gate(log_alpha):
    """The deterministic test-time gate, ``hard_concrete(log_alpha, noise=0)``."""
    return gnp.hard_concrete(log_alpha, tau=TAU, limits=LIMITS, noise=0)


def train_l0(data, lambdas, args):
    """Train one L0 model per penalty strength, all at once.

    Returns a dict: ``w``, ``log_alpha``, ``gate`` (test-time), (L, p)
    each; ``curve`` (steps, L), the training objective of each step's
    samples; ``seconds``.
    """
    x, y = data["x"], data["y"]
    lambdas = np.asarray(lambdas, dtype=np.float64)
    shape = (len(lambdas), x.shape[1])
    params = {"w": np.zeros(shape), "log_alpha": np.full(shape, args.init_log_alpha)}
    opt = Adam(params, lr=args.lr)
    noise = np.random.default_rng([args.seed, 1])  # one key per step, drawn from it
    curve = np.empty((args.steps, len(lambdas)))
    t0 = time.perf_counter()
    for step in range(args.steps):
        la = np.repeat(params["log_alpha"][:, None, :], args.gate_samples, axis=1)
        gates, y_soft = gnp.hard_concrete(la, tau=TAU, limits=LIMITS, rng=noise,
                                          return_soft=True)
        obj, _, dw, dla = objective_and_gradients(params["w"], params["log_alpha"], x, y,
                                                  lambdas, gates, y_soft)
        opt.step(params, {"w": dw, "log_alpha": dla})
        curve[step] = obj
    seconds = time.perf_counter() - t0
    return {"w": params["w"], "log_alpha": params["log_alpha"],
            "gate": eval_gate(params["log_alpha"]), "curve": curve, "seconds": seconds}


def gradient_check(seed=0, n=7, p=5, lambdas=(0.01, 0.3), samples=3, eps=1e-6):
    """Largest relative error of ``objective_and_gradients`` against central differences.

    float64, a tiny problem; the gate noise is held fixed (an integer key
    gives the same noise at every call), so the objective is a deterministic,
    piecewise smooth function of ``w`` and ``log_alpha``.
    """
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((n, p)), rng.standard_normal(n)
    lambdas = np.asarray(lambdas)
    w0 = rng.standard_normal((len(lambdas), p))
    la0 = rng.standard_normal((len(lambdas), p))
    key = seed + 11

    def gates(la):
        return gnp.hard_concrete(np.repeat(la[:, None, :], samples, axis=1), tau=TAU,
                                 limits=LIMITS, rng=key, return_soft=True)

    def objective(w, la):
        return float(objective_and_gradients(w, la, x, y, lambdas, *gates(la))[0].sum())

    z, ys = gates(la0)
    clipped = float(np.mean((z == 0) | (z == 1)))
    _, _, dw, dla = objective_and_gradients(w0, la0, x, y, lambdas, z, ys)
    worst = 0.0
    for which, grad in (("w", dw), ("log_alpha", dla)):
        num = np.zeros_like(grad)
        for i in np.ndindex(grad.shape):
            args = {"w": w0.copy(), "log_alpha": la0.copy()}
            args[which][i] += eps
            up = objective(args["w"], args["log_alpha"])
            args[which][i] -= 2 * eps
            down = objective(args["w"], args["log_alpha"])
            num[i] = (up - down) / (2 * eps)
        worst = max(worst, float(np.abs(num - grad).max() / max(np.abs(num).max(), 1e-8)))
    return {"max_relative_error": worst, "clipped_fraction": clipped}


# --------------------------------------------------------------------------- baselines


def lasso_sweep(data, n_alphas):
    """Lasso over ``n_alphas`` values of alpha, largest first, warm-started.

    Returns ``(alphas, coefs (n_alphas, p), not_converged)``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso

    x, y = data["x"], data["y"]
    alpha_max = float(np.abs(x.T @ y).max() / len(y))
    alphas = alpha_max * np.logspace(0, -2, n_alphas)
    model = Lasso(alpha=alphas[0], fit_intercept=False, warm_start=True, max_iter=10_000,
                  tol=1e-6)
    coefs, not_converged = [], 0
    for alpha in alphas:
        model.set_params(alpha=alpha)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(x, y)
        not_converged += any(issubclass(c.category, ConvergenceWarning) for c in caught)
        coefs.append(model.coef_.copy())
    return alphas, np.array(coefs), not_converged


def oracle_mse(data):
    """Held-out MSE of ordinary least squares on the true support."""
    s = data["support"]
    coef = np.zeros(data["x"].shape[1])
    coef[s] = np.linalg.lstsq(data["x"][:, s], data["y"], rcond=None)[0]
    return mse(data["x_test"], data["y_test"], coef)


def rows_of(data, penalties, coefs, selected):
    """One result dict per penalty strength: penalty, selected, tp, fp, mse."""
    out = []
    for pen, coef, sel in zip(penalties, coefs, selected):
        tp, fp = recovery(sel, data["support"])
        out.append({"penalty": float(pen), "selected": int(sel.sum()), "tp": tp, "fp": fp,
                    "mse": mse(data["x_test"], data["y_test"], coef)})
    return out


# --------------------------------------------------------------------------- output


def _plain_ticks(axis, candidates, lo, hi):
    """Ticks at the ``candidates`` within ``[lo, hi]``, labelled as plain numbers."""
    from matplotlib.ticker import NullLocator

    ticks = [t for t in candidates if lo <= t <= hi]
    axis.set_ticks(ticks, [f"{t:g}" for t in ticks])
    axis.set_minor_locator(NullLocator())


COUNT_TICKS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
MSE_TICKS = (0.5, 0.8, 1, 1.1, 1.2, 1.5, 2, 3, 4, 5, 7, 10, 20, 50, 100)


def draw_figure(path, l0_rows, lasso_rows, oracle, k):
    """TP and FP against the penalty of each method; held-out MSE against the support size.

    Counts on a symmetric-log axis (linear from 0 to 1), so that 0 false
    positives shows beside a hundred.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(15, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_l0, ax_lasso, ax_mse = fig.subplots(1, 3)
    top = max(r["selected"] for r in l0_rows + lasso_rows)
    for ax, rows, name, xlabel, color in (
            (ax_l0, l0_rows, "L0 (hard-concrete gates)", "penalty λ", "tab:blue"),
            (ax_lasso, lasso_rows, "Lasso", "penalty α", "tab:orange")):
        pen = [r["penalty"] for r in rows]
        ax.axhline(k, color="gray", lw=0.8, ls=":", label=f"informative features ({k})")
        ax.plot(pen, [r["tp"] for r in rows], marker="o", ms=4, color=color,
                label="true positives")
        ax.plot(pen, [r["fp"] for r in rows], marker="s", ms=4, ls="--", color=color,
                label="false positives")
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1)
        ax.set_ylim(-0.2, 1.5 * max(top, k))
        _plain_ticks(ax.yaxis, COUNT_TICKS, 0, 1.5 * max(top, k))
        ax.set_xlabel(xlabel)
        ax.set_ylabel("features")
        ax.set_title(f"{name}: selected support")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for rows, name, color in ((l0_rows, "L0 (hard-concrete gates)", "tab:blue"),
                              (lasso_rows, "Lasso", "tab:orange")):
        order = sorted(rows, key=lambda r: r["selected"])
        ax_mse.plot([r["selected"] for r in order], [r["mse"] for r in order], marker="o",
                    ms=4, color=color, label=name)
    ax_mse.axhline(oracle, color="black", lw=0.8, ls=":", label="OLS on the true support")
    ax_mse.axvline(k, color="gray", lw=0.8, ls=":", label=f"{k} features")
    ax_mse.set_xscale("symlog", linthresh=1)
    ax_mse.set_xlim(-0.2, 1.5 * max(top, k))
    _plain_ticks(ax_mse.xaxis, COUNT_TICKS, 0, 1.5 * max(top, k))
    ax_mse.set_yscale("log")
    mses = [r["mse"] for r in l0_rows + lasso_rows] + [oracle]
    lo, hi = 0.97 * min(mses), 1.05 * max(mses)
    ax_mse.set_ylim(lo, hi)
    _plain_ticks(ax_mse.yaxis, MSE_TICKS, lo, hi)
    ax_mse.set_xlabel("selected features")
    ax_mse.set_ylabel("held-out MSE")
    ax_mse.set_title("held-out MSE against the support size")
    ax_mse.grid(alpha=0.3)
    ax_mse.legend(fontsize=8)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def best(rows):
    return min(rows, key=lambda r: r["mse"])


def summary(l0_rows, lasso_rows, oracle, k):
    """The best held-out MSE of each method, with its support, in words."""
    parts = []
    for name, rows, sym in (("L0", l0_rows, "lambda"), ("Lasso", lasso_rows, "alpha")):
        b = best(rows)
        plural = "" if b["fp"] == 1 else "s"
        parts.append(f"{name}: best held-out MSE {b['mse']:.4f} at {sym} = {b['penalty']:.3g} "
                     f"({b['tp']} of {k} true features, {b['fp']} false positive{plural})")
    return "; ".join(parts) + f"; OLS on the true support: {oracle:.4f}."


def write_results(path, args, data, l0_rows, lasso_rows, oracle, lasso_info, seconds):
    k = len(data["support"])
    n_alphas, not_converged = lasso_info
    setup = (
        f"{args.features} Gaussian features (AR(1) correlation {args.rho:g}^|j - l|), {k} of "
        f"them informative (coefficients of random sign, magnitudes evenly spaced from 0.25 "
        f"to 1), noise sigma = {args.sigma:g}; {args.train} training and {args.test} held-out "
        f"rows, data seed {args.seed}. L0: hard-concrete gates (tau = {TAU:.3g}, limits "
        f"{LIMITS}) on the weights, {args.steps} full-batch Adam steps (lr {args.lr:g}, "
        f"{args.gate_samples} gate samples per step, log alpha initialised at "
        f"{args.init_log_alpha:g}, w at 0), objective E_gates[training MSE] + lambda * "
        f"sum(hard_concrete_l0(log_alpha)); test-time gate hard_concrete(log_alpha, "
        f"noise=0), a feature selected where it is above 0. Lasso: sklearn.linear_model.Lasso "
        f"(no intercept) at {n_alphas} alphas from alpha_max = max|X^T y| / n down to "
        f"alpha_max / 100 ({not_converged} fits not converged), support its nonzero "
        f"coefficients. TP / FP: true / false positives of the support; held-out MSE on the "
        f"{args.test} held-out rows (the noise floor is sigma^2 = {args.sigma**2:g}). "
        f"L0 training time {seconds:.1f} s for the whole sweep."
    )
    lines = [
        "# Sparse regression with hard-concrete gates (L0) against the Lasso",
        "",
        setup,
        "",
        summary(l0_rows, lasso_rows, oracle, k),
        "",
        "| method | penalty | selected | TP | FP | held-out MSE |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, rows, sym in (("L0", l0_rows, "λ"), ("Lasso", lasso_rows, "α")):
        for r in rows:
            lines.append(f"| {name} | {sym} = {r['penalty']:.3g} | {r['selected']} | {r['tp']} "
                         f"| {r['fp']} | {r['mse']:.4f} |")
    lines.append(f"| OLS on the true support | - | {k} | {k} | 0 | {oracle:.4f} |")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def parse_args(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--small", action="store_true",
                   help="a problem of a few seconds: " + " ".join(SMALL))
    p.add_argument("--train", type=int, default=500, help="training rows (500)")
    p.add_argument("--test", type=int, default=5000, help="held-out rows (5000)")
    p.add_argument("--features", type=int, default=200, help="features p (200)")
    p.add_argument("--informative", type=int, default=10, help="nonzero coefficients k (10)")
    p.add_argument("--rho", type=float, default=0.5,
                   help="AR(1) correlation of neighbouring features (0.5)")
    p.add_argument("--sigma", type=float, default=1.0, help="noise standard deviation (1)")
    p.add_argument("--steps", type=int, default=3000, help="Adam steps of the L0 models (3000)")
    p.add_argument("--lr", type=float, default=0.02, help="Adam learning rate (0.02)")
    p.add_argument("--gate-samples", type=int, default=4,
                   help="gate samples per step for the expected squared error (4)")
    p.add_argument("--init-log-alpha", type=float, default=0.0,
                   help="initial log alpha of every gate (0: P(gate != 0) = 0.83)")
    p.add_argument("--lambdas", default=",".join(f"{v:g}" for v in LAMBDAS),
                   help="comma-separated L0 penalty strengths (" +
                        ",".join(f"{v:g}" for v in LAMBDAS) + ")")
    p.add_argument("--alphas", type=int, default=20, help="Lasso alphas in the sweep (20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the gate noise (0)")
    p.add_argument("--out", default=str(HERE / "l0_regression.png"),
                   help="figure (examples/l0_regression.png)")
    p.add_argument("--results", default=str(HERE / "l0_regression.md"),
                   help="Markdown table (examples/l0_regression.md)")
    p.add_argument("--blas-threads", type=int, default=1,
                   help="BLAS threads for the matrix products (1)")
    args = p.parse_args(argv)
    if args.small:  # the small problem, then whatever the command line says
        args = p.parse_args(SMALL + [a for a in argv if a != "--small"])
        args.small = True
    try:
        args.lambdas = [float(v) for v in args.lambdas.split(",") if v.strip()]
    except ValueError:
        p.error(f"--lambdas: not a comma-separated list of numbers: {args.lambdas!r}")
    if not args.lambdas or not all(v >= 0 and math.isfinite(v) for v in args.lambdas):
        p.error(f"--lambdas must be finite and >= 0, got {args.lambdas}")
    for name in ("train", "test", "features", "informative", "gate_samples", "alphas",
                 "blas_threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.steps < 0:
        p.error("--steps must be >= 0")
    if args.informative > args.features:
        p.error("--informative must not exceed --features")
    if not (-1 < args.rho < 1 and args.sigma > 0 and args.lr > 0):
        p.error("need -1 < rho < 1, sigma > 0 and lr > 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    # The matrices are small: one BLAS thread is fastest, and it leaves the
    # other core to gumbel_np and to other processes.  threadpoolctl comes
    # with scikit-learn.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        return _run(args)


def _run(args):
    t0 = time.perf_counter()
    data = make_data(args.train, args.test, args.features, args.informative, args.rho,
                     args.sigma, args.seed)
    k = args.informative
    # Compile the kernels (Numba compiles at the first call) outside the timing.
    z, ys = gnp.hard_concrete(np.zeros((1, 1, 2)), rng=0, return_soft=True)
    gnp.hard_concrete_backward(z, ys)
    gnp.hard_concrete_l0_backward(gnp.hard_concrete_l0(np.zeros((1, 2))), np.zeros((1, 2)))
    eval_gate(np.zeros((1, 2)))

    fit = train_l0(data, args.lambdas, args)
    l0_rows = rows_of(data, args.lambdas, fit["w"] * fit["gate"], fit["gate"] > 0)
    alphas, coefs, not_converged = lasso_sweep(data, args.alphas)
    lasso_rows = rows_of(data, alphas, coefs, coefs != 0)
    oracle = oracle_mse(data)

    print(f"{args.features} features, {k} informative (at {data['support'].tolist()}), "
          f"{args.train} training / {args.test} held-out rows, sigma {args.sigma:g}")
    print(f"L0: {len(args.lambdas)} models x {args.steps} steps in {fit['seconds']:.1f} s; "
          f"Lasso: {args.alphas} alphas ({not_converged} not converged)")
    print(f"{'method':<8}{'penalty':>10}{'selected':>10}{'TP':>5}{'FP':>5}{'held-out MSE':>14}")
    for name, rows in (("L0", l0_rows), ("Lasso", lasso_rows)):
        for r in rows:
            print(f"{name:<8}{r['penalty']:>10.3g}{r['selected']:>10}{r['tp']:>5}{r['fp']:>5}"
                  f"{r['mse']:>14.4f}")
    print(f"{'oracle':<8}{'-':>10}{k:>10}{k:>5}{0:>5}{oracle:>14.4f}")
    print(summary(l0_rows, lasso_rows, oracle, k))
    out = draw_figure(args.out, l0_rows, lasso_rows, oracle, k)
    res = write_results(args.results, args, data, l0_rows, lasso_rows, oracle,
                        (args.alphas, not_converged), fit["seconds"])
    seconds = time.perf_counter() - t0
    print(f"wrote {out} and {res}  ({seconds:.1f} s in all)")
    return {"l0": l0_rows, "lasso": lasso_rows, "oracle_mse": oracle,
            "best_l0": best(l0_rows), "best_lasso": best(lasso_rows),
            "support": data["support"].tolist(), "beta": data["beta"], "fit": fit,
            "lasso_not_converged": not_converged, "out": str(out), "results_path": str(res),
            "seconds": seconds}


if __name__ == "__main__":
    main()

"""Bias and variance of the gradient estimators on a problem whose gradient is known exactly.

Why a temperature, and which estimator: for one categorical distribution
``b ~ softmax(logits)`` over K = 10 classes and a fixed objective ``f``, every
estimator of ``d E[f(b)] / d logits`` is drawn N times (default 100000, one
batch row per estimate, each row its own row id, so the N estimates are
independent), and its mean and spread are compared with the exact gradient.

The problem:

* logits: ``numpy.random.default_rng(0).standard_normal(10)`` (printed in
  the results);
* objective, on the simplex: ``f(y) = 1 + (<a, y> - 0.45)**2`` with
  ``a_j = j / (K - 1)``; on the one-hot of class ``b`` it is the discrete
  objective ``f(b) = 1 + (b / (K - 1) - 0.45)**2``.  Its gradient with respect
  to ``y`` is ``2 (<a, y> - 0.45) a``.  ``f`` is quadratic, not linear, on the
  simplex: for a linear ``f`` the gradient with respect to ``y`` is the same
  at the one-hot and at the relaxed sample, and ST-Gumbel-Softmax and the
  relaxed estimator would coincide.  The constant 1 changes no gradient and no
  relaxed or straight-through estimate; it stands for the large common part
  of a real learning signal (the reconstruction term of the categorical VAE
  example is about 20 nats per image and varies by a few between samples),
  which is what REINFORCE without a baseline multiplies into its noise;
* exact gradient, by enumerating the K classes:
  ``sum_b f(b) p_b (onehot(b) - p)``, ``p = softmax(logits)``.

The estimators (each gives one gradient per row):

* ``ST-Gumbel-Softmax`` at tau in {0.1, 0.3, 0.5, 1, 2, 5}: the hard forward
  (``f``'s gradient at the one-hot of ``argmax(logits + G)``) through the soft
  Gumbel-Softmax VJP, ``gumbel_softmax_backward(df/dy(y_hard), y_soft, tau)``;
* ``relaxed Gumbel-Softmax`` at the same temperatures: the soft forward and
  its VJP, ``gumbel_softmax_backward(df/dy(y_soft), y_soft, tau)``; unbiased
  for the relaxed objective ``E[f(y_soft)]``, not for ``E[f(b)]``;
* ``straight-through``: the same hard forward through the softmax VJP,
  ``softmax_backward(df/dy(y_hard), softmax(logits))``;
* ``REINFORCE`` with S = 2, 4, 16 samples per estimate
  (``categorical(logits, num_samples=S)``), without a baseline and with the
  leave-one-out baseline (``reinforce(..., baseline="loo")``).

The temperature-dependent estimators share one Gumbel noise array (common
random numbers: the hard sample is the same at every temperature); REINFORCE
draws from another key, and its S = 2 samples are the first two of S = 4 and
S = 16 (the sample index is part of the counter).

For each estimator: bias ``|mean - exact|`` (Euclidean norm over the 10
coordinates) with its Monte Carlo standard error ``sqrt(v / N)``, and
variance ``v``, the trace of the covariance of one estimate (the mean
squared distance of an estimate from the mean, summed over the 10
coordinates).  ``E|mean - exact|**2 = bias**2 + v / N``, so an unbiased
estimator shows a measured bias of about one standard error.

Usage::

    python examples/estimator_variance.py [--estimates 100000] [--seed 0]
        [--out FILE.png] [--results FILE.md]

References: E. Jang, S. Gu and B. Poole, "Categorical Reparameterization with
Gumbel-Softmax", ICLR 2017; C. J. Maddison, A. Mnih and Y. W. Teh, "The
Concrete Distribution", ICLR 2017; R. J. Williams, "Simple statistical
gradient-following algorithms for connectionist reinforcement learning",
Machine Learning 8, 1992; W. Kool, H. van Hoof and M. Welling, "Buy 4
REINFORCE Samples, Get a Baseline for Free!", ICLR 2019 workshop.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

import gumbel_np as gnp

HERE = pathlib.Path(__file__).resolve().parent
K = 10
LOGITS = np.random.default_rng(0).standard_normal(K)
A = np.arange(K) / (K - 1)
TARGET = 0.45
OFFSET = 1.0
TAUS = (0.1, 0.3, 0.5, 1.0, 2.0, 5.0)
SAMPLES = (2, 4, 16)
RELAXED = ("ST-Gumbel-Softmax", "relaxed Gumbel-Softmax")


def objective(y):
    """``f(y) = OFFSET + (<a, y> - TARGET)**2`` for points ``y`` of the simplex (last axis)."""
    return OFFSET + (y @ A - TARGET) ** 2


def objective_grad(y):
    """``df/dy = 2 (<a, y> - TARGET) a``, of ``y``'s shape."""
    return 2.0 * (y @ A - TARGET)[..., None] * A


def exact_gradient(logits):
    """``d E[f(b)] / d logits = sum_b f(b) p_b (onehot(b) - p)``, by enumeration."""
    p = gnp.softmax(logits)
    onehots = np.eye(logits.size)
    values = objective(onehots)  # f(b) for every class b
    return (values[:, None] * p[:, None] * (onehots - p)).sum(axis=0)


def summarise(estimates, exact):
    """``(bias, standard error, variance)`` of ``estimates`` (N, K) against ``exact``."""
    n = len(estimates)
    mean = estimates.mean(axis=0)
    variance = float(((estimates - mean) ** 2).sum(axis=1).mean())
    return float(np.linalg.norm(mean - exact)), float(np.sqrt(variance / n)), variance


def run_estimators(logits, n, seed):
    """Every estimator, N estimates each; returns a list of result rows.

    Each row is a dict: ``estimator``, ``tau`` (None when there is none),
    ``samples`` (categorical draws per estimate), ``bias``, ``se``,
    ``variance``.
    """
    exact = exact_gradient(logits)
    batch = np.broadcast_to(logits, (n, logits.size))
    rows = np.arange(n)  # each estimate its own row id: independent draws
    probs = gnp.softmax(batch)
    out = []

    def add(name, tau, samples, estimates):
        bias, se, variance = summarise(estimates, exact)
        out.append(dict(estimator=name, tau=tau, samples=samples, bias=bias, se=se,
                        variance=variance))

    y_hard = None
    for tau in TAUS:
        y_hard, y_soft = gnp.gumbel_softmax(batch, tau=tau, hard=True, rng=seed, row_ids=rows,
                                            return_soft=True)
        add("ST-Gumbel-Softmax", tau, 1,
            gnp.gumbel_softmax_backward(objective_grad(y_hard), y_soft, tau=tau))
        add("relaxed Gumbel-Softmax", tau, 1,
            gnp.gumbel_softmax_backward(objective_grad(y_soft), y_soft, tau=tau))
    out.sort(key=lambda r: RELAXED.index(r["estimator"]))  # stable: by tau within each
    # The hard sample argmax(logits + G) is the same at every temperature.
    add("straight-through", None, 1, gnp.softmax_backward(objective_grad(y_hard), probs))
    for baseline, name in ((None, "REINFORCE"), ("loo", "REINFORCE, loo baseline")):
        for s in SAMPLES:
            index = gnp.categorical(batch, num_samples=s, rng=seed + 1, row_ids=rows)  # (N, S)
            values = objective(np.eye(logits.size)[index])  # f(b) of each sample
            add(name, None, s, gnp.reinforce(batch, index, values, baseline=baseline))
    return out, exact


def find(rows, estimator, tau=None, samples=None):
    """The result row of ``estimator`` at ``tau`` or with ``samples`` per estimate."""
    for r in rows:
        if r["estimator"] == estimator and r["tau"] == tau and (samples is None
                                                                 or r["samples"] == samples):
            return r
    raise KeyError((estimator, tau, samples))


def check_claims(rows):
    """What the numbers show, as booleans, with the figures behind them.

    * ``reinforce_unbiased``: every REINFORCE bias is below 4 standard errors;
    * ``loo_cuts_variance``: at every S the leave-one-out variance is below
      the plain one;
    * ``bias_falls_with_tau`` / ``variance_rises_as_tau_falls``: for both
      relaxed estimators, bias at tau = 0.1 below tau = 5 and variance at
      tau = 0.1 above tau = 5;
    * ``monotone_in_tau``: for both relaxed estimators, the bias rises and
      the variance falls at every step up the temperatures;
    * ``reinforce_variance_largest``: the largest variance of all belongs to
      REINFORCE without a baseline.
    """
    reinforce = [r for r in rows if r["estimator"].startswith("REINFORCE")]
    lo, hi = min(TAUS), max(TAUS)
    largest = max(rows, key=lambda r: r["variance"])
    steps = [(find(rows, e, a), find(rows, e, b)) for e in RELAXED for a, b in zip(TAUS, TAUS[1:])]
    return {
        "reinforce_unbiased": all(r["bias"] < 4 * r["se"] for r in reinforce),
        "reinforce_max_bias_in_se": max(r["bias"] / r["se"] for r in reinforce),
        "loo_cuts_variance": all(
            find(rows, "REINFORCE, loo baseline", samples=s)["variance"]
            < find(rows, "REINFORCE", samples=s)["variance"] for s in SAMPLES),
        "loo_variance_ratio": {
            s: find(rows, "REINFORCE", samples=s)["variance"]
            / find(rows, "REINFORCE, loo baseline", samples=s)["variance"] for s in SAMPLES},
        "bias_falls_with_tau": all(
            find(rows, e, lo)["bias"] < find(rows, e, hi)["bias"] for e in RELAXED),
        "variance_rises_as_tau_falls": all(
            find(rows, e, lo)["variance"] > find(rows, e, hi)["variance"] for e in RELAXED),
        "monotone_in_tau": all(a["bias"] < b["bias"] and a["variance"] > b["variance"]
                               for a, b in steps),
        "reinforce_variance_largest": largest["estimator"] == "REINFORCE",
    }


def findings(rows, exact, claims):
    """The results in words, each statement worded by what the numbers show."""
    lo, hi = min(TAUS), max(TAUS)
    parts = []
    for name in RELAXED:
        a, b = find(rows, name, hi), find(rows, name, lo)
        bias = "falls" if b["bias"] < a["bias"] else "does not fall"
        var = "rises" if b["variance"] > a["variance"] else "does not rise"
        if claims["monotone_in_tau"]:
            bias, var = bias + " at every step", var + " at every step"
        parts.append(f"{name}: from tau = {hi:g} to {lo:g} the bias {bias} from "
                     f"{a['bias']:.2e} to {b['bias']:.2e} ({b['bias'] / b['se']:.1f} s.e.) "
                     f"and the variance {var} from {a['variance']:.2e} to {b['variance']:.2e}.")
    st = find(rows, "straight-through")
    parts.append(f"straight-through: bias {st['bias']:.2e} "
                 f"({'above' if st['bias'] > np.linalg.norm(exact) else 'below'} "
                 f"|exact gradient| = {np.linalg.norm(exact):.2e}).")
    within = claims["reinforce_max_bias_in_se"]
    ratios = ", ".join(f"{claims['loo_variance_ratio'][s]:.0f}" for s in SAMPLES)
    parts.append(f"REINFORCE: every measured bias within {within:.1f} s.e. of 0; the loo baseline "
                 f"divides the variance by {ratios} at S = "
                 f"{', '.join(str(s) for s in SAMPLES)}.")
    largest = max(rows, key=lambda r: r["variance"])
    parts.append(f"The largest variance: {largest['estimator']}"
                 + (f", S = {largest['samples']}" if largest["tau"] is None else
                    f", tau = {largest['tau']:g}") + ".")
    return " ".join(parts)


# --------------------------------------------------------------------------- output


def draw_figure(path, rows, exact):
    """Bias and variance against tau (log axes); the tau-free estimators as horizontal lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_bias, ax_var = fig.subplots(1, 2)
    taus = np.array(TAUS)
    for name, color in zip(RELAXED, ("tab:blue", "tab:orange")):
        sel = [find(rows, name, t) for t in TAUS]
        bias = np.array([r["bias"] for r in sel])
        se = np.array([r["se"] for r in sel])
        ax_bias.errorbar(taus, bias, yerr=se, marker="o", ms=4, capsize=3, color=color,
                         label=name)
        ax_var.plot(taus, [r["variance"] for r in sel], marker="o", ms=4, color=color,
                    label=name)
    flat = [(find(rows, "straight-through"), "tab:green", "-")]
    for s, style in zip(SAMPLES, ("--", "-.", ":")):
        flat.append((find(rows, "REINFORCE", samples=s), "tab:red", style))
        flat.append((find(rows, "REINFORCE, loo baseline", samples=s), "tab:purple", style))
    for r, color, style in flat:
        label = r["estimator"] + ("" if r["estimator"] == "straight-through"
                                  else f", S = {r['samples']}")
        ax_bias.axhline(r["bias"], color=color, ls=style, lw=1.2, label=label)
        ax_var.axhline(r["variance"], color=color, ls=style, lw=1.2, label=label)
    ax_bias.axhline(float(np.linalg.norm(exact)), color="black", lw=0.8,
                    label="|exact gradient| (the bias of 0)")
    noise = max(r["bias"] / r["se"] for r, _, _ in flat[1:])
    ax_bias.text(0.03, 0.03, f"REINFORCE lines: Monte Carlo noise, within {noise:.1f} s.e. of 0",
                 transform=ax_bias.transAxes, fontsize=8)
    ax_bias.set_title("bias |mean - exact| (error bars: 1 standard error)")
    ax_var.set_title("variance of one estimate (trace of the covariance)")
    for ax in (ax_bias, ax_var):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("temperature τ")
        ax.set_xticks(taus, [f"{t:g}" for t in TAUS])
        ax.minorticks_off()
        ax.grid(alpha=0.3, which="both")
    ax_bias.set_ylim(bottom=min(r["bias"] for r in rows) / 4)
    handles, labels = ax_bias.get_legend_handles_labels()
    first = [labels.index(name) for name in RELAXED]  # the tau lines first
    order = first + [i for i in range(len(labels)) if i not in first]
    fig.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8,
               loc="outside right center")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def write_results(path, rows, exact, claims, n, seed):
    logits = ", ".join(f"{v:.3f}" for v in LOGITS)
    probs = ", ".join(f"{v:.3f}" for v in gnp.softmax(LOGITS))
    lines = [
        "# Bias and variance of the gradient estimators",
        "",
        f"K = {K}, logits = standard normal draws of seed 0 = [{logits}] "
        f"(p = [{probs}]); objective f(y) = {OFFSET:g} + (<a, y> - {TARGET:g})^2 on the "
        f"simplex, a_j = j / {K - 1}, f(b) its value at the one-hot of b; exact gradient "
        f"sum_b f(b) p_b (onehot(b) - p), of norm {np.linalg.norm(exact):.4f}. "
        f"{n} independent estimates of each estimator (noise keys {seed} for the Gumbel "
        f"noise, {seed + 1} for REINFORCE's samples). "
        "Bias: |mean - exact| with its Monte Carlo standard error sqrt(variance / N) "
        "(an unbiased estimator shows about one standard error); variance: trace of the "
        "covariance of one estimate; samples: categorical draws per estimate.",
        "",
        findings(rows, exact, claims),
        "",
        "| estimator | tau | samples | bias | s.e. | variance |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        tau = "-" if r["tau"] is None else f"{r['tau']:g}"
        lines.append(f"| {r['estimator']} | {tau} | {r['samples']} | {r['bias']:.2e} "
                     f"| {r['se']:.1e} | {r['variance']:.2e} |")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--estimates", type=int, default=100_000,
                   help="independent estimates N per estimator (100000)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (0)")
    p.add_argument("--out", default=str(HERE / "estimator_variance.png"),
                   help="figure (examples/estimator_variance.png)")
    p.add_argument("--results", default=str(HERE / "estimator_variance.md"),
                   help="Markdown table (examples/estimator_variance.md)")
    args = p.parse_args(argv)
    if args.estimates < 2:
        p.error("--estimates must be at least 2")
    if not 0 <= args.seed < 2**63:
        p.error("--seed must be in [0, 2**63 - 1)")
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    rows, exact = run_estimators(LOGITS, args.estimates, args.seed)
    seconds = time.perf_counter() - t0
    claims = check_claims(rows)
    print(f"exact gradient: {np.array2string(exact, precision=4)} "
          f"(norm {np.linalg.norm(exact):.4f})")
    print(f"{'estimator':<26}{'tau':>5}{'S':>4}{'bias':>11}{'s.e.':>10}{'variance':>11}")
    for r in rows:
        tau = "-" if r["tau"] is None else f"{r['tau']:g}"
        print(f"{r['estimator']:<26}{tau:>5}{r['samples']:>4}{r['bias']:>11.2e}"
              f"{r['se']:>10.1e}{r['variance']:>11.2e}")
    for key, value in claims.items():
        print(f"  {key}: {value}")
    out = draw_figure(args.out, rows, exact)
    res = write_results(args.results, rows, exact, claims, args.estimates, args.seed)
    print(f"{len(rows)} estimators x {args.estimates} estimates in {seconds:.1f} s "
          f"(first calls compile); wrote {out} and {res}")
    return {"rows": rows, "exact": exact, "claims": claims, "out": str(out),
            "results_path": str(res), "seconds": seconds}


if __name__ == "__main__":
    main()

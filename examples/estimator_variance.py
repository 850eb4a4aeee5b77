"""Bias, variance and mean squared error of the gradient estimators, on exact gradients.

Why a temperature, and which estimator: for a distribution over categorical
samples ``b ~ softmax(logits)`` and a fixed objective ``f``, every estimator
of ``d E[f(b)] / d logits`` is drawn N times (default 50000, one batch row
per estimate and latent variable, each row its own row id, so the N estimates
are independent), and its mean and spread are compared with the exact
gradient, computed by enumerating every value of ``b``:
``sum_b f(b) P(b) (onehot(b) - p)``, ``p = softmax(logits)``.

The problems:

* ``quadratic`` (Tucker et al.'s toy ``E[(b - t)^2]``, on a categorical): one
  categorical variable over K = 10 classes, logits
  ``numpy.random.default_rng(0).standard_normal(10)``; on the simplex
  ``f(y) = 1 + (<a, y> - 0.45)**2`` with ``a_j = j / (K - 1)``, so on the
  one-hot of class ``b`` it is ``1 + (b / (K - 1) - 0.45)**2``.  Every
  function of one one-hot sample is linear in it (``f(b) = <f(e), onehot(b)>``);
  what the straight-through family sees is ``f``'s gradient on the simplex,
  and that is where ``f`` is quadratic: the gradient with respect to ``y``,
  ``2 (<a, y> - 0.45) a``, differs at the one-hot and at the relaxed sample.
  The constant 1 changes no gradient and no relaxed or straight-through
  estimate; it stands for the large common part of a real learning signal,
  which is what REINFORCE without a baseline multiplies into its noise.
  ReinMax's trapezoid rule is exact for a quadratic, so its estimate at
  tau = 1 is unbiased here; the second problem is not quadratic.
* ``decoder`` (the categorical VAE's reconstruction term): ``f(z) = -log p(x
  | z)`` for one binary image ``x`` of 64 pixels and N = 2 categorical latent
  variables of K = 10 classes (100 joint values), through a fixed tanh MLP
  decoder (20 -> 32 -> 64, weights ``N(0, 1/2)`` and ``N(0, 1/32)`` as
  ``examples/categorical_vae.py`` initialises its decoder, hidden bias
  ``N(0, 0.25)``, output bias 0) with Bernoulli pixels; logits
  ``standard_normal((2, 10))`` and ``x`` a Bernoulli draw of the decoder's
  pixels at a random code, all from ``numpy.random.default_rng(1)``.  ``f`` is
  not linear in the joint sample: the gradient with respect to one latent's
  code depends on the other latent's code, through the tanh.  ``E[f(b)]`` is
  47 nats with a standard deviation of 2 (printed in the results), the
  proportions of the VAE example's reconstruction term.  Two variables of 10
  classes rather than more of fewer: Gumbel-Rao's kernel costs about 2.5
  times as much per element on rows of 5 as on rows of 10 (measured).

The estimators, each the two-line recipe of a hard (or soft) forward and a
chosen backward, written out in ``run_estimators``:

* ``ST-Gumbel-Softmax`` at tau in {0.1, 0.3, 0.5, 1, 2, 5}: ``y, y_soft =
  gumbel_softmax(logits, tau, hard=True, return_soft=True)``, then
  ``gumbel_softmax_backward(df/dy(y), y_soft, tau)``;
* ``relaxed Gumbel-Softmax`` at the same temperatures: the soft forward and
  its VJP, ``gumbel_softmax_backward(df/dy(y_soft), y_soft, tau)``; unbiased
  for the relaxed objective ``E[f(y_soft)]``, not for ``E[f(b)]``;
* ``Gumbel-Rao`` with M = 1, 10, 100 conditional samples (the paper's K) at
  the same temperatures: ``b = categorical(logits)``, then
  ``gumbel_rao_backward(df/dy(onehot(b)), logits, b, tau, num_samples=M)``
  (Paulus et al. 2021); M = 1 has the law of ST-Gumbel-Softmax;
* ``ReinMax`` at the same temperatures: ``b = categorical(logits)``, then
  ``reinmax_backward(df/dy(onehot(b)), logits, b, tau)`` (Liu et al. 2023);
* ``straight-through``: ``b = categorical(logits)``, then
  ``softmax_backward(df/dy(onehot(b)), softmax(logits))``;
* ``REINFORCE`` with S = 2, 4, 16 samples per estimate
  (``categorical(logits, num_samples=S)``), without a baseline and with the
  leave-one-out baseline (``reinforce(..., baseline="loo")``).

Common random numbers: every estimator draws from the same key.  The hard
sample ``b`` is the same for ST-Gumbel-Softmax (at every temperature),
Gumbel-Rao, ReinMax and straight-through (``categorical(logits, rng=s)`` is
the argmax of ``logits + gumbel(rng=s)``); the relaxed estimator uses that
same noise; Gumbel-Rao's conditional samples come from their own stream
domain, M = 10's being the first ten of M = 100's; REINFORCE draws from the
next key, its S = 2 samples the first two of S = 16.  So the estimates of one
row are paired, and the difference between two estimators' squared errors is
measured with the standard error of its paired mean, far below that of
either alone.

For each estimator: bias ``|mean - exact|`` (Euclidean norm over the
gradient's coordinates) with its Monte Carlo standard error ``sqrt(v / N)``;
variance ``v``, the trace of the covariance of one estimate; and the mean
squared error ``MSE = mean |estimate - exact|**2 = bias**2 + v``, with its
standard error.  At each temperature the estimators that take one are ranked
by MSE; one whose paired MSE difference from the lowest is below
``TIE`` = 3 standard errors is reported as tied with it, not ranked.

Usage::

    python examples/estimator_variance.py [--estimates 50000] [--seed 0]
        [--out FILE.png] [--results FILE.md]

References: E. Jang, S. Gu and B. Poole, "Categorical Reparameterization with
Gumbel-Softmax", ICLR 2017; C. J. Maddison, A. Mnih and Y. W. Teh, "The
Concrete Distribution", ICLR 2017; G. Tucker et al., "REBAR: Low-variance,
unbiased gradient estimates for discrete latent variable models", NIPS 2017;
M. B. Paulus, C. J. Maddison and A. Krause, "Rao-Blackwellizing the
Straight-Through Gumbel-Softmax Gradient Estimator", ICLR 2021; L. Liu et
al., "Bridging Discrete and Backpropagation: Straight-Through and Beyond",
NeurIPS 2023; R. J. Williams, "Simple statistical gradient-following
algorithms for connectionist reinforcement learning", Machine Learning 8,
1992; W. Kool, H. van Hoof and M. Welling, "Buy 4 REINFORCE Samples, Get a
Baseline for Free!", ICLR 2019 workshop.
"""

from __future__ import annotations

import argparse
import itertools
import pathlib
import time
from typing import Callable, NamedTuple

import numpy as np

import gumbel_np as gnp

HERE = pathlib.Path(__file__).resolve().parent
TAUS = (0.1, 0.3, 0.5, 1.0, 2.0, 5.0)
SAMPLES = (2, 4, 16)
RAO_SAMPLES = (1, 10, 100)
RELAXED = ("ST-Gumbel-Softmax", "relaxed Gumbel-Softmax")
TIE = 3.0
"""Paired MSE differences below this many standard errors are reported as
ties: were two estimators equal, a difference of 3 s.e. would show with
probability 0.0027, so over the 12 rankings (6 temperatures x 2 problems) a
spurious winner has a chance of about 0.03."""
CHUNK = 1 << 16
"""Rows per decoder evaluation: its 64 pixel logits per row in float64 take
32 MiB per chunk, whatever ``--estimates`` asks for."""


class Problem(NamedTuple):
    """A distribution over categorical samples and an objective on them.

    ``logits`` has shape ``(N, K)``: N independent categorical variables of K
    classes.  ``objective(y)`` maps codes ``y`` of shape ``(..., N, K)`` (one-hot
    or relaxed) to ``f(y)`` of shape ``(...)``; ``objective_grad(y)`` is
    ``df/dy``, of ``y``'s shape.
    """

    name: str
    logits: np.ndarray
    objective: Callable[[np.ndarray], np.ndarray]
    objective_grad: Callable[[np.ndarray], np.ndarray]
    description: str


# --------------------------------------------------------------------------- the problems

K = 10
LOGITS = np.random.default_rng(0).standard_normal(K)
A = np.arange(K) / (K - 1)
TARGET = 0.45
OFFSET = 1.0


def objective(y):
    """``f(y) = OFFSET + (<a, y> - TARGET)**2`` for points ``y`` of the simplex (last axis)."""
    return OFFSET + (y @ A - TARGET) ** 2


def objective_grad(y):
    """``df/dy = 2 (<a, y> - TARGET) a``, of ``y``'s shape."""
    return 2.0 * (y @ A - TARGET)[..., None] * A


def _quadratic():
    logits = ", ".join(f"{v:.3f}" for v in LOGITS)
    probs = ", ".join(f"{v:.3f}" for v in gnp.softmax(LOGITS))
    return Problem(
        name="quadratic",
        logits=LOGITS[None, :],
        objective=lambda y: objective(y[..., 0, :]),
        objective_grad=objective_grad,
        description=(
            f"Tucker et al.'s toy E[(b - t)^2] on a categorical: one variable over K = {K} "
            f"classes, logits = standard normal draws of seed 0 = [{logits}] (p = [{probs}]); "
            f"objective f(y) = {OFFSET:g} + (<a, y> - {TARGET:g})^2 on the simplex, "
            f"a_j = j / {K - 1}, f(b) its value at the one-hot of b. Quadratic on the simplex: "
            "ReinMax's trapezoid rule is exact for it, so ReinMax at tau = 1 is unbiased here."),
    )


LATENTS, CLASSES, HIDDEN, PIXELS = 2, 10, 32, 64


def _decoder_setup():
    """The decoder's weights, the encoder logits and the image, from seed 1."""
    rng = np.random.default_rng(1)
    # Scaled by the number of ones in a code, as the VAE example's decoder.
    w3 = rng.standard_normal((LATENTS * CLASSES, HIDDEN)) / np.sqrt(LATENTS)
    b3 = 0.5 * rng.standard_normal(HIDDEN)
    w4 = rng.standard_normal((HIDDEN, PIXELS)) / np.sqrt(HIDDEN)
    logits = rng.standard_normal((LATENTS, CLASSES))
    code = rng.integers(CLASSES, size=LATENTS)
    pixel_logits = np.tanh(np.eye(CLASSES)[code].reshape(-1) @ w3 + b3) @ w4
    x = (rng.random(PIXELS) < 1.0 / (1.0 + np.exp(-pixel_logits))).astype(np.float64)
    return w3, b3, w4, logits, x


W3, B3, W4, DECODER_LOGITS, IMAGE = _decoder_setup()


def decoder_nll(y):
    """``-log p(x | y)``: Bernoulli pixels with logits ``tanh(vec(y) W3 + b3) W4``."""
    flat = y.reshape(-1, LATENTS * CLASSES)
    out = np.empty(len(flat))
    for a in range(0, len(flat), CHUNK):
        o = np.tanh(flat[a : a + CHUNK] @ W3 + B3) @ W4
        out[a : a + CHUNK] = (np.logaddexp(0.0, o) - IMAGE * o).sum(-1)
    return out.reshape(y.shape[:-2])


def decoder_nll_grad(y):
    """``d(-log p(x | y)) / dy``, of ``y``'s shape."""
    flat = y.reshape(-1, LATENTS * CLASSES)
    h = np.tanh(flat @ W3 + B3)
    dout = 1.0 / (1.0 + np.exp(-(h @ W4))) - IMAGE  # sigmoid(o) - x
    return (((dout @ W4.T) * (1.0 - h * h)) @ W3.T).reshape(y.shape)


def _decoder():
    return Problem(
        name="decoder",
        logits=DECODER_LOGITS,
        objective=decoder_nll,
        objective_grad=decoder_nll_grad,
        description=(
            f"The categorical VAE's reconstruction term: f(z) = -log p(x | z) for one binary "
            f"image x of {PIXELS} pixels and N = {LATENTS} latent variables of K = {CLASSES} "
            f"classes ({CLASSES ** LATENTS} joint values), through a fixed tanh MLP decoder "
            f"({LATENTS * CLASSES} -> {HIDDEN} -> {PIXELS}, Bernoulli pixels); logits "
            f"standard normal, x a draw of the decoder at a random code, all from seed 1. "
            "Not linear in the joint sample, not quadratic in any one variable."),
    )


PROBLEMS = (_quadratic(), _decoder())


def enumerate_samples(problem):
    """Every joint sample ``b``: its one-hot codes (K**N, N, K), ``P(b)`` and ``f(b)``."""
    n, k = problem.logits.shape
    p = gnp.softmax(problem.logits)
    configs = np.array(list(itertools.product(range(k), repeat=n)))  # (k**n, n)
    onehots = np.eye(k)[configs]
    return onehots, p[np.arange(n), configs].prod(axis=1), problem.objective(onehots)


def exact_gradient(problem):
    """``d E[f(b)] / d logits = sum_b f(b) P(b) (onehot(b) - p)``, by enumerating every ``b``."""
    onehots, prob, values = enumerate_samples(problem)
    p = gnp.softmax(problem.logits)
    return ((prob * values)[:, None, None] * (onehots - p)).sum(axis=0)


def objective_moments(problem):
    """``E[f(b)]`` and the standard deviation of ``f(b)``, by enumeration."""
    _, prob, values = enumerate_samples(problem)
    mean = float(prob @ values)
    return mean, float(np.sqrt(prob @ (values - mean) ** 2))


# --------------------------------------------------------------------------- the estimators


def run_estimators(problem, n, seed):
    """Every estimator, ``n`` estimates each, against the exact gradient.

    Returns ``(rows, lowest, exact)``.  Each row is a dict: ``estimator``,
    ``tau`` (None when there is none), ``samples`` (Gumbel-Rao's conditional
    samples, REINFORCE's categorical draws, else 1), ``bias``, ``se``,
    ``variance``, ``mse``, ``mse_se``.  ``lowest`` has one entry per
    temperature, from ``rank_by_mse``.
    """
    exact = exact_gradient(problem)
    logits = np.broadcast_to(problem.logits, (n, *problem.logits.shape))  # (n, N, K)
    k = logits.shape[-1]
    df = problem.objective_grad
    rows, errors = [], {}

    def add(name, tau, samples, estimates):
        err = ((estimates - exact) ** 2).reshape(n, -1).sum(axis=1)  # |estimate - exact|^2
        mean = estimates.mean(axis=0)
        variance = float(((estimates - mean) ** 2).reshape(n, -1).sum(axis=1).mean())
        rows.append(dict(estimator=name, tau=tau, samples=samples,
                         bias=float(np.linalg.norm(mean - exact)),
                         se=float(np.sqrt(variance / n)), variance=variance,
                         mse=float(err.mean()), mse_se=float(err.std() / np.sqrt(n))))
        errors[name, tau, samples] = err

    # The hard forward that Gumbel-Rao, ReinMax and straight-through share,
    # and f's gradient there (a decoder pass, so computed once).
    b = gnp.categorical(logits, rng=seed)
    grad_b = df(np.eye(k)[b])
    for tau in TAUS:
        y, y_soft = gnp.gumbel_softmax(logits, tau=tau, hard=True, rng=seed, return_soft=True)
        add("ST-Gumbel-Softmax", tau, 1, gnp.gumbel_softmax_backward(df(y), y_soft, tau=tau))

        add("relaxed Gumbel-Softmax", tau, 1,
            gnp.gumbel_softmax_backward(df(y_soft), y_soft, tau=tau))

        for m in RAO_SAMPLES:
            add("Gumbel-Rao", tau, m,
                gnp.gumbel_rao_backward(grad_b, logits, b, tau=tau, num_samples=m, rng=seed))

        add("ReinMax", tau, 1, gnp.reinmax_backward(grad_b, logits, b, tau=tau))

    add("straight-through", None, 1, gnp.softmax_backward(grad_b, gnp.softmax(logits)))

    draws = gnp.categorical(logits, num_samples=max(SAMPLES), rng=seed + 1)  # (n, N, S)
    # f of each sample, one sample index at a time: the one-hot codes of all
    # 16 at once would take 16 times the batch's memory.
    values = np.stack([problem.objective(np.eye(k)[draws[..., j]])
                       for j in range(draws.shape[-1])], axis=-1)  # (n, S)
    for baseline, name in ((None, "REINFORCE"), ("loo", "REINFORCE, loo baseline")):
        for s in SAMPLES:
            index = draws[..., :s]
            # Every latent variable of an estimate shares its sample's value.
            signal = np.broadcast_to(values[:, None, :s], index.shape)
            add(name, None, s, gnp.reinforce(logits, index, signal, baseline=baseline))
    return rows, rank_by_mse(rows, errors, n), exact


def rank_by_mse(rows, errors, n):
    """At each temperature, the estimator of lowest MSE and those tied with it.

    Returns one dict per tau: ``tau``, ``best`` (its row), ``tied`` and
    ``runner_up`` (the next-lowest that is not tied; None if all are), each a
    list of or one ``(row, difference, z)`` with ``difference`` the paired MSE
    difference from ``best`` and ``z`` that over its standard error.
    """
    out = []
    for tau in TAUS:
        cands = sorted((r for r in rows if r["tau"] == tau), key=lambda r: r["mse"])
        best = cands[0]
        e0 = errors[best["estimator"], tau, best["samples"]]
        others = []
        for r in cands[1:]:
            d = errors[r["estimator"], tau, r["samples"]] - e0
            se = float(d.std() / np.sqrt(n))
            others.append((r, float(d.mean()), float(d.mean()) / se if se > 0 else np.inf))
        tied = [o for o in others if o[2] < TIE]
        rest = [o for o in others if o[2] >= TIE]
        out.append(dict(tau=tau, best=best, tied=tied, runner_up=rest[0] if rest else None))
    return out


def label(r):
    """The estimator's name with its sample count where it has one."""
    if r["estimator"] == "Gumbel-Rao":
        return f"Gumbel-Rao, M = {r['samples']}"
    if r["estimator"].startswith("REINFORCE"):
        return f"{r['estimator']}, S = {r['samples']}"
    return r["estimator"]


def find(rows, estimator, tau=None, samples=None):
    """The result row of ``estimator`` at ``tau`` with ``samples`` (any if None)."""
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
    * ``bias_falls_with_tau`` / ``variance_rises_as_tau_falls``: for
      ST-Gumbel-Softmax and the relaxed estimator, bias at tau = 0.1 below
      tau = 5 and variance at tau = 0.1 above tau = 5;
    * ``monotone_in_tau``: for both, the bias rises and the variance falls at
      every step up the temperatures;
    * ``reinforce_variance_largest``: the largest variance of all belongs to
      REINFORCE without a baseline;
    * ``rao_variance_falls``: at every temperature the Gumbel-Rao variance
      falls from M = 1 to 10 to 100 (``rao_variance_ratio``: M = 1 over
      M = 100, per tau);
    * ``rao_one_vs_st_gs``: per tau, the ratio of the variances of Gumbel-Rao
      with M = 1 and of ST-Gumbel-Softmax (the same law: about 1), and
      ``rao_bias_gap_in_se``: the largest difference of their biases over
      the larger of their standard errors;
    * ``reinmax_bias_at_1_in_se``: ReinMax's bias at tau = 1 in standard
      errors.
    """
    reinforce = [r for r in rows if r["estimator"].startswith("REINFORCE")]
    lo, hi = min(TAUS), max(TAUS)
    largest = max(rows, key=lambda r: r["variance"])
    steps = [(find(rows, e, a), find(rows, e, b)) for e in RELAXED for a, b in zip(TAUS, TAUS[1:])]
    rao = {t: [find(rows, "Gumbel-Rao", t, m)["variance"] for m in RAO_SAMPLES] for t in TAUS}
    pairs = {t: (find(rows, "Gumbel-Rao", t, 1), find(rows, "ST-Gumbel-Softmax", t)) for t in TAUS}
    reinmax = find(rows, "ReinMax", 1.0)
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
        "rao_variance_falls": all(v[0] > v[1] > v[2] for v in rao.values()),
        "rao_variance_ratio": {t: v[0] / v[-1] for t, v in rao.items()},
        "rao_one_vs_st_gs": {t: a["variance"] / b["variance"] for t, (a, b) in pairs.items()},
        "rao_bias_gap_in_se": max(abs(a["bias"] - b["bias"]) / max(a["se"], b["se"])
                                  for a, b in pairs.values()),
        "reinmax_bias_at_1_in_se": reinmax["bias"] / reinmax["se"],
    }


def _ratio_range(values):
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f} to {hi:.2f}"


def findings(rows, exact, claims):
    """The results in words, each statement worded by what the numbers show."""
    lo, hi = min(TAUS), max(TAUS)
    norm = float(np.linalg.norm(exact))
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
    ratios = claims["rao_variance_ratio"]
    falls = ("falls from M = 1 to 10 to 100 at every tau" if claims["rao_variance_falls"]
             else "does not fall with M at every tau")
    parts.append(f"Gumbel-Rao: the variance {falls}, by a factor of "
                 f"{_ratio_range(ratios.values())} from M = 1 to 100; with M = 1 its variance is "
                 f"{_ratio_range(claims['rao_one_vs_st_gs'].values())} times ST-Gumbel-Softmax's "
                 f"and the biases differ by at most {claims['rao_bias_gap_in_se']:.1f} s.e. "
                 "(the same law).")
    rm = [find(rows, "ReinMax", t) for t in TAUS]
    at1 = find(rows, "ReinMax", 1.0)
    least = min(rm, key=lambda r: r["bias"])
    parts.append(f"ReinMax: bias {at1['bias']:.2e} ({claims['reinmax_bias_at_1_in_se']:.1f} s.e.) "
                 f"at tau = 1, least at tau = {least['tau']:g}; variance from "
                 f"{rm[-1]['variance']:.2e} (tau = {hi:g}) to {rm[0]['variance']:.2e} "
                 f"(tau = {lo:g}).")
    st = find(rows, "straight-through")
    parts.append(f"straight-through: bias {st['bias']:.2e} "
                 f"({'above' if st['bias'] > norm else 'below'} |exact gradient| = {norm:.2e}).")
    within = claims["reinforce_max_bias_in_se"]
    loo = ", ".join(f"{claims['loo_variance_ratio'][s]:.0f}" for s in SAMPLES)
    parts.append(f"REINFORCE: every measured bias within {within:.1f} s.e. of 0; the loo baseline "
                 f"divides the variance by {loo} at S = {', '.join(str(s) for s in SAMPLES)}.")
    largest = max(rows, key=lambda r: r["variance"])
    parts.append(f"The largest variance: {label(largest)}"
                 + ("" if largest["tau"] is None else f", tau = {largest['tau']:g}") + ".")
    return " ".join(parts)


def lowest_summary(lowest):
    """One sentence: the lowest-MSE estimator at each temperature."""
    parts = []
    for e in lowest:
        names = [label(e["best"])] + [label(r) for r, _, _ in e["tied"]]
        tie = f" (tied within {TIE:g} s.e.)" if e["tied"] else ""
        parts.append(f"tau = {e['tau']:g}: {' and '.join(names)}{tie}")
    return "Lowest MSE: " + "; ".join(parts) + "."


# --------------------------------------------------------------------------- output

STYLES = {  # (colour, line style, marker) of the curves against tau
    ("ST-Gumbel-Softmax", 1): ("tab:blue", "-", "o"),
    ("relaxed Gumbel-Softmax", 1): ("tab:orange", "-", "o"),
    ("Gumbel-Rao", 1): ("tab:green", ":", "v"),
    ("Gumbel-Rao", 10): ("tab:green", "--", "s"),
    ("Gumbel-Rao", 100): ("tab:green", "-", "D"),
    ("ReinMax", 1): ("tab:brown", "-", "^"),
}


def draw_figure(path, results):
    """Bias, variance and MSE against tau (log axes), one row per problem; the
    tau-free estimators as horizontal lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16, 4.6 * len(results)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(len(results), 3))
    taus = np.array(TAUS)
    for (problem, rows, exact), axrow in zip(results, axes):
        ax_bias, ax_var, ax_mse = axrow
        for (name, m), (color, style, marker) in STYLES.items():
            sel = [find(rows, name, t, m) for t in TAUS]
            kw = dict(color=color, ls=style, marker=marker, ms=4, label=label(sel[0]))
            ax_bias.errorbar(taus, [r["bias"] for r in sel], yerr=[r["se"] for r in sel],
                             capsize=3, **kw)
            ax_var.plot(taus, [r["variance"] for r in sel], **kw)
            ax_mse.errorbar(taus, [r["mse"] for r in sel], yerr=[r["mse_se"] for r in sel],
                            capsize=3, **kw)
        flat = [(find(rows, "straight-through"), "tab:olive", "-")]
        for s, style in zip(SAMPLES, ("--", "-.", ":")):
            flat.append((find(rows, "REINFORCE", samples=s), "tab:red", style))
            flat.append((find(rows, "REINFORCE, loo baseline", samples=s), "tab:purple", style))
        for r, color, style in flat:
            for ax, key in ((ax_bias, "bias"), (ax_var, "variance"), (ax_mse, "mse")):
                ax.axhline(r[key], color=color, ls=style, lw=1.2, label=label(r))
        norm = float(np.linalg.norm(exact))
        zero = "the zero estimate: |exact| (bias), |exact|² (MSE)"
        ax_bias.axhline(norm, color="black", lw=0.8, label=zero)
        ax_mse.axhline(norm**2, color="black", lw=0.8, label=zero)
        noise = max(r["bias"] / r["se"] for r, _, _ in flat[1:])
        ax_bias.text(0.03, 0.03, f"REINFORCE lines: Monte Carlo noise, within {noise:.1f} s.e. "
                     "of 0", transform=ax_bias.transAxes, fontsize=8)
        ax_bias.set_title(f"{problem.name}: bias |mean - exact| (bars: 1 s.e.)")
        ax_var.set_title(f"{problem.name}: variance of one estimate (trace)")
        ax_mse.set_title(f"{problem.name}: mean squared error (bars: 1 s.e.)")
        for ax in axrow:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("temperature τ")
            ax.set_xticks(taus, [f"{t:g}" for t in TAUS])
            ax.minorticks_off()
            ax.grid(alpha=0.3, which="both")
        ax_bias.set_ylim(bottom=max(min(r["bias"] for r in rows) / 4, norm * 1e-4))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    curves = [labels.index(label(find(results[0][1], name, TAUS[0], m))) for name, m in STYLES]
    order = curves + [i for i in range(len(labels)) if i not in curves]  # the tau curves first
    fig.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8,
               loc="outside right center")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def problem_markdown(number, problem, rows, lowest, exact, claims):
    """The section of the results file for one problem."""
    norm = float(np.linalg.norm(exact))
    tau_free = [r for r in rows if r["tau"] is None]
    best_free = min(tau_free, key=lambda r: r["mse"])
    mean, sd = objective_moments(problem)
    beat_zero = [e["tau"] for e in lowest if e["best"]["mse"] < norm**2]
    if not beat_zero:
        zero = "no estimator with a temperature has an MSE below the zero estimate's at any tau"
    elif len(beat_zero) == len(TAUS):
        zero = "the lowest MSE is below the zero estimate's at every tau"
    else:
        zero = ("the lowest MSE is below the zero estimate's at tau = "
                + ", ".join(f"{t:g}" for t in beat_zero) + " only")
    lines = [
        f"#### Problem {number}: {problem.name}",
        "",
        f"{problem.description} E[f(b)] = {mean:.4g}, standard deviation {sd:.3g}. Exact "
        f"gradient by enumeration, of norm {norm:.4g}: the zero estimate has MSE {norm**2:.3g}.",
        "",
        findings(rows, exact, claims),
        "",
        lowest_summary(lowest) + " Of the estimators without a temperature, the lowest MSE is "
        f"that of {label(best_free)}: {best_free['mse']:.3g} ± {best_free['mse_se']:.1g}; "
        f"{zero}.",
        "",
        "| tau | lowest MSE | its MSE | next lowest | its MSE | difference (paired s.e.) |",
        "|---:|---|---:|---|---:|---:|",
    ]
    for e in lowest:
        best = e["best"]
        names = ", ".join([label(best)] + [f"{label(r)} (tied)" for r, _, _ in e["tied"]])
        nxt = e["tied"][0] if e["tied"] else e["runner_up"]
        other = ("-", "-", "-") if nxt is None else (
            label(nxt[0]), f"{nxt[0]['mse']:.3g} ± {nxt[0]['mse_se']:.1g}",
            f"{nxt[1]:.2g} ({nxt[2]:.1f})")
        lines.append(f"| {e['tau']:g} | {names} | {best['mse']:.3g} ± {best['mse_se']:.1g} "
                     f"| {' | '.join(other)} |")
    lines += [
        "",
        "| estimator | tau | samples | bias | s.e. | variance | MSE | s.e. |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        tau = "-" if r["tau"] is None else f"{r['tau']:g}"
        lines.append(f"| {r['estimator']} | {tau} | {r['samples']} | {r['bias']:.2e} "
                     f"| {r['se']:.1e} | {r['variance']:.2e} | {r['mse']:.2e} "
                     f"| {r['mse_se']:.1e} |")
    return lines


def write_results(path, results, n, seed):
    lines = [
        "# Bias and variance of the gradient estimators",
        "",
        f"{n} independent estimates of each estimator on each problem (noise key {seed} for the "
        f"Gumbel noise, the categorical samples and Gumbel-Rao's conditional samples, "
        f"{seed + 1} for REINFORCE's). Bias: |mean - exact| with its Monte Carlo standard error "
        "sqrt(variance / N) (an unbiased estimator shows about one standard error); variance: "
        "trace of the covariance of one estimate; MSE: mean |estimate - exact|^2 = bias^2 + "
        "variance, ± its standard error; samples: Gumbel-Rao's conditional samples M, "
        "REINFORCE's categorical draws S. Lowest MSE: among the estimators with a temperature, "
        f"at each tau; a paired difference under {TIE:g} standard errors is called a tie.",
    ]
    for i, (problem, rows, lowest, exact, claims) in enumerate(results, 1):
        lines += [""] + problem_markdown(i, problem, rows, lowest, exact, claims)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Gumbel-Rao with 100 samples is most of the run time (1.7e9 conditional
    # values at N = 100000, about 25 s on two idle cores); at 50000 the
    # lowest-MSE comparisons still stand 20 or more standard errors apart.
    p.add_argument("--estimates", type=int, default=50_000,
                   help="independent estimates N per estimator and problem (50000)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (0)")
    p.add_argument("--out", default=str(HERE / "estimator_variance.png"),
                   help="figure (examples/estimator_variance.png)")
    p.add_argument("--results", default=str(HERE / "estimator_variance.md"),
                   help="Markdown tables (examples/estimator_variance.md)")
    args = p.parse_args(argv)
    if args.estimates < 2:
        p.error("--estimates must be at least 2")
    if not 0 <= args.seed < 2**63 - 1:
        p.error("--seed must be in [0, 2**63 - 1)")
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    out = {}
    for problem in PROBLEMS:
        rows, lowest, exact = run_estimators(problem, args.estimates, args.seed)
        out[problem.name] = dict(rows=rows, lowest=lowest, exact=exact,
                                 claims=check_claims(rows))
    seconds = time.perf_counter() - t0
    for problem in PROBLEMS:
        res = out[problem.name]
        print(f"{problem.name}: exact gradient of norm {np.linalg.norm(res['exact']):.4f}")
        print(f"{'estimator':<26}{'tau':>5}{'S/M':>5}{'bias':>11}{'s.e.':>10}{'variance':>11}"
              f"{'MSE':>11}{'s.e.':>10}")
        for r in res["rows"]:
            tau = "-" if r["tau"] is None else f"{r['tau']:g}"
            print(f"{r['estimator']:<26}{tau:>5}{r['samples']:>5}{r['bias']:>11.2e}"
                  f"{r['se']:>10.1e}{r['variance']:>11.2e}{r['mse']:>11.2e}{r['mse_se']:>10.1e}")
        for key, value in res["claims"].items():
            print(f"  {key}: {value}")
        print("  " + lowest_summary(res["lowest"]))
    fig = draw_figure(args.out, [(p, out[p.name]["rows"], out[p.name]["exact"])
                                 for p in PROBLEMS])
    md = write_results(args.results, [(p, out[p.name]["rows"], out[p.name]["lowest"],
                                       out[p.name]["exact"], out[p.name]["claims"])
                                      for p in PROBLEMS], args.estimates, args.seed)
    count = sum(len(res["rows"]) for res in out.values())
    print(f"{count} estimator rows x {args.estimates} estimates in {seconds:.1f} s "
          f"(first calls compile); wrote {fig} and {md}")
    return {"problems": out, "out": str(fig), "results_path": str(md), "seconds": seconds}


if __name__ == "__main__":
    main()

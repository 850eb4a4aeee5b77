"""A categorical VAE on the scikit-learn digits, in plain NumPy, seven gradient estimators.

The model (Jang et al. 2017, section 4.2, scaled down to 8 x 8 digits):

* data: ``sklearn.datasets.load_digits`` (bundled with scikit-learn, no
  download), pixels scaled to [0, 1] and binarised at 0.5, a fixed
  train/held-out split;
* encoder: a one-hidden-layer tanh MLP giving logits of shape (batch, N, K),
  N categorical latent variables of K classes each (default 20 x 10);
* prior: uniform over the K classes of every latent variable;
* decoder: a one-hidden-layer tanh MLP from the N one-hot (or relaxed) codes
  to Bernoulli logits of the 64 pixels.

The loss of the first six estimators is the negative ELBO,
``-E_q[log p(x|z)] + KL(q(z|x) || p(z))``, with the KL to the uniform prior
computed analytically by ``gumbel_np.categorical_kl`` against zero logits and
its gradient by ``categorical_kl_backward``; the seventh replaces the whole
objective by its relaxation.  Backpropagation through the MLPs is written by
hand, and every gradient through the sampling step and the densities comes
from gumbel_np (no autodiff library, no estimator or density code here):

* ``straight-through``: hard one-hot forward (``gumbel_softmax(hard=True)``),
  soft backward (``gumbel_softmax_backward`` from the soft sample);
* ``gumbel-rao``: the same hard forward, an exact sample ``b =
  categorical(logits)``, and Paulus et al.'s Rao-Blackwellised backward
  ``gumbel_rao_backward(dL/dz, logits, b, tau, num_samples=10)``, the soft
  VJP averaged over ``--rao-samples`` (10) Gumbel perturbations drawn given
  ``b`` (``num_samples=1`` would be ``straight-through`` in law);
* ``reinmax``: the same hard forward, and Liu et al.'s second-order backward
  ``reinmax_backward(dL/dz, logits, b, tau)``, at the fixed temperature
  ``--reinmax-tau`` (1) rather than the others' schedule, which ends at 0.5:
  the authors' code refuses ``tau < 1``, and at the defaults a fixed 0.5
  ends at 21.69 nats, 1 at 19.81 and 2 at 19.86 (measured, seed 0);
* ``gumbel-softmax``: the relaxed sample in the forward pass, its exact VJP in
  the backward pass;
* ``reinforce``: the score-function estimator ``gumbel_np.reinforce`` on one
  exact sample per image (``gumbel_np.categorical``), the learning signal
  ``-log p(x|z)`` centred by a moving-average baseline kept by the training
  loop (``baseline=``);
* ``reinforce-loo``: ``gumbel_np.reinforce`` on ``--loo-samples`` (4) exact
  samples per image (``categorical(num_samples=4)``), the decoder run on each,
  with the leave-one-out baseline ``baseline="loo"`` (Kool et al. 2019): each
  sample's signal centred by the mean of the others;
* ``relaxed-elbo``: the relaxed objective of Maddison et al. (2017, appendix
  C.3, eq. 25), ``-log p(x | exp(Z)) + log q(Z|x) - log p(Z)`` for one
  ExpConcrete sample ``Z = log_gumbel_softmax(logits, tau=tau_q)`` per image:
  the decoder reads ``y = exp(Z)``, and the KL term is the single-sample
  estimate with the relaxed posterior ``q = ExpConcrete(logits, tau_q)`` and
  the relaxed uniform prior ``p = ExpConcrete(0, tau_p)``, both from
  ``exp_concrete_log_prob``.  Its gradient: ``dL/dZ = y dL/dy + dZ_q - dZ_p``
  (the last two from ``exp_concrete_log_prob_backward``) through
  ``log_gumbel_softmax_backward``, plus the density's own logits gradient.
  The temperatures are fixed, not annealed, as in the paper (appendix D.5:
  "No temperature annealing was used"), and distinct for the posterior and the
  prior, which the paper found to "improve results quite dramatically" (C.4):
  its tuned pairs, each with the colder prior, were (posterior, prior) =
  (2/3, 1/2) for binary, (1, 2/3) for 4-ary and (2/3, 2/5) for 8-ary
  variables; the defaults here are the 8-ary pair, the arity nearest K = 10
  (``--tau-q``, ``--tau-p``).  Working in log
  space keeps the densities finite where ``gumbel_softmax`` would underflow.

For ``straight-through``, ``gumbel-rao`` and ``gumbel-softmax`` the temperature
follows the schedule of Jang et al., ``tau = max(tau_min, exp(-r t))`` for the
global step ``t``, updated every ``--anneal-every`` steps
(``gumbel_np.anneal_tau``).  All runs share the
architecture, the initial weights, the data split, the batch order and the
noise seed, and use a hand-written Adam.

The held-out negative ELBO is evaluated with discrete samples (exact
categorical draws, ``--eval-samples`` per image) for every estimator, so the
numbers are comparable: a model trained on the relaxation is scored on the
discrete model it defines (for ``relaxed-elbo`` too: it trains on the
relaxed bound and is scored on the discrete ELBO).

Usage::

    python examples/categorical_vae.py [--steps 3000] [--latents 20] [--classes 10]
        [--hidden 128] [--batch 100] [--lr 1e-3] [--anneal-rate 3e-4] [--seed 0]
        [--loo-samples 4] [--rao-samples 10] [--reinmax-tau 1] [--tau-q 0.667]
        [--tau-p 0.4] [--out FILE.png]
        [--results FILE.md] [--check-grads]

References: E. Jang, S. Gu and B. Poole, "Categorical Reparameterization with
Gumbel-Softmax", ICLR 2017; C. J. Maddison, A. Mnih and Y. W. Teh, "The
Concrete Distribution: A Continuous Relaxation of Discrete Random Variables",
ICLR 2017; W. Kool, H. van Hoof and M. Welling, "Buy 4 REINFORCE Samples, Get
a Baseline for Free!", ICLR 2019 workshop; M. B. Paulus, C. J. Maddison and A.
Krause, "Rao-Blackwellizing the Straight-Through Gumbel-Softmax Gradient
Estimator", ICLR 2021; L. Liu et al., "Bridging Discrete and Backpropagation:
Straight-Through and Beyond", NeurIPS 2023.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import time

import numpy as np

import gumbel_np as gnp

HERE = pathlib.Path(__file__).resolve().parent
ESTIMATORS = ("straight-through", "gumbel-rao", "reinmax", "gumbel-softmax", "reinforce",
              "reinforce-loo", "relaxed-elbo")
HARD_FORWARD = ("straight-through", "gumbel-rao", "reinmax")
"""The estimators whose forward pass is the one-hot sample: their encoder
gradient is the chosen backward's, not the derivative of a loss."""
TAU_Q, TAU_P = 2.0 / 3.0, 2.0 / 5.0
"""Fixed posterior and prior temperatures of ``relaxed-elbo``: Maddison et
al.'s best pair for 8-ary variables (appendix D.5), the arity nearest 10."""
EVAL_CHUNK = 100
"""Images per evaluation call: 100 images x 20 latents x 10 classes stay in
gumbel_np's single-threaded path, as in training."""


# --------------------------------------------------------------------------- data


def load_data(seed, test_size):
    """Binarised digits, shuffled with ``seed`` and split into (train, test)."""
    from sklearn.datasets import load_digits

    x = load_digits().data / 16.0
    x = (x >= 0.5).astype(np.float64)
    perm = np.random.default_rng(seed).permutation(len(x))
    return x[perm[test_size:]], x[perm[:test_size]]


# --------------------------------------------------------------------------- model


def init_params(rng, dim, hidden, n, k, pixel_mean):
    """Weights of the encoder (W1, b1, W2, b2) and decoder (W3, b3, W4, b4)."""

    def dense(fan_in, fan_out, active_inputs=None):
        scale = 1.0 / math.sqrt(active_inputs or fan_in)
        return rng.standard_normal((fan_in, fan_out)) * scale, np.zeros(fan_out)

    p = {}
    p["W1"], p["b1"] = dense(dim, hidden)
    p["W2"], p["b2"] = dense(hidden, n * k)
    # The decoder input holds exactly n ones (one per latent variable).
    p["W3"], p["b3"] = dense(n * k, hidden, active_inputs=n)
    p["W4"], p["b4"] = dense(hidden, dim)
    m = np.clip(pixel_mean, 1e-3, 1 - 1e-3)
    p["b4"] = np.log(m) - np.log1p(-m)  # output bias at the pixel log-odds
    return p


def encode(p, x, n, k):
    h1 = np.tanh(x @ p["W1"] + p["b1"])
    logits = (h1 @ p["W2"] + p["b2"]).reshape(len(x), n, k)
    return logits, (x, h1)


def encode_backward(p, cache, dlogits, grads):
    x, h1 = cache
    d2 = dlogits.reshape(len(x), -1)
    grads["W2"] = h1.T @ d2
    grads["b2"] = d2.sum(0)
    da1 = (d2 @ p["W2"].T) * (1.0 - h1 * h1)
    grads["W1"] = x.T @ da1
    grads["b1"] = da1.sum(0)


def decode(p, z):
    zf = z.reshape(len(z), -1)
    h2 = np.tanh(zf @ p["W3"] + p["b3"])
    return h2 @ p["W4"] + p["b4"], (zf, h2)


def decode_backward(p, cache, dxl, grads):
    """Decoder parameter gradients into ``grads``; returns dL/dz (flat codes)."""
    zf, h2 = cache
    grads["W4"] = h2.T @ dxl
    grads["b4"] = dxl.sum(0)
    da2 = (dxl @ p["W4"].T) * (1.0 - h2 * h2)
    grads["W3"] = zf.T @ da2
    grads["b3"] = da2.sum(0)
    return da2 @ p["W3"].T


def bernoulli_nll(xl, x):
    """-log p(x|z) per image for Bernoulli logits ``xl``, and d/dxl."""
    nll = (np.logaddexp(0.0, xl) - x * xl).sum(-1)
    return nll, np.exp(-np.logaddexp(0.0, -xl)) - x  # sigmoid(xl) - x


def one_hot(idx, k):
    return np.eye(k)[idx]


def batch_gradients(p, x, estimator, tau, rng, baseline, n, k, samples=4, tau_p=TAU_P,
                    rao_samples=10):
    """Forward and backward pass of one minibatch.

    Returns ``(neg_elbo, nll, grads)``: the per-image training objective (the
    relaxed one for ``gumbel-softmax`` and ``relaxed-elbo``), the per-image
    reconstruction term (for ``reinforce-loo`` the mean over its ``samples``
    samples) and the gradients of the batch mean.  ``baseline`` (the moving
    average of the reconstruction term; None: this batch's mean) is used by
    ``reinforce``.  ``relaxed-elbo`` samples at the posterior temperature
    ``tau`` and scores the sample under the relaxed prior at ``tau_p``.
    ``gumbel-rao`` averages ``rao_samples`` conditional samples.
    """
    b = len(x)
    grads = {}
    logits, enc_cache = encode(p, x, n, k)
    prior = np.zeros_like(logits)  # the uniform prior: zero logits
    per_latent = np.full((b, n), 1.0 / b)  # d(batch mean)/d(each latent's term)
    if estimator == "relaxed-elbo":
        z = gnp.log_gumbel_softmax(logits, tau=tau, rng=rng)  # ExpConcrete sample
        y = np.exp(z)
        xl, dec_cache = decode(p, y)
        nll, dxl = bernoulli_nll(xl, x)
        dy = decode_backward(p, dec_cache, dxl / b, grads).reshape(b, n, k)
        # Single-sample relaxed KL: log q(z|x) - log p(z), per latent variable.
        kl = (gnp.exp_concrete_log_prob(z, logits, tau=tau)
              - gnp.exp_concrete_log_prob(z, prior, tau=tau_p)).sum(-1)
        dz_q, dlogits = gnp.exp_concrete_log_prob_backward(per_latent, z, logits, tau=tau)
        dz_p, _ = gnp.exp_concrete_log_prob_backward(per_latent, z, prior, tau=tau_p)
        dlogits += gnp.log_gumbel_softmax_backward(dy * y + dz_q - dz_p, z, tau=tau)
        encode_backward(p, enc_cache, dlogits, grads)
        return nll + kl, nll, grads
    kl = gnp.categorical_kl(logits, prior).sum(-1)
    dlogits, _ = gnp.categorical_kl_backward(per_latent, logits, prior)
    if estimator.startswith("reinforce"):
        if estimator == "reinforce":
            idx = gnp.categorical(logits, rng=rng)[..., None]  # (b, n, 1), exact samples
        else:
            idx = gnp.categorical(logits, num_samples=samples, rng=rng)  # (b, n, S)
        s = idx.shape[-1]
        # The decoder runs once per sample: the S codes of an image, sample-major.
        z = one_hot(np.moveaxis(idx, -1, 0), k).reshape(s * b, n, k)
        xl, dec_cache = decode(p, z)
        nll_s, dxl = bernoulli_nll(xl, np.tile(x, (s, 1)))
        decode_backward(p, dec_cache, dxl / (s * b), grads)
        nll_s = nll_s.reshape(s, b).T  # (b, S)
        # Every latent variable of an image shares the image's learning signal.
        values = np.broadcast_to(nll_s[:, None, :], idx.shape)
        if estimator == "reinforce-loo":
            centre = "loo"
        else:
            centre = float(nll_s.mean()) if baseline is None else baseline
        dlogits += gnp.reinforce(logits, idx, values, baseline=centre) / b
        nll = nll_s.mean(1)
    elif estimator in ("gumbel-rao", "reinmax"):
        idx = gnp.categorical(logits, rng=rng)  # the hard forward: an exact sample
        xl, dec_cache = decode(p, one_hot(idx, k))
        nll, dxl = bernoulli_nll(xl, x)
        dz = decode_backward(p, dec_cache, dxl / b, grads).reshape(b, n, k)
        if estimator == "gumbel-rao":
            dlogits += gnp.gumbel_rao_backward(dz, logits, idx, tau=tau, num_samples=rao_samples,
                                               rng=rng)
        else:
            dlogits += gnp.reinmax_backward(dz, logits, idx, tau=tau)
    else:
        z, y_soft = gnp.gumbel_softmax(
            logits, tau=tau, hard=estimator == "straight-through", rng=rng, return_soft=True
        )
        xl, dec_cache = decode(p, z)
        nll, dxl = bernoulli_nll(xl, x)
        dz = decode_backward(p, dec_cache, dxl / b, grads)
        dlogits += gnp.gumbel_softmax_backward(dz.reshape(b, n, k), y_soft, tau=tau)
    encode_backward(p, enc_cache, dlogits, grads)
    return nll + kl, nll, grads


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


def evaluate(p, x, n, k, samples, seed):
    """Held-out negative ELBO (nats per image) with discrete samples.

    ``samples`` exact categorical draws per image (Gumbel-Max, keyed by
    ``seed`` and by the row id ``image * n + latent``, so every model and every
    chunking sees the same noise), the reconstruction term averaged over them,
    plus the analytic KL.
    """
    total = 0.0
    for a in range(0, len(x), EVAL_CHUNK):
        xb = x[a : a + EVAL_CHUNK]
        logits, _ = encode(p, xb, n, k)
        kl = gnp.categorical_kl(logits, np.zeros_like(logits)).sum(-1)
        ids = (a + np.arange(len(xb)))[:, None] * n + np.arange(n)
        idx = gnp.categorical(logits, num_samples=samples, rng=seed, row_ids=ids)  # (b, n, S)
        nll = np.zeros(len(xb))
        for s in range(samples):
            xl, _ = decode(p, one_hot(idx[..., s], k))
            nll += bernoulli_nll(xl, xb)[0]
        total += float((nll / samples + kl).sum())
    return total / len(x)


# --------------------------------------------------------------------------- training


def tau_at(estimator, step, args):
    """The (posterior) temperature of ``estimator`` at ``step``: fixed for
    ``relaxed-elbo`` and ``reinmax``, annealed for the others (the REINFORCE
    estimators ignore it)."""
    if estimator == "relaxed-elbo":
        return args.tau_q
    if estimator == "reinmax":
        return args.reinmax_tau
    return gnp.anneal_tau(step, tau_min=args.tau_min, rate=args.anneal_rate,
                          every=args.anneal_every)


def train(estimator, data, args):
    """Train one estimator; returns its curves and final held-out score."""
    train_x, test_x = data
    n, k = args.latents, args.classes
    init_rng = np.random.default_rng(args.seed)
    params = init_params(init_rng, train_x.shape[1], args.hidden, n, k, train_x.mean(0))
    opt = Adam(params, lr=args.lr)
    order_rng = np.random.default_rng([args.seed, 1])  # same batch order for every estimator
    noise_rng = np.random.default_rng([args.seed, 2])  # same noise keys for every estimator
    eval_seed = args.seed + 1_000_003

    curve_steps, curve_train = [], []
    eval_steps = [0]
    eval_values = [evaluate(params, test_x, n, k, args.eval_samples, eval_seed)]
    baseline = None
    batches = []
    t0 = time.perf_counter()
    for step in range(args.steps):
        if not batches:
            perm = order_rng.permutation(len(train_x))
            batches = [perm[i : i + args.batch] for i in range(0, len(perm), args.batch)][::-1]
        xb = train_x[batches.pop()]
        tau = tau_at(estimator, step, args)
        obj, nll, grads = batch_gradients(params, xb, estimator, tau, noise_rng, baseline, n, k,
                                          args.loo_samples, args.tau_p, args.rao_samples)
        if baseline is None:  # the moving average starts at the first batch's value
            baseline = float(nll.mean())
        baseline = args.baseline_decay * baseline + (1.0 - args.baseline_decay) * float(nll.mean())
        opt.step(params, grads)
        curve_steps.append(step + 1)
        curve_train.append(float(obj.mean()))
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            eval_steps.append(step + 1)
            eval_values.append(evaluate(params, test_x, n, k, args.eval_samples, eval_seed))
    seconds = time.perf_counter() - t0
    last = max(args.steps - 1, 0)
    return {
        "init": eval_values[0],
        "final": eval_values[-1],
        "final_tau": tau_at(estimator, last, args),
        "seconds": seconds,
        "train_steps": np.array(curve_steps),
        "train_neg_elbo": np.array(curve_train),
        "eval_steps": np.array(eval_steps),
        "eval_neg_elbo": np.array(eval_values),
    }


# --------------------------------------------------------------------------- gradient check


def gradient_check(seed=0, n=3, k=4, hidden=5, dim=6, batch=4, tau=0.7, samples=4, eps=1e-6,
                   tau_p=0.4):
    """Largest relative error of the example's gradients against central differences.

    float64, a tiny model.  Checked functions of the parameters, each
    deterministic and differentiable:

    * ``gumbel-softmax``: the relaxed loss with fixed noise (an integer key
      gives the same noise at every call), every parameter;
    * ``reinforce``: the surrogate ``nll(z) + sg(nll(z) - b) log q(z|x) + KL``
      with ``z`` held fixed, every parameter;
    * ``reinforce-loo``: the surrogate
      ``mean_s (nll(z_s) + sg(nll(z_s) - c_s) log q(z_s|x)) + KL`` over
      ``samples`` fixed samples, ``c_s`` the mean of the other samples'
      ``nll``, every parameter;
    * ``straight-through``, ``gumbel-rao``, ``reinmax``: the hard-sample loss
      (the sample each draws with the key), decoder parameters only (their
      encoder gradient is the chosen backward's, not a derivative);
    * ``relaxed-elbo``: ``nll(exp(z)) + log q(z|x) - log p(z)`` with the
      ExpConcrete sample ``z`` at posterior temperature ``tau`` from fixed
      noise and the prior at ``tau_p`` (distinct from ``tau``, so that a
      swapped temperature shows), every parameter.

    ``sg`` (stop gradient): the value at the parameters the gradients are
    taken at, held constant.  Returns ``{estimator: max relative error}``.
    """
    rng = np.random.default_rng(seed)
    x = (rng.random((batch, dim)) < 0.5).astype(np.float64)
    p0 = init_params(rng, dim, hidden, n, k, x.mean(0))
    for v in p0.values():  # non-zero biases, so that they are checked too
        v += 0.1 * rng.standard_normal(v.shape)
    noise_key = seed + 7
    baseline = 3.0

    def nll_of(p, idx):
        """-log p(x|z_s) for the samples ``idx`` (batch, n, S): (batch, S)."""
        return np.stack([bernoulli_nll(decode(p, one_hot(idx[..., j], k))[0], x)[0]
                         for j in range(idx.shape[-1])], axis=-1)

    # The discrete samples batch_gradients draws with the same key, held fixed,
    # and the stopped-gradient learning signals at p0.
    logits0 = encode(p0, x, n, k)[0]
    fixed = {"reinforce": gnp.categorical(logits0, rng=noise_key)[..., None],
             "reinforce-loo": gnp.categorical(logits0, num_samples=samples, rng=noise_key)}
    nll0 = {name: nll_of(p0, idx) for name, idx in fixed.items()}
    signal = {"reinforce": nll0["reinforce"] - baseline,
              "reinforce-loo": nll0["reinforce-loo"]
              - (nll0["reinforce-loo"].sum(-1, keepdims=True) - nll0["reinforce-loo"])
              / (samples - 1)}

    def loss(p, estimator):
        logits, _ = encode(p, x, n, k)
        kl = gnp.categorical_kl(logits, np.zeros_like(logits)).sum(-1)
        if estimator == "relaxed-elbo":
            z = gnp.log_gumbel_softmax(logits, tau=tau, rng=noise_key)
            relaxed_kl = (gnp.exp_concrete_log_prob(z, logits, tau=tau)
                          - gnp.exp_concrete_log_prob(z, np.zeros_like(logits), tau=tau_p)).sum(-1)
            return float((bernoulli_nll(decode(p, np.exp(z))[0], x)[0] + relaxed_kl).mean())
        if estimator in fixed:
            idx = fixed[estimator]
            log_q = gnp.categorical_log_prob(logits, idx).sum(1)  # (batch, S)
            surrogate = (nll_of(p, idx) + signal[estimator] * log_q).mean(-1)
            return float((surrogate + kl).mean())
        if estimator in ("gumbel-rao", "reinmax"):
            z = one_hot(gnp.categorical(logits, rng=noise_key), k)
        else:
            z = gnp.gumbel_softmax(
                logits, tau=tau, hard=estimator == "straight-through", rng=noise_key
            )
        return float((bernoulli_nll(decode(p, z)[0], x)[0] + kl).mean())

    errors = {}
    for estimator in ESTIMATORS:
        p = {key: v.copy() for key, v in p0.items()}
        _, _, grads = batch_gradients(p, x, estimator, tau, noise_key, baseline, n, k, samples,
                                      tau_p)
        names = ["W3", "b3", "W4", "b4"] if estimator in HARD_FORWARD else list(p)
        worst = 0.0
        for name in names:
            num = np.zeros_like(p[name])
            for i in np.ndindex(p[name].shape):
                old = p[name][i]
                p[name][i] = old + eps
                up = loss(p, estimator)
                p[name][i] = old - eps
                down = loss(p, estimator)
                p[name][i] = old
                num[i] = (up - down) / (2 * eps)
            err = np.abs(num - grads[name]).max() / max(np.abs(num).max(), 1e-8)
            worst = max(worst, float(err))
        errors[estimator] = worst
    return errors


# --------------------------------------------------------------------------- output


def plot_curves(path, runs, smooth):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_train, ax_eval = fig.subplots(1, 2)
    train_values = []
    for name, run in runs.items():
        y = run["train_neg_elbo"]
        if len(y):
            w = min(smooth, len(y))
            ys = np.convolve(y, np.ones(w) / w, mode="valid")
            train_values += [ys.min(), ys.max()]
            # Its bound holds log-densities of the relaxed codes, not masses,
            # and is not comparable with the others: at zero logits the
            # relaxed KL between tau_q = 2/3 and tau_p = 2/5 alone is 1.5 nats
            # per latent variable (30 per image at the defaults, measured).
            label = f"{name} (relaxed bound)" if name == "relaxed-elbo" else name
            ax_train.plot(run["train_steps"][w - 1 :], ys, label=label)
        ax_eval.plot(run["eval_steps"], run["eval_neg_elbo"], marker="o", ms=3, label=name)
    ax_train.set_title(f"training objective (batch mean, {smooth}-step moving average)")
    ax_eval.set_title("held-out negative ELBO (discrete samples)")
    ax_train.set_ylabel("training objective (nats / image)")
    ax_eval.set_ylabel("negative ELBO (nats / image)")
    for ax in (ax_train, ax_eval):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    eval_values = [v for r in runs.values() for v in (r["init"], r["final"])]
    for ax, values in ((ax_train, train_values), (ax_eval, eval_values)):
        if values:
            lo, hi = min(values), max(values)
            ax.set_ylim(lo - 0.1 * (hi - lo) - 1.0, hi + 0.1 * (hi - lo) + 1.0)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def write_results(path, runs, args, n_train, n_test):
    setup = (
        f"{args.latents} latent variables x {args.classes} classes, hidden layer {args.hidden}, "
        f"{args.steps} Adam steps (batch {args.batch}, lr {args.lr:g}), "
        f"tau = max({args.tau_min:g}, exp(-{args.anneal_rate:g} t)) "
        f"every {args.anneal_every} steps, "
        f"seed {args.seed}; {n_train} training / {n_test} held-out images. "
        f"gumbel-rao: {args.rao_samples} conditional samples per latent variable, annealed tau; "
        f"reinmax: fixed tau = {args.reinmax_tau:g}; "
        "reinforce: one sample per image, moving-average baseline (decay "
        f"{args.baseline_decay:g}); reinforce-loo: {args.loo_samples} samples per image, "
        "leave-one-out baseline; relaxed-elbo: Maddison et al.'s relaxed objective, one "
        f"ExpConcrete sample per image, fixed posterior tau_q = {args.tau_q:.3g} and prior "
        f"tau_p = {args.tau_p:.3g} (no annealing)."
    )
    how = (
        f"Held-out negative ELBO in nats per image, with {args.eval_samples} discrete samples "
        "per image (lower is better). Train time: wall time of the training loop with its "
        "periodic evaluations, kernels already compiled."
    )
    lines = [
        "# Categorical VAE on the scikit-learn digits",
        "",
        setup,
        how,
        "",
        "| estimator | held-out -ELBO at init | held-out -ELBO | final tau | train time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in runs.items():
        lines.append(
            f"| {name} | {r['init']:.2f} | {r['final']:.2f} | {r['final_tau']:.3f} "
            f"| {r['seconds']:.1f} |"
        )
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=3000, help="Adam steps per estimator (3000)")
    p.add_argument("--latents", type=int, default=20, help="latent variables N (20)")
    p.add_argument("--classes", type=int, default=10, help="classes K per latent variable (10)")
    p.add_argument("--hidden", type=int, default=128, help="hidden units per MLP (128)")
    p.add_argument("--batch", type=int, default=100, help="minibatch size (100)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    p.add_argument("--anneal-rate", type=float, default=3e-4,
                   help="r in tau = max(tau_min, exp(-r t)) (3e-4: tau reaches 0.5 near "
                        "step 2300 of 3000)")
    p.add_argument("--anneal-every", type=int, default=100,
                   help="steps between temperature updates (100)")
    p.add_argument("--tau-min", type=float, default=0.5, help="smallest temperature (0.5)")
    p.add_argument("--baseline-decay", type=float, default=0.9,
                   help="decay of the REINFORCE moving-average baseline (0.9)")
    p.add_argument("--loo-samples", type=int, default=4,
                   help="samples per image of reinforce-loo (4, at least 2)")
    p.add_argument("--rao-samples", type=int, default=10,
                   help="gumbel-rao: conditional samples averaged per latent variable (10)")
    p.add_argument("--reinmax-tau", type=float, default=1.0,
                   help="reinmax: fixed temperature (1; the authors' code refuses tau < 1)")
    p.add_argument("--tau-q", type=float, default=TAU_Q,
                   help="relaxed-elbo: fixed posterior temperature (2/3)")
    p.add_argument("--tau-p", type=float, default=TAU_P,
                   help="relaxed-elbo: fixed prior temperature (2/5)")
    p.add_argument("--test-size", type=int, default=297, help="held-out images (297)")
    p.add_argument("--eval-samples", type=int, default=4,
                   help="discrete samples per held-out image (4)")
    p.add_argument("--eval-every", type=int, default=250, help="steps between evaluations (250)")
    p.add_argument("--estimators", default=",".join(ESTIMATORS),
                   help="comma-separated subset of " + ", ".join(ESTIMATORS))
    p.add_argument("--seed", type=int, default=0, help="seed of data split, weights, noise (0)")
    p.add_argument("--out", default=str(HERE / "categorical_vae.png"),
                   help="training-curve PNG (examples/categorical_vae.png)")
    p.add_argument("--results", default=str(HERE / "categorical_vae_results.md"),
                   help="Markdown results table (examples/categorical_vae_results.md)")
    p.add_argument("--blas-threads", type=int, default=1,
                   help="BLAS threads for the MLP matrix products (1)")
    p.add_argument("--check-grads", action="store_true",
                   help="first compare the hand-written gradients with central differences")
    args = p.parse_args(argv)
    args.estimators = [e.strip() for e in args.estimators.split(",") if e.strip()]
    bad = [e for e in args.estimators if e not in ESTIMATORS]
    if bad or not args.estimators:
        p.error(f"--estimators: unknown {bad}; choose from {', '.join(ESTIMATORS)}")
    for name in ("steps", "latents", "classes", "hidden", "batch", "test_size", "eval_samples",
                 "eval_every", "anneal_every", "blas_threads", "rao_samples"):
        if getattr(args, name) < (0 if name == "steps" else 1):
            p.error(f"--{name.replace('_', '-')} is too small")
    if args.loo_samples < 2:
        p.error("--loo-samples must be at least 2 (the leave-one-out baseline needs a second "
                "sample)")
    if not (0 < args.tau_min <= 1 and args.anneal_rate >= 0 and 0 <= args.baseline_decay < 1):
        p.error("need 0 < tau_min <= 1, anneal_rate >= 0 and 0 <= baseline_decay < 1")
    if not (args.reinmax_tau > 0 and math.isfinite(args.reinmax_tau)):
        p.error(f"--reinmax-tau must be positive and finite, got {args.reinmax_tau:g}")
    if not (args.tau_q > 0 and args.tau_p > 0):
        p.error(f"--tau-q and --tau-p must be positive, got {args.tau_q:g} and {args.tau_p:g}")
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    result = {}
    if args.check_grads:
        errors = gradient_check(seed=args.seed)
        print("gradient check (max relative error vs central differences, float64):")
        for name, err in errors.items():
            print(f"  {name:<17} {err:.2e}")
        result["gradient_check"] = errors

    # The matrices are small (batch 100): one BLAS thread is fastest, and it
    # leaves the second core to gumbel_np's kernels and to other processes.
    # threadpoolctl comes with scikit-learn.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.blas_threads, user_api="blas"):
        return _run(args, t0, result)


def warm_up(args, data):
    """Compile gumbel_np's kernels once (Numba compiles lazily, at the first
    call) so that the training times exclude compilation."""
    x = data[0][:2]
    p = init_params(np.random.default_rng(0), x.shape[1], 2, args.latents, args.classes, x.mean(0))
    for estimator in args.estimators:
        batch_gradients(p, x, estimator, 1.0, 0, None, args.latents, args.classes,
                        args.loo_samples)
    evaluate(p, x, args.latents, args.classes, args.eval_samples, 0)


def _run(args, t0, result):
    data = load_data(args.seed, args.test_size)
    t1 = time.perf_counter()
    warm_up(args, data)
    print(f"kernel compilation (first calls): {time.perf_counter() - t1:.1f} s")
    print(f"digits: {len(data[0])} training / {len(data[1])} held-out binarised 8x8 images; "
          f"{args.latents} x {args.classes} categorical latents, {args.steps} steps")
    runs = {}
    for estimator in args.estimators:
        runs[estimator] = r = train(estimator, data, args)
        print(f"  {estimator:<17} held-out -ELBO {r['init']:7.2f} -> {r['final']:7.2f} nats/image"
              f"  (final tau {r['final_tau']:.3f}, {r['seconds']:.1f} s)")
    out = plot_curves(args.out, runs, smooth=max(1, min(50, args.steps // 20)))
    res = write_results(args.results, runs, args, len(data[0]), len(data[1]))
    print(f"wrote {out} and {res}  ({time.perf_counter() - t0:.1f} s in all)")
    result.update(
        init=next(iter(runs.values()))["init"],
        results={name: r["final"] for name, r in runs.items()},
        runs=runs,
        out=str(out),
        results_path=str(res),
    )
    return result


if __name__ == "__main__":
    main()

"""Every operation of the registry, from one parametrisation.

For each example call of ``gumbel_np._cases`` (every operation and variant),
backend and dtype, and for row lengths on each CPU path: the result against a
float64 reference written here (the noise from an independent NumPy
Philox4x32-10), the central-difference check of the backward partner in
float64, the bad-input vocabulary, and thread-count and chunk invariance.
(``out=`` runs over the same table in ``test_out.py``.)  An operation
registered without a reference here, or differentiable without a backward
partner, fails :func:`test_every_operation_is_covered`.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.special as sp
from helpers import GUMBEL_ROW_PATHS, SOFTMAX_ROW_PATHS, assert_close, at_one_and_two_threads, tol

import gumbel_np as gnp
from gumbel_np._cases import SAMPLES, VARIANTS, calls, make
from gumbel_np._ops import OPS
from gumbel_np._random import philox_key
from gumbel_np.kernels._jit import PARALLEL_MIN_ELEMENTS

LABELS = [c.label for c in calls((2, 3))]
LENGTHS = sorted({SOFTMAX_ROW_PATHS["columns"], SOFTMAX_ROW_PATHS["blocks"], *GUMBEL_ROW_PATHS[1:4]})
"""Row lengths on every CPU path of both families (the long rows are in the
family tests)."""

# --------------------------------------------------------------------------
# An independent Philox4x32-10 and the Gumbel stream (DESIGN section 4)

_M = (0xD2511F53, 0xCD9E8D57)
_W = (0x9E3779B9, 0xBB67AE85)
_LO = np.uint64(0xFFFFFFFF)


def _philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on uint64 arrays holding 32-bit words."""
    c = [np.asarray(v, np.uint64) & _LO for v in (c0, c1, c2, c3)]
    k0, k1 = np.uint64(k0), np.uint64(k1)
    for i in range(10):
        p0 = np.uint64(_M[0]) * c[0]
        p1 = np.uint64(_M[1]) * c[2]
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ k0) & _LO, p1 & _LO, ((p0 >> np.uint64(32)) ^ c[3] ^ k1) & _LO, p0 & _LO]
        k0, k1 = (k0 + np.uint64(_W[0])) & _LO, (k1 + np.uint64(_W[1])) & _LO
    return c


def test_reference_philox_known_answer():
    # Random123's first philox4x32-10 vector (as in test_philox.py).
    assert [int(w) for w in _philox(0, 0, 0, 0, 0, 0)] == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]


def reference_uniforms(rows: int, k: int, dtype, rng, draw: int = 0, domain: int = 0) -> np.ndarray:
    """The ``(rows, k)`` uniforms of ``rng`` (row ids 0..rows-1) in float64,
    of stream ``domain`` (the counter's draw word is ``draw + (domain << 28)``)."""
    k0, k1 = philox_key(rng, "reference")
    draw = draw + (domain << 28)
    w = 4 if np.dtype(dtype) != np.float64 else 2
    r = np.arange(rows, dtype=np.uint64)[:, None]
    j = np.arange(k, dtype=np.uint64)[None, :]
    words = _philox(j // np.uint64(w), draw, r, 0, k0, k1)
    if w == 4:
        x = np.choose((j % np.uint64(4)).astype(np.intp), words)
        u = ((x >> np.uint64(8)) | np.uint64(1)).astype(np.float64) * 2.0**-24
    else:
        pair = (j % np.uint64(2)).astype(np.intp)
        hi = np.choose(2 * pair, words)
        lo = np.choose(2 * pair + 1, words)
        x = (hi << np.uint64(32)) | lo
        u = ((x >> np.uint64(11)) | np.uint64(1)).astype(np.float64) * 2.0**-53
    return u


def reference_noise(rows: int, k: int, dtype, rng, draw: int = 0) -> np.ndarray:
    """The ``(rows, k)`` Gumbel noise of ``rng`` (row ids 0..rows-1) in float64."""
    return -np.log(-np.log(reference_uniforms(rows, k, dtype, rng, draw)))


def reference_logistic(rows: int, k: int, dtype, rng, draw: int = 0) -> np.ndarray:
    """The ``(rows, k)`` logistic noise of ``rng`` (domain 1) in float64."""
    u = reference_uniforms(rows, k, dtype, rng, draw, domain=1)
    return np.log(u) - np.log1p(-u)


# --------------------------------------------------------------------------
# References: float64, from the call's (rounded) inputs


def _softmax_of_noisy(call, x):
    noise = reference_noise(x.shape[0], x.shape[1], call.arrays[0].dtype, call.options["rng"])
    return sp.softmax((x.astype(np.float64) + noise) / call.options["tau"], axis=-1)


def _one_hot_of_first_max(p):
    out = np.zeros_like(p)
    out[np.arange(len(p)), p.argmax(-1)] = 1
    return out


def _categorical(call, x):
    draws = call.options.get("num_samples") or 1
    dt = call.arrays[0].dtype
    z = [x + reference_noise(*x.shape, dt, call.options["rng"], d) for d in range(draws)]
    idx = np.stack([zd.argmax(-1) for zd in z], -1)
    return idx if call.options.get("num_samples") else idx[:, 0]


def _topk(call, x):
    """The first ``k`` indices of the stable descending sort of ``x + G``."""
    z = x + reference_noise(*x.shape, call.arrays[0].dtype, call.options["rng"])
    return np.argsort(-z, axis=-1, kind="stable")[:, : call.options["num_samples"]]


def _plackett_luce(x, idx):
    """``sum_q x[i_q] - logsumexp(x over the rest)``, row by row, in float64."""
    out = np.empty(len(x))
    for r in range(len(x)):
        rest = np.ones(x.shape[1], bool)
        t = 0.0
        for i in idx[r]:
            t += x[r, i] - sp.logsumexp(x[r, rest])
            rest[i] = False
        out[r] = t
    return out


def _plackett_luce_backward(g, x, idx):
    out = np.zeros(x.shape)
    for r in range(len(x)):
        rest = np.ones(x.shape[1], bool)
        for i in idx[r]:
            p = np.where(rest, sp.softmax(np.where(rest, x[r], -np.inf)), 0)
            out[r] -= g[r] * p
            out[r, i] += g[r]
            rest[i] = False
    return out


def _exp_concrete(z, x, tau, simplex=False):
    """The (Exp)Concrete log-density in float64 over the categories not masked."""
    live = np.isfinite(x)
    n = live.sum(-1)
    zz = np.log(z) if simplex else z
    u = np.where(live, x - tau * zz, -np.inf)
    lp = sp.gammaln(n) + (n - 1) * np.log(tau) + np.where(live, u, 0).sum(-1) - n * sp.logsumexp(u, axis=-1)
    return lp - np.where(live, zz, 0).sum(-1) if simplex else lp


def _exp_concrete_backward(g, z, x, tau, simplex=False):
    live = np.isfinite(x)
    n = live.sum(-1, keepdims=True)
    zz = np.log(z) if simplex else z
    u = np.where(live, x - tau * zz, -np.inf)
    v = np.where(live, 1 - n * sp.softmax(u, axis=-1), 0)
    dz = -g[:, None] * tau * v
    if simplex:
        dz = np.where(live, (dz - g[:, None]) / z, 0)
    return dz, g[:, None] * v


def _binary_concrete_density(y, x, tau):
    """``-inf`` (and a zero gradient) for a sample that saturated to 0 or 1."""
    inside = (y > 0) & (y < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(y) - np.log1p(-y)
        a = x - tau * d
        lp = np.log(tau) + a - 2 * np.logaddexp(0, a) - np.log(y) - np.log1p(-y)
    return np.where(inside, lp, -np.inf)


def _binary_concrete_backward(g, y, x, tau):
    inside = (y > 0) & (y < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(y) - np.log1p(-y)
        t = 1 - 2 * sp.expit(x - tau * d)
        dy = g * (2 * y - 1 - tau * t) / (y * (1 - y))
    return np.where(inside, dy, 0), np.where(inside, g * t, 0)


def _bernoulli(call, x):
    draws = call.options.get("num_samples") or 1
    dt = call.arrays[0].dtype
    b = np.stack([x + reference_logistic(*x.shape, dt, call.options["rng"], d) > 0 for d in range(draws)], -1)
    return b if call.options.get("num_samples") else b[..., 0]


def _binary_concrete(call, x):
    """The soft sample ``sigmoid((x + L) / tau)`` of the call's key."""
    noise = reference_logistic(*x.shape, call.arrays[0].dtype, call.options["rng"])
    return sp.expit((x + noise) / call.options["tau"])


def _gate(y, limits=(-0.1, 1.1)):
    lo, hi = limits
    return np.clip(y * (hi - lo) + lo, 0, 1)


_L0_SHIFT = np.log(0.1 / 1.1)


def _softmax64(x):
    return sp.softmax(x, axis=-1)


def _scatter(w, idx, k):
    """``sum_s w_s onehot(idx_s)`` per row."""
    out = np.zeros((len(idx), k))
    for s in range(idx.shape[1]):
        np.add.at(out, (np.arange(len(idx)), idx[:, s]), w[:, s])
    return out


def _reinforce(call, x, idx, v):
    b = call.options.get("baseline")
    n = idx.shape[1]
    c = (v.sum(-1, keepdims=True) - v) / (n - 1) if b == "loo" else (0.0 if b is None else b)
    w = (v - c) / n
    return _scatter(w, idx, x.shape[1]) - w.sum(-1, keepdims=True) * _softmax64(x)


def _entropy(x):
    p = _softmax64(x)
    return -np.where(p > 0, p * sp.log_softmax(x, axis=-1), 0).sum(-1)


def _kl(q, p):
    pq = _softmax64(q)
    return np.where(pq > 0, pq * (sp.log_softmax(q, axis=-1) - sp.log_softmax(p, axis=-1)), 0).sum(-1)


def _kl_backward(g, q, p):
    pq, pp = _softmax64(q), _softmax64(p)
    lr = sp.log_softmax(q, axis=-1) - sp.log_softmax(p, axis=-1)
    return g[:, None] * pq * (lr - _kl(q, p)[:, None]), g[:, None] * (pp - pq)


def reference_conditional(x, idx, dtype, rng, draws: int = 1) -> np.ndarray:
    """``(rows, k, draws)`` conditional Gumbel samples of ``x`` given
    ``argmax == idx`` (domain 2), in float64, by the formula of the paper:
    ``z_i = lse - log E_i``, ``z_j = -logaddexp(-z_i, log E_j - x_j)``."""
    rows = np.arange(len(x))
    lse = sp.logsumexp(x, axis=-1)
    out = []
    for d in range(draws):
        e = -np.log(reference_uniforms(*x.shape, dtype, rng, d, domain=2))
        zi = lse - np.log(e[rows, idx])
        z = -np.logaddexp(-zi[:, None], np.log(e) - x)
        z[rows, idx] = zi
        out.append(z)
    return np.stack(out, -1)


def _conditional(call, x, idx):
    z = reference_conditional(x, idx, call.arrays[0].dtype, call.options["rng"], call.options.get("num_samples") or 1)
    return z if call.options.get("num_samples") else z[..., 0]


def _gumbel_rao(call, g, x, idx):
    tau, s = call.options["tau"], call.options.get("num_samples", 10)
    z = reference_conditional(x, idx, call.arrays[0].dtype, call.options["rng"], s)
    y = sp.softmax(z / tau, axis=1)
    return (y * (g[..., None] - (g[..., None] * y).sum(1, keepdims=True))).mean(-1) / tau


def _gumbel_rao_scale(call, g, x, idx):
    """The size of the terms of the mean soft VJP: ``y_j (|g_j| + <|g|, y>)
    / tau`` per draw, times ``1 + max|z| / tau`` for the rounding of the
    samples ``z`` that ``y`` amplifies (relative to ``|z|``, by ``1 / tau``)."""
    tau, s = call.options["tau"], call.options.get("num_samples", 10)
    z = reference_conditional(x, idx, call.arrays[0].dtype, call.options["rng"], s)
    y = sp.softmax(z / tau, axis=1)
    size = np.abs(g)[..., None] + (np.abs(g)[..., None] * y).sum(1, keepdims=True)
    amplified = 1 + np.abs(np.where(np.isfinite(z), z, 0)).max(1, keepdims=True) / tau
    return (y * size * amplified).mean(-1) / tau


def _reinmax(g, x, idx, tau):
    """Liu et al. 2023, Algorithm 2, as the authors' code computes it (its
    final centering included: zero up to rounding)."""
    p = _softmax64(x)
    pi = 0.5 * (_softmax64(x / tau) + np.eye(x.shape[1])[idx])
    grad = 2 * pi * (g - (g * pi).sum(-1, keepdims=True)) - 0.5 * p * (g - (g * p).sum(-1, keepdims=True))
    return grad - grad.mean(-1, keepdims=True)


REFERENCES = {
    "logsumexp": lambda c, x: sp.logsumexp(x, axis=-1, keepdims=c.options.get("keepdims", False)),
    "softmax": lambda c, x: sp.softmax(x, axis=-1),
    "log_softmax": lambda c, x: sp.log_softmax(x, axis=-1),
    "logsumexp_backward": lambda c, g, x: (g if c.options.get("keepdims") else g[:, None]) * sp.softmax(x, axis=-1),
    "softmax_backward": lambda c, g, y: y * (g - (g * y).sum(-1, keepdims=True)),
    "log_softmax_backward": lambda c, g, y: g - np.exp(y) * g.sum(-1, keepdims=True),
    "gumbel": lambda c: reference_noise(*c.arrays[0], c.options["dtype"], c.options["rng"]),
    "gumbel_softmax": lambda c, x: (_one_hot_of_first_max if c.options.get("hard") else (lambda p: p))(
        _softmax_of_noisy(c, x)
    ),
    "gumbel_softmax_backward": lambda c, g, y: y * (g - (g * y).sum(-1, keepdims=True)) / c.options["tau"],
    "categorical": lambda c, x: _topk(c, x) if c.options.get("replace") is False else _categorical(c, x),
    "log_gumbel_softmax": lambda c, x: sp.log_softmax(
        (x + reference_noise(*x.shape, c.arrays[0].dtype, c.options["rng"])) / c.options["tau"], axis=-1
    ),
    "log_gumbel_softmax_backward": lambda c, g, y: (g - np.exp(y) * g.sum(-1, keepdims=True)) / c.options["tau"],
    "conditional_gumbel": _conditional,
    "gumbel_rao_backward": _gumbel_rao,
    "reinmax_backward": lambda c, g, x, idx: _reinmax(g, x, idx, c.options["tau"]),
    "exp_concrete_log_prob": lambda c, z, x: _exp_concrete(z, x, c.options["tau"]),
    "exp_concrete_log_prob_backward": lambda c, g, z, x: _exp_concrete_backward(g, z, x, c.options["tau"]),
    "concrete_log_prob": lambda c, y, x: _exp_concrete(y, x, c.options["tau"], simplex=True),
    "concrete_log_prob_backward": lambda c, g, y, x: _exp_concrete_backward(g, y, x, c.options["tau"], True),
    "binary_concrete_log_prob": lambda c, y, x: _binary_concrete_density(y, x, c.options["tau"]),
    "binary_concrete_log_prob_backward": lambda c, g, y, x: _binary_concrete_backward(g, y, x, c.options["tau"]),
    "plackett_luce_log_prob": lambda c, x, idx: _plackett_luce(x, idx),
    "plackett_luce_log_prob_backward": lambda c, g, x, idx: _plackett_luce_backward(g, x, idx),
    "categorical_log_prob": lambda c, x, idx: np.take_along_axis(sp.log_softmax(x, axis=-1), idx, -1),
    "categorical_log_prob_backward": lambda c, g, x, idx: _scatter(g, idx, x.shape[1])
    - g.sum(-1, keepdims=True) * _softmax64(x),
    "reinforce": _reinforce,
    "categorical_entropy": lambda c, x: _entropy(x),
    "categorical_entropy_backward": lambda c, g, x: -g[:, None] * _softmax64(x)
    * (sp.log_softmax(x, axis=-1) + _entropy(x)[:, None]),
    "categorical_kl": lambda c, q, p: _kl(q, p),
    "categorical_kl_backward": lambda c, g, q, p: _kl_backward(g, q, p),
    "logistic": lambda c: reference_logistic(*c.arrays[0], c.options["dtype"], c.options["rng"]),
    "bernoulli": _bernoulli,
    "gumbel_sigmoid": lambda c, x: (
        (lambda y: (y > 0.5).astype(float)) if c.options.get("hard") else (lambda y: y)
    )(_binary_concrete(c, x)),
    "gumbel_sigmoid_backward": lambda c, g, y: g * y * (1 - y) / c.options["tau"],
    "hard_concrete": lambda c, x: _gate(_binary_concrete(c, x)),
    "hard_concrete_backward": lambda c, g, y: np.where(
        (_gate(y) > 0) & (_gate(y) < 1), g * 1.2 * y * (1 - y) / c.options["tau"], 0.0
    ),
    "hard_concrete_l0": lambda c, x: sp.expit(x - c.options["tau"] * _L0_SHIFT),
    "hard_concrete_l0_backward": lambda c, g, x: g * sp.expit(x - c.options["tau"] * _L0_SHIFT)
    * sp.expit(-(x - c.options["tau"] * _L0_SHIFT)),
}
"""The float64 reference of every operation, given the call and its arrays."""

def _kl_scales(g, q, p):
    pq, pp = _softmax64(q), _softmax64(p)
    lq, lp = sp.log_softmax(q, axis=-1), sp.log_softmax(p, axis=-1)
    size = np.abs(lq) + np.abs(lp) + np.abs(_kl(q, p))[:, None]
    return np.abs(g)[:, None] * pq * size, np.abs(g)[:, None] * (pp + pq)


def _concrete_scales(g, z, x, tau, simplex=False):
    """The size of the terms of the (Exp)Concrete density and its gradients."""
    live = np.isfinite(x)
    n = live.sum(-1, keepdims=True)
    zz = np.log(z) if simplex else z
    u = np.where(live, x - tau * zz, -np.inf)
    size = np.where(live, 1 + n * sp.softmax(u, axis=-1), 0)
    dz = np.abs(g)[:, None] * tau * size
    if simplex:
        dz = np.where(live, (dz + np.abs(g)[:, None]) / z, 0)
    return dz, np.abs(g)[:, None] * size


def _concrete_forward_scale(z, x, tau, simplex=False):
    live = np.isfinite(x)
    n = live.sum(-1)
    zz = np.log(z) if simplex else z
    u = np.where(live, x - tau * zz, -np.inf)
    terms = np.abs(np.where(live, u, 0)).sum(-1) + n * np.abs(sp.logsumexp(u, axis=-1)) + sp.gammaln(n)
    return terms + (np.abs(np.where(live, zz, 0)).sum(-1) if simplex else 0)


SCALES = {
    "exp_concrete_log_prob": lambda c, z, x: _concrete_forward_scale(z, x, c.options["tau"]),
    "concrete_log_prob": lambda c, y, x: _concrete_forward_scale(y, x, c.options["tau"], True),
    "exp_concrete_log_prob_backward": lambda c, g, z, x: _concrete_scales(g, z, x, c.options["tau"]),
    "concrete_log_prob_backward": lambda c, g, y, x: _concrete_scales(g, y, x, c.options["tau"], True),
    "categorical_kl_backward": lambda c, g, q, p: _kl_scales(g, q, p),
    "gumbel_rao_backward": _gumbel_rao_scale,
    "categorical_entropy_backward": lambda c, g, x: np.abs(g)[:, None] * _softmax64(x)
    * (np.abs(sp.log_softmax(x, axis=-1)) + _entropy(x)[:, None]),
}
"""Where a result is a difference of larger terms, the size of those terms
(its rounding error is relative to them, not to the result)."""

NOT_DIFFERENTIABLE = {
    "gumbel", "categorical", "reinforce", "logistic", "bernoulli", "conditional_gumbel", "gumbel_rao_backward",
    "reinmax_backward",
}
"""Operations with no gradient (noise, indices, a gradient estimate)."""


def test_every_operation_is_covered():
    assert set(REFERENCES) == set(OPS), "an operation without a reference (or a stale one)"
    for name, op in OPS.items():
        if op.forward is None and name not in NOT_DIFFERENTIABLE:
            assert op.backward in OPS, f"{name} is differentiable but has no backward partner"
    assert set(VARIANTS) <= set(OPS)


def _near_tie(call, x, got, want):
    """Rows whose decision (argmax, or a side of 0) is within rounding of another."""
    if call.op == "bernoulli" or (call.op == "gumbel_sigmoid" and call.options.get("hard")):
        draws = call.options.get("num_samples") or 1
        close = np.zeros(len(x), bool)
        for d in range(draws):
            z = x.astype(np.float64) + reference_logistic(*x.shape, call.arrays[0].dtype, call.options["rng"], d)
            close |= (np.abs(z) < 1e-4 * np.maximum(1, np.abs(x))).any(-1)
        return close
    if call.op not in ("categorical", "gumbel_softmax") or (call.op == "gumbel_softmax" and not call.options.get("hard")):
        return np.zeros(len(x), bool)
    draws = call.options.get("num_samples") or 1
    close = np.zeros(len(x), bool)
    for d in range(draws):
        z = x.astype(np.float64) + reference_noise(*x.shape, call.arrays[0].dtype, call.options["rng"], d)
        # The top 2 (the top k + 1 without replacement, whose order counts).
        ranked = call.options["num_samples"] if call.options.get("replace") is False else 1
        top = np.sort(z, -1)[:, -(ranked + 1) :]
        close |= (np.diff(top, axis=-1) < 1e-4 * np.maximum(1, np.abs(top[:, 1:]))).any(-1)
    return close


@pytest.mark.parametrize("k", LENGTHS)
@pytest.mark.parametrize("label", LABELS)
def test_reference(backend, dtype, label, k):
    name = label.split()[0]
    extra = next(v for v in VARIANTS.get(name, ({},)) if make(name, (2, 3), **v).label == label)
    call = make(name, (23, k), dtype, backend.xp, seed=k, **extra)
    got = call()
    arrays = [backend.to_numpy(a) for a in call.arrays if not isinstance(a, tuple)]
    want = REFERENCES[name](call, *[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays])
    if name in SCALES:
        scales = SCALES[name](call, *[a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays])
        got_all = got if isinstance(got, tuple) else (got,)
        want_all = want if isinstance(want, tuple) else (want,)
        scales = scales if isinstance(scales, tuple) else (scales,)
        rtol, atol = tol(dtype)["rtol"], tol(dtype)["atol"]
        for g, w, sc in zip(got_all, want_all, scales):
            err = np.abs(backend.to_numpy(g).astype(np.float64) - w)
            assert np.all(err <= 4 * rtol * sc + atol), np.max(err - 4 * rtol * sc)
        return
    if isinstance(got, tuple) and isinstance(want, tuple):  # several results (both gradients)
        for g, w in zip(got, want):
            assert_close(backend.to_numpy(g), w, dtype)
        return
    got = backend.to_numpy(got[0] if isinstance(got, tuple) else got)
    hard = name in ("gumbel_softmax", "gumbel_sigmoid") and call.options.get("hard")
    if got.dtype.kind in "ib" or hard:
        x = arrays[0]
        keep = ~_near_tie(call, x, got, want)
        assert keep.mean() > 0.9
        np.testing.assert_array_equal(got[keep], want[keep])
    elif name in ("gumbel", "logistic"):
        # A few ulp at the scale max(|G|, 1) (test_cuda_streams.py says why).
        scale = np.spacing(np.maximum(np.abs(want), 1).astype(dtype)).astype(np.float64)
        assert np.max(np.abs(got - want) / scale) <= 4
    else:
        assert_close(got, want, dtype)


# --------------------------------------------------------------------------
# Gradients: the backward partner against central differences (float64)

DIFFERENTIABLE = [n for n, op in OPS.items() if op.backward is not None]


@pytest.mark.parametrize("k", [SOFTMAX_ROW_PATHS["columns"], GUMBEL_ROW_PATHS[3]])
@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_backward_partner_is_the_gradient(name, k):
    fwd, bwd = OPS[name], OPS[OPS[name].backward]
    call = make(name, (6, k), np.float64, seed=11)
    arrays = call.arrays
    forward = getattr(gnp, name)

    def f(*a, **changed):
        return np.asarray(forward(*a, **{**call.options, **changed}))

    rng = np.random.default_rng(12)
    y = f(*arrays)
    v = rng.standard_normal(y.shape)
    # The saved forward output (a softmax, a soft sample), or the inputs.
    public = next(p for _, role, p in bwd.arrays if role == "data")
    if not public.startswith("y"):
        saved = arrays
    elif public == "y_soft" and "return_soft" in fwd.options:
        saved = (f(*arrays, return_soft=True)[1],)
    else:
        saved = (y,)
    opts = {o: call.options[o] for o in bwd.options if o in call.options}
    vjp = getattr(gnp, bwd.name)(v, *saved, **opts)
    vjps = vjp if isinstance(vjp, tuple) else (vjp,)
    # The gradient with respect to each float input (the logits, and the
    # second logits of a divergence); an index is held fixed.
    wrt = [i for i, (_, role, _) in enumerate(fwd.arrays) if role in ("data", "pair")]
    assert len(vjps) == len(wrt)
    h = 1e-6
    for i, g in zip(wrt, vjps):
        d = rng.standard_normal(arrays[i].shape)
        if name in SAMPLES and fwd.arrays[i][1] == "data":
            d *= np.abs(arrays[i])  # relative: a sample near 0 stays in the support
        plus = list(arrays)
        minus = list(arrays)
        plus[i], minus[i] = arrays[i] + h * d, arrays[i] - h * d
        numeric = (np.sum(v * f(*plus)) - np.sum(v * f(*minus))) / (2 * h)
        assert abs(numeric - np.sum(g * d)) <= 1e-6 * max(1.0, abs(numeric)), (name, i)
    if "tau_grad" in bwd.options:
        tau = call.options["tau"]
        *_, dtau = getattr(gnp, bwd.name)(v, *saved, **opts, tau_grad=True)
        numeric = (np.sum(v * f(*arrays, tau=tau + h)) - np.sum(v * f(*arrays, tau=tau - h))) / (2 * h)
        assert abs(numeric - float(dtau)) <= 1e-6 * max(1.0, abs(numeric))


# --------------------------------------------------------------------------
# The bad-input vocabulary (DESIGN section 5), for every operation


@pytest.mark.parametrize("name", sorted(OPS))
def test_bad_input(name):
    op = OPS[name]
    call = make(name, (4, 5), np.float64)
    fn = getattr(gnp, name)

    def with_options(**changed):
        return fn(*call.arrays, **{**call.options, **changed})

    if "axis" in inspect.signature(fn).parameters:  # the element-wise ones have none
        with pytest.raises(np.exceptions.AxisError):
            with_options(axis=5)
    for flag in op.flags:
        with pytest.raises(TypeError, match=f"{name}: {flag} must be True or False, not 'yes'"):
            with_options(**{flag: "yes"})
    if "rng" in op.options:
        with pytest.raises(TypeError, match=f"{name}: rng must be"):
            with_options(rng="seed")
    if op.result == "noise":
        with pytest.raises(ValueError, match=name):
            fn((4, -5), **call.options)
        with pytest.raises(TypeError, match=f"{name}: dtype must be"):
            with_options(dtype=np.int32)
        return
    for i in range(len(call.arrays)):
        for bad, what in ((np.ma.masked_array(call.arrays[i]), "masked"), (call.arrays[i] + 0j, "complex")):
            arrays = list(call.arrays)
            arrays[i] = bad
            with pytest.raises(TypeError, match=name):
                fn(*arrays, **call.options)
    if "tau" in op.options:
        for tau in (0.0, -1.0, np.nan, np.inf):
            with pytest.raises(ValueError, match=f"{name}: tau must be finite and > 0"):
                with_options(tau=tau)
    if op.needs_categories:
        # Empty rows for the float arrays of the data's shape; an index keeps its own.
        empty = [np.zeros((4, 0)) if role in ("data", "grad", "pair") else a for a, (_, role, _) in zip(call.arrays, op.arrays)]
        with pytest.raises(ValueError, match=f"{name}: the category axis"):
            fn(*empty, **call.options)


# --------------------------------------------------------------------------
# Thread-count and chunk invariance


@pytest.mark.parametrize("label", LABELS)
def test_thread_and_chunk_invariance(label, dtype):
    name = label.split()[0]
    extra = next(v for v in VARIANTS.get(name, ({},)) if make(name, (2, 3), **v).label == label)
    k = GUMBEL_ROW_PATHS[1]
    rows = 2 * PARALLEL_MIN_ELEMENTS // k + 3  # parallel at two threads
    call = make(name, (rows, k), dtype, seed=4, **extra)

    def result(c):
        r = c()
        return np.asarray(r[0] if isinstance(r, tuple) else r)

    one, two = at_one_and_two_threads(lambda: result(call))
    np.testing.assert_array_equal(one, two)
    # A chunk of rows (with its row ids where the op draws noise) is the
    # same chunk of the whole result.
    a, b = 5, rows // 2
    if OPS[name].result == "noise":
        part = make(name, (b - a, k), dtype, seed=4, **extra)
    else:
        part = make(name, (2, 3), dtype, seed=4, **extra)
        part.arrays = tuple(arr[a:b] for arr in call.arrays)
    if "row_ids" in OPS[name].options:
        part.options["row_ids"] = np.arange(a, b)
    np.testing.assert_array_equal(result(part), one[a:b])

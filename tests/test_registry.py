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

import numpy as np
import pytest
import scipy.special as sp
from helpers import GUMBEL_ROW_PATHS, SOFTMAX_ROW_PATHS, assert_close, at_one_and_two_threads

import gumbel_np as gnp
from gumbel_np._cases import VARIANTS, calls, make
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


def reference_noise(rows: int, k: int, dtype, rng, draw: int = 0) -> np.ndarray:
    """The ``(rows, k)`` Gumbel noise of ``rng`` (row ids 0..rows-1) in float64."""
    k0, k1 = philox_key(rng, "reference")
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
    return -np.log(-np.log(u))


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
    "categorical": _categorical,
}
"""The float64 reference of every operation, given the call and its arrays."""

NOT_DIFFERENTIABLE = {"gumbel", "categorical"}
"""Operations with no gradient (noise, indices)."""


def test_every_operation_is_covered():
    assert set(REFERENCES) == set(OPS), "an operation without a reference (or a stale one)"
    for name, op in OPS.items():
        if op.forward is None and name not in NOT_DIFFERENTIABLE:
            assert op.backward in OPS, f"{name} is differentiable but has no backward partner"
    assert set(VARIANTS) <= set(OPS)


def _near_tie(call, x, got, want):
    """Rows whose decision (argmax) is within rounding of another category."""
    if call.op not in ("categorical", "gumbel_softmax") or (call.op == "gumbel_softmax" and not call.options.get("hard")):
        return np.zeros(len(x), bool)
    draws = call.options.get("num_samples") or 1
    close = np.zeros(len(x), bool)
    for d in range(draws):
        z = x.astype(np.float64) + reference_noise(*x.shape, call.arrays[0].dtype, call.options["rng"], d)
        top = np.sort(z, -1)[:, -2:]
        close |= (top[:, 1] - top[:, 0]) < 1e-4 * np.maximum(1, np.abs(top[:, 1]))
    return close


@pytest.mark.parametrize("k", LENGTHS)
@pytest.mark.parametrize("label", LABELS)
def test_reference(backend, dtype, label, k):
    name = label.split()[0]
    extra = next(v for v in VARIANTS.get(name, ({},)) if make(name, (2, 3), **v).label == label)
    call = make(name, (23, k), dtype, backend.xp, seed=k, **extra)
    got = call()
    got = backend.to_numpy(got[0] if isinstance(got, tuple) else got)
    arrays = [backend.to_numpy(a) for a in call.arrays if not isinstance(a, tuple)]
    want = REFERENCES[name](call, *[a.astype(np.float64) for a in arrays])
    if got.dtype.kind == "i" or (name == "gumbel_softmax" and call.options.get("hard")):
        x = arrays[0]
        keep = ~_near_tie(call, x, got, want)
        assert keep.mean() > 0.9
        np.testing.assert_array_equal(got[keep], want[keep])
    elif name == "gumbel":
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
    (x,) = call.arrays
    forward = getattr(gnp, name)

    def f(a, **changed):
        return np.asarray(forward(a, **{**call.options, **changed}))

    rng = np.random.default_rng(12)
    y = f(x)
    v = rng.standard_normal(y.shape)
    d = rng.standard_normal(x.shape)
    saved = y if fwd.result == "rows" else x
    opts = {o: call.options[o] for o in bwd.options if o in call.options}
    vjp = getattr(gnp, bwd.name)(v, saved, **opts)
    h = 1e-6
    numeric = (np.sum(v * f(x + h * d)) - np.sum(v * f(x - h * d))) / (2 * h)
    assert abs(numeric - np.sum(vjp * d)) <= 1e-6 * max(1.0, abs(numeric))
    if "tau_grad" in bwd.options:
        tau = call.options["tau"]
        _, dtau = getattr(gnp, bwd.name)(v, y, **opts, tau_grad=True)
        numeric = (np.sum(v * f(x, tau=tau + h)) - np.sum(v * f(x, tau=tau - h))) / (2 * h)
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
        with pytest.raises(ValueError, match=f"{name}: the category axis"):
            fn(np.zeros((4, 0)), **call.options)


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

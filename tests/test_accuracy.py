"""Accuracy where the naive formulas lose it: results near zero (logsumexp and
log_softmax of a row dominated by one value, SciPy's gh18295) and sums over
long float32 rows (the blocked sums' stated bound, up to 2**28 elements)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import gumbel_np as gnp
from gumbel_np.kernels.softmax import SUM_BLOCK

ULPS = 4
"""Allowed error near zero, in units in the last place of the result."""

# Row lengths that take each CPU path: column order (k < 32), row blocks
# (32 <= k < 256), one row at a time (k >= 256), blocked sums (k > SUM_BLOCK).
LENGTHS = [2, 10, 40, 300, SUM_BLOCK + 977]

# The second value of the row [0, tail, ...]: SciPy's gh18295 cases (-40
# float64, -20 float32), and rests down to subnormal results.
TAILS = {
    np.float32: [-0.5, -5.0, -20.0, -60.0, -100.0],
    np.float64: [-0.5, -10.0, -40.0, -300.0, -740.0],
}


def _peaked_rows(dtype, tail, k, rows=3):
    """Rows ``[0, tail, pad...]``, the pad far below ``tail`` (random, down to
    ``-inf`` in the last row), and ``log(sum(exp(row)))`` of each in float64
    from exactly summed float64 exponentials."""
    rng = np.random.default_rng(18295)
    x = np.empty((rows, k), dtype)
    x[:, 0] = 0
    if k > 1:
        x[:, 1] = tail
    if k > 2:
        x[:, 2:] = tail - 30 - 50 * rng.random((rows, k - 2))
        x[-1, 2:] = -np.inf
    ref = np.array([math.log1p(math.fsum(math.exp(v) for v in row[1:].astype(np.float64))) for row in x])
    return x, ref


def _ulps(got, ref, dtype):
    """``|got - ref|`` in units of the spacing of ``ref`` in ``dtype``."""
    spacing = np.spacing(np.abs(ref).astype(dtype)).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / spacing


@pytest.mark.parametrize("k", LENGTHS)
def test_logsumexp_near_zero(backend, dtype, k):
    for tail in TAILS[dtype.type]:
        x, ref = _peaked_rows(dtype, tail, k)
        got = backend.to_numpy(gnp.logsumexp(backend.asarray(x), axis=-1))
        err = _ulps(got, ref, dtype)
        assert err.max() <= ULPS, f"tail {tail}: {got} against {ref} ({err.max():.1f} ulp)"
        single = backend.to_numpy(gnp.logsumexp(backend.asarray(x[0])))
        assert _ulps(np.asarray(single), ref[:1], dtype).max() <= ULPS


@pytest.mark.parametrize("k", LENGTHS)
def test_log_softmax_near_zero(backend, dtype, k):
    for tail in TAILS[dtype.type]:
        x, ref = _peaked_rows(dtype, tail, k)
        got = backend.to_numpy(gnp.log_softmax(backend.asarray(x), axis=-1))
        # The maximum's log-probability is -log1p(rest): near zero.
        err = _ulps(-got[:, 0], ref, dtype)
        assert err.max() <= ULPS, f"tail {tail}: {-got[:, 0]} against {ref} ({err.max():.1f} ulp)"
        if k > 1:
            want = x[:, 1].astype(np.float64) - ref
            assert _ulps(got[:, 1], want, dtype).max() <= ULPS


def test_scipy_gh18295_cases(backend):
    """The cases of SciPy's own test, verbatim."""
    got64 = float(backend.to_numpy(gnp.logsumexp(backend.asarray(np.array([0.0, -40.0])))))
    assert abs(got64 - 4.248354255291589e-18) <= 2 * np.spacing(4.248354255291589e-18)
    got32 = backend.to_numpy(gnp.logsumexp(backend.asarray(np.array([0.0, -20.0], np.float32))))
    want32 = np.float32(math.log1p(math.exp(-20.0)))
    assert abs(float(got32) - float(want32)) <= 2 * float(np.spacing(want32))


def test_ties_at_the_maximum_use_the_full_sum(backend, dtype):
    for k in LENGTHS[1:]:
        x = np.full((2, k), -np.inf, dtype)
        x[:, :2] = 0
        x[1, 2] = -40
        got = backend.to_numpy(gnp.logsumexp(backend.asarray(x), axis=-1))
        ref = np.array([math.log(2.0), math.log(2.0 + math.exp(-40.0))])
        assert _ulps(got, ref, dtype).max() <= ULPS


def _sum_bound(n, dtype):
    """The relative error bound of a row sum of ``n`` terms of one sign
    (``kernels/softmax.py``, ``SUM_BLOCK``)."""
    u = float(np.finfo(dtype).eps) / 2
    return min(n, SUM_BLOCK) * u + math.ceil(n / SUM_BLOCK) * 2.0**-53


def _reference_logsumexp(x):
    """``logsumexp`` of a 1-D float32 array in float64, in chunks."""
    m = float(x.max())
    s = math.fsum(
        float(np.exp(x[i : i + 2**22].astype(np.float64) - m).sum()) for i in range(0, x.size, 2**22)
    )
    return m + math.log(s)


def _check_long_row(n):
    x = np.random.default_rng(1).random(n, dtype=np.float32)
    ref = _reference_logsumexp(x)
    got = float(gnp.logsumexp(x))
    # d log(s) = ds / s: the sum's relative bound, plus the final log's ulps.
    bound = _sum_bound(n, np.float32) + ULPS * float(np.spacing(np.float32(ref)))
    assert abs(got - ref) <= bound, f"n = {n}: {got} against {ref}, bound {bound:.2e}"
    # softmax and gumbel_softmax normalise with the same sum: the float64 sum
    # of the float32 probabilities is 1 within the bound (plus their rounding).
    y = gnp.softmax(x)
    total = math.fsum(float(y[i : i + 2**22].astype(np.float64).sum()) for i in range(0, n, 2**22))
    assert abs(total - 1) <= _sum_bound(n, np.float32) + 2.0**-24, f"n = {n}: softmax sums to {total}"
    del y
    y = gnp.gumbel_softmax(x, noise=0.0)
    total = math.fsum(float(y[i : i + 2**22].astype(np.float64).sum()) for i in range(0, n, 2**22))
    assert abs(total - 1) <= _sum_bound(n, np.float32) + 2.0**-24, f"n = {n}: gumbel_softmax sums to {total}"


@pytest.mark.parametrize("n", [SUM_BLOCK + 1, 3 * SUM_BLOCK + 5, 2**20 + 3, 2**24])
def test_long_float32_rows(n):
    _check_long_row(n)


@pytest.mark.slow
def test_float32_row_of_2_28_elements():
    """The issue's case: a single float32 row of 2**28 uniforms, where a plain
    float32 accumulation is off by 3.9e-3 (NumPy's pairwise sum: 2e-7)."""
    _check_long_row(2**28)


def test_long_row_backward_sums():
    """The backward passes' row sums and dot products are blocked too."""
    n = 2**22
    rng = np.random.default_rng(7)
    g = rng.random(n, dtype=np.float32)
    x = rng.standard_normal(n, dtype=np.float32)
    y = gnp.log_softmax(x)
    got = gnp.log_softmax_backward(g, y)
    p = np.exp(y.astype(np.float64))
    want = g - p * math.fsum(g.astype(np.float64))
    scale = np.abs(g) + p * float(np.abs(g.astype(np.float64)).sum())
    assert np.all(np.abs(got - want) <= _sum_bound(n, np.float32) * scale + 4 * np.spacing(np.abs(want).astype(np.float32)))
    s = gnp.softmax(x)
    got = gnp.softmax_backward(g, s)
    s64 = s.astype(np.float64)
    d = math.fsum(g.astype(np.float64) * s64)
    want = s64 * (g - d)
    scale = s64 * (np.abs(g) + d)
    assert np.all(np.abs(got - want) <= 2 * _sum_bound(n, np.float32) * scale + 4 * np.spacing(np.abs(want).astype(np.float32)))

"""Error bounds of the vectorised exp and log over their whole domain."""

from __future__ import annotations

import numpy as np
import pytest

from gumbel_np.kernels import _vmath

MAX_ULP = 2.0  # the bound stated in kernels/_vmath.py


def _ulps(got, ref, dtype):
    """|got - ref| in units of the spacing of ``ref`` rounded to ``dtype``."""
    ref_t = ref.astype(dtype)
    spacing = np.spacing(np.abs(ref_t)).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / spacing


def _domain(dtype, n=2_000_000, seed=0):
    """Random bit patterns (every exponent, denormals included) plus specials."""
    rng = np.random.default_rng(seed)
    it = np.uint32 if dtype == np.float32 else np.uint64
    bits = rng.integers(0, np.iinfo(it).max, size=n, dtype=it, endpoint=True)
    x = bits.view(dtype)
    fi = np.finfo(dtype)
    special = np.array(
        [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, fi.tiny, fi.smallest_subnormal, fi.max, 1 - fi.epsneg, 1 + fi.eps],
        dtype,
    )
    return np.concatenate([x, special])


def _reference(f, x, dtype):
    with np.errstate(all="ignore"):
        if dtype == np.float32:
            return f(x.astype(np.float64))
        return f(x)  # glibc's float64 exp/log are correctly rounded to < 1 ulp


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_vlog_error_bound(dtype):
    x = _domain(dtype)
    out = np.empty_like(x)
    _vmath.vlog_array(x, out)
    ref = _reference(np.log, x, dtype)
    with np.errstate(all="ignore"):
        ref_t = ref.astype(dtype)
    # Specials: -inf at +-0, NaN below 0 and at NaN, inf at inf.
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref_t))
    np.testing.assert_array_equal(out[np.isinf(ref_t)], ref_t[np.isinf(ref_t)])
    fin = np.isfinite(ref_t)
    assert fin.sum() > len(x) // 3
    assert _ulps(out[fin], ref[fin], dtype).max() <= MAX_ULP


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_vexp_error_bound(dtype):
    rng = np.random.default_rng(1)
    lo, hi = (-110.0, 90.0) if dtype == np.float32 else (-750.0, 712.0)
    parts = [rng.uniform(lo, hi, 2_000_000), rng.uniform(-1, 1, 100_000)]
    x = np.concatenate([p.astype(dtype) for p in parts] + [_domain(dtype, 10_000)])
    out = np.empty_like(x)
    _vmath.vexp_array(x, out)
    ref = _reference(np.exp, x, dtype)
    with np.errstate(all="ignore"):
        ref_t = ref.astype(dtype)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref_t))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(ref_t))
    normal = np.isfinite(ref_t) & (np.abs(ref_t) >= np.finfo(dtype).tiny)
    assert _ulps(out[normal], ref[normal], dtype).max() <= MAX_ULP
    # Subnormal results: within 1 unit of the smallest subnormal (one rounding).
    sub = np.isfinite(ref_t) & (np.abs(ref_t) < np.finfo(dtype).tiny)
    assert sub.sum() > 100
    step = float(np.finfo(dtype).smallest_subnormal)
    assert np.abs(out[sub].astype(np.float64) - ref[sub]).max() <= step
    assert out[x == 0].tolist() == [1.0] * int((x == 0).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_vexp_term_error_bound(dtype):
    rng = np.random.default_rng(2)
    lo, cut, floor = (-110.0, -87.0, 2.0**-125) if dtype == np.float32 else (-750.0, -708.0, 2.0**-1021)
    special = np.array([0.0, -0.0, cut, np.nextafter(dtype(cut), dtype(0)), -np.inf, np.nan, lo], dtype)
    x = np.concatenate([rng.uniform(lo, 0, 2_000_000).astype(dtype), rng.uniform(-1, 0, 100_000).astype(dtype), special])
    out = np.empty_like(x)
    _vmath.vexp_term_array(x, out)
    ref = _reference(np.exp, x, dtype)
    kept = x > cut
    assert kept.sum() > len(x) // 2 and (~kept).sum() > 1000
    assert _ulps(out[kept], ref[kept], dtype).max() <= MAX_ULP
    # Clamped terms (at and below the cut, -inf, NaN) are all exp(cut), a
    # positive value below the stated floor, like their true values.
    clamped = out[~kept]
    assert (clamped == clamped[0]).all() and 0 < clamped[0] < floor
    assert _ulps(clamped[:1], _reference(np.exp, np.array([cut], dtype), dtype), dtype).max() <= MAX_ULP
    assert ref[~kept & ~np.isnan(x)].max() < floor
    assert out[x == 0].tolist() == [1.0] * int((x == 0).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_vexp_shifted_error_bound(dtype):
    rng = np.random.default_rng(4)
    lo, cut = (-110.0, -104.0) if dtype == np.float32 else (-750.0, -746.0)
    special = np.array([0.0, -0.0, cut, np.nextafter(dtype(cut), dtype(0)), -np.inf, np.nan, -1e30], dtype)
    x = np.concatenate([rng.uniform(lo, 0, 2_000_000).astype(dtype), rng.uniform(-1, 0, 100_000).astype(dtype), special])
    out = np.empty_like(x)
    _vmath.vexp_shifted_array(x, out)
    ref = _reference(np.exp, x, dtype)
    with np.errstate(all="ignore"):
        ref_t = ref.astype(dtype)
    normal = ref_t >= np.finfo(dtype).tiny
    assert normal.sum() > len(x) // 2
    assert _ulps(out[normal], ref[normal], dtype).max() <= MAX_ULP
    # Subnormal results: within 1 unit of the smallest subnormal (one rounding).
    sub = (ref_t < np.finfo(dtype).tiny) & (x > cut)
    assert sub.sum() > 1000
    step = float(np.finfo(dtype).smallest_subnormal)
    assert np.abs(out[sub].astype(np.float64) - ref[sub]).max() <= step
    # 0 at and below the cut (where the true value rounds to 0), for -inf and NaN.
    gone = ~(x > cut)
    assert (out[gone] == 0).all() and (ref_t[gone & ~np.isnan(x)] == 0).all()
    assert out[x == 0].tolist() == [1.0] * int((x == 0).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_vlog_pos_equals_vlog_on_positive_normals(dtype):
    from numba import njit

    @njit
    def pos(x, out):
        for i in range(x.size):
            out[i] = _vmath.vlog_pos(x[i])

    x = np.abs(_domain(dtype, 500_000, seed=3))
    x = x[np.isfinite(x) & (x >= np.finfo(dtype).tiny)]
    a, b = np.empty_like(x), np.empty_like(x)
    pos(x, a)
    _vmath.vlog_array(x, b)
    np.testing.assert_array_equal(a, b)

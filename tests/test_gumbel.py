"""gumbel(): distribution, stream contract (golden values, row ids, layout,
threads), range and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from helpers import ALPHA, Z
from numpy.exceptions import AxisError

import gumbel_np as gnp
from gumbel_np._random import philox_key


# STREAM_VERSION 1, rng=12345, shape (2, 5): locks the mapping
# (key, row id, category, draw, dtype) -> noise.
GOLDEN = {
    np.float32: ["0x1.a90e62p-1", "-0x1.a98870p+0", "0x1.16c22ap+2", "-0x1.bb806cp-3", "-0x1.62c3c8p-2",
                 "0x1.3e02a8p+0", "0x1.40bbf8p+1", "-0x1.0946a0p+0", "0x1.2e774cp-1", "0x1.be0c9ep+0"],
    np.float64: ["0x1.a90e5c6b594c8p-1", "0x1.16c239795726ap+2", "-0x1.62c3d409c4b4dp-2", "0x1.b99e2b76d2246p+0",
                 "-0x1.06e073f84fdffp-1", "0x1.3e02ac0f884ccp+0", "-0x1.09469cc95a04bp+0", "0x1.be0ca37e49f27p+0",
                 "0x1.d8f79e23f009bp-1", "-0x1.c3888f7e66b6dp-2"],
}


def test_stream_version():
    assert gnp.STREAM_VERSION == 1
    assert philox_key(12345, "f") == (2688385916, 3048105090)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
def test_golden_values(backend, dt):
    got = backend.to_numpy(gnp.gumbel((2, 5), rng=12345, dtype=dt, like=backend.asarray(np.zeros(1))))
    want = np.array([float.fromhex(h) for h in GOLDEN[dt]], dt).reshape(2, 5)
    np.testing.assert_array_max_ulp(got, want, maxulp=4)


@pytest.mark.slow
def test_ks_against_scipy_gumbel_r(backend, dtype):
    n = 400_000
    g = backend.to_numpy(gnp.gumbel((400, n // 400), rng=2024, dtype=dtype, like=backend.asarray(np.zeros(1))))
    assert st.kstest(g.ravel().astype(np.float64), st.gumbel_r.cdf).pvalue > ALPHA


@pytest.mark.slow
def test_mean_and_variance(backend, dtype):
    n = 1_000_000
    g = backend.to_numpy(gnp.gumbel(n, rng=99, dtype=dtype, like=backend.asarray(np.zeros(1)))).astype(np.float64)
    var = math.pi**2 / 6
    # Standard errors: sqrt(var / n) for the mean; for the variance
    # sqrt((mu4 - var**2) / n) with mu4 = (3 + 12/5) var**2 (excess kurtosis 12/5).
    assert abs(g.mean() - np.euler_gamma) < Z * math.sqrt(var / n)
    assert abs(g.var() - var) < Z * math.sqrt((5.4 - 1.0) * var**2 / n)


def test_representable_range():
    # The documented range is the noise at the extreme uniforms.
    from gumbel_np.kernels import gumbel as kg

    out32 = np.array([kg.gumbel_f32(np.uint32(w)) for w in (0, 0xFFFFFFFF)])
    out64 = np.array([kg.gumbel_f64(np.uint64(w)) for w in (0, 0xFFFFFFFFFFFFFFFF)])
    np.testing.assert_allclose(out32, [-math.log(24 * math.log(2)), -math.log(-math.log1p(-(2.0**-24)))], rtol=1e-6)
    np.testing.assert_allclose(out64, [-math.log(53 * math.log(2)), -math.log(-math.log1p(-(2.0**-53)))], rtol=1e-12)
    doc = gnp.gumbel.__doc__
    assert f"[{out32[0]:.4f}, {out32[1]:.4f}]" in doc
    assert f"[{out64[0]:.4f}, {out64[1]:.4f}]" in doc
    g = gnp.gumbel(2_000_000, rng=5)
    assert out32[0] <= g.min() and g.max() <= out32[1]


def test_row_ids_select_rows(backend, dtype):
    like = backend.asarray(np.zeros(1))
    full = backend.to_numpy(gnp.gumbel((50, 7), rng=3, dtype=dtype, like=like))
    part = backend.to_numpy(gnp.gumbel((10, 7), rng=3, dtype=dtype, row_ids=np.arange(20, 30), like=like))
    np.testing.assert_array_equal(part, full[20:30])
    perm = np.random.default_rng(0).permutation(50)
    shuffled = backend.to_numpy(gnp.gumbel((50, 7), rng=3, dtype=dtype, row_ids=perm, like=like))
    np.testing.assert_array_equal(shuffled, full[perm])


def test_axis_and_batch_shape(backend, dtype):
    like = backend.asarray(np.zeros(1))
    flat = backend.to_numpy(gnp.gumbel((12, 5), rng=4, dtype=dtype, like=like))
    moved = backend.to_numpy(gnp.gumbel((5, 3, 4), rng=4, dtype=dtype, axis=0, like=like))
    np.testing.assert_array_equal(np.moveaxis(moved, 0, -1).reshape(12, 5), flat)
    ids = backend.to_numpy(gnp.gumbel((3, 5, 4), rng=4, dtype=dtype, axis=1, row_ids=np.arange(12).reshape(3, 4), like=like))
    np.testing.assert_array_equal(np.moveaxis(ids, 1, -1).reshape(12, 5), flat)


def test_each_category_length_uses_its_own_prefix(dtype):
    # Element j of a row does not depend on the row length: K = 1..9 are
    # prefixes of K = 9 (covers every tail of the Philox block).
    long = gnp.gumbel((3, 9), rng=8, dtype=dtype)
    for k in range(1, 9):
        np.testing.assert_array_equal(gnp.gumbel((3, k), rng=8, dtype=dtype), long[:, :k])


def test_short_and_long_rows_share_the_stream(dtype):
    # Rows shorter than SHORT_ROW draw their Philox words across rows, longer
    # ones along the row; element j of a row must not notice.
    from gumbel_np.kernels.gumbel import SHORT_ROW

    long = gnp.gumbel((37, 2 * SHORT_ROW + 3), rng=12, dtype=dtype)
    for k in (1, 5, 10, SHORT_ROW - 1, SHORT_ROW, SHORT_ROW + 1):
        np.testing.assert_array_equal(gnp.gumbel((37, k), rng=12, dtype=dtype), long[:, :k])
    ids = np.arange(100, 137)
    np.testing.assert_array_equal(
        gnp.gumbel((37, 10), rng=12, dtype=dtype, row_ids=ids),
        gnp.gumbel((37, SHORT_ROW + 5), rng=12, dtype=dtype, row_ids=ids)[:, :10],
    )


def test_generator_and_seed_semantics():
    assert (gnp.gumbel(5, rng=1) == gnp.gumbel(5, rng=1)).all()
    assert not (gnp.gumbel(5, rng=1) == gnp.gumbel(5, rng=2)).all()
    g = np.random.default_rng(0)
    assert not (gnp.gumbel(5, rng=g) == gnp.gumbel(5, rng=g)).all()
    assert not (gnp.gumbel(5) == gnp.gumbel(5)).all()


def test_float16_is_rounded_float32_noise():
    g16 = gnp.gumbel((4, 6), rng=2, dtype=np.float16)
    assert g16.dtype == np.float16
    np.testing.assert_array_equal(g16, gnp.gumbel((4, 6), rng=2).astype(np.float16))


def test_zero_size_and_int_shape():
    assert gnp.gumbel((0, 3), rng=0).shape == (0, 3)
    assert gnp.gumbel((3, 0), rng=0).shape == (3, 0)
    assert gnp.gumbel(4, rng=0).shape == (4,)


def test_errors():
    with pytest.raises(TypeError, match=r"^gumbel: dtype must be float16, float32 or float64, not int32"):
        gnp.gumbel(3, dtype=np.int32)
    with pytest.raises(TypeError, match=r"^gumbel: dtype must be"):
        gnp.gumbel(3, dtype="not a dtype")
    with pytest.raises(ValueError, match=r"^gumbel: shape must not have negative entries, got \(2, -1\)"):
        gnp.gumbel((2, -1))
    with pytest.raises(TypeError, match=r"^gumbel: shape must be an int or a sequence of ints"):
        gnp.gumbel(2.5)
    with pytest.raises(AxisError, match=r"^gumbel: axis 2 is out of bounds"):
        gnp.gumbel((2, 3), axis=2)
    with pytest.raises(ValueError, match=r"^gumbel: row_ids must have the batch shape \(2,\), got shape \(3,\)"):
        gnp.gumbel((2, 3), row_ids=[0, 1, 2])
    with pytest.raises(TypeError, match=r"^gumbel: row_ids must be an integer array, got dtype float64"):
        gnp.gumbel((2, 3), row_ids=[0.0, 1.0])
    with pytest.raises(TypeError, match=r"^gumbel: like= must be None, a NumPy array or a CuPy array, not builtins.list"):
        gnp.gumbel((2, 3), like=[1.0])
    with pytest.raises(TypeError, match=r"^gumbel: rng must be"):
        gnp.gumbel(3, rng=1.0)

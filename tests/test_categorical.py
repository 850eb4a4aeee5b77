"""categorical(): goodness of fit, stream contract and errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from helpers import ALPHA, GUMBEL_ROW_PATHS
from numpy.exceptions import AxisError

import gumbel_np as gnp



def _chi_square_pvalue(draws, p):
    """Chi-square p-value of the draws against p, pooling cells expected < 5."""
    n = draws.size
    counts = np.bincount(draws.ravel(), minlength=len(p)).astype(np.float64)
    expected = n * p
    small = expected < 5
    obs = np.concatenate([counts[~small], [counts[small].sum()]]) if small.any() else counts
    exp = np.concatenate([expected[~small], [expected[small].sum()]]) if small.any() else expected
    keep = exp > 0
    return st.chisquare(obs[keep], exp[keep]).pvalue


def _cases():
    rng = np.random.default_rng(0)
    peaked10 = np.log(np.array([0.9] + [0.1 / 9] * 9))
    masked = rng.normal(size=10)
    masked[[1, 4, 7]] = -np.inf
    return {
        "k2": np.log([0.3, 0.7]),
        "k10-flat": np.zeros(10),
        "k10-peaked": peaked10,
        "k10-masked": masked,
        "k1000-flat": np.zeros(1000),
        "k1000-peaked": rng.normal(scale=3.0, size=1000),
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", list(_cases()))
def test_chi_square_goodness_of_fit(backend, dtype, case):
    logits = _cases()[case].astype(dtype)
    n = 200_000
    draws = backend.to_numpy(gnp.categorical(backend.asarray(logits), num_samples=n, rng=31))
    assert draws.shape == (n,) and draws.dtype == np.int64
    p = sp.softmax(logits.astype(np.float64))
    assert not np.isin(draws, np.flatnonzero(p == 0)).any()  # masked entries never drawn
    assert _chi_square_pvalue(draws, p) > ALPHA


@pytest.mark.slow
def test_many_rows_goodness_of_fit(backend, dtype):
    # Rows of one distribution, one draw each: the row ids give independent draws.
    p = np.array([0.05, 0.15, 0.3, 0.5])
    logits = np.tile(np.log(p), (100_000, 1)).astype(dtype)
    draws = backend.to_numpy(gnp.categorical(backend.asarray(logits), rng=8))
    assert _chi_square_pvalue(draws, p) > ALPHA


def test_equal_huge_logits_are_fifty_fifty(backend, dtype):
    n = 100_000
    draws = backend.to_numpy(gnp.categorical(backend.asarray(np.array([1e8, 1e8], dtype)), num_samples=n, rng=2))
    assert st.binomtest(int(draws.sum()), n, 0.5).pvalue > ALPHA


@pytest.mark.parametrize("k", GUMBEL_ROW_PATHS[1:])  # column order and row by row
@pytest.mark.parametrize("seed", [0, 123, 2**33])
def test_identity_with_argmax_of_noisy_logits(backend, dtype, seed, k):
    logits = np.random.default_rng(seed % 1000).normal(size=(26000 // k, k)).astype(dtype)
    got = backend.to_numpy(gnp.categorical(backend.asarray(logits), rng=seed))
    noisy = logits.astype(np.float64) + gnp.gumbel(logits.shape, rng=seed, dtype=dtype)
    want = noisy.argmax(-1)
    mismatch = np.flatnonzero(got != want)
    # Only near-ties may differ: the kernel adds the noise to logits shifted by
    # the row maximum, which rounds differently.
    top2 = np.sort(noisy[mismatch], axis=-1)[:, -2:]
    assert np.all(top2[:, 1] - top2[:, 0] <= 8 * np.finfo(dtype).eps * np.abs(top2[:, 1]).clip(1.0))
    assert mismatch.size <= 2


def test_num_samples_axis_and_row_ids(backend, dtype):
    logits = np.random.default_rng(1).normal(size=(4, 6, 3)).astype(dtype)
    full = backend.to_numpy(gnp.categorical(backend.asarray(logits), axis=1, num_samples=5, rng=4))
    assert full.shape == (4, 3, 5)
    moved = np.ascontiguousarray(np.moveaxis(logits, 1, -1))
    np.testing.assert_array_equal(backend.to_numpy(gnp.categorical(backend.asarray(moved), num_samples=5, rng=4)), full)
    ids = np.arange(12).reshape(4, 3)
    part = backend.to_numpy(gnp.categorical(backend.asarray(moved[1:3]), num_samples=5, rng=4, row_ids=backend.asarray(ids[1:3])))
    np.testing.assert_array_equal(part, full[1:3])
    # Draw d of num_samples equals a single draw only for d = 0.
    np.testing.assert_array_equal(backend.to_numpy(gnp.categorical(backend.asarray(moved), rng=4)), full[..., 0])


def test_float16_and_integer_logits():
    logits = np.log(np.array([[0.25, 0.75]]))
    a = gnp.categorical(logits.astype(np.float16), num_samples=10, rng=1)
    b = gnp.categorical(logits.astype(np.float32), num_samples=10, rng=1)
    assert a.dtype == np.int64 and a.shape == (1, 10)
    assert (a == b).mean() > 0.5
    assert gnp.categorical(np.array([[0, 5, 0]]), rng=0).tolist() in ([0], [1], [2])


def test_invalid_rows_are_named():
    x = np.zeros((2, 3, 4))
    x[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=r"^categorical: row \(1, 2\) of logits holds NaN"):
        gnp.categorical(x, rng=0)
    x = np.zeros((3, 4))
    x[2] = -np.inf
    with pytest.raises(ValueError, match=r"^categorical: row \(2,\) of logits is all -inf"):
        gnp.categorical(x, rng=0)
    x[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"^categorical: row \(2,\) of logits holds \+inf"):
        gnp.categorical(x, rng=0)


def test_errors():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"^categorical: the category axis -1 of logits with shape \(2, 0\) is empty"):
        gnp.categorical(np.zeros((2, 0)))
    with pytest.raises(AxisError, match=r"^categorical: axis 3 is out of bounds"):
        gnp.categorical(x, axis=3)
    with pytest.raises(ValueError, match=r"^categorical: num_samples must be >= 1, got 0"):
        gnp.categorical(x, num_samples=0)
    with pytest.raises(TypeError, match=r"^categorical: num_samples must be an int, not 2.5"):
        gnp.categorical(x, num_samples=2.5)
    with pytest.raises(TypeError, match=r"^categorical: num_samples must be an int, not True"):
        gnp.categorical(x, num_samples=True)
    with pytest.raises(TypeError, match=r"^categorical: rng must be"):
        gnp.categorical(x, rng=object())
    with pytest.raises(ValueError, match=r"^categorical: row_ids must have the batch shape \(2,\), got shape \(3,\)"):
        gnp.categorical(x, row_ids=[0, 1, 2])
    with pytest.raises(TypeError, match=r"^categorical: logits has unsupported dtype complex128"):
        gnp.categorical(x.astype(complex))

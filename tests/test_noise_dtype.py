"""``noise_dtype=np.float64``: the float64 noise stream for float32 (and
float16) logits in ``categorical`` and ``gumbel_softmax``.

The float32 stream's uniforms have 24 bits, so its Gumbel noise lies in
``[-2.8115, 16.6355]``: a category that trails the row's maximum by ``d``
needs ``G_j - G_max > d``, which the float32 stream gives less often than
the exact ``sigmoid(-d)`` once ``d`` nears ``16.6355 + 2.8115``.  The
float64 stream (53-bit uniforms, ``[-3.6038, 36.7368]``) samples such
events at their rate.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import gumbel_np as gnp


def test_float64_stream_is_the_float64_call():
    """The option is the float64 kernel on the logits converted to float64:
    the same samples, bit for bit, and the same soft sample rounded to the
    logits' dtype."""
    x = np.random.default_rng(0).normal(size=(40, 9)).astype(np.float32) * 3
    ids = np.arange(100, 140)
    got = gnp.categorical(x, rng=3, num_samples=5, row_ids=ids, noise_dtype=np.float64)
    want = gnp.categorical(x.astype(np.float64), rng=3, num_samples=5, row_ids=ids)
    np.testing.assert_array_equal(got, want)
    for hard in (False, True):
        y = gnp.gumbel_softmax(x, tau=0.5, hard=hard, rng=3, noise_dtype="float64")
        w = gnp.gumbel_softmax(x.astype(np.float64), tau=0.5, hard=hard, rng=3).astype(np.float32)
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y, w)
    h = x.astype(np.float16)
    y = gnp.gumbel_softmax(h, rng=1, noise_dtype=np.float64, axis=0)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, gnp.gumbel_softmax(h.astype(np.float64), rng=1, axis=0).astype(np.float16))
    # The logits' own noise dtype is the default.
    np.testing.assert_array_equal(gnp.categorical(x, rng=3, noise_dtype=np.float32), gnp.categorical(x, rng=3))
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(gnp.categorical(x64, rng=3, noise_dtype=np.float64), gnp.categorical(x64, rng=3))


@pytest.mark.parametrize("bad", [np.int32, "x", np.float16, object])
@pytest.mark.parametrize("name", ["categorical", "gumbel_softmax"])
def test_bad_noise_dtype(name, bad):
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match=f"^{name}: noise_dtype must be None or float64"):
        getattr(gnp, name)(x, rng=0, noise_dtype=bad)
    with pytest.raises(TypeError, match=f"^{name}: noise_dtype must be None or float64, not"):
        getattr(gnp, name)(x.astype(np.float64), rng=0, noise_dtype=np.float32)


def _float32_rate(d: float) -> float:
    """``P(G_1 - G_0 > d)`` for two independent noises of the float32
    stream, by enumeration of its 2**23 uniforms (``u = m 2**-24``, ``m``
    odd; the noise computed here in float64, which moves a boundary by an
    ulp at most)."""
    u = np.arange(1, 2**24, 2, dtype=np.float64) * 2.0**-24
    g = np.sort(-np.log(-np.log(u)))
    return float(np.searchsorted(g, g - d, side="left").mean() / g.size)


ALPHA = 1e-6


def test_rare_categories_at_their_rate_only_in_float64():
    """Rows of one category at logit 0 and three at -18: each of those is
    drawn with probability ``e**-18 / (1 + 3 e**-18) = 1.5e-8``; the float32
    stream draws one against the dominant category with probability 2.4e-9
    (enumerated), 6.4 times less.  Over 2**30 draws of the float32 stream and
    2**28 of the float64 one (keys fixed, fresh row ids per chunk), the
    float64 count of rare draws must be a Poisson count of the exact rate,
    the float32 count one of the enumerated rate, and the float32 count too
    small for the exact rate (expected 49, against 7.7): each test at
    significance 1e-6.  (A float32 logit gap above 16.6355 + 2.8115 = 19.447
    is never drawn at all; its probability, below 3.6e-9, is too small to
    show a rate here.)"""
    d, rare = 18.0, 3
    p = rare * np.exp(-d) / (1 + rare * np.exp(-d))
    p32 = rare * _float32_rate(d)
    rows, per_call = 2**16, 2**8
    x = np.ascontiguousarray(np.broadcast_to(np.array([0.0, -d, -d, -d], np.float32), (rows, 4)))

    def rare_draws(draws, noise_dtype):
        n = 0
        for c in range(draws // (rows * per_call)):
            s = gnp.categorical(
                x, rng=11, num_samples=per_call, row_ids=np.arange(c * rows, (c + 1) * rows), noise_dtype=noise_dtype
            )
            n += int(np.count_nonzero(s))
        return n

    def consistent(n, lam):
        return min(stats.poisson.cdf(n, lam), stats.poisson.sf(n - 1, lam)) > ALPHA / 2

    d32, d64 = 2**30, 2**28
    n32, n64 = rare_draws(d32, None), rare_draws(d64, np.float64)
    assert consistent(n64, d64 * p), (n64, d64 * p)
    assert consistent(n32, d32 * p32), (n32, d32 * p32)
    assert stats.poisson.cdf(n32, d32 * p) < ALPHA, (n32, d32 * p)

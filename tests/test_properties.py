"""Property tests over random shapes, axes and values (hypothesis)."""

from __future__ import annotations

import numpy as np
import scipy.special as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import gumbel_np as gnp

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def array_and_axis(draw):
    x = draw(arrays(np.float64, array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7), elements=finite))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, axis


@settings(max_examples=60, deadline=None)
@given(array_and_axis())
def test_softmax_family_matches_scipy(case):
    x, axis = case
    np.testing.assert_allclose(gnp.softmax(x, axis=axis), sp.softmax(x, axis=axis), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gnp.log_softmax(x, axis=axis), sp.log_softmax(x, axis=axis), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(gnp.logsumexp(x, axis=axis), sp.logsumexp(x, axis=axis), rtol=1e-12, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(array_and_axis(), st.integers(0, 2**63 - 1))
def test_sampler_identities(case, seed):
    x, axis = case
    g = gnp.gumbel(x.shape, rng=seed, dtype=np.float64, axis=axis)
    y = gnp.gumbel_softmax(x, rng=seed, axis=axis, tau=0.8)
    np.testing.assert_allclose(y, sp.softmax((x + g) / 0.8, axis=axis), rtol=1e-10, atol=1e-14)
    idx = gnp.categorical(x, rng=seed, axis=axis)
    z = np.moveaxis(x + g, axis, -1)
    picked = np.take_along_axis(z, idx[..., None], -1)[..., 0]
    # The drawn index attains the maximum of logits + noise (up to rounding of
    # the shift by the row maximum).
    assert np.all(picked >= z.max(-1) - 1e-9 * np.maximum(1.0, np.abs(z).max(-1)))

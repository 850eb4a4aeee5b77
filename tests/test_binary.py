"""The binary (two-class) family, tested as claims (DESIGN sections 3.1, 4, 5).

* Stream domains: the logistic noise is domain 1 of the counter (draw word
  ``draw + (1 << 28)``), the Gumbel noise domain 0, unchanged; golden values
  lock the logistic mapping, an independent NumPy Philox4x32-10 reproduces
  it, and the two kinds of noise under one key are independent (Pearson
  correlation and a chi-square test of a quantile-binned contingency table),
  with a control that shows the test rejects dependent noise.
* ``logistic``: KS against ``scipy.stats.logistic``; the documented range is
  the noise of the extreme uniforms and holds every draw.
* ``bernoulli``: bool of ``logits.shape`` (+ ``(num_samples,)``); the exact
  identity ``logits + logistic(...) > 0``, bit for bit, ties and huge logits
  included; infinite logits; NaN logits named by index; binomial tests of the
  frequencies over a grid of logits; row ids; the draw-index limit.
* ``gumbel_sigmoid``: the identity with ``expit((l + L) / tau)`` (scalar and
  per-element ``tau``); equality in law with the first coordinate of the
  two-class ``gumbel_softmax`` (two-sample KS); ``hard``, ties, ``return_soft``,
  ``noise=``; the backward by central differences in float64, temperature
  included, and exactly 0 (no NaN) where the sample saturates.
* ``hard_concrete`` and its L0 norm: exact zeros and ones, the gate as the
  stretched and clipped soft sample, the backward's zeros agreeing with the
  forward's clipping, central differences, the test-time gates, custom and
  bad ``limits``, and ``hard_concrete_l0`` against Monte Carlo frequencies.
* PyTorch's ``RelaxedBernoulli`` / ``LogitRelaxedBernoulli`` given the same
  uniforms, values and autograd gradients (``oracle`` marker).
* The bad-input vocabulary and the dtypes of DESIGN section 5.

Every statistical test runs at the significance :data:`ALPHA` (Bonferroni
over a grid where there is one), with fixed seeds.  (The registry-driven
references, ``out=`` and thread/chunk invariance of these functions run in
``test_registry.py`` and ``test_out.py``.)
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from helpers import ALPHA, GUMBEL_ROW_PATHS, Z, assert_close, oracle
from test_registry import reference_logistic, reference_noise, reference_uniforms

import gumbel_np as gnp
from gumbel_np.kernels import binary as kb

F32, F64 = np.float32, np.float64
LIMITS = (-0.1, 1.1)
"""The default stretch interval of ``hard_concrete``."""


def _noise_ulps(got, want, dtype) -> float:
    """The largest error in ulp at the scale ``max(|L|, 1)`` (near 0,
    ``log(u) - log(1 - u)`` cancels: its error is relative to 1, not to L)."""
    want = np.asarray(want, np.float64)
    scale = np.spacing(np.maximum(np.abs(want), 1).astype(dtype)).astype(np.float64)
    return float(np.max(np.abs(np.asarray(got, np.float64) - want) / scale))


# --------------------------------------------------------------------------
# 1. Stream domains

# STREAM_VERSION 1, rng=12345: locks (key, row id, element, draw, dtype) ->
# logistic noise (domain 1).  Computed once from this library and pasted;
# the float32 values are their bit patterns, the float64 ones float.hex().
GOLDEN_LOGISTIC = {
    # logistic((2, 5), rng=12345)
    (F32, "rows"): [0x3C35D580, 0xBFBC67C7, 0x3F106DDD, 0x3FAFA827, 0xBFE9EF1D,
                    0x3F8CA1C1, 0xBF80B5FA, 0xBFAAFB2A, 0x4082FF95, 0x3FA2EA56],
    (F64, "rows"): ["0x1.6ba98efdc7540p-7", "0x1.20dbbde557bd8p-1", "-0x1.d3de41ccf84e6p+0",
                    "0x1.ed6346d475cd9p-1", "-0x1.11aa4d164d25cp+0", "0x1.194387a784354p+0",
                    "-0x1.55f64eb52c515p+0", "0x1.45d4a7f0aacbdp+0", "-0x1.8e003713e837cp+0",
                    "-0x1.1a300974c8c6dp+1"],
    # logistic((5, 2), rng=12345, axis=0, row_ids=[7, 3])
    (F32, "axis0"): ["-0x1.57eccc0000000p+0", "0x1.9fb5a00000000p+1", "-0x1.51895c0000000p-1",
                     "-0x1.5cc9360000000p+1", "-0x1.aff57a0000000p+1", "-0x1.950a980000000p+2",
                     "0x1.7a4b880000000p-1", "-0x1.41921e0000000p+0", "-0x1.d96cb00000000p-3",
                     "-0x1.0ae3a80000000p+1"],
    (F64, "axis0"): ["-0x1.57ecc96e11676p+0", "0x1.9fb59a01189bap+1", "-0x1.aff57f2953549p+1",
                     "-0x1.950a3012a70f8p+2", "-0x1.d96c9822be3f4p-3", "-0x1.0ae3a5fb16f8fp+1",
                     "0x1.13ee57f194b14p-3", "0x1.2fc5470801f0ap+0", "0x1.d9f5cf02acdb2p+0",
                     "-0x1.cb82d04cdeff2p-1"],
}


def _golden(dt, which):
    vals = GOLDEN_LOGISTIC[(dt, which)]
    if isinstance(vals[0], int):
        return np.array(vals, np.uint32).view(np.float32)
    return np.array([float.fromhex(h) for h in vals], dt)


@pytest.mark.parametrize("which", ["rows", "axis0"])
@pytest.mark.parametrize("dt", [F32, F64], ids=["float32", "float64"])
def test_logistic_golden_values(backend, dt, which):
    like = backend.asarray(np.zeros(1))
    if which == "rows":
        got = gnp.logistic((2, 5), rng=12345, dtype=dt, like=like)
        shape = (2, 5)
    else:
        got = gnp.logistic((5, 2), rng=12345, dtype=dt, axis=0, row_ids=np.array([7, 3]), like=like)
        shape = (5, 2)
    got = backend.to_numpy(got)
    assert got.dtype == dt and got.shape == shape
    # Uniform bits are exact on every device; the noise is a few ulp at the
    # scale max(|L|, 1) (as test_registry.py compares it).
    assert _noise_ulps(got, _golden(dt, which).reshape(shape), dt) <= 4


def test_golden_values_are_the_domain_one_uniforms():
    """The literals above are ``log(u) - log1p(-u)`` of the independent
    Philox's domain-1 uniforms, with the row ids and axis they were drawn
    with: the golden values lock the documented mapping, not an accident."""
    for dt in (F32, F64):
        assert _noise_ulps(_golden(dt, "rows").reshape(2, 5), reference_logistic(2, 5, dt, 12345), dt) <= 4
        # axis=0: element j of row r is [j, r]; row ids 7 and 3 are rows 7
        # and 3 of the default stream.
        ref = reference_logistic(8, 5, dt, 12345)[[7, 3]].T
        assert _noise_ulps(_golden(dt, "axis0").reshape(5, 2), ref, dt) <= 4


@pytest.mark.parametrize("k", GUMBEL_ROW_PATHS[:4])
def test_logistic_is_domain_one_and_gumbel_domain_zero(dtype, k):
    """On the short-row (column order) and long-row paths: the logistic noise
    is the logit of the domain-1 uniforms, the Gumbel noise
    ``-log(-log(u))`` of the domain-0 uniforms (today's mapping), and the
    logistic noise is not the logit of the Gumbel noise's uniforms."""
    rows = 23
    lg = gnp.logistic((rows, k), rng=31, dtype=dtype)
    assert _noise_ulps(lg, reference_logistic(rows, k, dtype, 31), dtype) <= 4
    g = gnp.gumbel((rows, k), rng=31, dtype=dtype)
    assert _noise_ulps(g, reference_noise(rows, k, dtype, 31), dtype) <= 4
    # Not the Gumbel domain's uniforms: with them every element would match
    # (to 4 ulp); independent noise matches with probability below 1e-6.
    u0 = reference_uniforms(rows, k, dtype, 31, domain=0)
    logit0 = np.log(u0) - np.log1p(-u0)
    scale = np.spacing(np.maximum(np.abs(logit0), 1).astype(dtype)).astype(np.float64)
    assert (np.abs(lg - logit0) <= 4 * scale).mean() < 0.01


def test_draws_take_the_domain_one_counter():
    """``bernoulli``'s draw ``d`` adds the logistic noise of draw word ``d +
    (1 << 28)``: every draw against the reference (decisions within rounding
    of 0 excluded, at most a few)."""
    for dt in (F32, F64):
        x = np.random.default_rng(1).normal(0, 2, (17, 70)).astype(dt)
        b = gnp.bernoulli(x, rng=77, num_samples=4)
        for d in range(4):
            z = x.astype(np.float64) + reference_logistic(17, 70, dt, 77, draw=d)
            keep = np.abs(z) > 1e-4 * np.maximum(1, np.abs(x))
            assert keep.mean() > 0.99
            np.testing.assert_array_equal(b[..., d][keep], (z > 0)[keep])


def test_raw_uniforms_of_the_domains_differ():
    """Under one key the domain-0 and domain-1 uniforms of an element are
    equal only by chance: for independent uniforms on the 2**23 (float32)
    or 2**52 (float64) grid the count of equal elements among n is about
    Poisson(n / 2**23), below its 1 - ALPHA quantile (the same domain would
    give n)."""
    n = 100 * 100
    for dt, bits in ((F32, 23), (F64, 52)):
        u0 = reference_uniforms(100, 100, dt, 2024, domain=0)
        u1 = reference_uniforms(100, 100, dt, 2024, domain=1)
        assert (u0 == u1).sum() <= st.poisson.isf(ALPHA, n * 2.0**-bits)
        # and the library's own: the uniforms recovered from each kind of
        # noise (to 1e-5, well above their rounding) agree at a count below
        # the 1 - ALPHA quantile of Poisson(n P(|U - V| < 1e-5) = 2e-5 n).
        g = gnp.gumbel((100, 100), rng=2024, dtype=dt).astype(np.float64)
        lg = gnp.logistic((100, 100), rng=2024, dtype=dt).astype(np.float64)
        close = np.abs(np.exp(-np.exp(-g)) - sp.expit(lg)) < 1e-5
        assert close.sum() <= st.poisson.isf(ALPHA, n * 2e-5)


def _independence(u, v, bins=10):
    """The ``bins x bins`` quantile table of the pairs and the p-value of the
    chi-square test of its independence (``u``, ``v`` the pairs'
    probability-integral transforms, uniform under the null)."""
    table = np.zeros((bins, bins))
    iu = np.minimum((u * bins).astype(np.intp), bins - 1)
    iv = np.minimum((v * bins).astype(np.intp), bins - 1)
    np.add.at(table, (iu, iv), 1)
    return table, st.chi2_contingency(table).pvalue


def test_gumbel_and_logistic_noise_are_independent(dtype):
    """10**6 pairs (G, L) drawn under one key at the same (row, element):

    * Pearson: under independence (finite fourth moments) ``sqrt(n) r`` is
      asymptotically N(0, 1); reject at ``ALPHA`` = 1e-6 when ``|r| >
      Z / sqrt(n)`` (Z = 4.89, so 0.0049).
    * Chi-square test of independence of the 10 x 10 table of the pairs
      binned at the deciles of their laws (df = 81), p > ``ALPHA``.

    Control: the same test on G and the logit of G's own uniforms (what a
    missing domain would give) rejects, so the test has power."""
    n = 1_000_000
    g = gnp.gumbel((1000, 1000), rng=4242, dtype=dtype).astype(np.float64).ravel()
    lg = gnp.logistic((1000, 1000), rng=4242, dtype=dtype).astype(np.float64).ravel()
    r = np.corrcoef(g, lg)[0, 1]
    assert abs(r) < Z / math.sqrt(n), r
    ug, ul = np.exp(-np.exp(-g)), sp.expit(lg)
    _, p = _independence(ug, ul)
    assert p > ALPHA, p
    # The control: L' = logit(u_G) is a function of G.
    _, p_dep = _independence(ug, sp.expit(np.log(ug) - np.log1p(-ug)))
    assert p_dep < ALPHA
    assert abs(np.corrcoef(g, np.log(ug) - np.log1p(-ug))[0, 1]) > Z / math.sqrt(n)


# --------------------------------------------------------------------------
# 2. logistic


@pytest.mark.slow
def test_logistic_ks_against_scipy(dtype):
    """KS against ``scipy.stats.logistic`` on 400 000 draws, p > ALPHA."""
    x = gnp.logistic((400, 1000), rng=2025, dtype=dtype).astype(np.float64).ravel()
    assert st.kstest(x, st.logistic.cdf).pvalue > ALPHA


def test_logistic_representable_range():
    """The documented range is the noise of the extreme uniforms (``2**-24``
    and ``1 - 2**-24``, ``2**-53``), it is antisymmetric, and every draw lies
    inside; the tail probabilities in the docstring are those of the range."""
    out32 = np.array([kb.logistic_f32(np.uint32(w)) for w in (0, 0xFFFFFFFF)])
    out64 = np.array([kb.logistic_f64(np.uint64(w)) for w in (0, 0xFFFFFFFFFFFFFFFF)])
    lim32 = math.log(2.0**-24) - math.log1p(-(2.0**-24))
    lim64 = math.log(2.0**-53) - math.log1p(-(2.0**-53))
    np.testing.assert_allclose(out32, [lim32, -lim32], rtol=1e-6)
    np.testing.assert_allclose(out64, [lim64, -lim64], rtol=1e-13)
    assert out32[0] == -out32[1] and out64[0] == -out64[1]
    assert f"{-out32[1]:.4f}" == "-16.6355" and f"{out64[1]:.4f}" == "36.7368"
    doc = gnp.logistic.__doc__
    assert f"[{out32[0]:.4f}, {out32[1]:.4f}]" in doc
    assert f"[{out64[0]:.4f}, {out64[1]:.4f}]" in doc
    for lim in (out32[1], out64[1]):  # "6.0e-8", "1.1e-16"
        assert f"{sp.expit(-lim):.1e}".replace("e-0", "e-") in doc
    x32 = gnp.logistic(2_000_000, rng=6)
    assert out32[0] <= x32.min() and x32.max() <= out32[1]
    x64 = gnp.logistic(1_000_000, rng=6, dtype=F64)
    assert out64[0] <= x64.min() and x64.max() <= out64[1]


def test_logistic_float16_is_rounded_float32_noise():
    x = gnp.logistic((4, 6), rng=2, dtype=np.float16)
    assert x.dtype == np.float16
    np.testing.assert_array_equal(x, gnp.logistic((4, 6), rng=2).astype(np.float16))


# --------------------------------------------------------------------------
# 3. bernoulli


@pytest.mark.parametrize("shape", [(), (7,), (3, 4), (2, 3, 5)])
def test_bernoulli_shape_dtype_and_first_draw(shape):
    x = np.random.default_rng(3).normal(size=shape)
    one = gnp.bernoulli(x, rng=8)
    many = gnp.bernoulli(x, rng=8, num_samples=6)
    assert one.dtype == np.bool_ and many.dtype == np.bool_
    assert one.shape == shape and many.shape == shape + (6,)
    np.testing.assert_array_equal(many[..., 0], one)
    assert gnp.bernoulli(x.astype(F32), rng=8, num_samples=1).shape == shape + (1,)


def _identity_logits(dt, rows, k, noise):
    """Logits that probe the identity: ordinary ones, ones near 0 (signed
    zeros, tiny and subnormal ones), +-1e30, and exact ties ``-L`` (sum 0,
    False) and their neighbours one ulp either side (sum exactly +-1 ulp)."""
    rng = np.random.default_rng(5)
    x = rng.normal(0, 3, (rows, k)).astype(dt)
    dt = np.dtype(dt).type
    tiny = np.finfo(dt).tiny
    specials = np.array([0.0, -0.0, 1e-30, -1e-30, tiny, -tiny, tiny / 4, 1e-7, -1e-7, 1e30, -1e30], dt)
    flat = x.reshape(-1)
    n = flat.size
    flat[: specials.size] = specials
    sl = slice(n // 4, n // 4 + n // 8)
    flat[sl] = -noise.reshape(-1)[sl]
    sl = slice(n // 2, n // 2 + n // 8)
    flat[sl] = np.nextafter(-noise.reshape(-1)[sl], dt(np.inf))
    sl = slice(3 * n // 4, 3 * n // 4 + n // 8)
    flat[sl] = np.nextafter(-noise.reshape(-1)[sl], dt(-np.inf))
    return x


@pytest.mark.parametrize("ids", ["default", "permuted"])
@pytest.mark.parametrize("k", [5, GUMBEL_ROW_PATHS[3] + 7])
def test_bernoulli_is_logits_plus_logistic_bit_for_bit(backend, dtype, k, ids):
    """``bernoulli(l, rng=s, row_ids=r) == (l + logistic(l.shape, rng=s,
    dtype=l.dtype, row_ids=r) > 0)`` exactly, on both row paths."""
    rows = 40
    r = None if ids == "default" else np.random.default_rng(9).permutation(1000)[:rows]
    like = backend.asarray(np.zeros(1, dtype))
    noise = backend.to_numpy(gnp.logistic((rows, k), rng=321, dtype=dtype, row_ids=r, like=like))
    x = _identity_logits(dtype, rows, k, noise)
    got = backend.to_numpy(gnp.bernoulli(backend.asarray(x), rng=321, row_ids=r))
    want = x + noise > 0
    np.testing.assert_array_equal(got, want)
    # the ties did go to False and their upper neighbours to True
    n = x.size
    assert not got.reshape(-1)[n // 4 : n // 4 + n // 8].any()
    assert got.reshape(-1)[n // 2 : n // 2 + n // 8].all()
    assert not got.reshape(-1)[3 * n // 4 : 3 * n // 4 + n // 8].any()
    # +-1e30 decide by their sign
    assert got.reshape(-1)[9] and not got.reshape(-1)[10]


def test_bernoulli_identity_along_another_axis(dtype):
    x = np.random.default_rng(6).normal(0, 2, (9, 4, 3)).astype(dtype)
    noise = gnp.logistic(x.shape, rng=12, dtype=dtype, axis=0)
    np.testing.assert_array_equal(gnp.bernoulli(x, rng=12, axis=0), x + noise > 0)
    r = np.arange(12).reshape(4, 3) * 5 + 1
    noise = gnp.logistic(x.shape, rng=12, dtype=dtype, axis=0, row_ids=r)
    np.testing.assert_array_equal(gnp.bernoulli(x, rng=12, axis=0, row_ids=r), x + noise > 0)


def test_bernoulli_float16_uses_float32_noise():
    x = np.random.default_rng(7).normal(0, 2, (6, 9)).astype(np.float16)
    got = gnp.bernoulli(x, rng=4)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, x.astype(F32) + gnp.logistic(x.shape, rng=4) > 0)


def test_bernoulli_infinite_logits(dtype):
    x = np.array([np.inf, -np.inf, 0.0], dtype)
    b = gnp.bernoulli(x, rng=10, num_samples=2000)
    assert b[0].all() and not b[1].any() and 0 < b[2].mean() < 1


@pytest.mark.parametrize(
    "shape,where,axis",
    [((3, 4), (1, 2), -1), ((3, 4), (1, 2), 0), ((2, 3, 4), (1, 0, 2), -1), ((2, 3, 4), (1, 0, 2), 1),
     ((5,), (3,), -1), ((), (), -1)],
)
def test_bernoulli_nan_names_the_index(dtype, shape, where, axis):
    """The message names the NaN's index in the caller's array, whatever the
    axis that indexes the stream."""
    x = np.zeros(shape, dtype)
    x[where] = np.nan
    want = f"bernoulli: logits hold NaN at index {where}"
    with pytest.raises(ValueError, match="^" + want.replace("(", r"\(").replace(")", r"\)")):
        gnp.bernoulli(x, rng=0, axis=axis)


@pytest.mark.slow
def test_bernoulli_frequencies_float64():
    """For each logit of the grid -20, -19, ..., 20 the number of Trues in
    n = 500 000 draws is Binomial(n, sigmoid(l)) (float64 uniforms: P is
    sigmoid(l) within 2**-52): exact two-sided binomial test, p > ALPHA / 41
    (Bonferroni over the grid)."""
    grid = np.arange(-20.0, 21.0)
    n = 500_000
    b = gnp.bernoulli(np.repeat(grid[:, None], n, 1), rng=515)
    for l, k in zip(grid, b.sum(1)):
        assert st.binomtest(int(k), n, sp.expit(l)).pvalue > ALPHA / grid.size, (l, k)


@pytest.mark.slow
def test_bernoulli_frequencies_float32():
    """As for float64 over -16, ..., 16.  A float32 uniform is an odd multiple
    of ``2**-24``, so P is quantised to the ``2**-23`` grid (within ``2**-23``
    of sigmoid(l): a bias of 0.06 counts in 500 000 draws, far below the
    test's resolution), and the noise cannot pass 16.6355: a float32 logit
    beyond it is deterministic (tested below), so the far tails are tested
    in float64."""
    grid = np.arange(-16.0, 17.0, dtype=F32)
    n = 500_000
    b = gnp.bernoulli(np.repeat(grid[:, None], n, 1), rng=616)
    for l, k in zip(grid, b.sum(1)):
        assert st.binomtest(int(k), n, sp.expit(float(l))).pvalue > ALPHA / grid.size, (l, k)


def test_bernoulli_float32_beyond_the_noise_range_is_deterministic():
    lim = float(kb.logistic_f32(np.uint32(0xFFFFFFFF)))  # 16.6355
    x = np.array([np.nextafter(F32(lim), F32(np.inf)), 17, 20, 1e4], F32)
    b = gnp.bernoulli(np.concatenate([x, -x]), rng=717, num_samples=250_000)
    assert b[:4].all() and not b[4:].any()


def test_bernoulli_row_ids_select_rows(dtype):
    x = np.random.default_rng(8).normal(size=(60, 7)).astype(dtype)
    full = gnp.bernoulli(x, rng=3, num_samples=3)
    a, b = 17, 41
    np.testing.assert_array_equal(gnp.bernoulli(x[a:b], rng=3, num_samples=3, row_ids=np.arange(a, b)), full[a:b])
    perm = np.random.default_rng(0).permutation(60)
    np.testing.assert_array_equal(gnp.bernoulli(x[perm], rng=3, num_samples=3, row_ids=perm), full[perm])


def test_bernoulli_num_samples_limits():
    with pytest.raises(ValueError, match=r"^bernoulli: num_samples must be at most 2\*\*28"):
        gnp.bernoulli(np.zeros(2), rng=0, num_samples=2**28 + 1)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=r"^bernoulli: num_samples"):
            gnp.bernoulli(np.zeros(2), rng=0, num_samples=bad)


# --------------------------------------------------------------------------
# 4. gumbel_sigmoid and its backward

TAUS = {
    "scalar": lambda shape, rng: 0.6,
    "row of K": lambda shape, rng: rng.uniform(0.3, 2.0, (1, shape[1])),
    "column": lambda shape, rng: rng.uniform(0.3, 2.0, (shape[0], 1)),
    "full": lambda shape, rng: rng.uniform(0.3, 2.0, shape),
}


@pytest.mark.parametrize("tau_kind", list(TAUS))
def test_gumbel_sigmoid_is_expit_of_logits_plus_logistic(backend, dtype, tau_kind):
    rng = np.random.default_rng(13)
    shape = (30, GUMBEL_ROW_PATHS[3] + 3)
    x = rng.normal(0, 3, shape).astype(dtype)
    tau = TAUS[tau_kind](shape, rng)
    tau = tau if np.isscalar(tau) else tau.astype(dtype)
    r = rng.permutation(500)[: shape[0]]
    like = backend.asarray(np.zeros(1, dtype))
    for ids in (None, r):
        got = gnp.gumbel_sigmoid(backend.asarray(x), tau=tau if np.isscalar(tau) else backend.asarray(tau),
                                 rng=99, row_ids=ids)
        noise = backend.to_numpy(gnp.logistic(shape, rng=99, dtype=dtype, row_ids=ids, like=like))
        got = backend.to_numpy(got)
        assert got.dtype == dtype and got.shape == shape
        assert_close(got, sp.expit((x.astype(F64) + noise) / np.asarray(tau, F64)), dtype)


def test_gumbel_sigmoid_axis_and_noise_argument(dtype):
    x = np.random.default_rng(14).normal(0, 2, (6, 11)).astype(dtype)
    noise = gnp.logistic(x.shape, rng=5, dtype=dtype, axis=0)
    assert_close(gnp.gumbel_sigmoid(x, tau=0.8, rng=5, axis=0), sp.expit((x.astype(F64) + noise) / 0.8), dtype)
    # noise= the same noise gives the same sample, bit for bit
    np.testing.assert_array_equal(gnp.gumbel_sigmoid(x, tau=0.8, noise=noise), gnp.gumbel_sigmoid(x, tau=0.8, rng=5, axis=0))
    # noise=0: the noise-free relaxation
    assert_close(gnp.gumbel_sigmoid(x, tau=0.8, noise=0), sp.expit(x.astype(F64) / 0.8), dtype)


def test_gumbel_sigmoid_noise_errors():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"^gumbel_sigmoid: pass rng or noise, not both"):
        gnp.gumbel_sigmoid(x, rng=0, noise=np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"^gumbel_sigmoid: .*noise"):
        gnp.gumbel_sigmoid(x, noise=np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"^gumbel_sigmoid: .*noise"):
        gnp.gumbel_sigmoid(x, noise=0.5)


CASES_IN_LAW = [(0.7, 0.5), (-2.0, 1.5), (3.0, 0.2), (0.0, 1.0)]


@pytest.mark.slow
def test_gumbel_sigmoid_equals_two_class_gumbel_softmax_in_law():
    """Two-sample KS, 100 000 draws each under different keys, p > ALPHA / 4
    (Bonferroni over the four (logit, tau) cases).  Control: the same test
    against a temperature 10% off rejects (the test has power)."""
    n = 100_000
    for i, (l, t) in enumerate(CASES_IN_LAW):
        x = np.full(n, l)
        ours = gnp.gumbel_sigmoid(x, tau=t, rng=1000 + i)
        two = gnp.gumbel_softmax(np.stack([x, 0 * x], -1), tau=t, rng=2000 + i)[:, 0]
        assert st.ks_2samp(ours, two).pvalue > ALPHA / len(CASES_IN_LAW), (l, t)
    x = np.full(n, 0.7)
    off = gnp.gumbel_sigmoid(x, tau=0.55, rng=3000)
    two = gnp.gumbel_softmax(np.stack([x, 0 * x], -1), tau=0.5, rng=3001)[:, 0]
    assert st.ks_2samp(off, two).pvalue < ALPHA


def test_gumbel_sigmoid_hard_and_return_soft(dtype):
    x = np.random.default_rng(15).normal(0, 2, (20, 13)).astype(dtype)
    noise = gnp.logistic(x.shape, rng=21, dtype=dtype)
    x[0] = -noise[0]  # exact ties: s = 0, y_soft = 1/2
    y, soft = gnp.gumbel_sigmoid(x, tau=0.7, rng=21, hard=True, return_soft=True)
    assert y.dtype == dtype and soft.dtype == dtype
    assert set(np.unique(y)) <= {0.0, 1.0}
    np.testing.assert_array_equal(y, (soft > 0.5).astype(dtype))
    np.testing.assert_array_equal(soft, gnp.gumbel_sigmoid(x, tau=0.7, rng=21))
    assert (soft[0] == 0.5).all() and (y[0] == 0).all()
    np.testing.assert_array_equal(y, gnp.gumbel_sigmoid(x, tau=0.7, rng=21, hard=True))
    # the noise-free tie
    y0, s0 = gnp.gumbel_sigmoid(np.zeros(4, dtype), noise=0, hard=True, return_soft=True)
    assert (s0 == 0.5).all() and (y0 == 0).all()
    # return_soft without hard: y is the soft sample
    a, b = gnp.gumbel_sigmoid(x, tau=0.7, rng=21, return_soft=True)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, soft)


def test_gumbel_sigmoid_backward_formula():
    rng = np.random.default_rng(16)
    y = rng.uniform(0.01, 0.99, (7, 9))
    g = rng.normal(size=y.shape)
    tau = rng.uniform(0.3, 2, (1, 9))
    dx, dtau = gnp.gumbel_sigmoid_backward(g, y, tau=tau, tau_grad=True)
    np.testing.assert_allclose(dx, g * y * (1 - y) / tau, rtol=1e-13)
    s = np.log(y) - np.log1p(-y)
    np.testing.assert_allclose(dtau, -(g * y * (1 - y) * s / tau).sum(0, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(gnp.gumbel_sigmoid_backward(g, y, tau=tau), dx, rtol=0)


def _central(f, x, d, h=1e-6):
    return (f(x + h * d) - f(x - h * d)) / (2 * h)


@pytest.mark.parametrize("tau_kind", list(TAUS))
def test_gumbel_sigmoid_gradients_by_central_differences(tau_kind):
    """float64, one key (so the noise is fixed): d/dlogits and d/dtau of
    ``sum(v * y)`` in a random direction, ``h = 1e-6``, agreement within
    ``1e-6 max(1, |numeric|)`` (the truncation error is O(h**2))."""
    rng = np.random.default_rng(17)
    shape = (8, 12)
    x = rng.normal(0, 2, shape)
    tau = np.asarray(TAUS[tau_kind](shape, rng), F64)
    v = rng.normal(size=shape)

    def f(xx, tt):
        return float(np.sum(v * gnp.gumbel_sigmoid(xx, tau=tt, rng=44)))

    y = gnp.gumbel_sigmoid(x, tau=tau, rng=44)
    dx, dtau = gnp.gumbel_sigmoid_backward(v, y, tau=tau, tau_grad=True)
    assert dx.shape == shape and dtau.shape == tau.shape
    d = rng.normal(size=shape)
    num = _central(lambda a: f(a, tau), x, d)
    assert abs(num - np.sum(dx * d)) <= 1e-6 * max(1, abs(num))
    dt = rng.normal(size=tau.shape)
    num = _central(lambda t: f(x, t), tau, dt)
    assert abs(num - np.sum(dtau * dt)) <= 1e-6 * max(1, abs(num))


@pytest.mark.parametrize("case", ["huge logits", "tiny tau"])
def test_gumbel_sigmoid_saturated_gradients_are_zero(dtype, case):
    rng = np.random.default_rng(18)
    if case == "huge logits":
        x = np.where(rng.random((6, 10)) < 0.5, -1e4, 1e4).astype(dtype)
        tau = 1.0
    else:
        x = rng.normal(0, 2, (6, 10)).astype(dtype)
        tau = 1e-3
    y = gnp.gumbel_sigmoid(x, tau=tau, rng=5)
    sat = (y == 0) | (y == 1)
    assert (y == 0).any() and (y == 1).any()
    if case == "huge logits":
        assert sat.all()
    g = rng.normal(size=y.shape).astype(dtype)
    dx, dtau = gnp.gumbel_sigmoid_backward(g, y, tau=tau, tau_grad=True)
    assert np.isfinite(dx).all() and np.isfinite(dtau).all()
    assert (dx[sat] == 0).all()
    if sat.all():
        assert float(dtau) == 0.0
    # per-element tau: the saturated elements' temperature gradients are 0
    dx, dtau = gnp.gumbel_sigmoid_backward(g, y, tau=np.full(y.shape, tau, dtype), tau_grad=True)
    assert np.isfinite(dtau).all() and (dtau[sat] == 0).all()


def test_gumbel_sigmoid_float16_returns_float16():
    x = np.random.default_rng(19).normal(0, 2, (5, 8)).astype(np.float16)
    y, soft = gnp.gumbel_sigmoid(x, rng=2, hard=True, return_soft=True)
    assert y.dtype == np.float16 and soft.dtype == np.float16
    assert_close(soft, gnp.gumbel_sigmoid(x.astype(F32), rng=2), np.float16)


# --------------------------------------------------------------------------
# 5. hard_concrete and the expected L0 norm


@pytest.mark.parametrize("limits", [LIMITS, (-0.2, 1.05)])
def test_hard_concrete_gate_is_the_clipped_stretched_soft_sample(backend, dtype, limits):
    lo, hi = limits
    x = np.random.default_rng(20).normal(0, 2, (40, 30)).astype(dtype)
    gate, y = gnp.hard_concrete(backend.asarray(x), rng=6, limits=limits, return_soft=True)
    gate, y = backend.to_numpy(gate), backend.to_numpy(y)
    assert gate.dtype == dtype and y.dtype == dtype
    assert ((0 <= gate) & (gate <= 1)).all()
    assert (gate == 0).mean() > 0.05 and (gate == 1).mean() > 0.05  # exact zeros and ones
    np.testing.assert_array_equal(y, gnp.gumbel_sigmoid(x, tau=2 / 3, rng=6))
    stretched = y.astype(F64) * (hi - lo) + lo
    np.testing.assert_array_equal(gate[stretched < -1e-6], 0)
    np.testing.assert_array_equal(gate[stretched > 1 + 1e-6], 1)
    assert_close(gate, np.clip(stretched, 0, 1), dtype)
    np.testing.assert_array_equal(gate, gnp.hard_concrete(x, rng=6, limits=limits))


@pytest.mark.parametrize("limits", [LIMITS, (-0.2, 1.05)])
def test_hard_concrete_backward_is_zero_exactly_where_clipped(dtype, limits):
    lo, hi = limits
    rng = np.random.default_rng(21)
    x = rng.normal(0, 2, (40, 30)).astype(dtype)
    tau = 0.5
    gate, y = gnp.hard_concrete(x, tau=tau, rng=7, limits=limits, return_soft=True)
    g = (1 + rng.random(x.shape)).astype(dtype)  # nonzero everywhere
    dx = gnp.hard_concrete_backward(g, y, tau=tau, limits=limits)
    clipped = (gate == 0) | (gate == 1)
    np.testing.assert_array_equal(dx == 0, clipped)
    y64 = y.astype(F64)
    assert_close(dx[~clipped], (g * (hi - lo) * y64 * (1 - y64) / tau)[~clipped], dtype)


def _away_from_edges(x, noise, tau, limits, margin=1e-3):
    lo, hi = limits
    z = sp.expit((x + noise) / tau) * (hi - lo) + lo
    return (np.abs(z) > margin) & (np.abs(z - 1) > margin)


@pytest.mark.parametrize("limits", [LIMITS, (-0.2, 1.05)])
@pytest.mark.parametrize("tau_kind", ["scalar", "row of K", "full"])
def test_hard_concrete_gradients_by_central_differences(tau_kind, limits):
    """float64 through the whole ``hard_concrete`` with fixed noise
    (``noise=``), on elements whose stretched sample is at least 1e-3 from
    the clip edges (a step of 1e-6 cannot cross one); clipped elements are
    kept, their gradient is 0.  Agreement within ``1e-6 max(1, |numeric|)``."""
    rng = np.random.default_rng(22)
    shape = (10, 12)
    tau = np.asarray(TAUS[tau_kind](shape, rng), F64)
    x = rng.normal(0, 2, shape)
    noise = rng.logistic(size=shape)
    keep = _away_from_edges(x, noise, tau, limits)
    x = np.where(keep, x, 50.0)  # far inside the clipped-to-1 region
    v = rng.normal(size=shape)

    def f(xx, tt):
        return float(np.sum(v * gnp.hard_concrete(xx, tau=tt, limits=limits, noise=noise)))

    gate, y = gnp.hard_concrete(x, tau=tau, limits=limits, noise=noise, return_soft=True)
    assert ((gate > 0) & (gate < 1)).mean() > 0.3 and (gate == 0).any() and (gate == 1).any()
    dx, dtau = gnp.hard_concrete_backward(v, y, tau=tau, limits=limits, tau_grad=True)
    assert dtau.shape == tau.shape
    d = rng.normal(size=shape)
    num = _central(lambda a: f(a, tau), x, d)
    assert abs(num - np.sum(dx * d)) <= 1e-6 * max(1, abs(num))
    dt = rng.normal(size=tau.shape)
    num = _central(lambda t: f(x, t), tau, dt)
    assert abs(num - np.sum(dtau * dt)) <= 1e-6 * max(1, abs(num))


def test_hard_concrete_test_time_gates(dtype):
    x = np.random.default_rng(23).normal(0, 3, (9, 14)).astype(dtype)
    x64 = x.astype(F64)
    for tau, limits in ((2 / 3, LIMITS), (0.4, (-0.2, 1.05)), (1.0, LIMITS)):
        lo, hi = limits
        got = gnp.hard_concrete(x, tau=tau, limits=limits, noise=0)
        assert_close(got, np.clip(sp.expit(x64 / tau) * (hi - lo) + lo, 0, 1), dtype)
    # tau = 1, noise = 0 is the paper's gate
    assert_close(gnp.hard_concrete(x, tau=1, noise=0), np.clip(sp.expit(x64) * 1.2 - 0.1, 0, 1), dtype)
    mid = gnp.hard_concrete(np.array([-10.0, 0.0, 10.0], dtype), noise=0)
    assert mid[0] == 0 and mid[2] == 1
    assert_close(mid[1], 0.5, dtype)


def test_hard_concrete_noise_argument(dtype):
    x = np.random.default_rng(24).normal(0, 2, (5, 70)).astype(dtype)
    noise = gnp.logistic(x.shape, rng=8, dtype=dtype)
    np.testing.assert_array_equal(gnp.hard_concrete(x, noise=noise), gnp.hard_concrete(x, rng=8))
    with pytest.raises(ValueError, match=r"^hard_concrete: pass rng or noise, not both"):
        gnp.hard_concrete(x, rng=8, noise=noise)


BAD_LIMITS = [
    ((0.0, 1.1), ValueError), ((0.1, 1.1), ValueError), ((-0.1, 1.0), ValueError), ((-0.1, 0.9), ValueError),
    ((-np.inf, 1.1), ValueError), ((-0.1, np.inf), ValueError), ((np.nan, 1.1), ValueError),
    ((-0.1,), TypeError), ((-0.1, 1.1, 2.0), TypeError), ("ab", TypeError), (("a", 1.1), TypeError),
    (None, TypeError), ((True, 1.1), TypeError),
]
HC_FUNCS = {
    "hard_concrete": lambda limits: gnp.hard_concrete(np.zeros(3), rng=0, limits=limits),
    "hard_concrete_backward": lambda limits: gnp.hard_concrete_backward(np.ones(3), np.full(3, 0.5), limits=limits),
    "hard_concrete_l0": lambda limits: gnp.hard_concrete_l0(np.zeros(3), limits=limits),
    "hard_concrete_l0_backward": lambda limits: gnp.hard_concrete_l0_backward(np.ones(3), np.zeros(3), limits=limits),
}


@pytest.mark.parametrize("name", list(HC_FUNCS))
def test_bad_limits(name):
    for limits, err in BAD_LIMITS:
        with pytest.raises(err, match=f"^{name}: limits must be"):
            HC_FUNCS[name](limits)


def test_hard_concrete_l0_formula(dtype):
    x = np.random.default_rng(25).normal(0, 3, (6, 9)).astype(dtype)
    for tau, (lo, hi) in ((2 / 3, LIMITS), (0.3, (-0.2, 1.05)), (1.5, (-0.5, 1.5))):
        got = gnp.hard_concrete_l0(x, tau=tau, limits=(lo, hi))
        assert got.dtype == dtype
        assert_close(got, sp.expit(x.astype(F64) - tau * math.log(-lo / hi)), dtype)
    assert round(float(gnp.hard_concrete_l0(0.0)), 6) == 0.831822


L0_CONFIGS = [(2 / 3, LIMITS), (0.3, (-0.2, 1.05)), (1.5, (-0.5, 1.5))]


@pytest.mark.slow
def test_hard_concrete_l0_is_the_frequency_of_nonzero_gates():
    """For logits -6, ..., 6 and three (tau, limits): the number of nonzero
    gates in n = 200 000 draws is Binomial(n, hard_concrete_l0(l)); exact
    two-sided binomial test, p > ALPHA / 39 (Bonferroni over the 39 cases)."""
    grid = np.arange(-6.0, 7.0)
    n = 200_000
    m = grid.size * len(L0_CONFIGS)
    for i, (tau, limits) in enumerate(L0_CONFIGS):
        gates = gnp.hard_concrete(np.repeat(grid[:, None], n, 1), tau=tau, limits=limits, rng=800 + i)
        p = gnp.hard_concrete_l0(grid, tau=tau, limits=limits)
        for l, k, pl in zip(grid, (gates != 0).sum(1), p):
            assert st.binomtest(int(k), n, float(pl)).pvalue > ALPHA / m, (tau, limits, l, k, pl)


@pytest.mark.parametrize("tau_kind", ["scalar", "row of K", "full"])
def test_hard_concrete_l0_gradients_by_central_differences(tau_kind):
    rng = np.random.default_rng(26)
    shape = (7, 9)
    tau = np.asarray(TAUS[tau_kind](shape, rng), F64)
    x = rng.normal(0, 2, shape)
    v = rng.normal(size=shape)
    limits = (-0.2, 1.05)

    def f(xx, tt):
        return float(np.sum(v * gnp.hard_concrete_l0(xx, tau=tt, limits=limits)))

    dx, dtau = gnp.hard_concrete_l0_backward(v, x, tau=tau, limits=limits, tau_grad=True)
    assert dx.shape == shape and dtau.shape == tau.shape
    np.testing.assert_array_equal(gnp.hard_concrete_l0_backward(v, x, tau=tau, limits=limits), dx)
    d = rng.normal(size=shape)
    num = _central(lambda a: f(a, tau), x, d)
    assert abs(num - np.sum(dx * d)) <= 1e-6 * max(1, abs(num))
    dt = rng.normal(size=tau.shape)
    num = _central(lambda t: f(x, t), tau, dt)
    assert abs(num - np.sum(dtau * dt)) <= 1e-6 * max(1, abs(num))
    # far logits: p (1 - p) without cancellation (relative accuracy where
    # 1 - p rounds to 0), and exactly 0 only where it underflows
    far = np.array([100.0, -100.0, 40.0, -40.0, 800.0, -800.0])
    a = far - (2 / 3) * math.log(0.1 / 1.1)
    want = np.exp(sp.log_expit(a) + sp.log_expit(-a))
    got = gnp.hard_concrete_l0_backward(np.ones(6), far)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert (got[:4] > 0).all() and (got[4:] == 0).all()


def test_hard_concrete_float16_returns_float16():
    x = np.random.default_rng(27).normal(0, 2, (5, 8)).astype(np.float16)
    gate, y = gnp.hard_concrete(x, rng=2, return_soft=True)
    assert gate.dtype == np.float16 and y.dtype == np.float16
    assert_close(gate, gnp.hard_concrete(x.astype(F32), rng=2), np.float16)
    assert gnp.hard_concrete_l0(x).dtype == np.float16


# --------------------------------------------------------------------------
# 6. PyTorch: RelaxedBernoulli and LogitRelaxedBernoulli given the same noise


def _torch_with_uniforms(monkeypatch, torch, u):
    """Make ``torch.rand`` (which ``LogitRelaxedBernoulli.rsample`` calls for
    its uniforms) return ``u``, after checking that rsample turns them into
    logistic noise as this test assumes."""
    from torch.distributions import relaxed_bernoulli

    src = inspect.getsource(relaxed_bernoulli.LogitRelaxedBernoulli.rsample)
    assert "torch.rand(" in src and "uniforms.log() - (-uniforms).log1p()" in src, src
    assert "/ self.temperature" in src, src

    def rand(shape, dtype=None, device=None, **kw):
        assert tuple(shape) == u.shape
        return torch.from_numpy(u).to(dtype)

    monkeypatch.setattr(torch, "rand", rand)


@pytest.mark.oracle
@pytest.mark.parametrize("tau_kind", ["scalar", "full"])
def test_against_torch_relaxed_bernoulli(monkeypatch, tau_kind):
    torch = oracle("torch", "pip install torch==2.13.0")
    from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli, RelaxedBernoulli

    rng = np.random.default_rng(28)
    shape = (20, 16)
    x = rng.uniform(-4, 4, shape)
    tau = 0.7 if tau_kind == "scalar" else rng.uniform(0.5, 2.0, shape)
    u = sp.expit(gnp.logistic(shape, rng=29, dtype=F64))  # uniforms in (0, 1)
    noise = np.log(u) - np.log1p(-u)  # torch's formula, in NumPy
    v = rng.normal(size=shape)
    _torch_with_uniforms(monkeypatch, torch, u)

    y, soft = gnp.gumbel_sigmoid(x, tau=tau, noise=noise, return_soft=True)
    dx, dtau = gnp.gumbel_sigmoid_backward(v, soft, tau=tau, tau_grad=True)

    # LogitRelaxedBernoulli: our sample is the sigmoid of theirs.
    tt = torch.tensor(tau, dtype=torch.float64)
    z = LogitRelaxedBernoulli(tt, logits=torch.from_numpy(x)).rsample()
    assert_close(y, torch.sigmoid(z).numpy(), F64)

    # RelaxedBernoulli: values and autograd (logits and temperature).
    tl = torch.from_numpy(x).requires_grad_(True)
    tt = torch.tensor(tau, dtype=torch.float64).requires_grad_(True)
    ty = RelaxedBernoulli(tt, logits=tl).rsample()
    assert_close(y, ty.detach().numpy(), F64)
    (ty * torch.from_numpy(v)).sum().backward()
    assert_close(dx, tl.grad.numpy(), F64, rtol=1e-10, atol=1e-13)
    assert np.shape(dtau) == tuple(tt.grad.shape)
    assert_close(dtau, tt.grad.numpy(), F64, rtol=1e-10, atol=1e-13)


# --------------------------------------------------------------------------
# 7. Bad inputs (DESIGN section 5) and dtypes

SAMPLERS = {
    "bernoulli": lambda x, **kw: gnp.bernoulli(x, **kw),
    "gumbel_sigmoid": lambda x, **kw: gnp.gumbel_sigmoid(x, **kw),
    "hard_concrete": lambda x, **kw: gnp.hard_concrete(x, **kw),
}
TAU_FUNCS = {
    "gumbel_sigmoid": lambda tau: gnp.gumbel_sigmoid(np.zeros((2, 3)), tau=tau, rng=0),
    "gumbel_sigmoid_backward": lambda tau: gnp.gumbel_sigmoid_backward(np.ones((2, 3)), np.full((2, 3), 0.5), tau=tau),
    "hard_concrete": lambda tau: gnp.hard_concrete(np.zeros((2, 3)), tau=tau, rng=0),
    "hard_concrete_backward": lambda tau: gnp.hard_concrete_backward(np.ones((2, 3)), np.full((2, 3), 0.5), tau=tau),
    "hard_concrete_l0": lambda tau: gnp.hard_concrete_l0(np.zeros((2, 3)), tau=tau),
    "hard_concrete_l0_backward": lambda tau: gnp.hard_concrete_l0_backward(np.ones((2, 3)), np.zeros((2, 3)), tau=tau),
}


@pytest.mark.parametrize("name", list(TAU_FUNCS))
def test_bad_tau(name):
    for tau in (-0.0, 0.0, 0, -1.0, np.nan, np.inf, -np.inf, np.array([[1.0, np.nan, 1.0]]), 1e-320):
        with pytest.raises(ValueError, match=f"^{name}: tau must be finite and > 0"):
            TAU_FUNCS[name](tau)
    with pytest.raises(ValueError, match=f"^{name}: tau of shape \\(4,\\) does not broadcast"):
        TAU_FUNCS[name](np.ones(4))
    with pytest.raises(TypeError, match=f"^{name}: tau must be"):
        TAU_FUNCS[name]("x")
    with pytest.raises(TypeError, match=f"^{name}: tau must be"):
        TAU_FUNCS[name](1 + 1j)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampler_bad_inputs(name):
    fn = SAMPLERS[name]
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match=f"^{name}: logits has unsupported dtype complex128"):
        fn(x + 0j, rng=0)
    with pytest.raises(TypeError, match=f"^{name}: logits has unsupported dtype object"):
        fn(np.zeros((2, 3), object), rng=0)
    with pytest.raises(TypeError, match=f"^{name}: logits is a numpy.ma.MaskedArray"):
        fn(np.ma.masked_array(x), rng=0)
    with pytest.raises(ValueError, match=rf"^{name}: row_ids must have the batch shape \(2,\), got shape \(3,\)"):
        fn(x, rng=0, row_ids=[0, 1, 2])
    with pytest.raises(TypeError, match=f"^{name}: row_ids must be an integer array"):
        fn(x, rng=0, row_ids=[0.0, 1.0])
    with pytest.raises(TypeError, match=f"^{name}: rng must be"):
        fn(x, rng="x")
    with pytest.raises(TypeError, match=f"^{name}: rng must be"):
        fn(x, rng=1.5)
    with pytest.raises(np.exceptions.AxisError):
        fn(x, rng=0, axis=2)
    # read-only, non-contiguous, Fortran-ordered inputs work
    big = np.random.default_rng(30).normal(size=(6, 8))
    ro = big.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(fn(ro, rng=4), fn(big, rng=4))
    np.testing.assert_array_equal(fn(big[:, ::2], rng=4), fn(np.ascontiguousarray(big[:, ::2]), rng=4))
    np.testing.assert_array_equal(fn(np.asfortranarray(big), rng=4), fn(big, rng=4))


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0,), (2, 0, 3)])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_zero_size_logits(dtype, name, shape):
    """DESIGN section 5: zero-size inputs work (an empty result of the
    shape, and dtype, of the non-empty case)."""
    x = np.zeros(shape, dtype)
    got = SAMPLERS[name](x, rng=0)
    assert got.shape == shape
    assert got.dtype == (np.bool_ if name == "bernoulli" else dtype)
    if name == "bernoulli":
        assert gnp.bernoulli(x, rng=0, num_samples=2).shape == shape + (2,)


def test_logistic_bad_inputs():
    with pytest.raises(TypeError, match=r"^logistic: dtype must be float16, float32 or float64, not int32"):
        gnp.logistic(3, dtype=np.int32)
    with pytest.raises(ValueError, match=r"^logistic: shape must not have negative entries"):
        gnp.logistic((2, -1))
    with pytest.raises(ValueError, match=r"^logistic: row_ids must have the batch shape \(2,\), got shape \(3,\)"):
        gnp.logistic((2, 3), row_ids=[0, 1, 2])
    with pytest.raises(TypeError, match=r"^logistic: rng must be"):
        gnp.logistic(3, rng="x")
    with pytest.raises(np.exceptions.AxisError):
        gnp.logistic((2, 3), axis=2)


@pytest.mark.parametrize("name", ["gumbel_sigmoid", "hard_concrete", "hard_concrete_l0"])
def test_bool_and_int_logits_promote_to_float64(name):
    fn = getattr(gnp, name)
    kw = {} if name == "hard_concrete_l0" else {"rng": 3}
    for x in (np.array([[True, False, True]]), np.array([[1, -2, 3]], np.int32), [[1, -2, 3]]):
        got = fn(x, **kw)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, fn(np.asarray(x, np.float64), **kw))
    b = gnp.bernoulli(np.array([[1, -2, 3]], np.int8), rng=3)
    assert b.dtype == np.bool_
    np.testing.assert_array_equal(b, gnp.bernoulli(np.array([[1.0, -2.0, 3.0]]), rng=3))


@pytest.mark.parametrize("name", ["gumbel_sigmoid_backward", "hard_concrete_backward", "hard_concrete_l0_backward"])
def test_backward_bad_inputs(name):
    fn = getattr(gnp, name)
    second = "logits" if name == "hard_concrete_l0_backward" else "y_soft"
    y = np.full((2, 3), 0.5)
    with pytest.raises(TypeError, match=f"^{name}: grad has unsupported dtype complex128"):
        fn(np.ones((2, 3)) + 0j, y)
    with pytest.raises(TypeError, match=f"^{name}: {second} has unsupported dtype complex128"):
        fn(np.ones((2, 3)), y + 0j)
    with pytest.raises(TypeError, match=f"^{name}: grad is a numpy.ma.MaskedArray"):
        fn(np.ma.masked_array(np.ones((2, 3))), y)
    with pytest.raises(ValueError, match=rf"^{name}: shapes must match, got grad \(2, 3\), {second} \(2, 4\)"):
        fn(np.ones((2, 3)), np.full((2, 4), 0.5))
    assert fn(np.ones((2, 3), np.int64), y).dtype == np.float64
    g16 = fn(np.ones((2, 3), np.float16), y.astype(np.float16))
    assert g16.dtype == np.float16

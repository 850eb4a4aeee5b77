"""Conditional Gumbel samples, the Gumbel-Rao gradient and ReinMax: the
conditional law (against rejection sampling, and recovering the
unconditional law), the argmax guarantee, stability, the stream domain, and
each estimator's claims (Gumbel-Rao with one sample is straight-through
Gumbel-Softmax in law, its variance falls with the samples at the same mean;
ReinMax is the authors' formula).

(The registry tests run all three through the float64 reference, ``out=``,
bad input and thread/chunk invariance as well.)  Statistical tests use fixed
seeds and the significance :data:`~helpers.ALPHA` = 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from helpers import ALPHA, GUMBEL_ROW_PATHS, Z, oracle
from test_registry import reference_conditional, reference_uniforms

import gumbel_np as gnp
from gumbel_np._bench import torch_reinmax_backward
from gumbel_np.kernels.conditional import SHORT_CONDITIONAL

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)

# --------------------------------------------------------------------------
# 1. The stream: domain 2, golden values, independence from the Gumbel noise

GOLDEN_X = np.array([[0.0, 1.0, -1.0, 2.0, 0.5], [3.0, -np.inf, 0.0, 1.0, 2.0]])
GOLDEN_INDEX = [1, 4]
# STREAM_VERSION 1, rng=12345: conditional_gumbel(GOLDEN_X, GOLDEN_INDEX).
# Computed once from this library and pasted; float32 as bit patterns,
# float64 as float.hex().
GOLDEN = {
    F32: [0x3FA0B174, 0x4053C20D, 0x3FA33BE6, 0x3FF32BE9, 0x3FAA0427,
          0x40514BBA, 0xFF800000, 0x40093076, 0x3FE22771, 0x40649562],
    F64: ["0x1.5d9ef8d26984ep+0", "0x1.3f5bd6a351c14p+2", "-0x1.e9645a6850b00p-6", "0x1.4ec9c5540a8f4p+1",
          "0x1.740242fc75520p-1", "0x1.dad65fe6289c5p+0", "-inf", "-0x1.7b878bbaf81c0p-6",
          "0x1.a5ffa6d794c6cp-1", "0x1.eb8baecf1e393p+0"],
}


def _golden(dt):
    vals = GOLDEN[dt]
    if dt == F32:
        return np.array(vals, np.uint32).view(np.float32).reshape(2, 5)
    return np.array([float.fromhex(h) for h in vals]).reshape(2, 5)


def _ulps(got, want, dt):
    """Largest difference in ulp at the scale ``max(|want|, 1)`` (equal
    infinities count 0)."""
    same_inf = np.isinf(want) & (got == want)
    scale = np.spacing(np.maximum(np.abs(np.where(same_inf, 1, want)), 1).astype(dt)).astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf where the infinities agree
        diff = np.where(same_inf, 0.0, np.abs(got.astype(np.float64) - want))
    return float(np.max(diff / scale))


@pytest.mark.parametrize("dt", [F32, F64], ids=["float32", "float64"])
def test_golden_values(backend, dt):
    got = backend.to_numpy(gnp.conditional_gumbel(backend.asarray(GOLDEN_X.astype(dt)), GOLDEN_INDEX, rng=12345))
    assert got.dtype == dt
    assert _ulps(got, _golden(dt), dt) <= 4


def test_golden_values_are_the_formula_on_domain_two():
    """The literals are the paper's construction on Philox's domain-2
    uniforms: they lock the documented mapping, not an accident."""
    for dt in (F32, F64):
        want = reference_conditional(GOLDEN_X, np.array(GOLDEN_INDEX), dt, 12345)[..., 0]
        assert _ulps(_golden(dt), want, dt) <= 8


def test_independent_of_the_gumbel_noise_under_one_key():
    """With two equal logits and index 0, ``z_0 = log 2 - log E_0`` reads
    back the domain-2 exponential of element 0; its correlation with the
    Gumbel noise of the same key and element is 0 within Z / sqrt(n)."""
    n = 200_000
    z = gnp.conditional_gumbel(np.zeros((n, 2)), np.zeros(n, np.int64), rng=5)
    e = np.exp(np.log(2.0) - z[:, 0])
    g = gnp.gumbel((n, 2), rng=5, dtype=np.float64)[:, 0]
    r = np.corrcoef(e, g)[0, 1]
    assert abs(r) < Z / np.sqrt(n)
    # and it is the domain-2 uniform, not the domain-0 one
    u2 = reference_uniforms(n, 2, F64, 5, domain=2)[:, 0]
    np.testing.assert_allclose(e, -np.log(u2), rtol=1e-12)


# --------------------------------------------------------------------------
# 2. The conditional law


def _ks(a, b):
    return st.ks_2samp(a, b).pvalue


LAW = np.log(np.array([0.45, 0.3, 0.15, 0.1]))


@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 3])
def test_law_against_rejection_sampling(index):
    """Unconditional draws ``logits + G`` kept where their argmax is
    ``index`` against ``conditional_gumbel`` samples: a two-sample
    Kolmogorov-Smirnov test per coordinate at significance 1e-6."""
    n = 400_000
    x = np.broadcast_to(LAW, (n, 4))
    z = x + gnp.gumbel((n, 4), rng=1, dtype=np.float64)
    kept = z[z.argmax(1) == index][:60_000]
    m = len(kept)
    assert m > 30_000
    c = gnp.conditional_gumbel(LAW, index, num_samples=m, rng=2)  # (4, m)
    for j in range(4):
        assert _ks(kept[:, j], c[j]) > ALPHA, j


def test_rejection_test_has_power():
    """The control: a plausible wrong law, an unconditional draw with the
    winner swapped into ``index``, is rejected by the same test."""
    n, index = 400_000, 3
    z = LAW + gnp.gumbel((n, 4), rng=1, dtype=np.float64)
    kept = z[z.argmax(1) == index]
    m = len(kept)
    w = LAW + gnp.gumbel((m, 4), rng=3, dtype=np.float64)
    top = w.argmax(1)
    rows = np.arange(m)
    w[rows, top], w[rows, index] = w[rows, index], w[rows, top]
    assert min(_ks(kept[:, j], w[:, j]) for j in range(4)) < ALPHA


@pytest.mark.slow
def test_averaged_over_the_index_it_is_the_unconditional_law():
    """``index ~ categorical(logits)`` then ``conditional_gumbel``: each
    ``z_j - logits_j`` is a standard Gumbel (one-sample KS at 1e-6), and
    the maximum is a Gumbel of location ``logsumexp(logits)``."""
    n = 200_000
    x = np.ascontiguousarray(np.broadcast_to(LAW, (n, 4)))
    i = gnp.categorical(x, rng=4)
    z = gnp.conditional_gumbel(x, i, rng=5)
    for j in range(4):
        assert st.kstest(z[:, j] - LAW[j], st.gumbel_r.cdf).pvalue > ALPHA, j
    assert st.kstest(z.max(1) - sp.logsumexp(LAW), st.gumbel_r.cdf).pvalue > ALPHA


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("k", [GUMBEL_ROW_PATHS[0], SHORT_CONDITIONAL - 1, SHORT_CONDITIONAL, 64, 1000])
def test_argmax_is_the_index_always(dtype, k):
    """Over many rows and draws, random and peaked logits, equal logits
    (where rounding ties are likeliest) and logits spread beyond the fast
    path's range: the argmax (ties to the lowest index, as ``categorical``)
    is always the index conditioned on (float16 too: a value that the
    rounding to half ties with the winner is set just below it)."""
    rng = np.random.default_rng(k)
    rows = max(2000, 400_000 // k)
    x = (3 * rng.standard_normal((rows, k))).astype(dtype)
    x[: rows // 4] = 0  # equal logits
    x[rows // 4 : rows // 2] *= 40  # spread wider than FAST_SPREAD
    i = rng.integers(0, k, rows)
    z = gnp.conditional_gumbel(x, i, rng=6, num_samples=3)
    assert z.dtype == dtype
    assert (z.argmax(1) == i[:, None]).all()
    assert (gnp.conditional_gumbel(x, i, rng=6).argmax(1) == i).all()


# --------------------------------------------------------------------------
# 3. Stability: huge logits, masks, both paths against the float64 formula


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_and_masks(dtype):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((300, 12))
    x[:100] *= 1e4  # exp(logits) overflows: the authors' code gives inf and NaN here
    x[100:200] -= 1e4
    x[:, 5] = -np.inf
    x = x.astype(dtype)
    i = gnp.categorical(x, rng=9)
    z = gnp.conditional_gumbel(x, i, rng=10)
    assert (z.argmax(1) == i).all()
    assert np.isfinite(z[:, [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]]).all()
    assert (z[:, 5] == -np.inf).all()
    want = reference_conditional(x.astype(np.float64), i, dtype, 10)[..., 0]
    # An ulp of the largest value of the row: z_j = z_i - log1p(...) is
    # absolute to the winner's scale.
    scale = np.spacing(np.maximum(np.abs(want).max(1, where=np.isfinite(want), initial=1), 1).astype(dtype))
    with np.errstate(invalid="ignore"):  # -inf - -inf at the mask
        err = np.abs(np.where(np.isinf(want), 0, z.astype(np.float64) - want)) / scale[:, None].astype(np.float64)
    assert err.max() <= 16


def test_rows_without_a_distribution_and_bad_indices():
    x = np.array([[0.0, np.nan, 1.0], [0.0, np.inf, 1.0], [0.0, 1.0, 2.0]])
    z = gnp.conditional_gumbel(x, [0, 1, 2], rng=0)
    assert np.isnan(z[:2]).all() and np.isfinite(z[2]).all()
    for fn, args in (
        (gnp.conditional_gumbel, ()),
        (gnp.gumbel_rao_backward, (np.ones((3, 3)),)),
        (gnp.reinmax_backward, (np.ones((3, 3)),)),
    ):
        name = fn.__name__
        masked = np.array([[0.0, -np.inf, 1.0]] * 3)
        with pytest.raises(ValueError, match=rf"{name}: index 1 in row \(2,\) has probability 0"):
            fn(*args, masked, np.array([0, 2, 1]))
        with pytest.raises(ValueError, match=rf"{name}: index -1 in row \(1,\) is out of range for 3"):
            fn(*args, masked, np.array([0, -1, 1]))
        with pytest.raises(ValueError, match=rf"{name}: index of shape \(3, 1\) must have the batch shape"):
            fn(*args, masked, np.zeros((3, 1), np.int64))
        with pytest.raises(TypeError, match=rf"{name}: index must be an array of integer"):
            fn(*args, masked, np.zeros(3))
    with pytest.raises(TypeError, match="gumbel_rao_backward: num_samples must be an int >= 1"):
        gnp.gumbel_rao_backward(np.ones((2, 3)), np.zeros((2, 3)), [0, 1], num_samples=None)


def test_axis_and_batch_shape():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 7, 3))
    i = rng.integers(0, 7, (4, 3))
    z = gnp.conditional_gumbel(x, i, axis=1, rng=2, num_samples=5)
    assert z.shape == (4, 7, 3, 5)
    want = gnp.conditional_gumbel(np.moveaxis(x, 1, -1), i, rng=2, num_samples=5)
    np.testing.assert_array_equal(np.moveaxis(z, 1, -2), want)
    g = rng.standard_normal(x.shape)
    r = gnp.gumbel_rao_backward(g, x, i, axis=1, rng=2, num_samples=5)
    np.testing.assert_array_equal(
        np.moveaxis(r, 1, -1), gnp.gumbel_rao_backward(np.moveaxis(g, 1, -1), np.moveaxis(x, 1, -1), i, rng=2,
                                                      num_samples=5)
    )


# --------------------------------------------------------------------------
# 4. Gumbel-Rao


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gumbel_rao_is_the_mean_of_soft_vjps_at_the_conditional_samples(dtype):
    """The contract identity: the kernel regenerates the samples of
    ``conditional_gumbel`` with the same key, draws ``0 .. S - 1``."""
    rng = np.random.default_rng(1)
    x = (2 * rng.standard_normal((50, 130))).astype(dtype)
    x[:, 7] = -np.inf
    g = rng.standard_normal(x.shape).astype(dtype)
    i = gnp.categorical(x, rng=2)
    tau = np.linspace(0.3, 3, 50).astype(dtype)
    got = gnp.gumbel_rao_backward(g, x, i, tau=tau, num_samples=6, rng=3, row_ids=np.arange(50) + 9)
    z = gnp.conditional_gumbel(x, i, num_samples=6, rng=3, row_ids=np.arange(50) + 9).astype(np.float64)
    t = tau.astype(np.float64)[:, None, None]
    y = sp.softmax(z / t, axis=1)
    g64 = g.astype(np.float64)[..., None]
    want = (y * (g64 - (g64 * y).sum(1, keepdims=True)) / t).mean(-1)
    scale = np.abs(g).max() * (np.finfo(dtype).eps * 64)
    assert np.abs(got - want).max() <= scale
    assert (got[:, 7] == 0).all()


@pytest.mark.slow
def test_gumbel_rao_with_one_sample_is_straight_through_gumbel_softmax_in_law():
    """``num_samples=1`` against ST-Gumbel-Softmax's gradient (the soft VJP
    at an unconditional sample): two-sample KS per coordinate at 1e-6; the
    control, ``num_samples=10``, is rejected (its law is narrower)."""
    n, tau = 200_000, 0.5
    x = np.ascontiguousarray(np.broadcast_to(LAW, (n, 4)))
    g = np.ascontiguousarray(np.broadcast_to(np.array([1.0, -0.5, 2.0, 0.0]), (n, 4)))
    y = gnp.gumbel_softmax(x, tau=tau, rng=11)
    st_gs = gnp.gumbel_softmax_backward(g, y, tau=tau)
    i = gnp.categorical(x, rng=12)
    rao1 = gnp.gumbel_rao_backward(g, x, i, tau=tau, num_samples=1, rng=13)
    for j in range(4):
        assert _ks(st_gs[:, j], rao1[:, j]) > ALPHA, j
    rao10 = gnp.gumbel_rao_backward(g, x, i, tau=tau, num_samples=10, rng=13)
    assert min(_ks(st_gs[:, j], rao10[:, j]) for j in range(4)) < ALPHA


@pytest.mark.slow
def test_gumbel_rao_variance_falls_with_the_samples_at_the_same_mean():
    """Rao-Blackwellisation: variance(S = 10) < variance(S = 1) < ... by a
    one-sided F test at 1e-6, per coordinate; the means agree within Z
    standard errors (the same expectation)."""
    n, tau = 50_000, 0.5
    x = np.ascontiguousarray(np.broadcast_to(LAW, (n, 4)))
    g = np.ascontiguousarray(np.broadcast_to(np.array([1.0, -0.5, 2.0, 0.0]), (n, 4)))
    i = gnp.categorical(x, rng=14)
    est = {s: gnp.gumbel_rao_backward(g, x, i, tau=tau, num_samples=s, rng=15) for s in (1, 10, 100)}
    for lo, hi in ((1, 10), (10, 100)):
        f = est[lo].var(0, ddof=1) / est[hi].var(0, ddof=1)
        assert (st.f.sf(f, n - 1, n - 1) < ALPHA).all(), (lo, hi, f)
        se = np.sqrt(est[lo].var(0) / n + est[hi].var(0) / n)
        assert (np.abs(est[lo].mean(0) - est[hi].mean(0)) <= Z * se).all(), (lo, hi)


@pytest.mark.oracle
def test_gumbel_rao_matches_the_reference_autograd_at_our_samples():
    """The authors' reference (Paulus et al.'s PyTorch code: the conditional
    noise made under ``no_grad``, ``softmax((logits + noise) / tau).mean(0)``
    as the surrogate) differentiated by autograd at our conditional samples
    equals ``gumbel_rao_backward``: the samples are constants in both."""
    torch = oracle("torch", "pip install torch==2.13.0")
    rng = np.random.default_rng(4)
    x = 2 * rng.standard_normal((16, 9))
    g = rng.standard_normal(x.shape)
    i = gnp.categorical(x, rng=5)
    s, tau = 7, 0.6
    z = gnp.conditional_gumbel(x, i, num_samples=s, rng=6)  # (16, 9, 7)
    noise = torch.tensor(np.moveaxis(z, -1, 0) - x)  # (7, 16, 9), held constant
    logits = torch.tensor(x, requires_grad=True)
    surrogate = torch.softmax((logits + noise) / tau, dim=-1).mean(0)
    surrogate.backward(torch.tensor(g))
    got = gnp.gumbel_rao_backward(g, x, i, tau=tau, num_samples=s, rng=6)
    np.testing.assert_allclose(got, logits.grad.numpy(), rtol=1e-10, atol=1e-13)


# --------------------------------------------------------------------------
# 5. ReinMax


@pytest.mark.oracle
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_reinmax_matches_the_authors_reference(tau):
    torch = oracle("torch", "pip install torch==2.13.0")
    rng = np.random.default_rng(int(tau * 10))
    x = 3 * rng.standard_normal((200, 37))
    g = rng.standard_normal(x.shape)
    i = gnp.categorical(x, rng=1)
    # The port of the authors' ReinMaxCore.backward (github.com/microsoft/ReinMax),
    # with no gradient at the soft output: the benchmarks' peer.
    onehot = torch.nn.functional.one_hot(torch.tensor(i), 37).double()
    want = torch_reinmax_backward(torch, torch.tensor(x), onehot, torch.tensor(g), tau)().numpy()
    np.testing.assert_allclose(gnp.reinmax_backward(g, x, i, tau=tau), want, rtol=1e-10, atol=1e-13)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    np.testing.assert_allclose(gnp.reinmax_backward(g32, x32, i, tau=tau), want, rtol=1e-4, atol=1e-5)


def test_reinmax_masked_categories_and_per_row_tau():
    x = np.array([[0.0, -np.inf, 1.0, 2.0], [1.0, 0.5, -np.inf, 0.0]])
    g = np.array([[1.0, 2.0, -1.0, 0.5], [0.0, 1.0, 3.0, -2.0]])
    got = gnp.reinmax_backward(g, x, [3, 0], tau=[1.0, 2.0])
    assert got[0, 1] == 0 and got[1, 2] == 0
    both = np.vstack([gnp.reinmax_backward(g[r : r + 1], x[r : r + 1], [[3], [0]][r], tau=t) for r, t in ((0, 1.0), (1, 2.0))])
    np.testing.assert_allclose(got, both, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(got.sum(1), 0, atol=1e-15)


def test_reinmax_at_tau_one_is_second_order_straight_through():
    """At ``tau = 1``, ``pi = (p + D) / 2``; with ``p`` one-hot on the sample
    (a certain category) every gradient vanishes: nothing to correct."""
    x = np.array([[0.0, -np.inf, -np.inf]])
    got = gnp.reinmax_backward(np.array([[1.0, 2.0, 3.0]]), x, [0])
    np.testing.assert_array_equal(got, 0)

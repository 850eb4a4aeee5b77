"""What the estimators and the distribution functions claim, tested as claims.

* ``reinforce`` is unbiased without a baseline, with a number, with an array
  that does not depend on the samples and with the leave-one-out baseline: a
  confidence-interval test of every coordinate of the mean of many
  independent estimates against the gradient by enumeration, at a stated
  significance; a baseline that does depend on the sample it is subtracted
  from fails the same test (the test has power).
* ``"loo"`` has lower variance than no baseline on the same samples.
* ``categorical_log_prob`` is ``log_softmax`` at the indices, bit for bit,
  and keeps its relative precision for a dominant category.
* Entropy and KL: masked categories are exact zeros (no NaN, zero gradient),
  ``q_j > 0 = p_j`` is ``+inf``; the gradients by central differences in
  float64 on masked rows; PyTorch's values where PyTorch is finite.
* The bad-input vocabulary of DESIGN section 5 for ``index``, ``values`` and
  ``baseline``, and for ``anneal_tau``.

(The float64 references, the backward partners' central differences on
unmasked data, ``out=`` and thread/chunk invariance run for these functions
in ``test_registry.py`` and ``test_out.py``, from the registry.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sp
from scipy.stats import norm

from helpers import oracle

import gumbel_np as gnp

ALPHA = 1e-6
"""Significance of each statistical test (two-sided, per coordinate)."""

Z = float(norm.isf(ALPHA / 2))  # 4.89


def _exact_gradient(logits, f):
    """``d E[f(b)] / d logits`` by enumeration: ``sum_b f(b) p_b (onehot(b) - p)``."""
    p = sp.softmax(logits)
    return p * f - p * (p @ f)


# --------------------------------------------------------------------------
# reinforce: unbiased, and the leave-one-out baseline cuts the variance

LOGITS = np.array([1.0, -0.5, 0.3, 2.0, -1.5])
F = np.array([3.0, -1.0, 0.5, 1.5, 4.0]) + 5.0  # an offset, which a baseline removes
N = 200_000


def _estimates(s, baseline, seed, n=N):
    x = np.broadcast_to(LOGITS, (n, LOGITS.size))
    idx = gnp.categorical(x, num_samples=s, rng=seed)
    values = F[idx]
    if callable(baseline):
        baseline = baseline(values, np.random.default_rng(seed + 1))
    return gnp.reinforce(x, idx, values, baseline=baseline)


UNBIASED = {
    "none S=1": (1, None),
    "none S=4": (4, None),
    "number": (2, 6.0),
    "array": (2, lambda v, rng: rng.normal(6.0, 2.0, size=v.shape)),  # independent of the samples
    "row array": (3, lambda v, rng: rng.normal(6.0, 2.0, size=(v.shape[0], 1))),
    "loo S=2": (2, "loo"),
    "loo S=4": (4, "loo"),
}


@pytest.mark.parametrize("name", list(UNBIASED))
def test_reinforce_is_unbiased(name):
    s, baseline = UNBIASED[name]
    est = _estimates(s, baseline, seed=10 + len(name))
    mean, se = est.mean(0), est.std(0, ddof=1) / math.sqrt(len(est))
    exact = _exact_gradient(LOGITS, F)
    assert np.all(np.abs(mean - exact) <= Z * se), (mean - exact) / se


def test_a_sample_dependent_baseline_is_detected():
    # c_s = values_s / 2 halves the estimate: the same test must reject it.
    est = _estimates(2, lambda v, rng: v / 2, seed=3)
    mean, se = est.mean(0), est.std(0, ddof=1) / math.sqrt(len(est))
    assert np.any(np.abs(mean - _exact_gradient(LOGITS, F)) > Z * se)


def test_loo_has_lower_variance_than_no_baseline_on_the_same_samples():
    n, s = 50_000, 4
    x = np.broadcast_to(LOGITS, (n, LOGITS.size))
    idx = gnp.categorical(x, num_samples=s, rng=21)
    values = F[idx]
    plain = gnp.reinforce(x, idx, values)
    loo = gnp.reinforce(x, idx, values, baseline="loo")
    v_plain, v_loo = plain.var(0, ddof=1).sum(), loo.var(0, ddof=1).sum()
    # With the offset of 5 in F the plain estimator's variance is dominated
    # by it; the leave-one-out baseline removes it (measured ratio 0.048).
    assert v_loo < 0.2 * v_plain, (v_loo, v_plain)
    # And on the same samples both estimate the same gradient.
    assert np.all(np.abs(plain.mean(0) - loo.mean(0)) <= Z * math.sqrt(2) * plain.std(0) / math.sqrt(n))


def test_reinforce_is_the_log_prob_backward_of_its_weights(dtype):
    t = np.dtype(dtype).type
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 17)).astype(dtype)
    idx = gnp.categorical(x, num_samples=4, rng=1)
    v = rng.normal(size=idx.shape).astype(dtype)
    b = rng.normal(size=idx.shape).astype(dtype)
    got = gnp.reinforce(x, idx, v, baseline=b)
    want = gnp.categorical_log_prob_backward((v - b) / t(4), x, idx)
    np.testing.assert_array_equal(got, want)
    loo = gnp.reinforce(x, idx, v, baseline="loo")
    w = (v - v.sum(-1, keepdims=True) / t(4)) / t(3)
    np.testing.assert_allclose(loo, gnp.categorical_log_prob_backward(w, x, idx), rtol=1e-5, atol=1e-6)


def test_reinforce_shapes_axis_and_sample_axes():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 5, 3))  # categories on axis 1: batch (6, 3)
    idx = gnp.categorical(x, axis=1, num_samples=4, rng=3)
    assert idx.shape == (6, 3, 4)
    v = rng.normal(size=idx.shape)
    got = gnp.reinforce(x, idx, v, axis=1)
    assert got.shape == x.shape
    moved = gnp.reinforce(np.moveaxis(x, 1, -1), idx, v)
    np.testing.assert_allclose(got, np.moveaxis(moved, -1, 1), rtol=1e-14, atol=1e-15)
    # Two sample axes are one of their product; a single draw needs none.
    two = gnp.reinforce(x, idx.reshape(6, 3, 2, 2), v.reshape(6, 3, 2, 2), axis=1)
    np.testing.assert_array_equal(two, got)
    one = gnp.reinforce(x, idx[..., 0], v[..., 0], axis=1)
    np.testing.assert_array_equal(one, gnp.reinforce(x, idx[..., :1], v[..., :1], axis=1))


def test_reinforce_nan_values_poison_their_row_only():
    x = np.zeros((3, 4))
    idx = np.array([[0, 1], [2, 3], [1, 1]])
    v = np.array([[1.0, 2.0], [np.nan, 0.0], [1.0, 1.0]])
    for baseline in (None, "loo", 0.5):
        got = gnp.reinforce(x, idx, v, baseline=baseline)
        assert np.isnan(got[1]).all()
        assert np.isfinite(got[[0, 2]]).all()


def test_reinforce_masked_logits():
    x = np.array([[0.0, -np.inf, 1.0, -np.inf]])
    idx = gnp.categorical(x, num_samples=6, rng=0)
    got = gnp.reinforce(x, idx, np.arange(6.0)[None], baseline="loo")
    assert got[0, 1] == 0 and got[0, 3] == 0 and np.isfinite(got).all()


# --------------------------------------------------------------------------
# categorical_log_prob


@pytest.mark.parametrize("k", [3, 10, 40, 300, 3000])
def test_log_prob_is_log_softmax_at_the_index(backend, dtype, k):
    rng = np.random.default_rng(k)
    x = (3 * rng.standard_normal((9, k))).astype(dtype)
    x[1, ::2] = -np.inf
    x[2, 0] = np.nan
    x[3, :] = -np.inf
    x[4, 1] = np.inf
    idx = rng.integers(0, k, (9, 2, 3))
    got = backend.to_numpy(gnp.categorical_log_prob(backend.asarray(x), backend.asarray(idx)))
    want = backend.to_numpy(gnp.log_softmax(backend.asarray(x)))[np.arange(9)[:, None, None], idx]
    if backend.name == "numpy":
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_allclose(got, want, rtol=4 * np.finfo(dtype).eps, atol=0)
    assert np.isnan(got[2:5]).all()
    hit = idx[1] % 2 == 0
    assert np.all(got[1][hit] == -np.inf) and np.isfinite(got[1][~hit]).all()


def test_log_prob_keeps_the_precision_of_a_dominant_category():
    # log p(0) = -log1p(exp(-50)) = -1.93e-22: logits[0] - logsumexp rounds to 0.
    x = np.array([0.0, -50.0])
    got = gnp.categorical_log_prob(x, np.array([0, 1]))
    assert got[0] == pytest.approx(-math.exp(-50), rel=1e-14)
    assert got[1] == pytest.approx(-50 - math.exp(-50), rel=1e-15)
    m = x.max()
    assert float(x[0] - (m + np.log(np.exp(x - m).sum()))) == 0.0  # what the plain formula gives


def test_log_prob_takes_categorical_output_as_it_is():
    x = np.random.default_rng(0).normal(size=(4, 7, 5))
    idx = gnp.categorical(x, axis=1, num_samples=8, rng=2)
    lp = gnp.categorical_log_prob(x, idx, axis=1)
    assert lp.shape == (4, 5, 8)
    np.testing.assert_array_equal(lp[..., 3], gnp.categorical_log_prob(x, idx[..., 3], axis=1))


def test_log_prob_backward_by_central_differences_on_masked_rows():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(5, 8))
    x[:, 2] = -np.inf
    idx = rng.integers(3, 8, (5, 3))
    g = rng.normal(size=idx.shape)
    got = gnp.categorical_log_prob_backward(g, x, idx)
    assert np.all(got[:, 2] == 0)
    d = rng.normal(size=x.shape)
    d[:, 2] = 0
    h = 1e-6
    numeric = (np.sum(g * gnp.categorical_log_prob(x + h * d, idx)) - np.sum(g * gnp.categorical_log_prob(x - h * d, idx))) / (2 * h)
    assert abs(numeric - np.sum(got * d)) <= 1e-7 * max(1, abs(numeric))


# --------------------------------------------------------------------------
# Entropy and KL: masks are exact zeros


def _masked(seed, shape=(40, 12)):
    rng = np.random.default_rng(seed)
    x = 2 * rng.standard_normal(shape)
    x[rng.random(shape) < 0.3] = -np.inf
    x[:, 0] = rng.standard_normal(shape[0])  # every row keeps a category
    return x


def _entropy64(x):
    p = sp.softmax(x, axis=-1)
    with np.errstate(invalid="ignore"):
        return -np.where(p > 0, p * sp.log_softmax(x, axis=-1), 0).sum(-1)


def test_entropy_and_kl_with_masks(backend, dtype):
    q, p = _masked(1), _masked(2)
    p[q > -np.inf] = np.maximum(p[q > -np.inf], -30)  # p > 0 wherever q > 0: finite KL
    xq, xpp = backend.asarray(q.astype(dtype)), backend.asarray(p.astype(dtype))
    h = backend.to_numpy(gnp.categorical_entropy(xq))
    kl = backend.to_numpy(gnp.categorical_kl(xq, xpp))
    q64, p64 = q.astype(dtype).astype(np.float64), p.astype(dtype).astype(np.float64)
    pq = sp.softmax(q64, axis=-1)
    with np.errstate(invalid="ignore"):
        kl64 = np.where(pq > 0, pq * (sp.log_softmax(q64, axis=-1) - sp.log_softmax(p64, axis=-1)), 0).sum(-1)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(h, _entropy64(q64), rtol=tol, atol=tol)
    np.testing.assert_allclose(kl, kl64, rtol=tol, atol=tol)
    dh = backend.to_numpy(gnp.categorical_entropy_backward(backend.asarray(np.ones(40, dtype)), xq))
    dq, dp = (backend.to_numpy(a) for a in gnp.categorical_kl_backward(backend.asarray(np.ones(40, dtype)), xq, xpp))
    for grad in (dh, dq):
        assert np.isfinite(grad).all()
        assert np.all(grad[q == -np.inf] == 0)
    assert np.isfinite(dp).all() and np.all(dp[(q == -np.inf) & (p == -np.inf)] == 0)


def test_kl_infinite_where_q_has_mass_that_p_has_not():
    q = np.array([0.0, 0.0, -np.inf])
    p = np.array([0.0, -np.inf, -np.inf])
    assert gnp.categorical_kl(q, p) == np.inf
    assert gnp.categorical_kl(p, q) == pytest.approx(math.log(2))
    dq, dp = gnp.categorical_kl_backward(np.array(1.0), p, q)
    assert np.isfinite(dq).all() and np.isfinite(dp).all()


def test_rows_without_a_distribution_are_nan():
    x = np.array([[0.0, np.nan], [-np.inf, -np.inf], [np.inf, 0.0], [0.0, 1.0]])
    h = gnp.categorical_entropy(x)
    assert np.isnan(h[:3]).all() and np.isfinite(h[3])
    ok = np.zeros_like(x)
    for kl in (gnp.categorical_kl(x, ok), gnp.categorical_kl(ok, x)):
        assert np.isnan(kl[:3]).all() and np.isfinite(kl[3])
    assert np.isnan(gnp.categorical_entropy_backward(np.ones(4), x)[:3]).all()
    dq, dp = gnp.categorical_kl_backward(np.ones(4), x, ok)
    assert np.isnan(dq[:3]).all() and np.isnan(dp[:3]).all()


def test_entropy_and_kl_gradients_by_central_differences_on_masked_rows():
    q, p = _masked(3, (6, 9)), _masked(4, (6, 9))
    p = np.maximum(p, -20)  # finite KL
    rng = np.random.default_rng(6)
    g = rng.normal(size=6)
    h = 1e-6

    def check(f, x, vjp):
        d = rng.normal(size=x.shape)
        d[~np.isfinite(x)] = 0
        numeric = (np.sum(g * f(x + h * d)) - np.sum(g * f(x - h * d))) / (2 * h)
        assert abs(numeric - np.sum(vjp * d)) <= 1e-7 * max(1, abs(numeric))

    check(gnp.categorical_entropy, q, gnp.categorical_entropy_backward(g, q))
    dq, dp = gnp.categorical_kl_backward(g, q, p)
    check(lambda a: gnp.categorical_kl(a, p), q, dq)
    check(lambda a: gnp.categorical_kl(q, a), p, dp)


@pytest.mark.oracle
def test_against_torch_where_torch_is_finite():
    torch = oracle("torch", "pip install torch==2.13.0")
    from torch.distributions import Categorical, kl_divergence

    q, p = _masked(7), _masked(8)
    p[:20] = np.maximum(p[:20], -30)  # rows with a finite KL
    tq, tp = Categorical(logits=torch.from_numpy(q)), Categorical(logits=torch.from_numpy(p))
    for ours, theirs in (
        (gnp.categorical_entropy(q), tq.entropy().numpy()),
        (gnp.categorical_kl(q, p), kl_divergence(tq, tp).numpy()),
        (gnp.categorical_log_prob(q, np.zeros((40, 1), np.int64))[:, 0], tq.log_prob(torch.zeros(40)).numpy()),
    ):
        finite = np.isfinite(theirs)
        assert finite.sum() >= 20
        np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-10, atol=1e-12)
        # Where PyTorch is not finite, neither is the true value (+inf: q > 0 = p).
        np.testing.assert_array_equal(ours[~finite], theirs[~finite])
        assert not np.isnan(ours).any()
    # The gradients: PyTorch's autograd of kl_divergence is NaN on every row
    # with a masked category (torch 2.13: 0 * -inf inside); this library's is
    # finite there and equal to PyTorch's elsewhere.
    fin = np.isfinite(gnp.categorical_kl(q, p))
    g = np.random.default_rng(9).normal(size=40)
    for wrt in (0, 1):
        tl = [torch.from_numpy(q).requires_grad_(True), torch.from_numpy(p).requires_grad_(True)]
        kl = kl_divergence(Categorical(logits=tl[0]), Categorical(logits=tl[1]))
        (kl * torch.from_numpy(g)).sum().backward()
        theirs = tl[wrt].grad.numpy()
        ours = gnp.categorical_kl_backward(g, q, p)[wrt]
        assert np.isfinite(ours[fin]).all()
        clean = np.isfinite(theirs).all(axis=1) & fin
        np.testing.assert_allclose(ours[clean], theirs[clean], rtol=1e-9, atol=1e-12)
        if wrt == 0:
            assert np.isnan(theirs[fin]).any()  # what PyTorch gives: the rows this library fixes
    th = torch.from_numpy(q).requires_grad_(True)
    (Categorical(logits=th).entropy() * torch.from_numpy(g)).sum().backward()
    theirs, ours = th.grad.numpy(), gnp.categorical_entropy_backward(g, q)
    clean = np.isfinite(theirs).all(axis=1)
    assert np.isfinite(ours).all() and clean.sum() >= 10
    np.testing.assert_allclose(ours[clean], theirs[clean], rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------
# Bad input (DESIGN section 5)


def test_bad_index():
    x = np.zeros((3, 4))
    for bad in (np.zeros((3, 2)), np.ones((3, 2), bool), np.zeros((3, 2), complex)):
        with pytest.raises(TypeError, match=r"categorical_log_prob: index must be an array of integer"):
            gnp.categorical_log_prob(x, bad)
    with pytest.raises(TypeError, match=r"reinforce: index must be an array of integer category indices, got 1.5"):
        gnp.reinforce(np.zeros(4), 1.5, 1.0)
    with pytest.raises(ValueError, match=r"categorical_log_prob: index of shape \(4, 2\) must have the batch shape \(3,\)"):
        gnp.categorical_log_prob(x, np.zeros((4, 2), np.int64))
    with pytest.raises(ValueError, match=r"categorical_log_prob: index 4 in row \(2,\) is out of range for 4 categories"):
        gnp.categorical_log_prob(x, np.array([[0, 1], [3, 2], [1, 4]]))
    with pytest.raises(ValueError, match=r"reinforce: index -1 in row \(1, 0\) is out of range"):
        gnp.reinforce(np.zeros((2, 2, 4)), np.array([[[0], [1]], [[-1], [0]]]), np.zeros((2, 2, 1)))
    with pytest.raises(ValueError, match=r"categorical_log_prob_backward: index 7 in row \(0,\)"):
        gnp.categorical_log_prob_backward(np.ones((3, 1)), x, np.array([[7], [0], [0]], np.uint8))
    with pytest.raises(TypeError, match="categorical_log_prob: index is a numpy.ma.MaskedArray"):
        gnp.categorical_log_prob(x, np.ma.masked_array(np.zeros((3, 1), int)))


def test_bad_values_and_baseline():
    x = np.zeros((3, 4))
    idx = np.zeros((3, 2), np.int64)
    v = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"reinforce: values must have the shape \(3, 2\) of index, got shape \(3, 1\)"):
        gnp.reinforce(x, idx, np.ones((3, 1)))
    with pytest.raises(ValueError, match=r"categorical_log_prob_backward: grad must have the shape \(3, 2\) of index"):
        gnp.categorical_log_prob_backward(np.ones(3), x, idx)
    with pytest.raises(TypeError, match="reinforce: values"):
        gnp.reinforce(x, idx, v + 1j)
    with pytest.raises(ValueError, match=r"reinforce: baseline must be None, a number, an array broadcastable to values, or 'loo', got 'mean'"):
        gnp.reinforce(x, idx, v, baseline="mean")
    with pytest.raises(TypeError, match=r"reinforce: baseline must be None, a real number or array, or 'loo', got \(1\+0j\)"):
        gnp.reinforce(x, idx, v, baseline=1 + 0j)
    with pytest.raises(TypeError, match="reinforce: baseline must be .* got an array of dtype bool"):
        gnp.reinforce(x, idx, v, baseline=np.ones(2, bool))
    with pytest.raises(TypeError, match="reinforce: baseline must be None, a real number or array, or 'loo', got <object"):
        gnp.reinforce(x, idx, v, baseline=object())
    with pytest.raises(ValueError, match=r"reinforce: baseline of shape \(4,\) does not broadcast to the shape \(3, 2\) of values"):
        gnp.reinforce(x, idx, v, baseline=np.ones(4))
    with pytest.raises(ValueError, match=r"reinforce: baseline='loo' needs at least 2 samples per row .* got 1"):
        gnp.reinforce(x, idx[:, :1], v[:, :1], baseline="loo")
    with pytest.raises(ValueError, match=r"reinforce: baseline='loo' needs at least 2 samples per row .* got 1"):
        gnp.reinforce(x, idx[:, 0], v[:, 0], baseline="loo")
    with pytest.raises(ValueError, match=r"reinforce: index of shape \(3, 0\) holds no samples"):
        gnp.reinforce(x, idx[:, :0], v[:, :0])
    with pytest.raises(ValueError, match=r"categorical_kl: logits_p of shape \(3, 5\) does not broadcast to the shape \(3, 4\) of logits_q"):
        gnp.categorical_kl(x, np.zeros((3, 5)))


def test_empty_and_scalar_inputs():
    assert gnp.categorical_log_prob(np.zeros((0, 4)), np.zeros((0, 3), np.int64)).shape == (0, 3)
    assert gnp.categorical_log_prob(np.zeros((2, 4)), np.zeros((2, 0), np.int64)).shape == (2, 0)
    np.testing.assert_array_equal(
        gnp.categorical_log_prob_backward(np.zeros((2, 0)), np.zeros((2, 4)), np.zeros((2, 0), np.int64)), 0
    )
    assert gnp.categorical_entropy(np.zeros((0, 3))).shape == (0,)
    assert float(gnp.categorical_entropy(np.array(2.0))) == 0.0  # one category
    assert float(gnp.categorical_log_prob(np.array(2.0), 0)) == 0.0


# --------------------------------------------------------------------------
# anneal_tau


def test_anneal_tau_is_the_schedule():
    for step in (0, 1, 999, 1000, 1001, 12_345, 10**6, 10**30):
        want = max(0.5, math.exp(-3e-5 * 1000 * (step // 1000)))
        assert gnp.anneal_tau(step) == pytest.approx(want, rel=1e-15)
    assert gnp.anneal_tau(7, tau0=2.0, tau_min=0.1, rate=0.1, every=2) == pytest.approx(2 * math.exp(-0.6))
    assert gnp.anneal_tau(5, rate=0) == 1.0
    assert isinstance(gnp.anneal_tau(np.int32(5)), float)


@pytest.mark.parametrize("dt", [np.int8, np.uint16, np.int32, np.int64, np.uint64])
def test_anneal_tau_of_an_array_is_elementwise(dt):
    steps = np.array([[0, 100], [120, 127]], dt)
    got = gnp.anneal_tau(steps, rate=1e-2, every=10)
    assert got.shape == (2, 2) and got.dtype == np.float64
    want = [[gnp.anneal_tau(int(s), rate=1e-2, every=10) for s in row] for row in steps]
    np.testing.assert_array_equal(got, want)
    # Stateless: the same steps, in any order and any number of calls.
    np.testing.assert_array_equal(gnp.anneal_tau(steps[::-1], rate=1e-2, every=10), got[::-1])


def test_anneal_tau_bad_arguments():
    cases = [
        ((True,), {}, TypeError, "anneal_tau: step must be an integer or an integer array, not True"),
        ((1.0,), {}, TypeError, "anneal_tau: step must be an integer or an integer array, not 1.0"),
        ((np.array([1.5]),), {}, TypeError, "not an array of dtype float64"),
        (("3",), {}, TypeError, "anneal_tau: step must be an integer"),
        ((-1,), {}, ValueError, "anneal_tau: step must be >= 0, got -1"),
        ((np.array([3, -2]),), {}, ValueError, "anneal_tau: step must be >= 0, got -2 in step"),
        ((0,), {"tau0": 0.0}, ValueError, "anneal_tau: tau0 must be finite and > 0, got 0.0"),
        ((0,), {"tau0": np.nan}, ValueError, "anneal_tau: tau0 must be finite and > 0"),
        ((0,), {"tau_min": -0.5}, ValueError, "anneal_tau: tau_min must be finite and > 0, got -0.5"),
        ((0,), {"tau_min": 2.0}, ValueError, "anneal_tau: tau_min must be <= tau0"),
        ((0,), {"tau0": "1"}, TypeError, "anneal_tau: tau0 must be a real number, not '1'"),
        ((0,), {"rate": -1e-5}, ValueError, "anneal_tau: rate must be finite and >= 0, got -1e-05"),
        ((0,), {"rate": np.inf}, ValueError, "anneal_tau: rate must be finite and >= 0"),
        ((0,), {"rate": None}, TypeError, "anneal_tau: rate must be a real number, not None"),
        ((0,), {"every": 0}, ValueError, "anneal_tau: every must be >= 1, got 0"),
        ((0,), {"every": 2.5}, TypeError, "anneal_tau: every must be an integer, not 2.5"),
        ((0,), {"every": True}, TypeError, "anneal_tau: every must be an integer, not True"),
    ]
    for args, kw, exc, msg in cases:
        with pytest.raises(exc, match=msg.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
            gnp.anneal_tau(*args, **kw)

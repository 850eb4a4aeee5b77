"""gumbel_softmax and gumbel_softmax_backward."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special as sp
from helpers import GUMBEL_ROW_PATHS, Z, assert_close, at_one_and_two_threads, oracle
from numpy.exceptions import AxisError

import gumbel_np as gnp



def _logits(shape, dtype, seed=0):
    return np.random.default_rng(seed).normal(scale=2.0, size=shape).astype(dtype)


@pytest.mark.parametrize("seed", [0, 7, 2**40])
@pytest.mark.parametrize("axis", [-1, 0])
def test_identity_with_softmax_of_noisy_logits(backend, dtype, seed, axis):
    logits = _logits((6, 11), dtype) if seed != 7 else _logits((6, 300), dtype)  # both row paths
    ids = np.arange(100, 100 + logits.shape[1 - (axis % 2)])
    for tau in (0.3, 1.0, 4.0):
        y = backend.to_numpy(gnp.gumbel_softmax(backend.asarray(logits), tau=tau, rng=seed, axis=axis, row_ids=backend.asarray(ids)))
        g = gnp.gumbel(logits.shape, rng=seed, dtype=dtype, axis=axis, row_ids=ids)
        want = sp.softmax((logits.astype(np.float64) + g) / tau, axis=axis)
        assert y.dtype == dtype
        assert_close(y, want, dtype)


def test_chunked_row_ids_equal_whole_call(backend, dtype):
    logits = _logits((40, 9), dtype)
    whole = backend.to_numpy(gnp.gumbel_softmax(backend.asarray(logits), rng=5))
    parts = [
        backend.to_numpy(gnp.gumbel_softmax(backend.asarray(logits[a:b]), rng=5, row_ids=backend.asarray(np.arange(a, b))))
        for a, b in [(0, 13), (13, 14), (14, 40)]
    ]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_thread_count_invariance(dtype):
    logits = _logits((3000, 37), dtype)
    one, two = at_one_and_two_threads(
        lambda: gnp.gumbel_softmax(logits, tau=0.7, rng=9, hard=True, return_soft=True)
    )
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.parametrize("k", GUMBEL_ROW_PATHS)  # column order and row by row
def test_every_row_path_matches_the_reference(backend, dtype, k):
    """Drawn, given and no noise; scalar and per-row tau; soft, hard and
    return_soft; masked, all -inf and NaN rows; several blocks of rows."""
    rows = 2 * 2048 // k + 3
    logits = _logits((rows, k), dtype, seed=k)
    if k > 1:
        logits[1, : k // 2] = -np.inf
    logits[2] = -np.inf
    logits[3, -1] = np.nan
    tau = np.random.default_rng(k).uniform(0.2, 3.0, size=rows).astype(dtype)
    ids = np.arange(rows)[::-1] * 3 + 11
    given = np.random.default_rng(1).gumbel(size=logits.shape).astype(dtype)
    drawn = gnp.gumbel(logits.shape, rng=4, dtype=dtype, row_ids=ids)
    for noise, g in ((None, drawn), (given, given), (0, np.zeros_like(given))):
        for t in (0.6, tau):
            kw = {"rng": 4, "row_ids": backend.asarray(ids)} if noise is None else {"noise": backend.asarray(noise) if noise is given else 0}
            tb = backend.asarray(t) if isinstance(t, np.ndarray) else t
            xb = backend.asarray(logits)
            soft = backend.to_numpy(gnp.gumbel_softmax(xb, tau=tb, **kw))
            hard, soft2 = gnp.gumbel_softmax(xb, tau=tb, hard=True, return_soft=True, **kw)
            hard, soft2 = backend.to_numpy(hard), backend.to_numpy(soft2)
            with np.errstate(invalid="ignore"):
                want = sp.softmax((logits.astype(np.float64) + g) / np.asarray(t, np.float64)[..., None], axis=-1)
            assert_close(soft, want, dtype)
            np.testing.assert_array_equal(soft2, soft)
            nan_rows = np.isnan(soft).any(-1)
            np.testing.assert_array_equal(nan_rows, np.isnan(want).any(-1))
            assert np.isnan(hard[nan_rows]).all()
            first = soft[~nan_rows].argmax(-1)  # lowest index of the maximum
            np.testing.assert_array_equal(hard[~nan_rows], np.eye(k, dtype=dtype)[first])


@pytest.mark.parametrize("k", [7, 300], ids=["short-rows", "long-rows"])
def test_hard_is_exact_one_hot_of_soft_argmax(backend, dtype, k):
    logits = _logits((500, k), dtype, seed=3)
    hard, soft = gnp.gumbel_softmax(backend.asarray(logits), hard=True, rng=1, tau=0.5, return_soft=True)
    hard, soft = backend.to_numpy(hard), backend.to_numpy(soft)
    assert set(np.unique(hard).tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(hard.sum(-1), 1.0)
    np.testing.assert_array_equal(hard.argmax(-1), soft.argmax(-1))
    np.testing.assert_array_equal(soft, backend.to_numpy(gnp.gumbel_softmax(backend.asarray(logits), rng=1, tau=0.5)))
    # Ties go to the lowest index.
    tie = backend.to_numpy(gnp.gumbel_softmax(backend.asarray(np.zeros((1, 4), dtype)), noise=0, hard=True))
    assert tie.tolist() == [[1.0, 0.0, 0.0, 0.0]]


def test_noise_argument(backend, dtype):
    logits = _logits((5, 6), dtype)
    y0 = backend.to_numpy(gnp.gumbel_softmax(backend.asarray(logits), tau=2.0, noise=0))
    assert_close(y0, sp.softmax(logits.astype(np.float64) / 2.0, axis=-1), dtype)
    noise = np.random.default_rng(1).gumbel(size=logits.shape).astype(dtype)
    y = backend.to_numpy(gnp.gumbel_softmax(backend.asarray(logits), tau=0.5, noise=backend.asarray(noise)))
    assert_close(y, sp.softmax((logits.astype(np.float64) + noise) / 0.5, axis=-1), dtype)


def test_per_row_temperature(backend, dtype):
    logits = _logits((2, 3, 5), dtype)
    tau = np.array([[0.5], [2.0]])  # broadcasts over the batch shape (2, 3)
    y = backend.to_numpy(gnp.gumbel_softmax(backend.asarray(logits), tau=backend.asarray(tau), noise=0))
    want = sp.softmax(logits.astype(np.float64) / tau[..., None], axis=-1)
    assert_close(y, want, dtype)


def test_huge_logits_do_not_overflow(backend, dtype):
    logits = np.array([[1e30, 1e30 - 1e25, -1e30]], dtype) if dtype == np.float32 else np.array([[1e300, 1e300, -1e300]])
    y = backend.to_numpy(gnp.gumbel_softmax(backend.asarray(logits), tau=0.1, rng=0))
    assert np.isfinite(y).all() and np.isclose(y.sum(), 1.0)


def test_nan_and_masked_rows(backend, dtype):
    logits = np.array([[0.0, np.nan, 1.0], [-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 0.5]], dtype)
    for hard in (False, True):
        y = backend.to_numpy(gnp.gumbel_softmax(backend.asarray(logits), rng=0, hard=hard))
        assert np.isnan(y[0]).all() and np.isnan(y[1]).all()
        assert y[2, 1] == 0.0 and np.isclose(y[2].sum(), 1.0)


@pytest.mark.slow
def test_mean_of_soft_sample_approaches_probabilities():
    p = np.array([0.1, 0.2, 0.3, 0.4])
    n = 40_000
    logits = np.tile(np.log(p), (n, 1))
    errors = {}
    for tau in (1.0, 0.3, 0.05):
        errors[tau] = np.abs(gnp.gumbel_softmax(logits, tau=tau, rng=17).mean(0) - p).max()
    # Each y_j lies in [0, 1], so its sample mean has standard error <= 0.5/sqrt(n);
    # 0.005 allows for the remaining relaxation bias at tau = 0.05.
    assert errors[0.05] < Z * 0.5 / math.sqrt(n) + 0.005
    assert errors[1.0] > errors[0.3] > errors[0.05]


def _numeric_grads(logits, noise, tau, w, h=1e-6):
    def f(l, t):
        t = np.asarray(t)[..., None]  # one temperature per row
        return float(np.sum(w * sp.softmax((l + noise) / t, axis=-1)))

    gl = np.zeros_like(logits)
    for i in np.ndindex(logits.shape):
        lp, lm = logits.copy(), logits.copy()
        lp[i] += h
        lm[i] -= h
        gl[i] = (f(lp, tau) - f(lm, tau)) / (2 * h)
    tau = np.asarray(tau, np.float64)
    gt = np.zeros_like(tau)
    for i in np.ndindex(tau.shape):
        tp, tm = tau.copy(), tau.copy()
        tp[i] += h
        tm[i] -= h
        gt[i] = (f(logits, tp) - f(logits, tm)) / (2 * h)
    return gl, gt


@pytest.mark.parametrize("tau", [0.7, np.array([0.5, 1.5, 3.0])], ids=["scalar", "per-row"])
def test_backward_central_differences(backend, tau):
    rng = np.random.default_rng(21)
    logits = rng.normal(size=(3, 5))
    noise = rng.gumbel(size=logits.shape)
    w = rng.normal(size=logits.shape)
    t = tau if np.ndim(tau) == 0 else backend.asarray(tau)
    y = gnp.gumbel_softmax(backend.asarray(logits), tau=t, noise=backend.asarray(noise))
    dl, dtau = gnp.gumbel_softmax_backward(backend.asarray(w), y, tau=t, tau_grad=True)
    want_l, want_t = _numeric_grads(logits, noise, tau, w)
    np.testing.assert_allclose(backend.to_numpy(dl), want_l, rtol=1e-6, atol=1e-8)
    dtau = backend.to_numpy(dtau)
    assert dtau.shape == np.shape(tau)
    np.testing.assert_allclose(dtau, want_t, rtol=1e-6, atol=1e-8)


def test_backward_where_y_soft_underflows(backend, dtype):
    logits = np.array([[0.0, -50.0, -2000.0, 1.0]], dtype)
    y = gnp.gumbel_softmax(backend.asarray(logits), tau=0.01, noise=0)
    assert backend.to_numpy(y)[0, 2] == 0.0
    g = backend.asarray(np.array([[1.0, -2.0, 3.0, 0.5]], dtype))
    dl, dtau = gnp.gumbel_softmax_backward(g, y, tau=0.01, tau_grad=True)
    assert np.isfinite(backend.to_numpy(dl)).all() and np.isfinite(backend.to_numpy(dtau)).all()
    # float64 reference of -(1/tau) sum_j dl_j (logits_j + G_j), G = 0, over the entries that matter
    y64 = sp.softmax(logits.astype(np.float64) / 0.01, axis=-1)
    g64 = np.array([[1.0, -2.0, 3.0, 0.5]])
    dl64 = y64 * (g64 - (g64 * y64).sum(-1, keepdims=True)) / 0.01
    assert_close(backend.to_numpy(dl), dl64, dtype)
    assert_close(backend.to_numpy(dtau), -(dl64 * logits.astype(np.float64)).sum() / 0.01, dtype, atol=1e-3)


@pytest.mark.oracle
def test_against_torch_autograd():
    torch = oracle("torch", "pip install torch==2.13.0")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 10))
    w = rng.normal(size=logits.shape)
    tau = 0.6
    for hard in (False, True):
        lt = torch.tensor(logits, requires_grad=True)
        torch.manual_seed(1234)
        yt = F.gumbel_softmax(lt, tau=tau, hard=hard)
        (yt * torch.tensor(w)).sum().backward()
        # The same noise, drawn again the way F.gumbel_softmax draws it.
        torch.manual_seed(1234)
        noise = (-torch.empty_like(lt).exponential_().log()).detach().numpy()
        y, y_soft = gnp.gumbel_softmax(logits, tau=tau, hard=hard, noise=noise, return_soft=True)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(gnp.gumbel_softmax_backward(w, y_soft, tau=tau), lt.grad.numpy(), rtol=1e-10, atol=1e-12)
    # Temperature gradient against autograd through softmax((l + G) / tau).
    lt = torch.tensor(logits, requires_grad=True)
    tt = torch.tensor(tau, dtype=torch.float64, requires_grad=True)
    (torch.softmax((lt + torch.tensor(noise)) / tt, dim=-1) * torch.tensor(w)).sum().backward()
    y = gnp.gumbel_softmax(logits, tau=tau, noise=noise)
    dl, dtau = gnp.gumbel_softmax_backward(w, y, tau=tau, tau_grad=True)
    np.testing.assert_allclose(dl, lt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dtau, tt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", [0.0, -0.0, -1.0, np.nan, np.inf, [1.0, 0.0]])
def test_bad_tau(bad):
    with pytest.raises(ValueError, match=r"^gumbel_softmax: tau must be finite and > 0"):
        gnp.gumbel_softmax(np.zeros((2, 3)), tau=bad, rng=0)
    with pytest.raises(ValueError, match=r"^gumbel_softmax_backward: tau must be finite and > 0"):
        gnp.gumbel_softmax_backward(np.zeros((2, 3)), np.full((2, 3), 1 / 3), tau=bad)


def test_tau_with_overflowing_reciprocal():
    # The kernels scale by 1 / tau: a float32 tau of 1e-40 (subnormal) has an
    # infinite reciprocal and would turn a finite row into NaN, so it is an
    # error; in float64 the same tau is fine and gives the one-hot of the row.
    x32 = np.array([[0.0, -1.0, -1.0]], np.float32)
    with pytest.raises(ValueError, match=r"^gumbel_softmax: tau must be finite and > 0 with a finite 1 / tau \(in float32\), got 1e-40"):
        gnp.gumbel_softmax(x32, tau=1e-40, noise=np.zeros_like(x32))
    with pytest.raises(ValueError, match=r"^gumbel_softmax_backward: tau must be finite and > 0"):
        gnp.gumbel_softmax_backward(x32, np.full_like(x32, 1 / 3), tau=1e-40)
    y = gnp.gumbel_softmax(x32.astype(np.float64), tau=1e-40, noise=np.zeros((1, 3)))
    assert y.tolist() == [[1.0, 0.0, 0.0]]


def test_errors():
    x = np.zeros((2, 3))
    with pytest.raises(AxisError, match=r"^gumbel_softmax: axis 2 is out of bounds"):
        gnp.gumbel_softmax(x, axis=2)
    with pytest.raises(ValueError, match=r"^gumbel_softmax: the category axis -1 of logits with shape \(2, 0\) is empty"):
        gnp.gumbel_softmax(np.zeros((2, 0)))
    with pytest.raises(TypeError, match=r"^gumbel_softmax: rng must be"):
        gnp.gumbel_softmax(x, rng="seed")
    with pytest.raises(ValueError, match=r"^gumbel_softmax: row_ids must have the batch shape \(2,\), got shape \(2, 1\)"):
        gnp.gumbel_softmax(x, row_ids=[[0], [1]])
    with pytest.raises(ValueError, match=r"^gumbel_softmax: pass rng or noise, not both"):
        gnp.gumbel_softmax(x, rng=0, noise=0)
    with pytest.raises(ValueError, match=r"^gumbel_softmax: shapes must match, got logits \(2, 3\), noise \(3,\)"):
        gnp.gumbel_softmax(x, noise=np.zeros(3))
    with pytest.raises(ValueError, match=r"^gumbel_softmax: a scalar noise must be 0"):
        gnp.gumbel_softmax(x, noise=1.0)
    with pytest.raises(ValueError, match=r"^gumbel_softmax: tau of shape \(3,\) does not broadcast to the batch shape \(2,\)"):
        gnp.gumbel_softmax(x, tau=np.ones(3))
    with pytest.raises(TypeError, match=r"^gumbel_softmax: logits has unsupported dtype complex128"):
        gnp.gumbel_softmax(x.astype(complex))
    with pytest.raises(ValueError, match=r"^gumbel_softmax_backward: shapes must match"):
        gnp.gumbel_softmax_backward(x, np.zeros((3, 3)))

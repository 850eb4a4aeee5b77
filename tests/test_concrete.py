"""Log-space sampling and the Concrete densities: the ExpConcrete sample's
identities, the densities' normalisation and law, their stable evaluation
where PyTorch returns NaN, and PyTorch's values where it is finite.

(The registry tests run every function through its float64 reference, the
gradient check of its backward pass, ``out=`` and thread/chunk invariance.)"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate as si
import scipy.special as sp
import scipy.stats as st
from helpers import ALPHA, GUMBEL_ROW_PATHS, Z, oracle

import gumbel_np as gnp

# --------------------------------------------------------------------------
# log_gumbel_softmax


@pytest.mark.parametrize("k", GUMBEL_ROW_PATHS)
def test_log_sample_is_the_log_of_the_soft_sample(dtype, k):
    x = (2 * np.random.default_rng(k).standard_normal((30, k))).astype(dtype)
    if k > 1:
        x[3, 0] = -np.inf
    tau = np.linspace(0.3, 2.0, 30).astype(dtype)
    z = gnp.log_gumbel_softmax(x, tau=tau, rng=7)
    y = gnp.gumbel_softmax(x, tau=tau, rng=7)
    assert z.dtype == dtype and (k == 1 or z[3, 0] == -np.inf)
    eps = np.finfo(dtype).eps
    # Where y does not underflow: exp(z) is y to rounding (relative to y).
    big = y > 1e-30
    np.testing.assert_allclose(np.exp(z[big].astype(np.float64)), y[big], rtol=64 * eps)
    np.testing.assert_allclose(sp.logsumexp(z.astype(np.float64), axis=-1), 0, atol=8 * k * eps)


def test_log_sample_is_finite_where_the_soft_sample_underflows(dtype):
    x = (3 * np.random.default_rng(1).standard_normal((50, 40))).astype(dtype)
    x[:, 5] = -np.inf
    z = gnp.log_gumbel_softmax(x, tau=1e-3, rng=3)
    y = gnp.gumbel_softmax(x, tau=1e-3, rng=3)
    live = np.isfinite(x)
    assert (y[live] == 0).mean() > 0.9  # the soft sample is mostly exact zeros
    assert np.isfinite(z[live]).all() and (z[~live] == -np.inf).all()
    # Its density is finite too (the relaxed ELBO at tau = 1e-3).
    assert np.isfinite(gnp.exp_concrete_log_prob(z, x, tau=1e-3)).all()
    # The argmax is the Gumbel-Max sample of the same key.
    np.testing.assert_array_equal(z.argmax(-1), gnp.categorical(x, rng=3))


def test_log_sample_noise_modes():
    x = np.random.default_rng(2).standard_normal((4, 9))
    g = gnp.gumbel(x.shape, rng=5, dtype=np.float64)
    np.testing.assert_allclose(gnp.log_gumbel_softmax(x, tau=0.5, noise=g), gnp.log_gumbel_softmax(x, tau=0.5, rng=5))
    np.testing.assert_allclose(gnp.log_gumbel_softmax(x, tau=0.5, noise=0), sp.log_softmax(x / 0.5, axis=-1))
    part = gnp.log_gumbel_softmax(x[1:3], tau=0.5, rng=5, row_ids=[1, 2])
    np.testing.assert_array_equal(part, gnp.log_gumbel_softmax(x, tau=0.5, rng=5)[1:3])
    with pytest.raises(ValueError, match="log_gumbel_softmax: pass rng or noise"):
        gnp.log_gumbel_softmax(x, noise=g, rng=1)


# --------------------------------------------------------------------------
# The densities integrate to 1 and are the samplers' laws


@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_densities_integrate_to_one_k2(tau):
    logits = np.array([0.7, -0.4])

    # Over y_1 = sigmoid(d) (dy_1 = y_1 y_2 dd): the densities have
    # integrable singularities at the vertices for tau < 1, the integrands in
    # d none.
    def concrete(d):
        y = sp.expit(np.array([d, -d]))
        return np.exp(gnp.concrete_log_prob(y, logits, tau=tau)) * y[0] * y[1]

    def exp_concrete(d):
        # The log-simplex parametrised by d = z_1 - z_2 (z_1 = -softplus(-d)):
        # dz_1 / exp(z_2) = dd, the measure of the ExpConcrete formula (see
        # its Notes), and the integrand stays bounded at every tau.
        z = np.array([-np.logaddexp(0, -d), -np.logaddexp(0, d)])
        return np.exp(gnp.exp_concrete_log_prob(z, logits, tau=tau))

    def binary(d):
        # For d > 0 through the symmetry p(y; l) = p(1 - y; -l), so that y
        # stays below 1/2: at tau = 0.3 a float64 y above 1 - 2**-53 rounds
        # to 1, outside the open support, and that tail holds 5e-5 of the mass.
        y = sp.expit(-abs(d))
        lg = np.array(1.1 if d <= 0 else -1.1)
        return np.exp(gnp.binary_concrete_log_prob(np.array(y), lg, tau=tau)) * y * (1 - y)

    opts = {"limit": 400, "epsabs": 1e-10, "epsrel": 1e-10}
    w = 30 / tau  # d = (logit difference + logistic noise) / tau: its scale is 1 / tau
    pieces = ((-np.inf, -w), (-w, 0), (0, w), (w, np.inf))
    for density in (concrete, exp_concrete, binary):
        total = sum(si.quad(density, a, b, **opts)[0] for a, b in pieces)
        assert abs(total - 1) < 1e-7, density.__name__


@pytest.mark.slow
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_concrete_density_integrates_to_one_k3(tau):
    # Importance sampling from a Dirichlet(0.5, 0.5, 0.5) proposal, whose
    # mass near the vertices and edges covers the density's there; the
    # estimate must be within Z standard errors of 1 (ALPHA = 1e-6).
    logits = np.array([0.5, -0.3, 0.1])
    a = np.full(3, 0.5)
    y = np.random.default_rng(11).dirichlet(a, size=2_000_000)
    y = y[(y > 1e-300).all(-1)]
    log_q = st.dirichlet.logpdf(y.T, a)
    w = np.exp(gnp.concrete_log_prob(y, np.tile(logits, (len(y), 1)), tau=tau) - log_q)
    se = w.std() / np.sqrt(len(w))
    assert abs(w.mean() - 1) < Z * se and se < 0.01


def _exp_concrete_cdf(logits, tau):
    """The CDF of ``d = z_1 - z_2`` under the K = 2 ExpConcrete density, by
    quadrature of :func:`gnp.exp_concrete_log_prob` on a fine grid: with
    ``z_1 = -softplus(-d)``, ``dz_1 = exp(z_2) dd``, so the formula (a
    density in ``dz_1 / exp(z_2)``) is the density of ``d`` itself."""
    d = np.linspace(-60 / tau, 60 / tau, 400_001)
    z = np.stack([-np.logaddexp(0, -d), -np.logaddexp(0, d)], -1)
    p = np.exp(gnp.exp_concrete_log_prob(z, np.tile(logits, (len(d), 1)), tau=tau))
    cdf = np.concatenate([[0.0], np.cumsum((p[1:] + p[:-1]) / 2 * np.diff(d))])
    assert abs(cdf[-1] - 1) < 1e-6  # the grid holds the mass
    return lambda v: np.interp(v, d, cdf)


@pytest.mark.slow
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_log_sampler_has_the_density_law(tau):
    logits = np.array([0.4, -0.6])
    n = 200_000
    z = gnp.log_gumbel_softmax(np.tile(logits, (n, 1)), tau=tau, rng=19)
    cdf = _exp_concrete_cdf(logits, tau)
    assert st.kstest(z[:, 0] - z[:, 1], cdf).pvalue > ALPHA
    # The test has power: a temperature 10% off is rejected.
    wrong = gnp.log_gumbel_softmax(np.tile(logits, (n, 1)), tau=1.1 * tau, rng=19)
    assert st.kstest(wrong[:, 0] - wrong[:, 1], cdf).pvalue < ALPHA


@pytest.mark.slow
def test_binary_sampler_has_the_density_law():
    n = 200_000
    y = gnp.gumbel_sigmoid(np.full(n, 0.8), tau=0.9, rng=4)
    grid = np.linspace(1e-9, 1 - 1e-9, 400_001)
    p = np.exp(gnp.binary_concrete_log_prob(grid, np.full(grid.size, 0.8), tau=0.9))
    cdf = np.concatenate([[0.0], np.cumsum((p[1:] + p[:-1]) / 2 * np.diff(grid))])
    assert st.kstest(y, lambda v: np.interp(v, grid, cdf / cdf[-1])).pvalue > ALPHA


# --------------------------------------------------------------------------
# Masks, the support and its boundary


def test_masked_categories_leave_k():
    x = np.array([0.3, -np.inf, -0.5, -np.inf, 1.0])
    z = gnp.log_gumbel_softmax(x, tau=0.4, rng=1)
    live = np.isfinite(x)
    want = gnp.exp_concrete_log_prob(z[live], x[live], tau=0.4)
    assert gnp.exp_concrete_log_prob(z, x, tau=0.4) == want
    assert gnp.concrete_log_prob(np.exp(z), x, tau=0.4) == gnp.concrete_log_prob(np.exp(z[live]), x[live], tau=0.4)
    dz, dl = gnp.exp_concrete_log_prob_backward(1.0, z, x, tau=0.4)
    assert (dz[~live] == 0).all() and (dl[~live] == 0).all() and np.isfinite(dz).all()


def test_outside_the_support():
    x = np.array([[0.3, -0.2, 0.1]] * 4)
    y = np.array([[0.2, 0.3, 0.5], [0.0, 0.5, 0.5], [1.5, -0.2, -0.3], [np.nan, 0.5, 0.5]])
    lp = gnp.concrete_log_prob(y, x, tau=0.5)
    assert np.isfinite(lp[0]) and lp[1] == -np.inf and lp[2] == -np.inf and np.isnan(lp[3])
    dy, dl, dt = gnp.concrete_log_prob_backward(np.ones(4), y, x, tau=0.5, tau_grad=True)
    assert (dy[1:3] == 0).all() and (dl[1:3] == 0).all()
    masked = np.array([0.3, -np.inf, 0.1])
    assert gnp.concrete_log_prob(np.array([0.5, 0.2, 0.3]), masked, tau=0.5) == -np.inf  # mass on a masked one
    assert gnp.exp_concrete_log_prob(np.array([np.log(0.5), -np.inf, np.log(0.5)]), x[0], tau=0.5) == -np.inf
    assert np.isnan(gnp.exp_concrete_log_prob(np.zeros(3) - 1, np.full(3, -np.inf), tau=0.5))
    b = gnp.binary_concrete_log_prob(np.array([0.0, 1.0, 0.5, np.nan]), np.zeros(4), tau=0.5)
    assert b[0] == -np.inf and b[1] == -np.inf and np.isfinite(b[2]) and np.isnan(b[3])
    gy, gl, gt = gnp.binary_concrete_log_prob_backward(np.ones(2), np.array([0.0, 1.0]), np.zeros(2), tau=0.5,
                                                       tau_grad=True)
    assert (gy == 0).all() and (gl == 0).all() and gt == 0


def test_extreme_but_inside_values_are_finite(dtype):
    # Logits of 1e4, tau = 0.01, samples a few ulp inside the boundary.
    x = np.array([1e4, -1e4, 0.0], dtype)
    z = gnp.log_gumbel_softmax(x, tau=0.01, rng=2)
    assert np.isfinite(gnp.exp_concrete_log_prob(z, x, tau=0.01))
    for g in gnp.exp_concrete_log_prob_backward(1.0, z, x, tau=0.01, tau_grad=True):
        assert np.isfinite(g).all()
    tiny = np.finfo(dtype).tiny
    y = np.array([tiny, 1 - np.finfo(dtype).epsneg], dtype)
    assert np.isfinite(gnp.binary_concrete_log_prob(y, np.array([30.0, -30.0], dtype), tau=0.05)).all()


# --------------------------------------------------------------------------
# Gradients (float64, central differences) on hard cases


@pytest.mark.parametrize("tau", [0.01, 0.3, 3.0])
def test_density_gradients(tau):
    rng = np.random.default_rng(5)
    x = 3 * rng.standard_normal((5, 6))
    x[:, 2] = -np.inf
    z = gnp.log_gumbel_softmax(x, tau=tau, rng=6)
    h = 1e-6
    for name, sample in (("exp_concrete_log_prob", z), ("concrete_log_prob", np.exp(z))):
        if name == "concrete_log_prob" and tau < 0.1:
            continue  # the simplex sample underflows there (the log sample is the way)
        f = getattr(gnp, name)
        b = getattr(gnp, name + "_backward")
        g = rng.standard_normal(5)
        ds, dl, dt = b(g, sample, x, tau=tau, tau_grad=True)
        for arg, grad in ((0, ds), (1, dl)):
            d = rng.standard_normal(x.shape) * (np.abs(sample) if arg == 0 else 1)
            d[:, 2] = 0
            plus, minus = [sample, x], [sample, x]
            plus[arg], minus[arg] = plus[arg] + h * d, minus[arg] - h * d
            num = (np.sum(g * f(*plus, tau=tau)) - np.sum(g * f(*minus, tau=tau))) / (2 * h)
            assert abs(num - np.sum(grad * d)) <= 1e-6 * max(1, abs(num)), (name, arg)
        num = (np.sum(g * f(sample, x, tau=tau + h * tau)) - np.sum(g * f(sample, x, tau=tau - h * tau))) / (2 * h * tau)
        assert abs(num - float(dt)) <= 1e-6 * max(1, abs(num)), (name, "tau")


def test_log_sample_gradients_at_low_temperature():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 7))
    x[:, 1] = -np.inf
    tau = 0.05
    g = rng.standard_normal(x.shape)
    z = gnp.log_gumbel_softmax(x, tau=tau, rng=2)
    dl, dt = gnp.log_gumbel_softmax_backward(g, z, tau=tau, tau_grad=True)
    assert (dl[:, 1] == 0).all()
    h = 1e-7
    d = rng.standard_normal(x.shape)
    d[:, 1] = 0
    f = lambda a, t=tau: np.sum(np.where(np.isfinite(x), g * gnp.log_gumbel_softmax(a, tau=t, rng=2), 0))  # noqa: E731
    num = (f(x + h * d) - f(x - h * d)) / (2 * h)
    assert abs(num - np.sum(dl * d)) <= 1e-5 * max(1, abs(num))
    num = (f(x, tau + h) - f(x, tau - h)) / (2 * h)
    assert abs(num - float(dt)) <= 1e-5 * max(1, abs(num))


# --------------------------------------------------------------------------
# PyTorch: the same values where it is finite, and where it is not


def _torch():
    return oracle("torch", "pip install torch==2.13.0")


@pytest.mark.oracle
def test_against_torch_where_torch_is_finite():
    torch = _torch()
    from torch.distributions.relaxed_bernoulli import LogitRelaxedBernoulli, RelaxedBernoulli
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical, RelaxedOneHotCategorical

    rng = np.random.default_rng(3)
    x = 2 * rng.standard_normal((200, 6))
    for tau in (0.2, 1.0, 3.0):
        t = torch.tensor(tau, dtype=torch.float64)
        z = gnp.log_gumbel_softmax(x, tau=tau, rng=1)
        theirs = ExpRelaxedCategorical(t, logits=torch.tensor(x)).log_prob(torch.tensor(z)).numpy()
        np.testing.assert_allclose(gnp.exp_concrete_log_prob(z, x, tau=tau), theirs, rtol=1e-10, atol=1e-10)
        y = np.exp(z)
        theirs = RelaxedOneHotCategorical(t, logits=torch.tensor(x)).log_prob(torch.tensor(y)).numpy()
        ok = np.isfinite(theirs)
        assert ok.mean() > 0.9
        np.testing.assert_allclose(gnp.concrete_log_prob(y, x, tau=tau)[ok], theirs[ok], rtol=1e-9, atol=1e-9)
        yb = gnp.gumbel_sigmoid(x, tau=tau, rng=2)
        theirs = RelaxedBernoulli(t, logits=torch.tensor(x)).log_prob(torch.tensor(yb)).numpy()
        ok = np.isfinite(theirs) & (yb > 0) & (yb < 1)  # PyTorch clamps a saturated sample
        np.testing.assert_allclose(gnp.binary_concrete_log_prob(yb, x, tau=tau)[ok], theirs[ok], rtol=1e-9, atol=1e-9)
        # LogitRelaxedBernoulli is the same law in logit space: its density
        # is ours times the Jacobian y (1 - y).
        lg = sp.logit(yb)
        theirs = LogitRelaxedBernoulli(t, logits=torch.tensor(x)).log_prob(torch.tensor(lg)).numpy()
        with np.errstate(divide="ignore"):
            ours = gnp.binary_concrete_log_prob(yb, x, tau=tau) + np.log(yb) + np.log1p(-yb)
        ok = np.isfinite(theirs) & np.isfinite(ours)
        np.testing.assert_allclose(ours[ok], theirs[ok], rtol=1e-8, atol=1e-8)
    # And the gradients, by autograd, with respect to the sample, the logits
    # and the temperature.
    z = gnp.log_gumbel_softmax(x[:20], tau=0.5, rng=1)
    tz = torch.tensor(z, requires_grad=True)
    tl = torch.tensor(x[:20], requires_grad=True)
    tt = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    ExpRelaxedCategorical(tt, logits=tl).log_prob(tz).sum().backward()
    dz, dl, dt = gnp.exp_concrete_log_prob_backward(np.ones(20), z, x[:20], tau=0.5, tau_grad=True)
    np.testing.assert_allclose(dz, tz.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dl, tl.grad.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dt, tt.grad.numpy(), rtol=1e-9)


CASES_WHERE_TORCH_FAILS = {
    # name: (our function, torch distribution, its log_prob argument, logits, tau, sample)
    "masked logit, ExpConcrete": "exp",
    "masked logit, Concrete": "simplex",
    "tau = 0.01, ExpConcrete sample from log space": "low_tau",
    "binary sample saturated to 1 (PyTorch clamps it and returns a finite value; ours: -inf)": "boundary",
}


@pytest.mark.oracle
@pytest.mark.parametrize("case", list(CASES_WHERE_TORCH_FAILS))
def test_where_torch_is_not_finite(case):
    torch = _torch()
    from torch.distributions.relaxed_bernoulli import RelaxedBernoulli
    from torch.distributions.relaxed_categorical import ExpRelaxedCategorical, RelaxedOneHotCategorical

    kind = CASES_WHERE_TORCH_FAILS[case]
    x = np.array([0.5, -np.inf, -0.2, 1.0])
    if kind == "exp":
        z = gnp.log_gumbel_softmax(x, tau=0.5, rng=1)
        theirs = ExpRelaxedCategorical(torch.tensor(0.5), logits=torch.tensor(x)).log_prob(torch.tensor(z))
        ours = gnp.exp_concrete_log_prob(z, x, tau=0.5)
    elif kind == "simplex":
        y = gnp.gumbel_softmax(x, tau=0.5, rng=1)
        theirs = RelaxedOneHotCategorical(torch.tensor(0.5), logits=torch.tensor(x)).log_prob(torch.tensor(y))
        ours = gnp.concrete_log_prob(y, x, tau=0.5)
    elif kind == "low_tau":
        x = np.array([0.5, -3.0, -0.2, 1.0], np.float32)
        z = gnp.log_gumbel_softmax(x, tau=0.01, rng=1)
        y = gnp.gumbel_softmax(x, tau=0.01, rng=1)
        assert (y == 0).any()  # the simplex sample underflowed
        theirs = RelaxedOneHotCategorical(torch.tensor(0.01), logits=torch.tensor(x)).log_prob(torch.tensor(y))
        ours = gnp.exp_concrete_log_prob(z, x, tau=0.01)
    else:
        x = np.array([40.0])
        y = gnp.gumbel_sigmoid(x, tau=0.5, rng=1)
        assert y[0] == 1.0
        theirs = RelaxedBernoulli(torch.tensor(0.5), logits=torch.tensor(x)).log_prob(torch.tensor(y))
        ours = gnp.binary_concrete_log_prob(y, x, tau=0.5)
        # PyTorch evaluates the density at its clamp, 1 - eps: a finite value
        # of a point that is not the sample.  Ours: outside the open support,
        # -inf as documented (not NaN), with a zero gradient.
        assert np.isfinite(theirs.numpy()).all() and (ours == -np.inf).all()
        _, dl = gnp.binary_concrete_log_prob_backward(np.ones(1), y, x, tau=0.5)
        assert (dl == 0).all()
        return
    assert not np.isfinite(theirs.numpy()).all(), theirs
    assert np.isfinite(ours).all()


def test_second_logits_broadcast_and_their_gradient_sums_back():
    # A prior's logits of shape (K,) against a batch of samples, as in the
    # relaxed KL; the same rule serves categorical_kl's logits_p.
    rng = np.random.default_rng(9)
    q = rng.standard_normal((5, 4))
    prior = rng.standard_normal(4)
    z = gnp.log_gumbel_softmax(q, tau=0.5, rng=1)
    full = np.tile(prior, (5, 1))
    np.testing.assert_array_equal(gnp.exp_concrete_log_prob(z, prior, tau=0.5),
                                  gnp.exp_concrete_log_prob(z, full, tau=0.5))
    g = rng.standard_normal(5)
    dz, dp = gnp.exp_concrete_log_prob_backward(g, z, prior, tau=0.5)
    dz_full, dp_full = gnp.exp_concrete_log_prob_backward(g, z, full, tau=0.5)
    np.testing.assert_array_equal(dz, dz_full)
    assert dp.shape == (4,)
    np.testing.assert_allclose(dp, dp_full.sum(0), rtol=1e-13, atol=1e-15)
    dq, dkl = gnp.categorical_kl_backward(g, q, prior)
    assert dkl.shape == (4,)
    np.testing.assert_allclose(dkl, gnp.categorical_kl_backward(g, q, full)[1].sum(0), rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match=r"exp_concrete_log_prob: logits of shape \(5,\) does not broadcast"):
        gnp.exp_concrete_log_prob(z, np.zeros(5), tau=0.5)

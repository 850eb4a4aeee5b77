"""Sampling without replacement (``categorical(..., replace=False)``) and the
Plackett-Luce log-probability: exactness in law, the normalisers' precision,
the stream contract, errors, and the peers' known failures.

(The registry tests run both through the float64 reference, the gradient
check, ``out=`` and thread/chunk invariance as well.)"""

from __future__ import annotations

import itertools
from decimal import Decimal, localcontext

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from helpers import ALPHA, GUMBEL_ROW_PATHS, oracle

import gumbel_np as gnp
from gumbel_np.kernels import ranking as _kr

# --------------------------------------------------------------------------
# Exact law: ordered tuples against the Plackett-Luce probabilities


def _pl_probability(p, ranking):
    """P(ranking) for probabilities ``p``, by the product of conditional draws."""
    rest = np.asarray(p, np.float64).copy()
    prob = 1.0
    for i in ranking:
        prob *= rest[i] / rest.sum()
        rest[i] = 0.0
    return prob


def _tuple_codes(draws, k_cat):
    """Each ordered tuple (a row of ``draws``) as one integer in base ``k_cat``."""
    return (draws * k_cat ** np.arange(draws.shape[-1])[::-1]).sum(-1)


def _chi_square(draws, p):
    """p-value of the ordered-tuple frequencies of ``draws`` against the
    Plackett-Luce law of ``p`` (cells expected below 5 pooled)."""
    k_cat, k = len(p), draws.shape[-1]
    tuples = [t for t in itertools.permutations(range(k_cat), k)]
    expected = np.array([_pl_probability(p, t) for t in tuples]) * len(draws)
    index = {int(_tuple_codes(np.array(t), k_cat)): n for n, t in enumerate(tuples)}
    codes = _tuple_codes(draws, k_cat)
    counts = np.zeros(len(tuples))
    uniq, cnt = np.unique(codes, return_counts=True)
    for u, c in zip(uniq, cnt):
        counts[index[int(u)]] += c  # a code outside the permutations raises KeyError
    small = expected < 5
    obs = np.concatenate([counts[~small], [counts[small].sum()]])
    exp = np.concatenate([expected[~small], [expected[small].sum()]])
    keep = exp > 0
    return st.chisquare(obs[keep], exp[keep]).pvalue


LAWS = {
    "decreasing": np.array([0.4, 0.3, 0.2, 0.1]),
    "peaked": np.array([0.85, 0.1, 0.04, 0.01]),
    "masked": np.array([0.5, 0.0, 0.3, 0.2]),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "law, k", [(law, k) for law, p in LAWS.items() for k in (2, 3, 4) if k <= np.count_nonzero(p)]
)
def test_ordered_tuples_follow_plackett_luce(backend, dtype, law, k):
    p = LAWS[law]
    n = 200_000
    with np.errstate(divide="ignore"):
        logits = np.tile(np.log(p), (n, 1)).astype(dtype)
    draws = backend.to_numpy(gnp.categorical(backend.asarray(logits), num_samples=k, replace=False, rng=17))
    assert draws.shape == (n, k) and draws.dtype == np.int64
    assert (np.sort(draws, -1)[:, 1:] != np.sort(draws, -1)[:, :-1]).all()  # distinct
    assert not np.isin(draws, np.flatnonzero(p == 0)).any()
    assert _chi_square(draws, p) > ALPHA


def test_chi_square_has_power():
    # The same test rejects ordered tuples drawn with replacement-then-dedup
    # style bias: rankings whose later draws ignore the first (independent
    # draws from p, rejected when they repeat, are not Plackett-Luce when the
    # order is read off by sorting).
    p = LAWS["decreasing"]
    n = 200_000
    draws = gnp.categorical(np.tile(np.log(p), (n, 1)), num_samples=3, replace=False, rng=17)
    wrong = np.sort(draws, -1)  # the set, in index order: not the order drawn
    assert _chi_square(wrong, p) < ALPHA
    assert _chi_square(draws, p) > ALPHA


def test_log_prob_sums_to_one_over_rankings():
    rng = np.random.default_rng(4)
    for logits in (3 * rng.standard_normal(4), np.array([0.0, -np.inf, 1.5, -2.0])):
        live = int(np.isfinite(logits).sum())
        for k in range(1, live + 1):
            ranks = np.array(list(itertools.permutations(np.flatnonzero(np.isfinite(logits)), k)))
            lp = gnp.plackett_luce_log_prob(np.tile(logits, (len(ranks), 1)), ranks)
            assert abs(np.exp(lp).sum() - 1.0) < 1e-14, (logits, k)


def test_log_prob_matches_the_frequencies():
    # log P(ranking) is the law the sampler draws: the most frequent rankings
    # agree with exp(log_prob) within the binomial error (z at ALPHA).
    p = LAWS["decreasing"]
    n = 400_000
    draws = gnp.categorical(np.tile(np.log(p), (n, 1)), num_samples=2, replace=False, rng=5)
    codes = _tuple_codes(draws, 4)
    for t in itertools.permutations(range(4), 2):
        want = float(np.exp(gnp.plackett_luce_log_prob(np.log(p), list(t))))
        got = np.mean(codes == _tuple_codes(np.array(t), 4))
        se = np.sqrt(want * (1 - want) / n)
        assert abs(got - want) < st.norm.isf(ALPHA / 2) * se, t


# --------------------------------------------------------------------------
# The sampler: its definition on every path, the stream contract, limits


def _reference(x, k, rng, dtype):
    g = gnp.gumbel(x.shape, rng=rng, dtype=dtype)
    z = (x - x.max(-1, keepdims=True)) + g
    return np.argsort(-z, axis=-1, kind="stable")[:, :k]


@pytest.mark.parametrize("kcat", sorted({*GUMBEL_ROW_PATHS, 300, 3000}))
def test_top_k_of_the_perturbed_logits_on_every_path(dtype, kcat):
    x = (3 * np.random.default_rng(kcat).standard_normal((40, kcat))).astype(dtype)
    for k in sorted({min(kcat, v) for v in (1, 2, 8, _kr.SMALL_TOP, _kr.SMALL_TOP + 1, kcat)}):
        got = gnp.categorical(x, num_samples=k, replace=False, rng=9)
        np.testing.assert_array_equal(got, _reference(x, k, 9, dtype))
        # The first draw is the single draw with replacement, for the same key.
        np.testing.assert_array_equal(got[:, 0], gnp.categorical(x, rng=9))


def test_ties_go_to_the_lowest_index():
    # The selection itself, on perturbed values with exact ties.
    rng = np.random.default_rng(5)
    for s in (1, 3, 8, 32):
        z = rng.integers(0, 6, 200).astype(np.float64)
        bv, bi = np.empty(s), np.empty(s, np.int64)
        assert _kr._top_of_row(z, z, bv, bi) == s
        np.testing.assert_array_equal(bi, np.argsort(-z, kind="stable")[:s])
    # Through the sampler: float32 noise takes 2**24 values, so a row of
    # 20000 equal logits holds exact ties, which a full ranking (the
    # partition path) orders by index.
    x = np.zeros((2, 20000), np.float32)
    got = gnp.categorical(x, num_samples=20000, replace=False, rng=3)
    z = gnp.gumbel(x.shape, rng=3)
    assert any(len(np.unique(r)) < r.size for r in z)  # the ties are there
    np.testing.assert_array_equal(got, np.argsort(-z, axis=-1, kind="stable"))


def test_shifts_that_overflow_come_last_in_index_order():
    # Float32 logits 6e38 apart: x - max overflows to -inf for a category
    # that is not masked.  It is drawn after every finite perturbed value,
    # tied with the other such categories, in index order, on every path.
    for kcat in (5, 100):
        x = np.full((1, kcat), -np.inf, np.float32)
        x[0, [0, 1, 2, 3]] = [3e38, -3e38, 0.0, -3e38]
        with pytest.raises(ValueError, match="has 4 categories that are not -inf, fewer than num_samples=5"):
            gnp.categorical(x, num_samples=5, replace=False, rng=2)
        for k in (4, min(kcat, _kr.SMALL_TOP + 1)):
            x[0, 4:k] = -3e38
            got = gnp.categorical(x, num_samples=k, replace=False, rng=2)
            assert got[0, :2].tolist() == [0, 2]  # the finite perturbed values first
            assert got[0, 2:].tolist() == [1, 3] + list(range(4, k))


def test_row_ids_and_chunks():
    x = np.random.default_rng(1).standard_normal((300, 70)).astype(np.float32)
    full = gnp.categorical(x, num_samples=5, replace=False, rng=3)
    a, b = 17, 230
    part = gnp.categorical(x[a:b], num_samples=5, replace=False, rng=3, row_ids=np.arange(a, b))
    np.testing.assert_array_equal(part, full[a:b])
    perm = np.random.default_rng(2).permutation(300)
    shuffled = gnp.categorical(x[perm], num_samples=5, replace=False, rng=3, row_ids=perm)
    np.testing.assert_array_equal(shuffled, full[perm])


def test_axis_and_batch_shape():
    x = np.random.default_rng(2).standard_normal((4, 9, 3))
    got = gnp.categorical(x, axis=1, num_samples=4, replace=False, rng=6)
    assert got.shape == (4, 3, 4)
    want = gnp.categorical(np.moveaxis(x, 1, -1), num_samples=4, replace=False, rng=6)
    np.testing.assert_array_equal(got, want)
    single = gnp.categorical(x, axis=1, replace=False, rng=6)
    np.testing.assert_array_equal(single, gnp.categorical(x, axis=1, rng=6))


def test_float64_noise_stream():
    x = np.random.default_rng(3).standard_normal((50, 80)).astype(np.float32)
    got = gnp.categorical(x, num_samples=6, replace=False, rng=4, noise_dtype=np.float64)
    want = gnp.categorical(x.astype(np.float64), num_samples=6, replace=False, rng=4)
    np.testing.assert_array_equal(got, want)


def test_errors():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"categorical: num_samples=5 exceeds the 4 categories"):
        gnp.categorical(x, num_samples=5, replace=False)
    with pytest.raises(TypeError, match="categorical: replace must be True or False, not 'no'"):
        gnp.categorical(x, num_samples=2, replace="no")
    bad = x.copy()
    bad[2, [0, 1, 3]] = -np.inf
    with pytest.raises(ValueError, match=r"categorical: row \(2,\) of logits has 1 categories that are not -inf, "
                       r"fewer than num_samples=2"):
        gnp.categorical(bad, num_samples=2, replace=False, rng=0)
    for value, what in ((np.nan, "holds NaN"), (np.inf, "holds \\+inf")):
        bad = x.copy()
        bad[1, 2] = value
        with pytest.raises(ValueError, match=rf"categorical: row \(1,\) of logits {what}"):
            gnp.categorical(bad, num_samples=2, replace=False, rng=0)
    with pytest.raises(ValueError, match="is all -inf"):
        gnp.categorical(np.full((2, 70), -np.inf), num_samples=2, replace=False, rng=0)


@pytest.mark.parametrize("kcat", [6, 100])
def test_too_few_categories(kcat):
    # Exactly as many live categories as draws: they are all drawn, never a
    # masked one; one more draw is an error naming the row.
    x = np.full((5, kcat), -np.inf)
    x[:, [1, 3, kcat - 1]] = [0.0, 1.0, 2.0]
    got = gnp.categorical(x, num_samples=3, replace=False, rng=1)
    assert (np.sort(got, -1) == [1, 3, kcat - 1]).all()
    with pytest.raises(ValueError, match=r"row \(0,\) of logits has 3 categories that are not -inf"):
        gnp.categorical(x, num_samples=4, replace=False, rng=1)


# --------------------------------------------------------------------------
# The log-probability: precision of the normalisers, masks, impossible rankings


def _pl_decimal(x, ranking):
    """log P(ranking) with 80 significant digits (Python's decimal), each
    normaliser summed over the categories left (a difference of sums would
    cancel even at 80 digits when the logits span 300)."""
    with localcontext() as ctx:
        ctx.prec = 80
        e = [Decimal(0) if v == -np.inf else Decimal(float(v)).exp() for v in x]
        left = set(range(len(e)))
        total = Decimal(0)
        for i in ranking:
            total += e[int(i)].ln() - sum(e[j] for j in left).ln()
            left.discard(int(i))
        return float(total)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_prob_when_the_first_choices_hold_almost_all_the_mass(dtype):
    # The first two choices hold 1 - 1e-12 of the mass: the normaliser of the
    # third is a remainder of 1e-12, which log(total - chosen) would compute
    # with the total's rounding error (about 1e-16 / 1e-12 = 1e-4 relative).
    k = 50
    rest = np.log(1e-12 / (k - 2))
    x = np.full(k, rest)
    x[:2] = [np.log(0.6), np.log(0.4 - 1e-12)]
    x = x.astype(dtype)
    ranking = [0, 1, 7, 20]
    want = _pl_decimal(x.astype(np.float64), ranking)
    got = float(gnp.plackett_luce_log_prob(x, ranking))
    eps = np.finfo(dtype).eps
    assert abs(got - want) <= 8 * eps * abs(want), (got, want)
    # The difference form loses it (the test can fail).
    x64 = x.astype(np.float64)
    naive = 0.0
    total = sp.logsumexp(x64)
    chosen = 0.0
    for i in ranking:
        naive += x64[i] - np.log(np.exp(total) - chosen)
        chosen += np.exp(x64[i])
    assert abs(naive - want) > 1e-6 * abs(want)


def test_log_prob_against_high_precision():
    rng = np.random.default_rng(8)
    for kcat in (2, 10, 40, 300, 1500):
        for scale in (1.0, 10.0, 60.0):
            x = scale * rng.standard_normal(kcat)
            x[rng.random(kcat) < 0.1] = -np.inf
            if np.isfinite(x).sum() < 2:
                continue
            k = min(int(np.isfinite(x).sum()), 6)
            ranking = gnp.categorical(x, num_samples=k, replace=False, rng=kcat)
            want = _pl_decimal(x, ranking)
            got = float(gnp.plackett_luce_log_prob(x, ranking))
            assert abs(got - want) <= 1e-13 * max(1.0, abs(want)), (kcat, scale, got, want)


def test_impossible_rankings_and_bad_indices():
    x = np.array([[0.0, -1.0, -np.inf, 2.0]] * 3)
    lp = gnp.plackett_luce_log_prob(x, [[0, 0], [2, 1], [3, 1]])
    assert lp[0] == -np.inf and lp[1] == -np.inf and np.isfinite(lp[2])
    g = gnp.plackett_luce_log_prob_backward(np.ones(3), x, [[0, 0], [2, 1], [3, 1]])
    assert (g[:2] == 0).all() and np.isfinite(g[2]).all() and abs(g[2].sum()) < 1e-15
    assert g[2, 2] == 0  # a masked category gets no gradient
    with pytest.raises(ValueError, match=r"plackett_luce_log_prob: index 4 in row \(1,\) is out of range"):
        gnp.plackett_luce_log_prob(x, [[0, 1], [4, 1], [3, 1]])
    with pytest.raises(ValueError, match=r"plackett_luce_log_prob_backward: index -1 in row \(0,\)"):
        gnp.plackett_luce_log_prob_backward(np.ones(3), x, [[-1, 1], [0, 1], [3, 1]])
    with pytest.raises(ValueError, match="followed by one axis of ranked categories"):
        gnp.plackett_luce_log_prob(x, [0, 1, 3])
    with pytest.raises(ValueError, match="followed by one axis of ranked categories"):
        gnp.plackett_luce_log_prob(x, np.zeros((3, 2, 1), int))
    with pytest.raises(TypeError, match="plackett_luce_log_prob: index must be an array of integer"):
        gnp.plackett_luce_log_prob(x, np.zeros((3, 2)))
    nan = x.copy()
    nan[1, 1] = np.nan
    lp = gnp.plackett_luce_log_prob(nan, [[0, 1], [0, 3], [3, 1]])
    assert np.isnan(lp[1]) and np.isfinite(lp[[0, 2]]).all()


def test_gradient_on_masked_and_peaked_rows():
    rng = np.random.default_rng(3)
    x = 4 * rng.standard_normal((6, 12))
    x[:, [2, 9]] = -np.inf
    x[0, 0] = 40.0  # a peaked row
    ranking = gnp.categorical(x, num_samples=5, replace=False, rng=1)
    v = rng.standard_normal(6)
    g = gnp.plackett_luce_log_prob_backward(v, x, ranking)
    assert (g[:, [2, 9]] == 0).all()
    d = rng.standard_normal(x.shape)
    d[:, [2, 9]] = 0
    h = 1e-6
    f = lambda a: np.sum(v * gnp.plackett_luce_log_prob(a, ranking))  # noqa: E731
    numeric = (f(x + h * d) - f(x - h * d)) / (2 * h)
    assert abs(numeric - np.sum(g * d)) <= 1e-7 * max(1.0, abs(numeric))


# --------------------------------------------------------------------------
# The peers


@pytest.mark.oracle
@pytest.mark.slow
def test_same_law_as_jax():
    jax = oracle("jax", "pip install jax")
    jax.config.update("jax_enable_x64", True)
    p = LAWS["decreasing"]
    n = 200_000
    ours = gnp.categorical(np.tile(np.log(p), (n, 1)), num_samples=3, replace=False, rng=21)
    # JAX's shape is the draws followed by the batch shape of the logits.
    theirs = np.asarray(
        jax.random.categorical(jax.random.key(0), np.tile(np.log(p), (n, 1)), shape=(3, n), replace=False)
    ).T
    # Two-sample chi-square over the 24 ordered triples.
    a = np.bincount(_tuple_codes(ours, 4), minlength=64)
    b = np.bincount(_tuple_codes(theirs, 4), minlength=64)
    keep = (a + b) > 0
    table = np.stack([a[keep], b[keep]])
    assert st.chi2_contingency(table).pvalue > ALPHA
    assert _chi_square(theirs, p) > ALPHA  # and both follow Plackett-Luce


@pytest.mark.oracle
def test_where_torch_multinomial_draws_zero_probability_categories():
    torch = oracle("torch", "pip install torch==2.13.0")
    p = np.array([0.5, 0.0, 0.5, 0.0, 0.0])
    torch.manual_seed(0)
    # PyTorch (pytorch#50034) fills the draws past the nonzero categories with
    # zero-probability ones, silently.
    theirs = torch.multinomial(torch.tensor(p).repeat(1000, 1), 3, replacement=False).numpy()
    assert np.isin(theirs, [1, 3, 4]).all(axis=-1).sum() == 0 and np.isin(theirs[:, 2], [1, 3, 4]).all()
    with np.errstate(divide="ignore"):
        logits = np.log(p)
    ours = gnp.categorical(np.tile(logits, (1000, 1)), num_samples=2, replace=False, rng=0)
    assert not np.isin(ours, [1, 3, 4]).any()
    with pytest.raises(ValueError, match="has 2 categories that are not -inf, fewer than num_samples=3"):
        gnp.categorical(np.tile(logits, (1000, 1)), num_samples=3, replace=False, rng=0)


def test_equal_perturbed_values_pushed_down_keep_index_order():
    # Categories 1 and 2 have exactly equal perturbed values (-1e30 + G
    # rounds to -1e30); category 3, larger, comes after them in the scan and
    # pushes both down: they must stay in index order (short rows, column
    # order, and long rows).
    for kcat in (4, 100):
        x = np.full((1, kcat), -np.inf, np.float32)
        x[0, :4] = [0, -1e30, -1e30, 5]
        got = gnp.categorical(x, num_samples=4, replace=False, rng=0)
        assert got[0].tolist() == [3, 0, 1, 2], kcat


def test_empty_ranking():
    x = np.random.default_rng(0).standard_normal((2, 5)).astype(np.float32)
    empty = np.zeros((2, 0), np.int64)
    np.testing.assert_array_equal(gnp.plackett_luce_log_prob(x, empty), np.zeros(2, np.float32))
    np.testing.assert_array_equal(gnp.plackett_luce_log_prob_backward(np.ones(2, np.float32), x, empty),
                                  np.zeros((2, 5), np.float32))

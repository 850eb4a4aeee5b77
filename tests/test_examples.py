"""The command-line examples in ``examples/``, run with small settings.

Each example exposes ``main(argv)`` returning its key results; the tests run
it on a small problem and check properties of the results, not only that it
runs.  The examples folder is found relative to this file (it is not part of
the installed package); the tests skip with the reason when it is absent.
scikit-learn and matplotlib are optional extras and skip likewise.
"""

from __future__ import annotations

import importlib.util
import math
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_example(name):
    """Import ``examples/<name>.py`` by path, as a fresh module."""
    path = EXAMPLES / f"{name}.py"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the examples live in the source checkout only)")
    spec = importlib.util.spec_from_file_location(f"gumbel_np_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path):
    path = pathlib.Path(path)
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"


def test_relaxation_figure(tmp_path):
    pytest.importorskip("matplotlib", reason="the figure needs matplotlib (an optional extra)")
    example = load_example("relaxation_figure")
    out = tmp_path / "relaxation.png"
    draws = 6000  # 6000 x 5 values: gumbel_np stays on its single-threaded path
    res = example.main(["--draws", str(draws), "--seed", "3", "--out", str(out)])
    assert_png(out)
    assert res["out"] == str(out)

    probs = np.asarray(res["probs"])
    k = probs.size
    uniform = np.full(k, 1.0 / k)
    exp = {float(t): np.asarray(e) for t, e in res["expectations"].items()}
    assert sorted(exp) == [0.1, 0.5, 1.0, 10.0]
    for t, e in exp.items():
        assert e.shape == (k,) and np.isclose(e.sum(), 1.0), t
        sample = np.asarray(res["samples"][t])
        assert sample.shape == (k,) and np.isclose(sample.sum(), 1.0) and (sample >= 0).all()

    # Each expectation is a mean of `draws` values in [0, 1]: its Monte Carlo
    # standard error is at most 0.5 / sqrt(6000) = 0.0065.
    # tau = 0.1: the relaxation is nearly one-hot, and its mean differs from p
    # by about 1e-3 (measured with 1e5 draws); 0.03 is that bias plus more
    # than 4 standard errors.
    assert np.abs(exp[0.1] - probs).max() < 0.03
    # tau = 10: y ~ (1 + (z - mean z) / tau) / K with z = log p + G, so
    # E[y_j] - 1/K ~ (log p_j - mean(log p)) / (K tau), at most 0.021 for these
    # probabilities (0.022 measured); 0.05 leaves room for the next-order
    # terms and the (here tiny) Monte Carlo error.
    assert np.abs(exp[10.0] - uniform).max() < 0.05
    # The two limits are told apart: at tau = 0.1 the mean is far from uniform
    # (p is 0.15 from it), at tau = 10 far from p.
    assert np.abs(exp[0.1] - uniform).max() > 0.1
    assert np.abs(exp[10.0] - probs).max() > 0.1
    # The mean moves away from p as the temperature grows.
    dist = [np.abs(exp[t] - probs).max() for t in (0.1, 0.5, 1.0, 10.0)]
    assert dist == sorted(dist)
    # The lowest temperature's sample is (nearly) the one-hot of the categorical
    # draw that uses the same noise.
    assert int(np.argmax(res["samples"][0.1])) == res["categorical_sample"]


def test_categorical_vae_gradients():
    """The example's gradients (hand-written backprop through the MLPs; the
    KL, the relaxed densities and the sampling step from gumbel_np's
    estimators and backward passes) match central differences of each
    estimator's loss or surrogate in float64."""
    example = load_example("categorical_vae")
    errors = example.gradient_check(seed=1)
    assert set(errors) == {"straight-through", "gumbel-softmax", "reinforce", "reinforce-loo",
                           "relaxed-elbo"}
    # Central differences with eps = 1e-6 in float64 are accurate to about
    # 1e-9 relative here (1e-9 to 1e-8 measured); a wrong term is O(1).
    for name, err in errors.items():
        assert err < 1e-6, (name, err)


@pytest.mark.slow
def test_categorical_vae_trains(tmp_path):
    pytest.importorskip("sklearn", reason="the digits data come from scikit-learn (an extra)")
    pytest.importorskip("matplotlib", reason="the training curves need matplotlib (an extra)")
    example = load_example("categorical_vae")
    out, results = tmp_path / "vae.png", tmp_path / "vae.md"
    res = example.main([
        "--steps", "300", "--latents", "4", "--classes", "4", "--hidden", "32",
        "--anneal-rate", "5e-3", "--anneal-every", "20", "--eval-every", "100",
        "--eval-samples", "2", "--seed", "0", "--out", str(out), "--results", str(results),
    ])
    init = res["init"]
    finals = res["results"]
    # The table's rows in the order of ESTIMATORS, relaxed-elbo the fifth.
    assert list(finals) == ["straight-through", "gumbel-softmax", "reinforce", "reinforce-loo",
                            "relaxed-elbo"]
    assert math.isfinite(init)
    # Same weights, data split and evaluation noise: one initial value for all.
    for name, run in res["runs"].items():
        assert run["init"] == init
        if name == "relaxed-elbo":  # fixed temperatures, the paper's 8-ary pair
            assert run["final_tau"] == pytest.approx(2 / 3)
        else:
            assert run["final_tau"] == pytest.approx(0.5)  # exp(-5e-3 * 280) < 0.5
    for name, value in finals.items():
        assert math.isfinite(value), name
        # Training helped: every estimator ends below the initial held-out
        # value, by at least 1 nat (2.0 to 4.7 nats measured over seeds 0-5;
        # reinforce-loo 3.7 to 4.4, relaxed-elbo 2.9 to 3.7).
        assert value < init - 1.0, (name, value, init)
    assert_png(out)
    table = results.read_text(encoding="utf-8")
    for name, value in finals.items():
        assert f"| {name} | {init:.2f} | {value:.2f} |" in table


@pytest.mark.slow
def test_discrete_choice():
    example = load_example("discrete_choice")
    n, k = 20_000, 100
    res = example.main(["--agents", str(n), "--alternatives", str(k), "--occasions", "2",
                        "--repeats", "1", "--seed", "5"])
    assert res["agents"] == n and res["alternatives"] == k
    assert res["agents_per_second"] > 0 and res["choices_per_second"] > 0
    shares, probs = np.asarray(res["shares"]), np.asarray(res["logit_probabilities"])
    assert shares.shape == probs.shape == (k,)
    assert np.isclose(shares.sum(), 1.0) and np.isclose(probs.sum(), 1.0)
    # Each share is a mean of n independent Bernoulli(p_ij) indicators, so its
    # standard error is se_j = sqrt(sum_i p_ij (1 - p_ij)) / n (at most 0.0035
    # here).  Tolerance: 5 standard errors per alternative; for 100 normal
    # deviations the chance that any exceeds 5 is about 6e-5.
    se = np.asarray(res["share_std_errors"])
    assert (np.abs(shares - probs) <= 5 * se).all()
    assert res["max_abs_z"] < 5
    assert res["max_abs_deviation"] < 5 * se.max()
    # Choices belong to agents (keyed by their ids): unchanged by shuffling and
    # sub-sampling; keyed by row position instead, a shuffle redraws most.
    assert res["shuffle_invariant"] is True
    assert res["subsample_invariant"] is True
    assert res["positional_changed_fraction"] > 0.5
    # Slates of 5 without replacement: the first entry is the single choice,
    # the second-position shares match their exact Plackett-Luce values (the
    # same 5-standard-error rule), and agents keep their slates.
    assert res["slate"] == 5 and res["slate_first_is_choice"] and res["slate_distinct"]
    assert res["second_position_max_abs_z"] < 5
    assert np.isclose(np.sum(res["second_position_probabilities"]), 1.0)
    assert res["slate_invariant"] is True
    assert res["slate_mean_log_prob"] < 0


def test_estimator_variance(tmp_path):
    """Bias and variance of every estimator on the fixed K = 10 problem, at a
    small N, and the claims the README makes from them."""
    pytest.importorskip("matplotlib", reason="the figure needs matplotlib (an optional extra)")
    example = load_example("estimator_variance")
    out, results = tmp_path / "variance.png", tmp_path / "variance.md"
    n = 10_000
    res = example.main(["--estimates", str(n), "--seed", "3", "--out", str(out),
                        "--results", str(results)])
    assert_png(out)
    rows, exact = res["rows"], np.asarray(res["exact"])

    # The exact gradient against central differences of E[f(b)] = sum_b p_b f(b).
    def expectation(logits):
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return float(p @ example.objective(np.eye(logits.size)))

    eps = 1e-6
    fd = np.array([(expectation(example.LOGITS + eps * e) - expectation(example.LOGITS - eps * e))
                   / (2 * eps) for e in np.eye(example.K)])
    np.testing.assert_allclose(exact, fd, rtol=1e-7, atol=1e-10)

    def row(name, tau=None, samples=None):
        return example.find(rows, name, tau, samples)

    reinforce = [r for r in rows if r["estimator"].startswith("REINFORCE")]
    assert len(rows) == 2 * len(example.TAUS) + 1 + 2 * len(example.SAMPLES) == 19
    # Unbiased: |mean - exact|**2 = sum of 10 independent squared normals with
    # variances summing to se**2, so P(|mean - exact| > 4 se) <= P(Z**2 > 16) =
    # 6e-5 per row (the single-coordinate case is the worst); measured: at
    # most 1.7 se over seeds 0-9 at this N.
    for r in reinforce:
        assert r["bias"] < 4 * r["se"], r
    # The relaxed estimators and straight-through are biased, by many s.e.:
    # 1500 to 1560 at tau = 5 and 44 to 46 for straight-through (measured
    # over seeds 0-9 at this N).
    for name in example.RELAXED:
        assert row(name, 5.0)["bias"] > 20 * row(name, 5.0)["se"]
    assert row("straight-through")["bias"] > 10 * row("straight-through")["se"]
    for s in example.SAMPLES:
        # The leave-one-out baseline cuts the variance (by 121 to 128 times at
        # S = 2, more at larger S, measured over seeds 0-9): at least 20x.
        plain = row("REINFORCE", samples=s)["variance"]
        loo = row("REINFORCE, loo baseline", samples=s)["variance"]
        assert loo < plain / 20, (s, plain, loo)
    for name in example.RELAXED:
        lo, hi = row(name, 0.1), row(name, 5.0)
        # Bias falls with the temperature: measured ratios 0.07 to 0.35 (0.43
        # at N = 5000); the bias at tau = 5 is the whole gradient's norm
        # (the estimate is near 0), so half of it leaves room for noise.
        assert lo["bias"] < 0.5 * hi["bias"], (name, lo, hi)
        # Variance rises as it falls: 650 to 21000 times measured.
        assert lo["variance"] > 100 * hi["variance"], (name, lo, hi)
    claims = res["claims"]
    assert claims["reinforce_unbiased"] and claims["loo_cuts_variance"]
    assert claims["bias_falls_with_tau"] and claims["variance_rises_as_tau_falls"]
    assert claims["reinforce_variance_largest"]
    table = results.read_text(encoding="utf-8")
    assert table.count("\n| ") == 1 + len(rows)  # header and one line per estimator
    assert f"{n} independent estimates" in table


def test_l0_regression_gradients():
    """The L0 objective's gradients (the squared error by hand, the gates and
    the penalty through hard_concrete_backward and hard_concrete_l0_backward)
    match central differences in float64, clipped gates among the samples."""
    example = load_example("l0_regression")
    res = example.gradient_check(seed=1)
    # Some samples clipped to 0 or 1 (their gradient is exactly 0), some not.
    assert 0 < res["clipped_fraction"] < 1
    # Central differences with eps = 1e-6 in float64: about 1e-9 relative
    # measured; a wrong term is O(1).
    assert res["max_relative_error"] < 1e-6


def test_l0_regression(tmp_path):
    """Sparse regression with hard-concrete gates against the Lasso on the
    small problem (40 features, 5 informative, 300 training rows)."""
    pytest.importorskip("sklearn", reason="the Lasso baseline needs scikit-learn (an extra)")
    pytest.importorskip("matplotlib", reason="the figure needs matplotlib (an optional extra)")
    example = load_example("l0_regression")
    out, results = tmp_path / "l0.png", tmp_path / "l0.md"
    res = example.main(["--small", "--out", str(out), "--results", str(results)])
    assert_png(out)
    k = 5
    l0, lasso = res["l0"], res["lasso"]
    assert [r["penalty"] for r in l0] == [0.01, 0.03, 0.1]
    assert len(lasso) == 12 and len(res["support"]) == k
    for r in l0 + lasso:
        assert r["tp"] + r["fp"] == r["selected"] and 0 <= r["tp"] <= k, r
        assert math.isfinite(r["mse"]) and r["mse"] > 0, r
    assert lasso[0]["selected"] == 0  # alpha_max: the smallest alpha that selects nothing
    assert res["lasso_not_converged"] == 0
    # The selection rule the example documents: the test-time gate
    # hard_concrete(log_alpha, noise=0) is above 0 exactly where
    # P(gate != 0) = hard_concrete_l0(log_alpha) is above 1/2.
    fit = res["fit"]
    p_open = example.gnp.hard_concrete_l0(fit["log_alpha"], tau=example.TAU, limits=example.LIMITS)
    np.testing.assert_array_equal(fit["gate"] > 0, p_open > 0.5)
    np.testing.assert_array_equal(fit["gate"],
                                  example.gnp.hard_concrete(fit["log_alpha"], noise=0))

    # The claims, each held over data seeds 0-19 at these settings (this
    # test runs seed 0): a stronger penalty never selects more features; at
    # lambda = 0.03 the L0 model finds at least 4 of the 5 true features
    # with at most 3 false positives (measured: 4-5 and 0-3); the best L0
    # model by held-out MSE keeps at least 4 true features and fewer false
    # positives than the best Lasso (measured 0-5 against 2-17), and its
    # held-out MSE is within 10% of the oracle's (at most 6.2% measured).
    selected = [r["selected"] for r in l0]
    assert selected == sorted(selected, reverse=True), l0
    mid = l0[1]
    assert mid["tp"] >= 4 and mid["fp"] <= 3, mid
    best_l0, best_lasso = res["best_l0"], res["best_lasso"]
    assert best_l0["tp"] >= 4, best_l0
    assert best_l0["fp"] < best_lasso["fp"], (best_l0, best_lasso)
    assert best_l0["mse"] < 1.1 * res["oracle_mse"], (best_l0, res["oracle_mse"])

    table = results.read_text(encoding="utf-8")
    assert table.count("\n| ") == 1 + len(l0) + len(lasso) + 1  # header, rows, oracle
    for r in l0:
        assert (f"| L0 | λ = {r['penalty']:.3g} | {r['selected']} | {r['tp']} | {r['fp']} "
                f"| {r['mse']:.4f} |") in table
    assert f"OLS on the true support: {res['oracle_mse']:.4f}" in table


def test_readme_blocks_match_example_outputs():
    """The README's generated blocks are what examples/update_readme.py pastes
    from the results files the examples wrote (no number typed by hand)."""
    readme = EXAMPLES.parent / "README.md"
    if not readme.is_file():
        pytest.skip("the README is not beside the examples")
    update = load_example("update_readme")
    text = readme.read_text(encoding="utf-8")
    for name, (results, _) in update.BLOCKS.items():
        markdown = (EXAMPLES / results).read_text(encoding="utf-8")
        assert update.block(name, markdown) in text, f"README block {name!r} is stale"
        assert update.paste(text, name, markdown) == text

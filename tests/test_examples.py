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
    """The hand-written backprop (MLPs, KL, and the sampling step through
    gumbel_np's backward passes) matches central differences in float64."""
    example = load_example("categorical_vae")
    errors = example.gradient_check(seed=1)
    assert set(errors) == {"straight-through", "gumbel-softmax", "reinforce"}
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
    assert set(finals) == {"straight-through", "gumbel-softmax", "reinforce"}
    assert math.isfinite(init)
    # Same weights, data split and evaluation noise: one initial value for all.
    for run in res["runs"].values():
        assert run["init"] == init
        assert run["final_tau"] == pytest.approx(0.5)  # exp(-5e-3 * 280) < 0.5
    for name, value in finals.items():
        assert math.isfinite(value), name
        # Training helped: every estimator ends below the initial held-out
        # value, by at least 1 nat (2.2 to 4.7 nats measured over seeds 0-5).
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

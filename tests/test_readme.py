"""The README's Python examples run as written."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(capsys):
    if not README.is_file():
        pytest.skip("the README is not beside the tests")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    probs = None
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
        if probs is None and "target" in namespace:
            probs = namespace["gnp"].softmax(namespace["logits"])
    # The straight-through training loop must have learned its target class.
    assert probs is not None and probs[0, namespace["target"]] > 0.9
    _check_estimator_recipes(namespace)


def _check_estimator_recipes(ns):
    """Each estimator recipe against its formula (computed here in NumPy)."""
    import scipy.special as sp

    scores, c, tau = ns["scores"], ns["c"], ns["tau"]
    assert tau == pytest.approx(max(0.5, np.exp(-3e-5 * 12_000)))
    p = sp.softmax(scores, axis=-1)

    def soft_vjp(y, t):
        return y * (c - (y * c).sum(-1, keepdims=True)) / t

    # ST-GS: the hard y is the one-hot of y_soft's argmax, the VJP the soft one's.
    np.testing.assert_array_equal(ns["y"], np.eye(10)[ns["y_soft"].argmax(-1)])
    np.testing.assert_allclose(ns["g_st_gs"], soft_vjp(ns["y_soft"], tau), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(ns["b"], ns["y_soft"].argmax(-1))
    np.testing.assert_allclose(ns["g_st"], p * (c - (p * c).sum(-1, keepdims=True)), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ns["y_relaxed"], ns["y_soft"], rtol=1e-12)  # same key: the same soft sample
    np.testing.assert_allclose(ns["g_relaxed"], soft_vjp(ns["y_relaxed"], tau), rtol=1e-12, atol=1e-15)
    draws, f = ns["draws"], c[ns["draws"]]
    onehot = np.eye(10)[draws]  # (8, 4, 10)
    score = onehot - p[:, None, :]
    np.testing.assert_allclose(ns["g_reinforce"], (f[..., None] * score).mean(1), rtol=1e-12, atol=1e-15)
    loo = (f.sum(-1, keepdims=True) - f) / 3
    np.testing.assert_allclose(ns["g_loo"], ((f - loo)[..., None] * score).mean(1), rtol=1e-12, atol=1e-14)
    assert ns["baseline"] == pytest.approx(0.1 * f.mean())
    t_b = sp.softmax(scores + ns["noise"], axis=-1)
    np.testing.assert_allclose(ns["y_bwd"], t_b, rtol=1e-12)
    np.testing.assert_allclose(ns["y_fwd"], sp.softmax((scores + ns["noise"]) / 0.3, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(ns["g_decoupled"], soft_vjp(t_b, 1.0), rtol=1e-12, atol=1e-15)
    lq = sp.log_softmax(scores, axis=-1)
    kl = (p * (lq + np.log(10))).sum(-1)
    np.testing.assert_allclose(ns["kl"], kl, rtol=1e-12)
    np.testing.assert_allclose(ns["g_kl"], p * (lq + np.log(10) - kl[:, None]), rtol=1e-10, atol=1e-14)
    _check_beyond_straight_through(ns, p, soft_vjp)


def _check_beyond_straight_through(ns, p, soft_vjp):
    """Gumbel-Rao against the soft VJPs at its conditional samples; ReinMax
    against its formula."""
    import scipy.special as sp

    gnp, scores, c, tau, b = ns["gnp"], ns["scores"], ns["c"], ns["tau"], ns["b"]
    z = gnp.conditional_gumbel(scores, b, num_samples=10, rng=4)
    assert (z.argmax(1) == b[:, None]).all()
    want = np.mean([soft_vjp(sp.softmax(z[..., d] / tau, axis=-1), tau) for d in range(10)], axis=0)
    np.testing.assert_allclose(ns["g_rao"], want, rtol=1e-10, atol=1e-14)
    pi = 0.5 * (p + np.eye(10)[b])  # tau = 1
    want = 2 * pi * (c - (pi * c).sum(-1, keepdims=True)) - 0.5 * p * (c - (p * c).sum(-1, keepdims=True))
    np.testing.assert_allclose(ns["g_reinmax"], want, rtol=1e-10, atol=1e-14)

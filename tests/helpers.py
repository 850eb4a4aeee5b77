"""Test helpers: backends, comparisons (the tolerance table is in ``conftest.py``)."""

from __future__ import annotations

import functools
import importlib
import os

import numba
import numpy as np
import pytest
import scipy.stats as st

from gumbel_np.kernels import gumbel as _kg
from gumbel_np.kernels import softmax as _ks

SOFTMAX_ROW_PATHS = {
    "columns": 2,
    "columns-last": _ks.COLUMN_ROW - 1,
    "blocks": _ks.COLUMN_ROW,
    "blocks-last": _ks.LONG_ROW - 1,
    "long-rows": _ks.LONG_ROW,
    "blocked-sums": _ks.SUM_BLOCK + 1,
}
"""A row length on each CPU path of the softmax family and at each edge,
read from the kernels' thresholds (``kernels/softmax.py``, ``_rows.py``)."""

GUMBEL_ROW_PATHS = [1, 10, _kg.SHORT_ROW - 1, _kg.SHORT_ROW, _ks.LONG_ROW + 44]
"""Row lengths of the Gumbel kernels' paths: column order below
``SHORT_ROW``, row by row from it (``kernels/gumbel.py``)."""

ALPHA = 1e-6
"""Significance of every statistical test."""
Z = float(st.norm.isf(ALPHA / 2))
"""Two-sided normal threshold at :data:`ALPHA` (about 4.89)."""


def at_one_and_two_threads(fn):
    """``(fn() on one thread, fn() on two)``, Numba's thread count restored."""
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = fn()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = fn()
    finally:
        numba.set_num_threads(before)
    return one, two


@functools.lru_cache(maxsize=None)
def cupy_skip_reason() -> str | None:
    """Why the CuPy backend cannot run here, or None when it can."""
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install
        return f"CuPy is not usable here ({type(exc).__name__}: {exc}); install the cuda12 or cuda13 extra on a machine with an NVIDIA GPU"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CuPy is installed but no CUDA device is usable ({type(exc).__name__}: {exc})"
    if n < 1:
        return "CuPy is installed but no CUDA device is present"
    return None


def oracle(module: str, install: str):
    """Import an optional oracle (PyTorch, JAX, ...) or skip the test with how
    to install it.  With ``GUMBEL_NP_REQUIRE_ORACLES=1`` (the oracle stage of
    ``.ci/run``) a missing oracle fails the test instead: a skip there would
    prove nothing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("GUMBEL_NP_REQUIRE_ORACLES") == "1":
            pytest.fail(f"the oracle {module} is required here but not importable ({exc}); {install}")
        pytest.skip(f"{module} is not installed ({install})")


class Backend:
    """Moves test data to and from one backend's arrays."""

    def __init__(self, name: str):
        self.name = name
        if name == "cupy":
            import cupy

            self.xp = cupy
        else:
            self.xp = np

    def asarray(self, a):
        return self.xp.asarray(a)

    def to_numpy(self, a):
        if self.name == "cupy":
            return self.xp.asnumpy(a)
        return np.asarray(a)

    def __repr__(self) -> str:
        return self.name


def tol(dtype) -> dict:
    """``rtol``/``atol`` of ``dtype`` from the tolerance table in ``conftest.py``."""
    from conftest import TOLERANCE

    rtol, atol = TOLERANCE[np.dtype(dtype)]
    return {"rtol": rtol, "atol": atol}


def assert_close(actual, desired, dtype, **kw):
    """Compare with the dtype's tolerance; NaNs must sit in the same places."""
    opts = tol(dtype)
    opts.update(kw)
    np.testing.assert_allclose(np.asarray(actual, np.float64), np.asarray(desired, np.float64), equal_nan=True, **opts)

"""Backend and dtype fixtures and the tolerance table (helpers are in
``helpers.py``).

Every behaviour is one test body, parametrised over backend (``numpy``;
``cupy``, skipped with the reason where no GPU is usable) and dtype.
"""

from __future__ import annotations

import os
import sys

# The tests exercise the installed package.  ``python -m pytest`` puts the
# checkout first on sys.path, where ``gumbel_np/`` lacks the ``kernels``
# subpackage that installation maps in from ``kernels/``; drop it.
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _CHECKOUT]

import numpy as np  # noqa: E402
import pytest  # noqa: E402


from helpers import Backend, cupy_skip_reason  # noqa: E402

TOLERANCE = {
    # (rtol, atol) of a float result against a float64 oracle computed from
    # the same (rounded) input.
    np.dtype(np.float16): (2e-3, 1e-3),
    np.dtype(np.float32): (2e-5, 1e-6),
    np.dtype(np.float64): (1e-12, 1e-14),
}


@pytest.fixture(
    params=[
        "numpy",
        pytest.param("cupy", marks=pytest.mark.gpu),
    ]
)
def backend(request) -> Backend:
    if request.param == "cupy":
        reason = cupy_skip_reason()
        if reason is not None:
            pytest.skip(reason)
    return Backend(request.param)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)

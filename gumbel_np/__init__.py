"""gumbel_np: Gumbel noise, categorical sampling and the Gumbel-Softmax relaxation.

Plain arrays in, plain arrays out: NumPy arrays run on Numba-compiled CPU
kernels, CuPy arrays on CUDA kernels.  Importing the package compiles nothing
and imports no GPU library.
"""

from __future__ import annotations

import os as _os

# Installation maps the top-level kernels/ folder into the package as
# gumbel_np.kernels.  When the package is imported from a source checkout
# instead (``python -m gumbel_np`` run in the checkout puts it first on
# sys.path), let the checkout's kernels/ serve.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(_os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "kernels")) and all(
    _os.path.isfile(_os.path.join(_root, *p)) for p in (("setup.cfg",), ("kernels", "__init__.py"), ("kernels", "cpu.py"))
):
    __path__.append(_root)  # type: ignore[name-defined]  # noqa: F821
del _root

# The public functions (named in __all__ through the registry, _ops.OPS).
from ._binary import (  # noqa: F401
    bernoulli,
    gumbel_sigmoid,
    gumbel_sigmoid_backward,
    hard_concrete,
    hard_concrete_backward,
    hard_concrete_l0,
    hard_concrete_l0_backward,
    logistic,
)
from ._conditional import conditional_gumbel, gumbel_rao_backward, reinmax_backward  # noqa: F401
from ._concrete import (  # noqa: F401
    binary_concrete_log_prob,
    binary_concrete_log_prob_backward,
    concrete_log_prob,
    concrete_log_prob_backward,
    exp_concrete_log_prob,
    exp_concrete_log_prob_backward,
    log_gumbel_softmax,
    log_gumbel_softmax_backward,
)
from ._estimators import (  # noqa: F401
    anneal_tau,
    categorical_entropy,
    categorical_entropy_backward,
    categorical_kl,
    categorical_kl_backward,
    categorical_log_prob,
    categorical_log_prob_backward,
    reinforce,
)
from ._gumbel import categorical, gumbel, gumbel_softmax, gumbel_softmax_backward  # noqa: F401
from ._ranking import plackett_luce_log_prob, plackett_luce_log_prob_backward  # noqa: F401
from ._ops import HOST_FUNCTIONS as _HOST_FUNCTIONS
from ._ops import OPS as _OPS
from ._softmax import (  # noqa: F401
    log_softmax,
    log_softmax_backward,
    logsumexp,
    logsumexp_backward,
    softmax,
    softmax_backward,
)

__version__ = "0.1.0.dev0"

STREAM_VERSION = 1
"""Version of the mapping from (key, domain, row id, category, draw, dtype) to noise.

Each kind of noise is a stream domain: the counter's draw word is ``draw +
(domain << 28)``, with domain 0 the Gumbel noise (the mapping of the first
release, unchanged), domain 1 the logistic noise and domain 2 the uniforms
of the conditional Gumbel samples, so that one key gives
independent noise of each kind; draw indices lie below ``2**28``.  Golden
values of every domain in the tests lock it; a change is a breaking change
announced in the changelog.
"""

from ._dask import add_dask_notes as _add_dask_notes  # noqa: E402 (imports no Dask)

_add_dask_notes(globals())

__all__ = ["STREAM_VERSION", *sorted((*_OPS, *_HOST_FUNCTIONS))]
"""The public functions are the operations of the registry (``_ops.OPS`` and
``_ops.HOST_FUNCTIONS``)."""

"""GPU backend: the backend contract of ``kernels/cpu.py`` on CuPy arrays.

Not implemented yet: every entry point raises ``NotImplementedError`` naming
the operation.  The public layer only reaches this module for CuPy inputs, so
the CPU path never imports CuPy.
"""

from __future__ import annotations

name = "cuda"


def _missing(op):
    def _raise(*args, **kwargs):
        raise NotImplementedError(f"{op}: the CUDA backend is not implemented yet")

    _raise.__name__ = op
    return _raise


logsumexp_fwd = _missing("logsumexp_fwd")
softmax_fwd = _missing("softmax_fwd")
log_softmax_fwd = _missing("log_softmax_fwd")
logsumexp_bwd = _missing("logsumexp_bwd")
softmax_bwd = _missing("softmax_bwd")
log_softmax_bwd = _missing("log_softmax_bwd")
gumbel_fwd = _missing("gumbel_fwd")

"""CPU backend: the launch contract on NumPy arrays, run by Numba kernels.

:func:`launch` takes a kernel record of the registry (``gumbel_np._ops``) and
the values of its parameters: 2-D C-contiguous ``(rows, K)`` arrays of one
float dtype (float32 or float64), preallocated outputs and scalars; the
public layer has already validated, converted and reshaped.
``kernels/cuda.py`` implements the same contract on CuPy arrays.

Kernel modules are imported on first use, so ``import gumbel_np`` compiles
nothing; each kernel compiles on its first call for a given dtype.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from typing import Any, Callable

import numpy as np

from .._ops import PARAMS, Kernel
from ._jit import as_u64

name = "cpu"

HALF_STORAGE = False
"""float16 arrays are converted to float32 before they reach this backend."""

_NO_ROWS = np.empty(0, np.int64)
"""The "no array" of an absent int64 pointer (``row_ids``)."""

_NO_DATA = {np.dtype(t): np.empty(0, t) for t in (np.float32, np.float64)}
"""The "no array" of an absent float pointer, per data dtype (the Numba
kernels are specialised on it, so it has the data's dtype)."""


_HOST = contextlib.nullcontext()


def device(func: str, *arrays: Any) -> contextlib.nullcontext:
    """The context a call runs in: the host (nothing to select)."""
    return _HOST


@functools.cache
def _kernels(module: str) -> Any:
    return importlib.import_module(f"{__package__}.{module}")


def _expression(p: str) -> str:
    """The Python expression that makes parameter ``p``'s argument of the
    Numba kernel from ``v`` (the values) and ``none`` (the data dtype's "no
    array")."""
    param = PARAMS[p]
    if param.ctype == "u32":
        return f"as_u64(v.get({p!r}, 0))"
    if p == "hard":
        return f"bool(v[{p!r}])"
    if not param.pointer:
        return f"v[{p!r}]"
    # (rows, K), (rows, N) and (rows, K, N) arrays are passed flat.
    flat = ".ravel()" if len(param.shape) >= 2 and "|" not in param.shape else ""
    if param.optional:
        absent = "_NO_ROWS" if "i64" in param.ctype else "none"
        return f"({absent} if v.get({p!r}) is None else v[{p!r}]{flat})"
    return f"v[{p!r}]{flat}"


_LAUNCHERS: dict[str, Callable[[dict], None]] = {}


def _launcher(kernel: Kernel) -> Callable[[dict], None]:
    """A function that runs ``kernel`` on a values dict: its argument list
    written out from the record once (a small call spends most of its time
    in Python, so the list is not rebuilt parameter by parameter)."""
    args = ", ".join(_expression(p) for p in kernel.cpu)
    work = "" if kernel.work == "k" else ", work=v['k'] * v['nsamples']"
    code = (
        "def launch(v):\n"
        f"    none = _NO_DATA[v[{kernel.data!r}].dtype]\n"
        f"    fn(v['rows'], v['k'], {args}{work})\n"
    )
    scope = {
        "fn": getattr(_kernels(kernel.stem), kernel.name),
        "as_u64": as_u64,
        "_NO_ROWS": _NO_ROWS,
        "_NO_DATA": _NO_DATA,
    }
    exec(compile(code, f"<launch {kernel.name}>", "exec"), scope)
    return scope["launch"]


def launch(kernel: Kernel, values: dict[str, Any]) -> None:
    """Run ``kernel`` on the rows of ``values`` (its parameters, by name)."""
    fn = _LAUNCHERS.get(kernel.name)
    if fn is None:
        fn = _LAUNCHERS[kernel.name] = _launcher(kernel)
    fn(values)

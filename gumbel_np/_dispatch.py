"""Backend selection: the only module that looks at array types.

NumPy arrays and array-likes go to the CPU backend (Numba), CuPy arrays to the
GPU backend (CUDA).  CuPy is never imported here: a CuPy array can only exist
if CuPy is already in ``sys.modules``.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any

import numpy as np

_BACKENDS: dict[str, ModuleType] = {}


def _backend(name: str) -> ModuleType:
    mod = _BACKENDS.get(name)
    if mod is None:
        mod = importlib.import_module(f"gumbel_np.kernels.{name}")
        _BACKENDS[name] = mod
    return mod


def is_cupy_array(x: Any) -> bool:
    """True when ``x`` is a CuPy array (without importing CuPy)."""
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def namespace(func: str, *arrays: Any) -> tuple[Any, ModuleType]:
    """The array namespace and backend for the arrays given to ``func``.

    ``None`` entries are ignored; Python scalars and sequences follow the
    arrays.  A mix of NumPy and CuPy arrays is a ``TypeError``.
    """
    present = [a for a in arrays if a is not None]
    if any(is_cupy_array(a) for a in present):
        if any(isinstance(a, np.ndarray) for a in present):
            kinds = ", ".join(f"{type(a).__module__}.{type(a).__name__}" for a in present)
            raise TypeError(f"{func}: NumPy and CuPy arrays cannot be mixed (got {kinds})")
        return sys.modules["cupy"], _backend("cuda")
    return np, _backend("cpu")


def like_namespace(func: str, like: Any) -> tuple[Any, ModuleType]:
    """The namespace and backend selected by a ``like=`` argument."""
    if like is None or isinstance(like, np.ndarray):
        return np, _backend("cpu")
    if is_cupy_array(like):
        return sys.modules["cupy"], _backend("cuda")
    raise TypeError(
        f"{func}: like= must be None, a NumPy array or a CuPy array, "
        f"not {type(like).__module__}.{type(like).__name__}"
    )

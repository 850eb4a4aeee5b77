"""The CUDA loader's bookkeeping, with a stand-in for CuPy, and the launch
arguments against the kernels' signatures (no GPU needed)."""

from __future__ import annotations

import re
import types

import numpy as np
import pytest

from gumbel_np._ops import KERNELS, PARAMS
from gumbel_np.kernels import cuda


class _Published(dict):
    """``cuda._functions``: checks that a kernel is published only once its
    device's SM count is known (a thread on the lock-free path reads both)."""

    def __setitem__(self, key, value):
        dev, _ = key
        assert dev in cuda._sms, "a kernel was published before its device's SM count"
        super().__setitem__(key, value)


def _fake_cupy():
    class Device:
        def __init__(self, dev=None):
            self.id = 0
            self.attributes = {"MultiProcessorCount": 132}

    class RawModule:
        def __init__(self, code, options, name_expressions):
            self.names = name_expressions

        def compile(self):
            pass

        def get_function(self, expr):
            assert expr in self.names
            return ("kernel", expr)

    return types.SimpleNamespace(cuda=types.SimpleNamespace(Device=Device), RawModule=RawModule)


def test_a_kernel_is_published_after_its_device_sm_count(monkeypatch):
    fake = _fake_cupy()
    monkeypatch.setattr(cuda, "_cupy", lambda: fake)
    monkeypatch.setattr(cuda, "_modules", {})
    monkeypatch.setattr(cuda, "_sms", {})
    monkeypatch.setattr(cuda, "_functions", _Published())
    fn, sms = cuda._kernel("softmax_fwd", np.dtype(np.float32))
    assert fn == ("kernel", "softmax_fwd<float>") and sms == 132
    assert cuda._kernel("softmax_fwd", np.dtype(np.float32)) == (fn, 132)  # the lock-free path


def _cuda_signature(text: str, name: str) -> list[str]:
    """The parameter types of ``__global__ ... name(...)`` in ``text``, in the
    registry's spelling (``const S*``, ``T*``, ``i64``, ``u32``, ``int``)."""
    match = re.search(r"__global__\s+void\s+\w+\s+" + name + r"\s*\(([^)]*)\)", text)
    assert match, f"no __global__ {name} in the source"
    types = []
    for decl in match.group(1).split(","):
        decl = re.sub(r"\b(__restrict__|typename|gnp::)\s*", "", " ".join(decl.split()))
        decl = decl.replace("Storage<S>::T", "T")
        types.append(re.sub(r"\s*\w+$", "", decl).replace(" *", "*").strip())
    return types


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_registry_matches_the_cuda_signature(name):
    """CuPy passes the argument tuple to the kernel unchecked: the registry's
    CUDA parameter list must have the source's C types, in order."""
    kernel = KERNELS[name]
    assert _cuda_signature(cuda.source(kernel.stem), name) == [PARAMS[p].ctype for p in kernel.cuda]


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_launch_plan_gives_exact_c_types(name):
    """Every scalar of a launch is the NumPy scalar of its C type, and the
    geometry parameters are set: a row of 40 on 3 rows, 2 draws."""
    kernel = KERNELS[name]
    c_types = {"i64": np.int64, "u32": np.uint32, "int": np.int32, "double": np.float64}
    args = {p: object() for p in kernel.cuda if PARAMS[p].pointer}
    args.update(rows=3, k=40, nsamples=2, k0=2**32 + 5, k1=7, noise_mode=1, hard=True, tau_stride=1)
    grid, block, argv = cuda.launch_plan(kernel, args, np.dtype(np.float32), sms=2)
    assert len(argv) == len(kernel.cuda) and grid[0] >= 1 and block[0] >= 32
    for p, v in zip(kernel.cuda, argv):
        if PARAMS[p].pointer:
            assert v is args[p]
        else:
            assert type(v) is c_types[PARAMS[p].ctype], p
    if "k0" in kernel.cuda:
        assert argv[kernel.cuda.index("k0")] == 5  # the low 32 bits
    if "lanes" in kernel.cuda:
        assert argv[kernel.cuda.index("lanes")] in (1, 2, 4, 8, 16, 32)


def test_a_call_runs_on_the_device_of_its_arrays(monkeypatch):
    """``cuda.device``: the device that holds the call's CuPy arrays (the
    current one when there are none), a ValueError for several."""

    class Array:
        def __init__(self, dev):
            self.device = types.SimpleNamespace(id=dev)

    fake = types.SimpleNamespace(ndarray=Array, cuda=types.SimpleNamespace(Device=lambda dev=None: ("device", dev)))
    monkeypatch.setattr(cuda, "_cupy_module", fake)
    assert cuda.device("f", Array(1), None, 2.0, Array(1)) == ("device", 1)
    assert cuda.device("f", None, [1, 2]) == ("device", None)
    with pytest.raises(ValueError, match=r"f: the arrays lie on different CUDA devices \[0, 1\]"):
        cuda.device("f", Array(0), Array(1))


def test_noise_modes_match_the_registry():
    """``gnp::NOISE_*`` (rows.cuh, in the Gumbel module's text) are the numbers
    the launch passes as ``noise_mode`` (``_ops.NOISE_*``)."""
    from gumbel_np import _ops

    text = cuda.source("gumbel")
    found = dict(re.findall(r"\b(NOISE_DRAW|NOISE_ARRAY|NOISE_NONE)\s*=\s*(\d+)\b", text))
    assert {name: int(value) for name, value in found.items()} == {
        "NOISE_DRAW": _ops.NOISE_DRAW,
        "NOISE_ARRAY": _ops.NOISE_ARRAY,
        "NOISE_NONE": _ops.NOISE_NONE,
    }

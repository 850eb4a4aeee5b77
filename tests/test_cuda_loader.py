"""The CUDA loader's bookkeeping, with a stand-in for CuPy (no GPU needed)."""

from __future__ import annotations

import types

import numpy as np

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

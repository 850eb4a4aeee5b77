"""The GPU draws the CPU's streams: same noise (to a few ulp), same
categorical indices (up to near-ties).  Skipped with the reason where no GPU
is usable."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cupy_skip_reason

import gumbel_np as gnp

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cupy():
    reason = cupy_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    import cupy

    return cupy


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(1000, 10), (64, 1000), (3, 50257)])
def test_noise_matches_cpu(cupy, dt, shape):
    ids = np.random.default_rng(0).permutation(shape[0]) * 7919
    cpu = gnp.gumbel(shape, rng=77, dtype=dt, row_ids=ids)
    gpu = gnp.gumbel(shape, rng=77, dtype=dt, row_ids=cupy.asarray(ids), like=cupy.zeros(1))
    assert isinstance(gpu, cupy.ndarray)
    # "A few ulp" at the scale max(|G|, 1): near G = 0 (u near 1/e) one ulp of
    # the inner log is many ulps of the tiny result, for any two accurate logs.
    scale = np.spacing(np.maximum(np.abs(cpu), 1).astype(dt))
    assert np.max(np.abs(cupy.asnumpy(gpu).astype(np.float64) - cpu) / scale) <= 4


@pytest.mark.slow
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
def test_categorical_matches_cpu_on_a_million_rows(cupy, dt):
    logits = np.random.default_rng(1).normal(size=(1_000_000, 16)).astype(dt)
    cpu = gnp.categorical(logits, rng=5)
    gpu = cupy.asnumpy(gnp.categorical(cupy.asarray(logits), rng=5))
    mismatch = np.flatnonzero(cpu != gpu)
    if mismatch.size:
        # Only near-ties may differ (noise agrees to a few ulp, not bit for bit).
        z = logits[mismatch].astype(np.float64) + gnp.gumbel(logits.shape, rng=5, dtype=dt)[mismatch]
        a = z[np.arange(mismatch.size), cpu[mismatch]]
        b = z[np.arange(mismatch.size), gpu[mismatch]]
        assert np.all(np.abs(a - b) <= 16 * np.finfo(dt).eps * np.maximum(1.0, np.abs(a)))
    assert mismatch.size <= 10


def test_gumbel_softmax_matches_cpu(cupy, dtype):
    logits = np.random.default_rng(2).normal(size=(500, 33)).astype(dtype)
    for hard in (False, True):
        cpu = gnp.gumbel_softmax(logits, tau=0.7, rng=9, hard=hard)
        gpu = cupy.asnumpy(gnp.gumbel_softmax(cupy.asarray(logits), tau=0.7, rng=9, hard=hard))
        if hard:
            assert (cpu != gpu).any(axis=-1).sum() <= 1
        else:
            np.testing.assert_allclose(gpu, cpu, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-7)


def test_float32_subnormals_flush_on_the_gpu(cupy):
    """Documented GPU behaviour (README, "GPU"): CuPy's RawModule compiles
    with flush-to-zero, so a float32 result that is subnormal on the CPU is 0
    on the GPU; float64 keeps its subnormals on both."""
    x = np.array([0.0, -90.0], np.float32)
    cpu = gnp.softmax(x)
    assert 0 < cpu[1] < np.finfo(np.float32).tiny
    assert cupy.asnumpy(gnp.softmax(cupy.asarray(x)))[1] == 0
    x64 = np.array([0.0, -720.0])
    assert cupy.asnumpy(gnp.softmax(cupy.asarray(x64)))[1] == gnp.softmax(x64)[1] > 0


def test_a_call_runs_on_its_arrays_device(cupy):
    """The result lies on the device of the inputs, whatever the current
    device; arrays on two devices are refused."""
    n = cupy.cuda.runtime.getDeviceCount()
    last = n - 1
    with cupy.cuda.Device(last):
        x = cupy.asarray(np.random.default_rng(0).normal(size=(4, 9)))
    with cupy.cuda.Device(0):
        y = gnp.softmax(x)
        g = gnp.gumbel((2, 3), rng=1, like=x)
    assert y.device.id == last and g.device.id == last
    np.testing.assert_allclose(cupy.asnumpy(y), gnp.softmax(cupy.asnumpy(x)), rtol=1e-12)
    if n > 1:
        with cupy.cuda.Device(0):
            other = cupy.ones((4, 9))
        with pytest.raises(ValueError, match="softmax_backward: the arrays lie on different CUDA devices"):
            gnp.softmax_backward(other, y)

"""``out=``: every array-returning function writes into a given array, with
the same values as without it, whatever the array's layout, and rejects an
unfit one with a message naming the function and the value."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from helpers import cupy_skip_reason

import gumbel_np as gnp
from gumbel_np._cases import _public, calls
from gumbel_np._validation import output


def _takes_out(op: str) -> bool:
    return "out" in inspect.signature(getattr(gnp, op)).parameters


def _cases(xp, dtype):
    """label -> (call taking out=, shape of the result, dtype of the result),
    for every example call of the registry (``gumbel_np._cases``), on a
    category axis in the middle."""
    table = {}
    for call in calls((7, 40, 3), dtype, xp, axis=1, seed=5):
        if not _takes_out(call.op):
            continue  # returns several arrays (test_functions_without_out_return_tuples)
        res = call()
        res = res[0] if isinstance(res, tuple) else res
        table[call.label] = (call, res.shape, np.dtype(res.dtype))
    return table


NAMES = list(_cases(np, np.float64))


def test_functions_without_out_return_tuples():
    # DESIGN 3.1: every function that returns one array takes out=.
    without = set()
    for call in calls((3, 4), np.float64):
        if not _takes_out(call.op):
            without.add(call.op)
            res = call()
            assert isinstance(res, tuple) and len(res) == 2, call.label
    # The gradients with respect to two inputs (a divergence, a density).
    assert without == {
        "categorical_kl_backward",
        "exp_concrete_log_prob_backward",
        "concrete_log_prob_backward",
        "binary_concrete_log_prob_backward",
    }


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("name", NAMES)
def test_out_matches_the_allocating_call(backend, dtype, name, order):
    call, shape, rdtype = _cases(backend.xp, dtype)[name]
    want = backend.to_numpy(call())
    out = backend.xp.full(shape, -7, dtype=rdtype, order=order)
    got = call(out=out)
    assert got is out
    np.testing.assert_array_equal(backend.to_numpy(out), want)


@pytest.mark.parametrize("name", NAMES)
def test_out_strided_view(backend, name):
    call, shape, rdtype = _cases(backend.xp, np.float64)[name]
    want = backend.to_numpy(call())
    big = backend.xp.zeros(shape[:-1] + (2 * shape[-1],), dtype=rdtype)
    view = big[..., ::2]
    assert call(out=view) is view
    np.testing.assert_array_equal(backend.to_numpy(view), want)
    assert not backend.to_numpy(big[..., 1::2]).any()


@pytest.mark.parametrize(
    "func",
    [gnp.softmax, gnp.log_softmax],
    ids=["softmax", "log_softmax"],
)
def test_out_may_be_the_input(backend, dtype, func):
    x = backend.asarray(np.random.default_rng(1).normal(size=(50, 30)).astype(dtype))
    want = backend.to_numpy(func(x))
    assert func(x, out=x) is x
    np.testing.assert_array_equal(backend.to_numpy(x), want)


@pytest.mark.parametrize("which", ["grad", "y"])
def test_backward_out_may_be_an_input(backend, which):
    rng = np.random.default_rng(2)
    x = backend.asarray(rng.normal(size=(20, 300)))
    g = backend.asarray(rng.normal(size=(20, 300)))
    ly = gnp.log_softmax(x)
    want = backend.to_numpy(gnp.log_softmax_backward(g, ly))
    target = g if which == "grad" else ly
    assert gnp.log_softmax_backward(g, ly, out=target) is target
    np.testing.assert_array_equal(backend.to_numpy(target), want)


def test_out_float16(backend):
    x = backend.asarray(np.random.default_rng(3).normal(size=(9, 12)).astype(np.float16))
    out = backend.xp.empty(x.shape, np.float16)
    assert gnp.softmax(x, out=out) is out
    np.testing.assert_array_equal(backend.to_numpy(out), backend.to_numpy(gnp.softmax(x)))


def test_out_errors(backend):
    xp = backend.xp
    x = backend.asarray(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"softmax: out must have the result shape \(4, 5\), got shape \(5, 4\)"):
        gnp.softmax(x, out=xp.empty((5, 4), np.float32))
    with pytest.raises(TypeError, match="softmax: out must have the result dtype float32, got dtype float64"):
        gnp.softmax(x, out=xp.empty((4, 5), np.float64))
    with pytest.raises(TypeError, match=r"logsumexp: out must be a plain \w+\.ndarray, not builtins.list"):
        gnp.logsumexp(x, out=[0.0] * 4)
    with pytest.raises(TypeError, match="categorical: out must have the result dtype int64, got dtype int32"):
        gnp.categorical(x, rng=0, out=xp.empty(4, np.int32))
    with pytest.raises(ValueError, match=r"gumbel: out must have the result shape \(4, 5\), got shape \(4,\)"):
        gnp.gumbel((4, 5), rng=0, out=xp.empty(4, np.float32))


def test_out_read_only():
    out = np.empty((4, 5))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="softmax: out is read-only"):
        gnp.softmax(np.zeros((4, 5)), out=out)


@pytest.mark.gpu
def test_out_of_another_array_type():
    reason = cupy_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    import cupy

    with pytest.raises(TypeError, match="softmax: NumPy and CuPy arrays cannot be mixed"):
        gnp.softmax(cupy.zeros((2, 3)), out=np.empty((2, 3)))


def test_out_is_written_in_place_when_it_can_be():
    """The kernel writes into ``out`` itself when it is C-contiguous along the
    axis and overlaps no input; otherwise into a temporary copied over."""
    x = np.zeros((6, 8))
    out = np.empty((6, 8))
    buf = output(np, out, "f", (6, 8), x.dtype, x.dtype, (6, 8), 1, (x,))
    assert np.shares_memory(buf, out)
    moved = np.empty((8, 6)).T  # axis 0 is last in memory order
    assert np.shares_memory(output(np, moved, "f", (6, 8), x.dtype, x.dtype, (8, 6), 0, (x,)), moved)
    assert not np.shares_memory(output(np, x, "f", (6, 8), x.dtype, x.dtype, (6, 8), 1, (x,)), x)
    fortran = np.empty((6, 8), order="F")
    assert not np.shares_memory(output(np, fortran, "f", (6, 8), x.dtype, x.dtype, (6, 8), 1, (x,)), fortran)


@pytest.mark.parametrize("label", [c.label for c in calls((2, 3)) if _takes_out(c.op)])
def test_out_on_the_small_call_path(dtype, label):
    """Small C-contiguous calls on the last axis write a fitting ``out`` on
    their short way (``_ops._small_call``): the same values, ``out`` itself
    returned; an ``out`` that overlaps an input goes the long way, with the
    same result."""
    call = next(c for c in calls((6, 9), dtype, np, axis=-1, seed=8) if c.label == label)
    want = call()
    want = want[0] if isinstance(want, tuple) else want
    out = np.full(want.shape, -7, dtype=want.dtype)
    got = call(out=out)
    assert (got[0] if isinstance(got, tuple) else got) is out
    np.testing.assert_array_equal(out, want)
    data = call.arrays[-1]
    if not isinstance(data, tuple) and want.shape == data.shape and want.dtype == data.dtype:
        same = data.copy()
        arrays = call.arrays[:-1] + (same,)
        res = _public(call.op, *arrays, axis=-1, **call.options, out=same)
        assert (res[0] if isinstance(res, tuple) else res) is same
        np.testing.assert_array_equal(same, want)


@pytest.mark.parametrize("label", [c.label for c in calls((2, 3))])
def test_short_way_is_the_long_way(dtype, label, monkeypatch):
    """A small call that qualifies takes ``_ops._small_call`` (the long
    pipeline is not entered) and gives the long way's result bit for bit
    (with the short way switched off)."""
    from gumbel_np import _ops

    call = next(c for c in calls((6, 9), dtype, np, axis=-1, seed=8) if c.label == label)
    op = _ops.OPS[call.op]
    entered = []
    real = _ops._call
    monkeypatch.setattr(_ops, "_call", lambda *a, **k: entered.append(1) or real(*a, **k))
    short = call()
    params = inspect.signature(getattr(gnp, call.op)).parameters
    at_defaults = all(
        name in ("tau", "hard", "rng") or value is params[name].default for name, value in call.options.items()
    )
    if op.short and op.result != "noise" and at_defaults:
        assert not entered, f"{label}: went the long way"
    monkeypatch.setattr(_ops, "_small_call", lambda *a, **k: None)
    entered.clear()
    long = call()
    assert entered
    for s, g in zip(short if isinstance(short, tuple) else (short,), long if isinstance(long, tuple) else (long,)):
        np.testing.assert_array_equal(s, g)

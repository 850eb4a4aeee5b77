"""logsumexp / softmax / log_softmax and their backward passes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sp
from helpers import SOFTMAX_ROW_PATHS, assert_close
from numpy.exceptions import AxisError

import gumbel_np as gnp

FORWARD = {
    "softmax": (gnp.softmax, sp.softmax),
    "log_softmax": (gnp.log_softmax, sp.log_softmax),
    "logsumexp": (gnp.logsumexp, sp.logsumexp),
}


def _inputs(seed=0):
    """Named float64 test arrays of shape (rows, K), the hard cases included."""
    rng = np.random.default_rng(seed)
    wide = rng.uniform(-1000, 1, size=(6, 37))
    masked = rng.normal(size=(5, 19))
    masked[rng.random(masked.shape) < 0.4] = -np.inf
    masked[:, 3] = 0.0  # every row keeps a finite entry
    special = rng.normal(size=(4, 9))
    special[1] = -np.inf  # all -inf row
    special[2, 4] = np.nan  # NaN row
    return {
        "normal": rng.normal(scale=3.0, size=(8, 33)),
        "wide": wide,
        "huge": np.concatenate([np.full((3, 1), 1e30), rng.normal(size=(3, 6)) * 1e29], axis=1),
        "masked": masked,
        "special": special,
        "short": rng.normal(size=(300, 3)),
        "long": rng.normal(size=(3, 5000)),
    }


@pytest.mark.parametrize("name", list(FORWARD))
@pytest.mark.parametrize("case", list(_inputs()))
def test_forward_matches_scipy(backend, dtype, name, case):
    ours, ref = FORWARD[name]
    x = _inputs()[case].astype(dtype)
    with np.errstate(all="ignore"):
        want = ref(x.astype(np.float64), axis=-1)
    got = backend.to_numpy(ours(backend.asarray(x)))
    assert got.dtype == dtype
    assert got.shape == want.shape
    if name == "log_softmax":
        # scipy keeps a finite reference where x - max overflows float32;
        # compare relative to the row's scale.
        assert_close(got, want, dtype, atol=1e-6 * max(1.0, np.nanmax(np.abs(want[np.isfinite(want)]), initial=1.0)))
    else:
        assert_close(got, want, dtype)


@pytest.mark.parametrize("k", list(SOFTMAX_ROW_PATHS.values()), ids=list(SOFTMAX_ROW_PATHS))
@pytest.mark.parametrize("name", list(FORWARD))
def test_special_rows(backend, dtype, name, k):
    # One row length per CPU row path and edge (helpers.SOFTMAX_ROW_PATHS).
    x = np.full((6, k), -np.inf, dtype)  # row 0: all -inf
    x[1, :2] = [np.nan, 0.0]
    x[2, :2] = [np.inf, 0.0]
    x[3, 0] = 0.0
    x[4, :2] = [np.inf, np.nan]
    x[5, :2] = [-np.nan, 0.0]  # a NaN with the sign bit set
    assert np.signbit(x[5, 0])
    got = backend.to_numpy(FORWARD[name][0](backend.asarray(x)))
    if name == "logsumexp":
        assert got[0] == -np.inf and got[2] == np.inf and got[3] == 0.0
        assert np.isnan(got[[1, 4, 5]]).all()
    else:
        assert np.isnan(got[[0, 1, 2, 4, 5]]).all()
        want = [1.0] + [0.0] * (k - 1) if name == "softmax" else [0.0] + [-np.inf] * (k - 1)
        assert got[3].tolist() == want


@pytest.mark.parametrize("name", list(FORWARD))
def test_axis_and_layouts(backend, dtype, name):
    ours, ref = FORWARD[name]
    rng = np.random.default_rng(2)
    base = rng.normal(size=(4, 5, 6)).astype(dtype)
    views = {
        "fortran": np.asfortranarray(base),
        "strided": rng.normal(size=(8, 5, 12)).astype(dtype)[::2, :, ::2],
        "readonly": base.copy(),
    }
    views["readonly"].setflags(write=False)
    for axis in (0, 1, -1, -2):
        want = ref(base.astype(np.float64), axis=axis)
        assert_close(backend.to_numpy(ours(backend.asarray(base), axis=axis)), want, dtype)
        for v in views.values():
            want = ref(np.asarray(v, np.float64), axis=axis)
            assert_close(backend.to_numpy(ours(backend.asarray(v), axis=axis)), want, dtype)


def test_logsumexp_keepdims(backend, dtype):
    x = np.random.default_rng(3).normal(size=(3, 4, 5)).astype(dtype)
    got = backend.to_numpy(gnp.logsumexp(backend.asarray(x), axis=1, keepdims=True))
    assert got.shape == (3, 1, 5)
    assert_close(got, sp.logsumexp(x.astype(np.float64), axis=1, keepdims=True), dtype)


@pytest.mark.parametrize("name", list(FORWARD))
def test_zero_size(backend, dtype, name):
    ours, _ = FORWARD[name]
    for shape in [(0, 5), (3, 0), (0, 0)]:
        x = backend.asarray(np.empty(shape, dtype))
        got = backend.to_numpy(ours(x))
        want_shape = shape[:-1] if name == "logsumexp" else shape
        assert got.shape == want_shape and got.dtype == dtype
        if name == "logsumexp" and shape == (3, 0):
            assert (got == -np.inf).all()


@pytest.mark.parametrize("name", list(FORWARD))
def test_dtype_rules(name):
    ours, ref = FORWARD[name]
    x16 = np.array([[0.5, -1.0, 2.0]], np.float16)
    got = ours(x16)
    assert got.dtype == np.float16
    assert_close(got, ref(x16.astype(np.float64), axis=-1), np.float16)
    for ints in (np.array([[1, 2, 3]], np.int32), np.array([[True, False]])):
        got = ours(ints)
        assert got.dtype == np.float64
        assert_close(got, ref(ints.astype(np.float64), axis=-1), np.float64)
    assert_close(ours([[1.0, 2.0]]), ref(np.array([[1.0, 2.0]]), axis=-1), np.float64)


def _central_difference(f, x, g, h=1e-6):
    """Gradient of sum(g * f(x)) by central differences (float64)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        grad[i] = (np.sum(g * f(xp)) - np.sum(g * f(xm))) / (2 * h)
    return grad


@pytest.mark.parametrize("axis", [-1, 0])
def test_backward_central_differences(backend, axis):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 5))
    xb = backend.asarray(x)
    cases = [
        (gnp.softmax, lambda g: gnp.softmax_backward(g, gnp.softmax(xb, axis=axis), axis=axis), x.shape),
        (gnp.log_softmax, lambda g: gnp.log_softmax_backward(g, gnp.log_softmax(xb, axis=axis), axis=axis), x.shape),
        (gnp.logsumexp, lambda g: gnp.logsumexp_backward(g, xb, axis=axis), gnp.logsumexp(x, axis=axis).shape),
    ]
    for f, vjp, gshape in cases:
        g = rng.normal(size=gshape)
        want = _central_difference(lambda v, f=f: f(v, axis=axis), x, g)
        got = backend.to_numpy(vjp(backend.asarray(g)))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_logsumexp_backward_keepdims_and_broadcast(backend, dtype):
    x = np.random.default_rng(5).normal(size=(2, 3, 4)).astype(dtype)
    g = np.random.default_rng(6).normal(size=(2, 1, 4)).astype(dtype)
    got = backend.to_numpy(gnp.logsumexp_backward(backend.asarray(g), backend.asarray(x), axis=1, keepdims=True))
    assert_close(got, g * sp.softmax(x.astype(np.float64), axis=1), dtype)
    got = backend.to_numpy(gnp.logsumexp_backward(backend.asarray(np.asarray(2.0, dtype)), backend.asarray(x), axis=1))
    assert_close(got, 2.0 * sp.softmax(x.astype(np.float64), axis=1), dtype)


def test_backward_formulas_all_dtypes(backend, dtype):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(70, 33)).astype(dtype)
    g = rng.normal(size=x.shape).astype(dtype)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    y = sp.softmax(x64, axis=-1)
    ly = sp.log_softmax(x64, axis=-1)
    xb, gb = backend.asarray(x), backend.asarray(g)
    assert_close(backend.to_numpy(gnp.softmax_backward(gb, backend.asarray(y.astype(dtype)))),
                 y * (g64 - (g64 * y).sum(-1, keepdims=True)), dtype)
    assert_close(backend.to_numpy(gnp.log_softmax_backward(gb, backend.asarray(ly.astype(dtype)))),
                 g64 - np.exp(ly) * g64.sum(-1, keepdims=True), dtype)
    assert_close(backend.to_numpy(gnp.logsumexp_backward(gb[:, 0], xb)), g64[:, :1] * y, dtype)


@pytest.mark.parametrize("name", list(FORWARD))
def test_errors(name):
    ours, _ = FORWARD[name]
    with pytest.raises(AxisError, match=rf"^{name}: axis 2 is out of bounds"):
        ours(np.zeros((2, 3)), axis=2)
    with pytest.raises(AxisError, match=rf"^{name}: axis 1 is out of bounds for array of dimension 0"):
        ours(np.float64(1.0), axis=1)  # a 0-d input is one category: axis 0 or -1
    with pytest.raises(TypeError, match=rf"^{name}: x has unsupported dtype complex128"):
        ours(np.zeros((2, 3), complex))
    with pytest.raises(TypeError, match=rf"^{name}: x has unsupported dtype object"):
        ours(np.array([[1, None]], dtype=object))
    with pytest.raises(TypeError, match=rf"^{name}: axis must be an integer, not 1.5"):
        ours(np.zeros((2, 3)), axis=1.5)


@pytest.mark.parametrize(
    "func,args",
    [
        (gnp.softmax_backward, (np.zeros((2, 3)), np.zeros((2, 4)))),
        (gnp.log_softmax_backward, (np.zeros((2, 3)), np.zeros((3, 3)))),
        (gnp.logsumexp_backward, (np.zeros(3), np.zeros((2, 3)))),
    ],
)
def test_backward_shape_errors(func, args):
    with pytest.raises(ValueError, match=rf"^{func.__name__}: "):
        func(*args)

"""Inputs at the edges of the API: ``out=`` subclasses, 0-d arrays, the
temperature in the logits' rank, and the bad-input vocabulary of DESIGN
section 5 (one test per row of the README's table that these cases add)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import gumbel_np as gnp

X = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)


# -- out= accepts plain arrays only ------------------------------------------

OUT_CALLS = {
    "gumbel": lambda out: gnp.gumbel((4, 8), rng=0, out=out),
    "softmax": lambda out: gnp.softmax(X, out=out),
    "log_softmax_backward": lambda out: gnp.log_softmax_backward(X, gnp.log_softmax(X), out=out),
    "logsumexp": lambda out: gnp.logsumexp(X, keepdims=True, out=out),
    "categorical": lambda out: gnp.categorical(X, rng=0, num_samples=3, out=out),
}
OUT_SHAPES = {"logsumexp": ((4, 1), np.float32), "categorical": ((4, 3), np.int64)}


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
@pytest.mark.parametrize("name", sorted(OUT_CALLS))
@pytest.mark.parametrize("kind", ["matrix", "masked", "subclass"])
def test_out_subclass_is_refused(name, kind):
    shape, dtype = OUT_SHAPES.get(name, ((4, 8), np.float32))
    base = np.zeros(shape, dtype)

    class Sub(np.ndarray):
        pass

    out = {"matrix": np.asmatrix, "masked": np.ma.masked_array, "subclass": lambda a: a.view(Sub)}[kind](base)
    with pytest.raises(TypeError, match=rf"^{name}: out must be a plain numpy.ndarray, not a subclass of it: got "):
        OUT_CALLS[name](out)
    # The documented way: a base-class view of the same memory.
    res = OUT_CALLS[name](out.view(np.ndarray))
    np.testing.assert_array_equal(np.asarray(res), OUT_CALLS[name](None))


# -- 0-d inputs are one category -------------------------------------------


def test_zero_dimensional_inputs(backend, dtype):
    x = backend.asarray(np.asarray(3.0, dtype))
    to = backend.to_numpy
    cases = {
        "softmax": (gnp.softmax(x), 1.0),
        "log_softmax": (gnp.log_softmax(x), 0.0),
        "logsumexp": (gnp.logsumexp(x), 3.0),
        "logsumexp keepdims": (gnp.logsumexp(x, keepdims=True), 3.0),
        "gumbel_softmax": (gnp.gumbel_softmax(x, rng=0), 1.0),
        "gumbel_softmax hard": (gnp.gumbel_softmax(x, rng=0, hard=True), 1.0),
        "softmax_backward": (gnp.softmax_backward(x, x * 0 + 1), 0.0),
        "log_softmax_backward": (gnp.log_softmax_backward(x, x * 0), 0.0),
        "logsumexp_backward": (gnp.logsumexp_backward(x, x), 3.0),
        "gumbel_softmax_backward": (gnp.gumbel_softmax_backward(x, x * 0 + 1), 0.0),
    }
    for name, (res, want) in cases.items():
        assert res.shape == (), name
        assert res.dtype == dtype, name
        assert float(to(res)) == want, name
    c = gnp.categorical(x, rng=0)
    assert c.shape == () and c.dtype == np.int64 and int(to(c)) == 0
    assert gnp.categorical(x, rng=0, num_samples=5).tolist() == [0] * 5
    assert gnp.softmax(x, axis=0).shape == () and gnp.softmax(x, axis=-1).shape == ()
    with pytest.raises(np.exceptions.AxisError):
        gnp.softmax(x, axis=1)


def test_zero_dimensional_noise():
    g = gnp.gumbel((), rng=0, dtype=np.float64)
    assert g.shape == () and g.dtype == np.float64
    # The noise of the single category of row 0: the first element of any
    # row-0 noise of the same key.
    assert float(g) == float(gnp.gumbel((1, 5), rng=0, dtype=np.float64)[0, 0])
    assert gnp.gumbel((), rng=0, row_ids=np.int64(7)) == gnp.gumbel((8, 1), rng=0)[7, 0]
    dl, dtau = gnp.gumbel_softmax_backward(np.float64(1.0), np.float64(1.0), tau=0.5, tau_grad=True)
    assert dl.shape == () and dtau.shape == () and float(dtau) == 0.0


# -- tau in the logits' rank -------------------------------------------------


def test_tau_in_the_logits_rank(backend, dtype):
    rng = np.random.default_rng(1)
    logits = backend.asarray(rng.normal(size=(30, 6)).astype(dtype))
    t = rng.uniform(0.3, 2.0, size=30).astype(dtype)
    per_row = gnp.gumbel_softmax(logits, tau=backend.asarray(t), rng=2)
    ranked = gnp.gumbel_softmax(logits, tau=backend.asarray(t[:, None]), rng=2)
    np.testing.assert_array_equal(backend.to_numpy(ranked), backend.to_numpy(per_row))
    # Along axis 0 the temperature has length 1 along axis 0.
    along0 = gnp.gumbel_softmax(backend.asarray(backend.to_numpy(logits).T), tau=backend.asarray(t[None, :]), axis=0, rng=2)
    np.testing.assert_array_equal(backend.to_numpy(along0).T, backend.to_numpy(per_row))
    g = backend.asarray(rng.normal(size=(30, 6)).astype(dtype))
    dl, dtau = gnp.gumbel_softmax_backward(g, per_row, tau=backend.asarray(t[:, None]), tau_grad=True)
    dl1, dtau1 = gnp.gumbel_softmax_backward(g, per_row, tau=backend.asarray(t), tau_grad=True)
    assert dtau.shape == (30, 1)
    np.testing.assert_array_equal(backend.to_numpy(dtau)[:, 0], backend.to_numpy(dtau1))
    np.testing.assert_array_equal(backend.to_numpy(dl), backend.to_numpy(dl1))
    _, dtau_all = gnp.gumbel_softmax_backward(g, per_row, tau=backend.asarray(np.ones((1, 1), dtype)), tau_grad=True)
    _, dtau_rows = gnp.gumbel_softmax_backward(g, per_row, tau=backend.asarray(np.ones(30, dtype)), tau_grad=True)
    assert dtau_all.shape == (1, 1)
    assert_close(backend.to_numpy(dtau_all)[0, 0], backend.to_numpy(dtau_rows).astype(np.float64).sum(), dtype, rtol=1e-4)
    with pytest.raises(ValueError, match=r"tau of shape \(30, 6\) does not broadcast to the batch shape \(30,\)"):
        gnp.gumbel_softmax(logits, tau=backend.asarray(np.ones((30, 6), dtype)), rng=0)


# -- the bad-input vocabulary ------------------------------------------------


@pytest.mark.parametrize("bad", [0j, "0", False, np.array([True, False]), None])
def test_noise_of_a_wrong_kind(bad):
    x = np.zeros((2, 3))
    if bad is None:
        bad = np.zeros((2, 3), complex)
    with pytest.raises(TypeError, match=r"^gumbel_softmax: noise must be 0 or a real array of the logits' shape"):
        gnp.gumbel_softmax(x, noise=bad)


FLAG_CALLS = {
    ("gumbel_softmax", "hard"): lambda v: gnp.gumbel_softmax(np.zeros((2, 3)), rng=0, hard=v),
    ("gumbel_softmax", "return_soft"): lambda v: gnp.gumbel_softmax(np.zeros((2, 3)), rng=0, return_soft=v),
    ("logsumexp", "keepdims"): lambda v: gnp.logsumexp(np.zeros((2, 3)), keepdims=v),
    ("logsumexp_backward", "keepdims"): lambda v: gnp.logsumexp_backward(np.float64(1.0), np.zeros((2, 3)), keepdims=v),
    ("gumbel_softmax_backward", "tau_grad"): lambda v: gnp.gumbel_softmax_backward(
        np.zeros((2, 3)), np.full((2, 3), 1 / 3), tau_grad=v
    ),
}


@pytest.mark.parametrize("where", sorted(FLAG_CALLS), ids=lambda w: f"{w[0]}-{w[1]}")
@pytest.mark.parametrize("value", ["no", 2, None, np.array([True, False])], ids=["str", "int", "None", "array"])
def test_flags_must_be_bools(where, value):
    func, name = where
    with pytest.raises(TypeError, match=rf"^{func}: {name} must be True or False, not "):
        FLAG_CALLS[where](value)
    FLAG_CALLS[where](np.True_)  # NumPy bools are bools


def test_bool_axis_and_tau_are_refused():
    with pytest.raises(TypeError, match=r"^softmax: axis must be an integer, not True"):
        gnp.softmax(np.zeros((2, 3)), axis=True)
    with pytest.raises(TypeError, match=r"^gumbel: axis must be an integer, not False"):
        gnp.gumbel((2, 3), axis=False)
    with pytest.raises(TypeError, match=r"^gumbel_softmax: tau must be a real number or array, not True"):
        gnp.gumbel_softmax(np.zeros((2, 3)), rng=0, tau=True)
    with pytest.raises(TypeError, match=r"^gumbel_softmax_backward: tau must be a real array, got dtype bool"):
        gnp.gumbel_softmax_backward(np.zeros((2, 3)), np.full((2, 3), 1 / 3), tau=np.array([True, True]))
    with pytest.raises(TypeError, match=r"^gumbel: shape must be an int or a sequence of ints, not True"):
        gnp.gumbel(True)
    with pytest.raises(TypeError, match=r"^gumbel: shape must be an int or a sequence of ints"):
        gnp.gumbel((2, True))


def test_results_too_large_to_allocate():
    x = np.zeros((1, 3), np.float32)
    with pytest.raises(MemoryError, match=r"^categorical: cannot allocate a result of shape \(4096, 268435456\)"):
        gnp.categorical(np.zeros((4096, 3), np.float32), rng=0, num_samples=2**28)
    with pytest.raises(ValueError, match=r"^categorical: num_samples must be at most 2\*\*28"):
        gnp.categorical(x, rng=0, num_samples=2**28 + 1)
    with pytest.raises(ValueError, match=r"^gumbel: a result of shape \(2147483648, 2147483648\) .* more than this platform can address"):
        gnp.gumbel((2**31, 2**31), rng=0)


@pytest.mark.parametrize(
    "ids, shown",
    [([2**64], "18446744073709551616"), ([-1, 2**64 - 1], "-1"), ([0, -3], "-3"), (np.array([5, -2]), "-2"),
     (np.array([1, 2**63], np.uint64), "9223372036854775808")],
)
def test_row_ids_out_of_range(ids, shown):
    n = len(ids)
    with pytest.raises(ValueError, match=rf"^gumbel: row_ids must lie in \[0, 2\*\*63\), got {shown}$"):
        gnp.gumbel((n, 4), rng=0, row_ids=ids)
    with pytest.raises(ValueError, match=r"^categorical: row_ids must lie in \[0, 2\*\*63\)"):
        gnp.categorical(np.zeros((n, 4)), rng=0, row_ids=ids)


def test_row_ids_of_floats_are_a_type_error():
    with pytest.raises(TypeError, match=r"^gumbel: row_ids must be an integer array, got dtype float64"):
        gnp.gumbel((2, 4), rng=0, row_ids=[0.0, 1.5])


def test_huge_tau_raises_without_a_warning():
    # filterwarnings = error: an overflow warning in the cast would surface first.
    with pytest.raises(ValueError, match=r"^gumbel_softmax: tau must be finite and > 0 with a finite 1 / tau \(in float32\), got 1e\+39"):
        gnp.gumbel_softmax(np.zeros((2, 3), np.float32), rng=0, tau=1e39)


@pytest.mark.parametrize("code", [">f4", ">f8", ">i4"])
def test_big_endian_inputs_are_accepted(code):
    x = np.random.default_rng(2).normal(size=(5, 7)) * 3
    xb = x.astype(code)
    xn = x.astype(np.dtype(code).newbyteorder("="))
    for f in (gnp.softmax, gnp.log_softmax, gnp.logsumexp):
        np.testing.assert_array_equal(f(xb), f(xn))
    np.testing.assert_array_equal(gnp.categorical(xb, rng=3), gnp.categorical(xn, rng=3))
    np.testing.assert_array_equal(gnp.gumbel_softmax(xb, rng=3, tau=np.full(5, 0.5, ">f8")),
                                  gnp.gumbel_softmax(xn, rng=3, tau=np.full(5, 0.5)))
    y = gnp.softmax(xn)
    np.testing.assert_array_equal(gnp.softmax_backward(xb, y.astype(y.dtype.newbyteorder(">"))),
                                  gnp.softmax_backward(xn, y))
    ids = np.arange(5, dtype=">i8")
    np.testing.assert_array_equal(gnp.gumbel((5, 3), rng=0, row_ids=ids), gnp.gumbel((5, 3), rng=0))


def test_masked_arrays_are_refused():
    m = np.ma.masked_array(np.zeros((2, 3)), mask=[[0, 1, 0], [0, 0, 0]])
    for name, call in {
        "softmax": lambda: gnp.softmax(m),
        "logsumexp": lambda: gnp.logsumexp(m),
        "categorical": lambda: gnp.categorical(m, rng=0),
        "gumbel_softmax": lambda: gnp.gumbel_softmax(m, rng=0),
        "softmax_backward": lambda: gnp.softmax_backward(m, np.full((2, 3), 1 / 3)),
    }.items():
        with pytest.raises(TypeError, match=rf"^{name}: (x|logits|grad) is a numpy.ma.MaskedArray, whose mask would be ignored"):
            call()
    with pytest.raises(TypeError, match=r"^gumbel_softmax: noise is a numpy.ma.MaskedArray"):
        gnp.gumbel_softmax(np.zeros((2, 3)), noise=m)
    with pytest.raises(TypeError, match=r"^gumbel_softmax: tau is a numpy.ma.MaskedArray"):
        gnp.gumbel_softmax(np.zeros((2, 3)), rng=0, tau=np.ma.masked_array([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"^gumbel: row_ids is a numpy.ma.MaskedArray"):
        gnp.gumbel((2, 3), rng=0, row_ids=np.ma.masked_array([0, 1]))
    # The documented way: fill masked logits with -inf.
    p = gnp.softmax(m.filled(-np.inf))
    assert p[0, 1] == 0.0 and p[0, 0] == 0.5

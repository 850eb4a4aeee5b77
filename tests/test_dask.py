"""Dask arrays (DESIGN section 9): every operation of the registry on Dask
arrays equals the in-memory call bit for bit, for every chunking and
scheduler.

The calls are the registry's example calls (``gumbel_np._cases``), so an
operation added to the registry is covered here without a line written for
it.  Each is made lazy with its data chunked in several ways (one chunk, many
rows per chunk, one row per chunk, the category axis split) and its other
arrays chunked differently again (the call must align them), then compared
with the in-memory call: ``dask.array.utils.assert_eq`` (which also checks
the declared chunks, dtype and meta against each computed block) and the
bytes of the computed result.  The same on a ``distributed.LocalCluster``
of two worker processes and on the ``processes`` scheduler; ``row_ids`` as
Dask arrays after a shuffle and a sub-sample; bad input at graph
construction and at compute time, with the in-memory messages.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
import warnings
from dataclasses import replace

import numpy as np
import pytest


def _dask_or_skip(module):
    """Import ``module`` of the ``dask`` extra, or skip with how to install
    it; in CI (``CI=true``) or with ``GUMBEL_NP_REQUIRE_ORACLES=1`` a missing
    one fails instead: the ``test`` extra installs it, and a skip there would
    prove nothing."""
    import importlib
    import os

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("CI") == "true" or os.environ.get("GUMBEL_NP_REQUIRE_ORACLES") == "1":
            raise ImportError(f"{module} is required here (the test extra installs it): {exc}") from exc
        pytest.skip(f"{module} is not installed (pip install '.[dask]')", allow_module_level=True)


da = _dask_or_skip("dask.array")
import dask  # noqa: E402
from dask.array.utils import assert_eq  # noqa: E402

import gumbel_np as gnp  # noqa: E402
from gumbel_np import _dask  # noqa: E402
from gumbel_np._cases import VARIANTS, calls, make  # noqa: E402
from gumbel_np._ops import OPS  # noqa: E402

LABELS = [c.label for c in calls((2, 3))]

CHUNKINGS = {
    "one-chunk": lambda shape, ax: shape,
    "rows-per-chunk": lambda shape, ax: tuple(n if d == ax else max(1, (n + 1) // 2) for d, n in enumerate(shape)),
    "row-per-chunk": lambda shape, ax: tuple(n if d == ax else 1 for d, n in enumerate(shape)),
    "category-split": lambda shape, ax: tuple(2 if d == ax else max(1, (n + 1) // 2) for d, n in enumerate(shape)),
}
"""How the data of a call is chunked: by its shape and category axis."""

LAYOUTS = {"2d": ((7, 5), -1), "3d-axis1": ((3, 5, 4), 1)}
"""Data shapes and category axes: a plain batch of rows, and a batch of two
axes with the category axis in the middle (its blocks' rows are not a
contiguous range of flat row ids)."""


def _call_for(label, shape, axis, dtype=np.float32):
    name = label.split()[0]
    extra = next(v for v in VARIANTS.get(name, ({},)) if make(name, (2, 3), **v).label == label)
    return make(name, shape, dtype, axis=axis, seed=5, **extra)


def _other_chunks(a):
    """Chunks for an argument that is not the data: 2 along every axis, so
    that they disagree with the data's and the call must realign them."""
    return tuple(min(2, max(n, 1)) for n in a.shape)


def _lazy(call, chunks):
    """The call's arguments as Dask arrays: the data with ``chunks``, the
    others with :func:`_other_chunks`; for a noise function, ``chunks=``."""
    op = OPS[call.op]
    if op.result == "noise":
        opts = {k: v for k, v in call.options.items() if k != "like"}
        return call.arrays, {**opts, "chunks": chunks}
    arrays = []
    for (_, role, _), a in zip(op.arrays, call.arrays):
        arrays.append(da.from_array(a, chunks=chunks if role == "data" else _other_chunks(a)))
    return tuple(arrays), dict(call.options)


def _public(call, arrays, options):
    fn = getattr(gnp, call.op)
    if "axis" in inspect.signature(fn).parameters:
        return fn(*arrays, axis=call.axis, **options)
    return fn(*arrays, **options)


def _as_tuple(r):
    return r if isinstance(r, tuple) else (r,)


def assert_bits(lazy, expected, scheduler="sync", **compute):
    """The lazy results equal the in-memory ones (``assert_eq``: values,
    shapes, dtypes, the declared chunks and meta) and hold the same bytes."""
    lazy, expected = _as_tuple(lazy), _as_tuple(expected)
    assert len(lazy) == len(expected)
    for x in lazy:
        assert isinstance(x, da.Array), type(x)
    computed = dask.compute(*lazy, scheduler=scheduler, **compute)
    for x, got, want in zip(lazy, computed, expected):
        want = np.asarray(want)
        if scheduler == "sync":
            assert_eq(x, want)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes()


# --------------------------------------------------------------------------
# Every operation, every chunking


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("chunking", sorted(CHUNKINGS))
@pytest.mark.parametrize("label", LABELS)
def test_every_operation_every_chunking(label, chunking, layout):
    shape, axis = LAYOUTS[layout]
    call = _call_for(label, shape, axis)
    expected = call()
    chunks = CHUNKINGS[chunking](shape, axis % len(shape))
    arrays, options = _lazy(call, chunks)
    assert_bits(_public(call, arrays, options), expected)


@pytest.mark.parametrize("label", LABELS)
def test_float64_and_plain_arguments(label):
    # float64, and the mixing rule: only the data is a Dask array (split
    # where it can be), the other arguments are NumPy arrays.
    call = _call_for(label, (6, 5), -1, np.float64)
    expected = call()
    op = OPS[call.op]
    if op.result == "noise":
        arrays, options = call.arrays, {**call.options, "chunks": (4, 2), "like": None}
    else:
        arrays = tuple(
            da.from_array(a, chunks=(4, 2)) if role == "data" else a for (_, role, _), a in zip(op.arrays, call.arrays)
        )
        options = call.options
    assert_bits(_public(call, arrays, options), expected)


def test_every_operation_is_lazy_for_any_dask_argument():
    # A Dask array in any position makes the call lazy (the mixing rule).
    for label in LABELS:
        call = _call_for(label, (4, 3), -1)
        op = OPS[call.op]
        for i in range(len(call.arrays) if op.result != "noise" else 0):
            arrays = tuple(da.from_array(a) if j == i else a for j, a in enumerate(call.arrays))
            for r in _as_tuple(_public(call, arrays, call.options)):
                assert isinstance(r, da.Array), (label, i)


# --------------------------------------------------------------------------
# Options as Dask arrays; reductions over rows; 0-d and empty arrays


def test_tau_per_row_as_dask_array():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((9, 6)).astype(np.float32)
    tau = rng.uniform(0.3, 2.0, size=(9, 1)).astype(np.float32)
    lazy = gnp.gumbel_softmax(da.from_array(logits, chunks=(4, 3)), tau=da.from_array(tau, chunks=(2, 1)), rng=1)
    assert_bits(lazy, gnp.gumbel_softmax(logits, tau=tau, rng=1))
    g = rng.standard_normal((9, 6)).astype(np.float32)
    y = gnp.gumbel_softmax(logits, tau=tau[:, 0], rng=1)
    lazy = gnp.gumbel_softmax_backward(da.from_array(g, chunks=(3, 6)), da.from_array(y, chunks=(5, 2)),
                                       tau=tau[:, 0], tau_grad=True)
    assert_bits(lazy, gnp.gumbel_softmax_backward(g, y, tau=tau[:, 0], tau_grad=True))


@pytest.mark.parametrize("tau", [0.7, np.float64(0.7), np.array([[0.5], [2.0], [1.0]])], ids=["float", "0-d", "broadcast"])
def test_shared_tau_gradient_is_the_in_memory_sum(tau):
    # dL/dtau of a tau shared by many rows is a sum over them, made in one
    # task in the in-memory layout: bit for bit.
    rng = np.random.default_rng(1)
    g = rng.standard_normal((3, 40, 7))
    y = gnp.gumbel_softmax(rng.standard_normal((3, 40, 7)), tau=tau, rng=2)
    lazy = gnp.gumbel_softmax_backward(da.from_array(g, chunks=(2, 9, 7)), da.from_array(y, chunks=(1, 13, 7)),
                                       tau=tau, tau_grad=True)
    assert_bits(lazy, gnp.gumbel_softmax_backward(g, y, tau=tau, tau_grad=True))
    # The binary family's tau broadcasts to the data's shape.
    tau = tau if np.ndim(tau) == 0 else np.linspace(0.5, 2.0, 40)[:, None]
    x = rng.standard_normal((3, 40, 7))
    ys = gnp.gumbel_sigmoid(x, tau=tau, rng=2)
    lazy = gnp.gumbel_sigmoid_backward(da.from_array(g, chunks=(2, 9, 3)), da.from_array(ys, chunks=(1, 13, 7)),
                                       tau=tau, tau_grad=True)
    assert_bits(lazy, gnp.gumbel_sigmoid_backward(g, ys, tau=tau, tau_grad=True))


def test_broadcast_pair_gradient_is_the_in_memory_sum():
    rng = np.random.default_rng(2)
    q = rng.standard_normal((30, 6))
    p = rng.standard_normal(6)  # a prior shared by every row
    g = rng.standard_normal(30)
    lazy = gnp.categorical_kl_backward(da.from_array(g, chunks=7), da.from_array(q, chunks=(4, 6)), p)
    assert_bits(lazy, gnp.categorical_kl_backward(g, q, p))
    assert_bits(gnp.categorical_kl(da.from_array(q, chunks=(4, 6)), p), gnp.categorical_kl(q, p))


def test_array_options_dask_or_plain():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10, 6))
    noise = gnp.gumbel(x.shape, rng=8, dtype=np.float64)
    lx = da.from_array(x, chunks=(4, 6))
    assert_bits(gnp.gumbel_softmax(lx, noise=da.from_array(noise, chunks=(3, 2))), gnp.gumbel_softmax(x, noise=noise))
    assert_bits(gnp.gumbel_sigmoid(lx, noise=noise, return_soft=True, hard=True),
                gnp.gumbel_sigmoid(x, noise=noise, return_soft=True, hard=True))
    ids = rng.permutation(50)[:10]
    assert_bits(gnp.categorical(lx, rng=2, row_ids=ids), gnp.categorical(x, rng=2, row_ids=ids))
    idx = gnp.categorical(x, rng=1, num_samples=4)
    vals = rng.standard_normal(idx.shape)
    base = rng.standard_normal((10, 1))
    assert_bits(gnp.reinforce(lx, da.from_array(idx, chunks=(3, 4)), vals, baseline=da.from_array(base, chunks=4)),
                gnp.reinforce(x, idx, vals, baseline=base))
    tau = rng.uniform(0.5, 2.0, size=(10, 6))  # one per element: the binary family
    assert_bits(gnp.hard_concrete(lx, tau=da.from_array(tau, chunks=(5, 3)), rng=4),
                gnp.hard_concrete(x, tau=tau, rng=4))


def test_noise_dtype_float64_with_split_categories():
    x = np.random.default_rng(3).standard_normal((8, 9)).astype(np.float32)
    lazy = gnp.categorical(da.from_array(x, chunks=(3, 4)), rng=4, num_samples=2, noise_dtype=np.float64)
    assert_bits(lazy, gnp.categorical(x, rng=4, num_samples=2, noise_dtype=np.float64))


def test_float16_and_integer_logits():
    x = np.random.default_rng(4).standard_normal((8, 9))
    for a in (x.astype(np.float16), np.round(3 * x).astype(np.int32)):
        for chunks in ((3, 9), (3, 4)):
            assert_bits(gnp.categorical(da.from_array(a, chunks=chunks), rng=5), gnp.categorical(a, rng=5))
        assert_bits(gnp.softmax(da.from_array(a, chunks=(3, 4))), gnp.softmax(a))


def test_zero_d_and_empty():
    assert_bits(gnp.softmax(da.asarray(np.float32(2.0))), gnp.softmax(np.float32(2.0)))
    assert_bits(gnp.categorical(da.asarray(np.float32(2.0)), rng=1), gnp.categorical(np.float32(2.0), rng=1))
    e = np.zeros((0, 4), np.float32)
    assert_bits(gnp.gumbel_softmax(da.from_array(e), rng=1), gnp.gumbel_softmax(e, rng=1))
    assert_bits(gnp.categorical(da.from_array(e), rng=1), gnp.categorical(e, rng=1))
    assert_bits(gnp.gumbel((0, 3), rng=1, chunks=2), gnp.gumbel((0, 3), rng=1))
    assert_bits(gnp.gumbel((), rng=1, chunks=()), gnp.gumbel((), rng=1))


def test_noise_functions_like_and_row_ids():
    like = da.zeros((12, 5), chunks=(5, 2), dtype=np.float64)
    g = gnp.gumbel((12, 5), rng=2, dtype=np.float64, like=like)
    assert g.chunks == like.chunks
    assert_bits(g, gnp.gumbel((12, 5), rng=2, dtype=np.float64))
    ids = np.random.default_rng(0).permutation(40)[:12]
    lazy = gnp.logistic((5, 12), axis=0, rng=3, row_ids=da.from_array(ids, chunks=5))
    assert_bits(lazy, gnp.logistic((5, 12), axis=0, rng=3, row_ids=ids))
    # A Generator is read once, when the graph is built: one stream for the
    # whole array, and the next call gets the next key.
    gen, ref = np.random.default_rng(9), np.random.default_rng(9)
    assert_bits(gnp.gumbel((6, 4), rng=gen, chunks=2), gnp.gumbel((6, 4), rng=ref))
    assert_bits(gnp.gumbel((6, 4), rng=gen, chunks=3), gnp.gumbel((6, 4), rng=ref))


# --------------------------------------------------------------------------
# row_ids as Dask arrays: a shuffled and a sub-sampled table


def _draws_noise(label):
    return "row_ids" in OPS[label.split()[0]].options and OPS[label.split()[0]].result != "noise"


@pytest.mark.parametrize("label", [lb for lb in LABELS if _draws_noise(lb)])
def test_row_ids_after_shuffle_and_subsample(label):
    n = 23
    call = _call_for(label, (n, 6), -1)
    whole = _as_tuple(call())
    rng = np.random.default_rng(7)
    ids = da.arange(n, chunks=5)
    for order in (rng.permutation(n), np.sort(rng.choice(n, size=9, replace=False))):
        arrays = tuple(da.from_array(a, chunks=(6,) + a.shape[1:])[order] for a in call.arrays)
        lazy = _public(call, arrays, {**call.options, "row_ids": ids[order]})
        assert_bits(lazy, tuple(w[order] for w in whole))


def test_boolean_selection_with_row_ids():
    # A boolean selection leaves the row chunks unknown: with the selected
    # row ids the call works; the default ids (positions) would need them.
    x = np.random.default_rng(0).standard_normal((20, 6))
    mask = np.random.default_rng(1).random(20) < 0.5
    lx = da.from_array(x, chunks=(5, 3))[da.from_array(mask, chunks=5)]
    ids = da.arange(20, chunks=5)[da.from_array(mask, chunks=5)]
    want = gnp.gumbel_softmax(x[mask], rng=1, row_ids=np.arange(20)[mask])
    got = gnp.gumbel_softmax(lx, rng=1, row_ids=ids).compute()
    assert got.tobytes() == want.tobytes()
    assert_bits(gnp.softmax(lx), gnp.softmax(x[mask]), scheduler="threads")
    with pytest.raises(ValueError, match="gumbel_softmax: the chunk sizes of the data along axis 0 are unknown"):
        gnp.gumbel_softmax(lx, rng=1)


# --------------------------------------------------------------------------
# Schedulers: a real cluster of two worker processes, and processes


@pytest.fixture(scope="module")
def client():
    distributed = _dask_or_skip("distributed")
    # dashboard_address=":0": a free port (None still binds the scheduler's
    # HTTP server to 8787, and a second cluster, the example's, then warns).
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0", silence_logs=40
    ) as cluster, distributed.Client(cluster) as c:
        yield c


def test_local_cluster_every_operation(client):
    # All calls at once (one graph per call, computed together): the blocks
    # run in two worker processes.
    lazy, expected = [], []
    for label in LABELS:
        for layout, chunking in (("2d", "category-split"), ("3d-axis1", "row-per-chunk")):
            shape, axis = LAYOUTS[layout]
            call = _call_for(label, shape, axis)
            arrays, options = _lazy(call, CHUNKINGS[chunking](shape, axis % len(shape)))
            lazy.append(_as_tuple(_public(call, arrays, options)))
            expected.append(_as_tuple(call()))
    computed = client.compute(lazy, sync=True)
    for got, want in zip(computed, expected):
        for g, w in zip(got, want):
            assert np.asarray(g).tobytes() == np.ascontiguousarray(w).tobytes() and g.dtype == w.dtype
    pids = client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()


def test_local_cluster_threads_capped(client):
    # The worker processes cap Numba at the thread count task_threads()
    # gives there (the nanny sets OMP_NUM_THREADS=1).
    got = client.run(_dask.task_threads)
    assert set(got.values()) == {1}


@pytest.mark.parametrize("label", ["categorical num_samples=3", "gumbel_softmax hard", "softmax", "bernoulli"])
def test_processes_scheduler(label):
    shape, axis = LAYOUTS["3d-axis1"]
    call = _call_for(label, shape, axis)
    arrays, options = _lazy(call, CHUNKINGS["category-split"](shape, 1))
    assert_bits(_public(call, arrays, options), call(), scheduler="processes", num_workers=2)


def test_threads_scheduler_keeps_numba_setting():
    import numba

    before = numba.get_num_threads()
    x = da.from_array(np.random.default_rng(0).standard_normal((400, 20)).astype(np.float32), chunks=(100, 20))
    assert_bits(gnp.gumbel_softmax(x, rng=1), gnp.gumbel_softmax(x.compute(), rng=1), scheduler="threads")
    assert numba.get_num_threads() == before


# --------------------------------------------------------------------------
# Bad input: at graph construction where shapes and dtypes tell, else at
# compute time, with the in-memory message


def _mutations(call):
    """``(description, arrays, options)`` of bad calls that shapes, dtypes
    and options reveal."""
    op = OPS[call.op]
    fn = getattr(gnp, call.op)
    out = []
    if "axis" in inspect.signature(fn).parameters:
        out.append(("axis", call.arrays, {"axis": 5}))
    if "rng" in op.options:
        out.append(("rng", call.arrays, {"rng": "seed"}))
    if "tau" in op.options:
        out.append(("tau", call.arrays, {"tau": -1.0}))
        out.append(("tau shape", call.arrays, {"tau": np.ones(7)}))
    if "num_samples" in op.options:
        out.append(("num_samples", call.arrays, {"num_samples": 0}))
    for f in op.flags:
        out.append((f, call.arrays, {f: "yes"}))
    if op.result == "noise":
        out.append(("dtype", call.arrays, {"dtype": np.int32}))
        out.append(("row_ids shape", call.arrays, {"row_ids": np.arange(3)}))
        return out
    if "row_ids" in op.options:
        out.append(("row_ids shape", call.arrays, {"row_ids": np.arange(3)}))
        out.append(("row_ids dtype", call.arrays, {"row_ids": np.zeros(call.arrays[0].shape[0])}))
    for i, a in enumerate(call.arrays):
        out.append((f"complex {i}", tuple(b + 0j if j == i else b for j, b in enumerate(call.arrays)), {}))
        if len(call.arrays) > 1:
            out.append((f"shape {i}", tuple(b[:-1] if j == i else b for j, b in enumerate(call.arrays)), {}))
    if op.needs_categories:
        out.append(("empty", tuple(a[..., :0] if r in ("data", "grad", "pair") else a
                                   for a, (_, r, _) in zip(call.arrays, op.arrays)), {}))
    return out


@pytest.mark.parametrize("name", sorted(OPS))
def test_bad_input_raises_at_graph_construction(name):
    call = make(name, (5, 4), np.float64, **({"num_samples": 3} if name == "bernoulli" else {}))
    for what, arrays, changed in _mutations(call):
        options = {**call.options, **changed}
        with pytest.raises(Exception) as want:
            _public(call, arrays, options)
        if OPS[name].result == "noise":
            lazy_arrays, lazy_options = arrays, {**options, "like": None, "chunks": 2}
            if isinstance(changed.get("row_ids"), np.ndarray):
                lazy_options["row_ids"] = da.from_array(changed["row_ids"], chunks=2)
        else:
            lazy_arrays = tuple(da.from_array(a, chunks=2) for a in arrays)
            lazy_options = {k: (da.from_array(v, chunks=2) if k in ("row_ids",) and isinstance(v, np.ndarray) else v)
                            for k, v in options.items()}
        with pytest.raises(want.type) as got:
            _public(call, lazy_arrays, lazy_options)  # no compute: the graph is refused
        assert str(got.value) == str(want.value), (name, what)


def _compute_error(fn, *args, **kw):
    with pytest.raises(ValueError) as want:
        fn(*(a.compute() if isinstance(a, da.Array) else a for a in args),
           **{k: (v.compute() if isinstance(v, da.Array) else v) for k, v in kw.items()})
    lazy = fn(*args, **kw)  # builds: the values are not known yet
    with pytest.raises(ValueError) as got:
        dask.compute(lazy, scheduler="sync")
    assert str(got.value) == str(want.value)


def test_bad_values_raise_at_compute_time():
    x = np.random.default_rng(0).standard_normal((12, 6))
    bad = x.copy()
    bad[9, 4] = np.nan
    for chunks in ((5, 6), (5, 4)):
        _compute_error(gnp.categorical, da.from_array(bad, chunks=chunks), rng=1)
        _compute_error(gnp.categorical, da.from_array(bad, chunks=chunks), rng=1, num_samples=2, replace=False)
    masked = x.copy()
    masked[7, 1:] = -np.inf  # one category left: too few for 2 draws without replacement
    _compute_error(gnp.categorical, da.from_array(masked, chunks=(5, 4)), rng=1, num_samples=2, replace=False)
    _compute_error(gnp.categorical, da.from_array(masked, chunks=(5, 6)), rng=1, num_samples=2, replace=False)
    idx = gnp.categorical(x, rng=1, num_samples=2)
    idx[10, 1] = 6
    _compute_error(gnp.categorical_log_prob, da.from_array(x, chunks=(4, 6)), da.from_array(idx, chunks=(3, 2)))
    bits = bad.reshape(3, 4, 6)
    _compute_error(gnp.bernoulli, da.from_array(bits, chunks=(2, 3, 6)), rng=1)
    tau = np.ones(12)
    tau[8] = -2.0
    _compute_error(gnp.gumbel_softmax, da.from_array(x, chunks=(5, 6)), tau=da.from_array(tau, chunks=5), rng=1)
    ids = np.arange(12)
    ids[6] = -4
    _compute_error(gnp.gumbel_softmax, da.from_array(x, chunks=(5, 6)), row_ids=da.from_array(ids, chunks=5), rng=1)
    for chunks in ((5, 6), (5, 4)):  # the category axis whole and split
        _compute_error(gnp.categorical, da.from_array(x, chunks=chunks), row_ids=da.from_array(ids, chunks=5), rng=1)
    big = np.arange(12, dtype=np.uint64)
    big[3] = np.uint64(2**63)
    _compute_error(gnp.categorical, da.from_array(x, chunks=(5, 4)), row_ids=da.from_array(big, chunks=5), rng=1)


def test_split_categories_after_a_boolean_selection_with_row_ids():
    # Unknown row chunks: the row ids carry the rows' identity, so the split
    # tree needs no positions; an error then cannot name a position.
    x = np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32)
    keep = np.array([1, 0, 1, 1, 0, 1, 1, 0], bool)
    ids = da.arange(8, chunks=4)[da.from_array(keep, chunks=4)]
    lazy = gnp.categorical(da.from_array(x, chunks=(4, 3))[da.from_array(keep, chunks=4)], rng=1, row_ids=ids)
    assert_bits(lazy, gnp.categorical(x[keep], rng=1, row_ids=np.arange(8)[keep]))
    x[2, 1] = np.nan
    bad = gnp.categorical(da.from_array(x, chunks=(4, 3))[da.from_array(keep, chunks=4)], rng=1, row_ids=ids)
    with pytest.raises(ValueError, match=r"categorical: row \(position unknown\) of logits holds NaN"):
        bad.compute()


def test_split_categories_warn_no_more_than_the_kernel():
    x = np.array([[3e38, -3e38, 1.0, 0.5]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        want = gnp.categorical(x, rng=0, num_samples=2)
        assert_bits(gnp.categorical(da.from_array(x, chunks=(1, 2)), rng=0, num_samples=2), want)


def test_auto_noise_chunks_keep_the_noise_axis_whole():
    with dask.config.set({"array.chunk-size": "1MiB"}):
        for axis, kw in ((-1, {"chunks": "auto"}), (-1, {"chunks": (8, "auto")}), (0, {"chunks": "auto"})):
            r = gnp.gumbel((64, 32768), rng=0, axis=axis, **kw)
            assert r.numblocks[axis] == 1, (axis, kw, r.chunks)
            assert r.nbytes / r.npartitions <= 2**21  # a task holds about a chunk
        assert_bits(gnp.gumbel((64, 32768), rng=0, chunks="auto"), gnp.gumbel((64, 32768), rng=0))


def test_out_is_refused_and_mixed_chunk_types():
    x = da.ones((3, 4), chunks=2)
    with pytest.raises(TypeError, match="softmax: out must be None when an argument is a Dask array"):
        gnp.softmax(x, out=np.empty((3, 4)))


def test_unknown_role_or_result_kind_is_not_implemented():
    x = da.ones((3, 4), chunks=2)
    op = replace(OPS["softmax"], name="mystery", arrays=(("x", "riddle", "x"),))
    with pytest.raises(NotImplementedError, match="mystery: .*role 'riddle'"):
        _dask.dask_run(op, (x,), -1, None, {})
    op = replace(OPS["softmax"], name="mystery", result="surprise")
    with pytest.raises(NotImplementedError, match="mystery: .*kind 'surprise'"):
        _dask.dask_run(op, (x,), -1, None, {})


def test_chunking_table():
    # Which operations split the category axis, which take it whole.
    assert _dask.chunking(OPS["categorical"]) == "split"
    for name in ("softmax", "logsumexp", "gumbel_softmax", "gumbel_softmax_backward", "categorical_log_prob"):
        assert _dask.chunking(OPS[name]) == "whole", name
    assert _dask.chunking(OPS["hard_concrete_l0"]) == "any"
    assert _dask.chunking(OPS["bernoulli"]) == "whole"  # draws noise along its axis


# --------------------------------------------------------------------------
# Import stays light; thread rule


def test_import_does_not_import_dask():
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        import gumbel_np as gnp
        gnp.softmax(np.ones((2, 3)))
        gnp.categorical(np.zeros((2, 3)), rng=0)
        gnp.gumbel((2, 3), rng=0)
        assert not any(m == "dask" or m.startswith(("dask.", "distributed")) for m in sys.modules), sorted(
            m for m in sys.modules if m.startswith(("dask", "distributed")))
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"GUMBEL_NP_DASK_THREADS": "3"}, 3),
        ({"GUMBEL_NP_DASK_THREADS": "0"}, None),
        ({"NUMBA_NUM_THREADS": "2"}, None),
        ({"OMP_NUM_THREADS": "2"}, 2),
        ({}, "main:None,worker:1"),
    ],
)
def test_task_threads_rule(env, expected):
    code = textwrap.dedent(
        """
        import threading
        from gumbel_np import _dask
        main = _dask.task_threads()
        got = []
        t = threading.Thread(target=lambda: got.append(_dask.task_threads()))
        t.start(); t.join()
        print(main if main == got[0] else f"main:{main},worker:{got[0]}")
        """
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("GUMBEL_NP_DASK_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, check=True, capture_output=True,
                         text=True, timeout=120).stdout.strip()
    assert out == str(expected)


def test_zero_d_with_samples_and_pairs():
    x, g = np.float64(0.3), np.float64(2.0)
    assert_bits(gnp.categorical(da.asarray(x), rng=1, num_samples=4), gnp.categorical(x, rng=1, num_samples=4))
    assert_bits(gnp.softmax_backward(da.asarray(g), da.asarray(x)), gnp.softmax_backward(g, x))
    assert_bits(gnp.bernoulli(da.asarray(x), rng=1, num_samples=3), gnp.bernoulli(x, rng=1, num_samples=3))


# --------------------------------------------------------------------------
# The example


def test_discrete_choice_dask_example():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "discrete_choice_dask.py"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the examples live in the source checkout only)")
    spec = importlib.util.spec_from_file_location("gumbel_np_example_discrete_choice_dask", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    n, k = 60_000, 20
    res = example.main(["--agents", str(n), "--alternatives", str(k), "--chunk", "7000", "--seed", "5"])
    assert res["agents"] == n and res["alternatives"] == k and res["checked"] == n
    shares, probs = np.asarray(res["shares"]), np.asarray(res["logit_probabilities"])
    assert shares.shape == probs.shape == (k,)
    assert np.isclose(shares.sum(), 1.0) and np.isclose(probs.sum(), 1.0)
    # Each share is a mean of n independent Bernoulli(p_ij) indicators with
    # standard error se_j; 5 standard errors for each of 20 alternatives
    # fail by chance with probability about 1e-5.
    se = np.asarray(res["share_std_errors"])
    assert (np.abs(shares - probs) <= 5 * se).all() and res["max_abs_z"] < 5
    # Rechunked (alternatives split too) and reordered with their ids, every
    # agent keeps its choice; by row position instead, most are redrawn.
    assert res["rechunk_invariant"] is True and res["reorder_invariant"] is True
    assert res["positional_changed_fraction"] > 0.5
    assert len(res["peak_mib_per_worker"]) == 2 and res["agents_per_second"] > 0


def test_every_docstring_says_what_dask_does_with_the_category_axis():
    from gumbel_np._ops import OPS

    for name, op in OPS.items():
        doc = getattr(gnp, name).__doc__
        assert _dask.dask_doc(op).split(";")[0] in " ".join(doc.split()), name
        rule = {"split": "tree reduction", "whole": "rechunked to one chunk", "any": "any chunking"}
        if op.result != "noise":
            assert rule[_dask.chunking(op)] in " ".join(doc.split()), name
    assert "rechunked to one chunk" in " ".join(gnp.logsumexp.__doc__.split())
    assert "tree reduction" in " ".join(gnp.categorical.__doc__.split())


def test_bad_noise_chunks_name_the_function():
    for chunks in ((2,), "abc"):
        with pytest.raises(ValueError, match=r"^gumbel: chunks=.* do not fit the shape \(3, 3\)"):
            gnp.gumbel((3, 3), rng=0, chunks=chunks)
        with pytest.raises(ValueError, match=r"^logistic: chunks="):
            gnp.logistic((3, 3), rng=0, chunks=chunks)

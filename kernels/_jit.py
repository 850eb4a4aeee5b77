"""Every Numba option of the CPU kernels lives here.

Kernels are plain functions: helpers (:func:`helper`, inlined into their
callers at the Numba IR level), large pieces called once per block
(:func:`part`), reductions (:func:`summing`), and block functions that
:func:`row_kernel` turns into a serial/parallel pair of row drivers.  Nothing compiles at import: Numba compiles each
specialisation lazily, on its first call.

Decisions, with the measurement behind them (2-core AVX-512 x86, Numba 0.68):

* ``error_model="numpy"``: division by zero gives inf/NaN as in NumPy instead
  of raising, and lets LLVM vectorise divisions.
* 512-bit vectors (:func:`wide_vectors`) and explicit fused multiply-adds in
  the polynomials (:func:`fma`): together 2.2x on the float32 exp.
* No ``fastmath=True`` anywhere: it assumes no inf/NaN, and ``-inf`` masking
  relies on them.  Nor the ``contract`` flag: fusion left to LLVM could round
  a loop's vector body and its scalar remainder differently.  Only the row
  sums use the single flag ``reassoc``
  (``_rows.row_sum``), which lets LLVM vectorise the reduction; without it the
  sum stays scalar (about 8x slower on a 1024-float row).  The flag is kept off
  the polynomial log/exp, where reassociation would break the Cody-Waite
  argument reduction.
* Row maxima are taken on the float bits (``_rows.row_max``): three integer
  reductions, which vectorise, where Numba's builtin ``max()`` plus a
  separate NaN flag stays scalar.  The ``llvm.maximum`` intrinsic
  (:data:`maximum`, NaN-propagating) serves the column-order paths.
* Kernels index slices from 0 (``row = x[o:o + k]; row[j]``), never
  ``x[o + j]``: Numba wraps negative indices, and with an offset LLVM cannot
  prove the index non-negative, so the loop stays scalar (35 ms against 4.7 ms
  for exp over 2**24 float32 values).
* Parallel drivers are used only above :data:`PARALLEL_MIN_ELEMENTS`: waking
  the thread pool costs tens of microseconds, more than a small call.
"""

from __future__ import annotations

import inspect
import os
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._cache import cached

JIT_OPTIONS = {"error_model": "numpy", "nogil": True}
"""Options shared by every CPU kernel."""

SUM_OPTIONS = {**JIT_OPTIONS, "fastmath": {"reassoc"}}
"""Options of the row-sum helpers only (vectorised reductions)."""

PARALLEL_MIN_ELEMENTS = 1 << 15
"""Below this many elements a call runs on the calling thread."""

BLOCK_ELEMENTS = 2048
"""Rows are processed in blocks of about this many elements, so that short
rows (K about 10) still give the vectorised element loops a long trip count."""

CHUNKS_PER_THREAD = 4
"""Work items per thread in the parallel drivers (load balance)."""


def helper(func):
    """Compile a function that is only called from other kernels.

    Helpers inline at the Numba IR level: LLVM does not inline Numba's calls
    to other dispatchers, and a loop with a call in it does not vectorise
    (float32 noise: 20 ns per value before, 1.5 ns after, one thread).
    """
    return njit(inline="always", **JIT_OPTIONS)(func)


def part(func):
    """Compile a large piece of a block function on its own (called, not
    inlined): the Numba inliner mishandles loops nested in branches of inlined
    code, and a call per block costs nothing."""
    return njit(**JIT_OPTIONS)(func)


def summing(func):
    """Compile a reduction helper with the ``reassoc`` flag alone."""
    return njit(**SUM_OPTIONS)(func)


def by_type(stub, impls, of_dtype=False):
    """Give the pure-Python ``stub`` its compiled implementations, chosen by
    the Numba type of its first argument (its ``dtype`` when ``of_dtype``):
    ``impls`` maps Numba types to helpers (:func:`helper`) or plain functions
    with the stub's signature; the choice inlines, so the caller's loop still
    vectorises.  Returns ``stub``."""

    def typing(first, *rest):
        t = first.dtype if of_dtype else first
        for ty, impl in impls.items():
            if t == ty:
                return getattr(impl, "py_func", impl)
        return None

    typing.__signature__ = inspect.signature(stub)
    overload(stub, jit_options={"error_model": "numpy"}, inline="always")(typing)
    return stub


def _float_binary_intrinsic(llvm_name):
    @intrinsic
    def _impl(typingctx, a, b):
        if a != b or a not in (numba.float32, numba.float64):
            return None
        sig = a(a, b)

        def codegen(context, builder, signature, args):
            t = args[0].type
            suffix = ".f32" if t == ir.FloatType() else ".f64"
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(t, [t, t]), llvm_name + suffix
            )
            return builder.call(fn, args)

        return sig, codegen

    return _impl


maximum = _float_binary_intrinsic("llvm.maximum")
"""IEEE 754-2019 maximum: NaN-propagating, vectorisable."""


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` through ``llvm.fmuladd``: one fused multiply-add where the
    CPU has one (every x86-64 with FMA3, every AArch64), a multiply and an add
    elsewhere.  The choice is made per target, so the vector body and the
    scalar remainder of a loop round alike.  Used only where written: the
    kernels are compiled without the ``contract`` flag, so no other product
    is fused behind the code's back."""
    if a != b or a != c or a not in (numba.float32, numba.float64):
        return None
    sig = a(a, b, c)

    def codegen(context, builder, signature, args):
        t = args[0].type
        suffix = ".f32" if t == ir.FloatType() else ".f64"
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(t, [t, t, t]), "llvm.fmuladd" + suffix
        )
        return builder.call(fn, args)

    return sig, codegen


@intrinsic
def wide_vectors(typingctx):
    """Let LLVM vectorise the calling kernel with 512-bit registers.

    LLVM tunes AVX-512 Intel cores to prefer 256-bit vectors
    (``prefer-256-bit``); the function attribute ``prefer-vector-width=512``
    lifts that for one function, not for the rest of the process's Numba
    code.  Measured (Xeon, Sapphire Rapids class, one thread, float32 exp of
    16 Ki values in L1): 1.19 ns per value at 256 bits, 0.78 at 512; with the
    polynomials fused (:func:`fma`) 0.94 and 0.54.  On CPUs without 512-bit
    vectors the attribute changes nothing.  Call it first in every compiled
    kernel body (block functions, parts, reductions)."""
    sig = numba.types.void()

    def codegen(context, builder, signature, args):
        # llvmlite's attribute set only admits argument-free attributes by
        # name; a string attribute with a value is added to the set directly.
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def select(typingctx, cond, a, b):
    """``a if cond else b`` as one LLVM ``select``: no branch, so the loop
    around it vectorises, and no control flow for the Numba inliner (whose SSA
    check warns about ternaries in inlined helpers)."""
    if not isinstance(cond, numba.types.Boolean) or a != b:
        return None
    sig = a(cond, a, b)

    def codegen(context, builder, signature, args):
        return builder.select(args[0], args[1], args[2])

    return sig, codegen


_SAME_WIDTH = {
    numba.float32: numba.int32,
    numba.float64: numba.int64,
    numba.int32: numba.float32,
    numba.int64: numba.float64,
}


def _bitcast(*accepted):
    """An intrinsic that reinterprets the bits of a scalar of one of the
    ``accepted`` Numba types as the other type of its width (float32 <->
    int32, float64 <-> int64)."""

    @intrinsic
    def _impl(typingctx, a):
        if a not in accepted:
            return None
        sig = _SAME_WIDTH[a](a)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], context.get_value_type(signature.return_type))

        return sig, codegen

    return _impl


f32_as_i32 = _bitcast(numba.float32)
i32_as_f32 = _bitcast(numba.int32)
f64_as_i64 = _bitcast(numba.float64)
i64_as_f64 = _bitcast(numba.int64)
float_bits = _bitcast(numba.float32, numba.float64)
"""The bits of a float32 (float64) as an int32 (int64)."""
bits_float = _bitcast(numba.int32, numba.int64)
"""The float32 (float64) with the bits of an int32 (int64)."""


@intrinsic
def magnitude_bits(typingctx, x):
    """The bits of ``abs(x)`` for a float32 (float64), as an int32 (int64),
    computed in that width (Numba would widen an int32 ``&`` to int64)."""
    if x not in (numba.float32, numba.float64):
        return None
    sig = _SAME_WIDTH[x](x)

    def codegen(context, builder, signature, args):
        t = context.get_value_type(signature.return_type)
        b = builder.bitcast(args[0], t)
        return builder.and_(b, ir.Constant(t, (1 << (t.width - 1)) - 1))

    return sig, codegen


INTERRUPT_ELEMENTS = 1 << 24
"""Calls over more than twice this much work (elements, times draws for
``categorical``) run in row chunks of about this much, returning to Python
between chunks, where a pending Ctrl-C (or any signal handler) runs: a chunk
takes 5 to 100 ms on one thread.  The benchmark sizes are below it."""


class _Pool:
    """State of Numba's thread pool as the drivers use it.

    * ``layer``: the threading layer, known after the first parallel call.
      Under ``workqueue`` (Numba's fallback where neither TBB nor OpenMP is
      available) two threads entering a parallel region at once abort the
      process, so parallel calls then take ``lock`` without waiting, and a
      call that finds it held runs serially.  The first parallel call of the
      process takes it too, as the layer is not known before.
    * ``serial_only``: set in a child forked after the pool started (and not
      under TBB, the one fork-safe layer): GNU OpenMP kills such a child at
      its first parallel region and the workqueue's threads are not in it, so
      the child runs every kernel serially.
    """

    layer = None
    used = False
    serial_only = False
    lock = threading.Lock()


def _after_fork_in_child():
    _Pool.lock = threading.Lock()  # another thread of the parent may have held it
    if _Pool.used and _Pool.layer != "tbb":
        _Pool.serial_only = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _run_parallel(parallel_jit, start, stop, rows_per_block, nchunks, args):
    """Run the parallel driver, or return False where it must not run now."""
    if _Pool.layer is not None and _Pool.layer != "workqueue":
        parallel_jit(start, stop, rows_per_block, nchunks, *args)
        return True
    if not _Pool.lock.acquire(blocking=False):
        return False
    try:
        _Pool.used = True
        parallel_jit(start, stop, rows_per_block, nchunks, *args)
        if _Pool.layer is None:
            _Pool.layer = numba.threading_layer()
    finally:
        _Pool.lock.release()
    return True


def row_kernel(block):
    """Decorator: compile a block function and build its serial and parallel drivers.

    The block function is compiled on its own (helpers inline into it, which
    lets LLVM vectorise across them); the drivers call it once per block.
    ``block(r0, r1, *args)`` processes rows ``r0 <= r < r1`` of a batch; it
    must give each row a result that does not depend on the block bounds.
    Returns ``run(nrows, row_len, *args, work=None)``, which calls ``block``
    over blocks of about :data:`BLOCK_ELEMENTS` elements, in parallel over
    chunks of rows when the call is large enough (and :class:`_Pool` allows),
    in row chunks of :data:`INTERRUPT_ELEMENTS` when it is very large
    (``work``: the work per row in elements, ``row_len`` by default).  The
    drivers are cached on disk (:mod:`._cache`).
    """

    name = f"{block.__module__.rsplit('.', 1)[-1]}.{block.__qualname__}"
    block = njit(**JIT_OPTIONS)(block)

    def serial(start, stop, rows_per_block, *args):
        for r0 in range(start, stop, rows_per_block):
            block(r0, min(r0 + rows_per_block, stop), *args)

    def parallel(start, stop, rows_per_block, nchunks, *args):
        nblocks = (stop - start + rows_per_block - 1) // rows_per_block
        for c in prange(nchunks):
            b0 = nblocks * c // nchunks
            b1 = nblocks * (c + 1) // nchunks
            for b in range(b0, b1):
                r0 = start + b * rows_per_block
                block(r0, min(r0 + rows_per_block, stop), *args)

    serial_jit = cached(njit(**JIT_OPTIONS)(serial), name)
    parallel_jit = cached(njit(parallel=True, **JIT_OPTIONS)(parallel), name)

    def launch(start, stop, row_len, rows_per_block, args):
        n = stop - start
        # The size test first: asking Numba for the thread count costs about
        # a microsecond, a noticeable part of a small call.
        if n > 1 and n * row_len >= PARALLEL_MIN_ELEMENTS and not _Pool.serial_only:
            nthreads = numba.get_num_threads()
            if nthreads > 1:
                nblocks = (n + rows_per_block - 1) // rows_per_block
                nchunks = min(nblocks, nthreads * CHUNKS_PER_THREAD)
                if _run_parallel(parallel_jit, start, stop, rows_per_block, nchunks, args):
                    return
        serial_jit(start, stop, rows_per_block, *args)

    def run(nrows, row_len, *args, work=None):
        if nrows * row_len < PARALLEL_MIN_ELEMENTS and (work is None or nrows * work <= 2 * INTERRUPT_ELEMENTS):
            # A small call: serial, in one piece (what launch would do), with
            # one Python call less.
            if nrows > 0:
                serial_jit(0, nrows, max(1, BLOCK_ELEMENTS // max(row_len, 1)), *args)
            return
        rows_per_block = max(1, BLOCK_ELEMENTS // max(row_len, 1))
        per_row = max(row_len if work is None else work, 1)
        if nrows * per_row <= 2 * INTERRUPT_ELEMENTS:
            launch(0, nrows, row_len, rows_per_block, args)
            return
        step = max(1, INTERRUPT_ELEMENTS // per_row // rows_per_block) * rows_per_block
        for start in range(0, nrows, step):
            launch(start, min(start + step, nrows), row_len, rows_per_block, args)

    run.serial = serial_jit  # the drivers, for their cache statistics
    run.parallel = parallel_jit
    run.block = block  # for kernels built on this one (called on a block's slices)
    return run


def as_u64(value):
    """A Python int as the typed scalar the kernels take (keys, draw index)."""
    return np.uint64(int(value) & 0xFFFFFFFFFFFFFFFF)

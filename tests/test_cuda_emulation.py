"""The CUDA kernels run without a GPU: compiled as host C++ and compared with
the CPU backend.

``gumbel_np.kernels.cuda.source(stem)``, the exact text the loader hands
NVRTC, is compiled by g++ against ``tests/cuda_host/shim.h``, which supplies
the CUDA built-ins the kernels use (the thread and block indices,
``__syncthreads``, ``__syncwarp``, ``__shfl_xor_sync``, ``atomicOr``,
``__shared__``, ``__half`` and its conversions, the bit casts, ``__umulhi``,
the math functions) and a
deterministic scheduler of one cooperative fiber per CUDA thread.  A wrapper
per kernel and storage type is generated from the operation registry
(``_ops.KERNELS[name].cuda`` and ``_ops.PARAMS``), so the arguments have the
order and C types the launch passes, and every launch takes its geometry
from ``cuda.launch_plan`` (the launch's own grid, block and argument
list), on one multiprocessor.
Each kernel runs on small inputs of every row path (warp lanes 1 to 32,
the warp/block switch at ``cuda.WARP_MAX_K``, rows longer than the
register cache) in float32, float64 and float16, with NaN, +inf, all -inf
and half -inf rows, and is compared with the public CPU functions.  Each
launch runs twice, on its grid and on a single block with warps, lanes and
blocks in reverse order (so the grid-stride loops run several rows per
thread), and the two results must agree bit for bit.

What the emulation catches: indexing (the row and element mapping of every
path, the loop bounds, the idle threads of a partial warp or grid, a read
or write past the end of an array, which sits right before an inaccessible
page), the reductions, scans and shuffles (values are exchanged exactly,
and a shuffle that not every lane of its mask reaches is reported), the
barriers (each warp runs as far ahead of the others as the barriers let it,
and each lane as far ahead of the others of its warp as its shuffles and
``__syncwarp`` let it, so a missing ``__syncthreads`` or ``__syncwarp``
deterministically reads stale shared memory, and a barrier that not every
thread reaches is reported; the two orders put the warp or lane a result
depends on once first and once last), the stream mapping
(noise from key, row id, element and draw), and the argument lists (their
order and C types are the registry's, checked when the wrappers compile).

What it cannot catch: the GPU memory model (memory here is sequentially
consistent, blocks run one after another, nothing is cached), real warp
scheduling and independent thread scheduling (lanes interleave only at
shuffles and barriers), anything specific to NVRTC (it is not run: its
diagnostics, its code generation, its default FMA contraction), device libm
(host libm stands in; the two may differ by an ulp), ``-ftz`` and fast-math
flags, register pressure, spills, occupancy and launch-bound failures, and
speed.
"""

from __future__ import annotations

import ctypes
import inspect
import mmap
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import gumbel_np as gnp
from gumbel_np import _cases, _ops
from gumbel_np._random import philox_key
from gumbel_np.kernels import cuda
from gumbel_np.kernels.philox import philox_block_array

GXX = shutil.which("g++")
pytestmark = pytest.mark.skipif(
    GXX is None,
    reason="g++ is not on the PATH: cannot build the host emulation of the CUDA kernels",
)

HOST = Path(__file__).with_name("cuda_host")
"""The shim (``shim.h``, and the ``cuda_fp16.h`` that stands in for CUDA's)
and the probe kernels of the emulation itself (``selftest.cu``)."""

CXXFLAGS = (
    "-std=c++17",
    "-O1",
    "-fPIC",
    "-shared",
    # Every operation rounds as written on any host, x86-64 (no FMA) or
    # aarch64 (FMA), as in the Numba kernels the results are compared with.
    # NVRTC contracts a*b+c into FMAs by default: one of the differences the
    # emulation leaves out.
    "-ffp-contract=off",
    # Each library keeps its own statics (the scheduler, the __shared__
    # arrays): a broken build must not share them with the good one, which
    # g++'s default unique binding of function-local statics would do.
    "-fvisibility=hidden",
    "-fno-gnu-unique",
)

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
DTYPES = (F32, F64, F16)
STORAGE = {F32: "float", F64: "double", F16: "__half"}
"""The template argument (storage type S) of each dtype's kernels."""

REVERSED = 1 | 2 | 4
"""The second schedule of every launch: warps, lanes and blocks in reverse
order (``gnp_emu::Schedule`` in shim.h)."""

SEED = 20240611
KEY = philox_key(SEED, "test")
"""The Philox key of ``rng=SEED`` in every public function."""

IDS = np.array([0, 1, 2**31 - 1, 2**31, 2**32 + 5, 2**40 + 3, 2**63 - 1, 12345678901, 7], np.int64)
"""Row ids across both 32-bit words of the counter."""

LONG_ROW = cuda.ROW_BLOCK * 32 + 27
"""A row past the 16384 elements a block keeps in registers (ROW_BLOCK
threads x 32 float32 values, rows.cuh and gumbel.cu), so every kernel's
uncached tail runs in block-per-row mode, and not a whole number of Philox
blocks."""

ROW_LENGTHS = (1, 2, 3, 5, 16, 31, 33, cuda.WARP_MAX_K, cuda.WARP_MAX_K + 1, 3000, LONG_ROW)
"""Rows of 1 to 32 lanes, both sides of the warp/block switch, and long rows.
In warp mode float64 rows of more than 512 elements (and float32 rows of the
two-array kernels and of those with a smaller cache) also have uncached tails."""


def compute(dtype: np.dtype) -> np.dtype:
    """The dtype a kernel of ``dtype`` data computes in (float32 for float16)."""
    return F32 if dtype == F16 else dtype


# --------------------------------------------------------------------------
# Memory that ends at an inaccessible page

PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_libc.mprotect.restype = ctypes.c_int


class Guarded:
    """A copy of an array placed right before a page that faults on access,
    so a kernel that reads or writes past its end stops there.  (Accesses
    just before its start land in the accessible rest of its first page.)"""

    def __init__(self, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a)
        size = -(-a.nbytes // PAGE) * PAGE + PAGE
        self.map = mmap.mmap(-1, size)
        base = np.frombuffer(self.map, np.uint8).ctypes.data
        if _libc.mprotect(base + size - PAGE, PAGE, 0) != 0:  # PROT_NONE
            raise OSError(ctypes.get_errno(), "mprotect failed")
        self.end = base + size - PAGE
        self.start = self.end - a.nbytes
        self.array = np.frombuffer(self.map, a.dtype, a.size, self.start - base).reshape(a.shape)
        self.array[...] = a


class EmulationError(RuntimeError):
    """The emulation stopped a launch: a divergent shuffle or barrier, an
    invalid memory access, an arithmetic fault."""


class Library:
    """A compiled emulation library and its launch entry points."""

    def __init__(self, path: Path) -> None:
        self.lib = ctypes.CDLL(str(path))
        self.lib.gnp_emu_error.restype = ctypes.c_char_p
        self.lib.gnp_emu_fault_address.restype = ctypes.c_size_t

    def call(
        self,
        symbol: str,
        grid: int,
        block: int,
        schedule: int,
        args: list[tuple[str, Any, bool]],
    ) -> None:
        """Launch ``symbol`` with ``args``: ``(name, value, is_output)``, where
        a value is a NumPy array (passed as a guarded copy, and copied back
        when it is an output), None (a null pointer) or a ctypes scalar."""
        fn = getattr(self.lib, symbol)
        fn.restype = ctypes.c_int
        guarded, passed = [], []
        for name, value, is_output in args:
            if isinstance(value, np.ndarray):
                g = Guarded(value)
                guarded.append((name, value, is_output, g))
                passed.append(ctypes.c_void_p(g.start))
            elif value is None:
                passed.append(ctypes.c_void_p(0))
            else:
                passed.append(value)
        rc = fn(ctypes.c_uint(grid), ctypes.c_uint(block), ctypes.c_uint(schedule), *passed)
        if rc != 0:
            message = self.lib.gnp_emu_error().decode()
            address = self.lib.gnp_emu_fault_address()
            for name, _, _, g in guarded:
                if g.end <= address < g.end + PAGE:
                    message += f" ({address - g.end} bytes past the end of {name})"
            raise EmulationError(f"{symbol}: {message}")
        for name, value, is_output, g in guarded:
            if is_output:
                value[...] = g.array


# --------------------------------------------------------------------------
# Building the kernels from the registry

_C_NAMES = {"i64": "long long", "u32": "unsigned int"}
_SCALARS = {"i64": ctypes.c_longlong, "u32": ctypes.c_uint, "int": ctypes.c_int, "double": ctypes.c_double}


def scalar(ctype: str, value: Any) -> Any:
    """A scalar argument as the ctypes value of its registry ``ctype``."""
    return _SCALARS[ctype](float(value) if ctype == "double" else int(value))


def c_type(ctype: str, dtype: np.dtype) -> str:
    """The C type of a registry ``ctype`` (``const S*``, ``i64``, ...) for ``dtype`` data."""
    names = {"S": STORAGE[dtype], "T": STORAGE[compute(dtype)], **_C_NAMES}
    return re.sub(r"\b(S|T|i64|u32)\b", lambda m: names[m.group(1)], ctype)


def array_dtype(ctype: str, dtype: np.dtype) -> np.dtype:
    """The NumPy dtype of a pointer parameter for ``dtype`` data."""
    base = ctype.replace("const", "").replace("*", "").strip()
    return {"S": dtype, "T": compute(dtype), "i64": np.dtype(np.int64), "bool": np.dtype(np.bool_)}[base]


def symbol(name: str, dtype: np.dtype) -> str:
    return f"emu_{name}_{dtype.name}"


def wrappers(names: tuple[str, ...], dtypes: tuple[np.dtype, ...]) -> str:
    """An ``extern "C"`` launch function per kernel and dtype, with the
    kernel's CUDA parameters in registry order.  The kernel is taken as a
    function pointer of exactly the registry's parameter types, so a
    parameter whose order or C type differs from the kernel's (an ``int``
    where the kernel takes ``long long``, which a call would convert) fails
    to compile."""
    out = []
    for name in names:
        params = _ops.KERNELS[name].cuda
        for dt in dtypes:
            types = [c_type(_ops.PARAMS[p].ctype, dt) for p in params]
            decl = ", ".join(f"{t} a_{p}" for t, p in zip(types, params))
            call = ", ".join(f"a_{p}" for p in params)
            out.append(
                f"GNP_EMU_EXPORT int {symbol(name, dt)}(unsigned grid, unsigned block, "
                f"unsigned schedule, {decl}) {{\n"
                f"    void (*kernel)({', '.join(types)}) = &{name}<{STORAGE[dt]}>;\n"
                f"    auto body = [=] {{ kernel({call}); }};\n"
                "    return gnp_emu::launch_callable(grid, block, schedule, body);\n"
                "}\n"
            )
    return "\n".join(out)


def compile_library(build: Path, tag: str, text: str, extra: str = "") -> Path:
    """``text`` (a CUDA source, verbatim) plus ``extra``, compiled against the shim."""
    (build / f"{tag}.cu").write_text(text, "utf-8")
    main = build / f"{tag}_host.cpp"
    main.write_text(f'#include "shim.h"\n#include "{tag}.cu"\n\n{extra}', "utf-8")
    lib = build / f"{tag}.so"
    # HOST first: its cuda_fp16.h replaces CUDA's <cuda_fp16.h>.
    cmd = [GXX, *CXXFLAGS, f"-I{HOST}", f"-I{build}", "-o", str(lib), str(main)]
    res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stderr}"
    return lib


class Emulator(Library):
    """The emulated kernels of one build, launched as ``kernels/cuda.py`` launches them."""

    def launch(
        self,
        name: str,
        dtype: np.dtype,
        values: dict[str, Any],
        *,
        sms: int = 1,
        one_block: bool = False,
        schedule: int = 0,
    ) -> None:
        """Run kernel ``name`` for ``dtype`` data on ``values`` (its array and
        scalar arguments by parameter name; outputs are written in place).

        The geometry and the derived scalars (``rows``, ``k``, ``nsamples``,
        ``lanes``, ``per_item``, ``tau_stride``) come from the arrays and the
        geometry functions of ``kernels/cuda.py`` for ``sms`` multiprocessors
        (``nsamples`` from the values where no array has a draw axis: the
        samples a kernel averages);
        ``one_block`` runs the whole grid-stride loop on one block.
        """
        kernel = _ops.KERNELS[name]
        dtype = np.dtype(dtype)
        unknown = set(values) - set(kernel.cuda)
        assert not unknown, f"{name} has no parameters {sorted(unknown)}"
        data = next(p for p in kernel.cuda if _ops.PARAMS[p].shape == "RK")
        rows, k = values[data].shape
        plan = {**values, "rows": rows, "k": k}
        per_row = [
            values[p].shape[-1]
            for p in kernel.cuda
            if _ops.PARAMS[p].shape in ("RN", "RKN") and values.get(p) is not None
        ]
        n = plan["nsamples"] = per_row[0] if per_row else int(values.get("nsamples", 1))
        for p in kernel.cuda:
            if _ops.PARAMS[p].shape.startswith("1|"):
                plan[f"{p}_stride"] = 0 if values[p].size == 1 else 1
        if cuda.nothing_to_write(kernel, rows, k, n):
            return  # as cuda.launch
        # The grid, the block and the argument list of cuda.launch itself.
        (blocks,), (threads,), argv = cuda.launch_plan(kernel, plan, dtype, sms)
        shapes = {"RK": (rows, k), "R": (rows,), "RN": (rows, n), "RKN": (rows, k, n), "U": (1,)}
        args = []
        for p, value in zip(kernel.cuda, argv):
            param = _ops.PARAMS[p]
            if not param.pointer:
                args.append((p, scalar(param.ctype, value), False))
                continue
            if value is None:
                assert param.optional, f"{name}: {p} is not optional"
                args.append((p, None, False))
                continue
            want = array_dtype(param.ctype, dtype)
            assert isinstance(value, np.ndarray) and value.dtype == want, (name, p, want)
            if param.shape in ("1|R", "1|RK"):
                n_of = rows if param.shape == "1|R" else rows * k
                assert value.shape in ((1,), (n_of,)), (name, p, value.shape)
            else:
                assert value.shape == shapes[param.shape], (name, p, value.shape)
            args.append((p, value, not param.ctype.startswith("const")))
        self.call(symbol(name, dtype), 1 if one_block else blocks, threads, schedule, args)


SCHEDULES = ((False, 0), (True, REVERSED))
"""``(one_block, schedule)`` of the launches of every case: the grid of one
multiprocessor in index order, and a single block in reverse order, whose
threads then take several rows each."""


def emulate(emu: Emulator, name: str, dtype: np.dtype, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` after the launch of ``name`` on each of :data:`SCHEDULES`,
    whose outputs must agree bit for bit (a row's result does not depend on
    which thread computes it, nor on the order threads run in)."""
    kernel = _ops.KERNELS[name]
    outputs = [
        p
        for p in kernel.cuda
        if _ops.PARAMS[p].pointer
        and not _ops.PARAMS[p].ctype.startswith("const")
        and values.get(p) is not None
    ]
    runs = []
    for one_block, schedule in SCHEDULES:
        run = {**values, **{p: values[p].copy() for p in outputs}}
        emu.launch(name, dtype, run, one_block=one_block, schedule=schedule)
        runs.append(run)
    for run, (one_block, schedule) in zip(runs[1:], SCHEDULES[1:]):
        for p in outputs:
            a, b = runs[0][p], run[p]
            # A bool, not bytes == bytes: pytest would diff the bytes.
            same = bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)))
            assert same, (
                f"{name} {p}: the launch with one_block={one_block}, schedule={schedule} "
                f"differs at {np.argwhere(a.view(np.uint8) != b.view(np.uint8))[0]}"
            )
    for p in outputs:
        values[p][...] = runs[0][p]
    return values


# --------------------------------------------------------------------------
# Inputs, references and comparisons

ROWS = 9
"""Rows per case: four random rows and five special ones, so that every
warp-per-row layout (1 to 32 rows a warp) ends with an idle row group, and a
grid of 32 lanes a row with idle warps."""


def logits(dtype: np.dtype, k: int, seed: int) -> np.ndarray:
    """Four random rows (plain, spread, offset by 60, nearly constant), then a
    row holding NaN, one holding +inf, one all -inf, one with every other
    element -inf, and a constant one."""
    x = np.random.default_rng(seed).normal(size=(ROWS, k))
    x[1] *= 5.0
    x[2] += 60.0
    x[3] *= 0.01
    x[4, k // 2] = np.nan
    x[5, (2 * k) // 3] = np.inf
    x[6] = -np.inf
    x[7, ::2] = -np.inf
    x[8] = 0.5
    return x.astype(dtype)


def normal(dtype: np.dtype, shape: Any, seed: int) -> np.ndarray:
    """Standard normal values (gradients) of ``dtype``."""
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


def reference_noise(rids: np.ndarray, k: int, draw: int, dtype: np.dtype) -> np.ndarray:
    """Gumbel noise of the stream (DESIGN section 4) in float64, from the
    Philox words of ``kernels/philox.py``: ``(len(rids), k)``."""
    return -np.log(-np.log(reference_uniforms(rids, k, draw, dtype)))


def reference_logistic(rids: np.ndarray, k: int, draw: int, dtype: np.dtype) -> np.ndarray:
    """Logistic noise (stream domain 1) in float64: ``(len(rids), k)``."""
    u = reference_uniforms(rids, k, draw + (_ops.LOGISTIC_DOMAIN << 28), dtype)
    return np.log(u) - np.log1p(-u)


def reference_uniforms(rids: np.ndarray, k: int, draw: int, dtype: np.dtype) -> np.ndarray:
    """The uniforms of the stream at draw word ``draw``, ``(len(rids), k)``."""
    w = cuda._NOISE_WORDS[dtype]
    nb = -(-k // w)
    r = np.asarray(rids, np.int64).astype(np.uint64)
    ctr = np.zeros((r.size, nb, 4), np.uint64)
    ctr[..., 0] = np.arange(nb, dtype=np.uint64)
    ctr[..., 1] = np.uint64(draw)
    ctr[..., 2] = (r & np.uint64(0xFFFFFFFF))[:, None]
    ctr[..., 3] = (r >> np.uint64(32))[:, None]
    words = np.empty((r.size * nb, 4), np.uint64)
    philox_block_array(ctr.reshape(-1, 4), np.array(KEY, np.uint64), 10, words)
    words = words.reshape(r.size, nb, 4)
    if w == 4:
        bits = words.reshape(r.size, -1)[:, :k]
        u = ((bits >> np.uint64(8)) | np.uint64(1)).astype(np.float64) * 2.0**-24
    else:
        hi = words[..., 0::2].reshape(r.size, -1)[:, :k]
        lo = words[..., 1::2].reshape(r.size, -1)[:, :k]
        x = (hi << np.uint64(32)) | lo
        u = ((x >> np.uint64(11)) | np.uint64(1)).astype(np.float64) * 2.0**-53
    return u


def tolerance(ref: np.ndarray, scale: np.ndarray, dtype: np.dtype, ulps: float) -> np.ndarray:
    """The allowed difference from ``ref``: ``ulps`` units of the compute
    dtype's epsilon times ``scale`` (the magnitude the error is relative to),
    plus one float16 ulp of ``ref`` when the result is stored as half (the
    two results round independently to half)."""
    ct = compute(dtype)
    fi = np.finfo(ct)
    with np.errstate(all="ignore"):
        scale = np.abs(np.asarray(scale, np.float64))
        allowed = ulps * (float(fi.eps) * scale + float(fi.smallest_subnormal))
        if dtype == F16:
            r = np.abs(np.asarray(ref, np.float64)).astype(np.float16)
            allowed = allowed + np.spacing(r).astype(np.float64)
    return allowed


def check(
    what: str, got: np.ndarray, ref: np.ndarray, scale: Any, dtype: np.dtype, ulps: float
) -> None:
    """``got`` (emulated) against ``ref`` (CPU): NaN and infinities exactly
    where ``ref`` has them, finite values within :func:`tolerance`."""
    g = np.asarray(got, np.float64)
    r = np.broadcast_to(np.asarray(ref, np.float64), g.shape)
    allowed = np.broadcast_to(tolerance(r, scale, dtype, ulps), g.shape)
    finite = np.isfinite(g) & np.isfinite(r)
    with np.errstate(invalid="ignore"):
        err = np.where(finite, np.abs(g - r), 0.0)
        bad = (np.isnan(g) != np.isnan(r)) | ((np.isinf(g) | np.isinf(r)) & (g != r))
        bad |= finite & ~(err <= allowed)
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {bad.size} values differ from the CPU; first at {i}: "
            f"emulated {g[i]!r}, CPU {r[i]!r}, allowed difference {allowed[i]:.3g}"
        )


def row_max(a: np.ndarray) -> np.ndarray:
    """The maximum of each row's finite values (0 for a row without any), as
    a column: the shift of the softmax family on the rows whose results are
    finite, and a finite placeholder on the others."""
    m = np.where(np.isfinite(a), a, -np.inf).max(axis=-1, keepdims=True)
    return np.where(np.isfinite(m), m, 0.0)


ULPS = 16
"""Tolerance of the float kernels, in ulps of the compute dtype at the
scale of each result (each case says what the scale is: the result itself
for softmax, the terms a sum or a difference is made of elsewhere).  The two
sides perform the same IEEE operations on the same values except for (a) the
exponentials and logarithms: glibc's here, within 1 ulp, standing in for
the device's; the CPU kernels' vectorised polynomials, within 2 ulp
(``kernels/_vmath.py``); (b) the order of the row sums: per-thread partial
sums and xor butterflies here, the CPU's blocked vector sums there, each
within a few ulp on these rows; (c) one or two roundings in applying the
final factor.  Measured over every case: at most 7 ulp (float64
``logsumexp_bwd``, K = 1024: 3 from (a), the rest from (b) and (c)), 4 or
less elsewhere; 16 leaves room for other inputs without admitting an
indexing or reduction error, which is off by far more."""

NOISE_ULPS = 4
"""Gumbel noise, in ulps of ``max(|G|, 1)`` (as tests/test_cuda_streams.py)."""


def one_hot_check(
    what: str, got: np.ndarray, hard: np.ndarray, soft: np.ndarray, allowed: np.ndarray
) -> None:
    """``got`` is the exact one-hot of the CPU's (``hard``), or a NaN row
    where it is one, except that at a near-tie of the soft sample (the two
    indices' values within their tolerances) either index may win."""
    g = np.asarray(got, np.float64)
    nan_rows = np.isnan(hard).any(axis=-1)
    assert (np.isnan(g[nan_rows])).all(), f"{what}: a NaN row is not all NaN"
    assert not np.isnan(g[~nan_rows]).any(), f"{what}: NaN in a valid row"
    for r in np.flatnonzero(~nan_rows):
        a, b = int(np.argmax(g[r])), int(np.argmax(hard[r]))
        assert (g[r] == (np.arange(g.shape[1]) == a)).all(), f"{what}: row {r} is not a one-hot"
        if a != b:
            gap = abs(float(soft[r, a]) - float(soft[r, b]))
            assert gap <= allowed[r, a] + allowed[r, b], (
                f"{what}: row {r} picks {a}, the CPU {b}, which is no near-tie "
                f"(soft values {soft[r, a]!r} and {soft[r, b]!r})"
            )


def index_check(
    what: str, got: np.ndarray, ref: np.ndarray, x: np.ndarray, rids: np.ndarray, dtype: np.dtype
) -> None:
    """Sample indices equal to the CPU's except at near-ties of ``z = (x - max
    x) + G`` (the noise agrees to a few ulp, not bit for bit): there the two
    indices' ``z`` must agree within 16 ulp of ``max(1, |z|)``."""
    k = x.shape[1]
    assert ((got >= 0) & (got < k)).all(), f"{what}: index out of range: {got}"
    eps = float(np.finfo(compute(dtype)).eps)
    for r, s in np.argwhere(got != ref):
        g = reference_noise(rids[r : r + 1], k, int(s), compute(dtype))[0]
        z = (x[r].astype(np.float64) - float(np.max(x[r]))) + g
        a, b = z[got[r, s]], z[ref[r, s]]
        assert abs(a - b) <= 16 * eps * max(1.0, abs(a)), (
            f"{what}: row {r} draw {s} gives {got[r, s]}, the CPU {ref[r, s]}, "
            f"which is no near-tie (z = {a!r} and {b!r})"
        )


# --------------------------------------------------------------------------
# One case per kernel: inputs, the emulated launch, the CPU reference


def case_logsumexp_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    x = logits(dtype, k, 1)
    xc = x.astype(compute(dtype))
    got = emulate(emu, "logsumexp_fwd", dtype, {"x": x, "out_rows": np.full(ROWS, np.nan, dtype)})
    ref = gnp.logsumexp(xc)
    with np.errstate(all="ignore"):
        scale = np.abs(ref) + np.abs(ref - row_max(xc)[:, 0])  # m + log(s): the error of log(s)
    check("logsumexp_fwd", got["out_rows"], ref, scale, dtype, ULPS)


def case_softmax_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    x = logits(dtype, k, 2)
    got = emulate(emu, "softmax_fwd", dtype, {"x": x, "out": np.full(x.shape, np.nan, dtype)})
    ref = gnp.softmax(x.astype(compute(dtype)))
    check("softmax_fwd", got["out"], ref, ref, dtype, ULPS)


def case_log_softmax_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    x = logits(dtype, k, 3)
    got = emulate(emu, "log_softmax_fwd", dtype, {"x": x, "out": np.full(x.shape, np.nan, dtype)})
    ref = gnp.log_softmax(x.astype(compute(dtype)))
    # (x - m) - log(s): the error of log(s) = -max(out) adds to every element.
    with np.errstate(all="ignore"):
        scale = np.abs(ref) + np.abs(row_max(ref))
    check("log_softmax_fwd", got["out"], ref, scale, dtype, ULPS)


def case_logsumexp_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    x = logits(dtype, k, 4)
    g = normal(dtype, ROWS, 5)
    values = {"g_rows": g, "x": x, "out": np.full(x.shape, np.nan, dtype)}
    got = emulate(emu, "logsumexp_bwd", dtype, values)
    ct = compute(dtype)
    ref = gnp.logsumexp_backward(g.astype(ct), x.astype(ct))
    check("logsumexp_bwd", got["out"], ref, ref, dtype, ULPS)


def case_softmax_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    y = gnp.softmax(logits(dtype, k, 6).astype(ct)).astype(dtype)
    g = normal(dtype, y.shape, 7)
    values = {"g": g, "y": y, "out": np.full(y.shape, np.nan, dtype)}
    got = emulate(emu, "softmax_bwd", dtype, values)
    gc, yc = g.astype(ct), y.astype(ct)
    ref = gnp.softmax_backward(gc, yc)
    # y (g - <g, y>): the error of <g, y> is relative to sum |g y|.
    with np.errstate(all="ignore"):
        scale = np.abs(yc) * (np.abs(gc) + np.abs(gc * yc).sum(axis=-1, keepdims=True))
    check("softmax_bwd", got["out"], ref, scale, dtype, ULPS)


def case_log_softmax_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    y = gnp.log_softmax(logits(dtype, k, 8).astype(ct)).astype(dtype)
    g = normal(dtype, y.shape, 9)
    values = {"g": g, "y": y, "out": np.full(y.shape, np.nan, dtype)}
    got = emulate(emu, "log_softmax_bwd", dtype, values)
    gc, yc = g.astype(ct), y.astype(ct)
    ref = gnp.log_softmax_backward(gc, yc)
    with np.errstate(all="ignore"):  # g - exp(y) sum(g)
        scale = np.abs(gc) + np.exp(yc.astype(np.float64)) * np.abs(gc).sum(axis=-1, keepdims=True)
    check("log_softmax_bwd", got["out"], ref, scale, dtype, ULPS)


def noise_case(emu: Emulator, dtype: np.dtype, k: int, name: str, public: Callable, reference: Callable) -> None:
    """A noise kernel (``gumbel_fwd``, ``logistic_fwd``) against its public
    function (draw 0, with and without row ids) and its float64 reference
    (draw 7)."""
    nd = compute(dtype)  # float16 noise is the float32 stream, rounded
    for row_ids, draw in ((None, 0), (IDS, 0), (IDS, 7)):
        values = {
            "out": np.full((ROWS, k), np.nan, dtype),
            "k0": KEY[0],
            "k1": KEY[1],
            "row_ids": row_ids,
            "draw": draw,
        }
        got = emulate(emu, name, dtype, values)
        if draw == 0:
            ref = public((ROWS, k), rng=SEED, dtype=nd, row_ids=row_ids)
        else:
            ref = reference(IDS, k, draw, nd)
        scale = np.maximum(np.abs(ref.astype(np.float64)), 1.0)
        check(f"{name} row_ids={row_ids is not None} draw={draw}", got["out"], ref, scale, dtype, NOISE_ULPS)


def case_gumbel_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    noise_case(emu, dtype, k, "gumbel_fwd", gnp.gumbel, reference_noise)


def soft_scale(xc: np.ndarray, noise: Any, tau: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The error scale of a Gumbel-Softmax sample ``y = exp((z - max z) / tau) / s``,
    ``z = (x - max x) + G``: an absolute error in the exponent is a relative
    error of ``y``, so ``y`` times the magnitudes of the terms of the
    exponent (those of its element and of the row's maximum) over ``tau``."""
    with np.errstate(all="ignore"):
        x = xc.astype(np.float64)
        g = np.broadcast_to(np.asarray(noise, np.float64), x.shape)
        d = x - row_max(x)
        z = d + g
        mz = np.max(z, axis=-1, keepdims=True)
        a = np.abs(d) + np.maximum(np.abs(g), 1.0) + np.abs(z)
        top = np.argmax(np.where(np.isnan(z), -np.inf, z), axis=-1)[:, None]
        top = np.take_along_axis(a, top, axis=-1)
        t = tau.astype(np.float64).reshape(-1, 1)
        s = np.abs(y) * ((a + top) / t + np.abs(z - mz) / t + 1.0)
        return np.where(y == 0, 0.0, s)


def case_gumbel_softmax_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = logits(dtype, k, 10)
    xc = x.astype(ct)
    taus = np.random.default_rng(11).uniform(0.3, 2.0, ROWS).astype(ct)
    noise = np.random.default_rng(12).gumbel(size=x.shape).astype(dtype)
    variants = (
        # noise_mode, row_ids, one tau per row, hard, out_soft
        (_ops.NOISE_DRAW, None, False, False, False),
        (_ops.NOISE_DRAW, IDS, True, True, True),
        (_ops.NOISE_ARRAY, None, True, False, False),
        (_ops.NOISE_NONE, None, False, True, False),
    )
    for mode, row_ids, per_row, hard, with_soft in variants:
        what = f"gumbel_softmax_fwd noise_mode={mode} hard={hard}"
        tau = taus if per_row else np.array([0.7], ct)
        key = KEY if mode == _ops.NOISE_DRAW else (0, 0)
        values = {
            "logits": x,
            "out": np.full(x.shape, np.nan, dtype),
            "k0": key[0],
            "k1": key[1],
            "row_ids": row_ids,
            "tau": tau,
            "noise_mode": mode,
            "noise": noise if mode == _ops.NOISE_ARRAY else None,
            "out_soft": np.full(x.shape, np.nan, dtype) if with_soft else None,
            "hard": int(hard),
        }
        got = emulate(emu, "gumbel_softmax_fwd", dtype, values)
        if mode == _ops.NOISE_DRAW:
            kw: dict[str, Any] = {"rng": SEED}
            g = gnp.gumbel(x.shape, rng=SEED, dtype=ct, row_ids=row_ids)
        elif mode == _ops.NOISE_ARRAY:
            kw = {"noise": noise.astype(ct)}
            g = noise
        else:
            kw = {"noise": 0}
            g = 0.0
        y, y_soft = gnp.gumbel_softmax(
            xc,
            tau=tau if per_row else float(tau[0]),
            hard=hard,
            row_ids=row_ids,
            return_soft=True,
            **kw,
        )
        scale = soft_scale(xc, g, np.broadcast_to(tau, ROWS), y_soft)
        if hard:
            one_hot_check(what, got["out"], y, y_soft, tolerance(y_soft, scale, ct, ULPS))
            if with_soft:
                check(what + " out_soft", got["out_soft"], y_soft, scale, dtype, ULPS)
        else:
            check(what, got["out"], y_soft, scale, dtype, ULPS)


def case_gumbel_softmax_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    taus = np.random.default_rng(13).uniform(0.3, 2.0, ROWS).astype(ct)
    y = gnp.gumbel_softmax(logits(dtype, k, 14).astype(ct), tau=taus, rng=SEED).astype(dtype)
    g = normal(dtype, y.shape, 15)
    gc, yc = g.astype(ct), y.astype(ct)
    for per_row, with_dtau in ((False, False), (True, True), (False, True)):
        what = f"gumbel_softmax_bwd per_row_tau={per_row}"
        tau = taus if per_row else np.array([0.7], ct)
        values = {
            "g": g,
            "y": y,
            "tau": tau,
            "out": np.full(y.shape, np.nan, dtype),
            "dtau": np.full(ROWS, np.nan, ct) if with_dtau else None,
        }
        got = emulate(emu, "gumbel_softmax_bwd", dtype, values)
        tau_rows = np.broadcast_to(tau, ROWS).copy()
        dl, dt = gnp.gumbel_softmax_backward(gc, yc, tau=tau_rows, tau_grad=True)
        with np.errstate(all="ignore"):
            t = tau_rows.astype(np.float64)[:, None]
            scale = np.abs(yc) * (np.abs(gc) + np.abs(gc * yc).sum(axis=-1, keepdims=True)) / t
            logs = np.where(yc != 0, np.abs(np.log(np.abs(yc.astype(np.float64)))), 0.0)
            dt_scale = ((scale + np.abs(dl)) * logs).sum(axis=-1)
        check(what, got["out"], dl, scale, dtype, ULPS)
        if with_dtau:
            check(what + " dtau", got["dtau"], dt, dt_scale, ct, ULPS)


def case_categorical_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = logits(dtype, k, 16)
    # Draws per row, row ids, rows: one run per row, and (for a single row or
    # warp-per-row rows) draws split into runs of several, the last partial.
    variants = ((1, None, ROWS), (5, IDS, ROWS), (11, None, ROWS), (5, None, 1))
    for nsamples, row_ids, rows in variants:
        xs = x[:rows]
        ids = None if row_ids is None else row_ids[:rows]
        values = {
            "logits": xs,
            "samples": np.full((rows, nsamples), -2, np.int64),
            "k0": KEY[0],
            "k1": KEY[1],
            "row_ids": ids,
        }
        got = emulate(emu, "categorical_fwd", dtype, values)["samples"]
        xc = xs.astype(ct)
        rids = np.arange(rows) if ids is None else ids
        valid = np.isfinite(np.max(xc, axis=-1))
        what = f"categorical_fwd nsamples={nsamples} rows={rows}"
        assert (got[~valid] == -1).all(), f"{what}: rows without a distribution: {got[~valid]}"
        ref = gnp.categorical(xc[valid], num_samples=nsamples, rng=SEED, row_ids=rids[valid])
        index_check(what, got[valid], ref, xc[valid], rids[valid], dtype)


def distribution(xc: np.ndarray) -> dict[str, np.ndarray]:
    """The terms of the estimator kernels in float64, as error scales: ``d =
    x - m`` (``m`` the row maximum of :func:`row_max`), ``p = softmax(x)``,
    ``ls = log(sum(exp(d)))`` and ``|d|`` with 0 where ``p = 0`` (no ``0 *
    inf``)."""
    with np.errstate(all="ignore"):
        x = xc.astype(np.float64)
        d = x - row_max(x)
        e = np.exp(d)
        s = e.sum(axis=-1, keepdims=True)
        p = e / s
        ad = np.where(e > 0, np.abs(d), 0.0)
        return {"d": d, "p": p, "ls": np.log(s), "ad": ad}


def invalid_index_rows(index: np.ndarray, k: int) -> np.ndarray:
    """``index`` with indices outside ``[0, k)`` in row 0 (one far below, one
    far past the end of the row, so that a read of either faults) and in
    row 3 (``k`` itself): the rows the kernels must make NaN without reading
    them.  The CPU's public functions reject such indices; their references
    are taken on the valid ``index``."""
    bad = index.copy()
    bad[0, 0] = -(2**62)
    bad[0, -1] = k + 2**40
    bad[3, bad.shape[1] // 2] = k
    return bad


def sample_index(k: int, nsamples: int, seed: int) -> np.ndarray:
    """Random indices: in every row the last element first (in the uncached
    tail of the long rows), then, with several samples, the first element,
    and duplicates (the last two samples of every other row; the last
    element again from row 4 on; all of row 2's samples at it), which add
    up in sample order."""
    index = np.random.default_rng(seed).integers(0, k, (ROWS, nsamples))
    index[:, 0] = k - 1
    if nsamples > 1:
        index[:, 1] = 0
        index[1::2, -1] = index[1::2, -2]  # a duplicate pair, in order
        index[2, :] = k - 1  # every sample at one element
        index[4:, 2] = k - 1
    return index


def case_categorical_log_prob_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = logits(dtype, k, 17)
    xc = x.astype(ct)
    dist = distribution(xc)
    for nsamples in (1, 5):
        index = sample_index(k, nsamples, 18 + nsamples)
        for invalid in (False, True):
            idx = invalid_index_rows(index, k) if invalid else index
            what = f"categorical_log_prob_fwd nsamples={nsamples} invalid={invalid}"
            values = {
                "logits": x,
                "index": idx,
                "out_samples": np.full(idx.shape, np.nan, dtype),
                "status": np.zeros(1, np.int64),
            }
            done = emulate(emu, "categorical_log_prob_fwd", dtype, values)
            got = done["out_samples"]
            assert int(done["status"][0]) == int(invalid), f"{what}: status {done['status']}"
            ref = gnp.categorical_log_prob(xc, index).astype(np.float64)
            ref[(idx < 0) | (idx >= k)] = np.nan
            # (x_i - m) - ls, as log_softmax: relative to |d_i| + |ls|.
            with np.errstate(all="ignore"):
                di = np.take_along_axis(np.abs(dist["d"]), index, axis=-1)
                scale = di + np.abs(dist["ls"])
            check(what, got, ref, scale, dtype, ULPS)


def score_weights(estimator: int, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """The weights ``w'_s`` of ``score_bwd`` in float64 (an error scale)."""
    w = w.astype(np.float64)
    n = w.shape[1]
    if estimator == _ops.SCORE_SUM:
        return w
    if estimator == _ops.SCORE_MEAN:
        return (w - (0.0 if b is None else b.astype(np.float64))) / n
    return (w - w.mean(axis=-1, keepdims=True)) / (n - 1)


def case_score_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = logits(dtype, k, 19)
    xc = x.astype(ct)
    p = distribution(xc)["p"]
    variants = (
        # estimator, samples per row, baseline
        (_ops.SCORE_SUM, 1, False),
        (_ops.SCORE_SUM, 5, False),
        (_ops.SCORE_MEAN, 1, False),
        (_ops.SCORE_MEAN, 5, False),
        (_ops.SCORE_MEAN, 1, True),
        (_ops.SCORE_MEAN, 5, True),
        (_ops.SCORE_LOO, 5, False),
    )
    for estimator, nsamples, with_baseline in variants:
        index = sample_index(k, nsamples, 20 + nsamples)
        w = normal(dtype, index.shape, 21 + nsamples)
        w[1, -1] = np.nan  # NaN in a weight: its row is NaN
        b = normal(dtype, index.shape, 22 + nsamples) if with_baseline else None
        wc, bc = w.astype(ct), None if b is None else b.astype(ct)
        if estimator == _ops.SCORE_SUM:
            ref = gnp.categorical_log_prob_backward(wc, xc, index)
        else:
            baseline = "loo" if estimator == _ops.SCORE_LOO else bc
            ref = gnp.reinforce(xc, index, wc, baseline=baseline)
        # -W softmax_j + the weights at j, added in order: relative to the
        # magnitudes of W's terms (LOO's W is 0 but for their rounding) times
        # p_j, plus those of the weights at j.
        ws = score_weights(estimator, w, b)
        with np.errstate(all="ignore"):
            scale = np.abs(ws).sum(axis=-1, keepdims=True) * p
            for s in range(nsamples):
                np.add.at(scale, (np.arange(ROWS), index[:, s]), np.abs(ws[:, s]))
        for invalid in (False, True):
            idx = invalid_index_rows(index, k) if invalid else index
            what = (
                f"score_bwd estimator={estimator} nsamples={nsamples} "
                f"baseline={with_baseline} invalid={invalid}"
            )
            values = {
                "logits": x,
                "index": idx,
                "weights": w,
                "baseline": b,
                "out": np.full(x.shape, np.nan, dtype),
                "status": np.zeros(1, np.int64),
                "estimator": estimator,
            }
            done = emulate(emu, "score_bwd", dtype, values)
            got = done["out"]
            assert int(done["status"][0]) == int(invalid), f"{what}: status {done['status']}"
            want = ref.astype(np.float64)
            want[((idx < 0) | (idx >= k)).any(axis=-1)] = np.nan
            check(what, got, want, scale, dtype, ULPS)


def entropy_scale(dist: dict[str, np.ndarray]) -> np.ndarray:
    """The error scale of ``H = ls - sum_j e_j d_j / s``, as a column: the
    magnitudes of its two terms."""
    with np.errstate(all="ignore"):
        return np.abs(dist["ls"]) + (dist["p"] * dist["ad"]).sum(axis=-1, keepdims=True)


def case_categorical_entropy_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    x = logits(dtype, k, 23)
    xc = x.astype(compute(dtype))
    values = {"logits": x, "out_rows": np.full(ROWS, np.nan, dtype)}
    got = emulate(emu, "categorical_entropy_fwd", dtype, values)["out_rows"]
    ref = gnp.categorical_entropy(xc)
    check("categorical_entropy_fwd", got, ref, entropy_scale(distribution(xc))[:, 0], dtype, ULPS)


def case_categorical_entropy_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = logits(dtype, k, 24)
    g = normal(dtype, ROWS, 25)
    xc, gc = x.astype(ct), g.astype(ct)
    values = {"g_rows": g, "logits": x, "out": np.full(x.shape, np.nan, dtype)}
    got = emulate(emu, "categorical_entropy_bwd", dtype, values)["out"]
    ref = gnp.categorical_entropy_backward(gc, xc)
    # -g p ((d - ls) + H): relative to |g| p (|d| + |ls| + H's scale).
    dist = distribution(xc)
    with np.errstate(all="ignore"):
        scale = np.abs(gc.astype(np.float64))[:, None] * dist["p"] * (
            dist["ad"] + np.abs(dist["ls"]) + entropy_scale(dist)
        )
    check("categorical_entropy_bwd", got, ref, scale, dtype, ULPS)


KL_PAIRS = [7, 4, 2, 3, 1, 5, 6, 0, 8]
"""The rows of :func:`logits` that give p for each row of q: a random q
against a p with every other category masked (KL = +inf) and against a NaN
p, random against random, NaN against random, +inf and all -inf against
themselves, a q with masked categories against a random p, and two constant
rows (KL = 0)."""


def kl_inputs(dtype: np.dtype, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return logits(dtype, k, seed), logits(dtype, k, seed + 1)[KL_PAIRS]


def kl_scale(q: dict[str, np.ndarray], p: dict[str, np.ndarray]) -> np.ndarray:
    """The error scale of each term ``(dq - lsq) - (dp - lsp)`` of the
    divergence (the magnitudes of its four parts), 0 where ``q_j = 0``."""
    with np.errstate(all="ignore"):
        a = q["ad"] + np.abs(q["ls"]) + np.abs(p["d"]) + np.abs(p["ls"])
        return np.where(q["p"] > 0, a, 0.0)


def case_categorical_kl_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    xq, xp = kl_inputs(dtype, k, 26)
    qc, pc = xq.astype(ct), xp.astype(ct)
    values = {"logits": xq, "logits_p": xp, "out_rows": np.full(ROWS, np.nan, dtype)}
    got = emulate(emu, "categorical_kl_fwd", dtype, values)["out_rows"]
    ref = gnp.categorical_kl(qc, pc)
    q, p = distribution(qc), distribution(pc)
    with np.errstate(all="ignore"):
        scale = (q["p"] * kl_scale(q, p)).sum(axis=-1)
    check("categorical_kl_fwd", got, ref, scale, dtype, ULPS)


def case_categorical_kl_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    xq, xp = kl_inputs(dtype, k, 28)
    g = normal(dtype, ROWS, 30)
    qc, pc, gc = xq.astype(ct), xp.astype(ct), g.astype(ct)
    values = {
        "g_rows": g,
        "logits": xq,
        "logits_p": xp,
        "out": np.full(xq.shape, np.nan, dtype),
        "out_p": np.full(xq.shape, np.nan, dtype),
    }
    got = emulate(emu, "categorical_kl_bwd", dtype, values)
    dq, dp = gnp.categorical_kl_backward(gc, qc, pc)
    q, p = distribution(qc), distribution(pc)
    with np.errstate(all="ignore"):
        ag = np.abs(gc.astype(np.float64))[:, None]
        terms = kl_scale(q, p)
        # g q (lr - KL): the terms of lr and KL's own scale; g (p - q).
        scale_q = ag * q["p"] * (terms + (q["p"] * terms).sum(axis=-1, keepdims=True))
        scale_p = ag * (p["p"] + q["p"])
    check("categorical_kl_bwd out", got["out"], dq, scale_q, dtype, ULPS)
    check("categorical_kl_bwd out_p", got["out_p"], dp, scale_p, dtype, ULPS)



# The ranking family: the Gumbel-top-k sampler and the Plackett-Luce
# log-probability, against the CPU kernels themselves (kernels/cpu.py's
# launch, on the compute dtype), which define what a row that the public
# functions reject (an invalid row, an index outside [0, K)) gives.

RANKING_IDS = np.concatenate([IDS, np.array([3, 2**35 + 1, 99, 2**62 + 11], np.int64)])
"""Row ids of the ranking cases' rows (:func:`ranking_logits`)."""


def ranking_logits(dtype: np.dtype, k: int, seed: int) -> np.ndarray:
    """The rows of :func:`logits`, then four more: exact ties (a few
    categories near 0 and the others 1e30 below, where the noise vanishes in
    the rounding of z, so that those are drawn in index order), shifts that
    overflow (one category at 0.9 of the largest value, some at its negative,
    whose x - max x is -inf: drawn after every finite z, in index order; the
    others tie, 3e38 below the first), only three categories that are not
    -inf, and a last category 100 above the others (a ranking that chooses
    it first leaves the rest less than 2**-60 of its mass: the normaliser of
    the categories never chosen is summed again, ranking.REST_FLOOR).  A
    quarter of the categories of the first two are masked.  float16 data
    holds neither 1e30 nor 3e38, so there the first two are random rows with
    masked categories."""
    ct = compute(dtype)
    rng = np.random.default_rng(seed + 1000)
    x = np.concatenate([logits(dtype, k, seed).astype(np.float64), np.zeros((4, k))])
    ties, over, few, top = ROWS, ROWS + 1, ROWS + 2, ROWS + 3
    x[top] = rng.normal(size=k)
    x[top, -1] = 100.0
    x[ties] = -1e30 if dtype != F16 else rng.normal(size=k)
    x[ties, rng.choice(k, min(3, k), replace=False)] = rng.normal(size=min(3, k))
    big = 0.9 * float(np.finfo(ct).max)
    x[over] = rng.normal(size=k)
    if dtype != F16:
        x[over, rng.choice(k, max(1, k // 3), replace=False)] = -big
        x[over, rng.integers(k)] = big
    for r in (ties, over):
        x[r, rng.choice(k, k // 4, replace=False)] = -np.inf
    x[few] = -np.inf
    x[few, rng.choice(k, min(3, k), replace=False)] = rng.normal(size=min(3, k))
    return x.astype(dtype)


def cpu_kernel(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` after the CPU kernel ``name`` (``kernels/cpu.py``'s launch)."""
    from gumbel_np.kernels import cpu

    kernel = _ops.KERNELS[name]
    rows, k = values[next(p for p in kernel.cuda if _ops.PARAMS[p].shape == "RK")].shape
    per_row = [
        values[p].shape[-1]
        for p in kernel.cuda
        if _ops.PARAMS[p].shape in ("RN", "RKN") and values.get(p) is not None
    ]
    n = per_row[0] if per_row else int(values.get("nsamples", 1))
    run = {**values, "rows": rows, "k": k, "nsamples": n}
    cpu.launch(kernel, run)
    return run


def topk_oracle(xc: np.ndarray, noise: np.ndarray, s: int) -> np.ndarray:
    """The samples of ``categorical_topk_fwd`` by definition: the indices of
    the categories that are not -inf sorted by ``z = (x - max x) + G`` (the
    CPU's noise and arithmetic, in the compute dtype), larger first, then the
    lower index; -1 in every sample of a row without a finite maximum or
    with fewer than ``s`` such categories."""
    rows, k = xc.shape
    out = np.full((rows, s), -1, np.int64)
    with np.errstate(all="ignore"):
        m = np.max(xc, axis=-1)
        for r in range(rows):
            live = np.flatnonzero(xc[r] != -np.inf)
            if not np.isfinite(m[r]) or live.size < s:
                continue
            z = (xc[r, live] - m[r]) + noise[r, live]
            out[r] = live[np.lexsort((live, -z))][:s]
    return out


def topk_check(
    what: str, got: np.ndarray, want: np.ndarray, xc: np.ndarray, z64: np.ndarray, dtype: np.dtype
) -> None:
    """Samples equal to ``want`` but where a sample and the wanted one are a
    near-tie of z in float64 (``z64``, the float64 noise of the stream: the
    device's noise agrees with the CPU's to a few ulp, not bit for bit):
    within 16 ulp of ``max(1, |z|)`` and not equal, so that categories of
    exactly equal z (ties made by the rounding) must come in index order;
    and distinct categories that are not -inf (``xc``)."""
    assert got.shape == want.shape, (what, got.shape, want.shape)
    eps = float(np.finfo(compute(dtype)).eps)
    bad_rows = want[:, 0] == -1
    k = z64.shape[1]
    for r in range(got.shape[0]):
        if bad_rows[r]:
            assert (got[r] == -1).all(), (
                f"{what}: row {r} has no valid sample on the CPU; emulated {got[r]}"
            )
            continue
        ok = ((got[r] >= 0) & (got[r] < k)).all() and np.unique(got[r]).size == got.shape[1]
        assert ok and (xc[r, got[r]] != -np.inf).all(), (
            f"{what}: row {r}: emulated samples {got[r]} are not distinct categories that are "
            f"not -inf; the CPU's {want[r]}"
        )
    for r, q in np.argwhere((got != want) & ~bad_rows[:, None]):
        a, b = int(got[r, q]), int(want[r, q])
        assert 0 <= a < k, f"{what}: row {r} sample {q} is {a}, the CPU {b}"
        za, zb = z64[r, a], z64[r, b]
        near = za != zb and abs(za - zb) <= 16 * eps * max(1.0, abs(za))
        assert near, (
            f"{what}: row {r} sample {q} is {a}, the CPU {b}, which is no near-tie "
            f"(z = {za!r} and {zb!r})"
        )


def topk_draws(k: int) -> tuple[int, ...]:
    """Samples per row of the top-k cases: one, a few, more than the
    TOPK_LIST entries of every lane of a warp (several rounds), and all (a
    full permutation) up to the first row of a block.  (Each sample is a
    reduction over the row: a full permutation of the longer rows would
    take minutes of emulated block reductions.)"""
    every = (k,) if k <= cuda.WARP_MAX_K + 1 else ()
    return tuple(sorted({1, min(3, k), min(k, 40), min(k, 300), *every}))


def case_categorical_topk_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = ranking_logits(dtype, k, 40)
    xc = x.astype(ct)
    rows = x.shape[0]
    ids_all = (None, RANKING_IDS)
    for s in topk_draws(k):
        for row_ids in ids_all if s in (1, min(k, 40)) else (None,):
            what = f"categorical_topk_fwd nsamples={s} row_ids={row_ids is not None}"
            values = {
                "logits": x,
                "samples": np.full((rows, s), -2, np.int64),
                "k0": KEY[0],
                "k1": KEY[1],
                "row_ids": row_ids,
            }
            got = emulate(emu, "categorical_topk_fwd", dtype, values)["samples"]
            cpu_values = {**values, "logits": xc, "samples": np.full((rows, s), -2, np.int64)}
            ref = cpu_kernel("categorical_topk_fwd", cpu_values)
            rids = np.arange(rows) if row_ids is None else row_ids
            noise = gnp.gumbel(x.shape, rng=SEED, dtype=ct, row_ids=rids)
            want = topk_oracle(xc, noise, s)
            with np.errstate(all="ignore"):
                m = np.max(xc, axis=-1, keepdims=True)
                zc = (xc - m) + noise
                z64 = (xc.astype(np.float64) - m) + reference_noise(rids, k, 0, ct)
            # The oracle is the CPU kernel: its first samples, and all of
            # them in a row where no sample's z equals another category's.
            # (In rows of fewer than 64 categories the CPU kernel breaks
            # exact ties when a category moves down its ranks; the oracle
            # keeps the rule the kernels document, ties to the lower index.)
            same = (ref["samples"][:, 0] == want[:, 0]).all()
            assert same, f"{what}: the oracle is not the CPU kernel"
            untied = [
                r for r in range(rows)
                if want[r, 0] >= 0
                and np.unique(zc[r][want[r]]).size == s
                and np.isin(zc[r][xc[r] != -np.inf], zc[r][want[r]]).sum() == s
            ]
            same = (ref["samples"][untied] == want[untied]).all()
            assert same, f"{what}: the oracle is not the CPU kernel"
            topk_check(what, got, want, xc, z64, dtype)


def ranking_index(k: int, n: int, seed: int) -> np.ndarray:
    """Rankings of ``n`` distinct categories for the rows of
    :func:`ranking_logits`, with the last category first (the uncached tail
    of long rows), then the first; row 7 (every other category -inf)
    chooses only categories that are not -inf, row 8 repeats its first
    choice at the end (probability 0)."""
    rng = np.random.default_rng(seed)
    rows = ROWS + 4
    index = np.argsort(rng.random((rows, k)), axis=-1)[:, :n]
    for r in range(rows):
        rest = [j for j in index[r] if j not in (0, k - 1)]
        index[r] = ([k - 1, 0] + rest)[:n] if k > 1 else index[r]
    odd = np.arange(1, k, 2)
    if odd.size >= n:
        index[7] = rng.permutation(odd)[:n]
    if n > 1:
        index[8, -1] = index[8, 0]
    return index


def ranking_terms(xc: np.ndarray, index: np.ndarray) -> dict[str, np.ndarray]:
    """The normalisers of each ranking in float64, as error scales (the
    rows whose indices are valid): ``L[r, q]`` (``L_n`` last) and ``c[r, q]
    = x[i_q]``."""
    x = xc.astype(np.float64)
    rows, n = index.shape
    L = np.full((rows, n + 1), np.nan)
    c = np.full((rows, n), np.nan)
    with np.errstate(all="ignore"):
        for r in range(rows):
            i = index[r]
            if ((i < 0) | (i >= x.shape[1])).any():
                continue
            rest = np.ones(x.shape[1], bool)
            rest[i] = False
            c[r] = x[r, i]
            L[r, n] = np.logaddexp.reduce(x[r, rest]) if rest.any() else -np.inf
            L[r, :n] = np.logaddexp(L[r, n], np.logaddexp.accumulate(c[r, ::-1])[::-1])
    return {"L": L, "c": c}


def ranking_draws(k: int) -> tuple[int, ...]:
    """Ranking lengths: none (log-probability 0, gradient 0), one choice, a
    few, several segments of a warp's scan, and every category."""
    return tuple(sorted({0, 1, min(3, k), min(k, 300), k}))


def case_plackett_luce_log_prob_fwd(
    emu: Emulator, dtype: np.dtype, k: int, draws: tuple[int, ...] | None = None
) -> None:
    ct = compute(dtype)
    x = ranking_logits(dtype, k, 41)
    xc = x.astype(ct)
    for n in draws or ranking_draws(k):
        index = ranking_index(k, n, 42 + n)
        for invalid in (False, True) if n > 0 else (False,):
            idx = invalid_index_rows(index, k) if invalid else index
            what = f"plackett_luce_log_prob_fwd nsamples={n} invalid={invalid}"
            values = {
                "logits": x,
                "index": idx,
                "out_rows": np.full(x.shape[0], np.nan, dtype),
                "status": np.zeros(1, np.int64),
            }
            done = emulate(emu, "plackett_luce_log_prob_fwd", dtype, values)
            assert int(done["status"][0]) == int(invalid), f"{what}: status {done['status']}"
            cpu_values = {
                **values,
                "logits": xc,
                "out_rows": np.full(x.shape[0], np.nan, ct),
                "status": np.zeros(1, np.int64),
            }
            ref = cpu_kernel("plackett_luce_log_prob_fwd", cpu_values)
            assert int(ref["status"][0]) == int(invalid)
            # sum_q c_q - L_q: relative to the magnitudes of the terms, with
            # a few ulp more of each normaliser for the recursion, which the
            # kernels associate differently (the scan's partial logsumexps
            # against the CPU's chain), plus the error bound of the CPU's
            # sum in order, one ulp of each partial sum's magnitude (its
            # float32 sum of 3000 terms of a row 131077 long is 2.0 off,
            # 5e-5 relative, where the device's is within 0.02).  Measured:
            # at most 1 ulp of this over ROW_LENGTHS, 3.8 in the rows of
            # 131077 (float32, 3000 choices).
            t = ranking_terms(xc, idx)
            with np.errstate(all="ignore"):
                terms = t["c"] - t["L"][:, :-1]
                partial = np.nansum(np.abs(np.cumsum(terms, axis=-1)), axis=-1) / ULPS
                scale = np.nansum(np.abs(t["c"]) + 4 * np.abs(t["L"][:, :-1]), axis=-1) + partial
            # float16 data: the CPU's float32 result rounded once, as the
            # public layer returns it (a sum past 65504 is -inf).
            with np.errstate(over="ignore"):
                want = ref["out_rows"].astype(dtype)
            check(what, done["out_rows"], want, scale, dtype, ULPS)


def case_plackett_luce_log_prob_bwd(
    emu: Emulator, dtype: np.dtype, k: int, draws: tuple[int, ...] | None = None
) -> None:
    ct = compute(dtype)
    x = ranking_logits(dtype, k, 43)
    xc = x.astype(ct)
    rows = x.shape[0]
    g = normal(dtype, rows, 44)
    for n in draws or ranking_draws(k):
        index = ranking_index(k, n, 45 + n)
        for invalid in (False, True) if n > 0 else (False,):
            idx = invalid_index_rows(index, k) if invalid else index
            what = f"plackett_luce_log_prob_bwd nsamples={n} invalid={invalid}"
            values = {
                "g_rows": g,
                "logits": x,
                "index": idx,
                "out": np.full(x.shape, np.nan, dtype),
                "status": np.zeros(1, np.int64),
            }
            done = emulate(emu, "plackett_luce_log_prob_bwd", dtype, values)
            assert int(done["status"][0]) == int(invalid), f"{what}: status {done['status']}"
            cpu_values = {
                **values,
                "g_rows": g.astype(ct),
                "logits": xc,
                "out": np.full(x.shape, np.nan, ct),
                "status": np.zeros(1, np.int64),
            }
            if n > 0:
                ref = cpu_kernel("plackett_luce_log_prob_bwd", cpu_values)
            else:
                # An empty ranking's gradient is 0 (the CPU kernel reads its
                # weight A_{n-1} at index -1, before its arrays, for one).
                ref = {"out": np.zeros(x.shape, ct)}
            # Each element is a sum of probabilities exp(x_j - L_q) over the
            # steps q (and 1 - p_q at a chosen one), each with an error in
            # its exponent of the magnitudes of x_j and L_q: relative to
            # |g| sum_q p_{q,j} (|x_j| + |L_q| + max |L|), and 1 at a chosen
            # one.  Measured: at most 2.5 ulp of this over ROW_LENGTHS, 4.9
            # in the rows of 131077 (float32, 3000 choices).
            L = ranking_terms(xc, idx)["L"][:, :-1]
            scale = np.zeros(x.shape)
            with np.errstate(all="ignore"):
                for r in range(rows if n > 0 else 0):
                    xs = xc[r].astype(np.float64)
                    lo = np.min(L[r])  # L_{n-1}: exp(lo - L_q) <= 1
                    big = np.max(np.abs(L[r]))
                    w = np.exp(lo - L[r])
                    sums = (np.abs(xs) + big) * w.sum() + (w * np.abs(L[r])).sum()
                    terms = np.exp(xs - lo) * sums
                    scale[r] = abs(float(g[r])) * (terms + big + 1.0)
            scale = np.nan_to_num(scale, nan=0.0, posinf=1e300)
            with np.errstate(over="ignore"):
                want = ref["out"].astype(dtype)
            check(what, done["out"], want, scale, dtype, ULPS)


# The binary family: element-wise kernels, one thread per Philox block.


def case_logistic_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    noise_case(emu, dtype, k, "logistic_fwd", gnp.logistic, reference_logistic)


def side_check(what: str, got: np.ndarray, ref: np.ndarray, z: np.ndarray, allowed: np.ndarray) -> None:
    """Decisions (bools, or 0/1 values) equal to the CPU's except where the
    quantity they test against 0 (``z``) is within ``allowed`` of it."""
    differ = np.asarray(got, np.float64) != np.asarray(ref, np.float64)
    differ &= ~(np.isnan(np.asarray(got, np.float64)) & np.isnan(np.asarray(ref, np.float64)))
    bad = differ & ~(np.abs(z) <= allowed)
    if bad.any():
        i = tuple(int(v) for v in np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {int(bad.sum())} decisions differ from the CPU, first at {i}: emulated {got[i]!r}, "
            f"CPU {ref[i]!r}, at {z[i]!r} from the threshold"
        )


def case_bernoulli_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = logits(dtype, k, 21)
    xc = x.astype(ct).astype(np.float64)
    eps = float(np.finfo(ct).eps)
    for row_ids, nsamples in ((None, 1), (IDS, 3)):
        values = {
            "logits": x,
            "out_bits": np.full((ROWS, k, nsamples), 2, np.uint8).view(np.bool_),
            "status": np.zeros(1, np.int64),
            "k0": KEY[0],
            "k1": KEY[1],
            "row_ids": row_ids,
            "nsamples": nsamples,
        }
        got = emulate(emu, "bernoulli_fwd", dtype, values)
        assert (got["out_bits"].view(np.uint8) <= 1).all(), "bernoulli_fwd leaves draws unwritten"
        assert int(got["status"][0]) == int(np.isnan(xc).any()), "bernoulli_fwd status"
        rids = np.arange(ROWS) if row_ids is None else row_ids
        with np.errstate(invalid="ignore"):
            for d in range(nsamples):
                z = xc + reference_logistic(rids, k, d, ct)
                allowed = 8 * eps * (np.abs(xc) + 17.0)
                what = f"bernoulli_fwd row_ids={row_ids is not None} draw {d}"
                side_check(what, got["out_bits"][..., d], np.where(np.isnan(z), False, z > 0), np.nan_to_num(z), allowed)


def case_binary_concrete_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = logits(dtype, k, 22)
    xc = x.astype(ct)
    taus = np.random.default_rng(23).uniform(0.3, 2.0, ROWS * k).astype(ct)
    noise = np.random.default_rng(24).logistic(size=x.shape).astype(dtype)
    variants = (
        # noise_mode, row_ids, one tau per element, gate, out_soft
        (_ops.NOISE_DRAW, None, False, _ops.GATE_SOFT, False),
        (_ops.NOISE_DRAW, IDS, True, _ops.GATE_HARD, True),
        (_ops.NOISE_ARRAY, None, True, _ops.GATE_CLIP, True),
        (_ops.NOISE_NONE, None, False, _ops.GATE_CLIP, False),
        (_ops.NOISE_DRAW, IDS, False, _ops.GATE_HARD, False),
    )
    for mode, row_ids, per_element, gate, with_soft in variants:
        what = f"binary_concrete_fwd noise_mode={mode} gate={gate}"
        tau = taus if per_element else np.array([0.7], ct)
        lo, hi = (-0.1, 1.1) if gate == _ops.GATE_CLIP else (0.0, 1.0)
        key = KEY if mode == _ops.NOISE_DRAW else (0, 0)
        values = {
            "logits": x,
            "out": np.full(x.shape, np.nan, dtype),
            "k0": key[0],
            "k1": key[1],
            "row_ids": row_ids,
            "taus": tau,
            "noise_mode": mode,
            "noise": noise if mode == _ops.NOISE_ARRAY else None,
            "out_soft": np.full(x.shape, np.nan, dtype) if with_soft else None,
            "gate": gate,
            "lo": lo,
            "hi": hi,
        }
        got = emulate(emu, "binary_concrete_fwd", dtype, values)
        if mode == _ops.NOISE_DRAW:
            kw: dict[str, Any] = {"rng": SEED}
            g = gnp.logistic(x.shape, rng=SEED, dtype=ct, row_ids=row_ids).astype(np.float64)
        elif mode == _ops.NOISE_ARRAY:
            kw = {"noise": noise.astype(ct)}
            g = noise.astype(np.float64)
        else:
            kw = {"noise": 0}
            g = np.zeros(x.shape)
        t = tau.reshape(x.shape) if per_element else float(tau[0])
        if gate == _ops.GATE_CLIP:
            y, y_soft = gnp.hard_concrete(xc, tau=t, limits=(lo, hi), row_ids=row_ids, return_soft=True, **kw)
        else:
            y, y_soft = gnp.gumbel_sigmoid(
                xc, tau=t, hard=gate == _ops.GATE_HARD, row_ids=row_ids, return_soft=True, **kw
            )
        with np.errstate(all="ignore"):
            s64 = np.asarray(y_soft, np.float64)
            tt = np.broadcast_to(np.asarray(t, np.float64), x.shape)
            # An error in the scaled logit is one of y relative to y (1 - y).
            scale = s64 * (1 - s64) * (np.abs(xc.astype(np.float64)) + np.abs(g) + 1.0) / tt + s64
            scale = np.nan_to_num(scale)
        if with_soft:
            check(what + " out_soft", got["out_soft"], y_soft, scale, dtype, ULPS)
        if gate == _ops.GATE_SOFT:
            check(what, got["out"], y, scale, dtype, ULPS)
        elif gate == _ops.GATE_HARD:
            allowed = tolerance(y_soft, scale, ct, ULPS)
            side_check(what, got["out"], y, np.nan_to_num(s64 - 0.5), allowed)
        else:
            check(what, got["out"], y, 1.2 * scale + 1.0, dtype, ULPS)


def soft_samples(dtype: np.dtype, k: int, seed: int) -> np.ndarray:
    """Soft binary samples in ``[0, 1]``: random values, exact 0s and 1s
    (saturated samples), 1/2, values near 1 and the gate's edges."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 1, (ROWS, k))
    y[4] = 0.0
    y[5] = 1.0
    y[6] = 0.5
    y[7] = 1 - rng.uniform(0, 1e-3, k)
    y[8, ::2] = 1e-30
    return y.astype(dtype)


def case_binary_concrete_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    y = soft_samples(dtype, k, 25)
    g = normal(dtype, y.shape, 26)
    taus = np.random.default_rng(27).uniform(0.3, 2.0, ROWS * k).astype(ct)
    for gate, per_element in ((_ops.GATE_SOFT, True), (_ops.GATE_CLIP, True), (_ops.GATE_CLIP, False)):
        what = f"binary_concrete_bwd gate={gate} per_element={per_element}"
        tau = taus if per_element else np.array([0.7], ct)
        lo, hi = (-0.1, 1.1) if gate == _ops.GATE_CLIP else (0.0, 1.0)
        values = {
            "g": g,
            "y": y,
            "taus": tau,
            "out": np.full(y.shape, np.nan, dtype),
            "dtaus": np.full(y.shape, np.nan, ct) if per_element else None,
            "gate": gate,
            "lo": lo,
            "hi": hi,
        }
        got = emulate(emu, "binary_concrete_bwd", dtype, values)
        gc, yc = g.astype(ct), y.astype(ct)
        t = tau.reshape(y.shape) if per_element else float(tau[0])
        fn = gnp.hard_concrete_backward if gate == _ops.GATE_CLIP else gnp.gumbel_sigmoid_backward
        kw = {"limits": (lo, hi)} if gate == _ops.GATE_CLIP else {}
        ref = fn(gc, yc, tau=t, tau_grad=per_element, **kw)
        out, dtau = ref if per_element else (ref, None)
        with np.errstate(all="ignore"):
            y64 = yc.astype(np.float64)
            tt = np.broadcast_to(np.asarray(t, np.float64), y.shape)
            scale = np.abs(gc.astype(np.float64)) * 1.2 * y64 * (1 - y64) / tt
        check(what, got["out"], out, scale, dtype, ULPS)
        if per_element:
            with np.errstate(all="ignore"):
                s = np.abs(np.log(y64)) + np.abs(np.log1p(-y64)) + 1.0
                dscale = np.nan_to_num(scale * s)
            check(what + " dtaus", got["dtaus"], dtau, dscale, ct, ULPS)


def case_hard_concrete_l0_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = logits(dtype, k, 28)
    taus = np.random.default_rng(29).uniform(0.3, 2.0, ROWS * k).astype(ct)
    for per_element, (lo, hi) in ((False, (-0.1, 1.1)), (True, (-0.3, 1.05))):
        tau = taus if per_element else np.array([2 / 3], ct)
        values = {"logits": x, "out": np.full(x.shape, np.nan, dtype), "taus": tau, "lo": lo, "hi": hi}
        got = emulate(emu, "hard_concrete_l0_fwd", dtype, values)
        t = tau.reshape(x.shape) if per_element else float(tau[0])
        ref = gnp.hard_concrete_l0(x.astype(ct), tau=t, limits=(lo, hi))
        with np.errstate(all="ignore"):
            p = np.asarray(ref, np.float64)
            scale = np.nan_to_num(p * (1 - p) * (np.abs(x.astype(np.float64)) + 4.0) + p)
        check(f"hard_concrete_l0_fwd per_element={per_element}", got["out"], ref, scale, dtype, ULPS)


def case_hard_concrete_l0_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = logits(dtype, k, 30)
    g = normal(dtype, x.shape, 31)
    taus = np.random.default_rng(32).uniform(0.3, 2.0, ROWS * k).astype(ct)
    for per_element in (False, True):
        tau = taus if per_element else np.array([2 / 3], ct)
        values = {
            "g": g,
            "logits": x,
            "taus": tau,
            "out": np.full(x.shape, np.nan, dtype),
            "dtaus": np.full(x.shape, np.nan, ct) if per_element else None,
            "lo": -0.1,
            "hi": 1.1,
        }
        got = emulate(emu, "hard_concrete_l0_bwd", dtype, values)
        t = tau.reshape(x.shape) if per_element else float(tau[0])
        ref = gnp.hard_concrete_l0_backward(g.astype(ct), x.astype(ct), tau=t, tau_grad=per_element)
        out, dtau = ref if per_element else (ref, None)
        with np.errstate(all="ignore"):
            a = np.abs(x.astype(np.float64)) + 4.0
            e = np.exp(-np.abs(x.astype(np.float64) + 2.398 * np.asarray(t, np.float64)))
            scale = np.nan_to_num(np.abs(g.astype(np.float64)) * e * (a + 1.0))
        check(f"hard_concrete_l0_bwd per_element={per_element}", got["out"], out, scale, dtype, ULPS)
        if per_element:
            check("hard_concrete_l0_bwd dtaus", got["dtaus"], dtau, 2.4 * scale, ct, ULPS)


# The relaxed distributions in log space (concrete.cu): the ExpConcrete
# sample and its backward pass, and the Concrete densities.


def log_soft_scale(xc: np.ndarray, noise: Any, tau: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The error scale of an ExpConcrete sample ``out = (w - mw) - log(sum
    exp(w - mw))``, ``w = (z - max z) / tau``, ``z = (x - max x) + G``: the
    magnitudes of the terms of each ``w_j`` (of its ``z_j``, and of the row's
    largest ``z``, over ``tau``) and of ``w_j`` itself, plus those of the
    normaliser: its log and the errors of its terms, weighted by the
    softmax of ``w``."""
    with np.errstate(all="ignore"):
        x = xc.astype(np.float64)
        g = np.broadcast_to(np.asarray(noise, np.float64), x.shape)
        d = x - row_max(x)
        z = d + g
        mz = np.max(z, axis=-1, keepdims=True)
        a = np.abs(d) + np.maximum(np.abs(g), 1.0) + np.abs(z)
        top = np.argmax(np.where(np.isnan(z), -np.inf, z), axis=-1)[:, None]
        top = np.take_along_axis(a, top, axis=-1)
        t = tau.astype(np.float64).reshape(-1, 1)
        w = (z - mz) / t
        terms = np.where(np.isfinite(w), (a + top) / t + np.abs(w), 0.0)
        p = np.where(np.isfinite(w), np.exp(w), 0.0)
        p = p / p.sum(axis=-1, keepdims=True)
        e = np.exp(np.where(np.isfinite(w), w, -np.inf))
        ls = np.abs(np.log(e.sum(axis=-1, keepdims=True)))
        norm = (p * terms).sum(axis=-1, keepdims=True) + ls
        return np.nan_to_num(terms + np.abs(np.asarray(out, np.float64)) + norm + 1.0, posinf=0.0)


def case_log_gumbel_softmax_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x = logits(dtype, k, 50)
    xc = x.astype(ct)
    taus = np.random.default_rng(51).uniform(0.3, 2.0, ROWS).astype(ct)
    taus[3] = 1e-3  # a row far below the underflow of gumbel_softmax
    noise = np.random.default_rng(52).gumbel(size=x.shape).astype(dtype)
    variants = (
        # noise_mode, row_ids, tau: one per row, or the one given
        (_ops.NOISE_DRAW, None, 0.7),
        (_ops.NOISE_DRAW, IDS, None),
        (_ops.NOISE_ARRAY, None, None),
        (_ops.NOISE_NONE, None, 0.7),
        (_ops.NOISE_DRAW, IDS, 1e-3),
    )
    for mode, row_ids, one_tau in variants:
        what = f"log_gumbel_softmax_fwd noise_mode={mode} tau={one_tau} ids={row_ids is not None}"
        tau = taus if one_tau is None else np.array([one_tau], ct)
        key = KEY if mode == _ops.NOISE_DRAW else (0, 0)
        values = {
            "logits": x,
            "out": np.full(x.shape, np.nan, dtype),
            "k0": key[0],
            "k1": key[1],
            "row_ids": row_ids,
            "tau": tau,
            "noise_mode": mode,
            "noise": noise if mode == _ops.NOISE_ARRAY else None,
        }
        got = emulate(emu, "log_gumbel_softmax_fwd", dtype, values)
        if mode == _ops.NOISE_DRAW:
            kw: dict[str, Any] = {"rng": SEED}
            g = gnp.gumbel(x.shape, rng=SEED, dtype=ct, row_ids=row_ids)
        elif mode == _ops.NOISE_ARRAY:
            kw = {"noise": noise.astype(ct)}
            g = noise
        else:
            kw = {"noise": 0}
            g = 0.0
        t = taus if one_tau is None else one_tau
        ref = gnp.log_gumbel_softmax(xc, tau=t, row_ids=row_ids, **kw)
        scale = log_soft_scale(xc, g, np.broadcast_to(tau, ROWS), ref)
        # float16 data: the float32 result rounded once (at tau = 1e-3 a
        # log-probability may pass -65504: -inf on both sides).
        with np.errstate(over="ignore"):
            want = ref.astype(dtype)
        check(what, got["out"], want, scale, dtype, ULPS)


def case_log_gumbel_softmax_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    taus = np.random.default_rng(53).uniform(0.3, 2.0, ROWS).astype(ct)
    taus[0] = 1e-3  # log-probabilities down to about -1e4, whose exp is 0
    with np.errstate(over="ignore"):
        y = gnp.log_gumbel_softmax(logits(dtype, k, 54).astype(ct), tau=taus, rng=SEED)
        y = y.astype(dtype)
    g = normal(dtype, y.shape, 55)
    gc, yc = g.astype(ct), y.astype(ct)
    for per_row, with_dtau in ((False, False), (True, True), (False, True)):
        what = f"log_gumbel_softmax_bwd per_row_tau={per_row} dtau={with_dtau}"
        tau = taus if per_row else np.array([0.7], ct)
        values = {
            "g": g,
            "y": y,
            "tau": tau,
            "out": np.full(y.shape, np.nan, dtype),
            "dtau": np.full(ROWS, np.nan, ct) if with_dtau else None,
        }
        got = emulate(emu, "log_gumbel_softmax_bwd", dtype, values)
        tau_rows = np.broadcast_to(tau, ROWS).copy()
        dl, dt = gnp.log_gumbel_softmax_backward(gc, yc, tau=tau_rows, tau_grad=True)
        with np.errstate(all="ignore"):
            t = tau_rows.astype(np.float64)[:, None]
            y64 = yc.astype(np.float64)
            live = y64 != -np.inf
            ag = np.where(live, np.abs(gc.astype(np.float64)), 0.0)
            # (g - exp(y) sum(g)) / tau: relative to |g| and exp(y) sum |g|.
            scale = (ag + np.exp(y64) * ag.sum(axis=-1, keepdims=True)) / t
            o = np.abs(np.asarray(dl, np.float64)) * t
            dt_scale = np.where(live, (o + scale * t) * np.abs(y64), 0.0).sum(axis=-1) / t[:, 0]
        check(what, got["out"], dl, np.nan_to_num(scale), dtype, ULPS)
        if with_dtau:
            check(what + " dtau", got["dtau"], dt, np.nan_to_num(dt_scale), ct, ULPS)


def concrete_inputs(
    dtype: np.dtype, k: int, seed: int, space: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(sample, logits, sample outside the support)`` of the Concrete
    densities: the rows of :func:`logits`, and an ExpConcrete sample (or
    its exponential on the simplex) of other random logits with the same
    masked categories, so that the sample is in the support where the
    logits hold a distribution.  The second sample has, on top, a value
    outside the support in row 0 (a category that is not masked at ``z =
    -inf``, ``y = 0``), NaN in row 1, ``y > 1`` in row 2 (simplex), a
    masked category with mass in row 7, and row 3 moved off the simplex by
    ``z + 0.5`` (a valid ExpConcrete argument, ``y > 1`` on the simplex)."""
    ct = compute(dtype)
    xp = logits(dtype, k, seed)
    other = np.random.default_rng(seed + 1).normal(size=xp.shape)
    other = np.where(xp.astype(np.float64) == -np.inf, -np.inf, other)
    with np.errstate(invalid="ignore"):
        z = gnp.log_gumbel_softmax(other, tau=0.6, rng=seed + 2)
    bad = z.copy()
    bad[0, k // 2] = -np.inf
    bad[1, k - 1] = np.nan
    bad[3] += 0.5
    if k > 1:
        bad[7, 0] = -1.0  # category 0 of row 7 is masked
    if space == _ops.SPACE_SIMPLEX:
        z, bad = np.exp(z), np.exp(bad)
        bad[2, 0] = 1.5
    return z.astype(dtype), xp, bad.astype(dtype)


def concrete_terms(
    zc: np.ndarray, xc: np.ndarray, t: np.ndarray, space: int
) -> dict[str, np.ndarray]:
    """The terms of a Concrete density in float64, as error scales: per
    category, the log-sample ``z``, the magnitude ``A = |x| + t |z|`` of
    ``u = x - t z`` (0 where masked), the softmax ``p`` of ``u``; per row,
    ``n``, ``|max u|`` and ``|log(sum exp(u - max u))|``."""
    with np.errstate(all="ignore"):
        x = xc.astype(np.float64)
        v = zc.astype(np.float64)
        z = np.log(v) if space == _ops.SPACE_SIMPLEX else v
        tt = np.asarray(t, np.float64).reshape(-1, 1)
        live = x != -np.inf
        u = np.where(live, x - tt * z, -np.inf)
        a = np.where(live, np.abs(x) + tt * np.abs(z), 0.0)
        mu = np.max(u, axis=-1, keepdims=True)
        e = np.exp(u - mu)
        s = e.sum(axis=-1, keepdims=True)
        return {
            "z": np.where(live, z, 0.0), "A": np.nan_to_num(a), "p": np.nan_to_num(e / s),
            "n": live.sum(axis=-1, keepdims=True).astype(np.float64),
            "mu": np.nan_to_num(np.abs(mu)), "ls": np.nan_to_num(np.abs(np.log(s))), "t": tt,
        }


def concrete_variants() -> tuple[tuple[int, bool, bool], ...]:
    """``(space, one tau per row, sample outside the support)``."""
    return (
        (_ops.SPACE_LOG, False, False),
        (_ops.SPACE_LOG, True, True),
        (_ops.SPACE_SIMPLEX, True, False),
        (_ops.SPACE_SIMPLEX, False, True),
    )


def case_concrete_log_prob_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    taus = np.random.default_rng(56).uniform(0.3, 2.0, ROWS).astype(ct)
    for space, per_row, outside in concrete_variants():
        what = f"concrete_log_prob_fwd space={space} per_row_tau={per_row} outside={outside}"
        good, xp, bad = concrete_inputs(dtype, k, 57, space)
        sample = bad if outside else good
        tau = taus if per_row else np.array([0.7], ct)
        values = {
            "x": sample,
            "logits_p": xp,
            "out_rows": np.full(ROWS, np.nan, dtype),
            "tau": tau,
            "space": space,
        }
        got = emulate(emu, "concrete_log_prob_fwd", dtype, values)["out_rows"]
        zc, xc = sample.astype(ct), xp.astype(ct)
        fn = gnp.concrete_log_prob if space == _ops.SPACE_SIMPLEX else gnp.exp_concrete_log_prob
        ref = fn(zc, xc, tau=taus if per_row else float(tau[0]))
        # lgamma(n) + (n - 1) log t + sum u - n lse (- sum z): the magnitudes
        # of its terms, each u_j's rounding counted in sum u and, weighted by
        # the softmax, n times in lse.
        c = concrete_terms(zc, xc, np.broadcast_to(tau, ROWS), space)
        from math import lgamma

        with np.errstate(all="ignore"):
            n = c["n"][:, 0]
            na = (c["p"] * c["A"]).sum(axis=-1)
            scale = (
                np.abs(np.nan_to_num([lgamma(max(v, 1.0)) for v in n]))
                + n * np.abs(np.log(c["t"][:, 0]))
                + c["A"].sum(axis=-1)
                + n * (c["mu"][:, 0] + c["ls"][:, 0] + na + 1.0)
                + np.abs(c["z"]).sum(axis=-1)
            )
        with np.errstate(over="ignore"):
            want = ref.astype(dtype)
        check(what, got, want, np.nan_to_num(scale), dtype, ULPS)


def case_concrete_log_prob_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    taus = np.random.default_rng(58).uniform(0.3, 2.0, ROWS).astype(ct)
    g = normal(dtype, ROWS, 59)
    gc = g.astype(ct)
    dtaus = (False, True, True, False)
    for (space, per_row, outside), with_dtau in zip(concrete_variants(), dtaus):
        what = (
            f"concrete_log_prob_bwd space={space} per_row_tau={per_row} outside={outside} "
            f"dtau={with_dtau}"
        )
        good, xp, bad = concrete_inputs(dtype, k, 60, space)
        sample = bad if outside else good
        tau = taus if per_row else np.array([0.7], ct)
        values = {
            "g_rows": g,
            "x": sample,
            "logits_p": xp,
            "tau": tau,
            "out": np.full(xp.shape, np.nan, dtype),
            "out_p": np.full(xp.shape, np.nan, dtype),
            "dtau": np.full(ROWS, np.nan, ct) if with_dtau else None,
            "space": space,
        }
        got = emulate(emu, "concrete_log_prob_bwd", dtype, values)
        zc, xc = sample.astype(ct), xp.astype(ct)
        simplex = space == _ops.SPACE_SIMPLEX
        fn = gnp.concrete_log_prob_backward if simplex else gnp.exp_concrete_log_prob_backward
        dz, dx, dt = fn(gc, zc, xc, tau=taus if per_row else float(tau[0]), tau_grad=True)
        c = concrete_terms(zc, xc, np.broadcast_to(tau, ROWS), space)
        with np.errstate(all="ignore"):
            ag = np.abs(gc.astype(np.float64))[:, None]
            # v_j = 1 - n p_j: n p_j times the errors of u_j - mu and of the sum.
            pa = (c["p"] * c["A"]).sum(axis=-1, keepdims=True)
            sv = c["n"] * c["p"] * (1.0 + c["A"] + c["mu"] + pa)
            sx = ag * (1.0 + sv)
            sz = c["t"] * sx
            if space == _ops.SPACE_SIMPLEX:
                sz = (sz + ag) / np.abs(zc.astype(np.float64))
            v = np.abs(1.0 - c["n"] * c["p"])
            zs = (np.abs(c["z"]) * (v + sv + 1.0)).sum(axis=-1)
            st = ag[:, 0] * ((c["n"][:, 0] + 1.0) / c["t"][:, 0] + zs)
        # float16 data: the float32 results rounded once (a gradient of y
        # near 0 may pass 65504: inf on both sides).
        with np.errstate(over="ignore"):
            dx, dz = dx.astype(dtype), dz.astype(dtype)
        check(what + " out_p", got["out_p"], dx, np.nan_to_num(sx), dtype, ULPS)
        check(what + " out", got["out"], dz, np.nan_to_num(sz), dtype, ULPS)
        if with_dtau:
            check(what + " dtau", got["dtau"], dt, np.nan_to_num(st), ct, ULPS)


def binary_density_inputs(dtype: np.dtype, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(y, logits)`` of the binary Concrete density: the samples of
    :func:`soft_samples` (0 and 1, saturated, in rows 4 and 5) with NaN,
    a negative value and values above 1 in row 3, and the rows of
    :func:`logits` (NaN, +inf, -inf)."""
    y = soft_samples(dtype, k, seed)
    y[3, ::3] = 1.5
    y[3, 0] = np.nan
    y[3, k - 1] = -0.25
    return y, logits(dtype, k, seed + 1)


def case_binary_concrete_log_prob_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    y, x = binary_density_inputs(dtype, k, 61)
    taus = np.random.default_rng(62).uniform(0.3, 2.0, ROWS * k).astype(ct)
    for per_element in (False, True):
        tau = taus if per_element else np.array([0.7], ct)
        values = {"x": y, "logits_p": x, "out": np.full(y.shape, np.nan, dtype), "taus": tau}
        got = emulate(emu, "binary_concrete_log_prob_fwd", dtype, values)
        yc, xc = y.astype(ct), x.astype(ct)
        t = tau.reshape(y.shape) if per_element else float(tau[0])
        ref = gnp.binary_concrete_log_prob(yc, xc, tau=t)
        with np.errstate(all="ignore"):
            y64, x64 = yc.astype(np.float64), xc.astype(np.float64)
            tt = np.broadcast_to(np.asarray(t, np.float64), y.shape)
            ly, l1y = np.abs(np.log(y64)), np.abs(np.log1p(-y64))
            a = np.abs(x64) + tt * (ly + l1y)
            # log t + a - 2 softplus(a) - log y - log(1 - y): 1 for the
            # rounding of 1 - y.
            scale = np.nan_to_num(np.abs(np.log(tt)) + 3 * a + ly + l1y + 1.0)
        what = f"binary_concrete_log_prob_fwd per_element={per_element}"
        check(what, got["out"], ref, scale, dtype, ULPS)


def case_binary_concrete_log_prob_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    y, x = binary_density_inputs(dtype, k, 63)
    g = normal(dtype, y.shape, 64)
    taus = np.random.default_rng(65).uniform(0.3, 2.0, ROWS * k).astype(ct)
    for per_element, with_dtau in ((False, False), (True, True), (False, True)):
        what = f"binary_concrete_log_prob_bwd per_element={per_element} dtaus={with_dtau}"
        tau = taus if per_element else np.array([0.7], ct)
        values = {
            "g": g,
            "x": y,
            "logits_p": x,
            "taus": tau,
            "out": np.full(y.shape, np.nan, dtype),
            "out_p": np.full(y.shape, np.nan, dtype),
            "dtaus": np.full(y.shape, np.nan, ct) if with_dtau else None,
        }
        got = emulate(emu, "binary_concrete_log_prob_bwd", dtype, values)
        gc, yc, xc = g.astype(ct), y.astype(ct), x.astype(ct)
        t = tau.reshape(y.shape) if per_element else float(tau[0])
        dy, dx, dt = gnp.binary_concrete_log_prob_backward(gc, yc, xc, tau=t, tau_grad=True)
        if not per_element:  # the per-element gradients, not their sum
            dt = gnp.binary_concrete_log_prob_backward(
                gc, yc, xc, tau=np.full(y.shape, t, ct), tau_grad=True
            )[2]
        with np.errstate(all="ignore"):
            y64, x64 = yc.astype(np.float64), xc.astype(np.float64)
            ag = np.abs(gc.astype(np.float64))
            tt = np.broadcast_to(np.asarray(t, np.float64), y.shape)
            ly, l1y = np.abs(np.log(y64)), np.abs(np.log1p(-y64))
            a = np.abs(x64) + tt * (ly + l1y) + 1.0  # the error scale of a
            sx = ag * a
            sy = ag * (2.0 + tt * a) / (y64 * (1.0 - y64))
            st = ag * (1.0 / tt + a * (ly + l1y) + ly + l1y)
        with np.errstate(over="ignore"):  # float16: as concrete_log_prob_bwd
            dx, dy = dx.astype(dtype), dy.astype(dtype)
        check(what + " out_p", got["out_p"], dx, np.nan_to_num(sx), dtype, ULPS)
        check(what + " out", got["out"], dy, np.nan_to_num(sy), dtype, ULPS)
        if with_dtau:
            check(what + " dtaus", got["dtaus"], dt, np.nan_to_num(st), ct, ULPS)



# The estimators conditioned on a category (conditional.cu): the conditional
# Gumbel samples, the Gumbel-Rao gradient and ReinMax, against the CPU
# kernels themselves (kernels/cpu.py's launch, on the compute dtype), which
# define what a row with an index the public functions reject gives.

CONDITIONAL_DRAW = _ops.CONDITIONAL_DOMAIN << 28
"""The draw word of draw 0 of the conditional samples' uniforms."""


def fast_spread(dtype: np.dtype) -> float:
    """``FAST_SPREAD`` of kernels/conditional.py for ``dtype`` data."""
    from gumbel_np.kernels import conditional

    return conditional.FAST_SPREAD[1 if compute(dtype) == F64 else 0]


def spread_floor(dtype: np.dtype) -> float:
    """``exp(-FAST_SPREAD)`` in the compute dtype: a row takes the fast form
    where every finite logit has ``exp(x_j - max) >= K`` times it."""
    ct = compute(dtype)
    return float(ct.type(np.exp(-fast_spread(dtype))))


def conditional_logits(dtype: np.dtype, k: int, seed: int) -> np.ndarray:
    """The rows of :func:`logits`, with row 2 spread wider than FAST_SPREAD
    (category 0 that far below the rest: the log-space form), a masked
    category (k // 3) in row 3, row 6 near 2**27 (2**57 for float64; the ulp
    there is 16, so most samples of that row round to the winner's value and
    take the float below it instead; 60000 for float16) and row 7 masked at
    its odd categories, not at all -inf's even ones (so every row but 4 and
    5 has a distribution)."""
    x = logits(dtype, k, seed).astype(np.float64)
    rng = np.random.default_rng(seed + 500)
    spread = fast_spread(dtype)
    x[2] = rng.normal(size=k) * 0.2 * spread + 60.0
    if k > 1:
        x[2, 0] = x[2, 1:].min() - 1.5 * spread
        x[3, k // 3] = -np.inf
    big = {F16: 6e4, F32: 2.0**27, F64: 2.0**57}[np.dtype(dtype)]
    x[6] = big + np.round(rng.normal(size=k)) * 16.0
    x[7] = rng.normal(size=k)
    x[7, 1::2] = -np.inf
    return x.astype(dtype)


def conditional_choice(x: np.ndarray, seed: int) -> np.ndarray:
    """One category per row that is not -inf: the last (the uncached tail of
    long rows; also in row 2, whose far category 0 is then a loser), the
    first, row 3's largest, an even one in row 7, k - 2 in the constant row
    (the last but one word of a Philox block for k = 5 and 33), random
    elsewhere."""
    k = x.shape[1]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, k, ROWS)
    idx[0], idx[1], idx[2] = k - 1, 0, k - 1
    with np.errstate(invalid="ignore"):
        idx[3] = int(np.argmax(np.where(np.isnan(x[3]), -np.inf, x[3])))
    idx[7] = 2 * rng.integers(0, (k + 1) // 2)
    idx[8] = max(k - 2, 0)
    return idx


def bad_choice(x: np.ndarray, idx: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """``(logits, choice)`` with indices the public functions reject: kind
    "range" puts indices outside ``[0, k)`` in rows 0 (far below), 3 (k)
    and 4 (far past, in the NaN row: its flag counts too); "masked" masks
    category 0 of the constant row 8 and conditions on it (for k = 1 the row
    is all -inf)."""
    x, idx = x.copy(), idx.copy()
    k = x.shape[1]
    if kind == "range":
        idx[0], idx[3], idx[4] = -(2**62), k, k + 2**40
    elif kind == "masked":
        x[8, 0] = -np.inf
        idx[8] = 0
    return x, idx


CHOICE_STATUS = {"valid": 0, "range": 1, "masked": 2}
"""The status of each kind of :func:`bad_choice` (the CPU's flags)."""


def row_spread(xc: np.ndarray) -> dict[str, np.ndarray]:
    """Per row in float64 (columns): the maximum ``m`` of its finite values
    (0 for none), ``lse`` and whether it takes the log-space form (a finite
    logit with ``exp(x_j - m) < K exp(-FAST_SPREAD)``, with a margin: this
    only widens the error scale)."""
    with np.errstate(all="ignore"):
        x = xc.astype(np.float64)
        m = row_max(x)
        lse = m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True))
        lo = np.where(np.isfinite(x), x, np.inf).min(axis=-1, keepdims=True)
        floor = np.log(x.shape[1] * spread_floor(xc.dtype))
        return {"m": m, "lse": lse, "slow": lo - m < floor + 1.0}


def case_conditional_gumbel_fwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x0 = conditional_logits(dtype, k, 70)
    idx0 = conditional_choice(x0, 71)
    variants = ((1, None, "valid"), (3, IDS, "valid"), (2, None, "range"), (1, IDS, "masked"))
    for s, row_ids, kind in variants:
        what = f"conditional_gumbel_fwd nsamples={s} row_ids={row_ids is not None} {kind}"
        x, idx = bad_choice(x0, idx0, kind)
        xc = x.astype(ct)
        values = {
            "logits": x,
            "choice": idx,
            "draws": np.full((ROWS, k, s), np.nan, dtype),
            "status": np.zeros(1, np.int64),
            "k0": KEY[0],
            "k1": KEY[1],
            "row_ids": row_ids,
        }
        done = emulate(emu, "conditional_gumbel_fwd", dtype, values)
        got = done["draws"]
        draws = np.full(got.shape, np.nan, ct)
        cpu_values = {**values, "logits": xc, "draws": draws, "status": np.zeros(1, np.int64)}
        ref = cpu_kernel("conditional_gumbel_fwd", cpu_values)
        assert int(ref["status"][0]) == CHOICE_STATUS[kind], f"{what}: CPU status {ref['status']}"
        assert int(done["status"][0]) == CHOICE_STATUS[kind], (
            f"{what}: status {done['status']}, the CPU's {ref['status']}"
        )
        want = ref["draws"]
        # z_j = lse - log E_i - log1p(t_j), or z_i - softplus(log E_j + (z_i
        # - x_j)): relative to the magnitudes of lse, m, z_i, z_j and x_j.
        rs = row_spread(xc)
        ok = np.isfinite(want).any(axis=(1, 2))
        sel = np.where(ok, idx, 0)
        with np.errstate(all="ignore"):
            zi = np.take_along_axis(want.astype(np.float64), sel[:, None, None], axis=1)
            x64 = np.where(np.isfinite(xc), np.abs(xc.astype(np.float64)), 0.0)[..., None]
            zj = np.abs(np.nan_to_num(want.astype(np.float64), posinf=0.0, neginf=0.0))
            lse, m = np.abs(rs["lse"])[..., None], np.abs(rs["m"])[..., None]
            scale = lse + m + np.abs(zi) + zj + x64 + 1.0
        check(what, got, want, np.nan_to_num(scale), dtype, ULPS)
        # The winner is the only maximum of every sample, as on the CPU
        # (float16 samples may round a runner-up to the winner's value).
        rows = np.flatnonzero(ok)
        g64 = got.astype(np.float64)[rows]
        gi = g64[np.arange(rows.size), idx[rows]]
        others = g64.copy()
        others[np.arange(rows.size), idx[rows]] = -np.inf
        top = others.max(axis=1)
        beaten = ((top >= gi) if dtype != F16 else (top > gi)).any(axis=-1)
        assert not beaten.any(), (
            f"{what}: the argmax of the emulated samples is not the CPU's index "
            f"{idx[rows][beaten]} (rows {rows[beaten]})"
        )
        # The winners against the stream itself: z_i = lse - log(-log u_i)
        # at draw word d + (CONDITIONAL_DOMAIN << 28), in float64.
        rids = np.arange(ROWS) if row_ids is None else row_ids
        for d in range(s):
            u = reference_uniforms(rids[rows], k, CONDITIONAL_DRAW + d, ct)
            le = np.log(-np.log(u[np.arange(rows.size), idx[rows]]))
            zr = rs["lse"][rows, 0] - le
            zs = np.abs(rs["lse"][rows, 0]) + np.abs(rs["m"][rows, 0]) + np.abs(le) + 1.0
            what_d = f"{what} winners of draw {d} against the stream"
            check(what_d, got[rows, idx[rows], d], zr, zs, dtype, ULPS)


def rao_scale(
    xc: np.ndarray, gc: np.ndarray, idx: np.ndarray, rids: np.ndarray, s: int, tau: np.ndarray
) -> np.ndarray:
    """The error scale of the Gumbel-Rao gradient, from the stream in
    float64: per draw, ``y = softmax(-log1p(t) / tau)`` (``log t_j = log E_j
    - log E_i + lse - x_j``; the rounded samples themselves would not do: a
    row near 2**27 rounds them to multiples of 16) times the error of its
    exponent ``L`` (of ``q_j``, or in the log-space form of ``z_i - x_j``,
    over tau) and of ``|g_j|`` and ``|a|``, over ``tau s``."""
    rows, k = xc.shape
    rs = row_spread(xc)
    scale = np.zeros((rows, k))
    with np.errstate(all="ignore"):
        x = xc.astype(np.float64)
        ag = np.abs(gc.astype(np.float64))
        t = np.broadcast_to(np.asarray(tau, np.float64), rows).reshape(-1, 1)
        ax = np.where(np.isfinite(x), np.abs(x), 0.0)
        dx = np.where(np.isfinite(x), np.abs(x - rs["m"]), 0.0)
        sel = np.where((idx >= 0) & (idx < k), idx, 0)
        for d in range(s):
            le = np.log(-np.log(reference_uniforms(rids, k, CONDITIONAL_DRAW + d, xc.dtype)))
            lei = np.take_along_axis(le, sel[:, None], axis=1)
            gap = np.logaddexp(0.0, le - lei + (rs["lse"] - x))
            gap[np.arange(rows), sel] = 0.0
            y = np.exp(-gap / t)
            y = y / y.sum(axis=-1, keepdims=True)
            zi = np.abs(rs["lse"] - lei)
            L = (gap + dx + 1.0 + np.where(rs["slow"], zi + ax, 0.0)) / t + 1.0
            L = np.where(y > 0, L, 0.0)
            A = (y * ag * (1.0 + L)).sum(axis=-1, keepdims=True)
            scale += y * ((ag + A) * (1.0 + L) + A) / (t * s)
    return np.nan_to_num(scale, nan=0.0, posinf=0.0)


def case_gumbel_rao_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x0 = conditional_logits(dtype, k, 72)
    idx0 = conditional_choice(x0, 73)
    g = normal(dtype, x0.shape, 74)
    taus = np.random.default_rng(75).uniform(0.3, 2.0, ROWS).astype(ct)
    variants = (
        # samples, row ids, one tau per row, choice
        (1, None, False, "valid"),
        (4, IDS, True, "valid"),
        (2, None, True, "range"),
        (1, IDS, False, "masked"),
    )
    for s, row_ids, per_row, kind in variants:
        ids = row_ids is not None
        what = f"gumbel_rao_bwd nsamples={s} row_ids={ids} per_row_tau={per_row} {kind}"
        x, idx = bad_choice(x0, idx0, kind)
        xc = x.astype(ct)
        tau = taus if per_row else np.array([0.7], ct)
        values = {
            "g": g,
            "logits": x,
            "choice": idx,
            "tau": tau,
            "out": np.full(x.shape, np.nan, dtype),
            "status": np.zeros(1, np.int64),
            "nsamples": s,
            "k0": KEY[0],
            "k1": KEY[1],
            "row_ids": row_ids,
        }
        done = emulate(emu, "gumbel_rao_bwd", dtype, values)
        cpu_values = {
            **values, "g": g.astype(ct), "logits": xc, "out": np.full(x.shape, np.nan, ct),
            "status": np.zeros(1, np.int64),
        }  # fmt: skip
        ref = cpu_kernel("gumbel_rao_bwd", cpu_values)
        assert int(ref["status"][0]) == CHOICE_STATUS[kind], f"{what}: CPU status {ref['status']}"
        assert int(done["status"][0]) == CHOICE_STATUS[kind], (
            f"{what}: status {done['status']}, the CPU's {ref['status']}"
        )
        rids = np.arange(ROWS) if row_ids is None else row_ids
        scale = rao_scale(xc, g.astype(ct), idx, rids, s, tau)
        with np.errstate(over="ignore"):
            want = ref["out"].astype(dtype)
        check(what, done["out"], want, scale, dtype, ULPS)


def reinmax_scale(xc: np.ndarray, gc: np.ndarray, idx: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """The error scale of ReinMax's gradient: with ``p = softmax(x)`` and
    ``pt = softmax(x / tau)`` (their exponentials relative to ``1 + |x -
    m|``, over tau for pt), the magnitudes of ``2 pi (g - a)`` and ``p (g -
    b) / 2`` and of the errors of ``a = <g, pi>`` and ``b = <g, p>``, and
    ``|g_i| + |a|`` at the index."""
    rows, k = xc.shape
    with np.errstate(all="ignore"):
        x = xc.astype(np.float64)
        ag = np.abs(gc.astype(np.float64))
        f = 1.0 / np.broadcast_to(np.asarray(tau, np.float64), rows).reshape(-1, 1)
        d = x - row_max(x)
        p = np.exp(d) / np.exp(d).sum(axis=-1, keepdims=True)
        pt = np.exp(d * f) / np.exp(d * f).sum(axis=-1, keepdims=True)
        ad = np.where(p > 0, np.abs(d), 0.0)
        e1, e2 = 1.0 + ad, 1.0 + ad * f
        sel = np.where((idx >= 0) & (idx < k), idx, 0)
        gi = np.take_along_axis(ag, sel[:, None], axis=1)
        a = (ag * pt * e2).sum(axis=-1, keepdims=True) / 2 + gi / 2
        b = (ag * p * e1).sum(axis=-1, keepdims=True)
        scale = pt * e2 * (ag + a) + pt * a + 0.5 * p * e1 * (ag + b) + 0.5 * p * b
        scale[np.arange(rows), sel] += gi[:, 0] + a[:, 0]
    return np.nan_to_num(scale, nan=0.0, posinf=0.0)


def case_reinmax_bwd(emu: Emulator, dtype: np.dtype, k: int) -> None:
    ct = compute(dtype)
    x0 = conditional_logits(dtype, k, 76)
    idx0 = conditional_choice(x0, 77)
    g = normal(dtype, x0.shape, 78)
    taus = np.random.default_rng(79).uniform(0.3, 2.0, ROWS).astype(ct)
    for per_row, kind in ((False, "valid"), (True, "valid"), (True, "range"), (False, "masked")):
        what = f"reinmax_bwd per_row_tau={per_row} {kind}"
        x, idx = bad_choice(x0, idx0, kind)
        xc = x.astype(ct)
        tau = taus if per_row else np.array([0.7], ct)
        values = {
            "g": g,
            "logits": x,
            "choice": idx,
            "tau": tau,
            "out": np.full(x.shape, np.nan, dtype),
            "status": np.zeros(1, np.int64),
        }
        done = emulate(emu, "reinmax_bwd", dtype, values)
        cpu_values = {
            **values, "g": g.astype(ct), "logits": xc, "out": np.full(x.shape, np.nan, ct),
            "status": np.zeros(1, np.int64),
        }  # fmt: skip
        ref = cpu_kernel("reinmax_bwd", cpu_values)
        assert int(ref["status"][0]) == CHOICE_STATUS[kind], f"{what}: CPU status {ref['status']}"
        assert int(done["status"][0]) == CHOICE_STATUS[kind], (
            f"{what}: status {done['status']}, the CPU's {ref['status']}"
        )
        with np.errstate(over="ignore"):
            want = ref["out"].astype(dtype)
        check(what, done["out"], want, reinmax_scale(xc, g.astype(ct), idx, tau), dtype, ULPS)


CASES: dict[str, Callable[[Emulator, np.dtype, int], None]] = {
    "logsumexp_fwd": case_logsumexp_fwd,
    "softmax_fwd": case_softmax_fwd,
    "log_softmax_fwd": case_log_softmax_fwd,
    "logsumexp_bwd": case_logsumexp_bwd,
    "softmax_bwd": case_softmax_bwd,
    "log_softmax_bwd": case_log_softmax_bwd,
    "gumbel_fwd": case_gumbel_fwd,
    "gumbel_softmax_fwd": case_gumbel_softmax_fwd,
    "gumbel_softmax_bwd": case_gumbel_softmax_bwd,
    "categorical_fwd": case_categorical_fwd,
    "categorical_log_prob_fwd": case_categorical_log_prob_fwd,
    "score_bwd": case_score_bwd,
    "categorical_entropy_fwd": case_categorical_entropy_fwd,
    "categorical_entropy_bwd": case_categorical_entropy_bwd,
    "categorical_kl_fwd": case_categorical_kl_fwd,
    "categorical_kl_bwd": case_categorical_kl_bwd,
    "logistic_fwd": case_logistic_fwd,
    "bernoulli_fwd": case_bernoulli_fwd,
    "binary_concrete_fwd": case_binary_concrete_fwd,
    "binary_concrete_bwd": case_binary_concrete_bwd,
    "hard_concrete_l0_fwd": case_hard_concrete_l0_fwd,
    "hard_concrete_l0_bwd": case_hard_concrete_l0_bwd,
    "log_gumbel_softmax_fwd": case_log_gumbel_softmax_fwd,
    "log_gumbel_softmax_bwd": case_log_gumbel_softmax_bwd,
    "concrete_log_prob_fwd": case_concrete_log_prob_fwd,
    "concrete_log_prob_bwd": case_concrete_log_prob_bwd,
    "binary_concrete_log_prob_fwd": case_binary_concrete_log_prob_fwd,
    "binary_concrete_log_prob_bwd": case_binary_concrete_log_prob_bwd,
    "categorical_topk_fwd": case_categorical_topk_fwd,
    "plackett_luce_log_prob_fwd": case_plackett_luce_log_prob_fwd,
    "plackett_luce_log_prob_bwd": case_plackett_luce_log_prob_bwd,
    "conditional_gumbel_fwd": case_conditional_gumbel_fwd,
    "gumbel_rao_bwd": case_gumbel_rao_bwd,
    "reinmax_bwd": case_reinmax_bwd,
}
"""The comparison with the CPU of each kernel, by name."""


# --------------------------------------------------------------------------
# Deliberately broken kernels: the comparison must fail on each

BREAKAGES = {
    # id: (stem, text, replacement, kernel, dtype, row length, expected failure)
    "barrier-before-reading-partials": (
        "softmax",
        "        if (lane == 0) partial[warp] = v;\n        __syncthreads();\n",
        "        if (lane == 0) partial[warp] = v;\n",
        "softmax_fwd", F32, 3000, AssertionError,
    ),
    "barrier-before-writing-partials": (
        "softmax",
        "        __syncthreads();  // the previous reduction's reads are done\n",
        "",
        "logsumexp_fwd", F64, cuda.WARP_MAX_K + 1, AssertionError,
    ),
    "shuffle-lane-mask": (
        "gumbel",
        "float shfl_xor(float v, int o) {\n    return __shfl_xor_sync(0xffffffffu, v, o);",
        "float shfl_xor(float v, int o) {\n    return __shfl_xor_sync(0xffffffffu, v, o & 15);",
        "gumbel_softmax_fwd", F32, 1024, AssertionError,
    ),
    "last-row-taken-for-idle": (
        "softmax",
        "const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions",
        "const i64 kr = r + 1 < rows ? k : 0;  // an idle thread still joins the reductions",
        "softmax_fwd", F16, 33, AssertionError,
    ),
    "tail-loop-stops-one-short": (
        "softmax",
        "        for (i64 j = tail; j < kr; j += g.width) {\n"
        "            outr[j] = St::store((St::load(xr[j]) - m) - ls);",
        "        for (i64 j = tail; j + 1 < kr; j += g.width) {\n"
        "            outr[j] = St::store((St::load(xr[j]) - m) - ls);",
        "log_softmax_fwd", F64, cuda.WARP_MAX_K, AssertionError,
    ),
    "idle-threads-skip-the-reductions": (
        "softmax",
        "const i64 kr = r < rows ? k : 0;  // an idle thread still joins the reductions",
        "if (r >= rows) break;\n        const i64 kr = k;",
        "softmax_fwd", F32, 16, EmulationError,
    ),
    "sample-weight-added-by-every-lane": (
        "estimators",
        "            if (qi % sh.width != 0) continue;\n",
        "",
        "score_bwd", F32, 33, AssertionError,
    ),
    "uncached-w-not-kept": (
        "concrete",
        "                v = w_of(St::load(outr[j]));\n                outr[j] = St::store(v);\n",
        "                v = w_of(St::load(outr[j]));\n",
        "log_gumbel_softmax_fwd", F64, cuda.WARP_MAX_K, AssertionError,
    ),
    "live-bit-of-the-next-slot": (
        "concrete",
        "zv += emit(j, cu[i], cz[i], (live >> i) & 1u);",
        "zv += emit(j, cu[i], cz[i], (live >> (i + 1)) & 1u);",
        "concrete_log_prob_bwd", F32, 33, AssertionError,
    ),
    "marks-read-before-every-lane-set-them": (
        "ranking",
        "    rows_sync(lanes);\n    return flags;\n",
        "    return flags;\n",
        "plackett_luce_log_prob_fwd", F32, 33, AssertionError,
    ),
    "every-lane-pops-the-sample": (
        "ranking",
        "if (b.o[0] >= 0 && element_of(b.o[0]) == best.i) pop(b);",
        "pop(b);",
        "categorical_topk_fwd", F64, 33, AssertionError,
    ),
    "prefix-scan-operands-swapped": (
        "ranking",
        "            if (!REVERSE) ex = op(other, ex);",
        "            if (!REVERSE) ex = op(ex, other);",
        "plackett_luce_log_prob_bwd", F32, 33, AssertionError,
    ),
    "rest-summed-once": (
        "ranking",
        "        if (rare) ln = ",
        "        if (false) ln = ",
        "plackett_luce_log_prob_fwd", F32, 33, AssertionError,
    ),
    "suffix-scan-misses-later-warps": (
        "ranking",
        "            if (w == warp) side = acc;",
        "            if (w == warp) side = identity;",
        "plackett_luce_log_prob_fwd", F64, 3000, AssertionError,
    ),
    "conditional-uniforms-of-the-gumbel-domain": (
        "conditional",
        "\n            const u32 draw = static_cast<u32>(d) + CONDITIONAL_DOMAIN;\n",
        "\n            const u32 draw = static_cast<u32>(d);\n",
        "conditional_gumbel_fwd", F32, 33, AssertionError,
    ),
    "conditional-tie-with-the-winner-kept": (
        "conditional",
        "St::store(j == i ? zi : (v < zi ? v : below))",
        "St::store(j == i ? zi : v)",
        "conditional_gumbel_fwd", F64, 33, AssertionError,
    ),
    "conditional-slow-rows-take-the-fast-form": (
        "conditional",
        "q.fast = sf.b == T(0);",
        "q.fast = true;",
        "conditional_gumbel_fwd", F32, 33, AssertionError,
    ),
    "rao-winner-exponential-of-word-0": (
        "conditional",
        "    for (int v = 1; v < Noise<T>::W; ++v) u = v == w ? Noise<T>::uniform(p, v) : u;\n",
        "",
        "gumbel_rao_bwd", F64, 5, AssertionError,
    ),
    "rao-draw-sums-not-reduced": (
        "conditional",
        "                t = row_reduce(t, BothOp<SumOp>(), Two<T>{T(0), T(0)}, lanes);\n",
        "",
        "gumbel_rao_bwd", F64, 33, AssertionError,
    ),
    "rao-uncached-sums-not-zeroed": (
        "conditional",
        "if (u * W + w < k) outr[u * W + w] = St::store(T(0));",
        "",
        "gumbel_rao_bwd", F32, cuda.WARP_MAX_K, AssertionError,
    ),
    "rao-half-windows-draw-the-first-window": (
        "conditional",
        "[&](i64 u) { return block(off + u); }",
        "[&](i64 u) { return block(u); }",
        "gumbel_rao_bwd", F16, cuda.WARP_MAX_K, AssertionError,
    ),
    "reinmax-one-hot-half-dropped": (
        "conditional",
        "            if (j == i) o += gj - a;\n",
        "",
        "reinmax_bwd", F32, 5, AssertionError,
    ),
}
"""Breakages the emulation must detect: a missing barrier (each of the two
in the block reduction: stale partial sums are read, or overwritten before
the other warps have read them, which the comparison with the CPU or the
disagreement of the two schedules shows), a wrong shuffle lane mask (the
widest butterfly step exchanges nothing), an off-by-one in the row bound and
in a tail loop (values left unwritten), and idle threads that leave the
reductions (a divergent shuffle, which the emulation reports), and a
sample's weight added by every thread of its row instead of the one that
holds its element (score_bwd: weights at the wrong elements).  In
ranking.cu: the marks of the chosen categories read before every lane of
the warp has set them (a missing __syncwarp: categories counted as never
chosen), every thread popping the sample just taken from its list (samples
lost), the operands of the prefix scan of the affine maps in the wrong
order (the weights A_q of the backward pass), the normaliser of a ranking
whose first choice holds all but 1e-43 of the mass not summed again (its
float32 terms are subnormal), and the block-wide suffix scan dropping the
later warps' totals (the normalisers of long rankings).  In concrete.cu:
the ExpConcrete sample's uncached w not written back to the output row
(the later passes read z: float64 rows past a warp's register cache), and
the backward pass of the Concrete density reading a cached slot's mask bit
from the next slot (masked categories get gradients, live ones none).  In
conditional.cu: the conditional samples' uniforms drawn from the Gumbel
domain (another stream), a sample that rounds to the winner's value left
there (the winner is no longer the only maximum), the fast form taken by
rows spread wider than FAST_SPREAD (their t_j overflow), the winner's
exponential taken from word 0 of its Philox block, the Gumbel-Rao draw's
sums left per thread, the sums of the elements beyond the cache not
started at 0 (the output row's NaN), the half windows past the first
drawing the first window's noise, and ReinMax's one-hot half left out."""


# --------------------------------------------------------------------------
# Fixtures

STEMS: dict[str, tuple[str, ...]] = {
    stem: tuple(name for name, kernel in _ops.KERNELS.items() if kernel.stem == stem)
    for stem in dict.fromkeys(kernel.stem for kernel in _ops.KERNELS.values())
}
"""The registry's kernels by source file (``<stem>.cu``)."""


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, Path]:
    """Every library of this module, compiled in parallel: the kernel
    sources (all kernels, all dtypes), each breakage (its kernel and dtype
    only) and the emulation's own probes."""
    build = tmp_path_factory.mktemp("cuda_host")
    jobs: dict[str, tuple[str, str]] = {}
    for stem, names in STEMS.items():
        jobs[stem] = (cuda.source(stem), wrappers(names, DTYPES))
    for bid, (stem, old, new, name, dt, _, _) in BREAKAGES.items():
        text = cuda.source(stem)
        assert text.count(old) == 1, f"breakage {bid}: the text to break is not in {stem}.cu once"
        jobs[bid] = (text.replace(old, new), wrappers((name,), (dt,)))
    jobs["selftest"] = ((HOST / "selftest.cu").read_text("utf-8"), "")
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        futures = {tag: pool.submit(compile_library, build, tag, *job) for tag, job in jobs.items()}
        return {tag: f.result() for tag, f in futures.items()}


@pytest.fixture(scope="module")
def emulators(builds) -> dict[str, Emulator]:
    return {stem: Emulator(builds[stem]) for stem in STEMS}


# --------------------------------------------------------------------------
# The public functions through the CUDA launch itself


class _HostCupy:
    """The CuPy functions ``cuda.launch`` calls, on NumPy arrays."""

    ndarray = np.ndarray
    asarray = staticmethod(np.asarray)
    ascontiguousarray = staticmethod(np.ascontiguousarray)


@pytest.fixture
def host_cuda(emulators, monkeypatch):
    """``kernels/cuda.py`` with its kernels emulated: ``cuda.launch`` checks
    and converts the arrays and builds the plan as on a GPU, then the
    emulated kernel runs on one multiprocessor."""
    monkeypatch.setattr(cuda, "_cupy_module", _HostCupy)

    def compiled(op: str, dtype: np.dtype):
        kernel = _ops.KERNELS[op]
        emu = emulators[kernel.stem]

        def fn(grid, block, argv):
            args = []
            for p, v in zip(kernel.cuda, argv):
                param = _ops.PARAMS[p]
                if not param.pointer:
                    args.append((p, scalar(param.ctype, v), False))
                elif isinstance(v, np.ndarray):
                    args.append((p, v, not param.ctype.startswith("const")))
                else:
                    assert v is cuda._NULL, (op, p, v)
                    args.append((p, None, False))
            emu.call(symbol(op, np.dtype(dtype)), grid[0], block[0], 0, args)

        return fn, 1

    monkeypatch.setattr(cuda, "_kernel", compiled)
    return cuda


PUBLIC_LABELS = [c.label for c in _cases.calls((2, 3))]

PUBLIC_ROW_SCALED = ("concrete_log_prob_backward",)
"""Operations whose results cancel, compared to the tolerance times the
largest magnitude of their row: the gradient of the Concrete density with
respect to the sample, ``(-g tau v_j - g) / y_j`` (``v_j = 1 - n
softmax(u)_j``), loses up to three digits where ``tau v_j`` is near -1 at a
small ``y_j`` (the CPU's float32 result is 3e-3 off its float64 value at one
element of these calls; ``case_concrete_log_prob_bwd`` bounds each element
by its terms)."""


@pytest.mark.parametrize("k", (5, 33, cuda.WARP_MAX_K + 1), ids=lambda k: f"k{k}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("label", PUBLIC_LABELS)
def test_public_call_through_the_cuda_launch(host_cuda, label, dtype, k):
    """Each example call of the registry (``gumbel_np._cases``) through the
    pipeline with the CUDA backend (float16 stored as half, as on a GPU) and
    the emulated kernels, against the same call on the CPU."""
    name = label.split()[0]
    call = next(c for c in _cases.calls((ROWS, k), dtype, np, seed=k) if c.label == label)
    fn = getattr(gnp, name)
    opts = {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.name not in ("axis", "out")
    }
    opts.update(call.options)
    arrays = call.arrays if _ops.OPS[name].result != "noise" else (tuple(call.arrays[0]),)
    got = _ops._call(_ops.OPS[name], np, host_cuda, arrays, call.axis, None, opts)
    # float16 data: a float32 result past 65504 (a density's gradient at a
    # sample near 0) rounds to inf, which NumPy's cast reports.
    with np.errstate(over="ignore" if np.dtype(dtype) == F16 else "raise"):
        want = call()
    got, want = (got[0], want[0]) if isinstance(want, tuple) else (got, want)
    assert got.shape == want.shape and got.dtype == want.dtype
    if want.dtype.kind == "i" or (name == "gumbel_softmax" and opts.get("hard")):
        # Indices and one-hots: the same, but for a near-tie (noise agrees
        # to a few ulp, not bit for bit).
        differ = (got != want).reshape(len(got), -1).any(axis=-1)
        assert differ.sum() <= 1, f"{differ.sum()} rows differ"
    else:
        rtol = {F32: 1e-5, F64: 1e-12, F16: 2e-3}[np.dtype(dtype)]
        if name in PUBLIC_ROW_SCALED:
            g64, w64 = got.astype(np.float64), want.astype(np.float64)
            top = np.where(np.isfinite(w64), np.abs(w64), 0.0).reshape(len(w64), -1).max(axis=-1)
            atol = rtol * top.reshape((-1,) + (1,) * (w64.ndim - 1))
            close = np.isclose(g64, w64, rtol=rtol, atol=atol, equal_nan=True)
            assert close.all(), f"{int((~close).sum())} values differ, first at {np.argwhere(~close)[0]}"
            return
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=rtol)


# --------------------------------------------------------------------------
# The kernels against the CPU


@pytest.mark.parametrize("k", ROW_LENGTHS, ids=lambda k: f"k{k}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("name", tuple(_ops.KERNELS))
def test_kernel_matches_cpu(emulators, name, dtype, k):
    case = CASES.get(name)
    assert case is not None, f"{name}: a registered kernel without a CPU comparison in CASES"
    case(emulators[_ops.KERNELS[name].stem], dtype, k)


MARK_SPAN = 32 * int(re.search(r"\bMARK_WORDS = (\d+)", cuda.source("ranking")).group(1))
"""Categories per window of a block's bitmap of chosen categories (ranking.cu)."""


@pytest.mark.parametrize("name", ("plackett_luce_log_prob_fwd", "plackett_luce_log_prob_bwd"))
def test_rankings_of_rows_past_one_marking_window(emulators, name):
    """Rows of more categories than a block's bitmap holds: the Plackett-Luce
    kernels mark the chosen categories window by window, in every pass.
    Rankings of up to 3000 choices, spread over the three windows (a full
    ranking of 131077 float32 choices tests float32 more than the windows:
    its sums and recursions of 1e5 steps differ by their rounding)."""
    CASES[name](emulators["ranking"], F32, 2 * MARK_SPAN + 5, draws=(1, 3, 3000))


def test_emulated_instances_are_those_nvrtc_compiles():
    for name, kernel in _ops.KERNELS.items():
        for dt in DTYPES:
            assert f"{name}<{STORAGE[dt]}>" in cuda.NAME_EXPRESSIONS[kernel.stem]


def test_score_estimators_match_the_registry():
    """``gnp::SCORE_*`` (estimators.cu) are the numbers the launch passes as
    ``estimator`` (``_ops.SCORE_*``), as ``gnp::NOISE_*`` are checked in
    test_cuda_loader.py."""
    text = cuda.source("estimators")
    found = dict(re.findall(r"\b(SCORE_SUM|SCORE_MEAN|SCORE_LOO)\s*=\s*(\d+)\b", text))
    assert {name: int(value) for name, value in found.items()} == {
        "SCORE_SUM": _ops.SCORE_SUM,
        "SCORE_MEAN": _ops.SCORE_MEAN,
        "SCORE_LOO": _ops.SCORE_LOO,
    }


def test_ranking_constants_match_the_cpu():
    """``rest_floor`` (ranking.cu) is ``REST_FLOOR`` of kernels/ranking.py:
    the two kernels sum a ranking's categories never chosen again below the
    same fraction."""
    from gumbel_np.kernels import ranking

    (value,) = re.findall(r"rest_floor\(\) \{\s*return T\(([0-9.e+-]+)\);", cuda.source("ranking"))
    assert float(value) == ranking.REST_FLOOR


def test_conditional_constants_match_the_cpu():
    """``gnp::CONDITIONAL_DOMAIN``, ``spread_floor`` and the index flags
    (conditional.cu) are the registry's domain, ``exp(-FAST_SPREAD)`` of
    kernels/conditional.py in each dtype and the statuses the CPU kernels
    give (:data:`CHOICE_STATUS`, checked by the cases)."""
    from gumbel_np.kernels import binary, conditional

    text = cuda.source("conditional")
    (domain, shift) = re.findall(r"\bCONDITIONAL_DOMAIN\s*=\s*(\d+)u\s*<<\s*(\d+)\b", text)[0]
    assert int(domain) == _ops.CONDITIONAL_DOMAIN and int(shift) == binary.DOMAIN_SHIFT
    assert int(conditional.CONDITIONAL_DOMAIN) == _ops.CONDITIONAL_DOMAIN << binary.DOMAIN_SHIFT
    floors = dict(re.findall(r"spread_floor<(float|double)>\(\) \{\s*return ([0-9.e+-]+?)f?;", text))
    assert np.float32(floors["float"]) == np.float32(np.exp(-conditional.FAST_SPREAD[0]))
    assert np.float64(floors["double"]) == np.exp(-conditional.FAST_SPREAD[1])
    flags = dict(re.findall(r"\b(CHOICE_BAD|CHOICE_IMPOSSIBLE)\s*=\s*(\d+)\b", text))
    want = {"CHOICE_BAD": CHOICE_STATUS["range"], "CHOICE_IMPOSSIBLE": CHOICE_STATUS["masked"]}
    assert {name: int(v) for name, v in flags.items()} == want


def test_binary_constants_match_the_registry():
    """``gnp::GATE_*`` and ``gnp::LOGISTIC_DOMAIN`` (binary.cu) and their
    Numba twins (kernels/binary.py) are the registry's numbers."""
    from gumbel_np.kernels import binary

    text = cuda.source("binary")
    found = dict(re.findall(r"\b(GATE_SOFT|GATE_HARD|GATE_CLIP)\s*=\s*(\d+)\b", text))
    want = {"GATE_SOFT": _ops.GATE_SOFT, "GATE_HARD": _ops.GATE_HARD, "GATE_CLIP": _ops.GATE_CLIP}
    assert {name: int(value) for name, value in found.items()} == want
    assert {name: getattr(binary, name) for name in want} == want
    (shift,) = re.findall(r"\bLOGISTIC_DOMAIN\s*=\s*1u\s*<<\s*(\d+)\b", text)
    assert int(shift) == binary.DOMAIN_SHIFT == 28
    assert int(binary.LOGISTIC_DOMAIN) == _ops.LOGISTIC_DOMAIN << 28


def test_concrete_spaces_match_the_registry():
    """``gnp::SPACE_*`` (concrete.cu) and their Numba twins
    (kernels/concrete.py) are the numbers the launch passes as ``space``
    (``_ops.SPACE_*``)."""
    from gumbel_np.kernels import concrete

    found = dict(re.findall(r"\b(SPACE_LOG|SPACE_SIMPLEX)\s*=\s*(\d+)\b", cuda.source("concrete")))
    want = {"SPACE_LOG": _ops.SPACE_LOG, "SPACE_SIMPLEX": _ops.SPACE_SIMPLEX}
    assert {name: int(value) for name, value in found.items()} == want
    assert {name: getattr(concrete, name) for name in want} == want


@pytest.mark.parametrize("k", (5, cuda.WARP_MAX_K + 1), ids=lambda k: f"k{k}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("name", tuple(_ops.KERNELS))
def test_kernel_writes_its_outputs(emulators, name, dtype, k):
    # Every registry kernel, compared with the CPU or not yet, on arguments
    # made from its parameter records alone: positive values in every input
    # array, optional inputs absent, scalars 0 where the launch does not
    # derive them.  It must finish without an emulation error, agree with
    # itself on both schedules and write every element of its required
    # outputs.
    kernel = _ops.KERNELS[name]
    rng = np.random.default_rng(17)
    rows = 3
    shapes = {
        "RK": (rows, k), "R": (rows,), "RN": (rows, 4), "RKN": (rows, k, 4), "1|R": (rows,), "1|RK": (rows * k,),
        "U": (1,),
    }
    limits = {"lo": -0.1, "hi": 1.1}  # a valid stretch interval (0, 0 has no L0 norm)
    values: dict[str, Any] = {}
    required = []
    for p in kernel.cuda:
        param = _ops.PARAMS[p]
        if not param.pointer:
            if p not in ("rows", "k", "nsamples", "lanes", "per_item", "tau_stride", "taus_stride"):
                values[p] = limits.get(p, 0)
            continue
        dt = array_dtype(param.ctype, dtype)
        const = param.ctype.startswith("const")
        if const and param.optional:
            values[p] = None
        elif const:
            values[p] = (
                rng.integers(0, k, shapes[param.shape]) if dt.kind == "i"
                else rng.uniform(0.05, 1.0, shapes[param.shape]).astype(dt)
            )
        elif dt.kind == "b":  # no bool is unwritten-looking: the byte 2
            values[p] = np.full(shapes[param.shape], 2, np.uint8).view(np.bool_)
            if not param.optional:
                required.append(p)
        else:
            values[p] = np.full(shapes[param.shape], -2 if dt.kind == "i" else np.nan, dt)
            if not param.optional:
                required.append(p)
    got = emulate(emulators[kernel.stem], name, dtype, values)
    for p in required:
        kind = got[p].dtype.kind
        unwritten = (
            (got[p] == -2) if kind == "i" else (got[p].view(np.uint8) == 2) if kind == "b" else np.isnan(got[p])
        )
        assert not unwritten.any(), f"{name} leaves {p}{tuple(np.argwhere(unwritten)[0])} unwritten"


@pytest.mark.parametrize("breakage", tuple(BREAKAGES))
def test_broken_kernel_is_detected(builds, monkeypatch, breakage):
    _, _, _, name, dtype, k, expected = BREAKAGES[breakage]
    emu = Emulator(builds[breakage])
    with pytest.raises(expected):
        CASES[name](emu, dtype, k)
    if expected is AssertionError:
        # More than a disagreement of the schedules: on one of them at least,
        # the broken kernel's results differ from the CPU's.
        mismatches = 0
        for schedule in SCHEDULES:
            monkeypatch.setitem(globals(), "SCHEDULES", (schedule,))
            try:
                CASES[name](emu, dtype, k)
            except AssertionError as exc:
                assert "CPU" in str(exc) or "unwritten" in str(exc), exc
                mismatches += 1
        assert mismatches >= 1


# --------------------------------------------------------------------------
# The emulation itself


@pytest.fixture(scope="module")
def probes(builds) -> Library:
    return Library(builds["selftest"])


def test_shuffle_lane_selection(probes):
    masks = [1, 2, 3, 4, 8, 16, 31, 0, 5, 12, 17]
    widths = [32, 16, 8, 4, 2, 1]
    cases = [(m, w) for m in masks for w in widths]
    grid, block = 2, 64
    n = grid * block
    out = np.full(len(cases) * n, -1, np.int32)
    args = [
        ("masks", np.array([m for m, _ in cases], np.int32), False),
        ("widths", np.array([w for _, w in cases], np.int32), False),
        ("cases", ctypes.c_int(len(cases)), False),
        ("out", out, True),
    ]
    probes.call("probe_shuffle_probe", grid, block, 0, args)
    t = np.arange(n)
    value = 1000 * (t // block) + t % block
    lane = t % 32
    for c, (m, w) in enumerate(cases):
        # CUDA: lane ^ laneMask within the warp, except that a source in a
        # later group of `width` lanes gives the lane its own value.
        src = lane ^ m
        own = src // w > lane // w
        want = np.where(own, value, value - lane + src)
        assert (out[c * n : (c + 1) * n] == want).all(), (m, w)


def test_shuffle_moves_every_bit(probes):
    n = 64
    rng = np.random.default_rng(0)
    d = rng.normal(size=n)
    d[:6] = [np.nan, -0.0, np.inf, 5e-324, -np.inf, np.finfo(np.float64).max]
    d.view(np.uint64)[6] = 0x7FF0000000000123  # a NaN payload
    i = rng.integers(-(2**63), 2**63 - 1, n, dtype=np.int64)
    i[:2] = [-(2**63), 2**63 - 1]
    h = rng.integers(0, 2**16, n, dtype=np.uint16)
    od, oi, oh = np.zeros(n), np.zeros(n, np.int64), np.zeros(n, np.uint16)
    args = [("d", d, False), ("i", i, False), ("h", h, False)]
    args += [("od", od, True), ("oi", oi, True), ("oh", oh, True)]
    probes.call("probe_shuffle_wide", 1, n, 0, args)
    lane = np.arange(n) % 32
    base = np.arange(n) - lane
    assert (od.view(np.uint64) == d.view(np.uint64)[base + (lane ^ 5)]).all()
    assert (oi == i[base + (lane ^ 17)]).all()
    assert (oh == h[base + (lane ^ 3)]).all()


def test_barrier_orders_shared_memory(probes):
    grid, block = 3, 512
    t = np.arange(grid * block)
    b, tid = t // block, t % block
    want = 3 * ((tid + 37) % block) + 1 + 7 * b
    for schedule in (0, REVERSED):
        out = np.zeros(grid * block, np.int32)
        with_barrier = [("out", out, True), ("with_barrier", ctypes.c_int(1), False)]
        probes.call("probe_barrier_probe", grid, block, schedule, with_barrier)
        assert (out == want).all()
        # Without the barrier, a warp reads the shared array before the warps
        # after it have written it: the race shows, on every schedule.
        out[:] = 0
        without = [("out", out, True), ("with_barrier", ctypes.c_int(0), False)]
        probes.call("probe_barrier_probe", grid, block, schedule, without)
        assert (out != want).sum() >= 32 * grid


def test_warp_barrier_orders_shared_memory(probes):
    grid, block = 3, 128
    t = np.arange(grid * block)
    b, tid = t // block, t % block
    want = 3 * (tid - tid % 32 + (tid % 32 + 7) % 32) + 1 + 7 * b
    for schedule in (0, REVERSED):
        out = np.zeros(grid * block, np.int32)
        with_barrier = [("out", out, True), ("with_barrier", ctypes.c_int(1), False)]
        probes.call("probe_warp_barrier_probe", grid, block, schedule, with_barrier)
        assert (out == want).all()
        # Without __syncwarp a lane reads its neighbour's slot before the
        # neighbour has run: what the block before left there.
        out[:] = 0
        without = [("out", out, True), ("with_barrier", ctypes.c_int(0), False)]
        probes.call("probe_warp_barrier_probe", grid, block, schedule, without)
        assert (out != want).sum() >= 7 * (block // 32) * (grid - 1)


def test_atomic_or_returns_the_old_word(probes):
    grid, block = 2, 128
    words = np.zeros(2 * grid, np.uint32)
    seen = np.zeros(grid * block, np.int32)
    args = [("words", words, True), ("seen", seen, True)]
    probes.call("probe_atomic_or_probe", grid, block, REVERSED, args)
    assert (words == 0xFFFFFFFF).all() and (seen == 1).all()


def test_built_in_variables(probes):
    grid, block = 3, 96
    out = np.zeros(4 * grid * block, np.uint32)
    probes.call("probe_indices", grid, block, REVERSED, [("out", out, True)])
    t = np.arange(grid * block)
    want = np.stack([t % block, t // block, np.full_like(t, block), np.full_like(t, grid)], axis=1)
    assert (out.reshape(-1, 4) == want).all()


@pytest.mark.parametrize(
    "probe, message",
    [
        ("divergent_barrier", "divergent barrier"),
        ("divergent_shuffle", "divergent shuffle"),
        ("divergent_syncwarp", "divergent __syncwarp"),
        ("one_past_the_end", "invalid memory access at .* \\(0 bytes past the end of out\\)"),
    ],
)
def test_faults_are_reported(probes, probe, message):
    with pytest.raises(EmulationError, match=message):
        probes.call(f"probe_{probe}", 2, 64, 0, [("out", np.zeros(128, np.int32), True)])


def test_division_by_zero_is_reported(probes):
    out = np.zeros(64, np.int32)
    probes.call("probe_divide", 1, 64, 0, [("out", out, True), ("d", ctypes.c_int(4), False)])
    assert (out == 25).all()
    with pytest.raises(EmulationError, match="arithmetic fault"):
        probes.call("probe_divide", 1, 64, 0, [("out", out, True), ("d", ctypes.c_int(0), False)])


def test_half_conversions_match_numpy(probes):
    lib = probes.lib
    argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_longlong)
    lib.half_to_float.argtypes = lib.float_to_half.argtypes = argtypes
    # Every half to float.
    h = np.arange(2**16, dtype=np.uint32).astype(np.uint16)
    f = np.empty(h.size, np.float32)
    lib.half_to_float(h.ctypes.data, f.ctypes.data, h.size)
    want = h.view(np.float16).astype(np.float32)
    assert (np.isnan(f) == np.isnan(want)).all()
    assert (f.view(np.uint32) == want.view(np.uint32))[~np.isnan(want)].all()
    # Float to half, round to nearest even with subnormals: every half, the
    # midpoints between neighbours and the floats next to them, overflow
    # edges, and random bit patterns.
    finite = want[np.isfinite(want)].astype(np.float64)
    finite.sort()
    mids = ((finite[1:] + finite[:-1]) / 2).astype(np.float32)
    up, down = np.float32(np.inf), np.float32(-np.inf)
    near = np.concatenate([mids, np.nextafter(mids, up), np.nextafter(mids, down)])
    edges = [65504, 65519.996, 65520, 65536, 1e30, 2.0**-24, 2.0**-25, 1.5 * 2.0**-25, 1e-45]
    edges = np.array(edges, np.float32)
    rand = np.random.default_rng(1).integers(0, 2**32, 200_000, dtype=np.uint64)
    rand = rand.astype(np.uint32).view(np.float32)
    specials = np.array([np.inf, -np.inf, np.nan], np.float32)
    x = np.concatenate([want, near, edges, -edges, rand, specials])
    got = np.empty(x.size, np.uint16)
    lib.float_to_half(x.ctypes.data, got.ctypes.data, x.size)
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16)
    nan = np.isnan(x)
    assert (got[nan] == 0x7FFF).all()  # the canonical NaN of cvt.rn.f16.f32
    assert (got[~nan] == ref.view(np.uint16)[~nan]).all()

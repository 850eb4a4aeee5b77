"""Bit-identity battery: a SHA-256 of the output bytes of every public
function on a fixed set of inputs (both dtypes, every CPU row path, the
special rows: NaN, +inf, all -inf, -inf masks), to show that a refactoring
changes no result.

    python bench/bit_identity.py --save before.json   # on the old code
    python bench/bit_identity.py --check before.json  # on the new code

Results depend on the CPU (vector width, fused multiply-add), so a check
compares only against a file saved on a CPU with the same features; the file
records them.  ``--check`` exits 1 and lists the cases that differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys

import numpy as np

import gumbel_np as gnp
from gumbel_np.kernels import gumbel as kg
from gumbel_np.kernels import softmax as ks

# Row lengths that take each CPU path (read from the kernels' thresholds;
# builds before the blocked sums had no SUM_BLOCK).
_SUM_BLOCK = getattr(ks, "SUM_BLOCK", 1024)
LENGTHS = sorted(
    {1, 2, ks.COLUMN_ROW - 1, ks.COLUMN_ROW, kg.SHORT_ROW - 1, kg.SHORT_ROW, ks.LONG_ROW - 1, ks.LONG_ROW,
     _SUM_BLOCK, _SUM_BLOCK + 1, 3 * _SUM_BLOCK + 7}
)
ROWS = 37


def _inputs(dtype, k):
    rng = np.random.default_rng(k)
    x = (3 * rng.standard_normal((ROWS, k))).astype(dtype)
    special = x.copy()
    special[0, k // 2] = np.nan
    special[1, k // 3] = np.inf
    special[2, :] = -np.inf
    special[3, ::2] = -np.inf  # masks
    special[4, :] = 0  # ties
    special[5, 0] = 40  # peaked
    g = rng.standard_normal((ROWS, k)).astype(dtype)
    return x, special, g


def _cases():
    for dtype in (np.float32, np.float64):
        for k in LENGTHS:
            x, special, g = _inputs(dtype, k)
            tau = np.linspace(0.3, 2.0, ROWS).astype(dtype)
            for label, a in (("normal", x), ("special", special)):
                yield f"{dtype.__name__} k={k} {label} logsumexp", lambda a=a: gnp.logsumexp(a, axis=-1)
                yield f"{dtype.__name__} k={k} {label} softmax", lambda a=a: gnp.softmax(a)
                yield f"{dtype.__name__} k={k} {label} log_softmax", lambda a=a: gnp.log_softmax(a)
                yield (f"{dtype.__name__} k={k} {label} logsumexp_backward",
                       lambda a=a: gnp.logsumexp_backward(g[:, 0], a))
                yield (f"{dtype.__name__} k={k} {label} gumbel_softmax",
                       lambda a=a: gnp.gumbel_softmax(a, tau=tau, rng=5, return_soft=True))
                yield (f"{dtype.__name__} k={k} {label} gumbel_softmax hard",
                       lambda a=a: gnp.gumbel_softmax(a, tau=0.5, hard=True, rng=6))
                yield (f"{dtype.__name__} k={k} {label} gumbel_softmax noise=0",
                       lambda a=a: gnp.gumbel_softmax(a, noise=0.0))
            y = gnp.softmax(x)
            ls = gnp.log_softmax(x)
            ys = gnp.gumbel_softmax(x, tau=tau, rng=7)
            yield f"{dtype.__name__} k={k} softmax_backward", lambda: gnp.softmax_backward(g, y)
            yield f"{dtype.__name__} k={k} log_softmax_backward", lambda: gnp.log_softmax_backward(g, ls)
            yield (f"{dtype.__name__} k={k} gumbel_softmax_backward",
                   lambda: gnp.gumbel_softmax_backward(g, ys, tau=tau, tau_grad=True))
            yield f"{dtype.__name__} k={k} gumbel", lambda: gnp.gumbel((ROWS, k), rng=8, dtype=dtype)
            yield (f"{dtype.__name__} k={k} gumbel row_ids",
                   lambda: gnp.gumbel((ROWS, k), rng=9, dtype=dtype, row_ids=np.arange(ROWS) * 7919))
            masked = x.copy()
            masked[:, 1::3] = -np.inf
            yield f"{dtype.__name__} k={k} categorical", lambda: gnp.categorical(masked, rng=10, num_samples=3)


def _digest(result) -> str:
    h = hashlib.sha256()
    for part in result if isinstance(result, tuple) else (result,):
        a = np.ascontiguousarray(np.asarray(part))
        h.update(str(a.dtype).encode() + str(a.shape).encode() + a.tobytes())
    return h.hexdigest()


def _cpu() -> dict:
    import numba
    from numba.core.codegen import JITCPUCodegen

    triple, name, features = JITCPUCodegen("gumbel_np").magic_tuple()
    return {"machine": platform.machine(), "cpu": name, "features": features, "numba": numba.__version__}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save", metavar="FILE", help="write the digests")
    mode.add_argument("--check", metavar="FILE", help="compare with the digests in FILE")
    args = p.parse_args(argv)
    digests = {name: _digest(fn()) for name, fn in _cases()}
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"cpu": _cpu(), "digests": digests}, f, indent=1)
        print(f"{len(digests)} cases saved to {args.save}")
        return 0
    with open(args.check) as f:
        saved = json.load(f)
    here = _cpu()
    if saved["cpu"]["features"] != here["features"] or saved["cpu"]["cpu"] != here["cpu"]:
        print(f"{args.check} was saved on another CPU ({saved['cpu']['cpu']}); save a baseline here first")
        return 2
    differ = [n for n in saved["digests"] if digests.get(n) != saved["digests"][n]]
    missing = sorted(set(saved["digests"]) - set(digests))
    for n in differ:
        print(f"differs: {n}")
    print(f"{len(saved['digests'])} cases, {len(differ)} differ, {len(missing)} missing")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

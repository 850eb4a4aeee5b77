"""Command line: ``python -m gumbel_np {bench,info,cache}`` (also the ``gumbel-np`` script)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Sequence

import numpy as np

EXTRA_HINT = {
    "tqdm": "pip install 'gumbel-np[bench]'",
    "matplotlib": "pip install 'gumbel-np[bench]'",
    "numba": "pip install gumbel-np",
}


class UsageError(Exception):
    """A problem with the command line or the environment, shown without a traceback."""


def _require(module: str, what: str):
    try:
        return __import__(module)
    except ImportError:
        raise UsageError(f"{what} needs {module}, which is not installed: {EXTRA_HINT.get(module, 'pip install ' + module)}") from None


def _info() -> dict:
    import numba

    import gumbel_np
    from gumbel_np import _bench
    from gumbel_np.kernels import _cache

    found = {name: getattr(mod, "__version__", "installed") for name, mod in _bench.peers().items() if name != "scipy"}
    scipy = _bench.optional("scipy")
    if scipy is not None:
        found["scipy"] = scipy.__version__
    gpu = _bench.gpu_skip_reason()
    devices = []
    if gpu is None:
        import cupy

        for i in range(cupy.cuda.runtime.getDeviceCount()):
            devices.append(cupy.cuda.runtime.getDeviceProperties(i)["name"].decode())
    return {
        "gumbel_np": gumbel_np.__version__,
        "STREAM_VERSION": gumbel_np.STREAM_VERSION,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "threading_layer": numba.config.THREADING_LAYER,
        "kernel_cache": str(_cache.cache_dir()) if _cache.cache_dir() is not None else "off",
        "backends": ["cpu"] + (["cuda"] if gpu is None else []),
        "cuda": devices if gpu is None else f"not usable: {gpu}",
        "peers": found,
    }


def cmd_info(args: argparse.Namespace) -> int:
    info = _info()
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    width = max(map(len, info))
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    import shutil

    from gumbel_np.kernels import _cache

    root = _cache.cache_root()
    if root is None:
        print("the kernel cache is off (GUMBEL_NP_CACHE=0)")
        return 0
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if args.clear:
        for folder in folders:
            shutil.rmtree(folder)
        print(f"removed {len(folders)} cache folder(s) from {root}")
        return 0
    size = sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())
    print(f"cache root      {root}")
    print(f"this build      {root / _cache.TAG}{'' if (root / _cache.TAG).is_dir() else ' (empty)'}")
    print(f"folders, size   {len(folders)}, {size / 2**20:.1f} MiB")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from gumbel_np import _bench

    if args.plot:
        _require("matplotlib", "--plot")
    tqdm = _require("tqdm", "the bench command's progress bar").tqdm
    families = list(_bench.FAMILIES) if args.family == "all" else [args.family]
    threads = _bench.set_threads(args.threads)
    jobs = [("cpu", args.size or (_bench.FULL_SIZES if args.full else _bench.QUICK_SIZES))]
    gpu = _bench.gpu_skip_reason()
    if gpu is None:
        jobs.append(("cuda", args.size or (_bench.GPU_SIZES if args.full else _bench.GPU_QUICK_SIZES)))
    total = sum(len(_bench.plan(families, sizes)) for _, sizes in jobs)
    rows = []
    with tqdm(total=total, desc="bench", unit="case", file=sys.stderr, disable=args.no_progress) as bar:
        for backend, sizes in jobs:
            rows += _bench.run(families, sizes, backend, progress=lambda label: (bar.set_postfix_str(label), bar.update()))
    mode = "custom sizes" if args.size else ("full" if args.full else "quick")
    print(f"gumbel_np bench ({mode}), float32, {threads} thread(s) for every CPU library")
    if gpu is not None:
        print(f"GPU backend skipped: {gpu}")
    print(_bench.table(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mode": mode, "threads": threads, "info": _info(), "rows": [r.as_dict() for r in rows]}, f, indent=1)
    if args.plot:
        _bench.plot(rows, args.plot)
    return 0


def _size(text: str) -> tuple[int, int]:
    try:
        rows, k = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROWSxK such as 4096x1024, got {text!r}") from None
    if rows < 1 or k < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return rows, k


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gumbel_np", description="gumbel_np benchmarks and environment report.")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="benchmark every usable backend against the installed peers and the memory-copy floor")
    size = b.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, about four minutes on 2 cores (default)")
    size.add_argument("--full", action="store_true", help="the sizes of the benchmark issues")
    from gumbel_np import _bench  # NumPy and the registry only: no kernels, no peers

    b.add_argument("--family", choices=["all", *_bench.FAMILIES], default="all",
                   help="which operations (default all; latency: per-call time on 1x10 and 100x10; "
                        "binary: 1024x1024 and 1048576x1, with --full 4096x4096 and 16777216x1; "
                        "ranking: 512x1024, 16x50257 and 50000x10, with --full 4096x1024, 256x50257 "
                        "and 1000000x10)")
    b.add_argument("--size", type=_size, action="append", metavar="ROWSxK", help="benchmark this size instead (repeatable)")
    b.add_argument("--threads", type=int, default=2, help="threads for every CPU library (default 2)")
    b.add_argument("--json", metavar="FILE", help="write the results as JSON")
    b.add_argument("--plot", metavar="FILE.png", help="plot throughput against K per implementation (matplotlib)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_bench)
    i = sub.add_parser("info", help="versions, threads, usable backends and devices, STREAM_VERSION")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)
    c = sub.add_parser("cache", help="where the compiled kernels are cached; --clear empties it")
    c.add_argument("--clear", action="store_true", help="remove every cached build")
    c.set_defaults(func=cmd_cache)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", 1) < 1:
        print(f"python -m gumbel_np: error: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"python -m gumbel_np: error: {exc}", file=sys.stderr)
        return 2

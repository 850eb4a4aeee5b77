"""Rerun the CPU benchmarks at full size and rewrite the README's benchmark
section (between ``<!-- bench:start -->`` and ``<!-- bench:end -->``).

    python bench/update_readme.py [--threads 2]
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import re

import numba

import gumbel_np
from gumbel_np import _bench

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    threads = _bench.set_threads(args.threads)
    # The latency family has its own table (python -m gumbel_np bench --family latency).
    rows = _bench.run([f for f in _bench.FAMILIES if f != "latency"], _bench.FULL_SIZES)
    versions = {k: getattr(_bench.optional(k), "__version__", "?") for k in _bench.peers()}
    peers = ", ".join(f"{k} {v}" for k, v in versions.items())
    header = (
        f"Measured by `python bench/update_readme.py` with gumbel_np {gumbel_np.__version__}, "
        f"{threads} thread(s) for every library, on {platform.machine()} "
        f"({numba.threading_layer()} threading layer, {_cpu_name()}); peers: {peers}. "
        "`time / gumbel_np` above 1 means gumbel_np is faster; `time / copy` is the ratio to a "
        "plain memory copy of the same bytes.\n\n"
    )
    block = "<!-- bench:start -->\n" + header + _bench.table(rows) + "<!-- bench:end -->"
    text = README.read_text()
    new = re.sub(r"<!-- bench:start -->.*?<!-- bench:end -->", lambda m: block, text, flags=re.S)
    README.write_text(new)
    print(_bench.table(rows))


def _cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()

"""Command-line wrapper shared by the bench scripts (the cases live in gumbel_np._bench)."""

from __future__ import annotations

import argparse
import json

from gumbel_np import _bench


def main(family: str, description: str, argv=None) -> list:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    p.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    args = p.parse_args(argv)
    threads = _bench.set_threads(args.threads)
    rows = _bench.run([family], _bench.QUICK_SIZES if args.quick else _bench.FULL_SIZES)
    text = f"float32, {threads} thread(s) for every library\n\n" + _bench.table(rows)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([r.as_dict() for r in rows], f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    return rows

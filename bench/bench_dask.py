"""categorical and gumbel_softmax on Dask arrays: a 2-worker LocalCluster
against the in-process call and against the dask.array code a user would
write today (da.random Gumbel noise, then argmax / a softmax), same run.

For each size (float32, default 1e8 x 10 and 1e7 x 128):

* in-process: the NumPy call in this process, Numba on ``--threads``
  threads (run before the cluster starts, so the two never share the
  machine);
* gumbel_np on Dask: the logits persisted on a ``LocalCluster`` of
  ``--workers`` processes x 1 thread, the call made lazy on them and its
  result persisted there (not fetched), timed from the call to the last
  block;
* plain dask.array: ``logits + rng.gumbel(size, chunks).astype(float32)``
  then ``argmax(axis=-1)`` (categorical) or ``exp(z - max) / sum`` with ``z
  = (logits + G) / tau`` (gumbel_softmax), persisted likewise (one run: it
  is an order of magnitude slower).

Throughput is elements (rows x categories) per second, the median of
``--repeat`` timed runs after a warm-up; the ratios are to the in-process
call and to the plain dask.array code of the same run.  The machine may be
shared: a timed run counts only if other processes used at most
:data:`QUIET_SHARE` of the cores meanwhile, else it is repeated.  Memory per worker:
the same call streamed (logits generated chunk by chunk on the workers and
the result reduced there, nothing persisted), each worker's peak resident
memory over its memory before the run, in chunks of logits.  Then the
Numba threads inside the workers: the default cap (one Numba thread per
worker thread, :func:`gumbel_np._dask.task_threads`) against Numba's own
default (``GUMBEL_NP_DASK_THREADS=0``: every core per worker).

    python bench/bench_dask.py [--quick] [--sizes 100000000x10,10000000x128]
        [--workers 2] [--threads 2] [--repeat 3] [--chunk-mib 64]
        [--keep-freed] [--json FILE] [--markdown FILE] [--readme]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import statistics
import threading
import time

import numpy as np

import gumbel_np as gnp

FULL = "100000000x10,10000000x128"
QUICK = "2000000x10,200000x128"
TAU = 0.7
SEED = 3


def parse_sizes(text):
    return [tuple(int(v) for v in s.split("x")) for s in text.split(",")]


def chunk_rows(k, chunk_mib):
    """Rows per chunk: about ``chunk_mib`` MiB of float32 logits."""
    return max(1, int(chunk_mib * 2**20 // (4 * k)))


QUIET_SHARE = 0.05
"""A timed run counts only if other processes used at most this share of the
machine's cores meanwhile (this machine is shared: a run that competed for
the cores is repeated, up to :data:`QUIET_TRIES` times)."""
QUIET_TRIES = 20
_FOREIGN = {"worst": 0.0}


def _cpu_seconds():
    """``(busy seconds of every core, seconds of this process and its
    children)``: what the rest of the machine used is the difference."""
    import psutil

    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
    me = psutil.Process()
    mine = 0.0
    for p in [me, *me.children(recursive=True)]:
        try:
            c = p.cpu_times()
            mine += c.user + c.system
        except psutil.Error:
            pass
    return busy, mine


def quiet_time(func):
    """The wall time of ``func()``, repeated until the rest of the machine
    stayed under :data:`QUIET_SHARE` of the cores meanwhile (waiting for a
    quiet second before each try)."""
    import psutil

    cores = psutil.cpu_count()
    for _ in range(QUIET_TRIES):
        for _ in range(600):  # at most 10 minutes for a quiet second
            b0, m0 = _cpu_seconds()
            time.sleep(1.0)
            b1, m1 = _cpu_seconds()
            if (b1 - b0) - (m1 - m0) <= QUIET_SHARE * cores:
                break
        b0, m0 = _cpu_seconds()
        t = time.perf_counter()
        func()
        dt = time.perf_counter() - t
        b1, m1 = _cpu_seconds()
        foreign = max(0.0, (b1 - b0) - (m1 - m0)) / (cores * dt)
        if foreign <= QUIET_SHARE:
            _FOREIGN["worst"] = max(_FOREIGN["worst"], foreign)
            return dt
    raise RuntimeError(f"no quiet run in {QUIET_TRIES} tries: other processes keep the cores busy")


def median_time(func, repeat, warm=True):
    """The median time of ``func(i)`` for ``i`` in ``range(repeat)``, after a
    warm-up ``func(-1)`` (compilation, worker imports), each a quiet run
    (:func:`quiet_time`)."""
    if warm:
        func(-1)
    return statistics.median(quiet_time(lambda: func(i)) for i in range(repeat))


# --------------------------------------------------------------------------
# In process


def in_process(sizes, repeat, threads):
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    out = {}
    for n, k in sizes:
        out.update(_in_process_size(n, k, repeat))
        gc.collect()
    return out


def _in_process_size(n, k, repeat):
    x = gnp.gumbel((n, k), rng=SEED)  # float32 logits
    return {
        (n, k, "categorical"): median_time(lambda i: gnp.categorical(x, rng=i + 1), repeat),
        (n, k, "gumbel_softmax"): median_time(lambda i: gnp.gumbel_softmax(x, tau=TAU, rng=i + 1), repeat),
    }


# --------------------------------------------------------------------------
# On the cluster


def lazy_logits(n, k, chunk):
    return gnp.gumbel((n, k), rng=SEED, chunks=(chunk, k))


def ours(op, x, seed):
    if op == "categorical":
        return gnp.categorical(x, rng=seed)
    return gnp.gumbel_softmax(x, tau=TAU, rng=seed)


def plain(op, x, seed):
    """The dask.array code a user would write without gumbel_np."""
    import dask.array as da

    g = da.random.default_rng(seed).gumbel(size=x.shape, chunks=x.chunks).astype(np.float32)
    if op == "categorical":
        return (x + g).argmax(axis=-1)
    z = (x + g) / np.float32(TAU)
    e = da.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_SEEDS = itertools.count(2)


def timed_persist(client, make, repeat, warm=True):
    """The median time to persist ``make(seed)`` on the workers: a new seed
    each run, so that no run finds the previous one's keys still there."""
    from distributed import wait

    def once(i):
        r = client.persist(make(next(_SEEDS)))
        wait(r)
        client.cancel(r)

    return median_time(once, repeat, warm)


def _start_sampler(dask_worker, period=0.01):
    """In a worker: sample its resident memory until :func:`_stop_sampler`
    (the state lives on the worker object: these functions reach the
    workers pickled by value, without module state)."""
    import psutil

    proc = psutil.Process()
    state = {"peak": proc.memory_info().rss, "base": proc.memory_info().rss, "stop": threading.Event()}

    def loop():
        while not state["stop"].wait(period):
            state["peak"] = max(state["peak"], proc.memory_info().rss)

    threading.Thread(target=loop, daemon=True).start()
    dask_worker.gumbel_np_memory = state
    return state["base"]


def _stop_sampler(dask_worker):
    state = dask_worker.gumbel_np_memory
    state["stop"].set()
    return state["peak"] - state["base"]


def streamed_peak(client, make):
    """Each worker's peak resident memory over its start, in bytes, while
    ``make()`` (a small lazy result) is computed."""
    gc.collect()
    client.run(gc.collect)
    client.run(_start_sampler)
    client.compute(make(), sync=True)
    return client.run(_stop_sampler)


def _persisted_size(client, n, k, chunk, repeat, only_ours, ops):
    """Timings on logits persisted on the workers (released on return)."""
    from distributed import wait

    x = client.persist(lazy_logits(n, k, chunk))
    wait(x)
    out = {}
    for op in ops:
        out[(n, k, op, "dask")] = timed_persist(client, lambda seed: ours(op, x, seed), repeat)
        if not only_ours:
            # One run: it is an order of magnitude slower, and compiles nothing.
            out[(n, k, op, "plain")] = timed_persist(client, lambda seed: plain(op, x, seed), 1, warm=False)
    return out


KEEP_FREED = {"MALLOC_TRIM_THRESHOLD_": 2**30, "MALLOC_MMAP_THRESHOLD_": 2**28}
"""With ``--keep-freed``: glibc settings for the workers under which freed
memory is reused rather than returned to the system at once (``distributed``
sets ``MALLOC_TRIM_THRESHOLD_`` to 64 KiB, and then every result of more
than 128 KiB is a fresh mapping whose pages fault in on first write)."""


def on_cluster(sizes, repeat, workers, chunk_mib, env=None, only_ours=False, ops=("categorical", "gumbel_softmax"),
               keep_freed=False):
    import dask
    from distributed import Client, LocalCluster

    out = {}
    spawn = dict(dask.config.get("distributed.nanny.pre-spawn-environ"), **(KEEP_FREED if keep_freed else {}))
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn}), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=40, env=env or {}) as cluster, Client(cluster) as client:
        for n, k in sizes:
            chunk = chunk_rows(k, chunk_mib)
            out.update(_persisted_size(client, n, k, chunk, repeat, only_ours, ops))
            if only_ours:
                continue
            for op in ops:
                def reduced(seed, op=op):
                    y = ours(op, lazy_logits(n, k, chunk), seed)
                    return y.sum() if op == "categorical" else y[:, 0].sum()

                streamed_peak(client, lambda: reduced(1))  # warm-up
                peaks = streamed_peak(client, lambda: reduced(2))
                out[(n, k, op, "peak")] = max(peaks.values())
                out[(n, k, op, "chunk")] = chunk * k * 4
    return out


# --------------------------------------------------------------------------


def table(sizes, local, dask_, threads_rows, args):
    lines = [
        f"float32, {args.workers}-worker LocalCluster (processes, 1 thread each"
        f"{', workers keeping freed memory (--keep-freed)' if args.keep_freed else ''}) against the in-process call "
        f"on {args.threads} Numba threads, same run; chunks of about {args.chunk_mib} MiB of logits; "
        f"median of {args.repeat}.",
        "",
        "| op | rows x K | in-process (M elem/s) | gumbel_np on Dask (M elem/s) | plain dask.array (M elem/s) "
        "| Dask / in-process | Dask / plain | peak memory per worker (chunks) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for n, k in sizes:
        for op in ("categorical", "gumbel_softmax"):
            e = n * k / 1e6
            t_local, t_dask, t_plain = local[(n, k, op)], dask_[(n, k, op, "dask")], dask_[(n, k, op, "plain")]
            peak, chunk = dask_[(n, k, op, "peak")], dask_[(n, k, op, "chunk")]
            row = {
                "op": op, "rows": n, "k": k, "in_process_s": t_local, "dask_s": t_dask, "plain_s": t_plain,
                "dask_over_in_process": t_local / t_dask, "dask_over_plain": t_plain / t_dask,
                "peak_bytes_per_worker": peak, "chunk_bytes": chunk,
            }
            rows.append(row)
            lines.append(
                f"| {op} | {n:.0e} x {k} | {e / t_local:,.0f} | {e / t_dask:,.0f} | {e / t_plain:,.0f} "
                f"| {t_local / t_dask:.2f}x | {t_plain / t_dask:.1f}x | {peak / 2**20:.0f} MiB "
                f"({peak / chunk:.1f}) |"
            )
    if threads_rows:
        lines += ["", "Numba threads inside the workers (gumbel_np on Dask, M elem/s):", "",
                  "| op | rows x K | capped: 1 per worker thread (default) | Numba's default (every core per worker) | capped / default |",
                  "|---|---|---:|---:|---:|"]
        for (n, k, op), (capped, free) in threads_rows.items():
            e = n * k / 1e6
            lines.append(f"| {op} | {n:.0e} x {k} | {e / capped:,.0f} | {e / free:,.0f} | {free / capped:.2f}x |")
            rows.append({"op": op, "rows": n, "k": k, "threads_capped_s": capped, "threads_default_s": free})
    return "\n".join(lines), rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help=f"small sizes ({QUICK})")
    p.add_argument("--sizes", help=f"rows x K, comma-separated (default {FULL})")
    p.add_argument("--workers", type=int, default=2, help="worker processes, 1 thread each (2)")
    p.add_argument("--threads", type=int, default=2, help="Numba threads of the in-process call (2)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs; the median is reported (3)")
    p.add_argument("--chunk-mib", type=float, default=64, help="MiB of logits per chunk (64)")
    p.add_argument("--keep-freed", action="store_true",
                   help="workers keep freed memory for reuse (glibc thresholds, see KEEP_FREED)")
    p.add_argument("--no-threads-check", action="store_true", help="skip the Numba-threads comparison")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    p.add_argument("--readme", action="store_true",
                   help="also write the table into the README (between <!-- dask-bench:start --> and :end -->; "
                        "with --keep-freed, <!-- dask-bench-keep-freed:start -->)")
    args = p.parse_args(argv)
    if args.readme and (args.quick or args.sizes):
        p.error("--readme takes the default sizes")
    sizes = parse_sizes(args.sizes or (QUICK if args.quick else FULL))

    local = in_process(sizes, args.repeat, args.threads)
    dask_ = on_cluster(sizes, args.repeat, args.workers, args.chunk_mib, keep_freed=args.keep_freed)
    threads_rows = {}
    if not args.no_threads_check:
        # One size per op, smaller: a fresh cluster per setting.
        small = [(n // 4, k) for n, k in sizes]
        capped = on_cluster(small, args.repeat, args.workers, args.chunk_mib, only_ours=True)
        free = on_cluster(small, args.repeat, args.workers, args.chunk_mib, only_ours=True,
                          env={"GUMBEL_NP_DASK_THREADS": "0"})
        for n, k in small:
            for op in ("categorical", "gumbel_softmax"):
                threads_rows[(n, k, op)] = (capped[(n, k, op, "dask")], free[(n, k, op, "dask")])
    text, rows = table(sizes, local, dask_, threads_rows, args)
    text += (f"\n\nEvery timed run is one during which other processes used at most {QUIET_SHARE:.0%} of the "
             f"cores (worst: {_FOREIGN['worst']:.1%}); the others were repeated.")
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.readme:
        from topk_targets import write_readme

        write_readme("dask-bench-keep-freed" if args.keep_freed else "dask-bench", text)
    return rows


if __name__ == "__main__":
    main()

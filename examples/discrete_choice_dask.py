"""Multinomial-logit choices for 1e8 agents on a Dask cluster with gumbel_np.categorical.

The model of ``examples/discrete_choice.py`` (utilities ``V = X @ B``, agent
``i`` picks ``argmax_j V[i, j] + eps[i, j]`` with standard Gumbel ``eps``,
so the choice probabilities are ``softmax(V[i])``), at a size no process
holds: everything is a lazy Dask array, generated chunk by chunk on the
workers of a ``distributed.LocalCluster`` (``--workers`` processes of
``--threads-per-worker`` threads) and reduced there, so no process holds
more than a few chunks of ``--chunk`` agents.

* Agents' covariates are keyed by agent id, not by chunk: ``X`` is standard
  logistic noise, ``gnp.logistic((n, covariates), rng=seed + 1,
  row_ids=agent_ids, chunks=...)``, scaled to unit variance, so an agent has
  the same covariates in any chunking or order.  ``B`` (alternative
  constants and slopes) comes from a NumPy seed.
* Choices: ``gnp.categorical(V, rng=seed, row_ids=agent_ids)``, one task per
  chunk.  Market shares: ``da.bincount`` of the choices; logit
  probabilities: the mean of ``gnp.softmax(V)`` over agents, with the
  binomial standard error of each share.
* Keyed by agent: the choices of the first ``--check`` agents are made again
  (a) with another chunking, the alternatives split across two chunks as
  well (``categorical``'s exact tree over category chunks), and (b) with the
  agents reordered (chunks in a random order, each chunk's agents shuffled),
  their utilities generated for the reordered ids; undoing the reordering
  block by block, every choice equals the first run's.  Without ``row_ids``
  (row positions as ids) the reordering redraws most choices.
* Memory: each worker's peak resident memory over the run (its
  ``ru_maxrss``: the workers are fresh processes), against the size of one
  chunk of utilities.

Usage::

    python examples/discrete_choice_dask.py [--agents 2000000] [--alternatives 100]
        [--chunk 125000] [--covariates 6] [--check AGENTS] [--workers 2]
        [--threads-per-worker 1] [--seed 0] [--large]

``--large`` runs 1e8 agents in chunks of 500,000 and checks the first 1e7.
"""

from __future__ import annotations

import argparse
import math
import resource
import time

import numpy as np

import gumbel_np as gnp

LARGE = {"agents": 100_000_000, "chunk": 500_000, "check": 10_000_000}
"""The settings of ``--large``."""


def coefficients(alternatives, covariates, seed):
    """``B``: a row of alternative-specific constants, then a row of slopes per covariate."""
    rng = np.random.default_rng(seed)
    b = np.empty((1 + covariates, alternatives), np.float32)
    b[0] = rng.normal(0.0, 1.0, alternatives)
    b[1:] = rng.normal(0.0, 0.5, (covariates, alternatives))
    return b


def utilities(ids, b, seed):
    """``V = [1, X] @ B`` for the agents ``ids`` (a Dask array), float32, in
    the chunks of ``ids`` with every alternative, generated where it is
    computed; ``X`` is keyed by agent id."""
    covariates = b.shape[0] - 1
    x = gnp.logistic((ids.shape[0], covariates), rng=seed + 1, row_ids=ids, chunks=(ids.chunks[0], covariates))
    x = x * np.float32(math.sqrt(3.0) / math.pi)  # unit variance
    return x @ b[1:] + b[0]


def shuffled(x, order, seed):
    """``x`` with its chunks in ``order`` and the rows of each chunk in a
    random order (seeded by ``seed`` and the chunk's new position)."""
    import dask.array as da

    y = da.concatenate([x.blocks[int(b)] for b in order])

    def permute(block, block_info=None):
        b = block_info[0]["chunk-location"][0]
        return block[np.random.default_rng([seed, b]).permutation(len(block))]

    return y.map_blocks(permute, dtype=x.dtype)


def unshuffled(y, order, seed):
    """The inverse of :func:`shuffled` with the same ``order`` and ``seed``."""
    import dask.array as da

    def unpermute(block, block_info=None):
        b = block_info[0]["chunk-location"][0]
        p = np.random.default_rng([seed, b]).permutation(len(block))
        out = np.empty_like(block)
        out[p] = block
        return out

    z = y.map_blocks(unpermute, dtype=y.dtype)
    return da.concatenate([z.blocks[int(b)] for b in np.argsort(order)])


def _peak_rss_mib():
    """This process's peak resident memory (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _watch_rss(dask_worker):
    """Start sampling this worker's resident memory every 5 ms (a daemon
    thread); :func:`_watched_peak_mib` stops it and returns the peak."""
    import threading

    import psutil

    proc = psutil.Process()
    state = {"peak": proc.memory_info().rss, "run": True}

    def sample():
        while state["run"]:
            state["peak"] = max(state["peak"], proc.memory_info().rss)
            time.sleep(0.005)

    threading.Thread(target=sample, daemon=True).start()
    dask_worker.gnp_rss_watch = state


def _watched_peak_mib(dask_worker):
    state = dask_worker.gnp_rss_watch
    state["run"] = False
    return state["peak"] / 2**20


def _rss_mib():
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=2_000_000, help="simulated agents (2000000)")
    p.add_argument("--alternatives", type=int, default=100, help="alternatives (100)")
    p.add_argument("--chunk", type=int, default=125_000, help="agents per chunk (125000)")
    p.add_argument("--covariates", type=int, default=6, help="agent covariates (6)")
    p.add_argument("--check", type=int, default=None,
                   help="agents whose choices are remade rechunked and reordered (default: all)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="threads per worker (1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the utilities and the choices (0)")
    p.add_argument("--large", action="store_true",
                   help=f"{LARGE['agents']:.0e} agents in chunks of {LARGE['chunk']:,}, "
                        f"the first {LARGE['check']:.0e} checked")
    args = p.parse_args(argv)
    if args.large:
        for key, value in LARGE.items():
            if getattr(args, key) == p.get_default(key):
                setattr(args, key, value)
    if args.check is None:
        args.check = args.agents
    if min(args.agents, args.alternatives, args.chunk, args.workers, args.threads_per_worker, args.check) < 1:
        p.error("--agents, --alternatives, --chunk, --workers, --threads-per-worker, --check must be >= 1")
    if args.alternatives < 2:
        p.error("--alternatives must be >= 2 (the rechunking check splits them)")
    args.check = min(args.check, args.agents)
    return args


def main(argv=None):
    args = parse_args(argv)
    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    n, k, seed, chunk = args.agents, args.alternatives, args.seed, args.chunk
    b = coefficients(k, args.covariates, seed)
    chunk_mib = chunk * k * 4 / 2**20
    print(f"{n:,} agents x {k} alternatives in chunks of {chunk:,} agents "
          f"({chunk_mib:.0f} MiB of float32 utilities per chunk, {n * k * 4 / 2**30:.1f} GiB in all)")
    t0 = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker, processes=True,
                      dashboard_address=":0", silence_logs=40) as cluster, Client(cluster) as client:
        start_mib = max(client.run(_rss_mib).values())
        print(f"LocalCluster: {args.workers} worker processes x {args.threads_per_worker} thread(s), "
              f"up in {time.perf_counter() - t0:.1f} s ({start_mib:.0f} MiB resident per worker at start)")

        ids = da.arange(n, chunks=chunk, dtype=np.int64)
        v = utilities(ids, b, seed)
        choices = gnp.categorical(v, rng=seed, row_ids=ids)

        # Warm-up: compile the kernels on every worker (and fill their disk
        # cache) outside the timings.
        small = da.arange(min(n, 4 * args.workers * 1024), chunks=1024, dtype=np.int64)
        vs = utilities(small, b, seed)
        dask.compute(da.bincount(gnp.categorical(vs, rng=seed, row_ids=small), minlength=k),
                     gnp.softmax(vs).sum(0), gnp.categorical(vs.rechunk((512, (k + 1) // 2)), rng=seed,
                                                             row_ids=small).sum())

        # 1. Generation alone, then generation + choices: the choices' share of the time.
        base_mib = max(client.run(_rss_mib).values())  # compiled kernels loaded
        client.run(_watch_rss)
        t = time.perf_counter()
        dask.compute(v.sum(dtype=np.float64))
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        (counts,) = dask.compute(da.bincount(choices, minlength=k))
        choice_s = time.perf_counter() - t
        agents_per_s = n / choice_s
        peak_choices = max(client.run(_watched_peak_mib).values())
        client.run(_watch_rss)
        categorical_s = max(choice_s - gen_s, 1e-9)
        print("\nthroughput (kernels compiled; every chunk generated on the workers):")
        print(f"  utilities alone (generate, sum)      : {gen_s:7.2f} s")
        print(f"  utilities + choices + bincount       : {choice_s:7.2f} s  {agents_per_s:14,.0f} agents/s")
        print(f"  choices alone (the difference)       : {categorical_s:7.2f} s  {n / categorical_s:14,.0f} agents/s"
              f"  ({n * k / categorical_s / 1e6:,.0f} M utilities/s)")

        # 2. Market shares against the logit probabilities.
        p = gnp.softmax(v)
        t = time.perf_counter()
        psum, pvar = dask.compute(p.sum(0, dtype=np.float64), (p * (1 - p)).sum(0, dtype=np.float64))
        probs_s = time.perf_counter() - t
        peak_shares = max(client.run(_watched_peak_mib).values())
        shares = counts / n
        probs, share_var = psum / n, pvar / (n * n)
        dev = shares - probs
        z = dev / np.sqrt(share_var)
        max_abs_dev, max_abs_z = float(np.abs(dev).max()), float(np.abs(z).max())
        print(f"\nmarket shares vs logit probabilities (mean of softmax(V) over agents, {probs_s:.1f} s):")
        print(f"  {'alternative':>11} {'share':>9} {'logit prob':>10} {'deviation':>10} {'z':>6}")
        for j in np.argsort(-probs)[:5]:
            print(f"  {j:11d} {shares[j]:9.5f} {probs[j]:10.5f} {dev[j]:+10.5f} {z[j]:+6.2f}")
        print(f"  max |share - prob| over {k} alternatives: {max_abs_dev:.2e} "
              f"(largest |z| = {max_abs_z:.2f} binomial standard errors)")

        # 3. Choices belong to agents: rechunked (alternatives split too) and reordered.
        m = args.check
        first = choices[:m]
        other = max(1, chunk // 3 + 1)
        rechunked = gnp.categorical(v[:m].rechunk((other, (k + 1) // 2)), rng=seed, row_ids=ids[:m])
        ids_m = ids[:m]
        order = np.random.default_rng([seed, 2]).permutation(ids_m.numblocks[0])
        perm_ids = shuffled(ids_m, order, seed)
        v_perm = utilities(perm_ids, b, seed)
        reordered = unshuffled(gnp.categorical(v_perm, rng=seed, row_ids=perm_ids), order, seed)
        positional = unshuffled(gnp.categorical(v_perm, rng=seed), order, seed)
        t = time.perf_counter()
        n_rechunked, n_reordered, n_positional, moved = dask.compute(
            (rechunked != first).sum(), (reordered != first).sum(), (positional != first).sum(),
            (unshuffled(perm_ids, order, seed) != ids_m).sum(),
        )
        check_s = time.perf_counter() - t
        rechunk_invariant, reorder_invariant = int(n_rechunked) == 0, int(n_reordered) == 0
        positional_changed = int(n_positional) / m
        print(f"\nchoices keyed by agent id (the first {m:,} agents, {check_s:.1f} s):")
        print(f"  rechunked to {other:,} agents x {(k + 1) // 2} alternatives per chunk: "
              f"{int(n_rechunked)} choices changed")
        print(f"  reordered ({len(order)} chunks in a random order, agents shuffled in each), "
              f"with their ids: {int(n_reordered)} choices changed")
        print(f"  reordered, no row_ids (ids = row positions): {positional_changed:.1%} of choices redrawn")
        assert int(moved) == 0, "the reordering is not undone"
        assert rechunk_invariant, "rechunking changed some choices"
        assert reorder_invariant, "reordering the agents changed some choices"

        # 4. Memory: each worker's peak over the run.
        peaks = client.run(_peak_rss_mib)
        peak_mib = max(peaks.values())
        print("\npeak resident memory per worker: "
              + ", ".join(f"{v_:.0f} MiB" for v_ in sorted(peaks.values()))
              + f" ({peak_mib / chunk_mib:.1f} chunks of utilities; {start_mib:.0f} MiB at start)")
        print(f"  after the warm-up (kernels compiled): {base_mib:.0f} MiB; above it, sampled every 5 ms: "
              f"{peak_choices - base_mib:.0f} MiB ({(peak_choices - base_mib) / chunk_mib:.1f} chunks) over the "
              f"choices (1.), {peak_shares - base_mib:.0f} MiB ({(peak_shares - base_mib) / chunk_mib:.1f} chunks) "
              "over the shares (2.); the overall peak includes compiling and the checks (3.)")
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    return {
        "agents": n,
        "alternatives": k,
        "chunk": chunk,
        "workers": args.workers,
        "generation_seconds": gen_s,
        "choice_seconds": choice_s,
        "agents_per_second": agents_per_s,
        "categorical_agents_per_second": n / categorical_s,
        "shares": shares,
        "logit_probabilities": probs,
        "share_std_errors": np.sqrt(share_var),
        "max_abs_deviation": max_abs_dev,
        "max_abs_z": max_abs_z,
        "checked": m,
        "rechunk_invariant": rechunk_invariant,
        "reorder_invariant": reorder_invariant,
        "positional_changed_fraction": positional_changed,
        "chunk_mib": chunk_mib,
        "start_mib": start_mib,
        "peak_mib_per_worker": peaks,
        "base_mib": base_mib,
        "peak_mib_choices": peak_choices,
        "peak_mib_shares": peak_shares,
    }


if __name__ == "__main__":
    main()

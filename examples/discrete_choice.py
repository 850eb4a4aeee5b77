"""Multinomial-logit choices for a million agents with gumbel_np.categorical.

In a random-utility model agent ``i`` gets utility ``U[i, j] = V[i, j] +
eps[i, j]`` from alternative ``j`` and picks the best one; with i.i.d.
standard Gumbel ``eps`` the choice probabilities are the logit probabilities
``softmax(V[i])`` (McFadden 1974).  ``gumbel_np.categorical(V)`` is exactly
that argmax, drawn in one fused pass per row without forming the noise.

The example simulates ``--agents`` agents (default 1,000,000) over
``--alternatives`` alternatives (default 100), with systematic utilities
``V = X @ B`` from agent covariates ``X`` (a constant and ``--covariates``
standard normal columns) and alternative coefficients ``B``, all generated
in float32 with a fixed NumPy seed.  Choices are keyed by agent:
``categorical(V, rng=seed, row_ids=agent_ids)``.  It shows

1. the throughput: agents per second for one choice per agent, and choices
   per second for ``--occasions`` choice occasions per agent
   (``num_samples``, independent draws);
2. the market shares against the logit probabilities (mean of ``softmax(V)``
   over agents), with the largest absolute deviation and the largest
   deviation in units of its binomial standard error;
3. that every agent's choice depends only on the agent: shuffling the agents
   (rows of ``V`` with their ids) and keeping a random 10% of them (with their
   ids) leave every choice unchanged, whereas without ``row_ids`` (the default
   ids are row positions) a shuffle redraws most choices;
4. a slate of ``--slate`` (default 5) distinct recommendations per agent,
   ranked: ``categorical(V, num_samples=5, replace=False, ...)``, an exact
   draw from the Plackett-Luce (exploded logit) model, whose first entry is
   the agent's single choice.  Its throughput against the single choice, the
   shares of the second position against their exact value ``p_j * sum_{a !=
   j} p_a / (1 - p_a)`` averaged over agents, the mean log-probability of the
   slates (``plackett_luce_log_prob``), and, again, that shuffling and
   sub-sampling the agents with their ids changes no slate.

Usage::

    python examples/discrete_choice.py [--agents 1000000] [--alternatives 100]
        [--covariates 6] [--occasions 5] [--slate 5] [--repeats 3] [--seed 0]

Reference: D. McFadden, "Conditional logit analysis of qualitative choice
behavior", in Frontiers in Econometrics, 1974.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import gumbel_np as gnp

CHUNK_ROWS = 65536
"""Rows per softmax call when averaging the logit probabilities (bounded memory)."""


def make_utilities(agents, alternatives, covariates, seed):
    """``V = X @ B`` in float32: X is (agents, 1 + covariates) with a constant
    column, B holds alternative-specific constants and covariate slopes."""
    rng = np.random.default_rng(seed)
    x = np.empty((agents, 1 + covariates), np.float32)
    x[:, 0] = 1.0
    x[:, 1:] = rng.standard_normal((agents, covariates), dtype=np.float32)
    b = np.empty((1 + covariates, alternatives), np.float32)
    b[0] = rng.normal(0.0, 1.0, alternatives)  # alternative-specific constants
    b[1:] = rng.normal(0.0, 0.5, (covariates, alternatives))  # taste for each covariate
    return x @ b


def logit_probabilities(v):
    """Mean of ``softmax(V)`` over agents and the binomial variance of each
    share, ``sum_i p_ij (1 - p_ij) / n**2``, computed in row chunks."""
    n, k = v.shape
    mean = np.zeros(k)
    var = np.zeros(k)
    for a in range(0, n, CHUNK_ROWS):
        p = gnp.softmax(v[a : a + CHUNK_ROWS])
        mean += p.sum(0, dtype=np.float64)
        var += (p * (1.0 - p)).sum(0, dtype=np.float64)
    return mean / n, var / (n * n)


def second_position_probabilities(v):
    """Mean over agents of ``P(second draw = j)`` without replacement, ``p_j
    (S - p_j / (1 - p_j))`` with ``S = sum_a p_a / (1 - p_a)``, and the
    binomial variance of each share, in row chunks."""
    n, k = v.shape
    mean = np.zeros(k)
    var = np.zeros(k)
    for a in range(0, n, CHUNK_ROWS):
        p = gnp.softmax(v[a : a + CHUNK_ROWS].astype(np.float64))
        r = p / (1.0 - p)
        q = p * (r.sum(-1, keepdims=True) - r)
        mean += q.sum(0)
        var += (q * (1.0 - q)).sum(0)
    return mean / n, var / (n * n)


def best_time(func, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t)
    return min(times), out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=1_000_000, help="simulated agents (1000000)")
    p.add_argument("--alternatives", type=int, default=100, help="alternatives (100)")
    p.add_argument("--covariates", type=int, default=6, help="agent covariates (6)")
    p.add_argument("--occasions", type=int, default=5,
                   help="choice occasions per agent for the choices-per-second figure (5)")
    p.add_argument("--slate", type=int, default=5,
                   help="distinct alternatives ranked per agent in the slate section (5)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls; the best is reported (3)")
    p.add_argument("--subsample", type=float, default=0.1,
                   help="fraction of agents kept in the sub-sampling check (0.1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the utilities and the choices (0)")
    args = p.parse_args(argv)
    if min(args.agents, args.alternatives, args.occasions, args.repeats, args.slate) < 1 or args.covariates < 0:
        p.error("--agents, --alternatives, --occasions, --slate, --repeats must be >= 1")
    if args.slate > args.alternatives:
        p.error("--slate must be at most --alternatives")
    if not 0.0 < args.subsample <= 1.0:
        p.error("--subsample must be in (0, 1]")
    return args


def main(argv=None):
    args = parse_args(argv)
    n, k, seed = args.agents, args.alternatives, args.seed

    t0 = time.perf_counter()
    v = make_utilities(n, k, args.covariates, seed)
    agent_ids = np.arange(n, dtype=np.int64)
    print(f"{n:,} agents x {k} alternatives, V = X @ B ({v.dtype}, "
          f"{v.nbytes / 2**20:.0f} MiB), generated in {time.perf_counter() - t0:.2f} s")

    # 1. Throughput.  The first call compiles the kernel (Numba compiles
    # lazily); a warm-up call of the same kind (single- or multi-threaded, as
    # gumbel_np picks by size) keeps compilation out of the timings.
    warm = min(n, 4096)
    t = time.perf_counter()
    gnp.categorical(v[:warm], rng=seed, row_ids=agent_ids[:warm])
    gnp.categorical(v[:warm], rng=seed, row_ids=agent_ids[:warm], num_samples=args.occasions)
    compile_s = time.perf_counter() - t

    def choose():
        return gnp.categorical(v, rng=seed, row_ids=agent_ids)

    def panel():
        return gnp.categorical(v, rng=seed, row_ids=agent_ids, num_samples=args.occasions)

    single_s, choices = best_time(choose, args.repeats)
    panel_s, panel_choices = best_time(panel, args.repeats)
    assert (panel_choices[:, 0] == choices).all()  # draw 0 of the panel is the single draw
    agents_per_s = n / single_s
    choices_per_s = n * args.occasions / panel_s
    print(f"\nthroughput (best of {args.repeats}; "
          f"first calls incl. compilation {compile_s:.1f} s):")
    print(f"  one choice per agent : {single_s * 1e3:8.1f} ms  {agents_per_s:14,.0f} agents/s"
          f"  ({n * k / single_s / 1e6:,.0f} M utilities/s)")
    print(f"  {args.occasions} occasions per agent: {panel_s * 1e3:8.1f} ms  "
          f"{choices_per_s:14,.0f} choices/s")

    # 2. Market shares against the logit probabilities.
    shares = np.bincount(choices, minlength=k) / n
    probs, share_var = logit_probabilities(v)
    dev = shares - probs
    max_abs_dev = float(np.abs(dev).max())
    z = dev / np.sqrt(share_var)
    max_abs_z = float(np.abs(z).max())
    print("\nmarket shares vs logit probabilities (mean of softmax(V) over agents):")
    print(f"  {'alternative':>11} {'share':>9} {'logit prob':>10} {'deviation':>10} {'z':>6}")
    for j in np.argsort(-probs)[:5]:
        print(f"  {j:11d} {shares[j]:9.5f} {probs[j]:10.5f} {dev[j]:+10.5f} {z[j]:+6.2f}")
    print(f"  max |share - prob| over {k} alternatives: {max_abs_dev:.2e} "
          f"(largest |z| = {max_abs_z:.2f} binomial standard errors)")

    # 3. Choices belong to agents: shuffle and sub-sample with their ids.
    mix = np.random.default_rng([seed, 1])
    perm = mix.permutation(n)
    shuffled = gnp.categorical(v[perm], rng=seed, row_ids=agent_ids[perm])
    shuffle_invariant = bool((shuffled == choices[perm]).all())
    m = max(1, round(args.subsample * n))
    subset = mix.choice(n, size=m, replace=False)
    sub = gnp.categorical(v[subset], rng=seed, row_ids=agent_ids[subset])
    subsample_invariant = bool((sub == choices[subset]).all())
    positional = gnp.categorical(v[perm], rng=seed)  # default ids: row positions
    positional_changed = float((positional != choices[perm]).mean())
    print("\nchoices keyed by agent id:")
    print(f"  all agents shuffled, with their ids: every choice unchanged: {shuffle_invariant}")
    print(f"  random {args.subsample:.0%} ({m:,} agents), with their ids: every choice unchanged: "
          f"{subsample_invariant}")
    print(f"  all agents shuffled, no row_ids (ids = row positions): "
          f"{positional_changed:.1%} of choices redrawn")
    assert shuffle_invariant, "shuffling the agents changed some choices"
    assert subsample_invariant, "sub-sampling the agents changed some choices"

    # 4. Ranked slates without replacement (Plackett-Luce), keyed by agent.
    s = args.slate
    gnp.categorical(v[:warm], rng=seed, row_ids=agent_ids[:warm], num_samples=s, replace=False)

    def slates():
        return gnp.categorical(v, rng=seed, row_ids=agent_ids, num_samples=s, replace=False)

    slate_s, slate = best_time(slates, args.repeats)
    first_is_choice = bool((slate[:, 0] == choices).all())
    distinct = bool((np.sort(slate, -1)[:, 1:] != np.sort(slate, -1)[:, :-1]).all())
    second = np.bincount(slate[:, 1], minlength=k) / n if s > 1 else np.zeros(k)
    second_probs, second_var = second_position_probabilities(v)
    second_z = float(np.abs((second - second_probs) / np.sqrt(second_var)).max()) if s > 1 else 0.0
    t = time.perf_counter()
    loglik = gnp.plackett_luce_log_prob(v, slate)
    loglik_s = time.perf_counter() - t
    slate_shuffled = gnp.categorical(v[perm], rng=seed, row_ids=agent_ids[perm], num_samples=s, replace=False)
    slate_sub = gnp.categorical(v[subset], rng=seed, row_ids=agent_ids[subset], num_samples=s, replace=False)
    slate_invariant = bool((slate_shuffled == slate[perm]).all() and (slate_sub == slate[subset]).all())
    print(f"\nslates of {s} ranked alternatives per agent (without replacement):")
    print(f"  {slate_s * 1e3:8.1f} ms  {n / slate_s:14,.0f} agents/s  "
          f"({slate_s / single_s:.2f}x the single choice)")
    print(f"  first entry is the agent's single choice: {first_is_choice}; entries distinct: {distinct}")
    if s > 1:
        print(f"  second-position shares vs exact Plackett-Luce probabilities: largest |z| = {second_z:.2f}")
    print(f"  mean log-probability of a slate: {float(loglik.mean()):.3f} "
          f"(plackett_luce_log_prob, {loglik_s * 1e3:.1f} ms)")
    print(f"  shuffled and sub-sampled agents, with their ids: every slate unchanged: {slate_invariant}")
    assert first_is_choice and distinct and slate_invariant
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")

    return {
        "agents": n,
        "alternatives": k,
        "occasions": args.occasions,
        "seconds_per_call": single_s,
        "seconds_per_panel_call": panel_s,
        "compile_seconds": compile_s,
        "agents_per_second": agents_per_s,
        "choices_per_second": choices_per_s,
        "shares": shares,
        "logit_probabilities": probs,
        "share_std_errors": np.sqrt(share_var),
        "max_abs_deviation": max_abs_dev,
        "max_abs_z": max_abs_z,
        "shuffle_invariant": shuffle_invariant,
        "subsample_invariant": subsample_invariant,
        "positional_changed_fraction": positional_changed,
        "slate": s,
        "seconds_per_slate_call": slate_s,
        "slate_first_is_choice": first_is_choice,
        "slate_distinct": distinct,
        "second_position_shares": second,
        "second_position_probabilities": second_probs,
        "second_position_max_abs_z": second_z,
        "slate_mean_log_prob": float(loglik.mean()),
        "slate_invariant": slate_invariant,
    }


if __name__ == "__main__":
    main()

"""The Gumbel-Softmax relaxation at four temperatures (Jang et al. 2017, Figure 1).

For one categorical distribution over five classes this draws a 2 x 5 grid of
bar plots:

* top row: the class probabilities, then, for the temperatures 0.1, 0.5, 1
  and 10, the expectation of the Gumbel-Softmax sample
  ``softmax((log p + G) / tau)``, a Monte Carlo mean over many draws;
* bottom row: one categorical sample (a one-hot), then one Gumbel-Softmax
  sample at each temperature.

Every panel uses the same noise (a fixed integer ``rng`` keys the same Gumbel
stream at every call), so the single samples of the bottom row differ only by
the temperature and all share the argmax of the categorical sample: low
temperatures give nearly one-hot samples whose mean approaches the class
probabilities, high temperatures give nearly uniform samples.

Usage::

    python examples/relaxation_figure.py [--draws 100000] [--seed 0] [--out FILE]

Reference: E. Jang, S. Gu and B. Poole, "Categorical Reparameterization with
Gumbel-Softmax", ICLR 2017, Figure 1.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

import gumbel_np as gnp

HERE = pathlib.Path(__file__).resolve().parent
TEMPERATURES = (0.1, 0.5, 1.0, 10.0)
# Class probabilities of the figure: five classes, unequal but none tiny.
PROBS = np.array([0.10, 0.35, 0.05, 0.30, 0.20])


def relaxation_expectations(probs, temperatures, draws, seed):
    """Monte Carlo means and first samples of the Gumbel-Softmax, per temperature.

    Returns ``(expectations, samples, categorical_sample)``: dicts from
    temperature to arrays of the classes' shape, and the index of the
    categorical draw that uses the same noise as the samples.
    """
    logits = np.broadcast_to(np.log(probs), (draws, probs.size))
    expectations, samples = {}, {}
    for tau in temperatures:
        y = gnp.gumbel_softmax(logits, tau=tau, rng=seed)  # (draws, K), same noise for every tau
        expectations[tau] = y.mean(axis=0)
        samples[tau] = y[0]
    # Gumbel-Max on the same stream: row 0 with the same key is the argmax of
    # log p + G, the class every low-temperature sample concentrates on.
    category = int(gnp.categorical(np.log(probs)[None, :], rng=seed)[0])
    return expectations, samples, category


def draw_figure(path, probs, expectations, samples, category):
    """Write the 2 x 5 bar-plot grid to ``path`` (PNG, Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = probs.size
    classes = np.arange(k)
    fig = Figure(figsize=(12.5, 4.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1 + len(expectations), sharey=True)
    one_hot = np.eye(k)[category]
    top = [("Categorical", probs)] + [(f"τ = {t:g}", e) for t, e in expectations.items()]
    bottom = [("Categorical", one_hot)] + [(f"τ = {t:g}", s) for t, s in samples.items()]
    for col, ((t_title, t_vals), (_, b_vals)) in enumerate(zip(top, bottom)):
        color = "tab:gray" if col == 0 else "tab:blue"
        axes[0, col].bar(classes, t_vals, color=color)
        axes[0, col].set_title(t_title)
        axes[1, col].bar(classes, b_vals, color=color if col == 0 else "tab:orange")
        axes[1, col].set_xlabel("category")
        for ax in axes[:, col]:
            ax.set_xticks(classes)
            ax.set_ylim(0.0, 1.0)
    axes[0, 0].set_ylabel("expectation")
    axes[1, 0].set_ylabel("sample")
    fig.suptitle("Gumbel-Softmax: expectation (top) and one sample (bottom) per temperature")
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--draws", type=int, default=100_000,
                   help="Monte Carlo draws per temperature (default 100000)")
    p.add_argument("--seed", type=int, default=0, help="noise key (default 0)")
    p.add_argument("--out", default=str(HERE / "relaxation_figure.png"),
                   help="PNG to write (default examples/relaxation_figure.png)")
    args = p.parse_args(argv)
    if args.draws < 1:
        p.error("--draws must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    expectations, samples, category = relaxation_expectations(
        PROBS, TEMPERATURES, args.draws, args.seed
    )
    out = draw_figure(args.out, PROBS, expectations, samples, category)
    uniform = np.full(PROBS.size, 1.0 / PROBS.size)

    with np.printoptions(precision=3, suppress=True):  # local: main() is also called from tests
        print(f"class probabilities   {PROBS}")
        print(f"categorical sample    class {category} (0-based, as on the x axes)")
        print(f"{'tau':>5}  {'E[y] (' + str(args.draws) + ' draws)':<34} "
              f"{'max|E[y]-p|':>11} {'max|E[y]-1/K|':>13}  one sample")
        for tau in TEMPERATURES:
            e = expectations[tau]
            print(f"{tau:5g}  {np.array2string(e):<34} {np.abs(e - PROBS).max():11.4f} "
                  f"{np.abs(e - uniform).max():13.4f}  {np.array2string(samples[tau])}")
    print(f"wrote {out}  ({time.perf_counter() - t0:.1f} s)")
    return {
        "probs": PROBS.copy(),
        "temperatures": TEMPERATURES,
        "expectations": expectations,
        "samples": samples,
        "categorical_sample": category,
        "out": str(out),
    }


if __name__ == "__main__":
    main()

"""Run the figure, VAE, estimator-variance and L0-regression examples at their
default settings and paste their results tables into the README: the VAE's
between ``<!-- vae:start -->`` and ``<!-- vae:end -->``, the estimators' bias,
variance and mean squared error on its two problems, with the lowest MSE at
each temperature (and its figure), between ``<!-- variance:start -->`` and
``<!-- variance:end -->``, the L0 regression's support recovery against the
Lasso (with its figure) between ``<!-- l0:start -->`` and ``<!-- l0:end -->``;
the figures are the PNG files the examples write.

    python examples/update_readme.py [relaxation] [vae] [variance] [l0]

With names, only those examples run (default: all four); every block is
pasted from the Markdown file its example wrote, so the README always shows
the files' contents.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import re

HERE = pathlib.Path(__file__).resolve().parent
README = HERE.parent / "README.md"
EXAMPLES = {
    "relaxation": "relaxation_figure",
    "vae": "categorical_vae",
    "variance": "estimator_variance",
    "l0": "l0_regression",
}
# README block -> (the Markdown file its example writes, a figure shown inside the block).
BLOCKS = {
    "vae": ("categorical_vae_results.md", None),
    "variance": ("estimator_variance.md", ("Bias, variance and MSE of the gradient estimators",
                                           "examples/estimator_variance.png")),
    "l0": ("l0_regression.md", ("L0 regression with hard-concrete gates",
                                "examples/l0_regression.png")),
}


def _run(name):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([])


def block(name, markdown):
    """The README block ``name`` holding ``markdown`` (its ``# `` heading dropped)."""
    body = re.sub(r"^# .*\n+", "", markdown.strip() + "\n").strip()
    figure = BLOCKS[name][1]
    if figure is not None:
        body += f"\n\n![{figure[0]}]({figure[1]})"
    return f"<!-- {name}:start -->\n{body}\n<!-- {name}:end -->"


def paste(text, name, markdown):
    """``text`` with its ``name`` block replaced by ``block(name, markdown)``."""
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", flags=re.S)
    if len(pattern.findall(text)) != 1:
        raise SystemExit(f"update_readme: {README} needs exactly one <!-- {name}:start --> ... "
                         f"<!-- {name}:end --> block")
    return pattern.sub(lambda m: block(name, markdown), text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("examples", nargs="*", metavar="NAME",
                        help="examples to run, of " + ", ".join(EXAMPLES) + " (default: all)")
    names = parser.parse_args(argv).examples or list(EXAMPLES)
    unknown = sorted(set(names) - set(EXAMPLES))
    if unknown:
        parser.error(f"unknown example(s) {unknown}; choose from {', '.join(EXAMPLES)}")
    for name in EXAMPLES:
        if name in names:
            _run(EXAMPLES[name])
    text = README.read_text(encoding="utf-8")
    for name, (results, _) in BLOCKS.items():
        text = paste(text, name, (HERE / results).read_text(encoding="utf-8"))
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()

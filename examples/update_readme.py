"""Run the figure and VAE examples at their default settings and paste the
VAE's results table into the README (between ``<!-- vae:start -->`` and
``<!-- vae:end -->``); the figures are the PNG files the examples write.

    python examples/update_readme.py
"""

from __future__ import annotations

import importlib.util
import pathlib
import re

HERE = pathlib.Path(__file__).resolve().parent
README = HERE.parent / "README.md"


def _run(name):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([])


def main():
    _run("relaxation_figure")
    _run("categorical_vae")
    table = (HERE / "categorical_vae_results.md").read_text().strip()
    table = re.sub(r"^# .*\n+", "", table)  # the README has its own heading
    block = "<!-- vae:start -->\n" + table + "\n<!-- vae:end -->"
    text = README.read_text()
    README.write_text(re.sub(r"<!-- vae:start -->.*?<!-- vae:end -->", lambda m: block, text, flags=re.S))


if __name__ == "__main__":
    main()

"""Packaging: the public surface, a light import, the wheel's contents,
dispatch rules and the docstring examples."""

from __future__ import annotations

import doctest
import inspect
import importlib
import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

import gumbel_np as gnp
from gumbel_np._ops import HOST_FUNCTIONS, OPS

CHECKOUT = pathlib.Path(__file__).resolve().parents[1]

PUBLIC = sorted(["STREAM_VERSION", *OPS, *HOST_FUNCTIONS])


def test_public_surface():
    assert sorted(gnp.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(gnp, name)
    assert isinstance(gnp.__version__, str)
    assert (pathlib.Path(gnp.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize("name", sorted(OPS))
def test_signature_matches_the_registry(name):
    """Each public function takes what its record says: its positional
    arrays (the shape, for the noise), then ``axis``, ``out`` and the
    record's options as keywords; and its backward partner, where it has
    one, is public and names it back."""
    op = OPS[name]
    params = inspect.signature(getattr(gnp, name)).parameters.values()
    positional = [p.name for p in params if p.kind is p.POSITIONAL_ONLY]
    keywords = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
    assert len(positional) == max(len(op.arrays), 1)
    # out= where the function returns one array (a second output: out_p).
    # axis: the category axis, or the axis that indexes an element-wise
    # sampler's stream (an element-wise function without noise has none).
    axis = {"axis"} if not op.elementwise or "rng" in op.options else set()
    assert keywords == axis | set(op.options) | (set() if "out_p" in op.kernel.cuda else {"out"})
    if op.backward is not None:
        assert OPS[op.backward].forward == name
    if op.forward is not None:
        assert OPS[op.forward].backward == name


def test_import_is_light():
    code = (
        "import sys, gumbel_np\n"
        "heavy = [m for m in ('cupy', 'numba', 'gumbel_np.kernels.cpu', 'gumbel_np.kernels.softmax') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('light')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.path.dirname(CHECKOUT))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "light"


def test_docstring_examples():
    for name in ("gumbel_np._softmax", "gumbel_np._gumbel", "gumbel_np._estimators", "gumbel_np._binary", "gumbel_np._ranking"):
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, name


def test_mixed_numpy_and_cupy_is_a_type_error(monkeypatch):
    fake = types.ModuleType("cupy")

    class ndarray:  # stands in for cupy.ndarray: dispatch only checks the type
        pass

    fake.ndarray = ndarray
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(TypeError, match=r"^softmax_backward: NumPy and CuPy arrays cannot be mixed"):
        gnp.softmax_backward(ndarray(), np.zeros(3))


def _build_requirements_met() -> bool:
    """Whether pyproject.toml's build requirements (setuptools>=64 and wheel)
    are importable here, at the versions asked for."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        import tomllib
        from packaging.requirements import Requirement
    except ImportError:  # Python 3.10, or no packaging: let pip isolate the build
        return False
    requires = tomllib.loads((CHECKOUT / "pyproject.toml").read_text())["build-system"]["requires"]
    for spec in requires:
        req = Requirement(spec)
        try:
            if not req.specifier.contains(version(req.name), prereleases=True):
                return False
        except PackageNotFoundError:
            return False
    return True


@pytest.mark.slow
def test_installed_wheel_carries_the_kernels(tmp_path):
    if not (CHECKOUT / "setup.cfg").is_file():
        pytest.skip("the source checkout is not beside the tests")
    # Build without isolation only where this environment already has what
    # pyproject.toml's [build-system] asks for; otherwise let pip provide it
    # (a fresh venv has an old setuptools and no wheel package).
    isolation = ["--no-build-isolation"] if _build_requirements_met() else []
    wheels = tmp_path / "wheels"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-w", str(wheels), str(CHECKOUT)],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("gumbel_np-*.whl")
    site = tmp_path / "site"
    inst = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True, text=True,
    )
    assert inst.returncode == 0, inst.stdout + inst.stderr
    sources = sorted(p.name for p in (CHECKOUT / "kernels").iterdir() if p.suffix in (".cu", ".cuh"))
    code = (
        "import importlib.resources as r, json, numpy as np, gumbel_np, gumbel_np.kernels as k\n"
        "files = r.files('gumbel_np.kernels')\n"
        "cuda = {f.name: len(f.read_text()) for f in files.iterdir() if f.name.endswith(('.cu', '.cuh'))}\n"
        "y = gumbel_np.softmax(np.array([0.0, 0.0]))\n"
        "print(json.dumps([gumbel_np.__file__, k.__file__, cuda, y.tolist(), files.joinpath('cpu.py').is_file()]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(site))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    import json

    init, kinit, cuda, y, has_cpu = json.loads(run.stdout)
    assert init.startswith(str(site)) and kinit.startswith(str(site))
    assert sorted(cuda) == sources and all(n > 0 for n in cuda.values())
    assert y == [0.5, 0.5] and has_cpu


def test_noise_modes_agree():
    """The registry, the Numba kernels and (in test_cuda_loader.py) the CUDA
    header give the noise modes the same numbers."""
    from gumbel_np import _ops
    from gumbel_np.kernels import _rows

    assert (_rows.NOISE_DRAW, _rows.NOISE_ARRAY, _rows.NOISE_NONE) == (
        _ops.NOISE_DRAW,
        _ops.NOISE_ARRAY,
        _ops.NOISE_NONE,
    )

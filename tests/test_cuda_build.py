"""The CUDA sources of the installed package compile with nvcc for sm_80 and sm_90.

Needs no GPU.  Sources are read from the installed ``gumbel_np.kernels``
package (so a wheel that forgets a header fails here), copied to a scratch
folder and compiled there:

* each ``.cu`` file alone to PTX, with ``-I`` on the copied folder;
* the text the loader in ``cuda.py`` hands NVRTC (headers inlined, and
  ``<cuda_fp16.h>`` included from the toolkit as NVRTC includes it from CuPy's
  include path), with every name expression of its ``RawModule`` (the
  ``float``, ``double`` and ``__half`` instantiation of each kernel)
  instantiated by taking the kernel's address (what NVRTC does with a name
  expression), to SASS objects for both architectures, with ptxas asked to
  report local-memory use: the per-thread caches and the Philox state must
  stay in registers.  The objects are built with ``-ftz=true``, as CuPy's
  ``RawModule`` compiles every source (``cupy/cuda/compiler.py`` appends it to
  the NVRTC options), so the registers and spills checked are those of the
  code users run, as far as nvcc mirrors NVRTC.

All compilations start at once in a module fixture (they take most of the
time and run in parallel); the tests then check their results.
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from gumbel_np.kernels import cuda

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(
    NVCC is None,
    reason="nvcc is not on the PATH: install the CUDA toolkit to check the kernels build",
)

ARCHS = ("sm_80", "sm_90")
KERNELS = importlib.resources.files("gumbel_np.kernels")
SOURCES = sorted(p.name for p in KERNELS.iterdir() if p.name.endswith(".cu"))
STEMS = sorted(cuda.KERNELS)
COMMON = ["-std=c++17", "--Werror", "all-warnings"]
CUPY_OPTIONS = ["-ftz=true"]
"""The option CuPy adds to every NVRTC compile.  It changes the float code, and
so the registers ptxas allocates: gumbel_softmax_fwd<float> once spilled 4
bytes on sm_80 with it and none without (nvcc 13.0)."""
TIMEOUT = 600


def _instantiation_unit(stem: str) -> str:
    names = ",\n    ".join(f"(void*)&{expr}" for expr in cuda.NAME_EXPRESSIONS[stem])
    return f'#include "loader_{stem}.cu"\nvoid* gumbel_np_{stem}_kernels[] = {{\n    {names}\n}};\n'


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """``{(kind, name, arch): CompletedProcess}`` of every compilation."""
    src = tmp_path_factory.mktemp("kernels")
    for entry in KERNELS.iterdir():
        if entry.name.endswith((".cu", ".cuh")):
            (src / entry.name).write_text(entry.read_text("utf-8"), "utf-8")
    jobs = {}
    for name in SOURCES:
        for arch in ARCHS:
            out = src / f"{name}.{arch}.ptx"
            jobs[("ptx", name, arch)] = [
                NVCC,
                *COMMON,
                f"-arch={arch}",
                f"-I{src}",
                "--ptx",
                "-o",
                str(out),
                str(src / name),
            ]
    gencode = [f"-gencode=arch=compute_{a[3:]},code={a}" for a in ARCHS]
    for stem in STEMS:
        # A folder without the raw sources: the loader's text must be self-contained.
        unit = tmp_path_factory.mktemp(f"loader_{stem}")
        (unit / f"loader_{stem}.cu").write_text(cuda.source(stem), "utf-8")
        (unit / f"{stem}_kernels.cu").write_text(_instantiation_unit(stem), "utf-8")
        jobs[("object", stem, "+".join(ARCHS))] = [
            NVCC, *COMMON, *CUPY_OPTIONS, *gencode, "-Xptxas=-warn-spills,-warn-lmem-usage", "-c",
            "-o", str(unit / f"{stem}.o"), str(unit / f"{stem}_kernels.cu"),
        ]  # fmt: skip

    def run(cmd):
        return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=TIMEOUT)

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {key: pool.submit(run, cmd) for key, cmd in jobs.items()}
        return {key: fut.result() for key, fut in futures.items()}


def _check(res: subprocess.CompletedProcess) -> None:
    assert res.returncode == 0, f"{' '.join(res.args)}\n{res.stdout}\n{res.stderr}"


def test_every_source_is_loaded():
    # Each .cu file is one RawModule of the loader, and each module's file is shipped.
    assert SOURCES == sorted(f"{stem}.cu" for stem in STEMS)
    assert KERNELS.joinpath("philox.cuh").is_file()


def test_loader_inlines_headers():
    for stem in STEMS:
        text = cuda.source(stem)
        assert '#include "' not in text
        assert text.count("#define GUMBEL_NP_PHILOX_CUH") == 1
        # The one system header: __half and its conversions (the kernels of
        # float16 data load and store half and compute in float).
        assert "#include <cuda_fp16.h>" in text
        for op in cuda.KERNELS[stem]:
            assert f" {op}(" in text


def test_every_kernel_has_a_half_instantiation():
    # float16 arrays reach the backend unconverted, so every kernel is built
    # (and checked for spills below) for __half as well as float and double.
    assert cuda.HALF_STORAGE is True
    for stem in STEMS:
        ops = cuda.KERNELS[stem]
        expected = {f"{op}<{t}>" for op in ops for t in ("float", "double", "__half")}
        assert set(cuda.NAME_EXPRESSIONS[stem]) == expected
        assert len(cuda.NAME_EXPRESSIONS[stem]) == len(expected)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("name", SOURCES)
def test_ptx(builds, name, arch):
    _check(builds[("ptx", name, arch)])


@pytest.mark.parametrize("stem", STEMS)
def test_name_expressions_compile(builds, stem):
    _check(builds[("object", stem, "+".join(ARCHS))])


@pytest.mark.parametrize("stem", STEMS)
def test_no_local_memory(builds, stem):
    res = builds[("object", stem, "+".join(ARCHS))]
    _check(res)
    log = res.stdout + res.stderr
    assert "spill" not in log and "lmem" not in log.lower(), log

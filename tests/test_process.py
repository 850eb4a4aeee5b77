"""Process-level behaviour, each in a fresh Python process: the on-disk kernel
cache, concurrent calls under Numba's workqueue threading layer, fork after
the thread pool started, and Ctrl-C during a long call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

TIMEOUT = 600

# Every public function once, on inputs large enough for the parallel drivers
# (and once small, for the serial ones).
CALL_ALL = """
import json, sys
import numpy as np
import gumbel_np as gnp
from gumbel_np.kernels import gumbel as kg, softmax as ks

out = {}
for shape in [(4, 8), (512, 128)]:
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    g = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y = gnp.softmax(x)
    ls = gnp.log_softmax(x)
    ys = gnp.gumbel_softmax(x, rng=2)
    results = [
        gnp.logsumexp(x, axis=-1), y, ls, gnp.logsumexp_backward(g[:, 0], x),
        gnp.softmax_backward(g, y), gnp.log_softmax_backward(g, ls),
        gnp.gumbel(shape, rng=3), gnp.categorical(x, rng=4), ys,
        gnp.gumbel_softmax_backward(g, ys, tau=0.5),
    ]
    out[str(shape)] = [np.asarray(r).tobytes().hex() for r in results]
runs = [v for m in (kg, ks) for v in vars(m).values() if hasattr(v, "serial")]
hits = sum(sum(d.stats.cache_hits.values()) for r in runs for d in (r.serial, r.parallel))
misses = sum(sum(d.stats.cache_misses.values()) for r in runs for d in (r.serial, r.parallel))
print(json.dumps({"results": out, "hits": hits, "misses": misses}))
"""


def _python(code, env=None, timeout=TIMEOUT, **kw):
    full = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=timeout, env=full, **kw,
    )


def _checked(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache folder filled by one process that called every function, and
    what that process saw."""
    env = {"GUMBEL_NP_CACHE_DIR": str(tmp_path_factory.mktemp("cache"))}
    first = json.loads(_checked(_python(CALL_ALL, env)).stdout)
    return env, first


def test_second_process_loads_the_kernels_from_the_cache(cache):
    env, first = cache
    assert first["misses"] > 0 and first["hits"] == 0
    second = json.loads(_checked(_python(CALL_ALL, env)).stdout)
    assert second["misses"] == 0, "the second process compiled kernels again"
    assert second["hits"] == first["misses"]
    assert second["results"] == first["results"]


def test_the_cache_folder_is_named_by_every_kernel_source():
    """The folder is named by a hash of every kernel source file, the same in
    every process (so a changed source starts a fresh folder)."""
    code = """
    import gumbel_np.kernels._cache as c
    print(c.TAG)
    """
    tag = _checked(_python(code)).stdout.strip()
    from gumbel_np.kernels import _cache

    assert tag == _cache.TAG
    sources = sorted(p.name for p in _cache._SOURCES.glob("*.py"))
    assert {"softmax.py", "gumbel.py", "_vmath.py", "_jit.py", "philox.py"} <= set(sources)


SMALL_CALL = """
import numpy as np
import gumbel_np as gnp
from gumbel_np.kernels import softmax as ks
x = np.random.default_rng(0).standard_normal((512, 128)).astype(np.float32)
print(gnp.log_softmax(x).tobytes().hex(), sum(ks.log_softmax_fwd.parallel.stats.cache_hits.values()))
"""


def test_an_unusable_cache_folder_is_no_cache(tmp_path, cache):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    got, hits = _checked(_python(SMALL_CALL, {"GUMBEL_NP_CACHE_DIR": str(blocker / "cache")})).stdout.split()
    assert hits == "0"
    want, hits = _checked(_python(SMALL_CALL, cache[0])).stdout.split()
    assert hits == "1"
    assert got == want
    off, hits = _checked(_python(SMALL_CALL, {"GUMBEL_NP_CACHE": "0"})).stdout.split()
    assert hits == "0" and off == want


def test_a_failed_cache_write_is_ignored(tmp_path):
    code = """
    import numpy as np
    from numba.core import caching

    def refuse(self, key, data):
        raise PermissionError(13, "read-only cache")

    caching.IndexDataCacheFile.save = refuse
    import gumbel_np as gnp
    print(float(gnp.logsumexp(np.zeros(4, np.float32))))
    """
    proc = _checked(_python(code, {"GUMBEL_NP_CACHE_DIR": str(tmp_path / "cache")}))
    assert float(proc.stdout) == pytest.approx(np.log(4))


def test_concurrent_calls_under_the_workqueue_layer(cache):
    """Two threads in parallel kernels at once abort the process under Numba's
    workqueue layer ("Concurrent access has been detected"); here one of them
    runs serially instead."""
    code = """
    import threading
    import numpy as np
    import numba
    import gumbel_np as gnp

    x = np.random.default_rng(0).standard_normal((2000, 1024)).astype(np.float32)
    want = gnp.softmax(x)
    assert numba.threading_layer() == "workqueue", numba.threading_layer()
    bad = []

    def work():
        for _ in range(20):
            if not np.array_equal(gnp.softmax(x), want):
                bad.append(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("ok", len(bad))
    """
    env = {**cache[0], "NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2"}
    proc = _checked(_python(code, env))
    assert proc.stdout.split() == ["ok", "0"]


FORK_CODE = """
import multiprocessing as mp
import os
import numpy as np
import numba
import gumbel_np as gnp

x = np.random.default_rng(0).standard_normal((2000, 1024)).astype(np.float32)
want = gnp.softmax(x)  # starts the thread pool (parallel driver)

def child_sum(i):
    return float(gnp.softmax(x).sum(dtype=np.float64)), bool(np.array_equal(gnp.softmax(x), want))

if __name__ == "__main__":
    print("layer", numba.threading_layer())
    pid = os.fork()
    if pid == 0:
        ok = np.array_equal(gnp.softmax(x), want) and np.array_equal(gnp.categorical(x, rng=1), gnp.categorical(x, rng=1))
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    print("fork", os.waitstatus_to_exitcode(status))
    with mp.get_context("fork").Pool(2) as pool:
        sums = pool.map(child_sum, range(4))
    print("pool", all(same for _, same in sums), len(sums))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_fork_after_the_thread_pool_started(tmp_path, cache, layer):
    """A child forked after a parallel kernel ran runs its kernels serially:
    under GNU OpenMP it was killed ("fork() called from a process already
    using GNU OpenMP"), and a fork Pool over it never returned."""
    script = tmp_path / "fork_child.py"
    script.write_text(FORK_CODE)
    env = {**cache[0], "NUMBA_NUM_THREADS": "2"}
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=TIMEOUT,
        env={**os.environ, **env},
    )
    _checked(proc)
    lines = proc.stdout.split("\n")
    assert "fork 0" in lines, proc.stdout
    assert "pool True 4" in lines, proc.stdout


def test_ctrl_c_interrupts_a_long_call(cache):
    """SIGINT during a long call raises KeyboardInterrupt before the call has
    finished: the output is only partly written.  Before, the interrupt waited
    for the whole call (the output was complete)."""
    code = """
    import os, signal, threading, time
    import numpy as np
    import gumbel_np as gnp

    logits = np.zeros((2048, 1000), np.float32)  # 8e9 draws: seconds on 2 threads
    out = np.full((2048, 4000), -1, np.int64)
    gnp.categorical(logits[:64], rng=0, num_samples=4000, out=out[:64])  # compile first
    out[:64] = -1
    t0 = time.perf_counter()
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        gnp.categorical(logits, rng=0, num_samples=4000, out=out)
    except KeyboardInterrupt:
        done = int((out[:, -1] >= 0).sum())
        print("interrupted", done, round(time.perf_counter() - t0, 2))
    else:
        print("finished", round(time.perf_counter() - t0, 2))
    """
    proc = _checked(_python(code, {**cache[0], "NUMBA_NUM_THREADS": "2"}))
    words = proc.stdout.split()
    assert words[0] == "interrupted", proc.stdout
    assert int(words[1]) < 2048, proc.stdout

"""The command line: python -m gumbel_np {bench,info}."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from gumbel_np import _bench, _cli
from helpers import oracle


def test_info_json(capsys):
    assert _cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["STREAM_VERSION"] == 1 and "cpu" in info["backends"]
    assert info["numba_threads"] >= 1


def test_bench_small_run_writes_json_and_plot(tmp_path, capsys):
    pytest.importorskip("tqdm", reason="the bench extra is not installed")
    pytest.importorskip("matplotlib", reason="the bench extra is not installed")
    out, png = tmp_path / "b.json", tmp_path / "b.png"
    code = _cli.main(["bench", "--size", "64x16", "--family", "softmax", "--threads", "1",
                      "--json", str(out), "--plot", str(png), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "| softmax | 64x16 | cpu | gumbel_np |" in text
    rows = json.loads(out.read_text())["rows"]
    ops = {r["op"] for r in rows}
    assert {"softmax", "logsumexp_backward", "gumbel noise"} <= ops
    assert all(r["ms"] > 0 for r in rows)
    assert any(r["impl"] == "memory copy" for r in rows)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_registry_covers_every_public_function():
    names = set()
    for fam in _bench.FAMILIES.values():
        names |= {c.op.split()[0] for c in fam((8, 4))}
    assert {"softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
            "logsumexp_backward", "gumbel", "gumbel_softmax", "gumbel_softmax_backward", "categorical"} <= names
    assert {"logistic", "bernoulli", "gumbel_sigmoid", "gumbel_sigmoid_backward", "hard_concrete",
            "hard_concrete_backward", "hard_concrete_l0", "hard_concrete_l0_backward"} <= names
    assert {"plackett_luce_log_prob", "plackett_luce_log_prob_backward"} <= names


def test_bad_option_is_a_clear_error():
    run = subprocess.run([sys.executable, "-m", "gumbel_np", "bench", "--size", "12"], capture_output=True, text=True)
    assert run.returncode == 2
    assert "expected ROWSxK" in run.stderr
    run = subprocess.run([sys.executable, "-m", "gumbel_np", "bench", "--threads", "0"], capture_output=True, text=True)
    assert run.returncode == 2 and "--threads must be >= 1" in run.stderr


def test_missing_optional_dependency_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert _cli.main(["bench", "--size", "8x4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "tqdm" in err and "gumbel-np[bench]" in err


def test_main_job_runs_from_the_checkout():
    # The README's main job is run in the checkout, where the source tree
    # shadows the installed package: it must still find its kernels.
    import pathlib

    checkout = pathlib.Path(__file__).resolve().parents[1]
    if not (checkout / "setup.cfg").is_file():
        pytest.skip("the source checkout is not beside the tests")
    run = subprocess.run(
        [sys.executable, "-m", "gumbel_np", "bench", "--size", "16x8", "--family", "gumbel", "--no-progress"],
        capture_output=True, text=True, cwd=checkout,
    )
    assert run.returncode == 0, run.stderr
    assert "| categorical | 16x8 | cpu | gumbel_np |" in run.stdout


def test_cache_command_shows_and_clears_the_cache(tmp_path, monkeypatch, capsys):
    from gumbel_np.kernels import _cache

    monkeypatch.setenv("GUMBEL_NP_CACHE_DIR", str(tmp_path))
    (tmp_path / _cache.TAG).mkdir()
    (tmp_path / _cache.TAG / "softmax.x.nbi").write_bytes(b"0" * 1024)
    (tmp_path / "numba-old-build").mkdir()
    assert _cli.main(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and "folders, size   2" in out
    assert _cli.main(["cache", "--clear"]) == 0
    assert "removed 2 cache folder(s)" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("GUMBEL_NP_CACHE", "0")
    assert _cli.main(["cache"]) == 0
    assert "off" in capsys.readouterr().out


def test_latency_family_times_single_calls(monkeypatch):
    assert _bench.plan(["softmax", "latency"], [(64, 16)]) == [("softmax", (64, 16))] + [
        ("latency", s) for s in _bench.LATENCY_SIZES
    ]
    assert {c.op for c in _bench.latency_cases((1, 10))} == {
        f"{op} (latency)" for op in ("softmax", "logsumexp", "gumbel_softmax", "gumbel_softmax_backward", "categorical")
    }
    # Each sample is a loop of LATENCY_CALLS calls, and the time is per call.
    calls = []
    monkeypatch.setattr(_bench, "LATENCY_CALLS", 3)
    monkeypatch.setattr(_bench, "gumbel_cases", lambda *a: [])
    monkeypatch.setattr(
        _bench, "softmax_cases", lambda shape, xp, found: [_bench.Case("softmax", "softmax", shape, 8, {"gumbel_np": lambda: calls.append(1)})]
    )
    (case,) = _bench.latency_cases((1, 10))
    assert case.calls == 3
    rows = _bench.measure(case)
    assert calls and len(calls) % 3 == 0
    assert all(r.ms > 0 for r in rows)


BINARY_OPS = {
    "gumbel noise", "logistic", "bernoulli", "gumbel_sigmoid", "gumbel_sigmoid hard", "hard_concrete",
    "hard_concrete_l0", "gumbel_sigmoid_backward", "hard_concrete_backward", "hard_concrete_l0_backward",
}


def _host(a):
    a = a[0] if isinstance(a, tuple) else a
    return np.asarray(a.detach() if hasattr(a, "detach") else a, dtype=np.float64)


def _check_binary_cases(found):
    """Every implementation of every binary case runs on the case's inputs
    and returns the result's shape; those without noise of their own (the
    L0 norm and its backward, NumPy's backward passes from the same soft
    sample) agree with gumbel_np, and the samplers' values lie in their
    range.  Returns the libraries seen."""
    cases = {c.op: c for c in _bench.binary_cases((64, 16), np, found)}
    assert set(cases) == BINARY_OPS
    peers = set()
    for op, case in cases.items():
        ours = _host(case.impls["gumbel_np"]())
        assert case.family == "binary" and case.nbytes >= ours.size
        for name, fn in case.impls.items():
            got = _host(fn())
            assert got.shape == ours.shape == (64, 16), (op, name)
            peers.add(name.split()[0])
            if name == "torch (autograd)" and not op.startswith("hard_concrete_l0"):
                assert np.isfinite(got).all(), (op, name)  # through a sample of its own noise
            elif op.startswith("hard_concrete_l0") or op.endswith("_backward"):
                # atol: the peers' 1 - y or 1 - p rounds to float32 (gradients of about 1)
                np.testing.assert_allclose(got, ours, rtol=2e-5, atol=1e-6, err_msg=f"{op}: {name}")
            elif op in ("bernoulli", "gumbel_sigmoid hard"):
                assert set(np.unique(got)) == {0.0, 1.0}, (op, name)
            elif op in ("gumbel_sigmoid", "hard_concrete"):
                assert ((got >= 0) & (got <= 1)).all() and got.std() > 0.1, (op, name)
            else:  # the noise
                assert np.isfinite(got).all() and got.std() > 0.5, (op, name)
    return peers


def test_binary_family_cases_run_and_agree():
    import scipy.special

    assert _check_binary_cases({"numpy": np, "scipy": scipy.special}) == {"gumbel_np", "numpy"}


@pytest.mark.oracle
def test_binary_family_torch_peers_run_and_agree():
    torch = oracle("torch", "pip install torch==2.13.0")
    assert "torch" in _check_binary_cases({"numpy": np, "torch": torch})


def test_binary_family_runs_at_its_own_sizes():
    assert _bench.plan(["binary", "softmax"], _bench.FULL_SIZES)[-2:] == [("binary", s) for s in _bench.BINARY_SIZES]
    assert [s for f, s in _bench.plan(["binary"], _bench.QUICK_SIZES)] == _bench.BINARY_QUICK_SIZES
    assert [s for f, s in _bench.plan(["binary"], _bench.GPU_SIZES)] == _bench.BINARY_GPU_SIZES
    assert _bench.plan(["binary"], [(64, 16)]) == [("binary", (64, 16))]  # sizes given by hand
    assert all(r * k == 1 << 24 for r, k in _bench.BINARY_SIZES)
    assert all(r * k == 1 << 20 for r, k in _bench.BINARY_QUICK_SIZES)


def _check_ranking_cases(found, shape=(64, 16)):
    """Every implementation of every ranking case runs on the case's inputs:
    the samplers give ``k`` distinct categories per row (the row loop on the
    rows it times, its time scaled to the batch), the Plackett-Luce peers
    agree with gumbel_np.  Returns the libraries seen."""
    rows, k = shape
    cases = {c.op: c for c in _bench.ranking_cases(shape, np, found)}
    tops = [f"categorical replace=False k={s}" for s in (1, 8, 16)]
    pls = [f"plackett_luce_log_prob{b} k={s}" for s in (1, 8) for b in ("", "_backward")]
    assert set(cases) == {"categorical", "logsumexp", "logsumexp_backward", *tops, *pls}
    peers = set()
    for op, case in cases.items():
        assert case.family == "ranking"
        ours = _host(case.impls["gumbel_np"]())
        for name, fn in case.impls.items():
            peers.add(name.split()[0].split(".")[0])
            got = _host(fn())
            if op in tops:
                s = int(op.rsplit("=", 1)[1])
                sub = round(rows / case.scale.get(name, 1.0))
                assert got.shape == (sub, s), (op, name)
                assert ((got >= 0) & (got < k)).all(), (op, name)
                assert all(len(set(r)) == s for r in got.tolist()), (op, name)
            elif op != "categorical":
                # The peers' textbook normaliser (the total less the mass
                # chosen so far) cancels digits in float32.
                np.testing.assert_allclose(got, ours, rtol=2e-3, atol=1e-3, err_msg=f"{op}: {name}")
    choice = cases["categorical replace=False k=8"]
    assert choice.scale == {"numpy (Generator.choice row loop, scaled)": 1.0}
    return peers


def test_ranking_family_cases_run_and_agree():
    assert _check_ranking_cases({"numpy": np}) == {"gumbel_np", "numpy"}


def test_ranking_family_row_loop_is_scaled():
    # Generator.choice runs on CHOICE_ELEMENTS // K rows at most, and
    # measure() scales its time to the whole batch.
    (case,) = [c for c in _bench.ranking_cases((40, 4096), np, {"numpy": np})
               if c.op == "categorical replace=False k=8"]
    name = "numpy (Generator.choice row loop, scaled)"
    assert case.scale == {name: 40 / (_bench.CHOICE_ELEMENTS // 4096)}
    assert len(case.impls[name]()) == _bench.CHOICE_ELEMENTS // 4096
    import time

    nap = _bench.Case("ranking", "nap", (8, 4), 8, {"gumbel_np": lambda: time.sleep(0.002),
                                                     "peer": lambda: time.sleep(0.002)}, scale={"peer": 10.0})
    rows = {r.impl: r for r in _bench.measure(nap)}
    assert 5 < rows["peer"].ms / rows["gumbel_np"].ms < 20


def test_ranking_family_runs_at_its_own_sizes():
    assert [s for f, s in _bench.plan(["ranking"], _bench.FULL_SIZES)] == _bench.RANKING_SIZES
    assert [s for f, s in _bench.plan(["ranking"], _bench.QUICK_SIZES)] == _bench.RANKING_QUICK_SIZES
    assert [s for f, s in _bench.plan(["ranking"], _bench.GPU_SIZES)] == _bench.GPU_SIZES
    assert _bench.plan(["ranking"], [(64, 16)]) == [("ranking", (64, 16))]  # sizes given by hand
    # After the families that share the standard sizes, before latency and binary.
    fams = [f for f, s in _bench.plan(list(_bench.FAMILIES), _bench.QUICK_SIZES)]
    assert fams.index("ranking") > max(i for i, f in enumerate(fams) if f in ("softmax", "estimators"))
    assert fams[-1] == "binary"
    assert set(_bench.RANKING_SIZES) <= set(_bench.FULL_SIZES)
    assert set(_bench.RANKING_QUICK_SIZES) <= set(_bench.QUICK_SIZES)


@pytest.mark.oracle
def test_ranking_family_torch_peers_run_and_agree():
    torch = oracle("torch", "pip install torch==2.13.0")
    assert "torch" in _check_ranking_cases({"numpy": np, "torch": torch})

"""The command line: python -m gumbel_np {bench,info}."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gumbel_np import _bench, _cli


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

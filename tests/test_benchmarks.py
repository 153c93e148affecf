"""Smoke test of the user-facing encoding benchmark (benchmarks/encode.py) on the real potion-base-8M and the
sentence-transformers layout potion-base-2M-sentence-transformers.

Runs ``--quick`` in a subprocess and checks the structure and sanity of encode.json, the table and the PNG:
the staticst backends (native on all threads, native on one, numpy), laghu, the references and parity.
No timing assertions: machines are noisy; only that the numbers exist, are positive and the parity holds.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # integration job: benchmark scripts run end to end; `-m "not slow"` leaves it out

SCRIPT = REPO / "benchmarks" / "encode.py"
STATICST = ("staticst", "staticst-1-thread", "staticst-numpy")
LIBRARIES = (*STATICST, "model2vec", "laghu", "sentence-transformers")
METRICS = {
    "max_abs_diff", "throughput_default", "throughput_1024", "throughput_pool", "latency_p50_us", "cold_wall_ms", "cold_inproc_ms",
    "torch_imported", "peak_rss_mb", "footprint_mb",
}  # fmt: skip
POTION, ST_LAYOUT = "potion-base-8M", "potion-base-2M-sentence-transformers"


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _check_measured(res: dict[str, Any], settings: dict[str, Any], baseline_mb: float, lib: str) -> None:
    assert _positive(res["throughput_default"]["sentences_per_s"]), lib
    assert _positive(res["throughput_1024"]["sentences_per_s"]), lib
    assert len(res["throughput_default"]["runs_s"]) == settings["repeats"], lib
    assert _positive(res["latency"]["p50_us"]) and res["latency"]["p90_us"] >= res["latency"]["p50_us"], lib
    assert res["latency"]["calls"] > 0
    cold = res["cold_start"]
    assert _positive(cold["wall_ms"]) and _positive(cold["total_ms"]) and cold["runs"] == 1, lib
    assert cold["wall_ms"] >= cold["total_ms"]  # the child's own clock starts after interpreter start-up
    rss = res["rss"]
    assert rss["peak_mb"] >= rss["loaded_mb"] > baseline_mb * 0.5, lib
    assert _positive(rss["output_mb"]) and _positive(rss["footprint_mb"]), lib


def test_encode_benchmark_quick(tmp_path: Path, shared_dir: Path, shared_model: Callable[[str], Path]) -> None:
    shared_model(POTION)  # a missing model is an error, never a skip
    shared_model(ST_LAYOUT)
    text_file = tmp_path / "extra.txt"
    # the second line has a character outside potion-base-8M's vocabulary ([UNK]: model2vec drops it, ST keeps it)
    extra = ["A sentence from a user's own file.", "", "Recruitment of Nck by CD3\u03f5 reveals a change"]
    text_file.write_text("\n".join(extra) + "\n", encoding="utf-8")
    out = tmp_path / "results"
    env = {**os.environ, "STATICST_SHARED_DIR": str(shared_dir)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(out), "--models", POTION, ST_LAYOUT,
         "--text-file", str(text_file), "--max-sentences", "4500"],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads((out / "encode.json").read_text(encoding="utf-8"))
    png = out / "encode.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    assert report["benchmark"] == "encode"
    machine = report["machine"]
    assert machine["cpus"] >= 1 and machine["cpu"] and machine["python"]
    assert machine["versions"]["staticst"] and machine["versions"]["numpy"]
    assert machine["staticst_kernel"]["sanitized"] is False
    assert len(machine["loadavg_before"]) == 3 and len(machine["loadavg_after"]) == 3
    settings = report["settings"]
    assert settings["quick"] is True and settings["repeats"] >= 1 and settings["cold_starts"] == 1
    assert settings["callgrind"] is False and set(settings["libraries"]) <= set(LIBRARIES)
    corpus = report["corpus"]
    assert 4096 < corpus["sentences"] <= 4502  # the cap applies to the MTEB sentences, never to the user's file
    assert corpus["sources"][str(text_file)] == 2  # blank lines dropped
    assert any(key.startswith("mteb/") and n > 0 for key, n in corpus["sources"].items())
    assert _positive(report["baseline_numpy_rss_mb"])

    model = report["models"][POTION]
    assert abs(model["table_mb"] - 29528 * 256 * 4 / 2**20) < 1e-6
    assert model["baseline_numpy_rss_mb"] == report["baseline_numpy_rss_mb"] and _positive(model["tokenizer_rss_mb"])
    assert model["tensors"]["embeddings"] == {"dtype": "F32", "shape": [29528, 256]}
    assert model["callgrind"] is None
    # the headline: first sight and warm per script group, staticst against model2vec (and laghu) in the same run
    headline = model["first_sight"]
    assert set(headline["groups"]) == {"english", "latin", "cyrillic-greek", "cjk", "arabic-hebrew-indic-thai"}
    assert headline["sources"]["catalogues"]["package"] == "Django"  # the [bench] extra is installed in CI
    for group, res in headline["groups"].items():
        assert "error" not in res, (group, res)
        assert res["slice_size"] == settings["slice_size"] == 200 and res["rounds"] == settings["first_sight_rounds"]
        for lib in ("staticst", "staticst-1-thread", "model2vec"):
            runs = res["libraries"][lib]
            assert _positive(runs["first_sight_per_s"]) and _positive(runs["warm_per_s"]), (group, lib)
            assert len(runs["first_sight_runs_s"]) == len(runs["warm_runs_s"]) == res["rounds"]
        ratio = res["ratios"]["model2vec"]["first_sight"]
        assert ratio == pytest.approx(
            res["libraries"]["staticst"]["first_sight_per_s"] / res["libraries"]["model2vec"]["first_sight_per_s"]
        )
    states = model["libraries"]
    for lib in (*STATICST, "model2vec"):
        assert states[lib]["status"] == "ok", (lib, states[lib])
    # the backends run as named: native on all usable CPUs, native on one thread, numpy
    assert states["staticst"]["backend"] == "native" and states["staticst"]["threads"] == machine["cpus_usable"]
    assert states["staticst-1-thread"]["backend"] == "native" and states["staticst-1-thread"]["threads"] == 1
    assert states["staticst-numpy"]["backend"] == "numpy"
    laghu_installed = importlib.util.find_spec("laghu") is not None
    assert states["laghu"]["status"] == ("ok" if laghu_installed else "not installed")
    if laghu_installed:
        laghu = states["laghu"]  # on its fastest path (Rust tokenizer and pooling) exactly when laghu-rs is there
        assert laghu["rust_tokenizer"] is laghu["rust_pooling"] is laghu["laghu_rs_installed"]
    assert states["sentence-transformers"]["status"] in ("ok", "n/a", "not installed")
    if states["sentence-transformers"]["status"] != "ok":
        assert states["sentence-transformers"]["reason"]

    # correctness before timing: every staticst backend is bit-identical to model2vec on this model
    parity = model["parity"]
    assert parity["reference"] == "model2vec" and parity["staticst_ok"] is True
    assert parity["backends_identical"] == {"staticst-1-thread": True, "staticst-numpy": True}
    for lib in STATICST:
        assert parity["max_abs_diff"][lib] == 0.0 and parity["differing_sentences"][lib] == 0
    if laghu_installed:  # laghu matches model2vec on potion-base-8M
        assert parity["max_abs_diff"]["laghu"] <= 1e-6
    if states["sentence-transformers"]["status"] == "ok":  # ST differs on at most 1% of the corpus, with a note
        n_differing = parity["differing_sentences"]["sentence-transformers"]
        assert n_differing <= 0.01 * corpus["sentences"]
        assert bool(n_differing) == bool(states["sentence-transformers"].get("note"))

    for lib in (lib for lib in LIBRARIES if states[lib]["status"] == "ok"):
        _check_measured(model["results"][lib], settings, report["baseline_numpy_rss_mb"], lib)
    for lib in STATICST:
        assert model["results"][lib]["cold_start"]["torch_imported"] is False
    # the process pool was used (corpus above POOL_MIN_TEXTS) and checked against in-process staticst
    assert model["pool"]["status"] == "ok" and model["pool"]["identical_to_in_process"] is True
    pooled = model["results"]["staticst"]["throughput_pool"]
    assert _positive(pooled["sentences_per_s"]) and pooled["workers"] == machine["cpus_usable"]

    # the sentence-transformers layout: ST is the reference; model2vec and laghu skip its Normalize module
    st_model = report["models"][ST_LAYOUT]
    st_states, st_parity = st_model["libraries"], st_model["parity"]
    if st_states["sentence-transformers"]["status"] == "ok":
        assert st_parity["reference"] == "sentence-transformers" and st_parity["staticst_ok"] is True
        for lib in STATICST:
            assert st_parity["max_abs_diff"][lib] <= 1e-6
        for lib in ("model2vec", "laghu"):
            if st_states[lib]["status"] != "not installed":
                assert st_states[lib]["status"] == "n/a" and "Normalize" in st_states[lib]["reason"], lib
        _check_measured(st_model["results"]["sentence-transformers"], settings, report["baseline_numpy_rss_mb"], "ST")
    for lib in STATICST:
        assert st_states[lib]["status"] == "ok"
        _check_measured(st_model["results"][lib], settings, report["baseline_numpy_rss_mb"], lib)

    rows = [row for row in report["table"] if row["model"] == POTION]
    assert {row["metric"] for row in rows} == METRICS
    for row in rows:
        assert set(row["values"]) == set(LIBRARIES) and set(row["ratios"]) == set(STATICST)
    throughput = next(row for row in rows if row["metric"] == "throughput_default")
    assert _positive(throughput["ratio_vs_model2vec"])
    assert throughput["ratios"]["staticst-1-thread"]["model2vec"] == (
        throughput["values"]["staticst-1-thread"] / throughput["values"]["model2vec"]
    )
    if laghu_installed:
        assert _positive(throughput["ratio_vs_laghu"])
    pool_row = next(row for row in rows if row["metric"] == "throughput_pool")
    assert pool_row["values"]["model2vec"] == pool_row["values"]["staticst-numpy"] == "not measured"
    assert pool_row["ratio_vs_model2vec"] == pool_row["values"]["staticst"] / throughput["values"]["model2vec"]

    targets = report["targets"]
    assert targets and all(t["met"] in (True, False, None) and t["detail"] for t in targets)
    potion = {t["target"]: t for t in targets if t["model"] == POTION}
    for name in (
        "batch throughput >= 15x model2vec, all threads", "batch throughput >= 6x model2vec on one thread",
        "one sentence <= 4 µs p50", "one sentence >= 10x faster than model2vec",
        "cold start no worse than the numpy backend", "peak RSS no worse than the numpy backend",
        "staticst must not import torch",
    ):  # fmt: skip
        assert potion[name]["met"] in (True, False), potion[name]
    assert potion["batch throughput >= 3x laghu, all threads"]["met"] in ((True, False) if laghu_installed else (None,))
    assert potion["instructions per sentence <= 15K (callgrind, native)"]["met"] is None  # --callgrind not given
    st_target = next(t for t in targets if t["model"] == ST_LAYOUT and "100x" in t["target"])
    assert st_target["met"] in ((True, False) if st_states["sentence-transformers"]["status"] == "ok" else (None,))
    assert all(t["met"] is None for t in targets if t["model"] == "wordllama-l2-supercat-256")  # not benchmarked

    header = next(line for line in proc.stdout.splitlines() if line.startswith("| model | metric |"))
    assert "| staticst | staticst 1 thread | staticst numpy | model2vec | laghu | ST |" in header
    assert "| potion-base-8M | throughput, default batch_size" in proc.stdout
    assert f"| {ST_LAYOUT} | max abs diff vs the reference" in proc.stdout
    assert "target [potion-base-8M] one sentence <= 4 µs p50:" in proc.stdout


def test_memory_shared_benchmark_smoke(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    """benchmarks/memory_shared.py --smoke: two processes with the same model map one table (PSS), not two."""
    shared_model("potion-base-8M")
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "memory_shared.py"), "--smoke", "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {(r["share"], r["workers"]): r for r in json.loads((tmp_path / "memory_shared.json").read_text())["rows"]}
    table_mb = rows[(True, 1)]["table_pss_mb"]
    assert table_mb > 16  # potion-base-8M's 30 MB table is served from the shared copy
    assert rows[(True, 2)]["table_pss_mb"] <= 1.05 * table_mb  # two processes: one table's worth of PSS
    assert rows[(False, 2)]["table_pss_mb"] == 0  # sharing off: private copies
    assert rows[(False, 2)]["model_pss_mb"] - rows[(True, 2)]["model_pss_mb"] > 0.5 * table_mb
    assert "model PSS" in done.stdout


def test_corpus_benchmark_shards_smoke(tmp_path: Path, shared_dir: Path) -> None:
    """benchmarks/corpus.py --shards 2: two concurrent shard runs concatenate to the one-machine output (ids, bits)."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "corpus.py"), "--shards", "2", "--lines", "6000",
         "--shared-dir", str(shared_dir), "--work-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "verdict: the 2 shards concatenate to the one-machine output" in done.stdout
    assert done.stdout.count("  ok  ") == 4 and "FAIL" not in done.stdout
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    shard_rows = [int(rows[f"shard {i}/2 (concurrent)"].split("|")[3].replace(",", "")) for i in range(2)]
    assert sum(shard_rows) == 6000 and min(shard_rows) > 0


@pytest.mark.cluster
@pytest.mark.parametrize("deployment", ["real", "local"])
def test_engines_benchmark_quick(tmp_path: Path, shared_dir: Path, deployment: str) -> None:
    """benchmarks/engines.py --quick: plain encode, the CLI, Ray and Spark each embed the corpus (in the cluster step).

    ``real``: on a Ray head + worker node and a Spark master + 2 workers (tests/_clusters.py), 2 CPUs each.
    """
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "engines.py"), "--quick", "--deployment", deployment,
         "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=REPO,
        env={**os.environ, "STATICST_SHARED_DIR": str(shared_dir)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "engines.json").read_text())
    assert report["deployment"] == deployment
    by = {r["label"]: r for r in report["results"]}
    assert {"encode 1x2", "cli 1x2", "ray 2x1", "spark-arrow 2x1"} <= set(by), sorted(by)
    for label in ("encode 1x2", "cli 1x2", "ray 2x1", "spark-arrow 2x1"):
        assert by[label]["rows"] == report["rows"] == 5000 and _positive(by[label]["rows_per_s"]), label
        assert _positive(by[label]["rows_per_s_per_cpu"]), label
    assert by["encode 1x2"]["cpus"] == 2 and by["encode 1x2"]["per_cpu_vs_encode"] == 1.0
    if deployment == "real":
        assert set(report["topology"]) == {"ray", "spark"}
        assert by["ray 2x1"]["cpus"] == by["spark-arrow 2x1"]["cpus"] == 2
        # Spark's two executors: one per worker, the second on the second host where namespaces are available
        netns = report["topology"]["spark"].startswith("netns")
        assert by["spark-arrow 2x1"]["hosts"] == (2 if netns else 1), report["topology"]
        assert any(k.startswith("Ray cluster") for k in report["startup_s"]), report["startup_s"]
    assert "target >= 0.70" in done.stdout
    assert (tmp_path / "engines.png").is_file()


@pytest.mark.slow
def test_spark_floor_benchmark_smoke(shared_model: Callable[[str], Path]) -> None:
    """benchmarks/spark_floor.py: every job (the no-work UDFs, embed_column, plain encode) runs and is reported."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "spark_floor.py"), "--rows", "3000", "--repeats", "1",
         "--model", str(shared_model("potion-base-2M"))],
        capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line[:36].strip(): line.split() for line in done.stdout.splitlines()[2:]}
    expected = {
        "input only (an int per row out)", "input as Python strings", "constant list<float>[64] out",
        "constant binary (256 B) out", "embed_column (1 thread per task)", "plain encode, 2 threads",
        "plain encode, 1 thread",
    }  # fmt: skip
    assert set(rows) == expected, done.stdout
    assert rows["plain encode, 2 threads"][-1] == "1.00x"
    assert all(float(r[-3].replace(",", "")) > 0 for r in rows.values()), done.stdout  # rows/s

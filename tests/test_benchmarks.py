"""Smoke test of the user-facing encoding benchmark (benchmarks/encode.py) on the real potion-base-8M.

Runs ``--quick`` in a subprocess and checks the structure and sanity of encode.json, the table and the PNG.
No timing assertions: machines are noisy; only that the numbers exist, are positive and the parity holds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import REPO

SCRIPT = REPO / "benchmarks" / "encode.py"
LIBRARIES = ("staticst", "model2vec", "sentence-transformers")
METRICS = {
    "max_abs_diff", "throughput_default", "throughput_1024", "throughput_pool", "latency_p50_us", "cold_wall_ms", "cold_inproc_ms",
    "torch_imported", "peak_rss_mb", "footprint_mb",
}  # fmt: skip


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def test_encode_benchmark_quick(tmp_path: Path, shared_dir: Path, shared_model: Callable[[str], Path]) -> None:
    shared_model("potion-base-8M")  # a missing model is an error, never a skip
    text_file = tmp_path / "extra.txt"
    # the second line has a character outside potion-base-8M's vocabulary ([UNK]: model2vec drops it, ST keeps it)
    extra = ["A sentence from a user's own file.", "", "Recruitment of Nck by CD3\u03f5 reveals a change"]
    text_file.write_text("\n".join(extra) + "\n", encoding="utf-8")
    out = tmp_path / "results"
    env = {**os.environ, "STATICST_SHARED_DIR": str(shared_dir)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(out), "--models", "potion-base-8M",
         "--text-file", str(text_file), "--max-sentences", "4500"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads((out / "encode.json").read_text(encoding="utf-8"))
    png = out / "encode.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    assert report["benchmark"] == "encode"
    machine = report["machine"]
    assert machine["cpus"] >= 1 and machine["cpu"] and machine["python"]
    assert machine["versions"]["staticst"] and machine["versions"]["numpy"]
    assert len(machine["loadavg_before"]) == 3 and len(machine["loadavg_after"]) == 3
    settings = report["settings"]
    assert settings["quick"] is True and settings["repeats"] >= 1 and settings["cold_starts"] == 1
    corpus = report["corpus"]
    assert 4096 < corpus["sentences"] <= 4502  # the cap applies to the MTEB sentences, never to the user's file
    assert corpus["sources"][str(text_file)] == 2  # blank lines dropped
    assert any(key.startswith("mteb/") and n > 0 for key, n in corpus["sources"].items())
    assert _positive(report["baseline_numpy_rss_mb"])

    model = report["models"]["potion-base-8M"]
    assert abs(model["table_mb"] - 29528 * 256 * 4 / 2**20) < 1e-6
    assert model["baseline_numpy_rss_mb"] == report["baseline_numpy_rss_mb"] and _positive(model["tokenizer_rss_mb"])
    assert model["tensors"]["embeddings"] == {"dtype": "F32", "shape": [29528, 256]}
    states = model["libraries"]
    assert states["staticst"]["status"] == "ok" and states["model2vec"]["status"] == "ok"
    assert states["sentence-transformers"]["status"] in ("ok", "n/a", "not installed")
    if states["sentence-transformers"]["status"] != "ok":
        assert states["sentence-transformers"]["reason"]

    # correctness before timing: staticst is bit-identical to model2vec on this model
    assert model["parity"]["reference"] == "model2vec"
    assert model["parity"]["max_abs_diff"]["staticst"] == 0.0
    assert model["parity"]["staticst_ok"] is True
    assert model["parity"]["differing_sentences"]["staticst"] == 0
    if states["sentence-transformers"]["status"] == "ok":  # ST differs on at most 1% of the corpus, with a note
        n_differing = model["parity"]["differing_sentences"]["sentence-transformers"]
        assert n_differing <= 0.01 * corpus["sentences"]
        assert bool(n_differing) == bool(states["sentence-transformers"].get("note"))

    for lib in (lib for lib in LIBRARIES if states[lib]["status"] == "ok"):
        res = model["results"][lib]
        assert _positive(res["throughput_default"]["sentences_per_s"]), lib
        assert _positive(res["throughput_1024"]["sentences_per_s"]), lib
        assert len(res["throughput_default"]["runs_s"]) == settings["repeats"]
        assert _positive(res["latency"]["p50_us"]) and res["latency"]["p90_us"] >= res["latency"]["p50_us"]
        assert res["latency"]["calls"] > 0
        cold = res["cold_start"]
        assert _positive(cold["wall_ms"]) and _positive(cold["total_ms"]) and cold["runs"] == 1
        assert cold["wall_ms"] >= cold["total_ms"]  # the child's own clock starts after interpreter start-up
        rss = res["rss"]
        assert rss["peak_mb"] >= rss["loaded_mb"] > report["baseline_numpy_rss_mb"] * 0.5
        assert _positive(rss["output_mb"]) and _positive(rss["footprint_mb"])
    assert model["results"]["staticst"]["cold_start"]["torch_imported"] is False
    # the process pool was used (corpus above POOL_MIN_TEXTS) and checked against in-process staticst
    assert model["pool"]["status"] == "ok" and model["pool"]["identical_to_in_process"] is True
    pooled = model["results"]["staticst"]["throughput_pool"]
    assert _positive(pooled["sentences_per_s"]) and pooled["workers"] == machine["cpus_usable"]

    rows = [row for row in report["table"] if row["model"] == "potion-base-8M"]
    assert {row["metric"] for row in rows} == METRICS
    for row in rows:
        assert set(row["values"]) == set(LIBRARIES)
    throughput = next(row for row in rows if row["metric"] == "throughput_default")
    assert _positive(throughput["ratio_vs_model2vec"])
    pool_row = next(row for row in rows if row["metric"] == "throughput_pool")
    assert pool_row["values"]["model2vec"] == "not measured"
    assert pool_row["ratio_vs_model2vec"] == pool_row["values"]["staticst"] / throughput["values"]["model2vec"]

    targets = report["targets"]
    assert targets and all(t["met"] in (True, False, None) and t["detail"] for t in targets)
    potion = {t["target"]: t for t in targets if t["model"] == "potion-base-8M"}
    for name in (
        "batch throughput >= 5x model2vec", "batch throughput >= 5x model2vec, staticst with its process pool",
        "one sentence <= 15 µs", "peak RSS <= table size + 40 MB",
    ):  # fmt: skip
        assert potion[name]["met"] in (True, False), potion[name]
    assert all(t["met"] is None for t in targets if t["model"] == "wordllama-l2-supercat-256")  # not benchmarked

    assert "| potion-base-8M | throughput, default batch_size" in proc.stdout
    assert "target [potion-base-8M] one sentence <= 15 µs:" in proc.stdout

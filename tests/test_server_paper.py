"""``benchmarks/serve_paper.py``: the SwiftEmbed paper's serving setup (wrk, 400 connections, 30 s).

The figures are read from the paper's tables in ``shared/paper``; a brief end-to-end run (1 s, 16
connections) checks that the script drives a real ``staticst serve`` and writes its report, each measure of
the run beside the paper's figure. Nothing here asserts a timing.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.slow  # integration job: wrk against a real staticst serve; `-m "not slow"` leaves it out

pytest.importorskip("starlette", reason="the server extra is not installed: pip install 'staticst[server]'")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "serve_paper.py"


@pytest.fixture(scope="module")
def serve_paper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("serve_paper", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["serve_paper"] = module
    spec.loader.exec_module(module)
    return module


def test_the_paper_figures_come_from_tables_2_and_5(serve_paper: ModuleType, shared_dir: Path) -> None:
    paper = serve_paper.paper_figures(shared_dir / "paper" / "swiftembed-tables.json")
    assert (paper["p50_ms"], paper["p99_ms"], paper["rps_table2"]) == (1.12, 5.04, 50000)
    assert paper["rps"] == {1: 50000, 10: 10000, 100: 2000}
    assert "400 connections" in paper["load_generator"] and serve_paper.PAPER_LOAD["connections"] == 400


def test_a_brief_run_drives_staticst_serve_and_writes_the_report(
    serve_paper: ModuleType, shared_dir: Path, tmp_path: Path
) -> None:
    argv = ["--duration", "1", "--warmup", "0.5", "--connections", "16", "--threads", "2", "--workers", "1"]
    argv += ["--batches", "1,10", "--output", str(tmp_path)]
    assert serve_paper.main(argv) == 0
    report = json.loads((tmp_path / "serve_paper.json").read_text(encoding="utf-8"))
    assert [run["batch"] for run in report["runs"]] == [1, 10]
    assert all(run["requests"] > 0 and run["errors"] == 0 for run in report["runs"])
    assert report["load"]["connections"] == 16 and report["paper_load"]["connections"] == 400
    assert report["machine"]["cpus"] >= 1 and "loadavg_1m_before" in report["machine"]
    # The report's table holds this run's own measures beside the paper's figure for the same batch size.
    table = {measure: (theirs, ours) for measure, theirs, ours in report["table"]}
    single, batch10 = report["runs"]
    assert table["p50 latency, single text (ms)"] == ("1.12 (Table 2)", f"{single['p50_ms']:.2f}")
    assert table["p99 latency, single text (ms)"] == ("5.04 (Table 2)", f"{single['p99_ms']:.2f}")
    assert table["requests/s, single text"] == ("50,000 (Tables 2, 5)", f"{single['rps']:,.0f}")
    assert table["requests/s, batch 10"] == ("10,000 (Table 5)", f"{batch10['rps']:,.0f}")
    assert table["texts/s, batch 10"] == ("100,000", f"{batch10['rps'] * 10:,.0f}")
    little = float(table["Little's law mean latency, batch 10 (ms)"][1])  # connections / throughput
    assert little == pytest.approx(16 / batch10["rps"] * 1000, abs=0.01)

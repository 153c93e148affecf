"""Tests for the MTEB harness (eval/mteb_tasks.py, eval/_adapter.py).

The end-to-end test runs ``python eval/mteb_tasks.py`` once on every task with local data for the real
potion-base-8M, through staticst and through the sentence-transformers reference, and checks parity,
the "data unavailable" reporting and the output files. Two tasks (one STS, one retrieval) are also scored
independently here -- the test's own data loading, ``SentenceTransformer`` and plain ``mteb.evaluate`` --
so the harness's loader and adapter are checked against numbers they did not produce.
Nothing is downloaded: the harness runs with ``--offline``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # integration job: the MTEB harness end to end; `-m "not slow"` leaves it out

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "eval" / "mteb_tasks.py"
LOCAL_TASKS = ["Banking77Classification", "EmotionClassification", "SciFact", "STSBenchmark", "SICK-R"]
NO_DATA_TASK = "SprintDuplicateQuestions"
TOLERANCE = 0.01

pytest.importorskip("mteb", reason="the MTEB harness needs the [eval] extra")


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    return _load("staticst_eval_mteb_tasks", SCRIPT)


@pytest.fixture(scope="module")
def adapter() -> ModuleType:
    return _load("staticst_eval_adapter", REPO / "eval" / "_adapter.py")


@pytest.fixture(scope="module")
def potion(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "potion-base-8M"
    if not path.is_dir():
        raise FileNotFoundError(f"shared model {path} is missing")
    return path


@pytest.fixture(scope="module")
def data_dir(shared_dir: Path) -> Path:
    path = shared_dir / "data" / "mteb"
    for sub in ("banking77", "emotion", "scifact", "stsbenchmark-sts", "sickr-sts"):
        if not (path / sub).is_dir():
            raise FileNotFoundError(f"shared MTEB data {path / sub} is missing")
    return path


@pytest.fixture(scope="module")
def paper_path(shared_dir: Path) -> Path:
    path = shared_dir / "paper" / "swiftembed-tables.json"
    if not path.is_file():
        raise FileNotFoundError(f"shared paper tables {path} are missing")
    return path


@pytest.fixture(scope="module")
def paper_json(paper_path: Path) -> dict[str, Any]:
    """The paper's tables, read here directly (not through the harness)."""
    return json.loads(paper_path.read_text(encoding="utf-8"))


def _paper_task_figures(paper_json: dict[str, Any]) -> dict[str, float]:
    """The per-task figures of the paper's text for its static system: ``<task>_<metric>`` keys, not ``_bert``."""
    mentions = paper_json["table1_mteb_by_category"]["text_mentions"]
    return {k.split("_")[0]: v for k, v in mentions.items() if not k.endswith("_bert")}


@pytest.fixture(scope="module")
def run_output(
    tmp_path_factory: pytest.TempPathFactory, potion: Path, data_dir: Path, paper_path: Path
) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("mteb")
    cmd = [
        sys.executable, str(SCRIPT), "--model", str(potion), "--data-dir", str(data_dir), "--output", str(out),
        "--tasks", *LOCAL_TASKS, NO_DATA_TASK, "--reference", "--offline",
        "--paper-tables", str(paper_path),
    ]  # fmt: skip
    # PYTHONPATH makes the repository's staticst importable even when it is not pip-installed
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO, env=env)
    return {
        "out": out,
        "proc": proc,
        "paper_json": json.loads(paper_path.read_text(encoding="utf-8")),
        "summary": json.loads((out / "summary.json").read_text())
        if (out / "summary.json").exists()
        else None,
    }


# ------------------------------------------------------------------------------------ end to end


def test_harness_exits_zero(run_output: dict[str, Any]) -> None:
    proc = run_output["proc"]
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_parity_with_sentence_transformers_reference(run_output: dict[str, Any]) -> None:
    summary = run_output["summary"]
    assert summary is not None
    for task in LOCAL_TASKS:
        static = summary["scores"]["static"][task]
        reference = summary["scores"]["reference"][task]
        assert static is not None and reference is not None, task
        assert 0.0 < static <= 1.0, (task, static)
        assert abs(static - reference) <= TOLERANCE, (task, static, reference)
    assert summary["parity"]["ok"] is True
    assert set(summary["parity"]["tasks"]) == set(LOCAL_TASKS)


def _independent_sts(task_name: str, data_file: Path, model_path: Path) -> float:
    import mteb
    from datasets import Dataset, DatasetDict
    from sentence_transformers import SentenceTransformer

    rows = [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    task = mteb.get_task(task_name)
    task.dataset = DatasetDict({"test": Dataset.from_list(rows)})
    task.data_loaded = True
    model = SentenceTransformer(str(model_path), device="cpu")
    result = mteb.evaluate(model, task, cache=None, show_progress_bar=False, co2_tracker=False)
    return float(result.task_results[0].get_score())


def _independent_scifact(folder: Path, model_path: Path) -> float:
    import mteb
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer

    qrels: dict[str, dict[str, int]] = {}
    lines = (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    for line in lines:
        q, d, s = line.split("\t")
        qrels.setdefault(q, {})[d] = int(s)
    docs = [json.loads(x) for x in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    qs = [json.loads(x) for x in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    task = mteb.get_task("SciFact")
    corpus = Dataset.from_list([{"id": d["_id"], "title": d["title"], "text": d["text"]} for d in docs])
    queries = Dataset.from_list([{"id": q["_id"], "text": q["text"]} for q in qs if q["_id"] in qrels])
    split = {"corpus": corpus, "queries": queries, "relevant_docs": qrels, "top_ranked": None}
    task.dataset = {"default": {"test": split}}
    task.data_loaded = True
    model = SentenceTransformer(str(model_path), device="cpu")
    result = mteb.evaluate(model, task, cache=None, show_progress_bar=False, co2_tracker=False)
    return float(result.task_results[0].get_score())


def test_scores_match_an_independent_mteb_run(
    run_output: dict[str, Any], potion: Path, data_dir: Path
) -> None:
    summary = run_output["summary"]
    assert summary is not None
    expected = {
        "STSBenchmark": _independent_sts(
            "STSBenchmark", data_dir / "stsbenchmark-sts" / "test.jsonl", potion
        ),
        "SciFact": _independent_scifact(data_dir / "scifact", potion),
    }
    for task, value in expected.items():
        assert abs(summary["scores"]["static"][task] - value) <= TOLERANCE, (
            task,
            summary["scores"]["static"][task],
            value,
        )


def test_task_without_data_is_reported_not_scored(run_output: dict[str, Any]) -> None:
    summary = run_output["summary"]
    assert summary is not None
    entry = summary["tasks"][NO_DATA_TASK]
    assert entry["status"] == "not run"
    assert entry["reason"].startswith("data unavailable (")
    assert "sprintduplicatequestions" in entry["reason"] and "--offline" in entry["reason"]
    assert all(summary["scores"][role][NO_DATA_TASK] is None for role in ("static", "reference"))
    row = next(
        line
        for line in (run_output["out"] / "report.md").read_text().splitlines()
        if line.startswith(f"| {NO_DATA_TASK} ")
    )
    assert "not run: data unavailable" in row
    assert not any(run_output["out"].rglob(f"{NO_DATA_TASK}.json"))


def test_output_files(run_output: dict[str, Any], harness: ModuleType) -> None:
    from mteb import TaskResult

    out: Path = run_output["out"]
    summary = run_output["summary"]
    assert summary is not None
    report = (out / "report.md").read_text()
    assert "| task | category | metric | static model | baseline | paper (SwiftEmbed) | static/baseline % |" in report
    for task in LOCAL_TASKS:
        row = next(line for line in report.splitlines() if line.startswith(f"| {task} |"))
        assert f"{100 * summary['scores']['static'][task]:.2f}" in row
    # the paper column: the per-task figure of the paper's text (percent, as printed) where it has one, else "n/a"
    figures = _paper_task_figures(run_output["paper_json"])
    assert {"Banking77Classification", "EmotionClassification", "SprintDuplicateQuestions"} <= set(figures)
    for task in [*LOCAL_TASKS, NO_DATA_TASK]:
        cells = _report_cells(report, task)
        expected = f"{figures[task]:.2f}" if task in figures else "n/a"
        assert cells[5] == expected, (task, cells)
        assert summary["tasks"][task]["paper"] == (figures[task] / 100 if task in figures else None)
    png = (out / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    for role in ("static", "reference"):
        for task in LOCAL_TASKS:
            path = Path(summary["tasks"][task]["result_files"][role])
            assert path.is_file() and path.is_relative_to(out)
            result = TaskResult.from_disk(path)
            assert result.task_name == task
            assert math.isclose(result.get_score(), summary["scores"][role][task], abs_tol=1e-6)
        meta = json.loads(next((out / "results" / role).rglob("model_meta.json")).read_text())
        assert meta["embed_dim"] == 256
    static_meta = summary["models"]["static"]
    assert static_meta["n_parameters"] == 29528 * 256  # the shared README: 29528 x 256 float32 table
    assert static_meta["embed_dim"] == 256 and static_meta["framework"] == ["NumPy", "safetensors"]
    assert summary["models"]["static"]["texts_per_second"] > 0


def test_report_sets_our_models_beside_the_papers_tables(run_output: dict[str, Any]) -> None:
    """report.md: the paper's Table 1 rows and Table 10 pairs as in the JSON, our category means, our pair cosines."""
    summary, paper_json = run_output["summary"], run_output["paper_json"]
    report = (run_output["out"] / "report.md").read_text()
    lines = report.splitlines()
    assert "## Beside the paper's Table 1 (MTEB by category)" in report
    assert "- Classification (accuracy): Banking77Classification, EmotionClassification" in report
    assert "- STS (Spearman): STSBenchmark, SICK-R" in report and "- Retrieval (nDCG@10): SciFact" in report
    scores = summary["scores"]["static"]
    expected = {
        "Classification": (scores["Banking77Classification"] + scores["EmotionClassification"]) / 2,
        "Retrieval": scores["SciFact"],
        "STS": (scores["STSBenchmark"] + scores["SICK-R"]) / 2,
    }
    assert summary["paper"]["ours_by_category"]["static"] == pytest.approx(expected)
    ours = next(line for line in lines if line.startswith("| **local/potion-base-8M** | ours (static) |"))
    cells = [c.strip() for c in ours.strip("|").split("|")]
    assert [cells[2], cells[4], cells[5]] == [f"{100 * expected[c]:.2f}" for c in ("Classification", "Retrieval", "STS")]
    assert not any("ours (reference)" in line for line in lines)  # the reference is the same model
    for model, values in paper_json["table1_mteb_by_category"]["rows"].items():
        row = next(line for line in lines if line.startswith(f"| {model} | paper |"))
        assert [c.strip() for c in row.strip("|").split("|")][2:7] == [f"{v:.1f}" for v in values]
    assert "## The paper's Table 10 pairs through our models" in report
    pairs = paper_json["table10_pairs"]
    static_sims = summary["paper"]["table10"]["ours"]["static"]
    for i, pair in enumerate(pairs):
        row = next(line for line in lines if line.startswith(f"| t10-{i + 1} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2:7] == [pair["a"], pair["b"], f"{pair['bert']:.2f}", f"{pair['static']:.2f}", f"{static_sims[i]:.4f}"]
    reordered = next(i for i, p in enumerate(pairs) if p["type"] == "word order sensitivity")
    assert static_sims[reordered] == pytest.approx(1.0, abs=1e-6)
    assert summary["paper"]["table10"]["same_tokens_static"][reordered] is True
    assert sum(summary["paper"]["table10"]["same_tokens_static"]) == 1


def test_pair_similarities_match_an_independent_computation(harness: ModuleType, shared_dir: Path, paper_path: Path) -> None:
    """score_paper_pairs on a static model and a transformer baseline, against sentence-transformers' cos_sim."""
    from types import SimpleNamespace

    from sentence_transformers import SentenceTransformer, util

    from staticst import StaticSentenceTransformer

    paper = harness.load_paper_tables(paper_path)
    static = StaticSentenceTransformer(shared_dir / "models" / "potion-base-8M")
    minilm = SentenceTransformer(str(shared_dir / "models" / "all-MiniLM-L6-v2"), device="cpu")
    runs = {"static": SimpleNamespace(encoder=SimpleNamespace(model=static)),
            "baseline": SimpleNamespace(encoder=SimpleNamespace(model=minilm))}  # fmt: skip
    got = harness.score_paper_pairs(paper, runs)
    for role, model in (("static", static), ("baseline", minilm)):
        for i, pair in enumerate(paper.pairs):
            a, b = model.encode([pair.text_a, pair.text_b])
            expected = float(util.cos_sim(np.asarray([a]), np.asarray([b]))[0, 0])
            assert got["ours"][role][i] == pytest.approx(expected, abs=1e-6), (role, pair.id)
    assert got["same_tokens_static"] == [p.type == "word order sensitivity" for p in paper.pairs]


def _report_cells(report: str, task: str) -> list[str]:
    """The cells of ``task``'s row in report.md: task, category, metric, static, baseline, paper, ratio."""
    row = next(line for line in report.splitlines() if line.startswith(f"| {task} |"))
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


# -------------------------------------------------------------------------------- unit behaviour


def _fake_run(harness: ModuleType, role: str, scores: dict[str, float]) -> Any:
    from types import SimpleNamespace

    meta = SimpleNamespace(
        name=f"test/{role}", revision="r", embed_dim=4, n_parameters=16, max_tokens=float("inf"),
        framework=["NumPy"], similarity_fn_name="cosine",
    )  # fmt: skip
    return harness.ModelRun(
        role=role, encoder=SimpleNamespace(mteb_model_meta=meta), scores=scores, texts=10, seconds=1.0
    )


def _paper_copy(harness: ModuleType, paper_json: dict[str, Any], tmp_path: Path, mentions: dict[str, float]) -> Any:
    """A copy of the real tables file with other text figures (so nothing can pass by knowing the real ones)."""
    data = json.loads(json.dumps(paper_json))
    data["table1_mteb_by_category"]["text_mentions"] = mentions
    (tmp_path / "tables.json").write_text(json.dumps(data))
    return harness.load_paper_tables(tmp_path / "tables.json")


def test_report_shows_paper_numbers_on_the_score_scale(
    harness: ModuleType, paper_json: dict[str, Any], tmp_path: Path
) -> None:
    """A paper figure (percent) lands in summary.json on mteb's 0-1 scale and in report.md x 100, like ours."""
    paper = _paper_copy(
        harness, paper_json, tmp_path, {"STSBenchmark_spearman": 12.34, "SICK-R_spearman": 56.78, "ArguAna_ndcg10": 9.5,
                               "ArguAna_ndcg10_bert": 77.0, "mteb_average": 1.0},
    )  # fmt: skip
    tasks = [
        harness.PreparedTask("STSBenchmark", "STS", "cosine_spearman", task=object(), source="local"),
        harness.PreparedTask("SICK-R", "STS", "cosine_spearman", task=object(), source="local"),
        harness.PreparedTask("SciFact", "Retrieval", "ndcg_at_10", task=object(), source="local"),
        harness.PreparedTask("ArguAna", "Retrieval", "ndcg_at_10", unavailable="no local data"),
    ]
    runs = {
        "static": _fake_run(harness, "static", {"STSBenchmark": 0.5, "SICK-R": 0.25, "SciFact": 0.125}),
        "baseline": _fake_run(harness, "baseline", {"STSBenchmark": 1.0, "SICK-R": 0.5, "SciFact": 0.25}),
    }
    summary = harness.build_summary(tasks, runs, {}, 0.01, paper)
    assert summary["tasks"]["STSBenchmark"]["paper"] == pytest.approx(0.1234)
    assert summary["tasks"]["SciFact"]["paper"] is None
    report = harness.render_report(summary)
    assert _report_cells(report, "STSBenchmark")[3:] == ["50.00", "100.00", "12.34", "50.0"]
    assert _report_cells(report, "SICK-R")[5] == "56.78"
    assert _report_cells(report, "SciFact")[5] == "n/a"
    assert _report_cells(report, "ArguAna")[5] == "9.50"  # shown even when we could not run the task (not _bert)
    mean_row = next(line for line in report.splitlines() if line.startswith("| **mean of 3 tasks run**"))
    assert mean_row.split("|")[6].strip() == "n/a"  # the paper has no SciFact number: no paper mean

    tasks = tasks[:2]  # every task run has a paper number: the paper's mean over the same tasks is shown
    report = harness.render_report(harness.build_summary(tasks, runs, {}, 0.01, paper))
    mean_row = next(line for line in report.splitlines() if line.startswith("| **mean of 2 tasks run**"))
    assert mean_row.split("|")[6].strip() == f"{(12.34 + 56.78) / 2:.2f}"


def test_report_puts_our_categories_beside_table1(harness: ModuleType, paper_json: dict[str, Any], tmp_path: Path) -> None:
    """Our category means (by mteb task type) beside every Table 1 row, with the paper's rows from the file."""
    paper = _paper_copy(harness, paper_json, tmp_path, {})
    tasks = [
        harness.PreparedTask("STSBenchmark", "STS", "cosine_spearman", task=object(), source="local"),
        harness.PreparedTask("SICK-R", "STS", "cosine_spearman", task=object(), source="local"),
        harness.PreparedTask("SciFact", "Retrieval", "ndcg_at_10", task=object(), source="local"),
        harness.PreparedTask("ArguAna", "Retrieval", "ndcg_at_10", unavailable="no local data"),
    ]
    runs = {"static": _fake_run(harness, "static", {"STSBenchmark": 0.5, "SICK-R": 0.25, "SciFact": 0.125})}
    summary = harness.build_summary(tasks, runs, {}, 0.01, paper)
    assert summary["paper"]["ours_by_category"]["static"] == {"STS": 0.375, "Retrieval": 0.125}
    report = harness.render_report(summary)
    assert "- STS (Spearman): STSBenchmark, SICK-R" in report
    assert "- Retrieval (nDCG@10): SciFact (not run: ArguAna)" in report
    ours = next(line for line in report.splitlines() if line.startswith("| **test/static** |"))
    cells = [c.strip() for c in ours.strip("|").split("|")]
    assert cells[2:7] == ["n/a", "n/a", "12.50", "37.50", "n/a"] and cells[8] == "25.00"
    t1 = paper_json["table1_mteb_by_category"]
    for model, values in t1["rows"].items():
        row = next(line for line in report.splitlines() if line.startswith(f"| {model} | paper |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2:7] == [f"{v:.1f}" for v in values], model
        assert cells[7] == f"{sum(values) / len(values):.2f}"
        retrieval, sts = values[t1["columns"].index("retrieval_ndcg10")], values[t1["columns"].index("sts_spearman")]
        assert cells[8] == f"{(retrieval + sts) / 2:.2f}"  # the paper over the categories we ran


def test_missing_paper_tables_leave_the_column_empty(harness: ModuleType, tmp_path: Path) -> None:
    assert harness._paper_tables(tmp_path / "none.json") == (None, f"no paper tables at {tmp_path / 'none.json'}")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(harness.UsageError, match="unexpected structure"):
        harness._paper_tables(tmp_path / "bad.json")
    tasks = [harness.PreparedTask("STSBenchmark", "STS", "cosine_spearman", task=object(), source="local")]
    runs = {"static": _fake_run(harness, "static", {"STSBenchmark": 0.5})}
    summary = harness.build_summary(tasks, runs, {}, 0.01, None, None, "no paper tables at /x")
    report = harness.render_report(summary)
    assert _report_cells(report, "STSBenchmark")[5] == "n/a"
    assert "could not be read: no paper tables at /x" in report and "Table 10" not in report


def test_unknown_task_is_a_usage_error(
    harness: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = harness.main(["--model", "x", "--tasks", "NoSuchTask123", "--output", str(tmp_path), "--offline"])
    assert code == 2
    assert "NoSuchTask123" in capsys.readouterr().err


def test_bad_data_dir_is_rejected(harness: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        harness.parse_args(
            ["--model", "x", "--data-dir", str(tmp_path / "missing"), "--output", str(tmp_path)]
        )


def test_offline_never_touches_the_network(harness: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network attempted")

    monkeypatch.setattr("socket.create_connection", boom)
    assert harness.hub_status(offline=True) == (False, "--offline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ok, why = harness.hub_status(offline=False)
    assert not ok and "HF_HUB_OFFLINE" in why


def test_local_retrieval_loader_matches_mteb_structure(harness: ModuleType, tmp_path: Path) -> None:
    folder = tmp_path / "scifact"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "\n".join(
            json.dumps(d)
            for d in [{"_id": "d1", "title": "T1", "text": "x"}, {"_id": "d2", "title": "T2", "text": "y"}]
        )
    )
    (folder / "queries.jsonl").write_text(
        "\n".join(
            json.dumps(q)
            for q in [{"_id": "q1", "text": "a"}, {"_id": "q2", "text": "b"}, {"_id": "q3", "text": "c"}]
        )
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td2\t1\nq1\td1\t2\n")
    task = harness.new_task("SciFact", 42)
    harness.load_local(task, tmp_path)
    split = task.dataset["default"]["test"]
    assert task.data_loaded
    assert split["queries"]["id"] == ["q1", "q3"]  # only judged queries, in file order
    assert split["corpus"]["id"] == ["d1", "d2"] and split["corpus"]["title"] == ["T1", "T2"]
    assert split["relevant_docs"] == {"q3": {"d2": 1}, "q1": {"d1": 2}}
    assert split["top_ranked"] is None


def test_missing_split_is_data_unavailable(harness: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "banking77").mkdir()
    (tmp_path / "banking77" / "test.jsonl").write_text(json.dumps({"text": "hi", "label": 0}) + "\n")
    task = harness.new_task("Banking77Classification", 42)
    with pytest.raises(harness.DataUnavailable, match="train.jsonl"):
        harness.load_local(task, tmp_path)
    prepared = harness.prepare_tasks(["Banking77Classification"], tmp_path, offline=True, seed=42)
    assert prepared[0].task is None and "train.jsonl" in prepared[0].unavailable


def test_adapter_satisfies_encoder_protocol(adapter: ModuleType, potion: Path) -> None:
    import mteb
    from mteb.models.models_protocols import SearchProtocol

    from staticst import StaticSentenceTransformer

    model = StaticSentenceTransformer(str(potion))
    enc = adapter.StaticSTEncoder(model)  # positional: the model is wrapped, not taken for a name
    assert enc.model is model
    timed = adapter.TimedStaticSTEncoder(model)
    assert isinstance(timed, adapter.StaticSTEncoder) and timed.encode_stats.texts == 0
    assert isinstance(enc, mteb.EncoderProtocol) and not isinstance(enc, SearchProtocol)
    meta = enc.mteb_model_meta
    assert meta.name == "local/potion-base-8M"
    assert meta.embed_dim == 256 and meta.n_parameters == 29528 * 256
    assert meta.framework == ["NumPy", "safetensors"]
    assert meta.similarity_fn_name is not None and meta.similarity_fn_name.value == "cosine"
    assert meta.max_tokens is not None and meta.max_tokens > 0
    named = adapter.StaticSTEncoder(model, name="minishlab/potion-base-8M", revision="abc").mteb_model_meta
    assert (named.name, named.revision) == ("minishlab/potion-base-8M", "abc")


def test_unusable_local_data_is_data_unavailable(harness: ModuleType, tmp_path: Path) -> None:
    folder = tmp_path / "scifact"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(json.dumps({"id": "d1", "text": "x"}) + "\n")  # BEIR needs "_id"
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "a"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    prepared = harness.prepare_tasks(["SciFact", "SciFact"], tmp_path, offline=True, seed=42)
    assert len(prepared) == 1 and prepared[0].task is None
    assert "unusable" in prepared[0].unavailable and "_id" in prepared[0].unavailable


def test_quality_vs_speed_shows_equal_scores_as_equal(harness: ModuleType) -> None:
    # Issue 19: staticst and the sentence-transformers reference score the same model 4e-8 apart; matplotlib
    # drew them far apart under a y-axis offset label "1e-6+7.004021e1".
    report = importlib.import_module("_mteb_report")
    tasks = {"STSBenchmark": {"status": "ok"}, "SICK-R": {"status": "ok"}}
    summary = {
        "tasks": tasks,
        "scores": {
            "static": {"STSBenchmark": 0.7004021, "SICK-R": 0.7004021},
            "reference": {"STSBenchmark": 0.7004021 + 4e-10, "SICK-R": 0.7004021 + 4e-10},
        },
        "models": {
            "static": {"name": "potion-base-8M", "texts_per_second": 200_000.0},
            "reference": {"name": "potion-base-8M", "texts_per_second": 20_000.0},
        },
    }
    fig = report.plot_figure(summary)
    fig.canvas.draw()
    ax = fig.axes[1]
    assert ax.get_title() == "Quality vs encode speed"
    assert ax.yaxis.get_offset_text().get_text() == ""  # plain scores
    low, high = ax.get_ylim()
    assert high - low >= 4 and low < 70.04021 < high
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert labels and all(float(t.replace("\u2212", "-")) >= 60 for t in labels), labels  # scores, not offsets

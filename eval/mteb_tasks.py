"""MTEB harness: what a static model keeps and what it gives up, in numbers, through the real mteb.

Runs a staticst model (and optionally a sentence-transformers baseline, and the sentence-transformers
reference implementation of the same static model) on MTEB tasks with mteb's own evaluators, and writes:

- mteb's result JSON per task and model (``<output>/results/<role>/results/<model>/<revision>/<task>.json``,
  mteb's ``ResultCache`` layout, with ``model_meta.json`` beside it),
- ``summary.json``: task -> main score per model, plus the reason for every task that did not run,
- ``report.md``: task | category | metric | static | baseline | paper (Table 1) | static/baseline %,
  encode throughput, and the parity table when ``--reference`` is given,
- ``report.png``: main score per task, and quality vs encode throughput (the paper's Table 2 axis).

Usage::

    python eval/mteb_tasks.py --model ../shared/models/potion-base-8M \\
        --baseline ../shared/models/all-MiniLM-L6-v2 --data-dir ../shared/data/mteb --output results/mteb

Data: with ``--data-dir`` a task reads ``DIR/<hub dataset name>/`` (``mteb/banking77`` ->
``DIR/banking77``): one JSON-lines file per split with the columns of mteb's hub dataset, or, for
retrieval tasks, BEIR format (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``). The rows are put
into exactly the structure mteb's ``load_data`` builds, then mteb evaluates as usual. A task without local
data is loaded from the Hugging Face Hub only when the hub is reachable (checked once with a short
timeout, never with ``--offline`` or ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` set); otherwise it is
reported as "not run: data unavailable (<reason>)" and never given a number.

``--reference`` also runs ``sentence_transformers.SentenceTransformer(MODEL)`` through the same mteb on the
same data and seeds, and exits with status 1 when any task's main score differs by more than
``--parity-tolerance`` (CI runs this for potion-base-8M on every task with local data).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlparse

if TYPE_CHECKING:
    from mteb.types import EncodeKwargs

DEFAULT_TASKS: tuple[str, ...] = (
    "Banking77Classification",
    "EmotionClassification",
    "TwentyNewsgroupsClustering",
    "ArguAna",
    "SciFact",
    "STSBenchmark",
    "SICK-R",
    "SprintDuplicateQuestions",
)
"""The 8 representative tasks of the SwiftEmbed paper (arXiv 2510.24793, Table 1), as listed in this project's
issue. The list itself could not be checked against the paper: Table 1 is not readable in any stored copy (see
``PAPER_TABLE1``), and one third-party index (https://www.wizwand.com/paper/6902f0f13ef7ccd74e5e4258) describes
the paper's 8 tasks as "including Banking77, SprintDuplicateQuestions, TwitterSemEval, ArguAna", i.e. with
TwitterSemEval2015, which is not in this list. ``--tasks`` runs any other selection."""

PAPER_URLS: dict[str, str] = {
    "v1": "https://arxiv.org/html/2510.24793v1",
    "v2": "https://arxiv.org/html/2510.24793v2",
    "v3": "https://researchtrend.ai/papers/2510.24793",
}
"""Where the paper text quoted here was read (stored copies; researchtrend.ai shows the abstract of v3, which it
marks as the latest version, with v1 and v2 listed)."""

PAPER_TABLE1: dict[str, float] = {}
"""Per-task scores of the paper's Table 1, keyed by mteb task name, **in percent exactly as printed** (0-100).

``build_summary`` divides them by 100 so that ``summary.json`` holds every score, ours and the paper's, on
mteb's 0-1 scale; ``report.md`` shows all of them x 100.

Empty on purpose: Table 1 could not be read. Searching stored copies of the paper (arXiv 2510.24793 v1/v2 HTML,
the api-inference.pages.dev markdown copy, sciencestack.ai, researchtrend.ai and other index pages) only ever
returned the title, abstract and opening sections, and numbers are never filled in from memory or estimated.
The report shows "n/a" for every task. The aggregates the abstract does state are in ``PAPER_AGGREGATES``.
When the table is read, add ``"TaskName": value`` here with the URL and paper version in a comment.
"""

PAPER_AGGREGATES: dict[str, dict[str, Any]] = {
    "mteb_average_8_tasks": {
        "value": 60.6,
        "unit": "MTEB average score (0-100) over the paper's 8 representative tasks",
        "versions": ["v1", "v2", "v3"],
    },
    "share_of_contextual_quality": {
        "value": 89.0,
        "unit": "% of contextual model quality (the same 60.6 average, relative to the paper's baseline)",
        "versions": ["v1", "v2"],
    },
    "duplicate_detection_ap": {
        "value": 90.1,
        "unit": "% AP on duplicate detection (the abstract does not name the task)",
        "versions": ["v1", "v2", "v3"],
    },
    "semantic_similarity_spearman": {
        "value": 76.1,
        "unit": "% Spearman correlation on semantic similarity (the abstract does not name the task)",
        "versions": ["v1", "v2", "v3"],
    },
}
"""The paper's aggregate claims, as printed in its abstract (see ``PAPER_URLS``), for its static system (v3's
abstract names potion-base-8M served from Rust). None of them is a per-task Table 1 number and none is mapped
to a task here: the 90.1 AP and 76.1 Spearman are not attributed to a named task in the text that could be read."""

PAPER_NOTE = (
    "Per-task Table 1 numbers of the paper (SwiftEmbed, arXiv 2510.24793) could not be read (searching stored "
    "copies only returned its title, abstract and opening sections), so the column is n/a. The abstract "
    "(v1, v2 and v3) reports for its static system (built on potion-base-8M, as v3's abstract says): a 60.6 "
    'MTEB average over its 8 tasks ("89% of contextual model quality" in v1/v2), 90.1% AP on duplicate '
    "detection and 76.1% Spearman on semantic similarity. Sources: "
    + ", ".join(f"{v} {u}" for v, u in PAPER_URLS.items())
    + "."
)

CATEGORY_LABELS: dict[str, str] = {
    "Classification": "classification",
    "Clustering": "clustering",
    "Retrieval": "retrieval",
    "STS": "STS",
    "PairClassification": "pair classification",
}

ROLES: tuple[str, ...] = ("static", "baseline", "reference")
"""static: the staticst model; baseline: ``--baseline`` via sentence-transformers; reference: ``--model``
via sentence-transformers (parity)."""

HUB_CHECK_TIMEOUT_S = 3.0
logger = logging.getLogger("staticst.eval.mteb")


def _load_adapter() -> ModuleType:
    """Import ``_adapter.py`` from this folder (works whether this file is run or imported by path)."""
    return _load_sibling("_adapter.py", "staticst_eval_adapter")


def _load_sibling(filename: str, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class UsageError(ValueError):
    """Bad harness input (e.g. an unknown task name); the message names the value and the fix."""


class DataUnavailable(Exception):
    """A task's data can be had neither from ``--data-dir`` nor from the hub; the message says why."""


# --------------------------------------------------------------------------------------------- data


def local_folder(task: Any, data_dir: Path) -> Path:
    """Where a task's local data lives: ``data_dir / <hub dataset name>`` (``mteb/scifact`` -> ``scifact``)."""
    return data_dir / str(task.metadata.dataset["path"]).rstrip("/").split("/")[-1]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataUnavailable(f"{path}:{lineno} is not valid JSON ({e.msg})") from e
    if not rows:
        raise DataUnavailable(f"{path} is empty")
    return rows


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["query-id", "corpus-id", "score"]:
            raise DataUnavailable(
                f"{path}: expected the BEIR header 'query-id corpus-id score', got {header}"
            )
        for line in f:
            if line.strip():
                qid, did, score = line.rstrip("\n").split("\t")
                qrels.setdefault(qid, {})[did] = int(score)
    return qrels


def _load_local_retrieval(task: Any, folder: Path) -> None:
    from datasets import Dataset

    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise DataUnavailable(f"{folder / name} is missing (retrieval data must be in BEIR format)")
    corpus_rows = _read_jsonl(folder / "corpus.jsonl")
    query_rows = _read_jsonl(folder / "queries.jsonl")
    corpus = Dataset.from_list(
        [{"id": str(r["_id"]), "title": r.get("title", ""), "text": r["text"]} for r in corpus_rows]
    )
    dataset: dict[str, dict[str, Any]] = {"default": {}}
    for split in task.eval_splits:
        qrels_path = folder / "qrels" / f"{split}.tsv"
        if not qrels_path.is_file():
            raise DataUnavailable(f"{qrels_path} is missing")
        qrels = _read_qrels(qrels_path)
        # as mteb's RetrievalDatasetLoader: keep only queries with relevance judgements, in file order
        queries = Dataset.from_list(
            [{"id": str(r["_id"]), "text": r["text"]} for r in query_rows if str(r["_id"]) in qrels]
        )
        dataset["default"][split] = {
            "corpus": corpus,
            "queries": queries,
            "relevant_docs": qrels,
            "top_ranked": None,
        }
    task.dataset = dataset


def _load_local_splits(task: Any, folder: Path) -> None:
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.classification import AbsTaskClassification

    needed = list(task.eval_splits)
    if isinstance(task, AbsTaskClassification) and task.train_split not in needed:
        needed.append(task.train_split)
    splits = {}
    for split in needed:
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise DataUnavailable(f"{path} is missing (the task needs splits {needed})")
        splits[split] = Dataset.from_list(_read_jsonl(path))
    task.dataset = DatasetDict(splits)
    task.dataset_transform()


def load_local(task: Any, data_dir: Path) -> Path:
    """Fill ``task.dataset`` from ``data_dir`` in the structure mteb's ``load_data`` would build.

    Args:
        task: An mteb task (fresh from ``mteb.get_task``).
        data_dir: Folder holding one sub-folder per hub dataset.

    Returns:
        The folder the data came from.

    Raises:
        DataUnavailable: The folder is missing or incomplete, or the task is multilingual (not supported
            from local files).
    """
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    folder = local_folder(task, data_dir)
    if not folder.is_dir():
        raise DataUnavailable(f"no local data at {folder}")
    if task.metadata.is_multilingual:
        raise DataUnavailable(
            f"{task.metadata.name} is multilingual; local data is supported for monolingual tasks only"
        )
    if isinstance(task, AbsTaskRetrieval):
        _load_local_retrieval(task, folder)
    else:
        _load_local_splits(task, folder)
    task.data_loaded = True
    return folder


def hub_status(offline: bool, timeout: float = HUB_CHECK_TIMEOUT_S) -> tuple[bool, str]:
    """Whether datasets may be fetched from the Hugging Face Hub, and why not.

    Never blocks longer than ``timeout`` seconds: one TCP connect to the hub endpoint.
    """
    if offline:
        return False, "--offline"
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return False, f"{var} is set"
    from huggingface_hub import constants

    endpoint = urlparse(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, ""
    except OSError as e:
        return False, f"hub {host}:{port} not reachable within {timeout:g}s ({type(e).__name__}: {e})"


def new_task(name: str, seed: int) -> Any:
    """A fresh mteb task object with the given seed.

    Raises:
        UsageError: Unknown task name (mteb's message lists close matches).
    """
    import mteb

    try:
        task = mteb.get_task(name)
    except KeyError as e:
        raise UsageError(f"unknown MTEB task {name!r}: {e.args[0] if e.args else e}") from None
    return type(task)(seed=seed)


@dataclass
class PreparedTask:
    """A task with its data loaded (or the reason it could not be)."""

    name: str
    category: str
    metric: str
    task: Any = None
    source: str = ""
    unavailable: str | None = None

    def fresh(self, seed: int) -> Any:
        """A new task object sharing the loaded data, so that every model starts from identical state."""
        task = type(self.task)(seed=seed)
        task.dataset = self.task.dataset
        task.data_loaded = True
        return task


def prepare_tasks(
    names: Sequence[str], data_dir: Path | None, offline: bool, seed: int
) -> list[PreparedTask]:
    """Load every task's data once: local folder first, then the hub when it is reachable.

    Raises:
        UsageError: An unknown task name.
    """
    tasks = [new_task(n, seed) for n in dict.fromkeys(names)]
    hub: tuple[bool, str] | None = None
    prepared = []
    for task in tasks:
        p = PreparedTask(
            name=task.metadata.name, category=str(task.metadata.type), metric=str(task.metadata.main_score)
        )
        reasons = []
        if data_dir is not None:
            try:
                p.source = f"local: {load_local(task, data_dir)}"
                p.task = task
            except DataUnavailable as e:
                reasons.append(str(e))
            except (KeyError, ValueError, TypeError) as e:  # wrong columns / types in the local files
                reasons.append(
                    f"local data at {local_folder(task, data_dir)} unusable: {type(e).__name__}: {e}"
                )
        else:
            reasons.append("no --data-dir")
        if p.task is None:
            if hub is None:
                hub = hub_status(offline)
            if hub[0]:
                try:
                    task.load_data()
                    p.task, p.source = task, f"hub: {task.metadata.dataset['path']}"
                except Exception as e:  # noqa: BLE001 -- any load failure is reported, never scored
                    reasons.append(f"hub load failed: {type(e).__name__}: {e}")
            else:
                reasons.append(f"hub not used: {hub[1]}")
        if p.task is None:
            p.unavailable = "; ".join(reasons)
        prepared.append(p)
    return prepared


# ------------------------------------------------------------------------------------------- models


@dataclass
class ModelRun:
    """One model's results over the tasks."""

    role: str
    encoder: Any
    scores: dict[str, float] = field(default_factory=dict)
    result_files: dict[str, str] = field(default_factory=dict)
    texts: int = 0
    seconds: float = 0.0

    @property
    def meta(self) -> Any:
        """The encoder's mteb ``ModelMeta``."""
        return self.encoder.mteb_model_meta

    @property
    def throughput(self) -> float | None:
        """Texts encoded per second over the whole run."""
        return self.texts / self.seconds if self.texts and self.seconds > 0 else None


def load_static_encoder(model: str | None, name: str | None = None, revision: str | None = None) -> Any:
    """The staticst model ``model`` (hub id or folder; None = built-in) behind mteb's encoder protocol."""
    from staticst import StaticSentenceTransformer

    adapter = _load_adapter()
    return adapter.StaticSTEncoder(model=StaticSentenceTransformer(model), name=name, revision=revision)


def _load_sentence_transformer(model: str, offline: bool) -> Any:
    """``SentenceTransformer(model, device="cpu")``, repairing a folder whose root config.json is not a
    transformers config (the shared all-MiniLM-L6-v2 copy holds the pooling settings there).

    The repair is the probe suite's (``eval/probes.py``): it checks the weight shapes are exactly
    all-MiniLM-L6-v2's and loads them with that model's upstream BERT config; anything else is an error.
    """
    from sentence_transformers import SentenceTransformer

    folder = Path(model)
    if folder.is_dir():
        probes = _load_sibling("probes.py", "staticst_eval_probes")
        if probes._needs_config_repair(folder):
            logger.warning(
                "%s is not a transformers config (no 'model_type'); loading the weights with the upstream "
                "all-MiniLM-L6-v2 config instead (weight shapes checked).",
                folder / "config.json",
            )
            with tempfile.TemporaryDirectory(prefix="staticst-mteb-baseline-") as tmp:
                return SentenceTransformer(str(probes._repaired_copy(folder, Path(tmp))), device="cpu")
    return SentenceTransformer(model, device="cpu", local_files_only=offline)


def load_st_encoder(
    model: str, name: str | None = None, revision: str | None = None, *, offline: bool = False
) -> Any:
    """``sentence_transformers.SentenceTransformer(model)`` on the CPU behind mteb's own wrapper (timed).

    With ``offline`` a hub id is only looked up in the local cache (``local_files_only``).
    """
    adapter = _load_adapter()
    st = _load_sentence_transformer(model, offline)
    if name is None and os.path.isdir(model):
        name = f"local/{Path(model).resolve().name}"
    return adapter.TimedSentenceTransformerWrapper(st, name=name, revision=revision)


def run_model(
    role: str, encoder: Any, tasks: Sequence[PreparedTask], output: Path, seed: int, batch_size: int
) -> ModelRun:
    """Evaluate ``encoder`` on every available task with ``mteb.evaluate``; write mteb's result JSON."""
    import mteb

    run = ModelRun(role=role, encoder=encoder)
    cache = mteb.ResultCache(output / "results" / role)
    for p in tasks:
        if p.task is None:
            continue
        before_texts, before_s = encoder.encode_stats.texts, encoder.encode_stats.seconds
        start = time.perf_counter()
        result = mteb.evaluate(
            encoder,
            p.fresh(seed),
            cache=cache,
            overwrite_strategy="always",
            show_progress_bar=False,
            co2_tracker=False,
            encode_kwargs=cast("EncodeKwargs", {"batch_size": batch_size, "show_progress_bar": False}),
        )
        task_result = result.task_results[0]
        run.scores[p.name] = float(task_result.get_score())
        run.result_files[p.name] = str(cache.get_task_result_path(p.name, encoder.mteb_model_meta))
        logger.info(
            "%s %s: %s=%.4f (%.1fs, %d texts in %.2fs encode)",
            role, p.name, p.metric, run.scores[p.name], time.perf_counter() - start,
            encoder.encode_stats.texts - before_texts, encoder.encode_stats.seconds - before_s,
        )  # fmt: skip
    run.texts, run.seconds = encoder.encode_stats.texts, encoder.encode_stats.seconds
    return run


# ------------------------------------------------------------------------------------------ reports


def _meta_dict(meta: Any) -> dict[str, Any]:
    keys = ("name", "revision", "embed_dim", "n_parameters", "max_tokens", "framework", "similarity_fn_name")
    out = {}
    for k in keys:
        v = getattr(meta, k)
        if isinstance(v, float) and math.isinf(v):
            v = "inf"
        out[k] = v if isinstance(v, (str, int, float, list, type(None))) else str(v)
    return out


def _paper_score(task: str) -> float | None:
    """The paper's Table 1 score for ``task`` on mteb's 0-1 scale (``PAPER_TABLE1`` holds percent)."""
    value = PAPER_TABLE1.get(task)
    return None if value is None else value / 100.0


def build_summary(
    tasks: Sequence[PreparedTask], runs: dict[str, ModelRun], settings: dict[str, Any], tolerance: float
) -> dict[str, Any]:
    """The ``summary.json`` document (scores on mteb's own 0-1 scale)."""
    summary: dict[str, Any] = {
        "scores": {role: {p.name: run.scores.get(p.name) for p in tasks} for role, run in runs.items()},
        "models": {
            role: {
                **_meta_dict(run.meta),
                "texts_encoded": run.texts,
                "encode_seconds": round(run.seconds, 4),
                "texts_per_second": run.throughput,
            }
            for role, run in runs.items()
        },  # fmt: skip
        "tasks": {
            p.name: {
                "category": p.category,
                "metric": p.metric,
                "status": "ok" if p.task is not None else "not run",
                "reason": None if p.task is not None else f"data unavailable ({p.unavailable})",
                "data_source": p.source or None,
                "paper_table1": _paper_score(p.name),
                "result_files": {role: run.result_files.get(p.name) for role, run in runs.items()},
            }
            for p in tasks
        },
        "settings": settings,
        "paper_note": PAPER_NOTE,
        "paper_aggregates": PAPER_AGGREGATES,
        "paper_urls": PAPER_URLS,
    }
    if "reference" in runs:
        parity = {}
        for p in tasks:
            a, b = runs["static"].scores.get(p.name), runs["reference"].scores.get(p.name)
            if a is not None and b is not None:
                parity[p.name] = {
                    "static": a,
                    "reference": b,
                    "abs_diff": abs(a - b),
                    "ok": abs(a - b) <= tolerance,
                }
        summary["parity"] = {
            "tolerance": tolerance,
            "tasks": parity,
            "ok": all(v["ok"] for v in parity.values()),
        }
    return summary


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def render_report(summary: dict[str, Any]) -> str:
    """``report.md``: the task table, throughput, parity and the tasks that did not run."""
    scores = summary["scores"]
    models = summary["models"]
    lines = ["# MTEB: static model vs baseline", ""]
    for role in ROLES:
        if role in models:
            m = models[role]
            lines.append(f"- **{role}**: `{m['name']}` (revision {m['revision']}, dim {m['embed_dim']}, "
                         f"{m['n_parameters']} parameters, framework {', '.join(m['framework'])})")  # fmt: skip
    lines += ["", "Scores are mteb main scores x 100.", ""]
    lines.append(
        "| task | category | metric | static model | baseline | paper (Table 1) | static/baseline % |"
    )
    lines.append("|---|---|---|---|---|---|---|")
    for name, t in summary["tasks"].items():
        cat = CATEGORY_LABELS.get(t["category"], t["category"])
        if t["status"] != "ok":
            lines.append(
                f"| {name} | {cat} | {t['metric']} | not run: {t['reason']} | | {_pct(t['paper_table1'])} | |"
            )
            continue
        s = scores["static"].get(name)
        b = scores.get("baseline", {}).get(name)
        ratio = f"{100 * s / b:.1f}" if (s is not None and b) else "n/a"
        lines.append(
            f"| {name} | {cat} | {t['metric']} | {_pct(s)} | {_pct(b)} | {_pct(t['paper_table1'])} | {ratio} |"
        )
    ran = [n for n, t in summary["tasks"].items() if t["status"] == "ok"]
    if ran:
        s_mean = sum(scores["static"][n] for n in ran) / len(ran)
        b_mean = sum(scores["baseline"][n] for n in ran) / len(ran) if "baseline" in scores else None
        ratio = f"{100 * s_mean / b_mean:.1f}" if b_mean else "n/a"
        paper = [summary["tasks"][n]["paper_table1"] for n in ran]
        # the paper's mean over the same tasks, only when it reports every one of them
        p_mean = sum(paper) / len(paper) if all(v is not None for v in paper) else None
        lines.append(
            f"| **mean of {len(ran)} tasks run** | | | {_pct(s_mean)} | {_pct(b_mean)} | {_pct(p_mean)} | {ratio} |"
        )
    lines += [
        "",
        f"Paper column: {summary['paper_note']}",
        "",
        "## Encode throughput (texts/s, during this run)",
        "",
    ]
    lines += ["| model | texts | encode seconds | texts/s |", "|---|---|---|---|"]
    for role in ROLES:
        if role in models:
            m = models[role]
            tps = "n/a" if m["texts_per_second"] is None else f"{m['texts_per_second']:.0f}"
            lines.append(
                f"| {role}: `{m['name']}` | {m['texts_encoded']} | {m['encode_seconds']:.2f} | {tps} |"
            )
    if "parity" in summary:
        par = summary["parity"]
        lines += [
            "",
            f"## Parity: staticst vs sentence-transformers reference (tolerance {par['tolerance']})",
            "",
        ]
        lines += ["| task | staticst | sentence-transformers | abs diff | ok |", "|---|---|---|---|---|"]
        for name, v in par["tasks"].items():
            lines.append(
                f"| {name} | {v['static']:.6f} | {v['reference']:.6f} | {v['abs_diff']:.2e} | {'yes' if v['ok'] else 'NO'} |"
            )
        lines.append("")
        lines.append("All tasks within tolerance." if par["ok"] else "**PARITY MISS** on at least one task.")
    lines.append("")
    return "\n".join(lines)


def render_plot(summary: dict[str, Any], path: Path) -> None:
    """``report.png``: main score per task (bars per model) and mean score vs encode throughput."""
    from matplotlib.figure import Figure

    scores = summary["scores"]
    models = summary["models"]
    ran = [n for n, t in summary["tasks"].items() if t["status"] == "ok"]
    roles = [r for r in ("static", "baseline") if r in scores]
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1.6, 1])
    width = 0.8 / max(len(roles), 1)
    for i, role in enumerate(roles):
        xs = [j + (i - (len(roles) - 1) / 2) * width for j in range(len(ran))]
        ax1.bar(xs, [100 * scores[role][n] for n in ran], width, label=f"{role}: {models[role]['name']}")
    ax1.set_xticks(range(len(ran)), ran, rotation=25, ha="right")
    ax1.set_ylabel("mteb main score x 100")
    ax1.set_title("Quality per task")
    ax1.legend(fontsize=8)
    point_labels = {
        "static": "staticst",
        "baseline": "baseline",
        "reference": "sentence-transformers (same model)",
    }
    for role in [r for r in ROLES if r in scores]:  # the reference: same quality, sentence-transformers speed
        tps = models[role]["texts_per_second"]
        if tps and ran:
            mean = 100 * sum(scores[role][n] for n in ran) / len(ran)
            ax2.scatter([tps], [mean], s=60, label=f"{point_labels[role]}: {models[role]['name']}")
    ax2.legend(fontsize=7, loc="upper right")
    ax2.set_xscale("log")
    ax2.set_xlabel("encode throughput (texts/s, log scale)")
    ax2.set_ylabel(f"mean main score over {len(ran)} tasks")
    ax2.set_title("Quality vs encode speed")
    ax2.margins(x=0.5, y=0.3)
    fig.savefig(path, dpi=110)


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments."""
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", required=True, help="static model for staticst: hub id or folder")
    ap.add_argument(
        "--tasks", nargs="+", default=list(DEFAULT_TASKS), help="mteb task names (default: the 8 paper tasks)"
    )
    ap.add_argument("--data-dir", type=Path, default=None, help="local MTEB data, one folder per hub dataset")
    ap.add_argument(
        "--baseline", default=None, help="sentence-transformers model to compare with (torch, CPU)"
    )
    ap.add_argument(
        "--reference",
        action="store_true",
        help="also run --model through sentence-transformers and check parity",
    )
    ap.add_argument(
        "--parity-tolerance", type=float, default=0.01, help="max |score diff| (mteb 0-1 scale), default 0.01"
    )
    ap.add_argument("--output", type=Path, required=True, help="output folder")
    ap.add_argument("--offline", action="store_true", help="never try the Hugging Face Hub")
    ap.add_argument(
        "--seed", type=int, default=42, help="task seed (mteb's default 42), identical for every model"
    )
    ap.add_argument(
        "--batch-size", type=int, default=32, help="encode batch size passed by mteb (default 32)"
    )
    ap.add_argument(
        "--model-name", default=None, help="name recorded in ModelMeta for --model (default: derived)"
    )
    ap.add_argument("--model-revision", default=None, help="revision recorded in ModelMeta for --model")
    ap.add_argument("--no-plot", action="store_true", help="skip report.png")
    args = ap.parse_args(argv)
    if args.data_dir is not None and not args.data_dir.is_dir():
        ap.error(
            f"--data-dir {str(args.data_dir)!r} is not a folder; pass the folder holding banking77/, scifact/, ..."
        )
    if args.parity_tolerance < 0:
        ap.error(f"--parity-tolerance must be >= 0, got {args.parity_tolerance}")
    if args.batch_size < 1:
        ap.error(f"--batch-size must be >= 1, got {args.batch_size}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the harness for parsed arguments and write every output; returns the summary."""
    import mteb

    tasks = prepare_tasks(args.tasks, args.data_dir, args.offline, args.seed)
    for p in tasks:
        if p.unavailable:
            logger.warning("%s: not run: data unavailable (%s)", p.name, p.unavailable)
    args.output.mkdir(parents=True, exist_ok=True)
    runs: dict[str, ModelRun] = {}
    static = load_static_encoder(args.model, args.model_name, args.model_revision)
    runs["static"] = run_model("static", static, tasks, args.output, args.seed, args.batch_size)
    if args.baseline:
        runs["baseline"] = run_model(
            "baseline",
            load_st_encoder(args.baseline, offline=args.offline),
            tasks,
            args.output,
            args.seed,
            args.batch_size,
        )
    if args.reference:
        # the very files staticst loaded (a hub id may resolve to a cache snapshot or the built-in copy)
        path = static.model.info().get("path")
        source = str(path) if path and Path(path).is_dir() else args.model
        meta = static.mteb_model_meta
        ref = load_st_encoder(source, meta.name, meta.revision, offline=args.offline)
        runs["reference"] = run_model("reference", ref, tasks, args.output, args.seed, args.batch_size)
    settings = {
        "seed": args.seed,
        "batch_size": args.batch_size,
        "mteb_version": mteb.__version__,
        "data_dir": str(args.data_dir) if args.data_dir else None,
        "model": args.model,
        "baseline": args.baseline,
    }
    summary = build_summary(tasks, runs, settings, args.parity_tolerance)
    (args.output / "summary.json").write_text(
        json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8"
    )
    (args.output / "report.md").write_text(render_report(summary), encoding="utf-8")
    if not args.no_plot:
        render_plot(summary, args.output / "report.png")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns 1 on a parity miss with ``--reference``, 2 on bad arguments."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        summary = run(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print((args.output / "report.md").read_text(encoding="utf-8"))
    if "parity" in summary and not summary["parity"]["ok"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

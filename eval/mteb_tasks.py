"""MTEB harness: what a static model keeps and what it gives up, in numbers, through the real mteb.

Runs a staticst model (and optionally a sentence-transformers baseline, and the sentence-transformers
reference implementation of the same static model) on MTEB tasks with mteb's own evaluators, and writes:

- mteb's result JSON per task and model (``<output>/results/<role>/results/<model>/<revision>/<task>.json``,
  mteb's ``ResultCache`` layout, with ``model_meta.json`` beside it),
- ``summary.json``: task -> main score per model, plus the reason for every task that did not run,
- ``report.md``: task | category | metric | static | baseline | paper | static/baseline %, encode throughput, the
  parity table when ``--reference`` is given, our models beside the paper's Table 1 (MTEB by category) and the
  paper's Table 10 pairs run through our models,
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

The harness's code is in the modules beside this file: ``_mteb_data.py`` (task data, local or hub),
``_adapter.py`` (the mteb encoders), ``_mteb_models.py`` (loading the models, running one over the tasks) and
``_mteb_report.py`` (``report.md``, ``report.png``), ``_paper.py`` (the paper's tables, read from
``shared/paper/swiftembed-tables.json``: no paper number is written in the code). This file holds the
``summary.json`` document and the command line.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# The harness's modules live beside this file: on sys.path when it is run as a script, added here when it is
# loaded by path (tests, notebooks/evaluation.ipynb).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _mteb_data import (
    HUB_CHECK_TIMEOUT_S,
    DataUnavailable,
    PreparedTask,
    UsageError,
    hub_status,
    load_local,
    local_folder,
    new_task,
    prepare_tasks,
)
from _mteb_models import ModelRun, load_st_encoder, load_static_encoder, run_model
from _mteb_report import CATEGORY_LABELS, ROLES, render_plot, render_report
from _paper import (
    PaperDataError,
    PaperTables,
    category_scores,
    cosine_pairs,
    default_tables_path,
    load_paper_tables,
    same_tokens,
)

if TYPE_CHECKING:
    from mteb.models import ModelMeta

__all__ = [
    "CATEGORY_LABELS",
    "DEFAULT_TASKS",
    "HUB_CHECK_TIMEOUT_S",
    "REPO",
    "ROLES",
    "DataUnavailable",
    "ModelRun",
    "PaperDataError",
    "PaperTables",
    "PreparedTask",
    "UsageError",
    "build_summary",
    "hub_status",
    "load_local",
    "load_paper_tables",
    "load_static_encoder",
    "load_st_encoder",
    "local_folder",
    "main",
    "new_task",
    "paper_summary",
    "parse_args",
    "prepare_tasks",
    "render_plot",
    "render_report",
    "run",
    "run_model",
    "score_paper_pairs",
]

logger = logging.getLogger("staticst.eval.mteb")

REPO = Path(__file__).resolve().parent.parent

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
"""The 8 representative tasks of the SwiftEmbed paper (arXiv 2510.24793) as listed in this project's issue. The paper
does not say which tasks make up its Table 1 categories; the per-task figures its text gives (Banking77, Emotion,
SprintDuplicateQuestions, ArguAna; in ``shared/paper/swiftembed-tables.json``) are all in this list. ``--tasks`` runs
any other selection."""


# ------------------------------------------------------------------------------------------ summary


def _meta_dict(meta: ModelMeta) -> dict[str, Any]:
    keys = ("name", "revision", "embed_dim", "n_parameters", "max_tokens", "framework", "similarity_fn_name")
    out = {}
    for k in keys:
        v = getattr(meta, k)
        if isinstance(v, float) and math.isinf(v):
            v = "inf"
        out[k] = v if isinstance(v, (str, int, float, list, type(None))) else str(v)
    return out


def _paper_task(paper: PaperTables | None, task: str) -> float | None:
    """The paper's figure for ``task`` on mteb's 0-1 scale (the paper prints percent), or None."""
    value = None if paper is None else paper.task_figure(task)
    return None if value is None else value / 100.0


def paper_summary(
    paper: PaperTables | None,
    tasks: dict[str, dict[str, Any]],
    scores: dict[str, dict[str, float | None]],
    pairs: dict[str, Any] | None,
    note: str,
) -> dict[str, Any]:
    """The ``paper`` part of ``summary.json``: the paper's tables (as read), our scores per Table 1 category and the
    Table 10 pairs with our similarities. ``note`` says why there is no paper data when ``paper`` is None."""
    if paper is None:
        return {"available": False, "note": note}
    return {
        "available": True,
        "path": str(paper.path),
        "source": paper.source,
        "table1": paper.table1,
        "table2_mteb": paper.table2_mteb,
        "text_mentions": paper.text_mentions,
        "ours_by_category": {role: category_scores(tasks, s) for role, s in scores.items()},
        "table10": pairs or {"pairs": [asdict(p) for p in paper.pairs], "ours": {}, "same_tokens_static": None},
    }


def build_summary(
    tasks: Sequence[PreparedTask],
    runs: dict[str, ModelRun],
    settings: dict[str, Any],
    tolerance: float,
    paper: PaperTables | None = None,
    pairs: dict[str, Any] | None = None,
    paper_note: str = "no paper tables given",
) -> dict[str, Any]:
    """The ``summary.json`` document (scores on mteb's own 0-1 scale; paper figures in percent, as printed).

    Args:
        tasks: The prepared tasks.
        runs: role -> the model's results.
        settings: The run's settings (recorded as they are).
        tolerance: The parity tolerance.
        paper: The paper's tables, or None when they could not be read (``paper_note`` says why).
        pairs: The Table 10 pairs with our similarities (see :func:`score_paper_pairs`).
        paper_note: Why ``paper`` is None.
    """
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
                "paper": _paper_task(paper, p.name),
                "result_files": {role: run.result_files.get(p.name) for role, run in runs.items()},
            }
            for p in tasks
        },
        "settings": settings,
    }
    summary["paper"] = paper_summary(paper, summary["tasks"], summary["scores"], pairs, paper_note)
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


def score_paper_pairs(paper: PaperTables, runs: dict[str, ModelRun]) -> dict[str, Any]:
    """The paper's Table 10 pairs through every model run (cosine of its own vectors) and the static tokens check."""
    def encoder(model: Any) -> Callable[[list[str]], np.ndarray]:
        return lambda texts: np.asarray(model.encode(texts, show_progress_bar=False))

    ours = {role: cosine_pairs(encoder(run.encoder.model), paper.pairs) for role, run in runs.items()}
    static_model = runs["static"].encoder.model
    return {
        "pairs": [asdict(p) for p in paper.pairs],
        "ours": ours,
        "same_tokens_static": same_tokens(static_model.tokenize, paper.pairs),
    }


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
    ap.add_argument(
        "--family",
        choices=["sentence-transformers", "model2vec"],
        default=None,
        help="the reference whose rules staticst applies (default sentence-transformers'; model2vec reproduces its published scores)",
    )
    ap.add_argument(
        "--paper-tables",
        type=Path,
        default=None,
        help="the paper's tables as data (default: shared/paper/swiftembed-tables.json via STATICST_SHARED_DIR "
        "or the shared/ folder beside the repository)",
    )
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


def _paper_tables(path: Path | None) -> tuple[PaperTables | None, str]:
    """The paper's tables, or None and why (the file does not exist).

    Raises:
        UsageError: The file exists but is not the expected JSON.
    """
    path = path or default_tables_path(REPO)
    if not path.is_file():
        logger.warning("paper columns left empty: no paper tables at %s", path)
        return None, f"no paper tables at {path}"
    try:
        return load_paper_tables(path), ""
    except PaperDataError as e:
        raise UsageError(f"--paper-tables: {e}") from e


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the harness for parsed arguments and write every output; returns the summary."""
    import mteb

    paper, paper_note = _paper_tables(args.paper_tables)
    tasks = prepare_tasks(args.tasks, args.data_dir, args.offline, args.seed)
    for p in tasks:
        if p.unavailable:
            logger.warning("%s: not run: data unavailable (%s)", p.name, p.unavailable)
    args.output.mkdir(parents=True, exist_ok=True)
    runs: dict[str, ModelRun] = {}
    static = load_static_encoder(args.model, args.model_name, args.model_revision, family=args.family)
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
    pairs = score_paper_pairs(paper, runs) if paper is not None else None
    settings = {
        "seed": args.seed,
        "batch_size": args.batch_size,
        "mteb_version": mteb.__version__,
        "data_dir": str(args.data_dir) if args.data_dir else None,
        "model": args.model,
        "baseline": args.baseline,
    }
    summary = build_summary(tasks, runs, settings, args.parity_tolerance, paper, pairs, paper_note)
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

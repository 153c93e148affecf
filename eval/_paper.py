"""The SwiftEmbed paper's tables as data: read ``shared/paper/swiftembed-tables.json`` and put our numbers beside them.

The file (see ``shared/README.md``) transcribes the tables of the SwiftEmbed paper (arXiv 2510.24793): Table 1
(MTEB by category for eight models, plus the per-task figures its text mentions), Table 2 (size, latency,
throughput, memory, MTEB), Tables 5, 8 and 11, the failure-category shares and the five Table 10 pairs with the
similarities the paper reports for BERT and for its static model. Every paper number the harnesses show is read from
that file here; none is written in the code.

Both harnesses use this module: ``eval/mteb_tasks.py`` (Table 1 by category and Table 10 in ``report.md``) and
``eval/probes.py`` (Table 10 in ``probes.md``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TABLES_FILE = Path("paper") / "swiftembed-tables.json"
"""Where the tables live inside the shared/ folder."""

PAPER_ID = "SwiftEmbed, arXiv 2510.24793"

TABLE1_CATEGORIES: dict[str, tuple[str, str]] = {
    "classification_acc": ("Classification", "accuracy"),
    "clustering_v_measure": ("Clustering", "V-measure"),
    "retrieval_ndcg10": ("Retrieval", "nDCG@10"),
    "sts_spearman": ("STS", "Spearman"),
    "pair_classification_ap": ("PairClassification", "AP"),
}
"""Table 1's columns -> (mteb task type, metric). mteb's task types are what the harness groups its tasks by."""

STATIC_ROW = "SwiftEmbed (potion-base-8M)"
"""The paper's own static system in Table 1 (built on potion-base-8M, the model the harness runs by default)."""


class PaperDataError(ValueError):
    """The paper tables file is missing or does not have the expected structure; the message says which part."""


@dataclass(frozen=True)
class PaperPair:
    """One Table 10 pair with the similarities the paper reports."""

    id: str
    text_a: str
    text_b: str
    paper_bert: float
    paper_static: float
    type: str = ""
    note: str = ""


@dataclass(frozen=True)
class PaperTables:
    """The parts of the paper's tables the harnesses show (all numbers as printed: percent, similarities 0-1)."""

    path: Path
    source: str
    table1: dict[str, dict[str, float]]
    """Table 1: model -> mteb task type (``Classification``, ...) -> score in percent."""
    text_mentions: dict[str, float]
    """Per-task and average figures the paper's text gives (``Banking77Classification_acc`` -> 72.7, ...)."""
    table2_mteb: dict[str, float]
    """Table 2's MTEB column: model -> score."""
    pairs: list[PaperPair]
    failure_shares: dict[str, float] = field(default_factory=dict)

    def task_figure(self, task: str, *, bert: bool = False) -> float | None:
        """The paper's figure for one mteb task (its static system, or ``bert=True`` for its BERT baseline).

        Keys in the text mentions are ``<task>_<metric>`` and ``<task>_<metric>_bert``.
        """
        for key, value in self.text_mentions.items():
            if key.startswith(f"{task}_") and key.endswith("_bert") == bert:
                return value
        return None


def default_tables_path(repo: Path) -> Path:
    """``$STATICST_SHARED_DIR/paper/swiftembed-tables.json``, else the shared/ folder beside the repository."""
    shared = os.environ.get("STATICST_SHARED_DIR")
    return (Path(shared) if shared else repo.parent / "shared") / TABLES_FILE


def _numbers(where: str, values: Any, n: int | None = None) -> list[float]:
    if not isinstance(values, list) or (n is not None and len(values) != n):
        raise PaperDataError(f"{where}: expected a list of {n} numbers, got {values!r}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise PaperDataError(f"{where}: expected numbers, got {values!r}")
    return [float(v) for v in values]


def load_paper_tables(path: str | Path) -> PaperTables:
    """Read and check the paper tables file.

    Args:
        path: ``swiftembed-tables.json``.

    Returns:
        The tables.

    Raises:
        PaperDataError: The file is missing, not JSON, or a table has an unexpected shape.
    """
    path = Path(path)
    if not path.is_file():
        raise PaperDataError(f"no paper tables at {path} (expected shared/{TABLES_FILE.as_posix()})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise PaperDataError(f"{path} is not valid JSON ({e.msg})") from e
    try:
        t1 = data["table1_mteb_by_category"]
        columns = t1["columns"]
        unknown = [c for c in columns if c not in TABLE1_CATEGORIES]
        if unknown:
            raise PaperDataError(f"{path}: Table 1 has unknown column(s) {unknown}")
        cats = [TABLE1_CATEGORIES[c][0] for c in columns]
        table1 = {
            model: dict(zip(cats, _numbers(f"Table 1 {model}", row, len(columns)), strict=True))
            for model, row in t1["rows"].items()
        }
        t2 = data["table2_performance"]
        mteb_col = t2["columns"].index("mteb")
        table2_mteb = {m: _numbers(f"Table 2 {m}", row)[mteb_col] for m, row in t2["rows"].items()}
        pairs = []
        for i, p in enumerate(data["table10_pairs"], 1):
            bert, static = _numbers(f"Table 10 pair {i}", [p["bert"], p["static"]])
            if not (-1.0 <= bert <= 1.0 and -1.0 <= static <= 1.0):
                raise PaperDataError(f"{path}: Table 10 pair {i} similarities outside [-1, 1]: {bert}, {static}")
            pairs.append(
                PaperPair(f"t10-{i}", str(p["a"]), str(p["b"]), bert, static, p.get("type", ""), p.get("note", ""))
            )
        mentions = {k: float(v) for k, v in t1.get("text_mentions", {}).items()}
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, PaperDataError):
            raise
        raise PaperDataError(f"{path}: unexpected structure ({type(e).__name__}: {e})") from e
    if STATIC_ROW not in table1:
        raise PaperDataError(f"{path}: Table 1 has no row {STATIC_ROW!r} (rows: {sorted(table1)})")
    return PaperTables(
        path=path,
        source=str(data.get("source", PAPER_ID)),
        table1=table1,
        text_mentions=mentions,
        table2_mteb=table2_mteb,
        pairs=pairs,
        failure_shares={k: float(v) for k, v in data.get("failure_analysis_share", {}).items()},
    )


# ----------------------------------------------------------------------------------------------- Table 10 pairs


def cosine_pairs(encode: Callable[[list[str]], np.ndarray], pairs: Sequence[PaperPair]) -> list[float]:
    """Cosine similarity of each pair under one model (float64 arithmetic on its vectors).

    Raises:
        ValueError: The model gave an all-zero vector for a text (cosine undefined).
    """
    if not pairs:
        return []
    texts = list(dict.fromkeys(t for p in pairs for t in (p.text_a, p.text_b)))
    emb = np.asarray(encode(texts), dtype=np.float64)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"all-zero embedding for {[t for t, n in zip(texts, norms[:, 0], strict=True) if n == 0]}")
    vec = dict(zip(texts, emb / norms, strict=True))
    return [float(vec[p.text_a] @ vec[p.text_b]) for p in pairs]


def same_tokens(tokenize: Callable[[list[str]], dict[str, np.ndarray]], pairs: Sequence[PaperPair]) -> list[bool]:
    """Whether the static model turns both texts of a pair into the same multiset of tokens.

    Mean pooling ignores order, so such a pair gets two identical vectors: cosine 1 up to float rounding.
    """
    out = []
    for p in pairs:
        tok = tokenize([p.text_a, p.text_b])
        ids, offsets = tok["input_ids"], tok["offsets"]
        a, b = ids[offsets[0] : offsets[1]], ids[offsets[1] :]
        out.append(sorted(a.tolist()) == sorted(b.tolist()))
    return out


def pairs_section(
    pairs: Sequence[PaperPair], columns: dict[str, list[float]], static_same: list[bool] | None
) -> list[str]:
    """Markdown lines: each Table 10 pair, the paper's two similarities, and each model's own cosine."""
    head = ["pair", "type", "text a", "text b", "paper BERT", "paper static", *[f"{c} (ours)" for c in columns]]
    if static_same is not None:
        head.append("same tokens (static)")
    numeric = len(head) - 4 - (static_same is not None)
    sep = ["---"] * 4 + ["---:"] * numeric + (["---"] if static_same is not None else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(sep) + "|"]
    for i, p in enumerate(pairs):
        row = [p.id, p.type, p.text_a, p.text_b, f"{p.paper_bert:.2f}", f"{p.paper_static:.2f}"]
        row += [f"{sims[i]:.4f}" for sims in columns.values()]
        if static_same is not None:
            row.append("yes" if static_same[i] else "no")
        lines.append("| " + " | ".join(row) + " |")
    notes = [p for p in pairs if p.note]
    for p in notes:
        lines.append(f"\n{p.id}: {p.note}; the two strings are run as printed.")
    if static_same is not None:
        for i, p in enumerate(pairs):
            if static_same[i]:
                first = next(iter(columns.values()))[i]
                lines.append(
                    f"\n{p.id}: both texts are the same tokens in another order, so a mean-pooled static model gives "
                    f"them the same vector: cosine {first:.6f} here (|1 - cos| = {abs(1 - first):.1e}, float "
                    f"rounding). The paper's static {p.paper_static:.2f} cannot come from mean pooling of token vectors."
                )
    return lines


# ------------------------------------------------------------------------------------------ Table 1 by category


def category_scores(tasks: dict[str, dict[str, Any]], scores: dict[str, float | None]) -> dict[str, float]:
    """Mean main score (0-1) per mteb task type over the tasks that ran, e.g. ``{"STS": 0.70, ...}``."""
    groups: dict[str, list[float]] = {}
    for name, task in tasks.items():
        value = scores.get(name)
        if value is not None:
            groups.setdefault(task["category"], []).append(value)
    return {cat: sum(v) / len(v) for cat, v in groups.items()}


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def table1_section(
    paper: PaperTables, tasks: dict[str, dict[str, Any]], ours: dict[str, dict[str, float]], labels: dict[str, str]
) -> list[str]:
    """Markdown lines: our models beside every row of the paper's Table 1, per category, and what the data shows.

    Args:
        paper: The tables.
        tasks: ``summary["tasks"]`` (category, status, ...).
        ours: role -> category -> mean score on mteb's 0-1 scale (from :func:`category_scores`).
        labels: role -> the model's name to show.
    """
    cats = list(TABLE1_CATEGORIES.values())
    shared = [c for c, _ in cats if any(c in values for values in ours.values())]
    lines = [
        "The paper does not say which tasks make up each category. Ours are the mean main score (x 100) of the tasks "
        "run here in that category:",
        "",
    ]
    for cat, metric in cats:
        run = [n for n, t in tasks.items() if t["category"] == cat and t["status"] == "ok"]
        missing = [n for n, t in tasks.items() if t["category"] == cat and t["status"] != "ok"]
        what = ", ".join(run) if run else "none run"
        if missing:
            what += f" (not run: {', '.join(missing)})"
        lines.append(f"- {cat} ({metric}): {what}")
    mean_ours_head = f"mean of {', '.join(shared)}" if shared else "mean of ours"
    head = ["model", "source", *[f"{c} ({m})" for c, m in cats], "mean of the 5", mean_ours_head, "Table 2 MTEB"]
    lines += ["", "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]

    def row(label: str, source: str, values: dict[str, float], t2: float | None, digits: int) -> str:
        full = [values.get(c) for c, _ in cats]
        mean5 = sum(v for v in full if v is not None) / len(full) if all(v is not None for v in full) else None
        part = [values[c] for c in shared if c in values]
        mean_ours = sum(part) / len(part) if shared and len(part) == len(shared) else None
        cells = [label, source, *[_fmt(v, digits) for v in full], _fmt(mean5), _fmt(mean_ours), _fmt(t2, 1)]
        return "| " + " | ".join(cells) + " |"

    for role, values in ours.items():
        pct = {c: 100 * v for c, v in values.items()}
        lines.append(row(f"**{labels.get(role, role)}**", f"ours ({role})", pct, None, 2))
    for model, values in paper.table1.items():
        lines.append(row(model, "paper", values, paper.table2_mteb.get(model.split(" (")[0]), 1))
    lines += ["", *checks_section(paper, tasks)]
    return lines


def checks_section(paper: PaperTables, tasks: dict[str, dict[str, Any]]) -> list[str]:
    """What the paper's own numbers say about each other (computed from the file, not asserted)."""
    bert_row = "Sentence-BERT" if "Sentence-BERT" in paper.table1 else None
    lines = ["The paper's numbers against each other (per-task figures of the tasks in this run):", ""]
    head = "| category | per-task figures in the paper's text (static) | their mean | Table 1, SwiftEmbed |"
    if bert_row:
        head += " per-task figures (BERT) | Table 1, Sentence-BERT |"
    lines += [head, "|---|---|---:|---:|" + ("---|---:|" if bert_row else "")]
    for cat, metric in TABLE1_CATEGORIES.values():
        names = [n for n, t in tasks.items() if t["category"] == cat]
        given = {n: v for n in names if (v := paper.task_figure(n)) is not None}
        mean = sum(given.values()) / len(given) if given else None
        listed = ", ".join(f"{n} {v:g}" for n, v in given.items()) or "none"
        row = f"| {cat} ({metric}) | {listed} | {_fmt(mean)} | {_fmt(paper.table1[STATIC_ROW][cat], 1)} |"
        if bert_row:
            bert = {n: v for n in names if (v := paper.task_figure(n, bert=True)) is not None}
            row += f" {', '.join(f'{n} {v:g}' for n, v in bert.items()) or 'none'} | {_fmt(paper.table1[bert_row][cat], 1)} |"
        lines.append(row)
    task_keys = {k for k in paper.text_mentions if any(k.startswith(f"{n}_") for n in tasks)}
    other = {k: v for k, v in paper.text_mentions.items() if k not in task_keys}
    if other:
        lines += ["", "Other figures in the paper's text: " + ", ".join(f"`{k}` {v:g}" for k, v in other.items()) + "."]
    lines.append("")
    for model, values in paper.table1.items():
        t2 = paper.table2_mteb.get(model.split(" (")[0])
        if t2 is not None:
            mean = sum(values.values()) / len(values)
            lines.append(f"- {model}: mean of its five Table 1 categories {mean:.2f}, Table 2 MTEB {t2:g}.")
    static_t2 = paper.table2_mteb.get(STATIC_ROW.split(" (")[0])
    bert_t2 = paper.table2_mteb.get("Sentence-BERT")
    if static_t2 and bert_t2:
        lines.append(f"- SwiftEmbed / Sentence-BERT on Table 2's MTEB column: {100 * static_t2 / bert_t2:.1f}%.")
    return lines

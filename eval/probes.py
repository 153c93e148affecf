"""Failure probes: where does a static embedding model stop understanding the text?

Each probe is a hand-written triplet ``(anchor, positive, negative)`` from ``eval/probes/*.jsonl``.
A model that understands the text ranks the positive above the negative; the negative is built to
share at least as many words with the anchor as the positive does, so word overlap alone points the
wrong way. Per triplet::

    margin  = cos(anchor, positive) - cos(anchor, negative)
    correct = margin > 0

The report gives per-category accuracy and mean margin for the static model (loaded through
``staticst``) and, with ``--baseline``, a contextual model loaded through sentence-transformers
(torch, CPU), side by side.

Usage::

    python eval/probes.py --model ../shared/models/potion-base-8M \\
        --baseline ../shared/models/all-MiniLM-L6-v2 --output results/probes

Outputs in ``--output``: ``probes.json`` (everything, per probe), ``probes.md`` (tables) and
``probes.png`` (grouped bar chart per category, both models).

The five sentence pairs of Table 10 of the SwiftEmbed paper (arXiv 2510.24793), with the similarities the paper
reports for BERT and for its static model, are read from the paper tables file
(``shared/paper/swiftembed-tables.json``, ``--paper-tables``); a pairs section puts our similarities next to the
paper's, and says which pairs the static model sees as the same tokens.

The suite's code is in the modules beside this file: ``_probe_data.py`` (reading and validating the probe
files), ``_probe_scoring.py`` (margins, accuracy, pair similarities), ``_probe_report.py`` (``probes.md``,
``probes.png``) and ``_paper.py`` (the paper's tables, shared with the MTEB harness). This file loads the two models and holds the command line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

# The suite's modules live beside this file: on sys.path when it is run as a script, added here when it is
# loaded by path (tests, notebooks/evaluation.ipynb).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from _paper import PaperDataError, PaperPair, default_tables_path, load_paper_tables, same_tokens
from _probe_data import (
    CATEGORIES,
    CATEGORY_LABELS,
    DEFAULT_PROBES_DIR,
    PROBE_FIELDS,
    Probe,
    ProbeDataError,
    load_probes,
)
from _probe_report import plot_report, render_markdown
from _probe_scoring import CategorySummary, Encoder, ProbeScore, evaluate, score_pairs, score_probes, summarize

__all__ = [
    "CATEGORIES",
    "CATEGORY_LABELS",
    "DEFAULT_PROBES_DIR",
    "PROBE_FIELDS",
    "REPO",
    "CategorySummary",
    "Encoder",
    "PaperDataError",
    "PaperPair",
    "Probe",
    "ProbeDataError",
    "ProbeScore",
    "baseline_encoder",
    "evaluate",
    "load_paper_pairs",
    "load_probes",
    "main",
    "plot_report",
    "render_markdown",
    "run",
    "score_pairs",
    "score_probes",
    "static_encoder",
    "summarize",
]


REPO = Path(__file__).resolve().parent.parent


def load_paper_pairs(paper_tables: str | Path | None = None) -> tuple[list[PaperPair], str]:
    """The paper's Table 10 pairs from the paper tables file.

    Args:
        paper_tables: ``swiftembed-tables.json``; default: the shared/ folder's (``STATICST_SHARED_DIR`` or
            beside the repository).

    Returns:
        ``(pairs, note)``: the pairs and an empty note, or, when the file does not exist, no pairs and a note
        naming the path looked at.

    Raises:
        PaperDataError: The file exists but is not the expected JSON.
    """
    path = Path(paper_tables) if paper_tables is not None else default_tables_path(REPO)
    if not path.is_file():
        return [], f"no paper tables at {path}"
    return load_paper_tables(path).pairs, ""


def static_encoder(model: str | None) -> tuple[Encoder, dict[str, Any]]:
    """Load a static model through staticst.

    Args:
        model: A local path or hub id that staticst resolves; ``None`` for the built-in potion-base-8M.

    Returns:
        The batch encoder and a description of the model (``StaticSentenceTransformer.info()``).
    """
    try:
        from staticst import StaticSentenceTransformer
    except ImportError as exc:
        raise RuntimeError(
            f"cannot import staticst ({exc}); install it from the repository root: pip install -e ."
        ) from exc

    st = StaticSentenceTransformer(model)

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(st.encode(texts, batch_size=256, show_progress_bar=False))

    info = dict(st.info())
    info["library"] = "staticst"
    return encode, info


def baseline_encoder(model: str) -> tuple[Encoder, dict[str, Any]]:
    """Load a contextual baseline through sentence-transformers on CPU (imports torch).

    Args:
        model: A local path (e.g. ``../shared/models/all-MiniLM-L6-v2``) or a cached hub id.

    Returns:
        The batch encoder and a description of the model.

    Raises:
        RuntimeError: If sentence-transformers is not installed.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "--baseline needs sentence-transformers and torch: pip install 'staticst[eval]' "
            "(and `pip install torch==2.13.0` first on CPU-only machines)"
        ) from exc
    st = SentenceTransformer(model, device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(st.encode(texts, batch_size=64, show_progress_bar=False, convert_to_numpy=True))

    info = {
        "model": model,
        "library": "sentence-transformers",
        "dim": st.get_embedding_dimension()
        if hasattr(st, "get_embedding_dimension")
        else st.get_sentence_embedding_dimension(),
    }
    return encode, info


def run(
    model: str | None,
    baseline: str | None,
    output: str | Path,
    probes_dir: str | Path = DEFAULT_PROBES_DIR,
    paper_tables: str | Path | None = None,
) -> dict[str, Any]:
    """Score the static model (and the baseline) and write probes.json, probes.md and probes.png.

    Args:
        model: Static model path or hub id for staticst; ``None`` for the built-in potion-base-8M.
        baseline: Optional contextual model for sentence-transformers (e.g. all-MiniLM-L6-v2).
        output: Output folder (created if needed).
        probes_dir: Folder holding the probe files.
        paper_tables: The paper tables file (default: shared/'s); without it the report has no paper pairs.

    Returns:
        The report (as written to ``probes.json``).

    Raises:
        ValueError: If ``output`` exists and is not a folder.
        ProbeDataError: If the probe files are invalid.
    """
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {str(out)!r} exists and is not a folder; pass a folder path")
    probes = load_probes(probes_dir)
    pairs, pairs_note = load_paper_pairs(paper_tables)
    results = [evaluate("static", *static_encoder(model), probes, pairs)]
    if baseline is not None:
        results.append(evaluate("baseline", *baseline_encoder(baseline), probes, pairs))
    report: dict[str, Any] = {
        "n_probes": len(probes),
        "categories": {c: sum(p.category == c for p in probes) for c in CATEGORIES},
        "scoring": "margin = cos(anchor, positive) - cos(anchor, negative); correct if margin > 0",
        "probes": [asdict(p) for p in probes],
        "paper_pairs": [asdict(p) for p in pairs],
        "paper_pairs_note": pairs_note,
        "paper_pairs_same_tokens_static": _same_tokens(model, pairs),
        "results": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "probes.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "probes.md").write_text(render_markdown(report), encoding="utf-8")
    plot_report(report, out / "probes.png")
    return report


def _same_tokens(model: str | None, pairs: list[PaperPair]) -> list[bool] | None:
    """For each pair, whether the static model reads both texts as the same tokens (then cosine is 1)."""
    if not pairs:
        return None
    from staticst import StaticSentenceTransformer

    return same_tokens(StaticSentenceTransformer(model).tokenize, pairs)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors reported as one line on stderr (bad paths, bad data, missing extras) instead of a traceback."""
    errors: tuple[type[BaseException], ...] = (
        ProbeDataError, PaperDataError, ValueError, OSError, RuntimeError, ImportError,
    )  # fmt: skip
    try:
        from staticst import StaticSTError
    except ImportError:  # pragma: no cover - staticst is this project's own package
        return errors
    return (*errors, StaticSTError)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--model",
        default=None,
        help="static model path or hub id (staticst); default: built-in potion-base-8M",
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="contextual baseline for sentence-transformers, e.g. ../shared/models/all-MiniLM-L6-v2",
    )
    parser.add_argument(
        "--output", required=True, help="output folder for probes.json, probes.md and probes.png"
    )
    parser.add_argument(
        "--probes-dir", default=str(DEFAULT_PROBES_DIR), help="folder holding the probe *.jsonl files"
    )
    parser.add_argument(
        "--paper-tables",
        default=None,
        help="the paper's tables as data (default: shared/paper/swiftembed-tables.json)",
    )
    args = parser.parse_args(argv)
    try:
        report = run(args.model, args.baseline, args.output, args.probes_dir, args.paper_tables)
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_markdown(report))
    print(f"wrote {Path(args.output) / 'probes.json'}, probes.md, probes.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

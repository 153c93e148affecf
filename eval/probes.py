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

If ``eval/probes/paper_table10.jsonl`` exists (the sentence pairs of Table 10 of the SwiftEmbed paper,
arXiv 2510.24793, with the similarities the paper reports), a pairs section puts our similarities
next to the paper's.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

CATEGORIES: tuple[str, ...] = ("polysemy", "negation_modality", "entity", "composition")
"""Probe categories, in report order (the failure categories of the paper's error analysis)."""

CATEGORY_LABELS: dict[str, str] = {
    "polysemy": "polysemy",
    "negation_modality": "negation / modality",
    "entity": "entity disambiguation",
    "composition": "composition / word order",
}

DEFAULT_PROBES_DIR = Path(__file__).resolve().parent / "probes"
PAPER_PAIRS_FILE = "paper_table10.jsonl"
PROBE_FIELDS: tuple[str, ...] = ("id", "category", "anchor", "positive", "negative", "note")
PAIR_FIELDS: tuple[str, ...] = ("id", "text_a", "text_b", "paper_bert", "paper_static")

Encoder = Callable[[list[str]], np.ndarray]
"""Maps a list of texts to a ``(n, dim)`` array of (not necessarily normalised) embeddings."""


class ProbeDataError(ValueError):
    """A probe file is missing, malformed, or violates the probe schema."""


@dataclass(frozen=True)
class Probe:
    """One hand-written triplet."""

    id: str
    category: str
    anchor: str
    positive: str
    negative: str
    note: str


@dataclass(frozen=True)
class PaperPair:
    """A sentence pair from the paper's Table 10 with the similarities the paper reports."""

    id: str
    text_a: str
    text_b: str
    paper_bert: float
    paper_static: float
    note: str = ""


@dataclass(frozen=True)
class ProbeScore:
    """The score of one model on one probe."""

    id: str
    category: str
    sim_positive: float
    sim_negative: float
    margin: float
    correct: bool


@dataclass(frozen=True)
class CategorySummary:
    """Accuracy and mean margin of one model over one category (or ``overall``)."""

    n: int
    accuracy: float
    mean_margin: float


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ProbeDataError(
                f"{path}:{lineno}: not valid JSON ({exc.msg}); write one JSON object per line"
            ) from exc
        if not isinstance(obj, dict):
            raise ProbeDataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        rows.append((lineno, obj))
    return rows


def _require_text(obj: dict[str, Any], field: str, where: str) -> str:
    value = obj.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ProbeDataError(f"{where}: field {field!r} must be a non-empty string, got {value!r}")
    return value


def load_probes(directory: str | Path = DEFAULT_PROBES_DIR) -> list[Probe]:
    """Load and validate every probe in ``directory/*.jsonl`` (except the paper pairs file).

    Args:
        directory: Folder holding the probe JSON-lines files.

    Returns:
        The probes, sorted by category (in :data:`CATEGORIES` order) and then by file order.

    Raises:
        ProbeDataError: If the folder has no probe file, a line is malformed, a field is missing or
            empty, a category is unknown, or an id is repeated.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise ProbeDataError(
            f"probe folder {str(folder)!r} does not exist; pass the folder holding the *.jsonl probes"
        )
    files = sorted(p for p in folder.glob("*.jsonl") if p.name != PAPER_PAIRS_FILE)
    if not files:
        raise ProbeDataError(f"no *.jsonl probe files in {str(folder)!r}")
    probes: list[Probe] = []
    seen: dict[str, str] = {}
    for path in files:
        for lineno, obj in _read_jsonl(path):
            where = f"{path}:{lineno}"
            unknown = sorted(set(obj) - set(PROBE_FIELDS))
            if unknown:
                raise ProbeDataError(
                    f"{where}: unknown field(s) {unknown}; allowed fields are {list(PROBE_FIELDS)}"
                )
            values = {field: _require_text(obj, field, where) for field in PROBE_FIELDS}
            if values["category"] not in CATEGORIES:
                raise ProbeDataError(
                    f"{where}: category {values['category']!r} is not one of {list(CATEGORIES)}"
                )
            if values["id"] in seen:
                raise ProbeDataError(f"{where}: id {values['id']!r} already used at {seen[values['id']]}")
            seen[values["id"]] = where
            probes.append(Probe(**values))
    order = {name: i for i, name in enumerate(CATEGORIES)}
    return sorted(probes, key=lambda p: order[p.category])  # stable: keeps file order inside a category


def load_paper_pairs(directory: str | Path = DEFAULT_PROBES_DIR) -> list[PaperPair]:
    """Load the paper's Table 10 pairs from ``directory/paper_table10.jsonl``.

    Args:
        directory: Folder holding the probe files.

    Returns:
        The pairs, or an empty list when the file does not exist (the table could not be retrieved).

    Raises:
        ProbeDataError: If the file exists but a line is malformed or a similarity is not a number in [-1, 1].
    """
    path = Path(directory) / PAPER_PAIRS_FILE
    if not path.is_file():
        return []
    pairs: list[PaperPair] = []
    for lineno, obj in _read_jsonl(path):
        where = f"{path}:{lineno}"
        missing = [f for f in PAIR_FIELDS if f not in obj]
        if missing:
            raise ProbeDataError(f"{where}: missing field(s) {missing}; required are {list(PAIR_FIELDS)}")
        sims: dict[str, float] = {}
        for field in ("paper_bert", "paper_static"):
            value = obj[field]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not -1.0 <= float(value) <= 1.0
            ):
                raise ProbeDataError(
                    f"{where}: {field} must be a number in [-1, 1] as printed in the paper, got {value!r}"
                )
            sims[field] = float(value)
        note = obj.get("note", "")
        pairs.append(
            PaperPair(
                id=_require_text(obj, "id", where),
                text_a=_require_text(obj, "text_a", where),
                text_b=_require_text(obj, "text_b", where),
                paper_bert=sims["paper_bert"],
                paper_static=sims["paper_static"],
                note=note if isinstance(note, str) else str(note),
            )
        )
    return pairs


def _encode_unique(encode: Encoder, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Encode each distinct text once; returns text -> float64 unit vector."""
    unique = list(dict.fromkeys(texts))
    emb = np.asarray(encode(unique), dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] != len(unique):
        raise ValueError(
            f"encoder returned shape {emb.shape} for {len(unique)} texts; expected ({len(unique)}, dim)"
        )
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    zero = [unique[i] for i in np.flatnonzero(norms[:, 0] == 0.0)]
    if zero:
        raise ValueError(
            f"the model produced an all-zero embedding for {zero[:3]}; cosine similarity is undefined"
        )
    return dict(zip(unique, emb / norms, strict=True))


def score_probes(encode: Encoder, probes: Sequence[Probe]) -> list[ProbeScore]:
    """Score one model on every probe.

    Args:
        encode: The model's batch encoder.
        probes: The probes to score.

    Returns:
        One :class:`ProbeScore` per probe, in input order.
    """
    vectors = _encode_unique(encode, [t for p in probes for t in (p.anchor, p.positive, p.negative)])
    scores: list[ProbeScore] = []
    for p in probes:
        anchor = vectors[p.anchor]
        sim_pos = float(anchor @ vectors[p.positive])
        sim_neg = float(anchor @ vectors[p.negative])
        margin = sim_pos - sim_neg
        scores.append(ProbeScore(p.id, p.category, sim_pos, sim_neg, margin, margin > 0.0))
    return scores


def summarize(scores: Sequence[ProbeScore]) -> dict[str, CategorySummary]:
    """Per-category and overall accuracy and mean margin.

    Args:
        scores: Per-probe scores of one model.

    Returns:
        A mapping from each category present (in :data:`CATEGORIES` order) and ``"overall"`` to its summary.
    """
    groups: dict[str, list[ProbeScore]] = {c: [s for s in scores if s.category == c] for c in CATEGORIES}
    groups = {c: g for c, g in groups.items() if g}
    groups["overall"] = list(scores)
    return {
        name: CategorySummary(
            n=len(group),
            accuracy=sum(s.correct for s in group) / len(group) if group else math.nan,
            mean_margin=float(np.mean([s.margin for s in group])) if group else math.nan,
        )
        for name, group in groups.items()
    }


def score_pairs(encode: Encoder, pairs: Sequence[PaperPair]) -> list[float]:
    """Cosine similarity of each pair under one model.

    Args:
        encode: The model's batch encoder.
        pairs: The sentence pairs.

    Returns:
        One cosine similarity per pair, in input order.
    """
    if not pairs:
        return []
    vectors = _encode_unique(encode, [t for p in pairs for t in (p.text_a, p.text_b)])
    return [float(vectors[p.text_a] @ vectors[p.text_b]) for p in pairs]


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
    folder = Path(model)
    repaired = folder.is_dir() and _needs_config_repair(folder)
    if repaired:
        print(
            f"warning: {folder / 'config.json'} is not a transformers config (no 'model_type'; it holds the pooling "
            "settings). Loading the weights with the upstream all-MiniLM-L6-v2 BERT config instead.",
            file=sys.stderr,
        )
        with tempfile.TemporaryDirectory(prefix="staticst-baseline-") as tmp:
            st = SentenceTransformer(str(_repaired_copy(folder, Path(tmp))), device="cpu")
    else:
        st = SentenceTransformer(model, device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(st.encode(texts, batch_size=64, show_progress_bar=False, convert_to_numpy=True))

    info = {
        "model": model,
        "library": "sentence-transformers",
        "dim": st.get_embedding_dimension()
        if hasattr(st, "get_embedding_dimension")
        else st.get_sentence_embedding_dimension(),
        "config_repaired": repaired,
    }
    return encode, info


# Upstream config.json of sentence-transformers/all-MiniLM-L6-v2 (a BERT with 6 layers, hidden size 384, 12 heads).
_MINILM_L6_CONFIG: dict[str, Any] = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
}


def _needs_config_repair(folder: Path) -> bool:
    """True for a sentence-transformers folder whose root config.json is not a transformers config."""
    config = folder / "config.json"
    if not (config.is_file() and (folder / "model.safetensors").is_file()):
        return False
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    return isinstance(data, dict) and "model_type" not in data


def _repaired_copy(folder: Path, tmp: Path) -> Path:
    """Symlink ``folder`` into ``tmp`` with the upstream all-MiniLM-L6-v2 config.json.

    Only done when the weight shapes are exactly those of all-MiniLM-L6-v2; anything else is an error
    rather than a guess (the number of attention heads cannot be read from the weights).
    """
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "np") as weights:
        keys = list(weights.keys())
        word = (
            weights.get_slice("embeddings.word_embeddings.weight").get_shape()
            if "embeddings.word_embeddings.weight" in keys
            else None
        )
        inter = (
            weights.get_slice("encoder.layer.0.intermediate.dense.weight").get_shape()
            if "encoder.layer.0.intermediate.dense.weight" in keys
            else None
        )
    layers = len({k.split(".")[2] for k in keys if k.startswith("encoder.layer.")})
    cfg = _MINILM_L6_CONFIG
    expected = (
        [cfg["vocab_size"], cfg["hidden_size"]],
        [cfg["intermediate_size"], cfg["hidden_size"]],
        cfg["num_hidden_layers"],
    )
    if (word, inter, layers) != expected:
        raise ValueError(
            f"{folder / 'config.json'} has no 'model_type' and the weights (embeddings {word}, intermediate {inter}, "
            f"{layers} layers) are not all-MiniLM-L6-v2's; restore the model's transformers config.json"
        )
    for item in folder.iterdir():
        if item.name != "config.json":
            (tmp / item.name).symlink_to(item.resolve())
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return tmp


def evaluate(
    role: str, encode: Encoder, info: dict[str, Any], probes: Sequence[Probe], pairs: Sequence[PaperPair]
) -> dict[str, Any]:
    """Score one model on the probes and pairs and bundle the results as JSON-ready data.

    Args:
        role: ``"static"`` or ``"baseline"``.
        encode: The model's batch encoder.
        info: A description of the model.
        probes: The probes.
        pairs: The paper pairs (may be empty).

    Returns:
        A dict with ``role``, ``info``, ``summary`` (per category), ``probes`` (per probe) and ``pairs``.
    """
    scores = score_probes(encode, probes)
    return {
        "role": role,
        "info": info,
        "summary": {k: asdict(v) for k, v in summarize(scores).items()},
        "probes": [asdict(s) for s in scores],
        "pairs": score_pairs(encode, pairs),
    }


def _label(result: dict[str, Any]) -> str:
    return Path(str(result["info"].get("model", result["role"]))).name or result["role"]


def render_markdown(report: dict[str, Any]) -> str:
    """Render the report as Markdown tables (per-category scores, then the paper pairs section).

    Args:
        report: The report written to ``probes.json``.

    Returns:
        The Markdown text.
    """
    results: list[dict[str, Any]] = report["results"]
    head = ["category", "n"]
    for r in results:
        head += [f"{_label(r)} accuracy", f"{_label(r)} mean margin"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for cat in [*CATEGORIES, "overall"]:
        if cat not in results[0]["summary"]:
            continue
        row = [CATEGORY_LABELS.get(cat, f"**{cat}**"), str(results[0]["summary"][cat]["n"])]
        for r in results:
            s = r["summary"][cat]
            row += [f"{100 * s['accuracy']:.1f}%", f"{s['mean_margin']:+.3f}"]
        lines.append("| " + " | ".join(row) + " |")
    out = [
        "## Failure probes",
        "",
        f"{report['n_probes']} triplets; correct = cos(anchor, positive) > cos(anchor, negative).",
        "",
    ]
    out += lines
    out += ["", "## Paper Table 10 pairs", ""]
    pairs = report["paper_pairs"]
    if not pairs:
        out.append(
            f"No `{PAPER_PAIRS_FILE}`: the pairs of Table 10 of the SwiftEmbed paper (arXiv 2510.24793) and the "
            "similarities it reports could not be retrieved, so no paper numbers are shown."
        )
    else:
        head = ["pair", "text a", "text b", "paper BERT", "paper static"] + [
            f"{_label(r)} (ours)" for r in results
        ]
        out += [
            "| " + " | ".join(head) + " |",
            "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|",
        ]
        for i, p in enumerate(pairs):
            row = [p["id"], p["text_a"], p["text_b"], f"{p['paper_bert']:.2f}", f"{p['paper_static']:.2f}"]
            row += [f"{r['pairs'][i]:.2f}" for r in results]
            out.append("| " + " | ".join(row) + " |")
    return "\n".join(out) + "\n"


def plot_report(report: dict[str, Any], path: str | Path) -> None:
    """Save a grouped bar chart (accuracy and mean margin per category, one bar per model).

    Uses matplotlib's object API (no pyplot, no global backend change).

    Args:
        report: The report written to ``probes.json``.
        path: Where to write the PNG.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results: list[dict[str, Any]] = report["results"]
    cats = [c for c in CATEGORIES if c in results[0]["summary"]]
    x = np.arange(len(cats))
    width = 0.8 / len(results)
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_acc, ax_margin = fig.subplots(1, 2)
    for i, r in enumerate(results):
        offset = (i - (len(results) - 1) / 2) * width
        acc = [100 * r["summary"][c]["accuracy"] for c in cats]
        margin = [r["summary"][c]["mean_margin"] for c in cats]
        bars = ax_acc.bar(x + offset, acc, width, label=_label(r))
        ax_acc.bar_label(bars, fmt="%.0f", fontsize=8)
        ax_margin.bar(x + offset, margin, width, label=_label(r))
    labels = [CATEGORY_LABELS[c].replace(" / ", "/\n").replace(" ", "\n") for c in cats]
    ax_acc.set(title="Probe accuracy (%)", ylim=(0, 105), xticks=x, xticklabels=labels)
    ax_acc.axhline(50, color="grey", linewidth=0.8, linestyle=":")
    ax_margin.set(title="Mean margin  cos(a,pos) - cos(a,neg)", xticks=x, xticklabels=labels)
    ax_margin.axhline(0, color="black", linewidth=0.8)
    ax_acc.legend(fontsize=8, loc="upper left")
    fig.savefig(str(path), dpi=120)


def run(
    model: str | None, baseline: str | None, output: str | Path, probes_dir: str | Path = DEFAULT_PROBES_DIR
) -> dict[str, Any]:
    """Score the static model (and the baseline) and write probes.json, probes.md and probes.png.

    Args:
        model: Static model path or hub id for staticst; ``None`` for the built-in potion-base-8M.
        baseline: Optional contextual model for sentence-transformers (e.g. all-MiniLM-L6-v2).
        output: Output folder (created if needed).
        probes_dir: Folder holding the probe files.

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
    pairs = load_paper_pairs(probes_dir)
    results = [evaluate("static", *static_encoder(model), probes, pairs)]
    if baseline is not None:
        results.append(evaluate("baseline", *baseline_encoder(baseline), probes, pairs))
    report: dict[str, Any] = {
        "n_probes": len(probes),
        "categories": {c: sum(p.category == c for p in probes) for c in CATEGORIES},
        "scoring": "margin = cos(anchor, positive) - cos(anchor, negative); correct if margin > 0",
        "probes": [asdict(p) for p in probes],
        "paper_pairs": [asdict(p) for p in pairs],
        "paper_pairs_note": (
            ""
            if pairs
            else "Table 10 of arXiv 2510.24793 could not be retrieved; no paper similarities included."
        ),
        "results": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "probes.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / "probes.md").write_text(render_markdown(report), encoding="utf-8")
    plot_report(report, out / "probes.png")
    return report


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors reported as one line on stderr (bad paths, bad data, missing extras) instead of a traceback."""
    errors: tuple[type[BaseException], ...] = (ProbeDataError, ValueError, OSError, RuntimeError, ImportError)
    try:
        from staticst.errors import StaticSTError
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
    args = parser.parse_args(argv)
    try:
        report = run(args.model, args.baseline, args.output, args.probes_dir)
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_markdown(report))
    print(f"wrote {Path(args.output) / 'probes.json'}, probes.md, probes.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Failure probes, data: the probe triplets and the paper's Table 10 pairs, read and validated from
``eval/probes/*.jsonl`` (schema in ``eval/probes/README.md``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


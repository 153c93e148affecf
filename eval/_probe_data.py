"""Failure probes, data: the probe triplets, read and validated from ``eval/probes/*.jsonl`` (schema in
``eval/probes/README.md``). The paper's Table 10 pairs come from the paper tables file (``_paper.py``)."""

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
PROBE_FIELDS: tuple[str, ...] = ("id", "category", "anchor", "positive", "negative", "note")


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
    """Load and validate every probe in ``directory/*.jsonl``.

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
    files = sorted(folder.glob("*.jsonl"))
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

"""Model card metadata, as sentence-transformers' ``model_card_data`` exposes it to tools."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ModelCardData"]


@dataclass
class ModelCardData:
    """Model card metadata, with the fields sentence-transformers' ``model_card_data`` exposes to tools."""

    language: list[str] = field(default_factory=list)
    license: str | None = None
    model_name: str | None = None
    model_id: str | None = None
    base_model: str | None = None
    base_model_revision: str | None = None
    train_datasets: list[dict[str, str]] = field(default_factory=list)
    eval_datasets: list[dict[str, str]] = field(default_factory=list)
    task_name: str = "semantic textual similarity, semantic search, paraphrase mining, text classification, clustering"
    tags: list[str] = field(default_factory=lambda: ["sentence-transformers", "static-embeddings", "staticst"])

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view (for JSON)."""
        return asdict(self)

"""Model card metadata, as sentence-transformers' ``model_card_data`` exposes it to tools.

:class:`ModelCardData` holds the fields sentence-transformers' ``SentenceTransformerModelCardData`` exposes
(``language``, ``license``, ``model_id``, ``base_model``, ...) and its usage-snippet API
(``usage_examples``, ``similarities``, ``ir_model``, :meth:`ModelCardData.generate_usage_snippet`), so code that
fills a card for a sentence-transformers model fills staticst's the same way. Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["ModelCardData", "model2vec_card", "pull_request_description", "st_card"]

_TEXT_EXAMPLES = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
_IR_EXAMPLES = [
    "Which planet is known as the Red Planet?",
    "Venus is often called Earth's twin because of its similar size and proximity.",
    "Mars, known for its reddish appearance, is often referred to as the Red Planet.",
    "Saturn, famous for its rings, is sometimes mistaken for the Red Planet.",
]


@dataclass
class ModelCardData:
    """Model card metadata, with the fields and usage-snippet API of sentence-transformers' ``model_card_data``.

    Attributes:
        language: The model's languages.
        license: The licence.
        model_name: A readable name.
        model_id: The Hub id the model is saved / pushed under (the usage snippet loads it).
        base_model: The model this one derives from.
        base_model_revision: Its revision.
        train_datasets: Training datasets (metadata only).
        eval_datasets: Evaluation datasets (metadata only).
        task_name: The tasks named in the card.
        tags: Card tags.
        local_files_only: Never look the base model up on the Hub (as sentence-transformers' field).
        generate_widget_examples: Accepted (sentence-transformers' field); staticst writes no widget.
        usage_examples: The inputs the usage snippet shows (default: three sentences; four for an IR model).
        usage_examples_display: What the snippet shows instead of ``usage_examples`` when set.
        similarities: A printed similarity matrix the snippet shows (else its shape).
        ir_model: Show ``encode_query`` / ``encode_document`` in the snippet.
        save_dir: The folder the card is being saved into.
    """

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
    local_files_only: bool = False
    generate_widget_examples: bool = True
    usage_examples: list[Any] | None = field(default=None, repr=False)
    usage_examples_display: list[Any] | None = field(default=None, repr=False)
    similarities: str | None = field(default=None, repr=False)
    ir_model: bool | None = field(default=None, repr=False)
    save_dir: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.model: Any = None

    def register_model(self, model: Any) -> None:
        """Remember the model this card describes (sentence-transformers' ``register_model``)."""
        self.model = model

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view of the metadata fields (for JSON)."""
        skip = {"usage_examples", "usage_examples_display", "similarities", "ir_model", "save_dir"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    # ------------------------------------------------------------------ usage snippet (sentence-transformers 6.3)

    def generate_usage_snippet(self) -> str:
        """The Python usage snippet of the card (a fenced code block), as sentence-transformers generates it.

        An IR model (``ir_model``) shows ``encode_query`` / ``encode_document``; otherwise ``encode`` on
        :attr:`usage_examples_display` (or :attr:`usage_examples`, or three default sentences).
        """
        display = self.usage_examples_display or self.usage_examples
        if self.ir_model:
            return self._ir_snippet(display or _IR_EXAMPLES)
        if not display:
            return self._snippet(_TEXT_EXAMPLES, "sentences", lambda v: repr(v))
        source = self.usage_examples or display
        if any(not isinstance(item, (str, list)) for item in source):
            return self._snippet(display, "inputs", self._format_snippet_value)
        return self._snippet(display, "sentences", lambda v: repr(v))

    def _head(self) -> list[str]:
        model_id = self.model_id or "sentence_transformers_model_id"
        return [
            "from sentence_transformers import SentenceTransformer",
            "",
            "# Download from the 🤗 Hub",
            f'model = SentenceTransformer("{model_id}")',
            "# Run inference",
        ]

    def _tail(self, shape: str) -> list[str]:
        if self.similarities:
            return ["print(similarities)", self.similarities]
        return ["print(similarities.shape)", shape]

    def _snippet(self, examples: list[Any], name: str, fmt: Any) -> str:
        dim = self._get_snippet_output_dimensionality()
        lines = [*self._head(), f"{name} = ["]
        lines += [f"    {fmt(item)}," for item in examples]
        lines += [
            "]",
            f"embeddings = model.encode({name})",
            "print(embeddings.shape)",
            f"# [{len(examples)}, {dim}]",
            "",
            "# Get the similarity scores for the embeddings",
            "similarities = model.similarity(embeddings, embeddings)",
            *self._tail(f"# [{len(examples)}, {len(examples)}]"),
        ]
        return "```python\n" + "\n".join(lines) + "\n```"

    def _ir_snippet(self, examples: list[Any]) -> str:
        dim = self._get_snippet_output_dimensionality()
        n_docs = len(examples) - 1
        lines = [*self._head(), "queries = [", f"    {self._format_snippet_value(examples[0])},", "]", "documents = ["]
        lines += [f"    {self._format_snippet_value(item)}," for item in examples[1:]]
        lines += [
            "]",
            "query_embeddings = model.encode_query(queries)",
            "document_embeddings = model.encode_document(documents)",
            "print(query_embeddings.shape, document_embeddings.shape)",
            f"# [1, {dim}] [{n_docs}, {dim}]",
            "",
            "# Get the similarity scores for the embeddings",
            "similarities = model.similarity(query_embeddings, document_embeddings)",
            *self._tail(f"# [1, {n_docs}]"),
        ]
        return "```python\n" + "\n".join(lines) + "\n```"

    def _format_snippet_value(self, value: Any) -> str:
        """A value as the snippet shows it: ``repr``, with ``assets/...`` paths as Hub URLs when the model has an id."""
        if isinstance(value, str) and value.startswith("assets/"):
            return repr(f"https://huggingface.co/{self.model_id}/resolve/main/{value}" if self.model_id else value)
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k!r}: {self._format_snippet_value(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self._format_snippet_value(v) for v in value) + "]"
        return repr(value)

    def _get_snippet_output_dimensionality(self) -> int | str:
        try:
            return int(self.model.get_embedding_dimension())
        except Exception:
            return "?"

    @staticmethod
    def _hash_asset(value: Any) -> int | None:
        """An identity hash of an image / audio example (``None`` for other types), to drop duplicates."""
        encoded = getattr(value, "_hf_encoded", None)
        if isinstance(encoded, dict) and (encoded.get("bytes") or encoded.get("path")):
            return hash((encoded.get("path"), encoded.get("bytes")))
        if all(hasattr(value, a) for a in ("tobytes", "size", "mode")) and type(value).__module__.startswith("PIL"):
            return hash((value.tobytes(), value.size, value.mode))
        if isinstance(value, dict) and "array" in value:
            array = value["array"]
            if hasattr(array, "cpu") and hasattr(array, "numpy"):
                array = array.cpu().numpy()
            if hasattr(array, "tobytes"):
                return hash((array.tobytes(), getattr(array, "shape", None), value.get("sampling_rate")))
        return None

    def _set_multimodal_usage_examples(self, dataset: Any) -> None:
        """Usage examples from a ``DatasetDict`` for a model taking non-text modalities (sentence-transformers' rules).

        An IR model takes the query from the first column and up to three distinct documents from the second;
        otherwise, the model's combined modality (a tuple) builds multimodal dicts, else the first non-text
        modality both the model and the dataset have gives up to three distinct examples.
        """
        sub = next(iter(dataset.values()))
        if type(sub).__name__ == "IterableDataset" or len(sub) == 0:
            return
        if self.ir_model:
            columns = [c for c in sub.column_names if c != "dataset_name"]
            if len(columns) >= 2:
                self.usage_examples = [sub[0][columns[0]], *self._distinct(sub, columns[1])]
                return
        kinds: dict[str, str] = {}
        for column, feature in sub.features.items():
            kind = type(feature).__name__
            if column == "dataset_name":
                continue
            if kind == "Value" and getattr(feature, "dtype", None) in {"string", "large_string"}:
                kinds[column] = "text"
            elif kind in ("Image", "Audio", "Video"):
                kinds[column] = kind.lower()
        available = set(kinds.values())
        modalities = list(getattr(self.model, "modalities", ["text"]))
        combined = next((m for m in modalities if isinstance(m, tuple) and all(p in available for p in m)), None)
        if combined:
            chosen = {part: next(c for c, k in kinds.items() if k == part) for part in combined}
            self.usage_examples = [{m: sub[i][c] for m, c in chosen.items()} for i in range(min(3, len(sub)))]
            return
        for modality in modalities:
            if isinstance(modality, str) and modality not in ("text", "message") and modality in available:
                self.usage_examples = self._distinct(sub, next(c for c, k in kinds.items() if k == modality))
                return

    def _distinct(self, sub: Any, column: str, limit: int = 3) -> list[Any]:
        found: list[Any] = []
        seen: set[int] = set()
        for i in range(min(100, len(sub))):
            value = sub[i][column]
            digest = self._hash_asset(value) if not isinstance(value, str) else hash(value)
            if digest is not None and digest in seen:
                continue
            if digest is not None:
                seen.add(digest)
            found.append(value)
            if len(found) >= limit:
                break
        return found


def st_card(name: str, layout: str, dim: int, license: str | None, model_id: str | None) -> str:
    """The ``README.md`` that ``StaticSentenceTransformer.save`` writes.

    Args:
        name: The card's title.
        layout: The layout saved (``"model2vec"`` or ``"sentence-transformers"``).
        dim: The vectors' dimension.
        license: The licence for the front matter, or ``None``.
        model_id: The id the usage snippet loads (sentence-transformers' placeholder when ``None``), as in ST.
    """
    return (
        "---\nlibrary_name: sentence-transformers\ntags:\n- static-embeddings\n- staticst\n"
        + (f"license: {license}\n" if license else "")
        + f"---\n\n# {name}\n\nA static embedding model ({layout} layout, {dim} dimensions), "
        "saved by staticst. Load it with `staticst.StaticSentenceTransformer`, "
        "`sentence_transformers.SentenceTransformer` or `model2vec.StaticModel`.\n"
        "\n## Usage\n\n```python\nfrom sentence_transformers import SentenceTransformer"
        "  # or: from staticst import StaticSentenceTransformer as SentenceTransformer\n\n"
        f'model = SentenceTransformer("{model_id or "sentence_transformers_model_id"}")\n'
        'embeddings = model.encode(["The weather is lovely today.", "It\'s so sunny outside!"])\n'
        "similarities = model.similarity(embeddings, embeddings)\n```\n"
    )


def model2vec_card(title: str, tokens: int, dim: int, language: Sequence[str] | None, base_model: str | None) -> str:
    """The ``README.md`` that ``StaticModel.save_pretrained`` writes (model2vec's front matter keys).

    Args:
        title: The card's title.
        tokens: The vocabulary size.
        dim: The vectors' dimension.
        language: The model's languages, or ``None``.
        base_model: The model this one was distilled from, or ``None``.
    """
    meta: dict[str, Any] = {"library_name": "model2vec", "license": "mit"}
    if language:
        meta["language"] = list(language)
    if base_model:
        meta["base_model"] = base_model
    meta["tags"] = ["embeddings", "static-embeddings", "model2vec", "staticst"]
    front = "\n".join(f"{key}: {json.dumps(value)}" for key, value in meta.items())
    return (
        f"---\n{front}\n---\n\n# {title}\n\nA static embedding model ({tokens} tokens, {dim} dimensions). "
        "Load it with `model2vec.StaticModel.from_pretrained`, `staticst.StaticModel.from_pretrained` or "
        "`staticst.StaticSentenceTransformer`.\n"
    )


def pull_request_description(name: str, architecture: str, repo_id: str) -> str:
    """The pull request description sentence-transformers writes, naming staticst's class and import."""
    return f"""\
Hello!

This pull request has been automatically generated to add {name} compatibility.

## Full Model Architecture:
```
{architecture}
```

## Testing this pull request
You can test this pull request before merging by loading the model from this PR with the `revision` argument:
```python
from staticst import {name}

# NOTE: Update this to the number of your pull request
pr_number = 2
model = {name}(
    "{repo_id}",
    revision=f"refs/pr/{{pr_number}}",
)
```
"""

"""mteb integration: a :class:`~staticst.StaticSentenceTransformer` behind mteb's encoder protocol.

Needs mteb 2.26 (``pip install 'staticst[mteb]'``); importing this module without it raises
:class:`~staticst.MissingDependencyError`.

>>> import mteb
>>> from staticst import StaticSentenceTransformer
>>> from staticst.integrations.mteb import StaticSTEncoder
>>> model = StaticSentenceTransformer("minishlab/potion-base-8M")
>>> results = mteb.evaluate(StaticSTEncoder(model), mteb.get_tasks(tasks=["STSBenchmark"]))  # doctest: +SKIP

Why a wrapper: ``mteb.evaluate`` wraps a ``sentence_transformers.SentenceTransformer`` (by ``isinstance``) and
accepts anything carrying a ``mteb_model_meta`` as an encoder; any other object becomes an empty ``ModelMeta``
that mteb then tries to load, which raises ``NotImplementedError: No model implementation is available for this
model.``. :class:`StaticSTEncoder` is that encoder: it encodes mteb's ``DataLoader`` batches, resolves prompts from
the model's ``prompts`` with mteb's precedence rules and sends queries to ``encode_query`` and documents to
``encode_document``, exactly as mteb's ``SentenceTransformerEncoderWrapper`` does, so the same model scores the
same through either path. Its ``ModelMeta`` (:func:`static_model_meta`) describes what staticst runs.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from staticst.errors import MissingDependencyError, TaskDataError
from staticst.model import StaticSentenceTransformer

try:
    import mteb
    from mteb.models import ModelMeta
    from mteb.models.abs_encoder import AbsEncoder, get_prompt_name
    from mteb.models.model_meta import ScoringFunction
    from mteb.types import PromptType
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(
        "staticst.integrations.mteb needs mteb, which is not installed: pip install 'staticst[mteb]'."
    ) from exc

if TYPE_CHECKING:
    from mteb.abstasks import AbsTask
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata
    from mteb.types import Array, BatchedInput
    from torch.utils.data import DataLoader

__all__ = [
    "DESCRIPTIVE_FIELDS",
    "StaticSTEncoder",
    "load_task_data",
    "local_task",
    "static_model_meta",
    "task_data_folder",
]

#: ``ModelMeta`` fields that describe the *weights* (not how they are run): taken from mteb's own registry entry
#: when the model's name is registered there with the same (or an unknown) revision.
DESCRIPTIVE_FIELDS: tuple[str, ...] = (
    "release_date", "languages", "license", "open_weights", "public_training_code", "public_training_data",
    "reference", "training_datasets", "adapted_from", "superseded_by", "citation", "contacts",
)  # fmt: skip
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def _registered(name: str, revision: str | None) -> ModelMeta | None:
    """The entry of mteb's registry for ``name`` (no network), when its revision agrees with ``revision``."""
    try:
        meta = mteb.get_model_meta(name, fetch_from_hf=False)
    except KeyError:
        return None
    if revision is not None and meta.revision is not None and meta.revision != revision:
        return None
    return meta


def static_model_meta(
    model: StaticSentenceTransformer, *, name: str | None = None, revision: str | None = None
) -> ModelMeta:
    """The mteb ``ModelMeta`` of a staticst model, from what the model itself reports.

    Args:
        model: The loaded staticst model.
        name: Name to record (``org/name``); default: the hub id the model was loaded from, or
            ``local/<folder name>`` for a folder.
        revision: Revision to record; default: the revision the model reports (None for a folder).

    Returns:
        The metadata: ``loader`` :class:`StaticSTEncoder` (with the folder in ``loader_kwargs``, so
        ``meta.load_model()`` reloads the same files), embedding dimension (after ``truncate_dim``), parameter
        count (all of them embedding parameters), memory of the tables, ``max_tokens`` (the token limit staticst
        applies, infinite when it does not truncate), similarity function, framework ``NumPy`` + ``safetensors``.
        When ``name`` is in mteb's registry (e.g. ``minishlab/potion-base-8M``) with the same or an unknown
        revision, the fields describing the weights (:data:`DESCRIPTIVE_FIELDS`: licence, languages, training
        data, ...) come from that entry.
    """
    info = model.info()
    model_id = str(info.get("model") or "")
    path = info.get("path")
    if name is None:
        if not model_id:
            name = "local/static-model"
        elif os.path.isdir(model_id) or not _HUB_ID.match(model_id):
            name = f"local/{Path(model_id).expanduser().resolve().name}"
        else:
            name = model_id
    if revision is None:
        revision = info.get("revision") or None
    engine = model.engine
    nbytes = sum(int(a.nbytes) for a in (engine.table, engine.mapping, engine.weights) if a is not None)
    n_params = int(info["num_parameters"])
    max_length = info.get("max_length")
    sim = model.similarity_fn_name
    prompts = {k: v for k, v in (model.prompts or {}).items() if v}
    overwrites: dict[str, Any] = {
        "loader": StaticSTEncoder,
        "loader_kwargs": {"model_path": str(path)} if path and Path(str(path)).is_dir() else {},
        "name": name,
        "revision": revision,
        "n_parameters": n_params,
        "n_embedding_parameters": n_params,
        "memory_usage_mb": round(nbytes / 2**20, 2),
        "max_tokens": float(max_length) if max_length else math.inf,
        "embed_dim": int(model.get_embedding_dimension()),
        "similarity_fn_name": ScoringFunction.from_str(sim) if sim else None,
        "framework": ["NumPy", "safetensors"],
        "use_instructions": bool(prompts),
        "modalities": ["text"],
        "model_type": ["dense"],
    }
    registered = _registered(name, revision)
    if registered is not None:
        overwrites.update({f: getattr(registered, f) for f in DESCRIPTIVE_FIELDS})
    return ModelMeta.create_empty(overwrites=overwrites)


class StaticSTEncoder(AbsEncoder):
    """A :class:`~staticst.StaticSentenceTransformer` behind mteb's ``EncoderProtocol``.

    Args:
        model: A loaded staticst model (``StaticSTEncoder(model)``), or a hub id / folder to load (the signature
            mteb calls through ``ModelMeta.loader``: ``loader(name, revision=..., **loader_kwargs)``).
        revision: Hub revision to load (when loading by name) and to record in the metadata.
        device: Accepted for the protocol; staticst runs on the CPU.
        model_path: Folder to load instead of ``model`` when ``model`` is a name (what :func:`static_model_meta`
            puts in ``loader_kwargs`` for a model loaded from a folder).
        name: Name to record in ``ModelMeta`` (see :func:`static_model_meta`); default: ``model`` when it is a
            name, else derived from the model.
        embed_dim: Keep the first ``embed_dim`` dimensions (mteb's name for ``truncate_dim``).
        model_prompts: Prompts by mteb key (task name, task type, ``query`` / ``document``), instead of the model's.
        **kwargs: Passed to :class:`~staticst.StaticSentenceTransformer` when loading.

    Raises:
        TypeError: ``model`` is neither a staticst model, a str, a path nor None.
        ValueError: ``model`` is a loaded model and loading options (``revision`` aside) are given too.
    """

    # always set by __init__ (AbsEncoder declares it optional; mteb's own SentenceTransformerEncoderWrapper
    # narrows it the same way)
    mteb_model_meta: ModelMeta

    def __init__(
        self,
        model: StaticSentenceTransformer | str | os.PathLike[str] | None = None,
        revision: str | None = None,
        *,
        device: str | None = None,
        model_path: str | os.PathLike[str] | None = None,
        name: str | None = None,
        embed_dim: int | None = None,
        model_prompts: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(model, StaticSentenceTransformer):
            if kwargs or model_path is not None or embed_dim is not None:
                given = sorted(
                    [*kwargs, *(["model_path"] if model_path else []), *(["embed_dim"] if embed_dim else [])]
                )
                raise ValueError(
                    f"StaticSTEncoder got a loaded model and loading options {given}: pass either the model, or "
                    "a hub id / folder with the options (set truncate_dim on the model itself)."
                )
            loaded = model
        elif model is None or isinstance(model, (str, os.PathLike)):
            if name is None and isinstance(model, str) and model_path is not None:
                name = model  # mteb's loader call: the recorded name, with the files in model_path
            source = model_path if model_path is not None else model
            if revision is not None and model_path is None:
                kwargs["revision"] = revision
            if embed_dim is not None:
                kwargs["truncate_dim"] = embed_dim
            loaded = StaticSentenceTransformer(None if source is None else os.fspath(source), **kwargs)
        else:
            raise TypeError(
                f"StaticSTEncoder needs a staticst.StaticSentenceTransformer, a hub id or a folder, got "
                f"{type(model).__name__}; a sentence_transformers.SentenceTransformer goes to mteb.evaluate as it is."
            )
        self.model = loaded
        self.mteb_model_meta = static_model_meta(loaded, name=name, revision=revision)
        prompts = dict(model_prompts) if model_prompts is not None else (loaded.prompts or None)
        self.model_prompts, _invalid = AbsEncoder.validate_task_to_prompt_name(
            {k: v for k, v in prompts.items() if v is not None} if prompts else None, raise_for_invalid_keys=False
        )

    def encode(
        self,
        inputs: DataLoader[BatchedInput],
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> Array:
        """Encode the texts of ``inputs`` (see mteb's ``EncoderProtocol.encode``).

        The prompt is looked up in :attr:`model_prompts` with mteb's precedence (task + type, task, task type +
        type, task type, prompt type); queries go through ``encode_query``, documents through ``encode_document``,
        anything else through ``encode``; ``kwargs`` (mteb's encode kwargs) are passed on unchanged.

        Returns:
            A float32 array of shape ``(len(texts), dim)``.

        Raises:
            ValueError: The batches hold no ``text`` (an image or audio task), or an unknown ``prompt_type``.
        """
        texts: list[str] = []
        for batch in inputs:
            if "text" not in batch:
                raise ValueError(
                    f"StaticSTEncoder encodes text only, but the task's batches hold {sorted(batch)}: "
                    f"{task_metadata.name} is not a text task."
                )
            texts.extend(batch["text"])
        prompt_name = get_prompt_name(self.model_prompts, task_metadata, prompt_type)
        prompt = self.model_prompts.get(prompt_name) if (self.model_prompts and prompt_name) else None
        if prompt_type == PromptType.query:
            encode = self.model.encode_query
        elif prompt_type == PromptType.document:
            encode = self.model.encode_document
        elif prompt_type is None:
            encode = self.model.encode
        else:
            raise ValueError(f"Unknown prompt type {prompt_type!r}; expected query, document or None.")
        return np.asarray(encode(texts, prompt=prompt, **kwargs))


# -------------------------------------------------------------------------------- tasks on local data (no hub)


def task_data_folder(task: AbsTask, data_dir: str | os.PathLike[str]) -> Path:
    """Where :func:`load_task_data` reads a task: ``data_dir / <hub dataset name>`` (``mteb/scifact`` -> ``scifact``).

    Args:
        task: An mteb task.
        data_dir: Folder holding one sub-folder per hub dataset.

    Returns:
        The task's folder (which may not exist).
    """
    return Path(data_dir) / str(task.metadata.dataset["path"]).rstrip("/").split("/")[-1]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise TaskDataError(f"{path}:{lineno} is not valid JSON ({e.msg})") from e
    if not rows:
        raise TaskDataError(f"{path} is empty")
    return rows


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["query-id", "corpus-id", "score"]:
            raise TaskDataError(f"{path}: expected the BEIR header 'query-id corpus-id score', got {header}")
        for lineno, line in enumerate(f, 2):
            if line.strip():
                try:
                    qid, did, score = line.rstrip("\n").split("\t")
                    qrels.setdefault(qid, {})[did] = int(score)
                except ValueError:
                    raise TaskDataError(
                        f"{path}:{lineno}: expected 'query-id<TAB>corpus-id<TAB>score', got {line!r}"
                    ) from None
    return qrels


def _load_retrieval(task: AbsTaskRetrieval, folder: Path) -> None:
    from datasets import Dataset

    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise TaskDataError(f"{folder / name} is missing (retrieval data must be in BEIR format)")
    corpus_rows = _read_jsonl(folder / "corpus.jsonl")
    query_rows = _read_jsonl(folder / "queries.jsonl")
    corpus = Dataset.from_list(
        [{"id": str(r["_id"]), "title": r.get("title", ""), "text": r["text"]} for r in corpus_rows]
    )
    dataset: dict[str, dict[str, Any]] = {"default": {}}
    for split in task.eval_splits:
        qrels_path = folder / "qrels" / f"{split}.tsv"
        if not qrels_path.is_file():
            raise TaskDataError(f"{qrels_path} is missing")
        qrels = _read_qrels(qrels_path)
        # as mteb's RetrievalDatasetLoader: keep only queries with relevance judgements, in file order
        queries = Dataset.from_list(
            [{"id": str(r["_id"]), "text": r["text"]} for r in query_rows if str(r["_id"]) in qrels]
        )
        dataset["default"][split] = {"corpus": corpus, "queries": queries, "relevant_docs": qrels, "top_ranked": None}
    task.dataset = dataset


def _load_splits(task: AbsTask, folder: Path) -> None:
    from datasets import Dataset, DatasetDict
    from mteb.abstasks.classification import AbsTaskClassification

    needed = list(task.eval_splits)
    if isinstance(task, AbsTaskClassification) and task.train_split not in needed:
        needed.append(task.train_split)
    splits = {}
    for split in needed:
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise TaskDataError(f"{path} is missing (the task needs splits {needed})")
        splits[split] = Dataset.from_list(_read_jsonl(path))
    task.dataset = DatasetDict(splits)
    task.dataset_transform()


def load_task_data(task: AbsTask, data_dir: str | os.PathLike[str]) -> Path:
    """Fill ``task.dataset`` from local files, in the structure mteb's ``load_data`` builds (no Hugging Face Hub).

    The data of a task is read from ``data_dir / <hub dataset name>`` (``mteb/banking77`` -> ``banking77``):
    one JSON-lines file per split (``test.jsonl``, and ``train.jsonl`` for classification) with the columns of
    mteb's hub dataset, or, for retrieval tasks, BEIR format (``corpus.jsonl``, ``queries.jsonl``,
    ``qrels/<split>.tsv``). Monolingual tasks only.

    Args:
        task: An mteb task (e.g. ``mteb.get_task("STSBenchmark")``).
        data_dir: Folder holding one sub-folder per hub dataset.

    Returns:
        The folder the data came from.

    Raises:
        TaskDataError: The folder is missing or incomplete, a file is not valid JSON lines / BEIR, or the
            task is multilingual. The message names the file.
    """
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    folder = task_data_folder(task, data_dir)
    if not folder.is_dir():
        raise TaskDataError(
            f"no local data for {task.metadata.name} at {folder} (expected a folder named after the hub dataset "
            f"{task.metadata.dataset['path']!r})"
        )
    if task.metadata.is_multilingual:
        raise TaskDataError(f"{task.metadata.name} is multilingual; local data is supported for monolingual tasks only")
    try:
        if isinstance(task, AbsTaskRetrieval):
            _load_retrieval(task, folder)
        else:
            _load_splits(task, folder)
    except (KeyError, TypeError) as e:  # a row without a column mteb needs, or of the wrong type
        raise TaskDataError(f"local data at {folder} unusable for {task.metadata.name}: {type(e).__name__}: {e}") from e
    task.data_loaded = True
    return folder


def local_task(name: str, data_dir: str | os.PathLike[str], *, seed: int = 42) -> AbsTask:
    """The mteb task ``name`` with its data read from ``data_dir`` (see :func:`load_task_data`), ready to evaluate.

    ``mteb.evaluate`` does not download the data of a task that holds it, so this runs offline:

    >>> import mteb
    >>> from staticst import StaticSentenceTransformer
    >>> from staticst.integrations.mteb import StaticSTEncoder, local_task
    >>> task = local_task("STSBenchmark", "shared/data/mteb")  # reads shared/data/mteb/stsbenchmark-sts/  # doctest: +SKIP
    >>> mteb.evaluate(StaticSTEncoder(StaticSentenceTransformer()), task, cache=None)  # doctest: +SKIP

    Args:
        name: An mteb task name, e.g. ``"STSBenchmark"``.
        data_dir: Folder holding one sub-folder per hub dataset.
        seed: The task's seed (mteb's default 42).

    Returns:
        A new task object with its data loaded.

    Raises:
        ValueError: ``name`` is not an mteb task (mteb's message lists close matches).
        TaskDataError: The task's local data is missing or unreadable (the message names the file).
    """
    try:
        task = mteb.get_task(name)
    except KeyError as e:
        raise ValueError(f"unknown mteb task {name!r}: {e.args[0] if e.args else e}") from None
    task = type(task)(seed=seed)
    load_task_data(task, data_dir)
    return task

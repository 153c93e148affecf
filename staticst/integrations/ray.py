"""Ray Data integration: embed a text column of a ``ray.data.Dataset`` on an actor pool.

Needs Ray Data (``pip install 'staticst[ray]'``); importing this module without it raises
:class:`~staticst.MissingDependencyError`.

>>> import ray
>>> from staticst.integrations.ray import embed_dataset
>>> ds = ray.data.read_parquet("texts.parquet")                      # doctest: +SKIP
>>> ds = embed_dataset(ds, "/models/potion-base-8M", column="text", concurrency=2)  # doctest: +SKIP
>>> ds.write_parquet("embedded/")                                    # doctest: +SKIP

:class:`EmbedBatches` is the callable class behind :func:`embed_dataset`, for ``Dataset.map_batches`` directly.
Ray creates one instance per actor, so each actor process reads the model's table once (in ``__init__``) and
reuses it for every batch it is given; tasks (functions) would load it again for every batch.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from staticst.errors import MissingDependencyError
from staticst.integrations._common import embed_values, is_text_type, load_model, make_spec

if TYPE_CHECKING:
    from typing import TypeAlias

    import pandas as pd
    import pyarrow as pa
    from ray.data import Dataset

    Batch: TypeAlias = "pa.Table | pd.DataFrame | dict[str, np.ndarray]"

__all__ = ["DEFAULT_BATCH_SIZE", "EmbedBatches", "actor_cpus", "embed_dataset"]

#: Rows per ``map_batches`` call in :func:`embed_dataset`: large enough for the kernel's threads, ~4 MB of output.
DEFAULT_BATCH_SIZE = 4096
_BATCH_FORMATS = ("pyarrow", "pandas", "numpy")
_NUMPY_NULLS = (
    "on_null='null' needs batch_format='pyarrow' or 'pandas': a numpy batch has no null for an embedding "
    "(its column is one (n, dim) array)."
)


def _require_ray() -> None:
    try:
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "staticst.integrations.ray needs Ray Data, which is not installed: pip install 'staticst[ray]'."
        ) from exc


_require_ray()


class EmbedBatches:
    """A callable class for ``Dataset.map_batches``: adds an embedding column to each batch, keeps the others.

    Ray builds one instance per actor: the model is loaded once per actor process (its table is read once
    there) and every batch the actor gets is encoded with it. Batches may be pyarrow tables, pandas
    DataFrames or dicts of numpy arrays (``batch_format="pyarrow" | "pandas" | "numpy"``); the result has
    the same type, with the rows in the same order.

    The embedding column of pyarrow and pandas batches is ``fixed_size_list<float32>[dim]`` (nullable with
    ``on_null="null"``): the schema the CLI's ``.parquet`` output and every staticst engine writes, so
    ``ds.write_parquet`` gives the same files. Numpy batches get one ``(n, dim)`` float32 array (Ray's tensor
    column).

    Example:
        >>> ds.map_batches(                                          # doctest: +SKIP
        ...     EmbedBatches,
        ...     fn_constructor_kwargs={"model": "/models/potion-base-8M", "column": "text"},
        ...     compute=ray.data.ActorPoolStrategy(size=2),
        ...     batch_size=4096,
        ...     batch_format="pyarrow",
        ... )

    Args:
        model: Folder path or Hub id of the model, as each actor's machine sees it; ``None`` is the built-in
            ``minishlab/potion-base-8M`` (shipped in the package).
        column: The text column.
        output_column: The embedding column to add (replaced if it exists).
        normalize_embeddings: L2-normalise each vector (after truncation).
        truncate_dim: Keep the first ``truncate_dim`` dimensions (Matryoshka models).
        prompt_name: Key of the model's prompts prepended to every text.
        prompt: Text prepended to every text (wins over ``prompt_name``).
        precision: ``"float32"`` only: int8 / uint8 ranges come from each batch, so quantized vectors would
            depend on how Ray splits the data (quantize afterwards with ``staticst.util.quantize_embeddings``).
        on_null: ``"error"`` (default: a null text raises) or ``"null"`` (a null embedding for it; pyarrow and
            pandas batches only).
        num_threads: Native kernel threads per actor (default ``STATICST_NUM_THREADS`` or the usable CPUs);
            ``1`` when running one actor per core.
        model_kwargs: More :class:`~staticst.StaticSentenceTransformer` arguments (``revision``,
            ``cache_folder``, ``local_files_only``, ``prompts``, ``kernel``, ...).

    Raises:
        ValueError: A bad option (see :func:`embed_dataset`), or ``prompt_name`` is not one of the model's prompts.
        ModelLoadError: The model could not be loaded in the actor.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        column: str = "text",
        output_column: str = "embedding",
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        precision: str = "float32",
        on_null: str = "error",
        num_threads: int | None = None,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        _check_names(column, output_column)
        self.column = column
        self.output_column = output_column
        self.spec = make_spec(
            model,
            model_kwargs=model_kwargs,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            prompt_name=prompt_name,
            prompt=prompt,
            precision=precision,
            on_null=on_null,
            num_threads=num_threads,
        )
        self.model = load_model(self.spec)

    def __call__(self, batch: Batch) -> Batch:
        """Embed ``batch[column]`` and return the batch with ``output_column`` added (same type, same rows).

        Raises:
            ValueError: The column is missing, or holds a null and ``on_null="error"``.
            TypeError: The column holds values that are not str, or the batch is of an unknown type.
        """
        import pandas as pd
        import pyarrow as pa

        if isinstance(batch, pa.Table):
            return self._arrow(batch)
        if isinstance(batch, dict):
            return self._numpy(batch)
        if isinstance(batch, pd.DataFrame):
            return self._pandas(batch)
        raise TypeError(
            f"EmbedBatches got a batch of type {type(batch).__name__}: use batch_format='pyarrow', 'pandas' or 'numpy'."
        )

    # ------------------------------------------------------------------ one method per batch format

    def _arrow(self, table: pa.Table) -> pa.Table:

        self._check_column(table.column_names)
        values = table.column(self.column)
        if not is_text_type(values.type):
            raise TypeError(f"column {self.column!r} is of type {values.type}, not string: {self._cast_hint()}.")
        emb, nulls = self._embed(values.to_pylist())
        array = _arrow_column(emb, nulls)
        if self.output_column in table.column_names:
            return table.set_column(table.column_names.index(self.output_column), self.output_column, array)
        return table.append_column(self.output_column, array)

    def _pandas(self, frame: pd.DataFrame) -> pd.DataFrame:
        self._check_column([str(c) for c in frame.columns])
        import pandas as pd

        emb, nulls = self._embed(frame[self.column].tolist())
        column = pd.arrays.ArrowExtensionArray(_arrow_column(emb, nulls))
        return frame.assign(**{self.output_column: column})

    def _numpy(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._check_column(list(batch))
        values = batch[self.column]
        if self.spec.on_null == "null":
            raise ValueError(_NUMPY_NULLS)
        emb, _ = self._embed(values.tolist() if isinstance(values, np.ndarray) else list(values))
        return {**batch, self.output_column: emb}

    # ------------------------------------------------------------------ shared

    def _embed(self, values: list[object]) -> tuple[np.ndarray, np.ndarray | None]:
        """``(embeddings, nulls)``; ``nulls`` is a mask in every batch with ``on_null="null"`` (one column type)."""
        emb, nulls = embed_values(
            self.model,
            values,
            self.spec,
            column=self.column,
            cast_hint=self._cast_hint(),
            null_hint=f"drop them first (ds.filter(lambda row: row[{self.column!r}] is not None)) or fill them",
        )
        if nulls is None and self.spec.on_null == "null":
            nulls = np.zeros(len(emb), dtype=bool)
        return emb, nulls

    def _cast_hint(self) -> str:
        return (
            f"convert it to text first (ds.map_batches(lambda df: df.astype({{{self.column!r}: str}}), "
            "batch_format='pandas')) or pass column= the text column"
        )

    def _check_column(self, names: list[str]) -> None:
        if self.column not in names:
            raise ValueError(
                f"column {self.column!r} is not in the dataset (columns: {', '.join(names)}): pass column= the text column."
            )


def embed_dataset(
    ds: Dataset,
    model: str | os.PathLike[str] | None = None,
    *,
    column: str = "text",
    output_column: str = "embedding",
    normalize_embeddings: bool = False,
    truncate_dim: int | None = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
    precision: str = "float32",
    on_null: str = "error",
    num_threads: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    concurrency: int | tuple[int, int] = 1,
    batch_size: int = DEFAULT_BATCH_SIZE,
    batch_format: str = "pyarrow",
    num_cpus: float | None = None,
    max_restarts: int | None = None,
    max_task_retries: int | None = None,
    check_resources: bool = True,
    **map_batches_kwargs: Any,
) -> Dataset:
    """Add an embedding column to ``ds`` with an actor pool of :class:`EmbedBatches` (lazy, like any Ray Data step).

    Each actor loads the model once (its table is read once per actor process). The options are checked
    here, on the driver; the column is checked here too when Ray knows the schema without running anything,
    else in the actors.

    Args:
        ds: The dataset; its other columns are kept.
        model: Folder path or Hub id as the workers see it; ``None`` is the built-in ``minishlab/potion-base-8M``.
        column: The text column.
        output_column: The embedding column to add (see :class:`EmbedBatches` for its type).
        normalize_embeddings: L2-normalise each vector (after truncation).
        truncate_dim: Keep the first ``truncate_dim`` dimensions.
        prompt_name: Key of the model's prompts prepended to every text.
        prompt: Text prepended to every text (wins over ``prompt_name``).
        precision: ``"float32"`` only (see :class:`EmbedBatches`).
        on_null: ``"error"`` (a null text raises) or ``"null"`` (a null embedding for it; not with ``"numpy"``
            batches).
        num_threads: Native kernel threads per actor (default ``STATICST_NUM_THREADS`` or the usable CPUs).
        model_kwargs: More :class:`~staticst.StaticSentenceTransformer` arguments.
        concurrency: Actors in the pool: a number, or ``(min, max)`` for an autoscaling pool.
        batch_size: Rows per call.
        batch_format: ``"pyarrow"`` (default: Ray's own blocks, no conversion), ``"pandas"`` or ``"numpy"``.
        num_cpus: CPUs Ray reserves for each actor (a reservation: the kernel's threads are ``num_threads``).
            ``None`` (default): the largest of 1, 1/2, 1/4, 1/8, 1/16 with which the ``concurrency`` actors (the
            minimum of a ``(min, max)`` pool) fit on the cluster's nodes *and* one whole CPU stays free on a node
            for the tasks that read and write the data (Ray Data runs them with 1 CPU each): 4 actors on two
            1-CPU nodes get 1/4 each. A pool that cannot start, or actors that take every CPU, wait forever in
            Ray (2.60) without an error; with ``check_resources`` a ``num_cpus`` that cannot fit is refused here.
        max_restarts: How often Ray restarts a dead actor (a killed process, a lost node); ``None`` keeps Ray
            Data's default (2.60: without limit). Passed as a Ray remote argument only when given (Ray 2.60
            deprecates those in favour of its defaults).
        max_task_retries: How often Ray retries a batch whose actor died (on the restarted or another actor);
            ``None`` keeps Ray Data's default (2.60: without limit once restarts are allowed).
        check_resources: Check (and derive) ``num_cpus`` against the CPUs of the cluster Ray is connected to
            (``ray.init()`` first; before it, this machine's CPUs, as ``ray.init()`` would start them). Turn it
            off on an autoscaling cluster whose nodes are not up yet, and pass ``num_cpus``.
        **map_batches_kwargs: Passed to ``Dataset.map_batches`` (``memory``, ``runtime_env``, ``resources``, ...).

    Returns:
        The dataset with ``output_column`` added.

    Raises:
        ValueError: A bad option, ``column`` is not in a known schema, or the actors cannot fit on the cluster
            (``num_cpus`` x ``concurrency`` against its nodes' CPUs; the message gives values that fit).
        TypeError: ``column`` has a known non-string type.
    """
    import ray.data

    _check_names(column, output_column)
    make_spec(
        model,
        model_kwargs=model_kwargs,
        normalize_embeddings=normalize_embeddings,
        truncate_dim=truncate_dim,
        prompt_name=prompt_name,
        prompt=prompt,
        precision=precision,
        on_null=on_null,
        num_threads=num_threads,
    )  # fails here, on the driver, rather than in every actor
    if batch_format not in _BATCH_FORMATS:
        raise ValueError(f"batch_format must be one of {list(_BATCH_FORMATS)}, got {batch_format!r}.")
    if batch_format == "numpy" and on_null == "null":
        raise ValueError(_NUMPY_NULLS)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    _check_schema(ds, column)
    num_cpus = actor_cpus(concurrency, num_cpus, _node_cpus() if check_resources else None)
    if isinstance(concurrency, tuple):
        compute = ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
    else:
        compute = ray.data.ActorPoolStrategy(size=concurrency)
    constructor = {
        "model": model if model is None else os.fspath(model),
        "column": column,
        "output_column": output_column,
        "normalize_embeddings": normalize_embeddings,
        "truncate_dim": truncate_dim,
        "prompt_name": prompt_name,
        "prompt": prompt,
        "precision": precision,
        "on_null": on_null,
        "num_threads": num_threads,
        "model_kwargs": model_kwargs,
    }
    options: dict[str, Any] = {
        "fn_constructor_kwargs": constructor,
        "compute": compute,
        "batch_size": batch_size,
        "batch_format": batch_format,
        "num_cpus": num_cpus,
        **{k: v for k, v in (("max_restarts", max_restarts), ("max_task_retries", max_task_retries)) if v is not None},
        **map_batches_kwargs,
    }
    return ds.map_batches(EmbedBatches, **options)


#: The reservations :func:`actor_cpus` tries, largest first.
_CPU_STEPS = (1.0, 0.5, 0.25, 0.125, 0.0625)


def _node_cpus() -> list[float]:
    """The CPUs of each live node of the cluster Ray is connected to; before ``ray.init()``, this machine's."""
    import ray

    if not ray.is_initialized():
        return [float(os.cpu_count() or 1)]
    return [float(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]


def _capacity(nodes: list[float], per_actor: float) -> int:
    """How many actors of ``per_actor`` CPUs fit on ``nodes`` with one whole CPU free on some node, however placed.

    Ray Data spreads an actor pool over the nodes (``SPREAD``), so the check assumes the worst placement: it
    takes ``floor((c - 1) / per_actor) + 1`` actors to leave a node of ``c`` CPUs without a whole one, and the
    pool must be smaller than the sum of those over the nodes.
    """
    eps = 1e-9
    fit = sum(int(cpus / per_actor + eps) for cpus in nodes)
    starve = sum(int((cpus - 1) / per_actor + eps) + 1 for cpus in nodes if cpus >= 1)
    return max(min(fit, starve - 1), 0)


def actor_cpus(concurrency: int | tuple[int, int], num_cpus: float | None, nodes: list[float] | None) -> float:
    """The CPUs each actor reserves: ``num_cpus`` checked, or derived, so the pool fits beside the data's tasks.

    Args:
        concurrency: The pool's size, or ``(min, max)`` (the ``min`` actors must fit).
        num_cpus: The reservation asked for, or ``None`` to derive it.
        nodes: The CPUs of each node, or ``None`` to skip the check (``num_cpus`` or 1 is used as it is).

    Returns:
        The reservation per actor.

    Raises:
        ValueError: ``concurrency`` or ``num_cpus`` is not a positive number, or the actors cannot fit while
            leaving one CPU for the read / write tasks (the message gives a ``num_cpus`` or ``concurrency`` that fits).
    """
    sizes = concurrency if isinstance(concurrency, tuple) else (concurrency, concurrency)
    if (
        len(sizes) != 2
        or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in sizes)
        or sizes[0] > sizes[1]
    ):
        raise ValueError(f"concurrency must be a positive int or (min, max) with 1 <= min <= max, got {concurrency!r}.")
    if num_cpus is not None and (
        isinstance(num_cpus, bool) or not isinstance(num_cpus, (int, float)) or not num_cpus > 0
    ):
        raise ValueError(f"num_cpus must be a positive number of CPUs per actor (e.g. 0.5), got {num_cpus!r}.")
    if nodes is None:
        return float(num_cpus) if num_cpus is not None else 1.0
    need = sizes[0]
    fits = [step for step in _CPU_STEPS if _capacity(nodes, step) >= need]
    cluster = f"the cluster's nodes have {', '.join(f'{c:g}' for c in nodes) or 'no'} CPU(s)"
    if num_cpus is not None:
        if _capacity(nodes, float(num_cpus)) >= need:
            return float(num_cpus)
        fix = (
            f"pass num_cpus={fits[0]:g}" if fits else f"lower concurrency to {max(_capacity(nodes, _CPU_STEPS[-1]), 1)}"
        )
        raise ValueError(
            f"{need} actor(s) of num_cpus={num_cpus:g} do not fit: {cluster}, and one whole CPU must stay free for the "
            f"tasks that read and write the data, else Ray waits forever: {fix}, add nodes, or on an autoscaling "
            "cluster pass check_resources=False."
        )
    if not fits:
        most = _capacity(nodes, _CPU_STEPS[-1])
        raise ValueError(
            f"concurrency={concurrency!r} needs {need} actor(s), but {cluster}: with one whole CPU left for the tasks "
            f"that read and write the data, at most {most} actor(s) of num_cpus={_CPU_STEPS[-1]:g} fit. Lower "
            "concurrency, add nodes, or on an autoscaling cluster pass check_resources=False and num_cpus."
        )
    return fits[0]


def _check_names(column: object, output_column: object) -> None:
    for name, value in (("column", column), ("output_column", output_column)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty str, got {value!r}.")
    if column == output_column:
        raise ValueError(f"output_column={output_column!r} would replace the text column: pick another name.")


def _check_schema(ds: Dataset, column: str) -> None:
    """Check ``column`` against the schema when Ray has it without executing anything."""
    import pyarrow as pa

    schema = ds.schema(fetch_if_missing=False)
    if schema is None:
        return
    names = list(schema.names)
    if column not in names:
        raise ValueError(
            f"column {column!r} is not in the dataset (columns: {', '.join(names)}): pass column= the text column."
        )
    kind = schema.types[names.index(column)]
    if isinstance(kind, pa.DataType) and not is_text_type(kind):
        raise TypeError(
            f"column {column!r} is of type {kind}, not string: convert it to text first (ds.map_batches(lambda df: "
            f"df.astype({{{column!r}: str}}), batch_format='pandas')) or pass column= the text column."
        )


def _arrow_column(emb: np.ndarray, nulls: np.ndarray | None) -> pa.Array:
    """``emb`` as a ``fixed_size_list<float32>[dim]`` column (no copy of the vectors), null where ``nulls`` says."""
    import pyarrow as pa

    values = pa.array(emb.reshape(-1), type=pa.float32())
    kind = pa.list_(pa.float32(), emb.shape[1])
    if nulls is None:
        return pa.Array.from_buffers(kind, len(emb), [None], children=[values])
    validity = pa.py_buffer(np.packbits(~nulls, bitorder="little"))
    return pa.Array.from_buffers(kind, len(nulls), [validity], children=[values], null_count=int(nulls.sum()))

"""PySpark integration: a UDF that embeds a string column into ``array<float>``.

Needs PySpark with pandas and pyarrow (``pip install 'staticst[spark]'``); importing this module without
PySpark raises :class:`~staticst.MissingDependencyError`.

>>> from staticst.integrations.spark import embed_column, embedding_udf
>>> df = spark.read.parquet("texts.parquet")                                   # doctest: +SKIP
>>> df = embed_column(df, "/models/potion-base-8M", column="text")             # doctest: +SKIP
>>> embed = embedding_udf("/models/potion-base-8M", normalize_embeddings=True)  # doctest: +SKIP
>>> df.select("id", embed("text").alias("embedding"))                          # doctest: +SKIP

The UDF is a ``pandas_udf`` (Spark 3.x and 4.x), or on Spark 4.1+ an ``arrow_udf`` (the default there:
the same results without the pandas round trip, several times the rows/s; see ``docs/scale.md``). Both
call :func:`embed_batch`.

Each Python worker loads the model once: the UDF carries only the model's name and the options, and the
first batch a worker encodes loads the model into a cache in this module (keyed by the model and its
options), which every later batch of that worker reuses (Spark reuses Python workers by default,
``spark.python.worker.reuse``). A batch is at most ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows
(10,000 by default).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from staticst.errors import MissingDependencyError
from staticst.integrations._common import EncodeSpec, embed_values, is_text_type, load_model, make_spec
from staticst.model import StaticSentenceTransformer

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame

__all__ = ["cached_model", "embed_arrow", "embed_batch", "embed_column", "embed_series", "embedding_udf", "ship_model"]

#: The model of each :attr:`EncodeSpec.cache_key`, loaded in this (worker) process.
_MODELS: dict[str, StaticSentenceTransformer] = {}
_MODELS_LOCK = threading.Lock()


def _require_spark() -> None:
    try:
        import pyspark.sql  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "staticst.integrations.spark needs PySpark, which is not installed: pip install 'staticst[spark]'."
        ) from exc


_require_spark()


def cached_model(spec: EncodeSpec) -> StaticSentenceTransformer:
    """The model of ``spec`` in this process: loaded on first use, then reused (one per worker and options)."""
    with _MODELS_LOCK:
        model = _MODELS.get(spec.cache_key)
        if model is None:
            model = _MODELS[spec.cache_key] = load_model(spec)
    return model


UdfType = Literal["auto", "pandas", "arrow"]
_UDF_TYPES = ("auto", "pandas", "arrow")
_INPUT = "the UDF's input"


def embed_batch(values: list[object], spec: EncodeSpec, column: str = _INPUT) -> tuple[np.ndarray, np.ndarray | None]:
    """The batch function of both UDF kinds (in a worker): one batch of texts into ``(embeddings, nulls)``.

    Args:
        values: The texts of one Arrow batch, in row order.
        spec: The encode options (built by :func:`embedding_udf`).
        column: The column's name for error messages.

    Returns:
        ``(n, dim)`` float32 vectors in row order and the null mask (``None`` when no text is null).

    Raises:
        TypeError: A value is not a str (the UDF was applied to a non-string column).
        ValueError: A value is null and ``on_null="error"``.
    """
    return embed_values(
        cached_model(spec),
        values,
        spec,
        column=column,
        cast_hint=_cast_hint(column),
        null_hint="drop them (df.na.drop(subset=[...])) or fill them (df.na.fill('', subset=[...]))",
    )


def _cast_hint(column: str) -> str:
    return "cast the column to string first" if column == _INPUT else f"cast it first: F.col({column!r}).cast('string')"


def embed_series(texts: pd.Series, spec: EncodeSpec, column: str = _INPUT) -> pd.Series:
    """The ``pandas_udf`` body: a pandas batch of texts into a Series of 1-D float32 arrays (``None`` for nulls)."""
    import pandas as pd

    emb, nulls = embed_batch(texts.tolist(), spec, column)
    rows: list[Any] = list(emb)
    if nulls is not None:
        for i in nulls.nonzero()[0]:
            rows[i] = None
    return pd.Series(rows, index=texts.index, dtype=object)


def embed_arrow(texts: pa.Array, spec: EncodeSpec, column: str = _INPUT) -> pa.Array:
    """The ``arrow_udf`` body: an Arrow batch of texts into a ``list<float>`` array built on the output buffer."""
    import pyarrow as pa

    if not is_text_type(texts.type):
        raise TypeError(f"column {column!r} is of type {texts.type}, not string: {_cast_hint(column)}.")
    emb, nulls = embed_batch(texts.to_pylist(), spec, column)
    n, dim = emb.shape
    if n * dim >= 2**31:  # list<float> has int32 offsets
        raise ValueError(
            f"a batch of {n:,} rows x {dim} dimensions overflows Arrow's list offsets: lower "
            "spark.sql.execution.arrow.maxRecordsPerBatch (default 10,000)."
        )
    offsets = pa.py_buffer(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    validity = None if nulls is None else pa.py_buffer(np.packbits(~nulls, bitorder="little"))
    values = pa.array(emb.reshape(-1), type=pa.float32())
    null_count = 0 if nulls is None else int(nulls.sum())
    return pa.Array.from_buffers(
        pa.list_(pa.float32()), n, [validity, offsets], children=[values], null_count=null_count
    )


def embedding_udf(
    model: str | os.PathLike[str] | None = None,
    *,
    normalize_embeddings: bool = False,
    truncate_dim: int | None = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
    precision: str = "float32",
    on_null: str = "null",
    num_threads: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    udf_type: UdfType = "auto",
    from_spark_files: bool = False,
    column: str | None = None,
) -> Any:
    """A UDF embedding a string column into ``array<float>``; the model loads once per Python worker.

    Args:
        model: Folder path or Hub id of the model as each executor sees it; ``None`` is the built-in
            ``minishlab/potion-base-8M`` (shipped in the package).
        normalize_embeddings: L2-normalise each vector (after truncation).
        truncate_dim: Keep the first ``truncate_dim`` dimensions (Matryoshka models).
        prompt_name: Key of the model's prompts prepended to every text.
        prompt: Text prepended to every text (wins over ``prompt_name``).
        precision: ``"float32"`` only: int8 / uint8 ranges come from each batch, so quantized vectors would
            depend on how Spark splits the data (quantize afterwards with ``staticst.util.quantize_embeddings``).
        on_null: ``"null"`` (default: a null text gets a null embedding, as Spark's own functions do) or
            ``"error"`` (a null text fails the task).
        num_threads: Native kernel threads per Python worker (default ``STATICST_NUM_THREADS`` or the usable
            CPUs); ``1`` when every core runs a task.
        model_kwargs: More :class:`~staticst.StaticSentenceTransformer` arguments (``revision``,
            ``cache_folder``, ``local_files_only``, ``prompts``, ``kernel``, ...).
        udf_type: ``"pandas"`` (a ``pandas_udf``), ``"arrow"`` (an ``arrow_udf``, Spark 4.1+), or ``"auto"``:
            ``"arrow"`` where PySpark has it, else ``"pandas"``. Same vectors; the Arrow one skips pandas.
        from_spark_files: ``model`` is the name :func:`ship_model` returned (a folder shipped to every node as an
            archive), or of a folder given to ``SparkContext.addFile(folder, recursive=True)`` (local mode only:
            Spark refuses a local directory on a real master): each worker opens ``SparkFiles.get(model)``.
        column: The input column's name, for error messages only (:func:`embed_column` sets it).

    Returns:
        A UDF of one string column returning ``array<float>``.

    Raises:
        ValueError: ``precision`` other than ``"float32"``, ``udf_type="arrow"`` on a PySpark without
            ``arrow_udf``, ``from_spark_files`` without a folder name, or another bad option.
    """
    import pyspark.sql.functions as functions
    from pyspark.sql.types import ArrayType, FloatType

    spec = make_spec(
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
    if udf_type not in _UDF_TYPES:
        raise ValueError(f"udf_type must be one of {list(_UDF_TYPES)}, got {udf_type!r}.")
    has_arrow = hasattr(functions, "arrow_udf")
    if udf_type == "arrow" and not has_arrow:
        raise ValueError("udf_type='arrow' needs PySpark 4.1 or later (pyspark.sql.functions.arrow_udf): use 'pandas'.")
    if from_spark_files and (spec.model is None or os.path.basename(spec.model) != spec.model):
        raise ValueError(
            f"from_spark_files=True needs the name of the folder given to SparkContext.addFile or returned by "
            f"ship_model (e.g. "
            f"'potion-base-8M'), got model={spec.model!r}."
        )
    name = column if column is not None else _INPUT
    return_type = ArrayType(FloatType())
    # Spark infers the UDF kind from the function's annotations; its typed overloads only cover an explicit
    # functionType, so the factories are called untyped.
    if udf_type == "arrow" or (udf_type == "auto" and has_arrow):
        factory: Any = functions.arrow_udf
        return factory(_arrow_function(spec, name, from_spark_files), returnType=return_type)
    factory = functions.pandas_udf
    return factory(_pandas_function(spec, name, from_spark_files), returnType=return_type)


def ship_model(spark: Any, folder: str | os.PathLike[str], archive_dir: str | os.PathLike[str] | None = None) -> str:
    """Ship a model folder to every executor of ``spark``'s cluster; returns the name for ``from_spark_files=True``.

    The folder is packed into ``<name>-<sha256 prefix>.tar.gz`` (in ``archive_dir``, default
    ``<tmp>/staticst-spark-<uid>``; the same content reuses the same archive) and given to
    ``SparkContext.addArchive(archive#name)``: Spark copies it to each node once and unpacks it there as a folder
    called ``name``, which :func:`embedding_udf` opens through ``SparkFiles.get(name)``. It works on any master
    (``addFile`` of a folder works only in local mode). The archive must stay until the session ends.

    Example:
        >>> name = ship_model(spark, "/local/models/potion-base-8M")        # doctest: +SKIP
        >>> df = embed_column(df, name, from_spark_files=True)               # doctest: +SKIP

    Args:
        spark: A ``SparkSession`` or ``SparkContext``.
        folder: The model folder on the driver's machine.
        archive_dir: Where to write the archive.

    Returns:
        The name of the shipped folder (the folder's own name, with a content digest).

    Raises:
        FileNotFoundError: ``folder`` is not a folder.
    """
    import hashlib
    import tarfile
    import tempfile

    source = os.path.abspath(os.fspath(folder))
    if not os.path.isdir(source):
        raise FileNotFoundError(f"ship_model needs a model folder on the driver, got {source!r} (not a folder).")
    files = sorted(
        os.path.relpath(os.path.join(root, name), source) for root, _, names in os.walk(source) for name in names
    )
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode() + b"\0")
        with open(os.path.join(source, rel), "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    name = f"{os.path.basename(source.rstrip(os.sep))}-{digest.hexdigest()[:12]}"
    where = (
        os.fspath(archive_dir)
        if archive_dir is not None
        else os.path.join(tempfile.gettempdir(), f"staticst-spark-{os.getuid()}")
    )
    os.makedirs(where, exist_ok=True)
    archive = os.path.join(where, f"{name}.tar.gz")
    if not os.path.exists(archive):
        partial = f"{archive}.{os.getpid()}.partial"
        with tarfile.open(partial, "w:gz") as tar:
            for rel in files:
                tar.add(os.path.join(source, rel), arcname=rel)
        os.replace(partial, archive)
    context = getattr(spark, "sparkContext", spark)
    context.addArchive(f"{archive}#{name}")
    return name


def _worker_spec(spec: EncodeSpec, from_spark_files: bool) -> EncodeSpec:
    """``spec`` as this worker loads it: with ``from_spark_files``, the model is this node's copy of the folder."""
    if not from_spark_files or spec.model is None:
        return spec
    from pyspark import SparkFiles

    return dataclasses.replace(spec, model=SparkFiles.get(spec.model))


def _pandas_function(spec: EncodeSpec, column: str, from_spark_files: bool) -> Any:
    """The Series -> Series function of the ``pandas_udf``; its annotations are real classes (Spark reads them)."""
    import pandas as pd

    def embed(texts: pd.Series) -> pd.Series:
        return embed_series(texts, _worker_spec(spec, from_spark_files), column)

    embed.__annotations__ = {"texts": pd.Series, "return": pd.Series}
    return embed


def _arrow_function(spec: EncodeSpec, column: str, from_spark_files: bool) -> Any:
    """The Array -> Array function of the ``arrow_udf``; its annotations are real classes (Spark reads them)."""
    import pyarrow as pa

    def embed(texts: pa.Array) -> pa.Array:
        return embed_arrow(texts, _worker_spec(spec, from_spark_files), column)

    embed.__annotations__ = {"texts": pa.Array, "return": pa.Array}
    return embed


def embed_column(
    df: DataFrame,
    model: str | os.PathLike[str] | None = None,
    *,
    column: str = "text",
    output_column: str = "embedding",
    **options: Any,
) -> DataFrame:
    """``df`` with an ``array<float>`` embedding column added (lazy, like any ``withColumn``).

    The column is checked here, on the driver: it must exist and be a string column.

    Args:
        df: The DataFrame; its other columns are kept.
        model: Folder path or Hub id as the executors see it; ``None`` is the built-in model.
        column: The string column to embed.
        output_column: The column to add (replaced if it exists).
        **options: :func:`embedding_udf`'s options (``normalize_embeddings``, ``truncate_dim``,
            ``prompt_name``, ``prompt``, ``precision``, ``on_null``, ``num_threads``, ``model_kwargs``,
            ``udf_type``, ``from_spark_files``).

    Returns:
        The DataFrame with ``output_column``.

    Raises:
        ValueError: ``column`` is not in ``df``, ``output_column`` would replace it, or a bad option.
        TypeError: ``column`` is not a string column.
    """
    from pyspark.sql.types import CharType, StringType, VarcharType

    names = df.columns
    if column not in names:
        raise ValueError(
            f"column {column!r} is not in the DataFrame (columns: {', '.join(names)}): pass column= the text column."
        )
    if output_column == column:
        raise ValueError(f"output_column={output_column!r} would replace the text column: pick another name.")
    kind = df.schema[column].dataType
    if not isinstance(kind, (StringType, VarcharType, CharType)):
        raise TypeError(
            f"column {column!r} is {kind.simpleString()}, not string: cast it first, "
            f"df.withColumn({column!r}, F.col({column!r}).cast('string')), or pass column= the text column."
        )
    udf = embedding_udf(model, column=column, **options)
    result: DataFrame = df.withColumn(output_column, udf(_col(column)))
    return result


def _col(name: str) -> Column:
    from pyspark.sql.functions import col

    return col("`" + name.replace("`", "``") + "`")  # a top-level column, even with dots in its name

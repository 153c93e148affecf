"""staticst.integrations.spark on a real local SparkSession (one per module: local[2], no UI, loopback only).

The session sets ``spark.sql.execution.arrow.maxRecordsPerBatch`` to 7, so every UDF here sees many small
batches. Reference vectors come from ``StaticSentenceTransformer.encode`` in this process (as float32);
texts are real MTEB sentences.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, IntegerType, LongType, StructField, StructType

from staticst import StaticSentenceTransformer
from staticst.integrations._common import make_spec
from staticst.integrations.spark import cached_model, embed_batch, embed_column, embedding_udf, ship_model

pytestmark = pytest.mark.slow  # integration job: a real SparkSession (a JVM); `-m "not slow"` leaves it out

REPO = Path(__file__).resolve().parent.parent
N_ROWS = 200
MAX_RECORDS = 7


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    # The JVM (and the Python workers it starts) inherit this environment: with this interpreter's folder
    # first on PATH, a worker is this venv's Python even when the venv is not activated.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        env.setenv("PYSPARK_PYTHON", sys.executable)
        session = _session(tmp_path_factory)
        session.sparkContext.setLogLevel("ERROR")
        try:
            yield session
        finally:
            session.stop()


def _session(tmp_path_factory: pytest.TempPathFactory) -> SparkSession:
    return (
        SparkSession.builder.master("local[2]")
        .appName("staticst-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(tmp_path_factory.mktemp("spark-local")))
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(MAX_RECORDS))
        .getOrCreate()
    )


@pytest.fixture(scope="module")
def texts(shared_dir: Path) -> list[str]:
    path = shared_dir / "data" / "mteb" / "sickr-sts" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [row["sentence1"] for row in rows[:N_ROWS]]


@pytest.fixture(scope="module")
def model_2m(shared_model: Any) -> Path:
    return Path(shared_model("potion-base-2M"))


def _frame(spark: SparkSession, texts: list[Any], partitions: int = 2) -> DataFrame:
    rows = [(i, t, i % 3) for i, t in enumerate(texts)]
    return spark.createDataFrame(rows, "id long, text string, label int").repartition(partitions, "label")


def _vectors(rows: list[Any], column: str = "embedding") -> np.ndarray:
    return np.array([row[column] for row in rows], dtype=np.float32)


@pytest.mark.parametrize("udf_type", ["arrow", "pandas"])
def test_embed_column_equals_encode(spark: SparkSession, texts: list[str], model_2m: Path, udf_type: str) -> None:
    options: dict[str, Any] = {"normalize_embeddings": True, "truncate_dim": 40, "prompt_name": "query"}
    prompts = {"query": "query: "}
    out = embed_column(
        _frame(spark, texts), str(model_2m), model_kwargs={"prompts": prompts}, udf_type=udf_type, **options
    )
    assert out.schema["embedding"].dataType == ArrayType(FloatType())
    rows = sorted(out.collect(), key=lambda row: row["id"])
    assert [row["id"] for row in rows] == list(range(len(texts)))
    assert [(row["text"], row["label"]) for row in rows] == [(t, i % 3) for i, t in enumerate(texts)]
    expected = StaticSentenceTransformer(model_2m, prompts=prompts).encode(texts, **options)
    np.testing.assert_array_equal(_vectors(rows), expected)


def test_builtin_model_and_hub_id(spark: SparkSession, texts: list[str], model_2m: Path, tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--someone--potion-2m"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots").mkdir()
    os.symlink(model_2m, repo / "snapshots" / commit)
    builtin = embedding_udf()
    hub = embedding_udf(
        "someone/potion-2m", model_kwargs={"cache_folder": str(tmp_path / "cache"), "local_files_only": True}
    )
    df = _frame(spark, texts[:60])
    rows = sorted(df.select("id", builtin("text").alias("a"), hub("text").alias("b")).collect(), key=lambda r: r["id"])
    np.testing.assert_array_equal(_vectors(rows, "a"), StaticSentenceTransformer().encode(texts[:60]))
    np.testing.assert_array_equal(_vectors(rows, "b"), StaticSentenceTransformer(model_2m).encode(texts[:60]))


def test_a_model_folder_shipped_with_add_file(spark: SparkSession, texts: list[str], model_2m: Path) -> None:
    """The cluster recipe: ship the folder to every node, each worker opens its own copy (SparkFiles)."""
    spark.sparkContext.addFile(str(model_2m), recursive=True)
    udf = embedding_udf(model_2m.name, from_spark_files=True, normalize_embeddings=True)
    rows = sorted(_frame(spark, texts[:50]).select("id", udf("text").alias("e")).collect(), key=lambda r: r["id"])
    np.testing.assert_array_equal(
        _vectors(rows, "e"), StaticSentenceTransformer(model_2m).encode(texts[:50], normalize_embeddings=True)
    )
    with pytest.raises(
        ValueError, match=r"from_spark_files=True needs the name of the folder given to SparkContext\.addFile"
    ):
        embedding_udf(str(model_2m), from_spark_files=True)


def test_a_model_folder_shipped_as_an_archive(
    spark: SparkSession, texts: list[str], model_2m: Path, tmp_path: Path
) -> None:
    """ship_model: the recipe that works on a real master too (tests/test_clusters.py runs it on one)."""
    name = ship_model(spark, model_2m, archive_dir=tmp_path)
    assert name.startswith("potion-base-2M-") and (tmp_path / f"{name}.tar.gz").is_file()
    assert ship_model(spark.sparkContext, model_2m, archive_dir=tmp_path) == name  # same content, same archive
    udf = embedding_udf(name, from_spark_files=True)
    rows = sorted(_frame(spark, texts[:50]).select("id", udf("text").alias("e")).collect(), key=lambda r: r["id"])
    np.testing.assert_array_equal(_vectors(rows, "e"), StaticSentenceTransformer(model_2m).encode(texts[:50]))
    with pytest.raises(FileNotFoundError, match=r"ship_model needs a model folder on the driver, got .*nowhere"):
        ship_model(spark, tmp_path / "nowhere")


def _instrumented(model: str, udf_type: str) -> Any:
    """A UDF on the integration's own batch function (embed_batch) that also reports, for every row, the size of
    the batch it came in, the worker's pid, and how many batches that worker's cached model had encoded."""
    spec = make_spec(
        model,
        model_kwargs=None,
        normalize_embeddings=False,
        truncate_dim=None,
        prompt_name=None,
        prompt=None,
        precision="float32",
        on_null="null",
        num_threads=None,
    )
    schema = StructType(
        [
            StructField("batch", IntegerType()),
            StructField("pid", LongType()),
            StructField("seen", IntegerType()),
            StructField("embedding", ArrayType(FloatType())),
        ]
    )

    def record(n: int) -> tuple[int, int]:
        state = vars(cached_model(spec))  # the worker's cached model object itself
        state["_test_batches"] = state.get("_test_batches", 0) + 1
        return os.getpid(), state["_test_batches"]

    if udf_type == "pandas":

        @F.pandas_udf(schema)
        def instrumented(texts: pd.Series) -> pd.DataFrame:
            emb, _ = embed_batch(texts.tolist(), spec)
            pid, seen = record(len(texts))
            n = len(texts)
            return pd.DataFrame({"batch": [n] * n, "pid": [pid] * n, "seen": [seen] * n, "embedding": list(emb)})

        return instrumented

    @F.arrow_udf(schema)
    def instrumented_arrow(texts: pa.Array) -> pa.Array:
        emb, _ = embed_batch(texts.to_pylist(), spec)
        pid, seen = record(len(texts))
        n = len(texts)
        return pa.StructArray.from_arrays(
            [pa.array([n] * n, pa.int32()), pa.array([pid] * n, pa.int64()), pa.array([seen] * n, pa.int32()),
             pa.array(list(emb), pa.list_(pa.float32()))],
            names=["batch", "pid", "seen", "embedding"],
        )  # fmt: skip

    return instrumented_arrow


@pytest.mark.parametrize("udf_type", ["arrow", "pandas"])
def test_batches_honour_max_records_per_batch_and_reuse_the_workers_model(
    spark: SparkSession, texts: list[str], model_2m: Path, udf_type: str
) -> None:
    udf = _instrumented(str(model_2m), udf_type)
    out = _frame(spark, texts).select("id", udf("text").alias("r")).select("id", "r.*")
    rows = sorted(out.collect(), key=lambda row: row["id"])
    assert [row["id"] for row in rows] == list(range(len(texts)))
    sizes = [row["batch"] for row in rows]
    assert max(sizes) == MAX_RECORDS  # never larger than maxRecordsPerBatch, and the limit was reached
    np.testing.assert_array_equal(_vectors(rows), StaticSentenceTransformer(model_2m).encode(texts))
    # One model per worker process: the batches a worker encoded all found the same cached model object,
    # so its counter reached the number of batches that worker saw (29 or more batches over at most 2 workers).
    batches_by_pid: dict[int, int] = {}
    seen_by_pid: dict[int, int] = {}
    for row in rows:
        seen_by_pid[row["pid"]] = max(seen_by_pid.get(row["pid"], 0), row["seen"])
    for pid in seen_by_pid:
        batches_by_pid[pid] = len({(r["seen"]) for r in rows if r["pid"] == pid})
    assert len(seen_by_pid) <= 2
    assert all(seen_by_pid[pid] >= batches_by_pid[pid] > 1 for pid in seen_by_pid), (seen_by_pid, batches_by_pid)


@pytest.mark.parametrize("udf_type", ["arrow", "pandas"])
def test_null_texts_get_null_embeddings(spark: SparkSession, texts: list[str], model_2m: Path, udf_type: str) -> None:
    values = [None if i % 4 == 0 else t for i, t in enumerate(texts[:40])]
    rows = sorted(
        embed_column(_frame(spark, values), str(model_2m), udf_type=udf_type).collect(), key=lambda r: r["id"]
    )
    assert [row["id"] for row in rows] == list(range(40))
    assert [row["embedding"] is None for row in rows] == [t is None for t in values]
    kept = [t for t in values if t is not None]
    got = _vectors([row for row in rows if row["embedding"] is not None])
    np.testing.assert_array_equal(got, StaticSentenceTransformer(model_2m).encode(kept))


def test_on_null_error_fails_naming_the_column_and_the_fix(spark: SparkSession, model_2m: Path) -> None:
    df = spark.createDataFrame([(0, "fine"), (1, None)], "id long, body string")
    with pytest.raises(Exception, match=r"column 'body' holds a null .*df\.na\.drop.*on_null='null'"):
        embed_column(df, str(model_2m), column="body", on_null="error").collect()


def test_a_udf_applied_to_a_number_column_names_the_cast(spark: SparkSession, model_2m: Path) -> None:
    df = spark.createDataFrame([(0, 5), (1, 6)], "id long, n long")
    for udf_type in ("arrow", "pandas"):
        message = (
            r"column \"the UDF's input\" (is of type int64, not string|holds int values, not str).*: cast the column"
        )
        with pytest.raises(Exception, match=message):
            df.select(embedding_udf(str(model_2m), udf_type=udf_type)("n")).collect()


def test_column_errors_are_raised_on_the_driver(spark: SparkSession, texts: list[str]) -> None:
    df = _frame(spark, texts[:5])
    with pytest.raises(
        ValueError, match=r"column 'body' is not in the DataFrame \(columns: id, text, label\): pass column="
    ):
        embed_column(df, column="body")
    with pytest.raises(
        TypeError, match=r"column 'label' is int, not string: cast it first, df\.withColumn\('label', F\.col"
    ):
        embed_column(df, column="label")
    with pytest.raises(ValueError, match=r"would replace the text column"):
        embed_column(df, output_column="text")


def test_bad_options_are_raised_when_the_udf_is_built() -> None:
    with pytest.raises(ValueError, match=r"precision='binary' is not supported here, only 'float32'"):
        embedding_udf(precision="binary")
    with pytest.raises(ValueError, match=r"truncate_dim must be a positive integer"):
        embedding_udf(truncate_dim=0)
    with pytest.raises(ValueError, match=r"udf_type must be one of"):
        embedding_udf(udf_type="scalar")  # type: ignore[arg-type]


def test_without_pyspark_the_module_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['pyspark'] = None  # as if PySpark were not installed\n"
        "try:\n"
        "    import staticst.integrations.spark\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "MissingDependencyError staticst.integrations.spark needs PySpark, which is not installed: "
        "pip install 'staticst[spark]'."
    )

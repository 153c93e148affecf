"""Where a Spark ``arrow_udf`` embedding job spends its time: Spark's own data movement against the encode.

Usage::

    python benchmarks/spark_floor.py [--rows 400000] [--repeats 3] [--model PATH] [--master local[2]]

Each job reads the same cached DataFrame of ``--rows`` texts and writes to Spark's ``noop`` sink (every row
computed, nothing stored); the jobs differ only in the UDF's body:

- ``input only``: an ``arrow_udf`` that returns one int per row without looking at the texts: Spark moving the
  texts to the Python worker and an int column back (the cost of any Python UDF over this column);
- ``input as Python strings``: the same, after ``to_pylist()`` (what the embedding UDF does with its input);
- ``constant list<float>[dim] out``: a ``list<float>`` column of zeros of the model's width built on one
  buffer, as ``embed_arrow`` builds its output: everything the embedding job does **except the encode**;
- ``constant binary out``: the same bytes as one ``binary`` value per row (for comparison: Spark converts a
  binary value per row, a list value element by element);
- ``embed_column``: the real job (``staticst.integrations.spark.embed_column``, one kernel thread per task);

beside plain ``encode`` of the same texts in this process (1 and 2 threads). Medians over ``--repeats`` rounds,
jobs alternating. The ratio that matters: the constant-output job is the fastest any UDF returning these vectors
can be, so ``constant list<float> / plain encode`` bounds what the embedding job can reach per CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _texts(rows: int) -> list[str]:
    base = "the quick brown fox {i} jumps over the lazy dog number {j} again and again"
    return [base.format(i=i, j=i % 977) for i in range(rows)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None, help="model folder (default: the built-in potion-base-8M)")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args(argv)

    import pyarrow as pa
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, BinaryType, FloatType, IntegerType

    from staticst import StaticSentenceTransformer
    from staticst.integrations.spark import embed_column

    if not hasattr(F, "arrow_udf"):
        raise SystemExit("this benchmark needs PySpark 4.1 or later (pyspark.sql.functions.arrow_udf)")
    arrow_udf: Any = F.arrow_udf  # its overloads do not cover a plain Array -> Array function
    texts = _texts(args.rows)
    model = StaticSentenceTransformer(args.model)
    dim = model.get_sentence_embedding_dimension() or 0
    model.encode(texts[:20_000])  # the word cache warm, as a worker's first batches leave it

    def input_only(col: pa.Array) -> pa.Array:
        return pa.array(np.zeros(len(col), np.int32))

    def input_as_strings(col: pa.Array) -> pa.Array:
        return pa.array(np.zeros(len(col.to_pylist()), np.int32))

    def constant_list(col: pa.Array) -> pa.Array:
        n = len(col)
        offsets = pa.py_buffer(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
        values = pa.array(np.zeros(n * dim, np.float32))
        return pa.Array.from_buffers(pa.list_(pa.float32()), n, [None, offsets], children=[values])

    def constant_binary(col: pa.Array) -> pa.Array:
        n = len(col)
        offsets = pa.py_buffer(np.arange(0, (n + 1) * dim * 4, dim * 4, dtype=np.int32))
        return pa.Array.from_buffers(pa.binary(), n, [None, offsets, pa.py_buffer(np.zeros(n * dim, np.float32))])

    for function in (input_only, input_as_strings, constant_list, constant_binary):
        function.__annotations__ = {"col": pa.Array, "return": pa.Array}  # Spark reads the annotations

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers run this interpreter
    spark = (
        SparkSession.builder.master(args.master)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "16")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        df = spark.createDataFrame([(t,) for t in texts], ["text"]).repartition(16).cache()
        df.count()
        jobs: dict[str, Callable[[], Any]] = {
            "input only (an int per row out)": lambda: df.select(arrow_udf(input_only, IntegerType())("text")),
            "input as Python strings": lambda: df.select(arrow_udf(input_as_strings, IntegerType())("text")),
            f"constant list<float>[{dim}] out": lambda: df.select(
                arrow_udf(constant_list, ArrayType(FloatType()))("text")
            ),
            f"constant binary ({dim * 4} B) out": lambda: df.select(arrow_udf(constant_binary, BinaryType())("text")),
            "embed_column (1 thread per task)": lambda: embed_column(df, args.model, num_threads=1),
        }
        seconds: dict[str, list[float]] = {
            name: [] for name in [*jobs, "plain encode, 2 threads", "plain encode, 1 thread"]
        }
        for _ in range(args.repeats):
            for name, job in jobs.items():
                start = time.perf_counter()
                job().write.format("noop").mode("overwrite").save()
                seconds[name].append(time.perf_counter() - start)
            for threads in (2, 1):
                model.num_threads = threads
                start = time.perf_counter()
                model.encode(texts)
                seconds[f"plain encode, {threads} thread{'s' if threads > 1 else ''}"].append(
                    time.perf_counter() - start
                )
    finally:
        spark.stop()

    base = args.rows / statistics.median(seconds["plain encode, 2 threads"])
    print(f"{args.rows:,} texts, {args.master}, {args.repeats} rounds (median); load average {os.getloadavg()[0]:.2f}")
    print(f"{'job':<36} {'seconds':>8} {'rows/s':>10} {'us/row':>7} {'vs plain encode 2 threads':>26}")
    for name, runs in seconds.items():
        median = statistics.median(runs)
        rate = args.rows / median
        print(f"{name:<36} {median:>8.2f} {rate:>10,.0f} {median / args.rows * 1e6:>7.2f} {rate / base:>25.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

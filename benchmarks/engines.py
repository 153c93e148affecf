"""Throughput of the Ray Data and Spark integrations on this machine, against plain ``encode`` in one process.

Usage::

    python benchmarks/engines.py [--rows 1000000] [--repeats 3] [--output benchmarks/results] [--plot docs/img/scale.png]
    python benchmarks/engines.py --quick          # a smoke run: 20,000 rows, one round, fewer configurations

What it does:

1. Texts: the unique texts of the MTEB sets in ``$STATICST_SHARED_DIR/data/mteb`` (default ``../shared``; SciFact's
   corpus by title only, so texts stay sentence-sized: 60,850, mean 74 characters), in a fixed shuffled order,
   cycled to ``--rows`` rows and written as 16 parquet files (``id``, ``text``) into a temporary folder.
2. Plain ``encode`` (the baseline): a fresh child process reads the ``text`` column into a list, warms up on
   20,000 texts and times one ``model.encode(texts)`` of all of them (threads: all usable CPUs, then 1); its
   peak RSS is ``VmHWM`` (it holds every text and every vector).
3. Ray: one local cluster (``ray.init(num_cpus=2)``, loopback, no dashboard). The parquet files are read into
   the object store in 64 blocks before any timing; a run is ``embed_dataset(source, concurrency=workers,
   num_threads=threads)`` consumed with ``iter_batches`` in the driver. Workers x threads: 1x1, 1x2, 2x1, 2x2;
   and ``ray-read 2x1``, the same with ``read_parquet`` inside the timed job (the actors then reserve
   ``num_cpus=0.5`` each, else the read tasks find no free CPU).
4. Spark: a ``local[workers]`` session per worker count (no UI, loopback, Arrow on); the files are read and
   cached in 64 partitions before timing; a run is ``embed_column(source, num_threads=threads)`` written to
   Spark's ``noop`` sink (every row is computed, nothing is stored). The Arrow UDF at 1x1, 1x2, 2x1, 2x2 and
   the pandas UDF at 2x1.
5. Before timing, each engine's vectors for the first 2,000 rows must equal ``encode`` exactly (else exit 1).

Every round runs every configuration once (noise from other processes hits them alike); rows/s is the median
over ``--repeats`` rounds. Engine times run from building the pipeline to the last row: a Ray job starts its
actors and loads the model in each; Spark reuses its Python workers (and their model) between jobs of one
session, and each round starts new sessions. Cluster and session start-up are reported apart. The
``1,000-row job`` column is a job of 1,000 rows with the same configuration, run after the large one in the
first round: the cost of any job, whatever its size. Peak memory per worker is the largest RSS (and RSS less
shared pages) that any Ray actor process (``ray::MapWorker...``) or Spark Python worker (``pyspark.daemon``
and its forks) reached, sampled every 50 ms. Writes ``engines.json`` to ``--output`` and the figure to
``--plot`` (default ``<output>/engines.png``) and prints the table, the load average and the ratios.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TEXT_FIELDS = ("sentence1", "sentence2", "text", "title")
FILES = 16
CHECK_ROWS = 2000
SMALL_ROWS = 1000


@dataclass
class Result:
    engine: str
    workers: int
    threads: int
    runs_s: list[float] = field(default_factory=list)
    rows: int = 0
    peak_worker_rss_mb: float = 0.0
    peak_worker_private_mb: float = 0.0
    small_job_s: float | None = None
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.engine} {self.workers}x{self.threads}"

    @property
    def rows_per_s(self) -> float:
        return self.rows / statistics.median(self.runs_s)


# ---------------------------------------------------------------------------------------------- data


def shared_dir() -> Path:
    value = os.environ.get("STATICST_SHARED_DIR")
    root = Path(value) if value else REPO.parent / "shared"
    if not (root / "data" / "mteb").is_dir():
        sys.exit(f"no MTEB data in {root}/data/mteb: set STATICST_SHARED_DIR to the shared/ folder")
    return root


def mteb_texts(root: Path) -> list[str]:
    texts: set[str] = set()
    for path in sorted((root / "data" / "mteb").rglob("*.jsonl")):
        # SciFact's corpus holds whole abstracts: its titles only, so texts stay sentence-sized (as in encode.py)
        fields = ("title",) if path.name == "corpus.jsonl" else TEXT_FIELDS
        with path.open(encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                texts.update(row[k] for k in fields if isinstance(row.get(k), str) and row[k].strip())
    ordered = sorted(texts)
    random.Random(0).shuffle(ordered)
    return ordered


def write_parquet(texts: list[str], rows: int, folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_file = -(-rows // FILES)
    for i in range(FILES):
        lo, hi = i * per_file, min(rows, (i + 1) * per_file)
        if lo >= hi:
            break
        ids = np.arange(lo, hi, dtype=np.int64)
        table = pa.table({"id": ids, "text": [texts[j % len(texts)] for j in range(lo, hi)]})
        pq.write_table(table, folder / f"part-{i:02d}.parquet", row_group_size=16384)


def first_rows(folder: Path, n: int) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(sorted(folder.glob("*.parquet"))[0], columns=["text"])
    return table.column("text").to_pylist()[:n]


# ---------------------------------------------------------------------------------------------- memory


class PeakRss:
    """Samples the RSS of the processes whose command line contains ``marker``; keeps each pid's peak."""

    def __init__(self, marker: str, interval: float = 0.05) -> None:
        self.marker = marker
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self.private_peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline", "memory_info"]):
                cmdline = " ".join(proc.info.get("cmdline") or [])
                mem = proc.info.get("memory_info")
                if self.marker in cmdline and mem is not None:
                    pid = proc.info["pid"]
                    self.peaks[pid] = max(self.peaks.get(pid, 0), mem.rss)
                    # RSS less the pages shared with other processes (Ray's object store, a fork's parent)
                    private = mem.rss - getattr(mem, "shared", 0)
                    self.private_peaks[pid] = max(self.private_peaks.get(pid, 0), private)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max(self.peaks.values(), default=0) / 2**20

    @property
    def private_peak_mb(self) -> float:
        return max(self.private_peaks.values(), default=0) / 2**20


# ---------------------------------------------------------------------------------------------- plain encode

_PLAIN_CHILD = r"""
import json, sys, time
import pyarrow.parquet as pq
from staticst import StaticSentenceTransformer
folder, model, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = pq.read_table(folder, columns=["text"]).column("text").to_pylist()
m = StaticSentenceTransformer(None if model == "-" else model)
m.num_threads = threads
m.encode(texts[:20000])  # warm the word cache, as a worker's first batches do
t = time.perf_counter()
emb = m.encode(texts)
elapsed = time.perf_counter() - t
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": elapsed, "rows": len(emb), "peak_kb": hwm}))
"""


def plain_once(folder: Path, model: str | None, threads: int) -> tuple[float, int, float]:
    """One ``encode`` of every text in a fresh child process: (seconds, rows, the child's peak RSS in MB)."""
    proc = subprocess.run(
        [sys.executable, "-c", _PLAIN_CHILD, str(folder), model or "-", str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return data["seconds"], data["rows"], data["peak_kb"] / 1024


# ---------------------------------------------------------------------------------------------- Ray


@contextmanager
def ray_cluster() -> Iterator[float]:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # this script's own process: nothing leaves the machine
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # a single-node cluster on 127.0.0.1
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield time.perf_counter() - t
    finally:
        ray.shutdown()


def ray_once(source: Any, model: str | None, workers: int, threads: int, num_cpus: float = 1) -> tuple[float, int]:
    """Embed ``source`` (a Dataset) and consume it in the driver: (seconds, rows)."""
    from staticst.integrations.ray import embed_dataset

    t = time.perf_counter()
    ds = embed_dataset(source, model, concurrency=workers, num_threads=threads, num_cpus=num_cpus)
    rows = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        rows += len(batch)
    return time.perf_counter() - t, rows


def ray_check(folder: Path, model: str | None, expected: np.ndarray) -> None:
    import ray.data

    from staticst.integrations.ray import embed_dataset

    ds = ray.data.read_parquet(str(sorted(folder.glob("*.parquet"))[0])).limit(len(expected)).materialize()
    batch = embed_dataset(ds, model).take_batch(len(expected), batch_format="numpy")
    got = batch["embedding"][np.argsort(batch["id"])]
    if not np.array_equal(got, expected):
        sys.exit("Ray: vectors differ from encode()")


# ---------------------------------------------------------------------------------------------- Spark


@contextmanager
def spark_session(workers: int, local_dir: str) -> Iterator[tuple[Any, float]]:
    from pyspark.sql import SparkSession

    # this script's own process (the JVM and its Python workers inherit it): the workers run this interpreter
    # with its packages even when its venv is not activated
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    t = time.perf_counter()
    spark = (
        SparkSession.builder.master(f"local[{workers}]")
        .appName("staticst-engines-benchmark")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", local_dir)
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", "4g")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark, time.perf_counter() - t
    finally:
        spark.stop()


def spark_source(spark: Any, folder: Path) -> Any:
    """The texts as a cached DataFrame of 64 partitions (read and cached before any timing)."""
    df = spark.read.parquet(str(folder)).repartition(64).cache()
    df.count()
    return df


def spark_once(source: Any, model: str | None, threads: int, udf_type: str) -> tuple[float, int]:
    """Embed ``source`` into Spark's noop sink (every row computed, nothing stored): (seconds, 0)."""
    from staticst.integrations.spark import embed_column

    t = time.perf_counter()
    embed_column(source, model, num_threads=threads, udf_type=udf_type).write.format("noop").mode("overwrite").save()
    return time.perf_counter() - t, 0


def spark_check(spark: Any, folder: Path, model: str | None, expected: np.ndarray, udf_type: str) -> None:
    from staticst.integrations.spark import embed_column

    df = spark.read.parquet(str(sorted(folder.glob("*.parquet"))[0])).orderBy("id").limit(len(expected))
    rows = sorted(embed_column(df, model, udf_type=udf_type).collect(), key=lambda r: r["id"])
    if not np.array_equal(np.array([r["embedding"] for r in rows], dtype=np.float32), expected):
        sys.exit(f"Spark ({udf_type}): vectors differ from encode()")


# ---------------------------------------------------------------------------------------------- report


def print_table(results: list[Result], startup: dict[str, float], rows: int, load: tuple[float, float]) -> None:
    base = next(r for r in results if r.engine == "encode" and r.threads == 2)
    print(
        f"\n{rows:,} texts, {platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} before /"
        f" {load[1]:.1f} after; rows/s: median of the rounds; RSS / private (RSS less shared pages): the largest"
        " of any one worker process"
    )
    print(
        f"{'configuration':<20} {'workers':>7} {'threads':>7} {'rows/s':>10} {'vs encode':>9} {'RSS MB':>7}"
        f" {'private MB':>10} {f'{SMALL_ROWS:,}-row job':>13}  note"
    )
    for r in results:
        small = "-" if r.small_job_s is None else f"{r.small_job_s:.2f} s"
        print(
            f"{r.label:<20} {r.workers:>7} {r.threads:>7} {r.rows_per_s:>10,.0f} {r.rows_per_s / base.rows_per_s:>8.2f}x"
            f" {r.peak_worker_rss_mb:>7.0f} {r.peak_worker_private_mb:>10.0f} {small:>13}  {r.note}"
        )
    print("start-up (not in the rows/s): " + ", ".join(f"{k} {v:.1f} s" for k, v in startup.items()))
    by = {r.label: r.rows_per_s for r in results}
    ratios = [
        ("Ray 2x1 / Ray 1x2", "ray 2x1", "ray 1x2"),
        ("Ray 2x2 / Ray 2x1", "ray 2x2", "ray 2x1"),
        ("Spark 2x1 / Spark 1x2", "spark-arrow 2x1", "spark-arrow 1x2"),
        ("Spark 2x2 / Spark 2x1", "spark-arrow 2x2", "spark-arrow 2x1"),
        ("Spark pandas / arrow (2x1)", "spark-pandas 2x1", "spark-arrow 2x1"),
        ("encode 1 thread / 2", "encode 1x1", "encode 1x2"),
    ]
    for name, a, b in ratios:
        if a in by and b in by:
            print(f"  {name:<28} {by[a] / by[b]:.2f}")


def plot(results: list[Result], path: Path, load: tuple[float, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(9, 4.6), dpi=110)
    styles = {"ray": ("tab:blue", "Ray Data"), "spark-arrow": ("tab:orange", "Spark, arrow_udf")}
    for engine, (color, name) in styles.items():
        for threads, dash in ((1, "-"), (2, "--")):
            points = sorted((r.workers, r.rows_per_s) for r in results if r.engine == engine and r.threads == threads)
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(
                    xs, ys, dash, marker="o", color=color, label=f"{name}, {threads} thread{'s' * (threads > 1)}/worker"
                )
    for r in results:
        if r.engine == "spark-pandas":
            ax.plot(
                [r.workers],
                [r.rows_per_s],
                "x",
                color="tab:red",
                markersize=9,
                label="Spark, pandas_udf, 1 thread/worker",
            )
        if r.engine == "ray-read":
            ax.plot([r.workers], [r.rows_per_s], "s", color="tab:blue", fillstyle="none", markersize=8,
                    label="Ray Data, read_parquet in the job, 1 thread/worker")  # fmt: skip
        if r.engine == "encode":
            ax.axhline(r.rows_per_s, color="grey", linestyle="-" if r.threads == 2 else ":", linewidth=1.2,
                       label=f"plain encode, one process, {r.threads} thread{'s' * (r.threads > 1)}")  # fmt: skip
    ax.set_xlabel("workers (Ray actors / Spark task slots)")
    ax.set_ylabel("rows / s")
    ax.set_xticks([1, 2])
    ax.set_xlim(0.8, 2.2)
    ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:.0f}k"))
    ax.set_title(
        f"{results[0].rows:,} texts on a 2-core machine (load average {load[0]:.0f}-{load[1]:.0f} from other work)",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


# ---------------------------------------------------------------------------------------------- main


def _done(elapsed: float, rows: int) -> tuple[float, int]:
    return elapsed, rows


def timed(result: Result, marker: str | None, once: Callable[[], tuple[float, int]], rows: int) -> None:
    """One run of ``once`` added to ``result``, sampling the RSS of the worker processes that match ``marker``."""
    with PeakRss(marker or "\0") as rss:
        elapsed, counted = once()
    if counted not in (0, rows):
        sys.exit(f"{result.label}: {counted} rows out of {rows}")
    result.runs_s.append(elapsed)
    result.rows = rows
    result.peak_worker_rss_mb = max(result.peak_worker_rss_mb, rss.peak_mb)
    result.peak_worker_private_mb = max(result.peak_worker_private_mb, rss.private_peak_mb)
    print(f"  {result.label:<24} {rows / elapsed:>11,.0f} rows/s", flush=True)


def small_job(result: Result, once: Callable[[], tuple[float, int]]) -> None:
    """The time of a job of SMALL_ROWS rows with the same configuration: what any job costs, whatever its size."""
    elapsed, _ = once()
    result.small_job_s = elapsed if result.small_job_s is None else min(result.small_job_s, elapsed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="texts to embed (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over every configuration (median reported)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 rows, 1 round, fewer configurations")
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the built-in potion-base-8M)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--plot", type=Path, default=None, help="figure path (default <output>/engines.png)")
    args = parser.parse_args(argv)
    rows, repeats = (20_000, 1) if args.quick else (args.rows, args.repeats)
    grid = [(1, 1), (2, 1)] if args.quick else [(1, 1), (1, 2), (2, 1), (2, 2)]

    import ray.data

    from staticst import StaticSentenceTransformer

    texts = mteb_texts(shared_dir())
    results: dict[str, Result] = {}
    startup: dict[str, float] = {}
    load_before = os.getloadavg()[0]

    def result(engine: str, workers: int, threads: int, note: str) -> Result:
        key = f"{engine} {workers}x{threads}"
        return results.setdefault(key, Result(engine, workers, threads, note=note))

    with tempfile.TemporaryDirectory(prefix="staticst-engines-") as tmp, ray_cluster() as ray_started:
        startup["ray.init"] = ray_started
        folder = Path(tmp) / "texts"
        folder.mkdir()
        write_parquet(texts, rows, folder)
        print(f"{len(texts):,} unique MTEB texts cycled to {rows:,} rows; {repeats} round(s)", flush=True)
        expected = StaticSentenceTransformer(args.model).encode(first_rows(folder, CHECK_ROWS))
        ray_check(folder, args.model, expected)
        # in the object store before any timing, in 64 blocks (read_parquet makes few: the actors would idle)
        ray_source = ray.data.read_parquet(str(folder)).repartition(64).materialize()
        ray_small = ray.data.read_parquet(str(sorted(folder.glob("*.parquet"))[0])).limit(SMALL_ROWS).materialize()
        local_dir = str(Path(tmp) / "spark-local")
        for round_ in range(repeats):
            print(f"round {round_ + 1}", flush=True)
            for threads in (2, 1):
                r = result("encode", 1, threads, "one process; holds every vector")
                elapsed, counted, peak_mb = plain_once(folder, args.model, threads)
                timed(r, None, partial(_done, elapsed, counted), rows)
                r.peak_worker_rss_mb = max(r.peak_worker_rss_mb, peak_mb)
                r.peak_worker_private_mb = r.peak_worker_rss_mb  # the child's VmHWM: all its own
            for workers, threads in grid:
                r = result("ray", workers, threads, "actors; materialized input")
                timed(r, "ray::MapWorker", partial(ray_once, ray_source, args.model, workers, threads), rows)
                if round_ == 0:  # after the large job, so it warms nothing the large job uses
                    small_job(r, partial(ray_once, ray_small, args.model, workers, threads))
            if not args.quick:
                r = result("ray-read", 2, 1, "read_parquet in the job; num_cpus=0.5")
                source = ray.data.read_parquet(str(folder))
                timed(r, "ray::MapWorker", partial(ray_once, source, args.model, 2, 1, num_cpus=0.5), rows)
            for workers in (1, 2):
                configs = [(t, "arrow") for w, t in grid if w == workers] + ([(1, "pandas")] if workers == 2 else [])
                with spark_session(workers, local_dir) as (spark, started):
                    startup.setdefault(f"Spark local[{workers}] (first)", started)
                    if workers == 2 and round_ == 0:
                        spark_check(spark, folder, args.model, expected, "arrow")
                        spark_check(spark, folder, args.model, expected, "pandas")
                    source = spark_source(spark, folder)
                    small = spark.read.parquet(str(sorted(folder.glob("*.parquet"))[0])).limit(SMALL_ROWS).cache()
                    small.count()
                    for threads, udf_type in configs:
                        r = result(f"spark-{udf_type}", workers, threads, f"{udf_type}_udf; noop sink")
                        timed(r, "pyspark.daemon", partial(spark_once, source, args.model, threads, udf_type), rows)
                        if round_ == 0:
                            small_job(r, partial(spark_once, small, args.model, threads, udf_type))

    ordered = list(results.values())
    load = (load_before, os.getloadavg()[0])
    print_table(ordered, startup, rows, load)
    args.output.mkdir(parents=True, exist_ok=True)
    report = {
        "rows": rows,
        "repeats": repeats,
        "unique_texts": len(texts),
        "model": args.model or "minishlab/potion-base-8M (built-in)",
        "cpus": os.cpu_count(),
        "startup_s": startup,
        "load_average": {"before": load[0], "after": load[1]},
        "results": [{**asdict(r), "label": r.label, "rows_per_s": r.rows_per_s} for r in ordered],
    }
    (args.output / "engines.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot(ordered, args.plot or args.output / "engines.png", load)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

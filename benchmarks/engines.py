"""Throughput of the Ray Data and Spark integrations on real deployments, against plain ``encode`` in one run.

Usage::

    python benchmarks/engines.py [--rows 1000000] [--repeats 3] [--output benchmarks/results] [--plot PATH]
    python benchmarks/engines.py --quick          # a smoke run: 5,000 rows, one round, fewer configurations
    python benchmarks/engines.py --deployment local   # ray.init(num_cpus=2) and Spark local[N] instead

What it does:

1. Texts: the unique texts of the MTEB sets in ``$STATICST_SHARED_DIR/data/mteb`` (default ``../shared``; SciFact's
   corpus by title only, so texts stay sentence-sized: 60,850, mean 74 characters), in a fixed shuffled order,
   cycled to ``--rows`` rows and written as 16 parquet files (``id``, ``text``) into a temporary folder.
2. Plain ``encode`` (the baseline): a fresh child process reads the ``text`` column into a list, warms up on
   20,000 texts and times one ``model.encode(texts)`` of all of them (threads: 2, then 1); its peak RSS is
   ``VmHWM`` (it holds every text and every vector).
3. The CLI: ``staticst encode -i FOLDER --field text --id-field id -o out.parquet`` in a fresh process
   (``STATICST_NUM_THREADS`` 2, then 1), timed as the whole command: start-up, reading, encoding, writing.
4. ``--deployment real`` (the default): the deployments of the cluster tests (``tests/_clusters.py``), started
   before any timing and up for every round: a Ray head (this host) plus a worker node on a second host (a
   network namespace with its own IP over a veth pair where the machine allows it, else loopback), each with
   1 CPU, joined with ``ray start``; and a Spark standalone master with two workers of 1 core each (the second
   on the second host). This process is the driver of both (``ray.init(address=...)`` with the cluster's
   token; a Spark session on the master). Each cluster has 2 CPUs, as plain ``encode`` with 2 threads has.

   - Ray ``2x1``: the parquet files are read into the object store in 64 blocks before timing; a run is
     ``embed_dataset(source, concurrency=2, num_threads=1, num_cpus=1, check_resources=False)`` (one actor per
     node: with the input materialized there are no read tasks to keep a CPU for) consumed with
     ``iter_batches`` in the driver. ``ray-read 1x1``: ``read_parquet`` inside the timed job; the resource
     rule then leaves room for one actor only (a whole CPU stays free for the reads).
   - Spark ``2x1``: the files are read and cached in 64 partitions before timing; a run is
     ``embed_column(source, num_threads=1)`` written to Spark's ``noop`` sink, with the Arrow UDF (and the
     pandas UDF), on 2 executors of 1 core.

   ``--deployment local``: one local Ray (``ray.init(num_cpus=2)``) and a ``local[workers]`` Spark session per
   worker count, in this process; workers x threads 1x1, 1x2, 2x1, 2x2, ``ray-read 2x1`` (``num_cpus=0.5``) and
   the pandas UDF at 2x1.
5. Before timing, each engine's vectors for the first 2,000 rows must equal ``encode`` exactly (else exit 1).

Every round runs every configuration once (noise from other processes hits them alike); rows/s is the median
over ``--repeats`` rounds. Engine times run from building the pipeline to the last row: a Ray job starts its
actors and loads the model in each; Spark reuses its Python workers (and their model) between jobs of one
session. **Once started**: an engine's rows over its median job time less the time of its 1,000-row job (what
any job costs: Ray starts its actors and loads the model in each, Spark schedules the stages); plain ``encode``
and the CLI as timed. Rows/s per CPU is the once-started
rate over the configuration's CPUs (workers x threads, at most the deployment's); the ratio per CPU is against
plain ``encode`` with 2 threads (2 CPUs), the issue's target being >= 0.7x. Cluster, driver and session start-up
are reported apart. The ``1,000-row job`` column is a job of 1,000 rows with the same configuration, run after
the large one in the first round: the cost of any job, whatever its size. Peak memory per worker is the largest
RSS (and RSS less shared pages) that any Ray actor process (``ray::MapWorker...``) or Spark Python worker
(``pyspark.daemon`` and its forks) reached, sampled every 50 ms; ``hosts`` counts the network namespaces those
processes ran in. Writes ``engines.json`` to ``--output`` and the figure to ``--plot`` (default
``<output>/engines.png``) and prints the table, the load average and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
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
    cpus: int = 1
    hosts: int = 0

    @property
    def label(self) -> str:
        return f"{self.engine} {self.workers}x{self.threads}"

    @property
    def rows_per_s(self) -> float:
        return self.rows / statistics.median(self.runs_s)

    @property
    def started_rows_per_s(self) -> float:
        """Rows/s once the job's workers run: the job's time less a 1,000-row job's (what any job costs).

        For the engines only (plain encode and the CLI: their rows/s as timed).
        """
        if self.engine in ("encode", "cli") or self.small_job_s is None:
            return self.rows_per_s
        return self.rows / max(statistics.median(self.runs_s) - self.small_job_s, 1e-9)

    @property
    def per_cpu(self) -> float:
        return self.started_rows_per_s / self.cpus


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
        self.namespaces: set[str] = set()  # the network namespaces (hosts) the processes ran in
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
                    with contextlib.suppress(OSError):
                        self.namespaces.add(os.readlink(f"/proc/{pid}/ns/net"))
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


def cli_once(folder: Path, model: str | None, threads: int, out: Path) -> tuple[float, int]:
    """``staticst encode`` of the Parquet folder to ``.parquet`` (id + embedding), a fresh process: (seconds, rows).

    The time is the whole command's (start-up, model load, read, encode, write, fsync), as a user sees it.
    """
    cli = [sys.executable, "-c", "import sys; from staticst.cli import main; sys.exit(main())"]  # the `staticst` script
    args = [*cli, "encode", "-i", str(folder), "--field", "text", "--id-field", "id", "-o", str(out), "--quiet",
            *(["-m", model] if model else [])]  # fmt: skip
    env = dict(os.environ, STATICST_NUM_THREADS=str(threads))
    if out.exists():
        out.unlink()
    t = time.perf_counter()
    subprocess.run(args, check=True, env=env, capture_output=True)
    elapsed = time.perf_counter() - t
    import pyarrow.parquet as pq

    return elapsed, pq.ParquetFile(out).metadata.num_rows


def ray_once(
    source: Any,
    model: str | None,
    workers: int,
    threads: int,
    num_cpus: float | None = None,
    check_resources: bool = True,
) -> tuple[float, int]:
    """Embed ``source`` (a Dataset) and consume it in the driver: (seconds, rows)."""
    from staticst.integrations.ray import embed_dataset

    t = time.perf_counter()
    ds = embed_dataset(
        source, model, concurrency=workers, num_threads=threads, num_cpus=num_cpus, check_resources=check_resources
    )
    rows = 0
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        rows += len(batch)
    return time.perf_counter() - t, rows


def ray_check(folder: Path, model: str | None, expected: np.ndarray) -> None:
    import ray.data

    from staticst.integrations.ray import embed_dataset

    ds = ray.data.read_parquet(str(sorted(folder.glob("*.parquet"))[0])).limit(len(expected)).materialize()
    batch = embed_dataset(ds, model).take_batch(len(expected), batch_format="numpy")
    got = np.stack(list(batch["embedding"]))[np.argsort(batch["id"])]  # fixed_size_list: one array per row
    if got.dtype != np.float32 or not np.array_equal(got, expected):
        sys.exit("Ray: vectors differ from encode()")


# ---------------------------------------------------------------------------------------------- Spark


@contextmanager
def spark_session(master: str, local_dir: str, driver_ip: str = "127.0.0.1") -> Iterator[tuple[Any, float]]:
    """A session on ``master`` (``local[N]`` or a standalone master's URL), the driver on ``driver_ip``."""
    from pyspark.sql import SparkSession

    # this script's own process (the JVM and its Python workers inherit it): the workers run this interpreter
    # with its packages even when its venv is not activated
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    t = time.perf_counter()
    spark = (
        SparkSession.builder.master(master)
        .appName("staticst-engines-benchmark")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", local_dir)
        .config("spark.driver.bindAddress", driver_ip)
        .config("spark.driver.host", driver_ip)
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


# ---------------------------------------------------------------------------------------------- real deployments


def clusters_module() -> Any:
    """``tests/_clusters.py``: the real deployments the cluster tests start (one place for both)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests import _clusters

    return _clusters


@contextmanager
def timed_start(what: str, startup: dict[str, float], factory: Any) -> Iterator[Any]:
    """Enter the context manager ``factory``, recording the seconds it took to start in ``startup[what]``."""
    t = time.perf_counter()
    with factory as value:
        startup[what] = time.perf_counter() - t
        print(f"{what}: started in {startup[what]:.1f} s", flush=True)
        yield value


@contextmanager
def ray_driver(cluster: Any) -> Iterator[float]:
    """This process as a driver of the real Ray cluster (its token authentication in the environment meanwhile).

    Ray reads the authentication settings when it is first imported: nothing may import it before.
    """
    saved = {key: os.environ.get(key) for key in cluster.auth}
    os.environ.update(cluster.auth)
    import ray

    t = time.perf_counter()
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level=logging.ERROR)
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-job execution plans between the rows
        try:
            yield time.perf_counter() - t
        finally:
            ray.shutdown()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---------------------------------------------------------------------------------------------- report


def print_table(
    results: list[Result], startup: dict[str, float], rows: int, load: tuple[float, float], deployment: str
) -> None:
    base = next(r for r in results if r.engine == "encode" and r.threads == 2)
    print(
        f"\n{rows:,} texts, {platform.machine()}, {os.cpu_count()} CPUs, deployment: {deployment}, load average"
        f" {load[0]:.1f} before / {load[1]:.1f} after; rows/s: median of the rounds (whole job); started: the engines'"
        f" rows over the job's time less the {SMALL_ROWS:,}-row job's (the cost of any job); per CPU: started rows/s"
        " over the CPUs the configuration has; RSS / private (RSS less shared pages): the largest of any one worker process"
    )
    print(
        f"{'configuration':<20} {'CPUs':>4} {'rows/s':>10} {'started':>10} {'per CPU':>9} {'vs encode':>9}"
        f" {'hosts':>5} {'RSS MB':>7} {'private MB':>10} {f'{SMALL_ROWS:,}-row job':>13}  note"
    )
    for r in results:
        small = "-" if r.small_job_s is None else f"{r.small_job_s:.2f} s"
        hosts = str(r.hosts) if r.hosts else "-"
        print(
            f"{r.label:<20} {r.cpus:>4} {r.rows_per_s:>10,.0f} {r.started_rows_per_s:>10,.0f} {r.per_cpu:>9,.0f}"
            f" {r.per_cpu / base.per_cpu:>8.2f}x {hosts:>5} {r.peak_worker_rss_mb:>7.0f}"
            f" {r.peak_worker_private_mb:>10.0f} {small:>13}  {r.note}"
        )
    print("start-up (not in the rows/s): " + ", ".join(f"{k} {v:.1f} s" for k, v in startup.items()))
    by = {r.label: r for r in results}
    print(f"per CPU vs plain encode with the same CPUs ({base.label}, {base.per_cpu:,.0f} rows/s per CPU); target >= 0.70:")
    for r in results:
        if r.engine in ("encode", "cli") or r.cpus != base.cpus:
            continue
        verdict = "met" if r.per_cpu / base.per_cpu >= 0.7 else "NOT met"
        whole = (r.rows_per_s / r.cpus) / base.per_cpu
        print(f"  {r.label:<20} {r.per_cpu / base.per_cpu:.2f}x ({verdict}; whole job {whole:.2f}x)")
    if "encode 1x1" in by:
        one = by["encode 1x1"]
        print(f"  (plain encode with 1 thread: {one.per_cpu:,.0f} rows/s per CPU, {one.per_cpu / base.per_cpu:.2f}x)")
    ratios = [
        ("Ray 2x1 / Ray 1x2", "ray 2x1", "ray 1x2"),
        ("Ray 2x2 / Ray 2x1", "ray 2x2", "ray 2x1"),
        ("Spark 2x1 / Spark 1x2", "spark-arrow 2x1", "spark-arrow 1x2"),
        ("Spark 2x2 / Spark 2x1", "spark-arrow 2x2", "spark-arrow 2x1"),
        ("Spark pandas / arrow (2x1)", "spark-pandas 2x1", "spark-arrow 2x1"),
        ("encode 1 thread / 2", "encode 1x1", "encode 1x2"),
        ("CLI / encode (2 threads)", "cli 1x2", "encode 1x2"),
    ]
    for name, a, b in ratios:
        if a in by and b in by:
            print(f"  {name:<28} {by[a].rows_per_s / by[b].rows_per_s:.2f}")


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


def plot_per_cpu(results: list[Result], path: Path, load: tuple[float, float], title: str) -> None:
    """Bars: rows/s per CPU of each configuration, the 0.7x-of-plain-encode line across."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    base = next(r for r in results if r.engine == "encode" and r.threads == 2)
    fig, ax = plt.subplots(figsize=(9, 4.6), dpi=110)
    colors = {"encode": "grey", "cli": "tab:green", "ray": "tab:blue", "ray-read": "tab:cyan"}
    labels = [r.label for r in results]
    ax.bar(labels, [r.per_cpu for r in results], color=[colors.get(r.engine, "tab:orange") for r in results])
    ax.axhline(0.7 * base.per_cpu, color="tab:red", linestyle="--", linewidth=1.2,
               label=f"0.7x plain encode per CPU ({base.label})")  # fmt: skip
    ax.set_ylabel("rows / s per CPU (once started)")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:.0f}k"))
    ax.set_title(f"{title} (load average {load[0]:.1f}-{load[1]:.1f})", fontsize=10)
    ax.legend(fontsize=8)
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right", fontsize=8)
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
    result.hosts = max(result.hosts, len(rss.namespaces))
    print(f"  {result.label:<24} {rows / elapsed:>11,.0f} rows/s", flush=True)


def small_job(result: Result, once: Callable[[], tuple[float, int]]) -> None:
    """The time of a job of SMALL_ROWS rows with the same configuration: what any job costs, whatever its size."""
    elapsed, _ = once()
    result.small_job_s = elapsed if result.small_job_s is None else min(result.small_job_s, elapsed)


class Runs:
    """The results of one benchmark run, by configuration, in the order first run."""

    def __init__(self) -> None:
        self.results: dict[str, Result] = {}
        self.startup: dict[str, float] = {}

    def get(self, engine: str, workers: int, threads: int, note: str, cpus: int) -> Result:
        key = f"{engine} {workers}x{threads}"
        return self.results.setdefault(key, Result(engine, workers, threads, note=note, cpus=cpus))


def run_plain(runs: Runs, folder: Path, model: str | None, rows: int, tmp: Path, quick: bool) -> None:
    """One round of plain ``encode`` (2 threads, then 1) and the CLI (2 threads; and 1 unless ``quick``)."""
    for threads in (2, 1):
        r = runs.get("encode", 1, threads, "one process; holds every vector", cpus=threads)
        elapsed, counted, peak_mb = plain_once(folder, model, threads)
        timed(r, None, partial(_done, elapsed, counted), rows)
        r.peak_worker_rss_mb = max(r.peak_worker_rss_mb, peak_mb)
        r.peak_worker_private_mb = r.peak_worker_rss_mb  # the child's VmHWM: all its own
    for threads in (2,) if quick else (2, 1):
        r = runs.get("cli", 1, threads, "staticst encode: Parquet in, Parquet out; whole command", cpus=threads)
        timed(r, None, partial(cli_once, folder, model, threads, tmp / "cli.parquet"), rows)


def run_local(runs: Runs, folder: Path, args: argparse.Namespace, rows: int, repeats: int, expected: np.ndarray) -> None:
    """Ray ``ray.init(num_cpus=2)`` and Spark ``local[N]`` in this process, beside plain encode, every round."""
    import ray.data

    grid = [(2, 1)] if args.quick else [(1, 1), (1, 2), (2, 1), (2, 2)]
    cpus = os.cpu_count() or 2
    with timed_start("ray.init", runs.startup, ray_cluster()):
        ray_check(folder, args.model, expected)
        # in the object store before any timing, in 64 blocks (read_parquet makes few: the actors would idle)
        ray_source = ray.data.read_parquet(str(folder)).repartition(64).materialize()
        ray_small = ray.data.read_parquet(str(sorted(folder.glob("*.parquet"))[0])).limit(SMALL_ROWS).materialize()
        local_dir = str(folder.parent / "spark-local")
        for round_ in range(repeats):
            print(f"round {round_ + 1}", flush=True)
            run_plain(runs, folder, args.model, rows, folder.parent, args.quick)
            for workers, threads in grid:
                r = runs.get("ray", workers, threads, "actors; materialized input", min(2, workers * threads))
                once = partial(ray_once, ray_source, args.model, workers, threads)
                timed(r, "ray::MapWorker", once, rows)
                if round_ == 0:  # after the large job, so it warms nothing the large job uses
                    small_job(r, partial(ray_once, ray_small, args.model, workers, threads))
            if not args.quick:
                r = runs.get("ray-read", 2, 1, "read_parquet in the job; num_cpus=0.5", cpus=2)
                source = ray.data.read_parquet(str(folder))
                once = partial(ray_once, source, args.model, 2, 1, num_cpus=0.5)
                timed(r, "ray::MapWorker", once, rows)
            for workers in (2,) if args.quick else (1, 2):
                configs = [(t, "arrow") for w, t in grid if w == workers] + ([(1, "pandas")] if workers == 2 else [])
                with spark_session(f"local[{workers}]", local_dir) as (spark, started):
                    runs.startup.setdefault(f"Spark local[{workers}] (first)", started)
                    if workers == 2 and round_ == 0:
                        spark_check(spark, folder, args.model, expected, "arrow")
                        spark_check(spark, folder, args.model, expected, "pandas")
                    source = spark_source(spark, folder)
                    small = spark.read.parquet(str(sorted(folder.glob("*.parquet"))[0])).limit(SMALL_ROWS).cache()
                    small.count()
                    for threads, udf_type in configs:
                        note = f"{udf_type}_udf; noop sink"
                        r = runs.get(f"spark-{udf_type}", workers, threads, note, min(cpus, workers * threads))
                        timed(r, "pyspark.daemon", partial(spark_once, source, args.model, threads, udf_type), rows)
                        if round_ == 0:
                            small_job(r, partial(spark_once, small, args.model, threads, udf_type))


def run_real(
    runs: Runs, folder: Path, args: argparse.Namespace, rows: int, repeats: int, expected: np.ndarray
) -> dict[str, str]:
    """Ray (a head + a worker node, 1 CPU each) and Spark (a standalone master + 2 workers of 1 core each).

    Both deployments are started first (``tests/_clusters.py``; their start-up is reported apart) and stay up
    for every round, so plain ``encode`` runs beside them under the same idle clusters. This process is the
    driver of both (``ray.init(address=...)``, a Spark session on the master, the driver on the head's host).
    Returns how each deployment's nodes were placed.
    """
    c = clusters_module()
    work = folder.parent
    for sub in ("ray", "spark", "spark-driver-local"):
        (work / sub).mkdir()
    with contextlib.ExitStack() as stack:
        ray_dep = stack.enter_context(timed_start(
            "Ray cluster (head + worker node)", runs.startup,
            c.ray_cluster(work / "ray", cpus=1, object_store_mb=1024)))  # fmt: skip
        spark_dep = stack.enter_context(timed_start(
            "Spark cluster (master + 2 workers)", runs.startup,
            c.spark_cluster(work / "spark", cores=1, memory="2g")))  # fmt: skip
        topologies = {"ray": ray_dep.topo.describe(), "spark": spark_dep.topo.describe()}
        for name, text in topologies.items():
            print(f"{name}: {text}", flush=True)
        ray_cpus = 2 * ray_dep.cpus
        spark_cpus = 2 * spark_dep.cores
        runs.startup["ray.init (driver joins)"] = stack.enter_context(ray_driver(ray_dep))
        import ray.data  # after ray_driver: Ray reads its authentication settings when it is first imported
        ray_check(folder, args.model, expected)
        ray_source = ray.data.read_parquet(str(folder)).repartition(64).materialize()
        ray_small = ray.data.read_parquet(str(sorted(folder.glob("*.parquet"))[0])).limit(SMALL_ROWS).materialize()
        session = spark_session(spark_dep.master_url, str(work / "spark-driver-local"), spark_dep.topo.head_ip)
        spark, started = stack.enter_context(session)
        runs.startup["Spark session (driver joins)"] = started
        spark_check(spark, folder, args.model, expected, "arrow")
        spark_check(spark, folder, args.model, expected, "pandas")
        spark_src = spark_source(spark, folder)
        spark_small = spark.read.parquet(str(sorted(folder.glob("*.parquet"))[0])).limit(SMALL_ROWS).cache()
        spark_small.count()
        # the workers of each engine start, import and load the model once before timing (what "started" means)
        spark_once(spark_small, args.model, 1, "arrow")
        for round_ in range(repeats):
            print(f"round {round_ + 1}", flush=True)
            run_plain(runs, folder, args.model, rows, work, args.quick)
            # materialized input, no read tasks: one actor per node takes the node's CPU (num_cpus=1); the
            # resource check (which keeps a whole CPU for read tasks) would refuse 2 actors on two 1-CPU nodes
            r = runs.get("ray", 2, 1, "2 actors of num_cpus=1 (one per node); materialized input", ray_cpus)
            job = partial(ray_once, ray_source, args.model, 2, 1, num_cpus=1, check_resources=False)
            timed(r, "ray::MapWorker", job, rows)
            if round_ == 0:
                small_job(r, partial(ray_once, ray_small, args.model, 2, 1, num_cpus=1, check_resources=False))
            if not args.quick:
                # read_parquet inside the job: a whole CPU stays free for the reads, so 1 actor (num_cpus derived)
                r = runs.get("ray-read", 1, 1, "read_parquet in the job; 1 actor, num_cpus derived", ray_cpus)
                source = ray.data.read_parquet(str(folder))
                timed(r, "ray::MapWorker", partial(ray_once, source, args.model, 1, 1), rows)
                if round_ == 0:  # its 1,000-row job reads too
                    first = ray.data.read_parquet(str(sorted(folder.glob("*.parquet"))[0])).limit(SMALL_ROWS)
                    small_job(r, partial(ray_once, first, args.model, 1, 1))
            for udf_type in ("arrow",) if args.quick else ("arrow", "pandas"):
                r = runs.get(f"spark-{udf_type}", 2, 1, f"{udf_type}_udf; 2 executors x 1 core; noop sink", spark_cpus)
                timed(r, "pyspark.daemon", partial(spark_once, spark_src, args.model, 1, udf_type), rows)
                if round_ == 0:
                    small_job(r, partial(spark_once, spark_small, args.model, 1, udf_type))
    return topologies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="texts to embed (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over every configuration (median reported)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 rows, 1 round, fewer configurations")
    parser.add_argument(
        "--deployment",
        choices=("real", "local"),
        default="real",
        help="real (default): a Ray head + worker node and a Spark standalone master + 2 workers started here;"
        " local: ray.init(num_cpus=2) and Spark local[N] in this process",
    )
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the built-in potion-base-8M)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--plot", type=Path, default=None, help="figure path (default <output>/engines.png)")
    args = parser.parse_args(argv)
    rows, repeats = (5_000, 1) if args.quick else (args.rows, args.repeats)

    from staticst import StaticSentenceTransformer

    texts = mteb_texts(shared_dir())
    runs = Runs()
    load_before = os.getloadavg()[0]
    topologies: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="staticst-engines-") as tmp:
        folder = Path(tmp) / "texts"
        folder.mkdir()
        write_parquet(texts, rows, folder)
        print(f"{len(texts):,} unique MTEB texts cycled to {rows:,} rows; {repeats} round(s)", flush=True)
        expected = StaticSentenceTransformer(args.model).encode(first_rows(folder, CHECK_ROWS))
        if args.deployment == "local":
            run_local(runs, folder, args, rows, repeats, expected)
        else:
            topologies = run_real(runs, folder, args, rows, repeats, expected)

    ordered = list(runs.results.values())
    load = (load_before, os.getloadavg()[0])
    print_table(ordered, runs.startup, rows, load, args.deployment)
    args.output.mkdir(parents=True, exist_ok=True)
    base = next(r for r in ordered if r.engine == "encode" and r.threads == 2)
    report = {
        "rows": rows,
        "repeats": repeats,
        "deployment": args.deployment,
        "topology": topologies,
        "unique_texts": len(texts),
        "model": args.model or "minishlab/potion-base-8M (built-in)",
        "cpus": os.cpu_count(),
        "startup_s": runs.startup,
        "load_average": {"before": load[0], "after": load[1]},
        "results": [
            {**asdict(r), "label": r.label, "rows_per_s": r.rows_per_s, "started_rows_per_s": r.started_rows_per_s,
             "rows_per_s_per_cpu": r.per_cpu, "per_cpu_vs_encode": r.per_cpu / base.per_cpu}
            for r in ordered
        ],  # fmt: skip
    }
    (args.output / "engines.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    path = args.plot or args.output / "engines.png"
    if args.deployment == "local":
        plot(ordered, path, load)
    else:
        plot_per_cpu(ordered, path, load, f"{rows:,} texts; Ray head + node, Spark master + 2 workers (2 CPUs each)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

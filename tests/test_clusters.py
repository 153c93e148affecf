"""Ray and Spark on real multi-node deployments: the code of docs/scale.md, run unchanged, on clusters started here.

Run with ``python -m pytest -m cluster`` (deselected from the default run: each cluster takes ~40 s to start on a
2-core machine). One session-scoped deployment per engine (``tests/_clusters.py``): a Ray head + a worker node
started with ``ray start``, and a Spark standalone master + two workers, the second "host" a network namespace
with its own IP over a veth pair where the machine allows it (root, iproute2), loopback otherwise; the topology
is printed. Every process they start is killed by pid at the end of the session.

The documented blocks (marked ``<!-- cluster-test: ENGINE -->`` in docs/scale.md) are read from the page and
run as the driver, with only their example paths swapped for this test's (each must occur in the block, so a
changed page fails here). The vectors read back from the engines' Parquet output must equal
``StaticSentenceTransformer.encode`` in this process exactly, row by row through the id column.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from staticst import StaticSentenceTransformer
from tests import _clusters

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "scale.md"
MODEL = "potion-base-8M"
N_ROWS = 2400
FILES = 4
JOB_TIMEOUT = 420  # seconds for one driver process; a hang fails the test instead of blocking CI


def doc_block(engine: str, swaps: dict[str, str]) -> str:
    """The Python block after ``<!-- cluster-test: ENGINE ...-->`` in docs/scale.md, its example paths swapped."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- cluster-test: {engine}\b[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert match, f"docs/scale.md has no block marked <!-- cluster-test: {engine} -->"
    code = match.group(1)
    for old, new in swaps.items():
        assert code.count(f'"{old}"') == 1, f"the documented {engine} block no longer uses {old!r}: update the test"
        code = code.replace(f'"{old}"', repr(new))
    return code


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> tuple[Path, list[int], list[str]]:
    """``FILES`` Parquet files of (id, text): MTEB sentences, ids shuffled so input order is not id order."""
    path = shared_dir / "data" / "mteb" / "stsbenchmark-sts" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [t for row in rows for t in (row["sentence1"], row["sentence2"])][:N_ROWS]
    assert len(texts) == N_ROWS
    ids = list(np.random.default_rng(20).permutation(N_ROWS) + 1000)
    folder = tmp_path_factory.mktemp("texts")
    for part in range(FILES):
        chunk = slice(part * N_ROWS // FILES, (part + 1) * N_ROWS // FILES)
        table = pa.table({"id": pa.array(ids[chunk], pa.int64()), "text": texts[chunk]})
        pq.write_table(table, folder / f"part-{part}.parquet")
    return folder, [int(i) for i in ids], texts


@pytest.fixture(scope="session")
def model_dir(shared_model: Any) -> Path:
    return Path(shared_model(MODEL))


@pytest.fixture(scope="session")
def reference(model_dir: Path, corpus: tuple[Path, list[int], list[str]]) -> dict[int, np.ndarray]:
    _, ids, texts = corpus
    vectors = StaticSentenceTransformer(str(model_dir)).encode(texts)
    return dict(zip(ids, vectors, strict=True))


@pytest.fixture(scope="session")
def ray_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_clusters.RayCluster]:
    with _clusters.ray_cluster(tmp_path_factory.mktemp("ray"), cpus=2) as cluster:
        print(f"\nRay cluster: {cluster.topo.describe()}", file=sys.stderr)
        yield cluster


@pytest.fixture(scope="session")
def spark_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_clusters.SparkCluster]:
    with _clusters.spark_cluster(tmp_path_factory.mktemp("spark"), cores=1) as cluster:
        print(f"\nSpark cluster: {cluster.topo.describe()}", file=sys.stderr)
        yield cluster


def run_driver(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-3000:]
        pytest.fail(f"the driver did not finish within {JOB_TIMEOUT} s (a hang): {tail!r}")


def check_output(folder: Path, reference: dict[int, np.ndarray], embedding_type: str) -> pa.Schema:
    """Every id once, every vector equal to ``encode``'s; returns the files' schema."""
    files = sorted(folder.rglob("*.parquet"))
    assert files, f"no Parquet files in {folder}"
    table = pa.concat_tables([pq.read_table(f) for f in files])
    assert table.num_rows == len(reference)
    ids = table.column("id").to_pylist()
    assert sorted(ids) == sorted(reference)
    column = table.column("embedding").combine_chunks()
    dim = len(next(iter(reference.values())))
    if embedding_type == "fixed_size_list":
        assert pa.types.is_fixed_size_list(column.type) and column.type.list_size == dim, column.type
    else:
        assert pa.types.is_list(column.type), column.type
    assert column.type.value_type == pa.float32()
    got = np.asarray(column.flatten(), dtype=np.float32).reshape(len(ids), dim)
    want = np.stack([reference[i] for i in ids])
    np.testing.assert_array_equal(got, want)
    return table.schema


# ---------------------------------------------------------------------------------------------- Ray


def test_ray_the_documented_job_on_a_head_and_a_worker_node(
    ray_deployment: _clusters.RayCluster,
    corpus: tuple[Path, list[int], list[str]],
    model_dir: Path,
    reference: dict[int, np.ndarray],
    tmp_path: Path,
) -> None:
    folder, _, _ = corpus
    out = tmp_path / "embedded"
    code = doc_block(
        "ray", {"/data/texts/": str(folder), "/models/potion-base-8M": str(model_dir), "/data/embedded/": str(out)}
    )
    # after the documented block: where did the actors run? (one per node: Ray Data spreads the pool)
    code += textwrap.dedent(
        """
        import json
        print("NODES", json.dumps(sorted({n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]})))
        """
    )
    (tmp_path / "job.py").write_text(code)
    done = run_driver([_clusters.PYTHON, "job.py"], ray_deployment.driver_env(), tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    nodes = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("NODES"))[6:])
    assert nodes == sorted({ray_deployment.topo.head_ip, ray_deployment.topo.worker_ip}) or (
        ray_deployment.topo.kind == "loopback" and len(nodes) == 1
    )
    check_output(out, reference, "fixed_size_list")


RESOURCES_JOB = """
import json, time, ray
from staticst.integrations.ray import embed_dataset

ray.init()
ds = ray.data.read_parquet({folder!r})
report = {{"cpus": [n["Resources"].get("CPU") for n in ray.nodes() if n["Alive"]]}}
try:
    embed_dataset(ds, {model!r}, concurrency=4, num_cpus=1)           # 4 whole CPUs of 4: the reads starve
except ValueError as exc:
    report["refused"] = str(exc)
start = time.monotonic()
rows = embed_dataset(ds, {model!r}, concurrency=4, num_threads=1).count()   # num_cpus derived
report.update(rows=rows, seconds=time.monotonic() - start)
print("REPORT", json.dumps(report))
"""


def test_ray_an_actor_pool_that_cannot_fit_is_refused_not_hung(
    ray_deployment: _clusters.RayCluster, corpus: tuple[Path, list[int], list[str]], model_dir: Path, tmp_path: Path
) -> None:
    # The hang: concurrency=4 actors of num_cpus=1 on 4 CPUs start, but Ray Data's read tasks never do.
    folder, _, _ = corpus
    (tmp_path / "job.py").write_text(RESOURCES_JOB.format(folder=str(folder), model=str(model_dir)))
    done = run_driver([_clusters.PYTHON, "job.py"], ray_deployment.driver_env(), tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("REPORT"))[7:])
    assert report["cpus"] == [2.0, 2.0]
    assert "4 actor(s) of num_cpus=1 do not fit" in report["refused"]
    assert "pass num_cpus=0.5" in report["refused"]
    assert report["rows"] == N_ROWS


NODE_LOST_JOB = """
import json, time, ray
import pyarrow as pa, pyarrow.parquet as pq
from staticst.integrations.ray import embed_dataset

ray.init()
ds = ray.data.read_parquet({folder!r}, override_num_blocks=24)
ds = embed_dataset(ds, {model!r}, concurrency=2, num_threads=1, batch_size=50, max_restarts=3, max_task_retries=3)
parts = []
for i, batch in enumerate(ds.iter_batches(batch_size=100, batch_format="pyarrow")):
    parts.append(batch.select(["id", "embedding"]))
    time.sleep(1.0)  # a slow consumer: the job is still running when the test kills the worker node
pq.write_table(pa.concat_tables(parts), {out!r})
print("DONE", flush=True)
"""


def _cmdlines(pids: list[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return lines


def test_ray_the_worker_node_lost_mid_job_gives_the_same_rows_or_a_clear_error_in_bounded_time(
    ray_deployment: _clusters.RayCluster,
    corpus: tuple[Path, list[int], list[str]],
    model_dir: Path,
    reference: dict[int, np.ndarray],
    tmp_path: Path,
) -> None:
    # The second host dies (SIGKILL to its raylet, actors and workers at once) while an actor on it is working.
    folder, _, _ = corpus
    out = tmp_path / "out.parquet"
    (tmp_path / "job.py").write_text(NODE_LOST_JOB.format(folder=str(folder), model=str(model_dir), out=str(out)))
    env = ray_deployment.driver_env()
    driver = subprocess.Popen([_clusters.PYTHON, "job.py"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _clusters.wait_for(
            lambda: any("MapWorker" in c for c in _cmdlines(ray_deployment.worker_pids())),
            "an embedding actor on the worker node", 180,
        )  # fmt: skip
        killed = ray_deployment.kill_worker_node()
        assert killed
        try:
            stdout, stderr = driver.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            driver.kill()
            stdout, stderr = driver.communicate()
            pytest.fail(f"the job neither finished nor failed within 240 s of the node's loss: {stderr[-3000:]}")
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
        ray_deployment.start_worker()  # the second host comes back for any later test
        _clusters.wait_for(lambda: ray_deployment.nodes_alive() == 2, "the Ray worker node to rejoin", 180)
    outcome = "finished, same rows" if driver.returncode == 0 else "failed with an error"
    print(f"\nRay, worker node killed mid-job ({len(killed)} processes): the job {outcome}", file=sys.stderr)
    if driver.returncode == 0:
        assert "DONE" in stdout
        table = pq.read_table(out)
        ids = table.column("id").to_pylist()
        assert sorted(ids) == sorted(reference)
        got = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
        np.testing.assert_array_equal(got, np.stack([reference[i] for i in ids]))
    else:  # a clear error, not a hang
        errors = [line for line in stderr.splitlines() if re.search(r"Error|died|dead", line)]
        print("  the driver's error: " + (errors[-1][:500] if errors else stderr[-500:]), file=sys.stderr)
        assert re.search(r"(died|ActorDiedError|NodeDiedError|node .* (dead|died|lost))", stderr, re.I), stderr[-3000:]


# ---------------------------------------------------------------------------------------------- Spark


def test_spark_the_documented_job_on_a_standalone_cluster(
    spark_deployment: _clusters.SparkCluster,
    corpus: tuple[Path, list[int], list[str]],
    model_dir: Path,
    reference: dict[int, np.ndarray],
    tmp_path: Path,
) -> None:
    folder, _, _ = corpus
    out = tmp_path / "embedded"
    code = doc_block(
        "spark",
        {"/data/texts/": str(folder), "/models/potion-base-8M": str(model_dir), "/data/embedded/": str(out)},
    )
    # after the documented block: which workers ran the UDF (each executor's Python worker says its role)?
    code += textwrap.dedent(
        """
        import os
        from pyspark.sql.functions import udf
        role = udf(lambda _: os.environ.get("STATICST_CLUSTER_ROLE", "?"))
        print("ROLES", sorted(r[0] for r in df.repartition(8).select(role("id")).distinct().collect()))
        spark.stop()
        """
    )
    (tmp_path / "job.py").write_text(code)
    args = [*spark_deployment.submit_args(), str(tmp_path / "job.py")]
    done = run_driver(args, spark_deployment.submit_env(), tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "ROLES ['worker0', 'worker1']" in done.stdout, done.stdout[-2000:]
    check_output(out, reference, "list")


EXECUTOR_LOST_JOB = """
import time
from pyspark.sql import SparkSession
from staticst.integrations.spark import embed_column, ship_model

spark = SparkSession.builder.getOrCreate()
name = ship_model(spark, {model!r})
df = spark.read.parquet({folder!r}).repartition(12)


def slow(batches):
    for batch in batches:
        time.sleep(1.0)  # the job is still running when the test kills the second worker
        yield batch


df = embed_column(df, name, column="text", from_spark_files=True, num_threads=1)
df.select("id", "embedding").mapInArrow(slow, df.select("id", "embedding").schema).write.parquet({out!r})
print("DONE", flush=True)
spark.stop()
"""


def test_spark_a_worker_lost_mid_job_gives_the_same_rows(
    spark_deployment: _clusters.SparkCluster,
    corpus: tuple[Path, list[int], list[str]],
    model_dir: Path,
    reference: dict[int, np.ndarray],
    tmp_path: Path,
) -> None:
    # The second worker (its JVM, executor and Python workers) dies while it runs tasks: Spark reruns them.
    folder, _, _ = corpus
    out = tmp_path / "embedded"
    (tmp_path / "job.py").write_text(EXECUTOR_LOST_JOB.format(folder=str(folder), model=str(model_dir), out=str(out)))
    args = [*spark_deployment.submit_args(), str(tmp_path / "job.py")]
    driver = subprocess.Popen(args, env=spark_deployment.submit_env(), cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        _clusters.wait_for(
            lambda: any("pyspark" in c and "daemon" in c for c in _cmdlines(spark_deployment.worker_pids(1))),
            "a Python worker on the second Spark worker", 240,
        )  # fmt: skip
        killed = spark_deployment.kill_worker(1)
        assert killed
        try:
            stdout, stderr = driver.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            driver.kill()
            stdout, stderr = driver.communicate()
            pytest.fail(f"the job did not finish within 300 s of the worker's loss: {stderr[-3000:]}")
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 0, stderr[-4000:]
    assert "DONE" in stdout
    assert re.search(r"(Lost executor|ExecutorLost|executor .* (lost|exited|removed))", stderr, re.I), stderr[-2000:]
    check_output(out, reference, "list")

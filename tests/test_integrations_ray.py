"""staticst.integrations.ray on a real local Ray cluster (one per module, 2 CPUs, loopback only, no dashboard).

Reference vectors come from ``StaticSentenceTransformer.encode`` in this process; texts are real MTEB sentences.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import ray
import ray.data

from staticst import StaticSentenceTransformer
from staticst.integrations.ray import EmbedBatches, actor_cpus, embed_dataset

pytestmark = pytest.mark.slow  # integration job: a real Ray cluster; `-m "not slow"` leaves it out

REPO = Path(__file__).resolve().parent.parent
N_ROWS = 240


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory, shared_model: Any) -> Iterator[None]:
    # The cluster recipe: the job's working_dir (with a model folder in it) is shipped to every worker.
    job = tmp_path_factory.mktemp("ray-job")
    (job / "models" / "potion-base-2M").mkdir(parents=True)
    for source in Path(shared_model("potion-base-2M")).iterdir():  # copies without shared/'s read-only modes
        shutil.copyfile(source, job / "models" / "potion-base-2M" / source.name)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")  # no usage report: nothing leaves the machine
        # Ray binds a cluster to the machine's outward address even when given 127.0.0.1; with "cluster mode"
        # off (its setting for laptops, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read when ray is imported) it
        # uses the loopback address.
        env.setattr(ray._private.ray_constants, "ENABLE_RAY_CLUSTER", False)
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            runtime_env={"working_dir": str(job)},
        )
        assert ray.util.get_node_ip_address() == "127.0.0.1"
        # The subclasses below live in this test module: ship them by value (workers need not import tests/).
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        try:
            yield
        finally:
            ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
            ray.shutdown()


@pytest.fixture(scope="module")
def texts(shared_dir: Path) -> list[str]:
    path = shared_dir / "data" / "mteb" / "stsbenchmark-sts" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [row["sentence1"] for row in rows[:N_ROWS]]


@pytest.fixture(scope="module")
def model_2m(shared_model: Any) -> Path:
    return Path(shared_model("potion-base-2M"))


def _dataset(texts: list[str], blocks: int = 4) -> ray.data.Dataset:
    items = [{"id": i, "text": t, "length": len(t)} for i, t in enumerate(texts)]
    return ray.data.from_items(items, override_num_blocks=blocks)


def _sorted_numpy(ds: ray.data.Dataset, n: int) -> dict[str, np.ndarray]:
    batch = ds.take_batch(n + 10, batch_format="numpy")  # more than n: a duplicate row would show
    order = np.argsort(batch["id"], kind="stable")
    if batch["embedding"].dtype == object:  # a fixed_size_list column reads as one array per row
        batch["embedding"] = np.stack(batch["embedding"])
    return {name: np.asarray(values)[order] for name, values in batch.items()}


def _hub_cache(tmp_path: Path, model: Path) -> Path:
    """A Hugging Face cache in tmp_path holding ``model`` as the Hub id ``someone/potion-2m`` (huggingface_hub's layout)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--someone--potion-2m"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots").mkdir()
    os.symlink(model, repo / "snapshots" / commit)
    return tmp_path / "cache"


@pytest.mark.parametrize(
    ("batch_format", "which", "options"),
    [
        ("pyarrow", "hub id", {"normalize_embeddings": True, "truncate_dim": 48}),
        ("pandas", "folder", {"prompt_name": "query", "model_kwargs": {"prompts": {"query": "query: "}}}),
        ("numpy", "builtin", {}),
    ],
)
def test_embed_dataset_equals_encode(
    ray_cluster: None,
    texts: list[str],
    model_2m: Path,
    tmp_path: Path,
    batch_format: str,
    which: str,
    options: dict[str, Any],
) -> None:
    options = dict(options)
    model = {"hub id": "someone/potion-2m", "folder": str(model_2m), "builtin": None}[which]
    if which == "hub id":  # resolved by each actor from the cache it is pointed to, offline
        options["model_kwargs"] = {"cache_folder": str(_hub_cache(tmp_path, model_2m)), "local_files_only": True}
    out = embed_dataset(_dataset(texts), model, batch_format=batch_format, batch_size=32, concurrency=2, **options)
    got = _sorted_numpy(out, len(texts))

    assert got["id"].tolist() == list(range(len(texts)))  # every row once
    assert got["text"].tolist() == texts and got["length"].tolist() == [len(t) for t in texts]  # columns kept
    model_kwargs = options.pop("model_kwargs", {})
    expected = StaticSentenceTransformer(model, **model_kwargs).encode(texts, **options)
    if which == "hub id":
        np.testing.assert_array_equal(expected, StaticSentenceTransformer(model_2m).encode(texts, **options))
    assert got["embedding"].dtype == np.float32 and got["embedding"].shape == expected.shape
    np.testing.assert_array_equal(got["embedding"], expected)
    kind = out.schema().types[-1]
    if batch_format == "numpy":  # one (n, dim) array: Ray's own tensor column
        assert "ArrowTensorType" in str(kind)
    else:  # the schema every staticst writer uses
        assert kind == pa.list_(pa.float32(), expected.shape[1]), kind


def test_a_relative_folder_is_found_in_the_shipped_working_dir(
    ray_cluster: None, texts: list[str], model_2m: Path
) -> None:
    relative = "models/potion-base-2M"
    assert not Path(relative).exists()  # not from the driver's folder: from each actor's copy of the working_dir
    got = _sorted_numpy(embed_dataset(_dataset(texts[:50], blocks=2), relative), 50)
    np.testing.assert_array_equal(got["embedding"], StaticSentenceTransformer(model_2m).encode(texts[:50]))


class CountsLoads(EmbedBatches):
    """Adds the actor's pid and how many times a model was loaded in that process to every row."""

    loads = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        type(self).loads += 1

    def __call__(self, batch: Any) -> Any:
        out = super().__call__(batch)
        n = len(out)
        return out.assign(pid=[os.getpid()] * n, loads=[type(self).loads] * n)


def test_model_is_loaded_once_per_actor(ray_cluster: None, texts: list[str], model_2m: Path) -> None:
    out = _dataset(texts, blocks=6).map_batches(
        CountsLoads, fn_constructor_kwargs={"model": str(model_2m)}, batch_size=8, concurrency=2, batch_format="pandas"
    )
    got = _sorted_numpy(out, len(texts))
    assert len(texts) // 8 >= 30  # 30 batches or more over at most 2 actors
    assert len(set(got["pid"].tolist())) <= 2
    assert set(got["loads"].tolist()) == {1}
    np.testing.assert_array_equal(np.stack(list(got["embedding"])), StaticSentenceTransformer(model_2m).encode(texts))


class DiesOnce(EmbedBatches):
    """The first call in one actor (whichever creates the marker file first) kills its process."""

    def __init__(self, marker: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.marker = marker

    def __call__(self, batch: Any) -> Any:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return super().__call__(batch)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        os._exit(1)  # no cleanup, no exception: the process is gone mid-batch


def _run_dies_once(texts: list[str], model: Path, marker: Path, retries: int) -> dict[str, np.ndarray]:
    out = _dataset(texts).map_batches(
        DiesOnce,
        fn_constructor_kwargs={"marker": str(marker), "model": str(model)},
        batch_size=16,
        concurrency=2,
        batch_format="pyarrow",
        max_restarts=retries,
        max_task_retries=retries,
    )
    return _sorted_numpy(out, len(texts))


def test_an_actor_killed_mid_job_is_restarted_and_its_batch_retried(
    ray_cluster: None, texts: list[str], model_2m: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "died"
    got = _run_dies_once(texts, model_2m, marker, retries=2)
    assert marker.exists() and int(marker.read_text()) > 0  # an actor really died
    assert got["id"].tolist() == list(range(len(texts)))
    np.testing.assert_array_equal(got["embedding"], StaticSentenceTransformer(model_2m).encode(texts))


def test_without_restarts_the_same_kill_fails_the_job(
    ray_cluster: None, texts: list[str], model_2m: Path, tmp_path: Path
) -> None:
    """The control of the test above: its success comes from max_restarts / max_task_retries."""
    with pytest.raises(Exception, match="died"):
        _run_dies_once(texts, model_2m, tmp_path / "died", retries=0)


def test_null_texts_get_null_embeddings_with_on_null_null(ray_cluster: None, texts: list[str], model_2m: Path) -> None:
    items = [{"id": i, "text": None if i % 5 == 0 else t} for i, t in enumerate(texts[:60])]
    for batch_format in ("pyarrow", "pandas"):
        out = embed_dataset(
            ray.data.from_items(items, override_num_blocks=3), str(model_2m), on_null="null", batch_format=batch_format
        )
        rows = sorted(out.take_all(), key=lambda row: row["id"])
        assert [row["id"] for row in rows] == list(range(60))
        assert all((row["embedding"] is None) == (row["id"] % 5 == 0) for row in rows), batch_format
        kept = [t for i, t in enumerate(texts[:60]) if i % 5]
        got = np.array([row["embedding"] for row in rows if row["embedding"] is not None], dtype=np.float32)
        np.testing.assert_array_equal(got, StaticSentenceTransformer(model_2m).encode(kept))


def test_null_texts_fail_by_default_naming_the_column_and_the_fix(ray_cluster: None, model_2m: Path) -> None:
    ds = ray.data.from_items([{"id": 0, "body": "fine"}, {"id": 1, "body": None}])
    with pytest.raises(Exception, match=r"column 'body' holds a null .*on_null='null'"):
        embed_dataset(ds, str(model_2m), column="body").materialize()


def _same(batch: Any) -> Any:
    return batch


def test_non_string_values_seen_by_the_actor_are_a_one_line_error(ray_cluster: None, model_2m: Path) -> None:
    # After a map the schema is unknown without running it, so the check happens in the actor.
    ds = ray.data.from_items([{"id": i, "text": i * 10} for i in range(20)]).map_batches(_same, batch_format="pyarrow")
    assert ds.schema(fetch_if_missing=False) is None
    with pytest.raises(Exception, match=r"column 'text' is of type int64, not string: convert it to text first"):
        embed_dataset(ds, str(model_2m)).materialize()


def test_schema_errors_are_raised_on_the_driver(ray_cluster: None, texts: list[str]) -> None:
    ds = _dataset(texts[:10])
    with pytest.raises(
        ValueError, match=r"column 'body' is not in the dataset \(columns: id, text, length\): pass column="
    ):
        embed_dataset(ds, column="body")
    with pytest.raises(TypeError, match=r"column 'length' is of type int64, not string"):
        embed_dataset(ds, column="length")


def test_bad_options_are_raised_on_the_driver(ray_cluster: None, texts: list[str]) -> None:
    ds = _dataset(texts[:10])
    with pytest.raises(
        ValueError, match=r"precision='int8' is not supported here, only 'float32'.*quantize_embeddings"
    ):
        embed_dataset(ds, precision="int8")
    with pytest.raises(ValueError, match=r"model_kwargs has unknown key\(s\) \['promts'\]"):
        embed_dataset(ds, model_kwargs={"promts": {}})
    with pytest.raises(ValueError, match=r"on_null='null' needs batch_format='pyarrow' or 'pandas'"):
        embed_dataset(ds, on_null="null", batch_format="numpy")
    with pytest.raises(ValueError, match=r"would replace the text column"):
        embed_dataset(ds, output_column="text")
    with pytest.raises(TypeError, match=r"pass its name, not a loaded model"):
        embed_dataset(ds, StaticSentenceTransformer())  # type: ignore[arg-type]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_import_staticst_imports_neither_engine() -> None:
    out = _python(
        "import sys, staticst, staticst.integrations\n"
        "staticst.StaticSentenceTransformer().encode(['a b'])\n"
        "print(sorted(m for m in ('ray', 'pyspark', 'py4j') if m in sys.modules))\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_ray_the_module_says_how_to_install_it() -> None:
    out = _python(
        "import sys\n"
        "sys.modules['ray'] = None  # as if Ray were not installed\n"
        "try:\n"
        "    import staticst.integrations.ray\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        "MissingDependencyError staticst.integrations.ray needs Ray Data, which is not installed: "
        "pip install 'staticst[ray]'."
    )


@pytest.mark.parametrize(
    ("concurrency", "nodes", "expected"),
    [
        (4, [2.0], 0.25),  # the docs' concurrency=4 on one 2-CPU machine: 4 x 1/4, one CPU left for the reads
        (2, [2.0, 2.0], 1.0),  # one actor per node (Ray spreads them), a whole CPU left on each
        (4, [2.0, 2.0], 0.5),
        (1, [1.0, 1.0], 1.0),
        ((2, 8), [2.0], 0.5),  # an autoscaling pool: its minimum must fit
    ],
)
def test_actor_cpus_are_derived_so_a_whole_cpu_stays_free(
    concurrency: int | tuple[int, int], nodes: list[float], expected: float
) -> None:
    assert actor_cpus(concurrency, None, nodes) == expected


def test_an_actor_pool_that_would_wait_forever_is_refused_with_what_fits() -> None:
    # The hangs: 4 actors of 1 CPU on 2 CPUs (2 pending forever), and 2 actors of 1/2 CPU on two 1-CPU
    # nodes (spread one per node: no whole CPU left for the read tasks, "ListFiles: 0/1" forever).
    with pytest.raises(ValueError, match=r"4 actor\(s\) of num_cpus=1 do not fit.*2 CPU\(s\).*pass num_cpus=0\.25"):
        actor_cpus(4, 1, [2.0])
    with pytest.raises(ValueError, match=r"2 actor\(s\) of num_cpus=0\.5 do not fit.*1, 1 CPU.*lower concurrency to 1"):
        actor_cpus(2, 0.5, [1.0, 1.0])
    with pytest.raises(ValueError, match=r"concurrency=4 needs 4 actor\(s\).*at most 1 actor"):
        actor_cpus(4, None, [1.0, 1.0])
    with pytest.raises(ValueError, match=r"num_cpus must be a positive number.*got 0"):
        actor_cpus(1, 0, [2.0])
    with pytest.raises(ValueError, match=r"concurrency must be a positive int or \(min, max\).*got \(3, 2\)"):
        actor_cpus((3, 2), None, [2.0])
    assert actor_cpus(4, 1, None) == 1.0  # check_resources=False: taken as given

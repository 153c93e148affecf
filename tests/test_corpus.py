"""Bulk encoding: every input and output format, exactness, atomic outputs, resume after SIGKILL, bad input."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from staticst import CorpusInputError, CorpusOutputError, StaticSentenceTransformer, embed_corpus, encode_iter
from staticst.corpus.sources import BadRecord, Record
from tests.conftest import REPO

TEXTS = [f"sentence {i}: the cat sat on mat number {i * 7 % 13}" for i in range(5000)] + ["", "café ü 日本", "x" * 3000]


MODEL = "potion-base-2M"  # the conftest's `model` fixture loads it


@pytest.fixture(scope="module")
def expected(model: StaticSentenceTransformer) -> np.ndarray:
    return np.asarray(model.encode(TEXTS))


def _read(path: Path) -> tuple[np.ndarray, list[object]]:
    """The vectors of an output file and its ids / indices (with the library readers of each format)."""
    suffix = path.suffix
    if suffix == ".npy":
        return np.load(path), []
    if suffix in (".f32", ".bin"):
        meta = json.loads(path.with_name(path.name + ".json").read_text())
        return np.fromfile(path, dtype=meta["dtype"]).reshape(meta["shape"]), []
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return np.array([r["embedding"] for r in rows], dtype=np.float32), [r.get("id", r.get("index")) for r in rows]
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    vectors = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    return vectors, table.column("id").to_pylist() if "id" in table.column_names else []


@pytest.mark.parametrize("suffix", [".npy", ".f32", ".bin", ".jsonl", ".parquet"])
def test_every_output_format_holds_exactly_the_vectors(tmp_path: Path, model: StaticSentenceTransformer, expected: np.ndarray, suffix: str) -> None:
    source = tmp_path / "corpus.txt"
    source.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / f"out{suffix}"
    report = embed_corpus(model, source, out, batch_texts=777, progress=False)
    vectors, ids = _read(out)
    assert report.rows == len(TEXTS) and report.skipped == 0 and report.errors is None
    assert vectors.dtype == np.float32 and vectors.tobytes() == expected.tobytes()
    if suffix == ".jsonl":
        assert ids == list(range(len(TEXTS)))
    assert not (tmp_path / f"out{suffix}.partial").exists()


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_structured_inputs_with_fields_and_ids(tmp_path: Path, model: StaticSentenceTransformer, expected: np.ndarray, kind: str) -> None:
    rows = [{"doc": f"d{i}", "body": t} for i, t in enumerate(TEXTS)]
    source = tmp_path / f"corpus.{kind}"
    if kind == "jsonl":
        source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif kind == "csv":
        import csv

        with source.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["doc", "body"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), source, row_group_size=1000)
    out = tmp_path / "out.parquet"
    embed_corpus(model, source, out, field="body", id_field="doc", keep_texts=True, batch_texts=1500, progress=False)
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.column("id").to_pylist() == [r["doc"] for r in rows]
    assert table.column("text").to_pylist() == TEXTS
    assert np.array(table.column("embedding").to_pylist(), dtype=np.float32).tobytes() == expected.tobytes()
    # the vectors are written plainly (no dictionary, no statistics: 1.4x faster CLI runs), ids and texts as usual
    group = pq.ParquetFile(out).metadata.row_group(0)
    columns = {group.column(j).path_in_schema: group.column(j) for j in range(group.num_columns)}
    assert not columns["embedding.list.element"].has_dictionary_page
    assert not columns["embedding.list.element"].is_stats_set
    assert columns["id"].has_dictionary_page and columns["id"].is_stats_set


def test_encode_iter_equals_encode(model: StaticSentenceTransformer, expected: np.ndarray) -> None:
    parts = list(encode_iter(model, (t for t in TEXTS), batch_size=1000))
    assert [len(p) for p in parts] == [1000] * 5 + [3]
    assert np.concatenate(parts).tobytes() == expected.tobytes()
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        next(encode_iter(model, TEXTS, batch_size=0))


def test_bad_records_fail_with_file_and_line_or_are_skipped_and_listed(tmp_path: Path, model: StaticSentenceTransformer) -> None:
    source = tmp_path / "corpus.txt"
    source.write_bytes(b"good line\nbad \xff\xfe line\nanother good one\n")
    with pytest.raises(CorpusInputError, match=r"corpus.txt:2: not UTF-8 \(byte 0xff at column 5\).*on-error skip"):
        embed_corpus(model, source, tmp_path / "a.npy", progress=False)
    assert not (tmp_path / "a.npy").exists()
    (tmp_path / "a.npy.partial").rename(tmp_path / "gone")  # the failed run left its partial folder
    report = embed_corpus(model, source, tmp_path / "b.npy", on_error="skip", progress=False)
    assert report.rows == 2 and report.skipped == 1
    assert report.errors is not None and json.loads(report.errors.read_text()) == {
        "file": str(source), "line": 2, "reason": "not UTF-8 (byte 0xff at column 5)"
    }
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), model.encode(["good line", "another good one"]))
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"text": "ok"}\n{"txt": "wrong field"}\nnot json\n{"text": 5}\n')
    for line, reason in [(2, "no field 'text'"), (3, "not JSON"), (4, "field 'text' is int")]:
        lines = jsonl.read_text().splitlines()
        jsonl.write_text("\n".join([lines[0], lines[line - 1]]) + "\n")
        with pytest.raises(CorpusInputError, match=f"c.jsonl:2: {reason}"):
            embed_corpus(model, jsonl, tmp_path / f"j{line}.npy", progress=False)
        jsonl.write_text('{"text": "ok"}\n{"txt": "wrong field"}\nnot json\n{"text": 5}\n')


def test_bad_paths_and_formats_fail_before_any_work(tmp_path: Path, model: StaticSentenceTransformer) -> None:
    source = tmp_path / "corpus.txt"
    source.write_text("a\nb\n")
    for output, message in [
        (tmp_path / "out.parq", "unknown output format '.parq'"),
        (tmp_path / "out", "unknown output format '\\(no extension\\)'"),
        (tmp_path / "missing" / "out.npy", "the folder .* does not exist"),
    ]:
        with pytest.raises(CorpusOutputError, match=message):
            embed_corpus(model, source, output, progress=False)
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(CorpusOutputError, match="is a folder"):
        embed_corpus(model, source, tmp_path / "dir.npy", progress=False)
    with pytest.raises(CorpusInputError, match="no such file"):
        embed_corpus(model, tmp_path / "nope.txt", tmp_path / "x.npy", progress=False)
    with pytest.raises(CorpusInputError, match="no column 'text'"):
        (tmp_path / "t.csv").write_text("a,b\n1,2\n")
        embed_corpus(model, tmp_path / "t.csv", tmp_path / "y.npy", progress=False)


def test_a_leftover_partial_run_is_never_silently_reused(tmp_path: Path, model: StaticSentenceTransformer) -> None:
    source = tmp_path / "corpus.txt"
    source.write_text("\n".join(TEXTS[:100]) + "\n")
    out = tmp_path / "out.npy"
    (out.with_name("out.npy.partial")).mkdir()
    with pytest.raises(CorpusOutputError, match="left by an interrupted run: pass resume=True"):
        embed_corpus(model, source, out, progress=False)
    shutil.rmtree(out.with_name("out.npy.partial"))  # (the refused run took and released its lock file there)
    # a partial run with other options is refused on resume
    embed_corpus(model, source, out, progress=False)
    partial = out.with_name("out.npy.partial")
    partial.mkdir()
    (partial / "manifest.json").write_text(json.dumps({"fingerprint": {"options": {"normalize_embeddings": True}}}))
    with pytest.raises(CorpusOutputError, match="belongs to another run"):
        embed_corpus(model, source, out, resume=True, progress=False)


def _cli(*args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "staticst.cli", "encode", *args], cwd=REPO, **kwargs)  # type: ignore[call-overload]


def _consumed(manifest: Path) -> int:
    """Texts a running ``--resume`` run has made durable (0 before its first checkpoint)."""
    try:
        return int(json.loads(manifest.read_text(encoding="utf-8"))["consumed"])
    except (FileNotFoundError, ValueError, KeyError):  # not written yet, or being replaced
        return 0


@pytest.mark.parametrize("suffix", [".npy", ".jsonl", ".parquet"])
def test_sigkill_at_random_points_then_resume_gives_the_uninterrupted_result(
    tmp_path: Path, shared_model: Callable[[str], Path], suffix: str
) -> None:
    rng = random.Random(hash(suffix) % 1000)
    source = tmp_path / "corpus.txt"
    batch = 1500  # 40 batches: room for three kills of up to 8 batches each and a finishing run
    source.write_text("".join(f"{TEXTS[i % len(TEXTS)]} {i}\n" for i in range(40 * batch)), encoding="utf-8")
    model = str(shared_model("potion-base-2M"))
    clean = tmp_path / f"clean{suffix}"
    assert _cli("-m", model, "-i", str(source), "-o", str(clean), "--quiet", "--batch-size", str(batch)).wait(timeout=300) == 0
    out = tmp_path / f"out{suffix}"
    manifest = out.with_name(out.name + ".partial") / "manifest.json"
    kills = 0
    for attempt in range(8):
        process = _cli("-m", model, "-i", str(source), "-o", str(out), "--quiet", "--batch-size", str(batch), "--resume")
        if attempt < 3:
            # killed once a random number of batches more are durable (not after a time: independent of speed)
            start = _consumed(manifest)
            target = start + batch * rng.randint(1, 8)
            while process.poll() is None and _consumed(manifest) < target:
                time.sleep(0.001)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
                process.wait(timeout=60)
                assert not out.exists()  # nothing half-written at the final name
                continue
        assert process.wait(timeout=300) == 0
        break
    assert kills >= 1
    got, got_ids = _read(out)
    want, want_ids = _read(clean)
    assert got.tobytes() == want.tobytes() and got_ids == want_ids
    if suffix != ".parquet":
        assert out.read_bytes() == clean.read_bytes()


def test_cli_streams_stdin_to_stdout_and_ends_quietly_on_a_closed_pipe(shared_model: Callable[[str], Path]) -> None:
    model = str(shared_model("potion-base-2M"))
    import threading

    lines = "".join(f"line {i}\n" for i in range(100_000)).encode()
    process = _cli("-m", model, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdin is not None

    def feed() -> None:  # in a thread: the child writes while it reads, as in a shell pipeline
        assert process.stdin is not None
        try:
            process.stdin.write(lines)
            process.stdin.close()
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed)
    writer.start()
    first = process.stdout.readline()
    process.stdout.close()  # like `| head -1`
    assert process.wait(timeout=120) == 0
    writer.join(timeout=60)
    assert process.stderr is not None and b"Traceback" not in process.stderr.read()
    row = json.loads(first)
    assert row["index"] == 0
    np.testing.assert_array_equal(np.array(row["embedding"], np.float32), StaticSentenceTransformer(model).encode("line 0"))


def test_cli_output_errors_are_one_line_and_come_first(tmp_path: Path) -> None:
    started = time.perf_counter()
    for args, message in [
        (["-o", "/nonexistent/x.npy"], "the folder /nonexistent does not exist"),
        (["-o", str(tmp_path)], "unknown output format"),
        (["-o", str(tmp_path / "x.txt")], "unknown output format '.txt'"),
    ]:
        out = subprocess.run(
            [sys.executable, "-m", "staticst.cli", "encode", *args], input=b"a\n" * 10, capture_output=True, cwd=REPO, timeout=60
        )
        err = out.stderr.decode()
        assert out.returncode == 1 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    with open("/dev/full", "wb") as full:
        out = subprocess.run(
            [sys.executable, "-m", "staticst.cli", "encode", "some text"], stdout=full, stderr=subprocess.PIPE, cwd=REPO, timeout=60
        )
    assert out.returncode == 1 and b"No space left on device" in out.stderr and b"Traceback" not in out.stderr
    assert time.perf_counter() - started < 120  # (a sanity bound on the subprocesses, not a speed target)


def test_progress_bar_on_stderr_and_quiet(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    source = tmp_path / "corpus.txt"
    source.write_text("".join(f"line {i}\n" for i in range(20_000)))
    model = str(shared_model("potion-base-2M"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")}
    script = (
        "import sys; from staticst import embed_corpus; "
        f"embed_corpus({model!r}, {str(source)!r}, {str(tmp_path / 'p.npy')!r}, progress=True, batch_texts=2000)"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert shown.returncode == 0 and "embedding" in shown.stderr and "20.0k/20.0k" in shown.stderr and "texts/s" in shown.stderr
    quiet = subprocess.run(
        [sys.executable, "-m", "staticst.cli", "encode", "-m", model, "-i", str(source), "-o", str(tmp_path / "q.npy"), "--quiet"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert quiet.returncode == 0
    assert re.fullmatch(rf"wrote 20,000 rows to {re.escape(str(tmp_path / 'q.npy'))} in \d+\.\d s \([\d,]+ rows/s\)", quiet.stderr.strip())


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1 << 20])
def test_text_lines_are_read_as_split_lines_whatever_the_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    import staticst.corpus.sources as sources

    monkeypatch.setattr(sources, "_TEXT_BLOCK_BYTES", block_bytes)
    lines = [b"plain", b"", b"crlf\r", b"two cr\r\r", b"caf\xc3\xa9 \xe2\x80\xa8 sep", b"bad \xff", b" spaced ", b"\x0cff"]
    raw = b"\n".join(lines * 5) + b"\nlast line without newline"
    path = tmp_path / "c.txt"
    path.write_bytes(raw)
    got = list(sources.open_source(path).records())
    expected: list[tuple[int, str | None]] = []
    for number, line in enumerate(raw.split(b"\n"), start=1):  # the rule: bytes split at \n, trailing \r dropped
        try:
            expected.append((number, line.decode("utf-8").rstrip("\r")))
        except UnicodeDecodeError:
            expected.append((number, None))
    assert [(r.line, r.text if isinstance(r, Record) else None) for r in got] == expected
    assert [r.line for r in got if isinstance(r, BadRecord)] == [6, 14, 22, 30, 38]


# ---------------------------------------------------------------------------------------------- issue 20.1: width


def _read_any(path: Path, width: int, dtype: str) -> np.ndarray:
    """An output file's rows with the readers a user would use (numpy, pyarrow), checking the declared shape/type."""
    suffix = path.suffix
    if suffix == ".npy":
        return np.load(path)  # the header must describe the data: np.load fails on a wrong shape
    if suffix in (".f32", ".bin"):
        meta = json.loads(path.with_name(path.name + ".json").read_text())
        data = np.fromfile(path, dtype=meta["dtype"])
        assert data.size == meta["shape"][0] * meta["shape"][1]
        return data.reshape(meta["shape"])
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert all(len(r["embedding"]) == width for r in rows)
        return np.array([r["embedding"] for r in rows], dtype=dtype)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    kind = table.schema.field("embedding").type
    assert kind == pa.list_({"float32": pa.float32(), "int8": pa.int8(), "uint8": pa.uint8()}[dtype], width), kind
    column = table.column("embedding").combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(table), width)


@pytest.mark.parametrize("precision", ["float32", "binary", "ubinary"])
@pytest.mark.parametrize("truncate_dim", [None, 24])
@pytest.mark.parametrize("suffix", [".npy", ".f32", ".bin", ".jsonl", ".parquet"])
def test_every_sink_writes_the_effective_width_and_precision(
    tmp_path: Path, model: StaticSentenceTransformer, suffix: str, truncate_dim: int | None, precision: str
) -> None:
    texts = TEXTS[:300] + TEXTS[-3:]
    source = tmp_path / "c.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / f"t{suffix}"
    embed_corpus(model, source, out, truncate_dim=truncate_dim, precision=precision, batch_texts=128, progress=False)
    expected = np.asarray(model.encode(texts, truncate_dim=truncate_dim, precision=precision))
    width = (truncate_dim or 64) if precision == "float32" else -(-(truncate_dim or 64) // 8)
    assert expected.shape == (len(texts), width)
    got = _read_any(out, width, str(expected.dtype))
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert got.tobytes() == expected.tobytes()


def test_cli_truncate_dim_npy_reads_back(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    """The reported case: `staticst encode -i c.txt -o t.npy --truncate-dim 64` wrote a (n, 256) header."""
    model = str(shared_model("potion-base-8M"))
    source = tmp_path / "c.txt"
    source.write_text("\n".join(TEXTS[:100]) + "\n")
    for name in ("t.npy", "t.f32", "t.parquet"):
        run = subprocess.run(
            [sys.executable, "-m", "staticst.cli", "encode", "-m", model, "-i", str(source), "-o", str(tmp_path / name),
             "--truncate-dim", "64", "-q"], capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
    expected = StaticSentenceTransformer(model).encode(TEXTS[:100], truncate_dim=64)
    assert np.load(tmp_path / "t.npy").tobytes() == expected.tobytes()
    assert json.loads((tmp_path / "t.f32.json").read_text())["shape"] == [100, 64]
    assert _read_any(tmp_path / "t.parquet", 64, "float32").tobytes() == expected.tobytes()


def test_int8_cannot_be_streamed_and_says_binary_can(tmp_path: Path, model: StaticSentenceTransformer) -> None:
    source = tmp_path / "c.txt"
    source.write_text("a\nb\n")
    with pytest.raises(ValueError, match=r"precision='int8' cannot be streamed.*'binary' and 'ubinary' need no calibration"):
        embed_corpus(model, source, tmp_path / "o.npy", precision="int8", progress=False)
    assert not (tmp_path / "o.npy.partial").exists()


# ---------------------------------------------------------------------------------------------- issue 19.1: resume by content


def _run_until_killed(args: list[str], manifest: Path, at_least: int) -> None:
    process = _cli(*args)
    deadline = time.monotonic() + 240
    while process.poll() is None and _consumed(manifest) < at_least and time.monotonic() < deadline:
        time.sleep(0.005)
    assert process.poll() is None, "the run ended before it could be killed: make the corpus larger"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def test_resume_refuses_a_model_whose_weights_changed_with_the_same_shape(
    tmp_path: Path, shared_model: Callable[[str], Path]
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(shared_model("potion-base-2M"), folder, copy_function=shutil.copyfile)
    source = tmp_path / "corpus.txt"
    source.write_text("".join(f"{TEXTS[i % len(TEXTS)]} {i}\n" for i in range(200_000)), encoding="utf-8")
    out = tmp_path / "out.npy"
    manifest = out.with_name("out.npy.partial") / "manifest.json"
    args = ["-m", str(folder), "-i", str(source), "-o", str(out), "--quiet", "--batch-size", "1000"]
    _run_until_killed(args, manifest, 5000)
    done = _consumed(manifest)
    assert done >= 5000 and not out.exists()
    # perturb one value of the table in place: same file size, same shape, same modification time
    weights = folder / "model.safetensors"
    stat = weights.stat()
    header = int.from_bytes(weights.read_bytes()[:8], "little")
    with weights.open("r+b") as handle:
        handle.seek(8 + header + 4 * 1000)
        value = np.frombuffer(handle.read(4), dtype="<f4")[0]
        handle.seek(8 + header + 4 * 1000)
        handle.write(np.array([value + 0.25], dtype="<f4").tobytes())
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.stat().st_size == stat.st_size and weights.stat().st_mtime_ns == stat.st_mtime_ns
    resumed = subprocess.run([sys.executable, "-m", "staticst.cli", "encode", *args, "--resume"], capture_output=True, text=True, cwd=REPO, timeout=240)
    assert resumed.returncode == 1, resumed.stderr
    assert "belongs to another run" in resumed.stderr and "its table differ" in resumed.stderr, resumed.stderr
    assert "Traceback" not in resumed.stderr and not out.exists()
    assert _consumed(manifest) == done  # the partial run is kept, untouched


def test_resume_with_the_same_model_continues(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    """The control of the test above: an unchanged model resumes, and the file equals an uninterrupted run's."""
    model = str(shared_model("potion-base-2M"))
    source = tmp_path / "corpus.txt"
    source.write_text("".join(f"{TEXTS[i % len(TEXTS)]} {i}\n" for i in range(200_000)), encoding="utf-8")
    out = tmp_path / "out.npy"
    partial = out.with_name("out.npy.partial")
    args = ["-m", model, "-i", str(source), "-o", str(out), "--quiet", "--batch-size", "1000"]
    _run_until_killed(args, partial / "manifest.json", 5000)
    (partial / "manifest.json.tmp").write_text("{half a manifest")  # a kill between writing and renaming it
    resumed = subprocess.run([sys.executable, "-m", "staticst.cli", "encode", *args, "--resume"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after" in resumed.stderr
    lines = source.read_text(encoding="utf-8").splitlines()
    assert np.load(out).tobytes() == StaticSentenceTransformer(model).encode(lines).tobytes()


def test_model_fingerprint_names_every_part_that_changes_a_vector(shared_model: Callable[[str], Path]) -> None:
    from staticst.corpus.run import model_fingerprint

    folder = shared_model("potion-base-2M")
    first = model_fingerprint(StaticSentenceTransformer(folder))
    assert set(first) == {"table", "mapping", "weights", "tokenizer", "settings"}
    assert first == model_fingerprint(StaticSentenceTransformer(folder))  # stable across loads
    prompts = model_fingerprint(StaticSentenceTransformer(folder, prompts={"query": "q: "}))
    assert prompts["settings"] != first["settings"] and prompts["table"] == first["table"]
    quantized = model_fingerprint(StaticSentenceTransformer(shared_model("tokenlearn-10k-int8")))
    assert None not in (quantized["mapping"], quantized["weights"]) and quantized["tokenizer"] != first["tokenizer"]


# ---------------------------------------------------------------------------------------------- issue 19.10: bad records


def test_an_escaped_lone_surrogate_is_a_bad_record_skipped_and_listed(
    tmp_path: Path, model: StaticSentenceTransformer, shared_model: Callable[[str], Path]
) -> None:
    source = tmp_path / "c.jsonl"
    source.write_text('{"text": "fine"}\n{"text": "bad \\ud800 here"}\n{"text": "also fine"}\n', encoding="utf-8")
    with pytest.raises(CorpusInputError, match=r"c\.jsonl:2: field 'text' holds a lone surrogate \('\\ud800' at character 5\)"):
        embed_corpus(model, source, tmp_path / "a.npy", progress=False)
    out = tmp_path / "b.npy"
    run = subprocess.run(
        [sys.executable, "-m", "staticst.cli", "encode", "-m", str(shared_model("potion-base-2M")), "-i", str(source), "-o", str(out),
         "--on-error", "skip", "-q"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert not out.with_name("b.npy.partial").exists()
    assert np.load(out).tobytes() == model.encode(["fine", "also fine"]).tobytes()
    listed = json.loads(out.with_name("b.npy.errors.jsonl").read_text())
    assert listed["file"] == str(source) and listed["line"] == 2 and "lone surrogate" in listed["reason"]


def test_parquet_errors_name_the_row_index_as_pyarrow_counts(tmp_path: Path, model: StaticSentenceTransformer) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "c.parquet"
    texts = ["zero", "one", None, "three"]
    pq.write_table(pa.table({"text": texts}), source, row_group_size=2)
    assert pq.read_table(source).column("text")[2].as_py() is None  # row index 2, as the user's reader counts
    with pytest.raises(CorpusInputError, match=r"c\.parquet: row index 2: column 'text' is null"):
        embed_corpus(model, source, tmp_path / "a.npy", progress=False)
    report = embed_corpus(model, source, tmp_path / "b.npy", on_error="skip", progress=False)
    assert report.errors is not None
    assert json.loads(report.errors.read_text()) == {"file": str(source), "row": 2, "reason": "column 'text' is null"}


def test_a_failing_encode_names_the_records_file_and_lines(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    model = StaticSentenceTransformer(shared_model("potion-base-2M"))
    original = model.encode

    def fails_on_poison(texts: Any, **kwargs: Any) -> Any:
        if isinstance(texts, list) and "poison" in texts:
            raise RuntimeError("the model broke")
        return original(texts, **kwargs)

    model.encode = fails_on_poison  # type: ignore[method-assign]
    source = tmp_path / "c.txt"
    source.write_text("".join(f"line {i}\n" for i in range(10)) + "poison\n" + "".join(f"more {i}\n" for i in range(10)))
    with pytest.raises(CorpusInputError, match=r"c\.txt, lines 9 to 12: encoding these 4 records failed \(RuntimeError: the model broke\)"):
        embed_corpus(model, source, tmp_path / "a.npy", batch_texts=4, progress=False)


# ---------------------------------------------------------------------------------------------- issue 19.11: CLI edges


def _encode_cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "staticst.cli", "encode", *args], capture_output=True, text=True, cwd=REPO, timeout=180, **kwargs
    )


def test_id_field_is_written_to_stdout(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    model = str(shared_model("potion-base-2M"))
    source = tmp_path / "c.jsonl"
    source.write_text("".join(json.dumps({"doc": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS[:50])))
    run = _encode_cli("-m", model, "-i", str(source), "--id-field", "doc", "--batch-size", "16")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["id"] for r in rows] == [f"d{i}" for i in range(50)] and all("index" not in r for r in rows)
    expected = StaticSentenceTransformer(model).encode(TEXTS[:50])
    assert np.array([r["embedding"] for r in rows], dtype=np.float32).tobytes() == expected.tobytes()


def test_binary_precisions_stream_from_a_file_and_int8_says_why_not(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    model = str(shared_model("potion-base-2M"))
    source = tmp_path / "c.txt"
    source.write_text("\n".join(TEXTS[:200]) + "\n")
    for precision in ("ubinary", "binary"):
        run = _encode_cli("-m", model, "-i", str(source), "-o", str(tmp_path / f"{precision}.npy"), "--precision", precision, "-q")
        assert run.returncode == 0, run.stderr
        expected = StaticSentenceTransformer(model).encode(TEXTS[:200], precision=precision)
        got = np.load(tmp_path / f"{precision}.npy")
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes()
    stdout = _encode_cli("-m", model, "-i", str(source), "--precision", "ubinary")
    assert stdout.returncode == 0, stdout.stderr
    first = json.loads(stdout.stdout.splitlines()[0])["embedding"]
    assert first == StaticSentenceTransformer(model).encode(TEXTS[:1], precision="ubinary")[0].tolist()
    run = _encode_cli("-m", model, "-i", str(source), "-o", str(tmp_path / "i.npy"), "--precision", "int8")
    assert run.returncode == 1 and "takes its ranges from the embeddings of the whole call" in run.stderr
    assert "binary and ubinary need no calibration" in run.stderr and "ubinary calibrates" not in run.stderr
    assert not (tmp_path / "i.npy.partial").exists()


def test_parquet_without_pyarrow_fails_before_any_partial_folder(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    source = tmp_path / "c.txt"
    source.write_text("a\nb\n")
    out = tmp_path / "out.parquet"
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None\n"
        "from staticst.cli import main\n"
        f"sys.exit(main(['encode', '-m', {str(shared_model('potion-base-2M'))!r}, '-i', {str(source)!r}, '-o', {str(out)!r}]))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 1 and "pip install 'staticst[corpus]'" in run.stderr and "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == [source]  # no out.parquet.partial/
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "`.[corpus]`" in readme.split("## Install", 1)[1].split("##", 1)[0]  # the extras a newcomer reads


def test_serve_without_the_server_extra_prints_its_hint_once() -> None:
    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "from staticst.cli import main\n"
        "sys.exit(main(sys.argv[1:]))"
    )
    for args, code_expected in ((["serve", "--help"], 0), (["serve"], 2)):
        run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO, timeout=60)
        both = run.stdout + run.stderr
        assert run.returncode == code_expected, both
        assert both.count("pip install 'staticst[server]'") == 1 and "Traceback" not in both, both


def test_version() -> None:
    from staticst._version import __version__

    run = subprocess.run([sys.executable, "-m", "staticst.cli", "--version"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == f"staticst {__version__}"


def _under_a_terminal(args: list[str], timeout: float = 180) -> tuple[int, str]:
    """Run a command with stdin/stdout/stderr on a new pseudo-terminal of size 0 x 0 (what `script -qc` gives)."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, cwd=REPO, close_fds=True)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return process.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_a_progress_bar_counting_texts_under_a_terminal(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    assert os.get_terminal_size  # (the terminal below reports 0 columns x 0 lines, as `script -qc` does)
    source = tmp_path / "c.txt"
    source.write_text("".join(f"line {i}\n" for i in range(30_000)))
    model = str(shared_model("potion-base-2M"))
    status, output = _under_a_terminal(
        [sys.executable, "-m", "staticst.cli", "encode", "-m", model, "-i", str(source), "-o", str(tmp_path / "o.npy"), "--batch-size", "5000"]
    )
    assert status == 0, output
    frames = [f.strip() for f in re.split(r"[\r\n]+", output) if f.strip()]
    bars = [f for f in frames if f.startswith("embedding:")]
    assert bars, output
    assert "30.0k/30.0k" in bars[-1] and "texts/s" in bars[-1] and "100%" in bars[-1]
    assert any(re.search(r"\b(5|10|15|20|25)\.0k/", f) for f in bars), bars  # it moved by texts, batch by batch
    assert re.search(r"wrote 30,000 rows to .* in \d+\.\d s \([\d,]+ rows/s\)", output)


# ---------------------------------------------------------------------------------------------- issue 19.12: one writer


def test_a_second_run_on_the_same_output_is_refused_naming_the_first(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    model = str(shared_model("potion-base-2M"))
    source = tmp_path / "corpus.txt"
    lines = [f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(20_000)]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    lock = out.with_name("out.npy.partial") / "lock"
    common = ["-m", model, "-o", str(out), "--quiet", "--batch-size", "500"]
    # The first run reads stdin, which this test holds open: it is running (and holds the output) until the test
    # closes it, however fast the machine (a first run reading a file could finish before the second started).
    first = _cli(*common, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert first.stdin is not None
    try:
        first.stdin.write(("\n".join(lines[:5000]) + "\n").encode())
        first.stdin.flush()
        deadline = time.monotonic() + 120
        while first.poll() is None and time.monotonic() < deadline:
            if lock.is_file() and lock.read_text(encoding="utf-8").strip() == str(first.pid):
                break
            time.sleep(0.01)
        assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
        for extra in ([], ["--resume"]):
            second = _encode_cli(*common, "-i", str(source), *extra)
            assert second.returncode == 1, second.stderr
            assert f"is in use by another staticst run (pid {first.pid})" in second.stderr, second.stderr
            assert "manifest.json.tmp" not in second.stderr and "Traceback" not in second.stderr
        first.stdin.write(("\n".join(lines[5000:]) + "\n").encode())
        first.stdin.close()
        assert first.wait(timeout=300) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert np.load(out).tobytes() == StaticSentenceTransformer(model).encode(lines).tobytes()
    assert not out.with_name("out.npy.partial").exists()


# ---------------------------------------------------------------------------------------------- issue 20.7: many files, shards


def _corpus_files(folder: Path) -> list[str]:
    """Several files (text, JSON lines, a second text file with CRLF), plus files a folder scan must skip."""
    folder.mkdir()
    (folder / "a.txt").write_text("".join(f"alpha {i} {TEXTS[i]}\n" for i in range(1500)), encoding="utf-8")
    (folder / "b.txt").write_bytes("".join(f"beta {i} café\r\n" for i in range(700)).encode("utf-8"))
    (folder / "c.txt").write_text("".join(f"gamma {i}\n" for i in range(2300)) + "no newline at the end", encoding="utf-8")
    (folder / "_SUCCESS").write_text("")
    (folder / ".c.txt.crc").write_bytes(b"\x00\x01")
    texts = [f"alpha {i} {TEXTS[i]}" for i in range(1500)] + [f"beta {i} café" for i in range(700)]
    return texts + [f"gamma {i}" for i in range(2300)] + ["no newline at the end"]


def test_folders_and_globs_read_every_file_in_order(tmp_path: Path, model: StaticSentenceTransformer) -> None:
    texts = _corpus_files(tmp_path / "in")
    expected = model.encode(texts)
    for given in (tmp_path / "in", str(tmp_path / "in" / "*.txt"), [tmp_path / "in" / "a.txt", str(tmp_path / "in" / "[bc].txt")]):
        out = tmp_path / "o.npy"
        report = embed_corpus(model, given, out, batch_texts=1000, progress=False)
        assert report.rows == len(texts) and np.load(out).tobytes() == expected.tobytes(), given
    with pytest.raises(CorpusInputError, match=r"the pattern matches no file"):
        embed_corpus(model, str(tmp_path / "in" / "*.parquet"), tmp_path / "p.npy", progress=False)


@pytest.mark.parametrize("count", [2, 3, 5])
def test_shards_concatenate_to_the_single_machine_output(tmp_path: Path, model: StaticSentenceTransformer, count: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = _corpus_files(tmp_path / "in")
    parquet_texts = [f"row {i} {TEXTS[i]}" for i in range(900)]
    pq.write_table(pa.table({"text": parquet_texts, "doc": [f"p{i}" for i in range(900)]}), tmp_path / "in" / "d.parquet", row_group_size=100)
    texts += parquet_texts
    whole = tmp_path / "whole.npy"
    embed_corpus(model, tmp_path / "in", whole, progress=False)
    assert np.load(whole).tobytes() == model.encode(texts).tobytes()
    parts = []
    for index in range(count):
        out = tmp_path / f"part-{index}.npy"
        report = embed_corpus(model, tmp_path / "in", out, shard=f"{index}/{count}", batch_texts=700, progress=False)
        parts.append(np.load(out))
        assert report.rows == len(parts[-1])
    assert min(len(p) for p in parts) > 0  # every shard got work (byte ranges, not whole files)
    assert np.concatenate(parts).tobytes() == np.load(whole).tobytes()
    again = tmp_path / "again.npy"
    embed_corpus(model, tmp_path / "in", again, shard=f"1/{count}", progress=False)
    assert np.load(again).tobytes() == parts[1].tobytes()  # deterministic


def test_jsonl_shards_with_ids_concatenate_byte_for_byte_and_name_global_lines(tmp_path: Path, model: StaticSentenceTransformer) -> None:
    source = tmp_path / "c.jsonl"
    rows = [{"doc": f"d{i}", "text": t} for i, t in enumerate(TEXTS[:3000])]
    lines = [json.dumps(r) for r in rows]
    lines[2500] = "not json"  # in the second half: the shard that reads it must say line 2501
    source.write_text("\n".join(lines) + "\n")
    whole = tmp_path / "whole.jsonl"
    embed_corpus(model, source, whole, id_field="doc", on_error="skip", progress=False)
    parts = []
    for index in range(2):
        out = tmp_path / f"part-{index}.jsonl"
        report = embed_corpus(model, source, out, id_field="doc", on_error="skip", shard=(index, 2), progress=False)
        parts.append(out.read_bytes())
        if report.skipped:
            assert json.loads(report.errors.read_text())["line"] == 2501  # type: ignore[union-attr]
    assert b"".join(parts) == whole.read_bytes()
    with pytest.raises(CorpusInputError, match=r"c\.jsonl:2501: not JSON"):
        embed_corpus(model, source, tmp_path / "fail.jsonl", id_field="doc", shard="1/2", progress=False)


def test_cli_shards_resume_per_shard(tmp_path: Path, shared_model: Callable[[str], Path]) -> None:
    model = str(shared_model("potion-base-2M"))
    source = tmp_path / "corpus.txt"
    lines = [f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(240_000)]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    outs = [tmp_path / f"part-{i}.npy" for i in range(2)]
    args = lambda i: ["-m", model, "-i", str(source), "-o", str(outs[i]), "--shard", f"{i}/2", "--quiet", "--batch-size", "2000"]  # noqa: E731
    _run_until_killed(args(1), outs[1].with_name("part-1.npy.partial") / "manifest.json", 8000)
    assert _encode_cli(*args(0)).returncode == 0
    wrong = _encode_cli("-m", model, "-i", str(source), "-o", str(outs[1]), "--shard", "0/2", "--quiet", "--resume")
    assert wrong.returncode == 1 and "the input (files, sizes, modification times, fields or shard)" in wrong.stderr
    resumed = _encode_cli(*args(1), "--resume")
    assert resumed.returncode == 0 and "resumed after" in resumed.stderr, resumed.stderr
    got = np.concatenate([np.load(o) for o in outs])
    assert got.tobytes() == StaticSentenceTransformer(model).encode(lines).tobytes()
    bad = _encode_cli("-i", str(source), "--shard", "2/2")
    assert bad.returncode == 2 and "expected i/n with 0 <= i < n" in bad.stderr


def test_parquet_batches_with_and_without_nulls_straddle_the_checkpoints(
    tmp_path: Path, model: StaticSentenceTransformer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of readable records travel as one RecordBatch (a Parquet batch without nulls, a block of text lines);
    a batch with a null takes the per-row path. Either way: input order, ids, the bad rows named, and the
    records() view unchanged."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import staticst.corpus.sources as sources

    monkeypatch.setattr(sources, "_PARQUET_BATCH", 700)  # Parquet batches of 700 rows; checkpoints every 1,000
    texts: list[str | None] = [t for t in TEXTS[:3000]]
    for row in (1500, 1501, 2999):
        texts[row] = None
    ids = [f"doc-{i}" for i in range(len(texts))]
    source = tmp_path / "c.parquet"
    pq.write_table(pa.table({"body": texts, "doc": ids}), source, row_group_size=1200)
    out = tmp_path / "out.parquet"
    report = embed_corpus(
        model, source, out, field="body", id_field="doc", on_error="skip", batch_texts=1000, progress=False
    )
    kept = [i for i, t in enumerate(texts) if t is not None]
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == [ids[i] for i in kept]
    got = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    assert got.tobytes() == model.encode([texts[i] for i in kept]).tobytes()
    assert report.skipped == 3 and report.errors is not None
    assert [json.loads(line)["row"] for line in report.errors.read_text().splitlines()] == [1500, 1501, 2999]
    items = list(sources.open_source(source, field="body", id_field="doc").items())
    assert {type(item).__name__ for item in items} == {"RecordBatch", "Record", "BadRecord"}
    flat = list(sources.open_source(source, field="body", id_field="doc").records())
    assert [(r.line, r.text, r.id) for r in flat if isinstance(r, Record)] == [(i, texts[i], ids[i]) for i in kept]
    assert [r.line for r in flat if isinstance(r, BadRecord)] == [1500, 1501, 2999]

"""Bulk encoding: every input and output format, exactness, atomic outputs, resume after SIGKILL, bad input."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from staticst import CorpusInputError, CorpusOutputError, StaticSentenceTransformer, embed_corpus, encode_iter
from staticst.corpus.sources import BadRecord, Record
from tests.conftest import REPO

TEXTS = [f"sentence {i}: the cat sat on mat number {i * 7 % 13}" for i in range(5000)] + ["", "café ü 日本", "x" * 3000]


@pytest.fixture(scope="module")
def model(shared_model: Callable[[str], Path]) -> StaticSentenceTransformer:
    return StaticSentenceTransformer(shared_model("potion-base-2M"))


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
    assert report.errors is not None and json.loads(report.errors.read_text()) == {"line": 2, "reason": "not UTF-8 (byte 0xff at column 5)"}
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
    (out.with_name("out.npy.partial")).rmdir()
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
    source.write_text("".join(f"{TEXTS[i % len(TEXTS)]} {i}\n" for i in range(120_000)), encoding="utf-8")
    model = str(shared_model("potion-base-2M"))
    clean = tmp_path / f"clean{suffix}"
    assert _cli("-m", model, "-i", str(source), "-o", str(clean), "--quiet", "--batch-size", "3000").wait(timeout=300) == 0
    out = tmp_path / f"out{suffix}"
    manifest = out.with_name(out.name + ".partial") / "manifest.json"
    kills = 0
    for attempt in range(8):
        process = _cli("-m", model, "-i", str(source), "-o", str(out), "--quiet", "--batch-size", "3000", "--resume")
        if attempt < 3:
            # killed once a random number of batches more are durable (not after a time: independent of speed)
            start = _consumed(manifest)
            target = start + 3000 * rng.randint(1, 8)
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
    assert shown.returncode == 0 and "embedding" in shown.stderr and "texts=" in shown.stderr
    quiet = subprocess.run(
        [sys.executable, "-m", "staticst.cli", "encode", "-m", model, "-i", str(source), "-o", str(tmp_path / "q.npy"), "--quiet"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert quiet.returncode == 0 and quiet.stderr.strip() == f"wrote 20,000 rows to {tmp_path / 'q.npy'}"


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

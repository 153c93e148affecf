"""staticst.integrations.mteb against the real mteb 2.26, on STSBenchmark and SciFact samples from shared/.

Scores through :class:`StaticSTEncoder` are compared with the same model through mteb's own
``SentenceTransformerEncoderWrapper`` and with ``sentence_transformers.SentenceTransformer`` on the same folder
(mteb's reference path), all run by ``mteb.evaluate`` on the same data. The ``ModelMeta`` is checked against the
shared README's facts about the model and against mteb's own registry entry for potion-base-8M.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mteb")

import mteb  # noqa: E402
from mteb.models import SentenceTransformerEncoderWrapper  # noqa: E402
from mteb.types import PromptType  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from staticst.integrations.mteb import StaticSTEncoder, static_model_meta  # noqa: E402
from tests.conftest import REPO  # noqa: E402

N_PARAMS_8M = 29528 * 256  # shared/README.md: 29528 x 256 float32 embeddings


def _evaluate(model: Any, task: Any) -> float:
    result = mteb.evaluate(model, task, cache=None, show_progress_bar=False, co2_tracker=False)
    return float(result.task_results[0].get_score())


@pytest.fixture(scope="module")
def sts_rows(shared_dir: Path) -> list[dict[str, Any]]:
    lines = (shared_dir / "data" / "mteb" / "stsbenchmark-sts" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[::4]]  # 345 pairs


def _sts_task(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset, DatasetDict

    task = mteb.get_task("STSBenchmark")
    task.dataset = DatasetDict({"test": Dataset.from_list(rows)})
    task.data_loaded = True
    return task


@pytest.fixture(scope="module")
def scifact_split(shared_dir: Path) -> dict[str, Any]:
    """60 judged claims, their relevant abstracts and 400 other abstracts, in mteb's retrieval structure."""
    folder = shared_dir / "data" / "mteb" / "scifact"
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
    qrels = dict(list(qrels.items())[:60])
    relevant = {d for docs in qrels.values() for d in docs}
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    docs = [d for d in corpus if d["_id"] in relevant] + [d for d in corpus if d["_id"] not in relevant][:400]
    queries = [json.loads(line) for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    return {
        "docs": [{"id": d["_id"], "title": d["title"], "text": d["text"]} for d in docs],
        "queries": [{"id": q["_id"], "text": q["text"]} for q in queries if q["_id"] in qrels],
        "qrels": qrels,
    }


def _scifact_task(split: dict[str, Any]) -> Any:
    from datasets import Dataset

    task = mteb.get_task("SciFact")
    task.dataset = {
        "default": {
            "test": {
                "corpus": Dataset.from_list(split["docs"]),
                "queries": Dataset.from_list(split["queries"]),
                "relevant_docs": split["qrels"],
                "top_ranked": None,
            }
        }
    }
    task.data_loaded = True
    return task


def test_a_bare_model_is_not_an_mteb_model(shared_model: Callable[[str], Path], sts_rows: list[dict[str, Any]]) -> None:
    """Why the wrapper exists: mteb turns an unknown object into an empty ModelMeta it cannot load."""
    with pytest.raises(NotImplementedError, match="No model implementation"):
        _evaluate(StaticSentenceTransformer(shared_model("potion-base-8M")), _sts_task(sts_rows[:20]))


def test_positional_model_is_wrapped_not_reloaded(shared_model: Callable[[str], Path]) -> None:
    model = StaticSentenceTransformer(shared_model("potion-base-8M"))
    enc = StaticSTEncoder(model)
    assert enc.model is model and isinstance(enc, mteb.EncoderProtocol)
    with pytest.raises(ValueError, match="loading options"):
        StaticSTEncoder(model, embed_dim=64)
    with pytest.raises(TypeError, match="SentenceTransformer goes to mteb.evaluate"):
        StaticSTEncoder(object())  # type: ignore[arg-type]


def test_sts_scores_equal_mtebs_sentence_transformers_paths(
    shared_model: Callable[[str], Path], sts_rows: list[dict[str, Any]]
) -> None:
    from sentence_transformers import SentenceTransformer

    folder = shared_model("potion-base-8M")
    model = StaticSentenceTransformer(folder)
    ours = _evaluate(StaticSTEncoder(model), _sts_task(sts_rows))
    through_mteb_wrapper = _evaluate(SentenceTransformerEncoderWrapper(model), _sts_task(sts_rows))
    reference = _evaluate(SentenceTransformer(str(folder), device="cpu"), _sts_task(sts_rows))
    assert 0.5 < ours < 1.0
    assert ours == through_mteb_wrapper
    assert math.isclose(ours, reference, abs_tol=1e-6)


def test_retrieval_scores_equal_sentence_transformers(
    shared_model: Callable[[str], Path], scifact_split: dict[str, Any]
) -> None:
    """Queries and documents take encode_query / encode_document (a folder with no token limit on either side)."""
    from sentence_transformers import SentenceTransformer

    folder = shared_model("potion-base-2M-sentence-transformers")
    ours = _evaluate(StaticSTEncoder(folder), _scifact_task(scifact_split))
    reference = _evaluate(SentenceTransformer(str(folder), device="cpu"), _scifact_task(scifact_split))
    assert 0.2 < ours < 1.0
    assert math.isclose(ours, reference, abs_tol=1e-6)


def test_model_meta_describes_what_staticst_runs(shared_model: Callable[[str], Path]) -> None:
    folder = shared_model("potion-base-8M")
    meta = StaticSTEncoder(StaticSentenceTransformer(folder)).mteb_model_meta
    assert (meta.name, meta.revision) == ("local/potion-base-8M", "no_revision_available")
    assert meta.n_parameters == meta.n_embedding_parameters == N_PARAMS_8M
    assert meta.memory_usage_mb == round(N_PARAMS_8M * 4 / 2**20, 2)  # float32 table
    assert meta.embed_dim == 256 and meta.max_tokens == math.inf  # the sentence-transformers face reads whole texts
    m2v_rules = static_model_meta(StaticSentenceTransformer(folder, family="model2vec"))
    assert m2v_rules.max_tokens == 512  # model2vec's 512-token cut, under its rules
    assert meta.similarity_fn_name is not None and meta.similarity_fn_name.value == "cosine"
    assert meta.framework == ["NumPy", "safetensors"] and meta.modalities == ["text"]
    assert meta.loader is StaticSTEncoder and list(meta.loader_kwargs) == ["model_path"]
    assert Path(meta.loader_kwargs["model_path"]).resolve() == folder.resolve()  # the folder (symlinks resolved)
    assert meta.license is None and meta.open_weights is None  # nothing known about a bare folder
    assert json.loads(json.dumps(meta.to_dict(), default=str))["loader"] == "StaticSTEncoder"

    truncated = static_model_meta(StaticSentenceTransformer(folder, truncate_dim=64))
    assert truncated.embed_dim == 64
    st_layout = static_model_meta(StaticSentenceTransformer(shared_model("potion-base-2M-sentence-transformers")))
    assert st_layout.max_tokens == math.inf and st_layout.embed_dim == 64  # StaticEmbedding reads whole texts


def test_model_meta_takes_the_weights_facts_from_mtebs_registry(shared_model: Callable[[str], Path]) -> None:
    folder = shared_model("potion-base-8M")
    registered = mteb.get_model_meta("minishlab/potion-base-8M")
    meta = StaticSTEncoder(StaticSentenceTransformer(folder), name="minishlab/potion-base-8M").mteb_model_meta
    assert meta.name == "minishlab/potion-base-8M"
    for field in ("license", "languages", "release_date", "reference", "training_datasets", "adapted_from"):
        assert getattr(meta, field) == getattr(registered, field), field
    assert meta.license == "mit" and meta.languages == ["eng-Latn"]
    # ... but not how mteb's entry runs it: sentence-transformers with torch, rounded counts, no token limit
    assert registered.framework != meta.framework and meta.framework == ["NumPy", "safetensors"]
    assert meta.n_parameters == N_PARAMS_8M != registered.n_parameters
    assert meta.loader is StaticSTEncoder and meta.max_tokens == math.inf == registered.max_tokens
    other = StaticSTEncoder(StaticSentenceTransformer(folder), name="minishlab/potion-base-8M", revision="0" * 40)
    assert other.mteb_model_meta.license is None  # another revision: the registry entry does not describe it


def test_meta_load_model_reloads_the_same_files(shared_model: Callable[[str], Path]) -> None:
    folder = shared_model("potion-base-8M")
    model = StaticSentenceTransformer(folder)
    reloaded = StaticSTEncoder(model).mteb_model_meta.load_model()
    assert isinstance(reloaded, StaticSTEncoder) and reloaded.model is not model
    assert reloaded.mteb_model_meta.name == "local/potion-base-8M"
    texts = ["static embeddings", "a second sentence"]
    assert np.array_equal(reloaded.model.encode(texts), model.encode(texts))


def test_prompts_follow_mtebs_precedence(shared_model: Callable[[str], Path]) -> None:
    folder = shared_model("potion-base-8M")
    prompts = {"query": "query: ", "document": "passage: ", "STSBenchmark": "sts: "}
    enc = StaticSTEncoder(StaticSentenceTransformer(folder, prompts=prompts))
    plain = StaticSentenceTransformer(folder)
    texts = ["a claim about proteins", "another claim"]
    batches = [{"text": texts[:1]}, {"text": texts[1:]}]  # what mteb's DataLoader yields
    scifact, sts = mteb.get_task("SciFact").metadata, mteb.get_task("STSBenchmark").metadata

    def enc_for(meta: Any, prompt_type: PromptType | None) -> Any:
        return enc.encode(batches, task_metadata=meta, hf_split="test", hf_subset="default", prompt_type=prompt_type)

    assert np.array_equal(enc_for(scifact, PromptType.query), plain.encode([f"query: {t}" for t in texts]))
    assert np.array_equal(enc_for(scifact, PromptType.document), plain.encode([f"passage: {t}" for t in texts]))
    assert np.array_equal(enc_for(sts, None), plain.encode([f"sts: {t}" for t in texts]))  # task name wins
    with pytest.raises(ValueError, match="encodes text only"):
        enc.encode([{"image": [0]}], task_metadata=sts, hf_split="test", hf_subset="default")


# -------------------------------------------------------------------------------- local task data, offline (issue 19)


def _docs_snippet(marker: str) -> str:
    text = (REPO / "docs" / "integrations.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"one python block with {marker!r} expected in docs/integrations.md"
    return found[0]


def test_the_documented_offline_snippet_runs_without_the_hub(shared_dir: Path, sts_rows: list[dict[str, Any]]) -> None:
    # docs/integrations.md's only mteb snippet downloaded the data: offline, a ConnectionError after 69 s, and the
    # only local way was the private eval/_mteb_data.load_local.
    code = _docs_snippet("local_task(").replace('"shared/data/mteb"', repr(str(shared_dir / "data" / "mteb")))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HTTPS_PROXY": "http://127.0.0.1:9"}
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    score = float(out.stdout.strip().splitlines()[-1])
    rows = [json.loads(line) for line in (shared_dir / "data" / "mteb" / "stsbenchmark-sts" / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    expected = _evaluate(StaticSTEncoder(StaticSentenceTransformer()), _sts_task(rows))  # the task built by hand
    assert score == pytest.approx(expected, abs=1e-9), (score, expected, time.monotonic() - started)


def test_local_task_data_errors_name_the_file(tmp_path: Path) -> None:
    from staticst import TaskDataError
    from staticst.integrations.mteb import local_task

    with pytest.raises(TaskDataError, match=rf"no local data for STSBenchmark at {tmp_path / 'stsbenchmark-sts'}"):
        local_task("STSBenchmark", tmp_path)
    (tmp_path / "stsbenchmark-sts").mkdir()
    (tmp_path / "stsbenchmark-sts" / "test.jsonl").write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n{oops\n')
    with pytest.raises(TaskDataError, match=r"test.jsonl:2 is not valid JSON"):
        local_task("STSBenchmark", tmp_path)
    with pytest.raises(ValueError, match="unknown mteb task 'NoSuchTask'"):
        local_task("NoSuchTask", tmp_path)

"""staticst.evaluation.EmbeddingSimilarityEvaluator against sentence-transformers' own evaluator (torch), same model.

The reference is sentence-transformers 6.x's ``EmbeddingSimilarityEvaluator`` run on ``SentenceTransformer`` with
the same folder; staticst's runs on ``StaticSentenceTransformer`` on each backend. Data: the STSBenchmark test
split in ``shared/data/mteb``.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from staticst import StaticSentenceTransformer
from staticst.evaluation import EmbeddingSimilarityEvaluator

REPO = Path(__file__).resolve().parents[1]
ST_LAYOUT = "potion-base-2M-sentence-transformers"


@pytest.fixture(scope="module")
def sts(shared_dir: Path) -> tuple[list[str], list[str], list[float]]:
    path = shared_dir / "data" / "mteb" / "stsbenchmark-sts" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r["sentence1"] for r in rows], [r["sentence2"] for r in rows], [float(r["score"]) for r in rows]


@pytest.fixture(scope="module")
def reference_model(shared_model: Callable[[str], Path]) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(shared_model(ST_LAYOUT)), device="cpu")


CASES = [
    {},
    {"name": "sts-test"},
    {"similarity_fn_names": ["cosine", "euclidean", "manhattan", "dot"], "name": "all"},
    {"main_similarity": "euclidean"},
    {"precision": "int8", "similarity_fn_names": ["cosine", "dot"]},
    {"precision": "binary"},
    {"precision": "ubinary", "name": "u"},
    {"truncate_dim": 32, "name": "t"},
]


@pytest.mark.parametrize("backend", ["native", "numpy"], indirect=True)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_metrics_equal_sentence_transformers_evaluator(
    backend: str, case: dict[str, Any], sts: tuple[list[str], list[str], list[float]],
    reference_model: Any, shared_model: Callable[[str], Path], tmp_path: Path,
) -> None:  # fmt: skip
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator as Reference

    ours = EmbeddingSimilarityEvaluator(*sts, **case)
    reference = Reference(*sts, **case)
    got = ours(StaticSentenceTransformer(shared_model(ST_LAYOUT)), output_path=str(tmp_path / "ours"), epoch=1, steps=7)
    expected = reference(reference_model, output_path=str(tmp_path / "reference"), epoch=1, steps=7)
    # The vectors agree within ~1e-7 (sentence-transformers pools in torch); binary quantization keeps one bit per
    # dimension, so a value that close to zero can land on the other side: a few flipped bits move the
    # correlations by a few 1e-6.
    tolerance = 1e-4 if case.get("precision") in ("binary", "ubinary") else 1e-6
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=tolerance), key
    assert ours.primary_metric == reference.primary_metric
    assert ours.csv_file == reference.csv_file
    ours_rows = list(csv.reader((tmp_path / "ours" / ours.csv_file).open(encoding="utf-8")))
    reference_rows = list(csv.reader((tmp_path / "reference" / reference.csv_file).open(encoding="utf-8")))
    assert ours_rows[0] == reference_rows[0] and ours_rows[1][:2] == reference_rows[1][:2] == ["1", "7"]
    assert [float(v) for v in ours_rows[1][2:]] == pytest.approx(
        [float(v) for v in reference_rows[1][2:]], abs=tolerance
    )
    assert ours.get_config_dict() == reference.get_config_dict()
    assert ours.description == reference.description


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(ValueError, match="got 2, 1 and 2"):
        EmbeddingSimilarityEvaluator(["a", "b"], ["c"], [1.0, 2.0])
    with pytest.raises(ValueError, match="main_similarity='jaccard'"):
        EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], main_similarity="jaccard")
    with pytest.raises(ValueError, match="similarity_fn_names has 'angle'"):
        EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], similarity_fn_names=["angle"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="precision='int4'"):
        EmbeddingSimilarityEvaluator(["a"], ["b"], [1.0], precision="int4")  # type: ignore[arg-type]


def test_evaluates_with_torch_unimportable(shared_model: Callable[[str], Path], shared_dir: Path) -> None:
    """The evaluator and the model it scores import no torch (issue 23: distil, save, load and evaluate)."""
    code = (
        "import sys, json\n"
        "BLOCKED = {'torch', 'transformers', 'sentence_transformers', 'model2vec'}\n"
        "class Blocker:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is blocked')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Blocker())\n"
        "from staticst import StaticSentenceTransformer\n"
        "from staticst.evaluation import EmbeddingSimilarityEvaluator\n"
        f"rows = [json.loads(l) for l in open({str(shared_dir / 'data/mteb/stsbenchmark-sts/test.jsonl')!r})]\n"
        "e = EmbeddingSimilarityEvaluator([r['sentence1'] for r in rows], [r['sentence2'] for r in rows],\n"
        "                                 [r['score'] for r in rows], name='sts')\n"
        f"print(round(e(StaticSentenceTransformer({str(shared_model(ST_LAYOUT))!r}))[e.primary_metric], 4))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert 0.5 < float(out.stdout.strip().splitlines()[-1]) < 1.0  # a real STSBenchmark score, not a placeholder

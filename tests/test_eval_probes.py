"""Tests for the failure-probe suite: the data (eval/probes/*.jsonl) and the scorer (eval/probes.py).

The data-quality tests read the JSON lines directly (not through the code under test) and enforce the
design rule mechanically: a probe's negative is at least as lexically close to the anchor as its positive.
The end-to-end tests run ``python eval/probes.py`` on the real potion-base-8M and all-MiniLM-L6-v2 and
check the scores against an independent computation with sentence-transformers.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
PROBES_DIR = REPO / "eval" / "probes"
SCRIPT = REPO / "eval" / "probes.py"
EXPECTED_COUNTS = {"polysemy": 35, "negation_modality": 15, "entity": 22, "composition": 28}
FIELDS = ("id", "category", "anchor", "positive", "negative", "note")


def _load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("staticst_eval_probes", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


probes_mod = _load_module()


def _raw_rows() -> list[dict[str, Any]]:
    rows = []
    for path in sorted(PROBES_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                row["_file"] = path.name
                rows.append(row)
    return rows


ROWS = _raw_rows()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _jaccard(a: str, b: str) -> float:
    sa, sb = set(_words(a)), set(_words(b))
    return len(sa & sb) / len(sa | sb)


def _bow_cosine(a: str, b: str) -> float:
    ca, cb = Counter(_words(a)), Counter(_words(b))
    dot = sum(ca[w] * cb[w] for w in ca)
    return dot / math.sqrt(sum(v * v for v in ca.values()) * sum(v * v for v in cb.values()))


# ---------------------------------------------------------------- data quality


def test_every_row_has_exactly_the_schema_fields_non_empty() -> None:
    assert ROWS, "no probes found"
    for row in ROWS:
        assert set(row) - {"_file"} == set(FIELDS), row
        for field in FIELDS:
            assert isinstance(row[field], str) and row[field].strip(), (row["id"], field)


def test_counts_per_category_are_exact() -> None:
    assert Counter(row["category"] for row in ROWS) == EXPECTED_COUNTS
    assert len(ROWS) == 100


def test_ids_are_unique() -> None:
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]


def test_each_file_holds_one_category_named_after_it() -> None:
    for row in ROWS:
        assert row["_file"] == f"{row['category']}.jsonl", row["id"]


def test_no_duplicate_texts_anywhere() -> None:
    texts = [" ".join(_words(row[f])) for row in ROWS for f in ("anchor", "positive", "negative")]
    dupes = [t for t, n in Counter(texts).items() if n > 1]
    assert not dupes


def test_negative_is_at_least_as_lexically_close_as_positive() -> None:
    """The design rule: word overlap never favours the positive, so only understanding can.

    Checked on every probe with word-set Jaccard and with a bag-of-words count model (cosine of word-count
    vectors); the failure lists every probe that breaks it.
    """
    broken = []
    for row in ROWS:
        anchor, positive, negative = row["anchor"], row["positive"], row["negative"]
        j_pos, j_neg = _jaccard(anchor, positive), _jaccard(anchor, negative)
        c_pos, c_neg = _bow_cosine(anchor, positive), _bow_cosine(anchor, negative)
        if j_neg < j_pos or c_neg < c_pos:
            broken.append((row["id"], f"Jaccard {j_neg:.3f} < {j_pos:.3f}" if j_neg < j_pos else f"cosine {c_neg:.3f} < {c_pos:.3f}"))
    assert not broken, f"the negative is lexically farther from the anchor than the positive: {broken}"


# Function words left out of the content-word check: without them, overlap is carried by the nouns, verbs and
# adjectives a static model's mean pooling is dominated by.
STOPWORDS = frozenset(
    "a an the of to in on at by for from with into over and or but is are was were be been being it its he she "
    "they his her their him them i we you my our your this that these those as did do does has have had".split()
)


def test_negative_is_at_least_as_close_in_content_words() -> None:
    """The design rule again without function words, so shared 'the'/'of' cannot hide a content-word lead."""

    def content(text: str) -> set[str]:
        return {w for w in _words(text) if w not in STOPWORDS}

    def jac(a: set[str], b: set[str]) -> float:
        return len(a & b) / len(a | b) if a | b else 0.0

    broken = []
    for row in ROWS:
        anchor = content(row["anchor"])
        j_pos, j_neg = jac(anchor, content(row["positive"])), jac(anchor, content(row["negative"]))
        if j_neg < j_pos:
            broken.append((row["id"], round(j_neg, 3), round(j_pos, 3)))
    assert not broken, f"content-word Jaccard (negative, positive) favours the positive: {broken}"


@pytest.fixture(scope="module")
def wordpieces(shared_dir: Path) -> Any:
    """The tokens potion-base-8M actually pools (its WordPiece tokenizer, no special tokens)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(shared_dir / "models" / "potion-base-8M" / "tokenizer.json"))
    return lambda text: tokenizer.encode(text, add_special_tokens=False).tokens


def test_negative_is_at_least_as_close_in_the_static_models_tokens(wordpieces: Any) -> None:
    """The design rule on the sub-word tokens a static model averages (set Jaccard and count cosine): a probe
    whose positive shares more tokens than its negative would reward the static model for token overlap."""
    broken = []
    for row in ROWS:
        a, pos, neg = (wordpieces(row[f]) for f in ("anchor", "positive", "negative"))
        sa, sp, sn = set(a), set(pos), set(neg)
        j_pos, j_neg = len(sa & sp) / len(sa | sp), len(sa & sn) / len(sa | sn)
        ca, cp, cn = Counter(a), Counter(pos), Counter(neg)

        def cos(x: Counter[str], y: Counter[str]) -> float:
            dot = sum(x[t] * y[t] for t in x)
            return dot / math.sqrt(sum(v * v for v in x.values()) * sum(v * v for v in y.values()))

        if j_pos > j_neg or cos(ca, cp) > cos(ca, cn):
            broken.append((row["id"], round(j_pos, 3), round(j_neg, 3)))
    assert not broken, f"positive shares more sub-word tokens with the anchor than the negative: {broken}"


def test_loader_reads_the_same_probes_as_the_raw_files() -> None:
    probes = probes_mod.load_probes(PROBES_DIR)
    assert {p.id: (p.category, p.anchor, p.positive, p.negative) for p in probes} == {
        r["id"]: (r["category"], r["anchor"], r["positive"], r["negative"]) for r in ROWS
    }
    assert [p.category for p in probes] == sorted(
        (p.category for p in probes), key=list(EXPECTED_COUNTS).index
    )


# ---------------------------------------------------------------- loader errors


def _write(folder: Path, name: str, rows: list[Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


GOOD = {
    "id": "x-1",
    "category": "polysemy",
    "anchor": "a b",
    "positive": "c d",
    "negative": "a e",
    "note": "n",
}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([GOOD, GOOD], "already used"),
        ([{**GOOD, "category": "sarcasm"}], "'sarcasm' is not one of"),
        ([{**GOOD, "anchor": "  "}], "'anchor' must be a non-empty string"),
        ([{k: v for k, v in GOOD.items() if k != "note"}], "'note' must be a non-empty string"),
        ([{**GOOD, "label": 1}], "unknown field"),
        (["{not json"], "not valid JSON"),
        (["[1, 2]"], "expected a JSON object"),
    ],
)
def test_load_probes_rejects_bad_rows_with_a_clear_message(
    tmp_path: Path, rows: list[Any], message: str
) -> None:
    _write(tmp_path, "polysemy.jsonl", rows)
    with pytest.raises(probes_mod.ProbeDataError, match=re.escape(message)):
        probes_mod.load_probes(tmp_path)


def test_load_probes_rejects_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(probes_mod.ProbeDataError, match="does not exist"):
        probes_mod.load_probes(tmp_path / "nope")
    with pytest.raises(probes_mod.ProbeDataError, match="no \\*.jsonl probe files"):
        probes_mod.load_probes(tmp_path)


def _paper_json(shared_dir: Path) -> dict[str, Any]:
    """The paper tables file, read here directly (not through the code under test)."""
    return json.loads((shared_dir / "paper" / "swiftembed-tables.json").read_text(encoding="utf-8"))


def test_paper_pairs_come_from_the_paper_tables_file(shared_dir: Path, tmp_path: Path) -> None:
    raw = _paper_json(shared_dir)["table10_pairs"]
    pairs, note = probes_mod.load_paper_pairs(shared_dir / "paper" / "swiftembed-tables.json")
    assert note == "" and len(pairs) == len(raw) == 5
    assert [(p.text_a, p.text_b, p.paper_bert, p.paper_static, p.type) for p in pairs] == [
        (r["a"], r["b"], r["bert"], r["static"], r["type"]) for r in raw
    ]
    missing, why = probes_mod.load_paper_pairs(tmp_path / "nope.json")
    assert missing == [] and "no paper tables at" in why and "nope.json" in why
    broken = _paper_json(shared_dir)
    broken["table10_pairs"][0]["bert"] = 1.5
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(probes_mod.PaperDataError, match=r"outside \[-1, 1\]"):
        probes_mod.load_paper_pairs(tmp_path / "broken.json")


def test_markdown_puts_our_similarities_next_to_the_papers() -> None:
    """With pairs, the report table shows the paper's BERT and static numbers and each model's own similarity."""
    pair = {"id": "t10-x", "text_a": "A", "text_b": "B", "paper_bert": 0.11, "paper_static": 0.22, "type": "t", "note": ""}
    result = {"summary": {"overall": {"n": 1, "accuracy": 1.0, "mean_margin": 0.5}}, "probes": []}
    report = {
        "n_probes": 1,
        "paper_pairs": [pair],
        "paper_pairs_same_tokens_static": [True],
        "results": [
            {**result, "role": "static", "info": {"model": "/m/static-model"}, "pairs": [0.333]},
            {**result, "role": "baseline", "info": {"model": "/m/contextual-model"}, "pairs": [0.444]},
        ],
    }
    md = probes_mod.render_markdown(report)
    head = "| pair | type | text a | text b | paper BERT | paper static | static-model (ours) | contextual-model (ours) |"
    assert head in md
    assert "| t10-x | t | A | B | 0.11 | 0.22 | 0.3330 | 0.4440 | yes |" in md
    assert "No paper pairs" not in md
    assert "No paper pairs: no paper tables at /x." in probes_mod.render_markdown(
        {**report, "paper_pairs": [], "paper_pairs_note": "no paper tables at /x"}
    )


# ---------------------------------------------------------------- scoring (hand-computed)


def _table_encoder(table: dict[str, list[float]]) -> Any:
    return lambda texts: np.array([table[t] for t in texts], dtype=np.float32)


def test_score_and_summarize_match_hand_computation() -> None:
    Probe = probes_mod.Probe
    probes = [
        Probe("p1", "polysemy", "A", "P", "N", ""),  # cos(A,P)=1/sqrt2, cos(A,N)=0 -> +0.7071, correct
        Probe("p2", "polysemy", "A", "N", "P", ""),  # mirrored -> -0.7071, wrong
        Probe("c1", "composition", "A", "A2", "A3", ""),  # tie (0 margin) counts as wrong
    ]
    enc = _table_encoder({"A": [2, 0], "P": [1, 1], "N": [0, 5], "A2": [3, 0], "A3": [0.5, 0]})
    scores = probes_mod.score_probes(enc, probes)
    s = 1 / math.sqrt(2)
    assert [round(x.margin, 6) for x in scores] == [round(s, 6), round(-s, 6), 0.0]
    assert [x.correct for x in scores] == [True, False, False]
    summary = probes_mod.summarize(scores)
    assert summary["polysemy"].accuracy == 0.5 and summary["polysemy"].mean_margin == pytest.approx(
        0.0, abs=1e-7
    )
    assert summary["composition"].n == 1 and summary["composition"].accuracy == 0.0
    assert summary["overall"].n == 3 and summary["overall"].accuracy == pytest.approx(1 / 3)
    assert "entity" not in summary


def test_zero_embedding_is_an_error() -> None:
    probe = probes_mod.Probe("p1", "polysemy", "A", "P", "N", "")
    with pytest.raises(ValueError, match="all-zero embedding"):
        probes_mod.score_probes(_table_encoder({"A": [0, 0], "P": [1, 0], "N": [0, 1]}), [probe])


def test_cli_rejects_output_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert probes_mod.main(["--output", str(target)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_cli_rejects_missing_probe_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert probes_mod.main(["--output", str(tmp_path / "o"), "--probes-dir", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------- end to end on the real models


@pytest.fixture(scope="module")
def e2e_run(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("probes_out")
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--model",
        str(shared_dir / "models" / "potion-base-8M"),
        "--baseline",
        str(shared_dir / "models" / "all-MiniLM-L6-v2"),
        "--output",
        str(out),
        "--paper-tables",
        str(shared_dir / "paper" / "swiftembed-tables.json"),
    ]
    # PYTHONPATH makes the repository's staticst importable even when it is not pip-installed.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "probes.json").read_text(encoding="utf-8"))


@pytest.mark.slow  # eval/probes.py end to end on two real models
def test_e2e_writes_json_table_and_chart(e2e_run: tuple[Path, dict[str, Any]]) -> None:
    out, report = e2e_run
    assert report["n_probes"] == 100 and report["categories"] == EXPECTED_COUNTS
    assert [r["role"] for r in report["results"]] == ["static", "baseline"]
    for r in report["results"]:
        assert len(r["probes"]) == 100
        assert set(r["summary"]) == {*EXPECTED_COUNTS, "overall"}
    md = (out / "probes.md").read_text(encoding="utf-8")
    for label in ("polysemy", "negation / modality", "entity disambiguation", "composition / word order"):
        assert label in md
    assert "potion-base-8M accuracy" in md and "all-MiniLM-L6-v2 accuracy" in md
    png = (out / "probes.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


@pytest.mark.slow  # eval/probes.py end to end on two real models
def test_e2e_summary_is_consistent_with_per_probe_scores(e2e_run: tuple[Path, dict[str, Any]]) -> None:
    _, report = e2e_run
    for r in report["results"]:
        for cat, n in EXPECTED_COUNTS.items():
            rows = [p for p in r["probes"] if p["category"] == cat]
            assert len(rows) == n
            assert r["summary"][cat]["accuracy"] == pytest.approx(
                sum(p["sim_positive"] > p["sim_negative"] for p in rows) / n
            )
            assert r["summary"][cat]["mean_margin"] == pytest.approx(
                np.mean([p["sim_positive"] - p["sim_negative"] for p in rows])
            )


def _independent_sims(model: Any) -> dict[str, tuple[float, float]]:
    from sentence_transformers import util

    sims = {}
    for row in ROWS:
        emb = model.encode([row["anchor"], row["positive"], row["negative"]], convert_to_tensor=True)
        cos = util.cos_sim(emb[0:1], emb[1:]).cpu().numpy()[0]
        sims[row["id"]] = (float(cos[0]), float(cos[1]))
    return sims


@pytest.mark.slow  # eval/probes.py end to end on two real models
def test_e2e_static_scores_match_sentence_transformers(
    shared_dir: Path, e2e_run: tuple[Path, dict[str, Any]]
) -> None:
    """Parity: staticst's probe similarities equal sentence-transformers' on the same model folder."""
    from sentence_transformers import SentenceTransformer

    _, report = e2e_run
    reference = _independent_sims(
        SentenceTransformer(str(shared_dir / "models" / "potion-base-8M"), device="cpu")
    )
    static = report["results"][0]
    for p in static["probes"]:
        ref_pos, ref_neg = reference[p["id"]]
        assert p["sim_positive"] == pytest.approx(ref_pos, abs=1e-5), p["id"]
        assert p["sim_negative"] == pytest.approx(ref_neg, abs=1e-5), p["id"]


@pytest.mark.slow  # eval/probes.py end to end on two real models
def test_baseline_reproduces_published_minilm_similarities(shared_dir: Path) -> None:
    """The shared all-MiniLM-L6-v2 loads as it is and gives the similarities printed in the
    sentence-transformers quickstart for this model: 0.6660, 0.1046, 0.1411."""
    encode, info = probes_mod.baseline_encoder(str(shared_dir / "models" / "all-MiniLM-L6-v2"))
    emb = encode(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    sims = emb @ emb.T
    assert [round(float(sims[0, 1]), 4), round(float(sims[0, 2]), 4), round(float(sims[1, 2]), 4)] == [
        0.6660,
        0.1046,
        0.1411,
    ]
    assert info["dim"] == 384


@pytest.mark.slow  # eval/probes.py end to end on two real models
def test_e2e_baseline_scores_match_its_own_encoder(
    shared_dir: Path, e2e_run: tuple[Path, dict[str, Any]]
) -> None:
    _, report = e2e_run
    encode, _ = probes_mod.baseline_encoder(str(shared_dir / "models" / "all-MiniLM-L6-v2"))
    baseline = report["results"][1]
    some = [r for r in ROWS if r["id"] in {"poly-01", "neg-01", "ent-01", "comp-01"}]
    for row in some:
        emb = encode([row["anchor"], row["positive"], row["negative"]]).astype(np.float64)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        (got,) = [p for p in baseline["probes"] if p["id"] == row["id"]]
        assert got["sim_positive"] == pytest.approx(float(emb[0] @ emb[1]), abs=1e-5)
        assert got["sim_negative"] == pytest.approx(float(emb[0] @ emb[2]), abs=1e-5)


@pytest.mark.slow  # eval/probes.py end to end on two real models
def test_e2e_reports_the_papers_table10_pairs_beside_ours(
    shared_dir: Path, e2e_run: tuple[Path, dict[str, Any]]
) -> None:
    """probes.md lists every Table 10 pair with the paper's two numbers (from the JSON) and each model's cosine."""
    out, report = e2e_run
    raw = _paper_json(shared_dir)["table10_pairs"]
    md = (out / "probes.md").read_text(encoding="utf-8")
    static, baseline = report["results"]
    for i, pair in enumerate(raw):
        row = next(line for line in md.splitlines() if line.startswith(f"| t10-{i + 1} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2:6] == [pair["a"], pair["b"], f"{pair['bert']:.2f}", f"{pair['static']:.2f}"]
        assert cells[6:8] == [f"{static['pairs'][i]:.4f}", f"{baseline['pairs'][i]:.4f}"]
    reordered = next(i for i, p in enumerate(raw) if p["type"] == "word order sensitivity")
    assert static["pairs"][reordered] == pytest.approx(1.0, abs=1e-6)  # the same tokens: the same mean vector
    assert report["paper_pairs_same_tokens_static"][reordered] is True
    assert raw[reordered]["static"] < 0.9 and "cannot come from mean pooling" in md
    assert baseline["pairs"][reordered] < 0.999  # a transformer sees the order


@pytest.mark.slow  # eval/probes.py end to end on two real models
def test_e2e_pair_similarities_match_sentence_transformers(
    shared_dir: Path, e2e_run: tuple[Path, dict[str, Any]]
) -> None:
    from sentence_transformers import SentenceTransformer, util

    _, report = e2e_run
    raw = _paper_json(shared_dir)["table10_pairs"]
    for result, name in zip(report["results"], ("potion-base-8M", "all-MiniLM-L6-v2"), strict=True):
        model = SentenceTransformer(str(shared_dir / "models" / name), device="cpu")
        for i, pair in enumerate(raw):
            emb = model.encode([pair["a"], pair["b"]], convert_to_tensor=True)
            assert result["pairs"][i] == pytest.approx(float(util.cos_sim(emb[0:1], emb[1:2])[0, 0]), abs=1e-5)

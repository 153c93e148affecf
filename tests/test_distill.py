"""staticst.distill against model2vec 0.10's own distill (torch, skeletoken) on the shared all-MiniLM-L6-v2.

The unit tests distil a few hundred tokens of MiniLM's vocabulary (a ``token_remove_pattern`` that keeps a
fixed subset, the same for both libraries); the full-vocabulary fidelity run is ``benchmarks/distill.py``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
from tokenizers import models as tok_models

import staticst
from staticst.distill import distill, distill_module_parts, from_distillation_kwargs
from staticst.distill.vocabulary import build_vocabulary, read_tokenizer
from staticst.errors import ModelNotFoundError
from tests.conftest import REPO, bpe_tokenizer, unigram_tokenizer, wordpiece_tokenizer

MINILM = "all-MiniLM-L6-v2"
# single-piece words new to MiniLM's vocabulary, words it already has, a word the pattern removes, an empty one
NEW_WORDS = ["staticst", "embeddingz", "the", "Zebra", "qqqqxz", "  "]
MULTI_WORDS = ["New York", "don't", "Straße!"]


@pytest.fixture(scope="module")
def minilm(shared_model: Callable[[str], Path]) -> Path:
    return shared_model(MINILM)


@pytest.fixture(scope="module")
def minilm_unpadded(minilm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM with its tokenizer's fixed padding (128) turned off, for the comparisons with model2vec's distill.

    model2vec 0.10 encodes a word that is not in the vocabulary with the source tokenizer as it is, so with
    MiniLM's ``Fixed(128)`` padding it runs 128 positions, 120-odd of them ``[PAD]``, and averages over all
    of them (its attention mask is built from the padded length). staticst runs the word's own pieces
    (``[CLS] static ##st [SEP]``), the transformer's vector for the word, which
    ``test_added_words_are_the_transformers_mean_over_their_tokens`` checks against the torch model. Without
    fixed padding model2vec runs the same pieces, and the two must agree.
    """
    folder = tmp_path_factory.mktemp("minilm-unpadded") / MINILM
    folder.mkdir()
    for entry in minilm.iterdir():
        if entry.name != "tokenizer.json":
            (folder / entry.name).symlink_to(entry)
    data = json.loads((minilm / "tokenizer.json").read_text(encoding="utf-8"))
    assert data["padding"]["strategy"] == {"Fixed": 128}  # the case the docstring describes
    data["padding"] = None
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def subset_pattern(minilm: Path) -> str:
    """A token_remove_pattern keeping ~330 of MiniLM's tokens: common words, word pieces, characters, specials."""
    vocab = json.loads((minilm / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    keep = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "zebra", "staticst", "embeddingz", *tokens[1996:2250], *[t for t in tokens if t.startswith("##")][:40]]
    keep += tokens[1000:1030]  # punctuation and digits
    return r"(?!(?:" + "|".join(map(re.escape, keep)) + r")$)|qqqq"


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _canonical(tokenizer: Tokenizer) -> dict[str, Any]:
    return json.loads(Tokenizer.from_str(tokenizer.to_str()).to_str())


CASES = {
    "defaults": {"pca_dims": 32},
    "first-no-sif-float32-variance": {"pooling": "first", "sif_coefficient": None, "quantize_to": "float32", "pca_dims": 0.9},
    "last-int8-auto": {"pooling": "last", "quantize_to": "int8", "pca_dims": "auto"},
    "vocabulary-quantization": {"vocabulary_quantization": 16, "pca_dims": 8, "quantize_to": "float32"},
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_matches_model2vec_distill(case: str, minilm_unpadded: Path, subset_pattern: str) -> None:
    from model2vec.distill import distill as m2v_distill

    kwargs: dict[str, Any] = {"vocabulary": NEW_WORDS, "token_remove_pattern": subset_pattern, **CASES[case]}
    ours = distill(minilm_unpadded, show_progress_bar=False, **kwargs)
    ref = m2v_distill(str(minilm_unpadded), device="cpu", **kwargs)

    assert ours.tokens == ref.tokens and "staticst" in ours.tokens and "zebra" in ours.tokens
    assert _canonical(ours.tokenizer) == _canonical(ref.tokenizer)
    pooling = ref.config["pooling"]  # model2vec keeps what it was given: the enum by default, else the string
    assert ours.config == {**ref.config, "pooling": str(getattr(pooling, "value", pooling))}
    assert ours.embedding.dtype == ref.embedding.dtype and ours.embedding.shape == ref.embedding.shape
    assert (ours.base_model_name, ours.language, ours.normalize) == (ref.base_model_name, ref.language, ref.normalize)
    if ref.token_mapping is None:
        assert ours.token_mapping is None and ours.weights is None and ref.weights is None
    else:
        assert np.array_equal(ours.token_mapping, ref.token_mapping)
        assert ours.weights is not None and np.allclose(ours.weights, ref.weights, rtol=0, atol=1e-12)
    if ours.embedding.dtype == np.int8:  # the same scale; a rounding step apart at most
        assert np.abs(ours.embedding.astype(int) - ref.embedding.astype(int)).max() <= 1
    assert _cosines(ours.embedding, ref.embedding).min() >= 0.9999
    texts = ["the new dog runs", "zebra staticst", "x"]  # "x" is not in the subset: a zero vector in both
    mine, theirs = ours.encode(texts).astype(np.float32), ref.encode(texts).astype(np.float32)
    zero = np.linalg.norm(theirs, axis=1) == 0
    assert zero.tolist() == [False, False, True] and np.array_equal(mine[zero], theirs[zero])
    assert _cosines(mine[~zero], theirs[~zero]).min() >= 0.9999


def test_added_words_are_the_transformers_mean_over_their_tokens(minilm: Path, subset_pattern: str) -> None:
    """Raw rows (no PCA, no weighting) against the torch transformer itself, new and multi-word tokens included.

    model2vec 0.10 encodes a multi-word entry with the tokenizer's fixed padding (128 for MiniLM) and averages
    over the padding as well; staticst encodes the words alone (``[CLS] new york [SEP]``), which is this test.
    """
    import torch
    from transformers import AutoModel

    model = distill(
        minilm, vocabulary=[*NEW_WORDS, *MULTI_WORDS], pca_dims=None, sif_coefficient=None, quantize_to="float32",
        token_remove_pattern=subset_pattern, show_progress_bar=False,
    )  # fmt: skip
    assert {"new york", "don't", "straße!", "staticst"} <= set(model.tokens)
    source = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    source.no_padding()
    source.no_truncation()
    transformer = AutoModel.from_pretrained(str(minilm)).eval()
    words = ["the", "##s", "[UNK]", "[PAD]", "staticst", "new york", "don't", "straße!"]
    with torch.inference_mode():
        for word in words:
            own = source.token_to_id(word)
            ids = [101, own, 102] if own is not None else source.encode(word).ids
            expected = transformer(input_ids=torch.tensor([ids])).last_hidden_state[0].mean(0).numpy()
            assert np.abs(model.embedding[model.tokens.index(word)] - expected).max() < 1e-4, word


def _bytelevel_bpe() -> Tokenizer:
    tok = Tokenizer(tok_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(["the cat sat on the mat", "hello world, the weather is lovely today", "dogs and cats"] * 10, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
    return tok


FAMILIES: dict[str, Callable[[Callable[[str], Path]], Tokenizer]] = {
    "potion-wordpiece": lambda shared: Tokenizer.from_file(str(shared("potion-base-8M") / "tokenizer.json")),
    "wordllama-llama-bpe": lambda shared: Tokenizer.from_file(str(shared("wordllama-l2-supercat-256") / "tokenizer.json")),
    "tiny-wordpiece": lambda _: wordpiece_tokenizer(),
    "tiny-metaspace-bpe": lambda _: bpe_tokenizer(),
    "tiny-unigram": lambda _: unigram_tokenizer(),
    "bytelevel-bpe-roberta": lambda _: _bytelevel_bpe(),
}


@pytest.mark.parametrize("family", list(FAMILIES), ids=list(FAMILIES))
def test_vocabulary_matches_model2vec_on_tokenizer_families(
    family: str, tmp_path: Path, shared_model: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    """The vocabulary edits against model2vec's own (clean_and_create_vocabulary, turn_tokens_into_ids on skeletoken)."""
    from model2vec.tokenizer import clean_and_create_vocabulary, turn_tokens_into_ids
    from skeletoken import TokenizerModel
    from transformers import PreTrainedTokenizerFast

    caplog.set_level(logging.ERROR)
    FAMILIES[family](shared_model).save(str(tmp_path / "tokenizer.json"))
    words = ["hello", "New York", "staticst", "Zürich", "don't", "  ", "the", "catdog", "the cat", "x", "zzz"]
    regex = re.compile(r"\[unused\d+\]|<mask>|zz")

    original = TokenizerModel.from_transformers_tokenizer(PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json")))
    original = original.prune_added_tokens()
    reference = original.deep_copy()
    if reference.adds_prefix_space is not None:
        reference.adds_prefix_space = True
    reference = clean_and_create_vocabulary(reference, words, token_remove_regex=regex)
    ref_ids = turn_tokens_into_ids(reference.sorted_vocabulary, original)
    ref_inverse = {i: t for t, i in original.vocabulary.items()}

    document = read_tokenizer(tmp_path)
    ours = build_vocabulary(document, words, regex)
    inverse = {i: t for t, i in document.vocabulary.items()}

    assert ours.tokens == reference.sorted_vocabulary
    assert _canonical(ours.tokenizer) == _canonical(reference.to_tokenizer())
    pad = original.pad_token
    for token, mine, theirs in zip(ours.tokens, ours.input_ids, ref_ids, strict=True):
        # as token strings (the two number the transformer's rows differently); model2vec's padding dropped
        assert [inverse[i] for i in mine] == [ref_inverse[i] for i in theirs if ref_inverse[i] != pad or len(theirs) <= 3], token
    assert any(len(ids) > 3 for ids in ours.input_ids) or family == "tiny-unigram"  # a multi-word token was encoded


def test_unigram_unknown_token_is_kept_when_tokens_before_it_are_removed(shared_model: Callable[[str], Path], tmp_path: Path) -> None:
    """tokenlearn's Unigram tokenizer names its 4th token as unknown; removing the added tokens before it must not
    move the unknown id onto another token (model2vec 0.10 through skeletoken 0.6 leaves the stale index)."""
    source = Tokenizer.from_file(str(shared_model("tokenlearn-10k-int8") / "tokenizer.json"))
    source.save(str(tmp_path / "tokenizer.json"))
    data = json.loads(source.to_str())
    unk = data["model"]["vocab"][data["model"]["unk_id"]][0]
    ours = build_vocabulary(read_tokenizer(tmp_path), [], None)
    new = json.loads(ours.tokenizer.to_str())
    assert new["model"]["vocab"][new["model"]["unk_id"]][0] == unk
    assert "<unk>" not in ours.tokens and len(ours.tokens) == len(data["model"]["vocab"]) - 1


# texts whose every token is in the subset: model2vec drops [UNK], sentence-transformers averages it in, and
# each layout loads in the other library; no empty text either (sentence-transformers normalizes a float16 zero
# vector to NaN: its eps underflows)
KNOWN_TEXTS = ["the new york zebra", "staticst was in the", "he and she", "new york"]
UNKNOWN_TEXTS = ["staticst runs", "x y z"]


def _assert_no_unknown(tokenizer: Tokenizer, texts: list[str]) -> None:
    for text in texts:
        assert "[UNK]" not in tokenizer.encode(text).tokens, text


def test_saved_model_loads_in_model2vec_staticst_and_sentence_transformers(minilm: Path, subset_pattern: str, tmp_path: Path) -> None:
    """The model2vec layout (``save_pretrained``), read by model2vec, sentence-transformers and staticst."""
    import model2vec
    from sentence_transformers import SentenceTransformer

    model = distill(minilm, vocabulary=["staticst", "New York"], pca_dims=16, token_remove_pattern=subset_pattern, show_progress_bar=False)
    _assert_no_unknown(model.tokenizer, KNOWN_TEXTS)
    texts = KNOWN_TEXTS + UNKNOWN_TEXTS
    expected = model.encode(texts)
    folder = tmp_path / "m2v"
    model.save_pretrained(folder)
    assert json.loads((folder / "config.json").read_text())["normalize"] is True

    m2v = model2vec.StaticModel.from_pretrained(folder)
    assert m2v.tokens == tuple(model.tokens)
    assert np.array_equal(m2v.encode(texts), expected)
    assert np.array_equal(staticst.StaticModel.from_pretrained(folder).encode(texts), expected)
    st_ours = staticst.StaticSentenceTransformer(str(folder)).encode(KNOWN_TEXTS)
    st_ref = SentenceTransformer(str(folder), device="cpu").encode(KNOWN_TEXTS)
    assert st_ref.dtype == np.float16  # ST computes in the table's float16; staticst returns float32
    assert np.abs(st_ours - st_ref.astype(np.float32)).max() < 1e-3
    # the sentence-transformers face follows sentence-transformers' arithmetic (checked above); under model2vec's
    # rules it gives model2vec's vectors
    st_m2v = staticst.StaticSentenceTransformer(str(folder), family="model2vec").encode(KNOWN_TEXTS)
    assert np.abs(st_m2v - expected[: len(KNOWN_TEXTS)]).max() < 1e-6


def test_module_parts_are_what_sentence_transformers_from_distillation_builds(
    minilm: Path, subset_pattern: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sentence-transformers' own ``from_distillation`` (model2vec's distill replaced by staticst's, under model2vec's
    signature) builds the module from exactly :func:`distill_module_parts`; the sentence-transformers layout it saves
    loads in model2vec, sentence-transformers and staticst with the same vectors."""
    import model2vec
    import model2vec.distill
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, StaticEmbedding

    @functools.wraps(model2vec.distill.distill)
    def ours(model_name: str, **kwargs: Any) -> staticst.StaticModel:
        return distill(model_name, show_progress_bar=False, **kwargs)

    monkeypatch.setattr(model2vec.distill, "distill", ours)
    cases: list[dict[str, Any]] = [
        {"vocabulary": ["staticst", "New York"], "pca_dims": 16},  # sentence-transformers' float32 default
        {"vocabulary_quantization": 12, "pca_dims": 8, "quantize_to": "float16", "device": "cpu"},  # mapping + weights folded
    ]
    for case in cases:
        kwargs = {"token_remove_pattern": subset_pattern, **case}
        module = StaticEmbedding.from_distillation(str(minilm), **kwargs)
        tokenizer, weights, base_model = distill_module_parts(str(minilm), show_progress_bar=False, **kwargs)
        reference = module.embedding.weight.detach().numpy()
        assert weights.dtype == reference.dtype and np.array_equal(weights, reference)
        rebuilt = StaticEmbedding(tokenizer, embedding_weights=weights, base_model=base_model)  # the 5-line glue's call
        assert _canonical(rebuilt.tokenizer) == _canonical(module.tokenizer) and rebuilt.base_model == module.base_model
        # staticst's module API: the same table, tokenizer and base model as sentence-transformers' module
        ours_module = staticst.StaticEmbedding.from_distillation(str(minilm), show_progress_bar=False, **kwargs)
        assert ours_module.weight.dtype == reference.dtype and np.array_equal(ours_module.weight, reference)
        assert _canonical(ours_module.tokenizer) == _canonical(module.tokenizer)
        assert ours_module.base_model == module.base_model

    tokenizer, weights, _ = distill_module_parts(str(minilm), show_progress_bar=False, token_remove_pattern=subset_pattern, **cases[0])
    _assert_no_unknown(tokenizer, KNOWN_TEXTS)
    folder = tmp_path / "st"
    SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=weights), Normalize()], device="cpu").save(str(folder))
    assert not (folder / "config.json").exists()  # the sentence-transformers layout, not model2vec's
    expected = SentenceTransformer(str(folder), device="cpu").encode(KNOWN_TEXTS)
    assert np.abs(staticst.StaticSentenceTransformer(str(folder)).encode(KNOWN_TEXTS) - expected).max() < 1e-6
    # model2vec reads this layout without its Normalize module (normalize=False): the same vectors up to length
    m2v = model2vec.StaticModel.from_pretrained(folder)
    ours_m2v = staticst.StaticModel.from_pretrained(folder)
    assert m2v.normalize is False and ours_m2v.normalize is False
    assert np.array_equal(ours_m2v.encode(KNOWN_TEXTS), m2v.encode(KNOWN_TEXTS))
    unit = m2v.encode(KNOWN_TEXTS) / np.linalg.norm(m2v.encode(KNOWN_TEXTS), axis=1, keepdims=True)
    assert np.abs(unit - expected).max() < 1e-6


def test_no_onnx_export_names_the_file_and_the_export_command(minilm: Path, tmp_path: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
        (tmp_path / name).write_bytes((minilm / name).read_bytes())
    with pytest.raises(ModelNotFoundError) as info:
        distill(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "onnx" / "model.onnx") in message and str(tmp_path / "model.onnx") in message
    assert "optimum-cli export onnx" in message and "torch.onnx.export" in message
    with pytest.raises(ModelNotFoundError, match="other.onnx"):
        distill(tmp_path, onnx_file="other.onnx")
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(ModelNotFoundError, match="tokenizer.json"):
        distill(tmp_path)
    with pytest.raises(ModelNotFoundError, match="No such folder"):
        distill(tmp_path / "missing")


def test_named_onnx_file(minilm: Path, subset_pattern: str, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
        (folder / name).write_bytes((minilm / name).read_bytes())
    (folder / "exported.onnx").symlink_to(minilm / "onnx" / "model.onnx")
    kwargs: dict[str, Any] = {"token_remove_pattern": subset_pattern, "pca_dims": 8, "show_progress_bar": False}
    named = distill(folder, onnx_file="exported.onnx", **kwargs)
    absolute = distill(folder, onnx_file=folder / "exported.onnx", **kwargs)
    default = distill(minilm, **kwargs)
    assert np.array_equal(named.embedding, default.embedding) and np.array_equal(absolute.embedding, default.embedding)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sif_coefficient": 0.0}, ValueError, "sif_coefficient=0.0"),
        ({"sif_coefficient": 1.0}, ValueError, "sif_coefficient=1.0"),
        ({"token_remove_pattern": "[unclosed"}, ValueError, "not a regular expression"),
        ({"quantize_to": "int4"}, ValueError, "quantize_to='int4'"),
        ({"pooling": "max"}, ValueError, "pooling='max'"),
        ({"pca_dims": 256.0}, ValueError, "pass the int 256"),
        ({"pca_dims": 0}, ValueError, "at least 1"),
        ({"pca_dims": True}, ValueError, "pca_dims=True"),
        ({"pca_dims": "all"}, ValueError, "pca_dims='all'"),
        ({"vocabulary": "word"}, TypeError, r"pass \['word'\]"),
        ({"vocabulary": ["ok", 3]}, TypeError, "holds 3"),
        ({"vocabulary_quantization": 0}, ValueError, "vocabulary_quantization=0"),
        ({"batch_size": 0}, ValueError, "batch_size=0"),
        ({"device": "mps"}, ValueError, "device='mps'"),
        ({"device": "cuda"}, ValueError, "no CUDA provider"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(kwargs: dict[str, Any], error: type[Exception], match: str, tmp_path: Path) -> None:
    # tmp_path has no model at all: the argument is refused before the folder is even looked at
    with pytest.raises(error, match=match):
        distill(tmp_path / "not-there", **kwargs)


def test_pooler_pooling_needs_a_pooler_output(minilm: Path, subset_pattern: str) -> None:
    with pytest.raises(ValueError, match="pooler_output"):
        distill(minilm, pooling="pooler", token_remove_pattern=subset_pattern, show_progress_bar=False)


def test_from_distillation_kwargs_are_what_sentence_transformers_passes(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """sentence-transformers' own from_distillation, with model2vec's distill replaced by a recorder."""
    import model2vec.distill
    from sentence_transformers.models import StaticEmbedding

    seen: dict[str, Any] = {}

    @functools.wraps(model2vec.distill.distill)  # sentence-transformers reads distill's signature
    def recorder(model_name: str, **kwargs: Any) -> Any:
        seen.update(model_name=model_name, **kwargs)
        raise RuntimeError("recorded")

    monkeypatch.setattr(model2vec.distill, "distill", recorder)
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        (("m",), {}),
        (("m",), {"vocabulary": ["a"], "pca_dims": 64, "sif_coefficient": None, "quantize_to": "float16", "token_remove_pattern": None}),
        (("m",), {"device": "cpu", "pooling": "first", "apply_zipf": False}),
    ]
    for args, kwargs in calls:
        seen.clear()
        with pytest.raises(RuntimeError, match="recorded"):
            StaticEmbedding.from_distillation(*args, **kwargs)
        assert from_distillation_kwargs(*args, **kwargs) == seen
    caplog.set_level(logging.WARNING, logger="staticst.distill")
    assert from_distillation_kwargs("m", not_an_argument=1)["model_name"] == "m"
    assert "not_an_argument" in caplog.text


def test_hub_id_is_read_from_the_cache_offline(minilm: Path, subset_pattern: str, tmp_path: Path) -> None:
    """A Hub id resolves through huggingface_hub's cache with HF_HUB_OFFLINE set; an uncached id is a clear error."""
    repo = tmp_path / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    (snapshot / "onnx").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json", "onnx/model.onnx"):
        (snapshot / name).symlink_to(minilm / name)
    code = (
        "import sys\n"
        "from staticst.distill import distill\n"
        f"m = distill('sentence-transformers/all-MiniLM-L6-v2', token_remove_pattern={subset_pattern!r}, pca_dims=8, show_progress_bar=False)\n"
        "print(len(m.tokens), m.base_model_name, m.config['tokenizer_name'])\n"
        "try:\n"
        "    distill('nobody/nothing')\n"
        "except FileNotFoundError as e:\n"
        "    print(type(e).__name__, 'nobody/nothing' in str(e))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()[-2:]
    assert first.split()[1:] == ["sentence-transformers/all-MiniLM-L6-v2"] * 2 and int(first.split()[0]) > 300
    assert second == "ModelNotFoundError True"


def test_distill_runs_with_torch_unimportable(minilm: Path, subset_pattern: str, tmp_path: Path) -> None:
    """torch, transformers, sentence-transformers, model2vec and skeletoken blocked: distil, save, load, encode."""
    code = (
        "import sys\n"
        "BLOCKED = {'torch', 'transformers', 'sentence_transformers', 'model2vec', 'skeletoken'}\n"
        "class Blocker:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is blocked')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Blocker())\n"
        "import staticst\n"
        "heavy = [m for m in ('onnxruntime', 'sklearn') if m in sys.modules]\n"
        f"m = staticst.distill({str(minilm)!r}, vocabulary=['staticst', 'New York'], token_remove_pattern={subset_pattern!r}, pca_dims=16)\n"
        f"m.save_pretrained({str(tmp_path / 'out')!r})\n"
        f"back = staticst.StaticSentenceTransformer({str(tmp_path / 'out')!r})\n"
        "v = back.encode(['new york staticst'])\n"
        "print(heavy, v.shape, sorted(k for k in sys.modules if k.split('.')[0] in BLOCKED))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[] (1, 16) []"
    assert "Encoding tokens" in out.stderr  # the progress bar

"""Tokenizers for the native tokenizer's exactness tests, trained with ``tokenizers``' own trainers.

Text: ``tests/data/multilingual.tsv`` (Django's translation catalogues, BSD-3-Clause; see tests/data/README.md):
2,396 messages in 99 languages and many scripts. Everything here is deterministic and built once per process
(``functools.cache``): training all of them takes a few seconds.

* :func:`trained_tokenizers` — the issue's fixture families, each a complete pipeline:
  ``bytelevel-bpe`` (GPT-2 / Qwen style: NFC, ByteLevel pre-tokenizer and decoder, BPE over the 256 byte
  characters), ``wordpiece-multilingual`` (BertNormalizer with strip_accents and lowercase, BertPreTokenizer,
  WordPiece), ``unigram-nfkc-metaspace`` (NFKC, Metaspace, Unigram) and ``unigram-100k`` (NFKC + Metaspace
  over a 100K+-piece Unigram vocabulary: every substring of up to 8 characters of the sample's pre-tokens,
  scored by log frequency — training one that large would need far more text than the sample).
* :func:`model_variants` — the same trained models with the settings each family has but the pipelines above
  do not exercise: BPE with ``continuing_subword_prefix`` / ``end_of_word_suffix``, ``ignore_merges``,
  ``byte_fallback`` with and without ``fuse_unk`` or an unk token; Unigram with ``byte_fallback``, without
  ``unk_id``, with tied scores; WordPiece with a short ``max_input_chars_per_word`` and a missing unk token.
* :func:`shared_tokenizers` — the tokenizers of the real models in ``shared/models``.
* :func:`sample_by_script` — the sample's messages grouped by language.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

DATA = Path(__file__).resolve().parent / "data" / "multilingual.tsv"
SHARED_TOKENIZERS = ("potion-base-8M", "wordllama-l2-supercat-256", "tokenlearn-10k-int8")

__all__ = [
    "DATA",
    "SHARED_TOKENIZERS",
    "bare_model",
    "model_variants",
    "pretokens",
    "sample_by_script",
    "sample_lines",
    "shared_tokenizers",
    "trained_tokenizers",
]


@cache
def sample_lines() -> tuple[str, ...]:
    """Every message of the sample, in file order."""
    return tuple(line.split("\t", 1)[1] for line in DATA.read_text(encoding="utf-8").splitlines() if "\t" in line)


@cache
def sample_by_script() -> dict[str, tuple[str, ...]]:
    """The sample's messages by language (Django locale names, ``en`` for English)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for line in DATA.read_text(encoding="utf-8").splitlines():
        language, _, text = line.partition("\t")
        groups[language].append(text)
    return {language: tuple(texts) for language, texts in groups.items()}


def _train(tokenizer: Tokenizer, trainer: object) -> Tokenizer:
    tokenizer.train_from_iterator(list(sample_lines()), trainer=trainer)
    return tokenizer


def _bytelevel_bpe() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=4000, show_progress=False, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    return _train(tok, trainer)


def _wordpiece() -> Tokenizer:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=5000, show_progress=False,
                                        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])  # fmt: skip
    return _train(tok, trainer)


def _unigram() -> Tokenizer:
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=4000, show_progress=False, special_tokens=["<pad>", "<unk>"],
                                      unk_token="<unk>")  # fmt: skip
    return _train(tok, trainer)


def _unigram_100k() -> Tokenizer:
    """Every substring (up to 8 characters) of the sample's NFKC + Metaspace pre-tokens, scored by log frequency."""
    normalizer, pre = normalizers.NFKC(), pre_tokenizers.Metaspace()
    counts: Counter[str] = Counter()
    for line in sample_lines():
        for word, _ in pre.pre_tokenize_str(normalizer.normalize_str(line)):
            for i in range(len(word)):
                for j in range(i + 1, min(len(word), i + 8) + 1):
                    counts[word[i:j]] += 1
    total = sum(counts.values())
    pieces = [("<unk>", 0.0)] + [(piece, math.log(n / total)) for piece, n in sorted(counts.items())]
    tok = Tokenizer(models.Unigram(pieces, unk_id=0, byte_fallback=False))
    tok.normalizer, tok.pre_tokenizer = normalizer, pre
    return tok


@cache
def trained_tokenizers() -> dict[str, Tokenizer]:
    """The fixture families (complete pipelines), by name."""
    return {
        "bytelevel-bpe": _bytelevel_bpe(),
        "wordpiece-multilingual": _wordpiece(),
        "unigram-nfkc-metaspace": _unigram(),
        "unigram-100k": _unigram_100k(),
    }


def _with_model(base: Tokenizer, model: dict[str, object]) -> Tokenizer:
    data = json.loads(base.to_str())
    data["model"] = model
    return Tokenizer.from_str(json.dumps(data))


def _bpe_with_affixes() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=3000, show_progress=False, special_tokens=["<unk>"],
                                  continuing_subword_prefix="##", end_of_word_suffix="</w>")  # fmt: skip
    return _train(tok, trainer)


def _byte_pieces() -> list[str]:
    return [f"<0x{b:02X}>" for b in range(256)]


@cache
def model_variants() -> dict[str, Tokenizer]:
    """Trained models with the settings of each family that the pipelines above leave at their defaults."""
    trained = trained_tokenizers()
    out: dict[str, Tokenizer] = {}
    bpe = json.loads(trained["bytelevel-bpe"].model.__getstate__())
    out["bpe-ignore-merges"] = _with_model(trained["bytelevel-bpe"], {**bpe, "ignore_merges": True})
    affixes = _bpe_with_affixes()
    out["bpe-prefix-suffix"] = affixes
    aff = json.loads(affixes.model.__getstate__())
    out["bpe-prefix-suffix-ignore-merges"] = _with_model(affixes, {**aff, "ignore_merges": True})
    # byte_fallback over a vocabulary that lacks most characters: every "<0xXX>" present except a few, so some
    # characters fall back to bytes and some (a missing byte) to the unk token, fused or not
    # (tokenizers needs the "<0xXX>" tokens in the vocabulary; the merges stay valid as the ids move up)
    small_vocab = {
        tok: i for i, tok in enumerate(["<unk>", *[p for p in _byte_pieces() if p not in ("<0xE3>", "<0x9F>")]])
    }
    base_vocab = {t: i for t, i in sorted(aff["vocab"].items(), key=lambda kv: kv[1]) if len(t) <= 3 or t == "</w>"}
    for token in base_vocab:
        small_vocab.setdefault(token, len(small_vocab))
    merges = [m for m in aff["merges"] if m[0] in small_vocab and m[1] in small_vocab
              and m[0] + m[1][2:] in small_vocab]  # fmt: skip
    for fuse in (True, False):
        out[f"bpe-byte-fallback-fuse-{str(fuse).lower()}"] = _with_model(
            affixes,
            {**aff, "vocab": small_vocab, "merges": merges, "byte_fallback": True, "fuse_unk": fuse},
        )
    out["bpe-no-unk-token"] = _with_model(affixes, {**aff, "vocab": small_vocab, "merges": merges, "unk_token": None})
    out["bpe-unk-not-in-vocab"] = _with_model(
        affixes,
        {**aff, "vocab": {k: v for k, v in small_vocab.items() if k != "<unk>"} | {"<pad>": 0}, "merges": merges},
    )
    uni = json.loads(trained["unigram-nfkc-metaspace"].model.__getstate__())
    out["unigram-byte-fallback"] = _with_model(
        trained["unigram-nfkc-metaspace"],
        {**uni, "vocab": uni["vocab"] + [[p, -20.0] for p in _byte_pieces() if p != "<0xE3>"], "byte_fallback": True},
    )
    out["unigram-no-unk"] = _with_model(trained["unigram-nfkc-metaspace"], {**uni, "unk_id": None})
    # tied scores: every piece of a length scores the same, so Viterbi ties are everywhere; duplicates too
    tied = [[p, -float(len(p))] for p, _ in uni["vocab"]]
    tied += [[p, -float(len(p))] for p, _ in uni["vocab"][100:140]]  # each piece listed twice: the last id wins
    out["unigram-ties"] = _with_model(trained["unigram-nfkc-metaspace"], {**uni, "vocab": tied})
    wp = json.loads(trained["wordpiece-multilingual"].model.__getstate__())
    out["wordpiece-max-8-chars"] = _with_model(trained["wordpiece-multilingual"], {**wp, "max_input_chars_per_word": 8})
    out["wordpiece-no-unk-in-vocab"] = _with_model(
        trained["wordpiece-multilingual"], {**wp, "vocab": {k: v for k, v in wp["vocab"].items() if k != "[UNK]"}}
    )
    out["wordpiece-prefix-@@"] = _with_model(
        trained["wordpiece-multilingual"],
        {**wp, "continuing_subword_prefix": "@@",
         "vocab": {("@@" + k[2:] if k.startswith("##") else k): v for k, v in wp["vocab"].items()}},
    )  # fmt: skip
    return out


def shared_tokenizers(shared_dir: Path) -> dict[str, Tokenizer]:
    """The tokenizers of the real models in ``shared/models`` (a missing one is an error)."""
    return {
        name: Tokenizer.from_file(str(shared_dir / "models" / name / "tokenizer.json")) for name in SHARED_TOKENIZERS
    }


_BARE: dict[int, tuple[Tokenizer, Tokenizer]] = {}


def bare_model(tokenizer: Tokenizer) -> Tokenizer:
    """The tokenizer's model alone (no normaliser, pre-tokenizer, added tokens or post-processor): its
    ``encode_batch(words, add_special_tokens=False)`` gives ``model.tokenize(word)`` for each word, in parallel.
    Built once per tokenizer object (a 276K-piece model takes a second to serialise and parse)."""
    cached = _BARE.get(id(tokenizer))
    if cached is not None and cached[0] is tokenizer:
        return cached[1]
    section = json.loads(tokenizer.model.__getstate__())
    if section["type"] == "Unigram":
        # through the constructor, not JSON: tokenizers' JSON reader (serde_json without float_roundtrip) parses
        # about one score in six 1 ULP off, which moves Viterbi ties; the constructor takes the exact floats
        pieces = [(piece, float(score)) for piece, score in section["vocab"]]
        model = Tokenizer(models.Unigram(pieces, unk_id=section["unk_id"], byte_fallback=section["byte_fallback"]))
    else:
        data = json.loads(tokenizer.to_str())
        bare = {
            key: None for key in ("truncation", "padding", "normalizer", "pre_tokenizer", "post_processor", "decoder")
        }
        model = Tokenizer.from_str(json.dumps({**data, **bare, "added_tokens": []}))
    _BARE[id(tokenizer)] = (tokenizer, model)
    return model


def pretokens(tokenizer: Tokenizer, texts: tuple[str, ...] | list[str]) -> list[str]:
    """The pre-tokens the tokenizer's model sees for these texts (normalised, pre-tokenized; byte-mapped for
    ByteLevel)."""
    words: list[str] = []
    for text in texts:
        normalized = tokenizer.normalizer.normalize_str(text) if tokenizer.normalizer else text
        if tokenizer.pre_tokenizer is None:
            words.append(normalized)
        else:
            words.extend(word for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized))
    return words

"""The distilled model's vocabulary and tokenizer, built as model2vec 0.10 builds them, on ``tokenizer.json``.

model2vec 0.10's ``distill`` edits the transformer's tokenizer through skeletoken (which needs transformers);
this module does the same edits on the ``tokenizer.json`` document itself:

1. Read the tokenizer as transformers hands it over: the unknown and padding tokens of
   ``tokenizer_config.json`` / ``special_tokens_map.json``, ``model_max_length`` as the truncation length,
   ``add_prefix_space`` as a ``Prepend`` normalizer.
2. :meth:`TokenizerDocument.prune_added_tokens`: drop the added tokens that play no role (everything but the
   post-processor's first/last special tokens, the unknown and the padding token; ``[MASK]`` for BERT).
   This pruned tokenizer turns every token into the transformer's input ids.
3. :func:`build_vocabulary`: a copy without post-processor, with benign padding and a byte-level
   pre-tokenizer that adds a prefix space; tokens matching ``token_remove_pattern`` removed; the words of
   ``vocabulary`` normalised and pre-tokenized: one piece becomes a new token, several pieces a multi-word
   added token; added tokens pruned again (the post-processor is gone, so ``[CLS]`` / ``[SEP]`` go too).

Token ids of the result are contiguous; its tokens in id order are the rows of the distilled table.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

__all__ = ["DistillVocabulary", "TokenizerDocument", "build_vocabulary", "read_tokenizer"]

logger = logging.getLogger("staticst.distill")

#: transformers' "model_max_length was never set" sentinel (anything this large means no limit).
_UNSET_MODEL_MAX_LENGTH = int(1e15)
_MODEL_TYPES = ("WordPiece", "BPE", "Unigram", "WordLevel")
_NEEDS_UNK = ("WordPiece", "WordLevel")


class TokenizerDocument:
    """A ``tokenizer.json`` under edit, with skeletoken's vocabulary operations (as model2vec 0.10 calls them).

    Args:
        data: The tokenizer as ``tokenizers`` serialises it (``Tokenizer.to_str()``); copied.

    Raises:
        ValueError: A tokenizer model other than WordPiece, BPE, Unigram or WordLevel.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        model = data["model"]
        self.kind: str = model["type"]
        if self.kind not in _MODEL_TYPES:
            raise ValueError(
                f"Tokenizer model {self.kind!r} is not one of {list(_MODEL_TYPES)}: it cannot be distilled."
            )
        # the document without its vocabulary and merges, which live in the attributes below
        self.data: dict[str, Any] = copy.deepcopy(
            {**data, "model": {k: v for k, v in model.items() if k not in ("vocab", "merges")}}
        )
        self._order: list[str] = []
        self._scores: dict[str, float] = {}
        self._min_score = -100.0
        if self.kind == "Unigram":
            entries = [(str(token), float(score)) for token, score in model["vocab"]]
            self._order = [token for token, _ in entries]
            self._scores = dict(entries)
            self._vocab: dict[str, int] = {token: i for i, token in enumerate(self._order)}
            self._min_score = min(self._scores.values(), default=-100.0)
        else:
            self._vocab = {str(token): int(i) for token, i in model["vocab"].items()}
        self._merges: list[tuple[str, str]] = []
        if self.kind == "BPE":
            self._merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in model["merges"]]  # type: ignore[misc]
        self._index_merges()
        self.added: list[dict[str, Any]] = list(self.data.get("added_tokens") or [])
        self.data["added_tokens"] = self.added

    # ------------------------------------------------------------------ views

    def copy(self) -> TokenizerDocument:
        """An independent copy."""
        other = object.__new__(TokenizerDocument)
        other.kind = self.kind
        other.data = copy.deepcopy(self.data)
        other.added = other.data["added_tokens"]
        other._vocab = dict(self._vocab)
        other._order = list(self._order)
        other._scores = dict(self._scores)
        other._min_score = self._min_score
        other._merges = list(self._merges)
        other._merge_rank = dict(self._merge_rank)
        other._merge_tokens = set(self._merge_tokens)
        return other

    @property
    def vocabulary(self) -> dict[str, int]:
        """Token -> id (a copy)."""
        return dict(self._vocab)

    @property
    def sorted_vocabulary(self) -> list[str]:
        """Tokens in id order.

        Raises:
            ValueError: The ids are not contiguous from 0 (no table row per id could be made).
        """
        inverse = {i: token for token, i in self._vocab.items()}
        if set(inverse) != set(range(len(inverse))):
            raise ValueError(
                "The tokenizer's vocabulary ids are not contiguous from 0 (it has gaps), so no table row per id "
                "can be made: repair its tokenizer.json (ids 0..n-1) before distilling."
            )
        return [inverse[i] for i in range(len(inverse))]

    @property
    def unk_token(self) -> str | None:
        """The unknown token, if any."""
        model = self.data["model"]
        if self.kind == "Unigram":
            unk_id = model.get("unk_id")
            return None if unk_id is None or unk_id >= len(self._order) else self._order[unk_id]
        token = model.get("unk_token")
        return None if token is None else str(token)

    @property
    def pad_token(self) -> str | None:
        """The padding token, if a padding module is set."""
        padding = self.data.get("padding")
        return None if padding is None else str(padding["pad_token"])

    @property
    def post_processor(self) -> dict[str, Any] | None:
        """The post-processor document, if any."""
        processor: dict[str, Any] | None = self.data.get("post_processor")
        return processor

    @property
    def bos(self) -> list[str] | None:
        """The tokens the post-processor puts before a single sequence (skeletoken's reading)."""
        return _edge_tokens(self.post_processor, first=True)

    @property
    def eos(self) -> list[str] | None:
        """The tokens the post-processor puts after a single sequence (skeletoken's reading)."""
        return _edge_tokens(self.post_processor, first=False)

    def to_dict(self) -> dict[str, Any]:
        """The edited ``tokenizer.json`` document."""
        data = copy.deepcopy(self.data)
        model = data["model"]
        if self.kind == "Unigram":
            model["vocab"] = [[token, self._scores[token]] for token in self._order]
            unk = model.get("unk_id")
            if unk is not None and unk >= len(self._order):
                model["unk_id"] = None
        else:
            model["vocab"] = dict(sorted(self._vocab.items(), key=lambda item: item[1]))
        if self.kind == "BPE":
            model["merges"] = [list(m) for m in self._merges]
        data["added_tokens"] = sorted(data["added_tokens"], key=lambda t: t["id"])
        return data

    def tokenizer(self) -> Tokenizer:
        """The edited tokenizer as a ``tokenizers.Tokenizer``."""
        return Tokenizer.from_str(json.dumps(self.to_dict()))

    def text_steps(self) -> Tokenizer:
        """A tokenizer with this one's normalizer and pre-tokenizer over a one-token vocabulary (cheap to build)."""
        data = copy.deepcopy({k: self.data.get(k) for k in ("normalizer", "pre_tokenizer")})
        data.update(version="1.0", truncation=None, padding=None, added_tokens=[], post_processor=None, decoder=None)
        data["model"] = {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}
        return Tokenizer.from_str(json.dumps(data))

    # ------------------------------------------------------------------ vocabulary edits

    def _add_to_vocab(self, token: str) -> None:
        if token in self._vocab:
            raise ValueError(f"Token {token!r} already exists in the vocabulary.")
        if self.kind == "Unigram":
            self._order.append(token)
            self._scores[token] = self._min_score
            self._vocab[token] = len(self._order) - 1
            return
        used = set(self._vocab.values())
        new_id = len(self._vocab)
        if new_id in used:  # a vocabulary with a gap: the smallest free id, as skeletoken
            new_id = next(i for i in range(len(self._vocab) + 1) if i not in used)
        self._vocab[token] = new_id

    def add_tokens(self, tokens: Iterable[str]) -> None:
        """Add ordinary tokens (a BPE model gets the merges that build each, and their parts)."""
        for token in tokens:
            self._add_to_vocab(token)
            if self.kind == "BPE":
                self._add_merges_for(token)
                for part in sorted(self._merge_tokens - set(self._vocab)):
                    self._add_to_vocab(part)

    def add_added_tokens(self, tokens: Iterable[str]) -> None:
        """Add multi-word tokens as added tokens (not special, normalised, stripped both sides)."""
        for token in tokens:
            self._add_to_vocab(token)
            self._upsert_added(token, special=False, normalized=True, single_word=False, lstrip=True, rstrip=True)
        self._remap_added_ids()

    def remove_tokens(self, tokens: Sequence[str]) -> None:
        """Remove tokens (ids renumbered contiguously), as skeletoken's ``remove_tokens_from_vocabulary``.

        The unknown token of a WordPiece / WordLevel model stays (those need one); removing the padding
        token removes the padding module.

        Raises:
            ValueError: A token the post-processor uses, or a token not in the vocabulary.
        """
        tokens = list(dict.fromkeys(tokens))
        if self.post_processor is not None:
            used = _post_processor_tokens(self.post_processor) & set(tokens)
            if used:
                raise ValueError(
                    f"Cannot remove tokens {sorted(used)}: the tokenizer's post-processor uses them. "
                    "Change token_remove_pattern so that it keeps them."
                )
        unk = self.unk_token
        if unk is not None and unk in tokens:
            if self.kind in _NEEDS_UNK:
                logger.warning(f"Could not remove unknown token {unk!r}: a {self.kind} tokenizer needs one.")
                tokens = [t for t in tokens if t != unk]
            else:
                self._set_model_unk(None)
        if self.pad_token is not None and self.pad_token in tokens:
            self.data["padding"] = None
        gone = set(tokens)
        missing = [t for t in tokens if t not in self._vocab]
        if missing:
            raise ValueError(f"Token {missing[0]!r} does not exist in the vocabulary.")
        self.added[:] = [t for t in self.added if t["content"] not in gone]
        unk = self.unk_token
        if self.kind == "Unigram":
            self._order = [t for t in self._order if t not in gone]
            self._vocab = {t: i for i, t in enumerate(self._order)}
            if unk is not None:  # keep pointing at the same token (its index moved)
                self.data["model"]["unk_id"] = self._vocab[unk]
        else:
            kept = sorted((i, t) for t, i in self._vocab.items() if t not in gone)
            self._vocab = {t: new for new, (_, t) in enumerate(kept)}
        if self.kind == "BPE":
            self._merges = [(a, b) for a, b in self._merges if a not in gone and b not in gone and a + b not in gone]
            self._index_merges()
        self._remap_added_ids()

    def prune_added_tokens(self) -> None:
        """Remove every added token but the post-processor's first / last tokens, the unknown and the padding token."""
        keep = set(self.eos or []) | set(self.bos or [])
        for token in (self.unk_token, self.pad_token):
            if token is not None:
                keep.add(token)
        self.remove_tokens([t["content"] for t in self.added if t["content"] not in keep])
        self._remap_added_ids()

    # ------------------------------------------------------------------ special tokens

    def set_unk_token(self, token: str | None) -> None:
        """Make ``token`` the unknown token (added to the vocabulary and as a special added token if needed).

        Raises:
            ValueError: ``None`` for a WordPiece / WordLevel tokenizer, which needs one.
        """
        if token is None:
            if self.kind in _NEEDS_UNK:
                raise ValueError(f"A {self.kind} tokenizer needs an unknown token.")
            self._set_model_unk(None)
            return
        old = self.unk_token
        if token not in self._vocab:
            self._add_to_vocab(token)
        self._upsert_added(token, special=True)
        if old is not None and self.post_processor is not None:
            self.data["post_processor"] = _replace_in_post_processor(
                self.post_processor, old, token, self._vocab[token]
            )
        self._set_model_unk(token)

    def set_pad_token(self, token: str | None) -> None:
        """Make ``token`` the padding token (a padding module that pads nothing is created if there is none)."""
        if token is None:
            self.data["padding"] = None
            return
        padding = self.data.get("padding")
        if padding is None:
            if token not in self._vocab:
                self._add_to_vocab(token)
            self.data["padding"] = _benign_padding(self._vocab[token], token)
        elif token in self._vocab:
            padding["pad_id"] = self._vocab[token]
            padding["pad_token"] = token
        elif padding["pad_token"] in self._vocab:  # rename the old padding token, keeping its id
            old = padding["pad_token"]
            self._rename(old, token)
            padding["pad_token"] = token
        else:
            self._add_to_vocab(token)
            padding["pad_id"] = self._vocab[token]
            padding["pad_token"] = token
        self._upsert_added(token, special=True)

    def _set_model_unk(self, token: str | None) -> None:
        if self.kind == "Unigram":
            self.data["model"]["unk_id"] = None if token is None else self._vocab[token]
        else:
            self.data["model"]["unk_token"] = token

    def _rename(self, old: str, new: str) -> None:
        index = self._vocab.pop(old)
        self._vocab[new] = index
        if self.kind == "Unigram":
            self._order[index] = new
            self._scores[new] = self._scores.pop(old)
        for added in self.added:
            if added["content"] == old:
                added["content"] = new
        if self.post_processor is not None:
            self.data["post_processor"] = _replace_in_post_processor(self.post_processor, old, new, index)

    def _upsert_added(
        self,
        token: str,
        special: bool,
        normalized: bool | None = None,
        single_word: bool | None = None,
        lstrip: bool | None = None,
        rstrip: bool | None = None,
    ) -> None:
        """Skeletoken's ``upsert_token``: an existing added token gets the new id (and the flags given)."""
        fields = {
            "special": special,
            "normalized": normalized,
            "single_word": single_word,
            "lstrip": lstrip,
            "rstrip": rstrip,
        }
        for added in self.added:
            if added["content"] == token:
                added["id"] = self._vocab[token]
                added.update({k: v for k, v in fields.items() if v is not None})
                return
        entry = {k: bool(v) for k, v in fields.items()}
        self.added.append({"id": self._vocab[token], "content": token, **entry})

    def _remap_added_ids(self) -> None:
        for added in self.added:
            added["id"] = self._vocab[added["content"]]
        padding = self.data.get("padding")
        if padding is not None:  # skeletoken re-sets the padding token, which re-reads its id
            self.set_pad_token(padding["pad_token"])
        if self.post_processor is not None:
            self.data["post_processor"] = _resync_post_processor(self.post_processor, self._vocab)

    # ------------------------------------------------------------------ BPE merges (skeletoken's Merges)

    def _index_merges(self) -> None:
        self._merge_rank = {m: i for i, m in enumerate(self._merges)}
        self._merge_tokens = {t for m in self._merges for t in m}

    def _apply_merges(self, token: str) -> list[str]:
        chars = list(token)
        if len(chars) == 1:
            return chars
        while True:
            best: tuple[str, str] | None = None
            best_rank = len(self._merges) + 1
            for pair in zip(chars[:-1], chars[1:], strict=True):
                rank = self._merge_rank.get(pair)
                if rank is not None and rank < best_rank:
                    best, best_rank = pair, rank
            if best is None:
                return chars
            merged: list[str] = []
            i = 0
            while i < len(chars) - 1:
                if (chars[i], chars[i + 1]) == best:
                    merged.append(chars[i] + chars[i + 1])
                    i += 2
                else:
                    merged.append(chars[i])
                    i += 1
            if i < len(chars):
                merged.append(chars[i])
            chars = merged

    def _add_merges_for(self, token: str) -> None:
        form = self._apply_merges(token)
        while len(form) > 1:
            for i in range(0, len(form) - 1, 2):
                pair = (form[i], form[i + 1])
                if pair not in self._merge_rank:
                    self._merges.append(pair)
                    self._merge_rank[pair] = len(self._merges) - 1
                self._merge_tokens.update(pair)
            form = self._apply_merges(token)


# ---------------------------------------------------------------------- post-processors


def _edge_tokens(processor: dict[str, Any] | None, first: bool) -> list[str] | None:
    """Skeletoken's bos / eos: the first / last special token of the single template (none for a Sequence)."""
    if processor is None:
        return None
    kind = processor.get("type")
    if kind in ("BertProcessing", "RobertaProcessing"):
        return [processor["cls" if first else "sep"][0]]
    if kind == "TemplateProcessing":
        single = processor.get("single") or []
        if not single:
            return None
        piece = single[0 if first else -1]
        if "SpecialToken" not in piece:
            return None
        info = processor.get("special_tokens", {}).get(piece["SpecialToken"]["id"])
        return None if info is None else list(info["tokens"])
    return None


def _post_processor_tokens(processor: dict[str, Any]) -> set[str]:
    kind = processor.get("type")
    if kind == "Sequence":
        return set().union(*(_post_processor_tokens(p) for p in processor["processors"]))
    if kind in ("BertProcessing", "RobertaProcessing"):
        return {processor["cls"][0], processor["sep"][0]}
    if kind == "TemplateProcessing":
        specials = _template_specials(processor)
        table = processor.get("special_tokens", {})
        return {token for ident in specials if ident in table for token in table[ident]["tokens"]}
    return set()


def _template_specials(processor: dict[str, Any]) -> set[str]:
    pieces = list(processor.get("single") or []) + list(processor.get("pair") or [])
    return {p["SpecialToken"]["id"] for p in pieces if "SpecialToken" in p}


def _resync_post_processor(processor: dict[str, Any], vocab: dict[str, int]) -> dict[str, Any]:
    """Every id in the post-processor re-read from the vocabulary (skeletoken's ``resync_post_processor_ids``)."""
    processor = json.loads(json.dumps(processor))
    kind = processor.get("type")
    if kind == "Sequence":
        processor["processors"] = [_resync_post_processor(p, vocab) for p in processor["processors"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for key in ("cls", "sep"):
            token = processor[key][0]
            if token not in vocab:
                raise ValueError(f"Post-processor token {token!r} is no longer in the vocabulary.")
            processor[key] = [token, vocab[token]]
    elif kind == "TemplateProcessing":
        used = _template_specials(processor)
        for ident, info in processor.get("special_tokens", {}).items():
            missing = [t for t in info["tokens"] if t not in vocab]
            if missing:
                if ident in used:
                    raise ValueError(f"Post-processor token {missing[0]!r} is no longer in the vocabulary.")
                continue
            info["ids"] = [vocab[t] for t in info["tokens"]]
    return processor


def _replace_in_post_processor(processor: dict[str, Any], old: str, new: str, index: int) -> dict[str, Any]:
    processor = json.loads(json.dumps(processor))
    kind = processor.get("type")
    if kind == "Sequence":
        processor["processors"] = [_replace_in_post_processor(p, old, new, index) for p in processor["processors"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for key in ("cls", "sep"):
            if processor[key][0] == old:
                processor[key] = [new, index]
    elif kind == "TemplateProcessing":
        for info in processor.get("special_tokens", {}).values():
            pairs = [(new, index) if t == old else (t, i) for t, i in zip(info["tokens"], info["ids"], strict=True)]
            info["tokens"] = [t for t, _ in pairs]
            info["ids"] = [i for _, i in pairs]
    return processor


def _benign_padding(pad_id: int, pad_token: str) -> dict[str, Any]:
    """A padding module that names the padding token but pads nothing (``Fixed`` 0)."""
    return {
        "strategy": {"Fixed": 0},
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": pad_id,
        "pad_type_id": 0,
        "pad_token": pad_token,
    }


# ---------------------------------------------------------------------- pre-tokenizers and normalizers


def _find_pretokenizer(node: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    if node is None:
        return None
    if node.get("type") == kind:
        return node
    if node.get("type") == "Sequence":
        for child in node.get("pretokenizers", []):
            found = _find_pretokenizer(child, kind)
            if found is not None:
                return found
    return None


def _adds_prefix_space(pre_tokenizer: dict[str, Any] | None) -> bool:
    byte_level = _find_pretokenizer(pre_tokenizer, "ByteLevel")
    if byte_level is not None and byte_level.get("add_prefix_space"):
        return True
    metaspace = _find_pretokenizer(pre_tokenizer, "Metaspace")
    return metaspace is not None and metaspace.get("prepend_scheme", "always") != "never"


def _with_prepend(normalizer: dict[str, Any] | None, prepend: str) -> dict[str, Any]:
    step = {"type": "Prepend", "prepend": prepend}
    if normalizer is None:
        return step
    if normalizer.get("type") == "Sequence":
        return {"type": "Sequence", "normalizers": [step, *normalizer["normalizers"]]}
    return {"type": "Sequence", "normalizers": [step, normalizer]}


# ---------------------------------------------------------------------- reading a model folder


def _special(value: Any) -> str | None:
    """A special token as ``tokenizer_config.json`` / ``special_tokens_map.json`` write it (text or AddedToken dict)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not readable JSON ({exc}): repair or remove it.") from exc
    return data if isinstance(data, dict) else {}


def read_tokenizer(folder: Path) -> TokenizerDocument:
    """The transformer's tokenizer as transformers hands it to model2vec (``tokenizer.json`` + its configs).

    Args:
        folder: The model folder; ``tokenizer.json`` must exist.

    Returns:
        The document with added tokens in the vocabulary, the configs' unknown and padding tokens,
        ``model_max_length`` as truncation and ``add_prefix_space`` applied.
    """
    raw = Tokenizer.from_file(str(folder / "tokenizer.json")).to_str()  # tokenizers' own serialisation
    doc = TokenizerDocument(json.loads(raw))
    # skeletoken's model_post_init: every added token is in the vocabulary, with the vocabulary's id
    for added in sorted(doc.added, key=lambda t: t["id"]):
        if added["content"] not in doc._vocab:
            logger.warning(f"Adding missing added token {added['content']!r} to the vocabulary.")
            doc._add_to_vocab(added["content"])
        added["id"] = doc._vocab[added["content"]]
    if doc.unk_token is not None:
        doc.set_unk_token(doc.unk_token)
    if doc.pad_token is not None:
        doc.set_pad_token(doc.pad_token)
    # what transformers' PreTrainedTokenizerFast carries over (skeletoken's convert_transformers_tokenizer_to_model)
    config = _read_json(folder / "tokenizer_config.json")
    specials = {**config, **_read_json(folder / "special_tokens_map.json")}
    if config.get("add_prefix_space") and not _adds_prefix_space(doc.data.get("pre_tokenizer")):
        doc.data["normalizer"] = _with_prepend(doc.data.get("normalizer"), " ")
    unk = _special(specials.get("unk_token"))
    if unk is not None:
        doc.set_unk_token(unk)
    pad = _special(specials.get("pad_token"))
    if pad is not None:
        doc.set_pad_token(pad)
    max_length = config.get("model_max_length")
    if (
        isinstance(max_length, (int, float))
        and not isinstance(max_length, bool)
        and max_length < _UNSET_MODEL_MAX_LENGTH
    ):
        truncation = doc.data.get("truncation")
        if truncation is None:
            doc.data["truncation"] = {
                "direction": "Right",
                "max_length": int(max_length),
                "strategy": "LongestFirst",
                "stride": 0,
            }
        else:
            truncation["max_length"] = int(max_length)
    return doc


# ---------------------------------------------------------------------- the distilled vocabulary


@dataclass(frozen=True)
class DistillVocabulary:
    """What the distillation encodes and what the distilled model tokenizes with.

    Attributes:
        tokens: The distilled model's tokens in id order (one table row each).
        tokenizer: The distilled model's tokenizer.
        input_ids: Per token, the transformer's input ids (ids of the transformer's own vocabulary).
        pad_id: The id padding positions get (they are masked out).
    """

    tokens: list[str]
    tokenizer: Tokenizer
    input_ids: list[list[int]]
    pad_id: int


def _preprocess(word: str, tokenizer: Tokenizer) -> list[str]:
    """Skeletoken's ``Preprocessor.preprocess(word, had_initial_subword_prefix=True)``: normalise, then pre-tokenize."""
    text = tokenizer.normalizer.normalize_str(word) if tokenizer.normalizer is not None else word
    if not text:
        return []
    if tokenizer.pre_tokenizer is None:
        return [text]
    return [piece for piece, _ in tokenizer.pre_tokenizer.pre_tokenize_str(text)]


def build_vocabulary(
    original: TokenizerDocument,
    vocabulary: Sequence[str],
    token_remove_regex: re.Pattern[str] | None,
    model_vocab_size: int | None = None,
) -> DistillVocabulary:
    """The distilled vocabulary, as model2vec 0.10's ``distill`` builds it from the transformer's tokenizer.

    Args:
        original: The transformer's tokenizer (:func:`read_tokenizer`); not changed.
        vocabulary: Words to add (model2vec's ``vocabulary``).
        token_remove_regex: Tokens it matches (``re.match``) are removed, and words that become them are not added.
        model_vocab_size: The transformer's embedding rows, to check the input ids against (``None``: unchecked).

    Returns:
        The tokens, the new tokenizer and each token's transformer input ids.

    Raises:
        ValueError: The vocabulary is empty after the removals.
    """
    source_ids = original.vocabulary  # what the transformer's embedding rows are indexed by
    pruned = original.copy()
    pruned.prune_added_tokens()
    prefix = [source_ids[t] for t in pruned.bos or []]
    suffix = [source_ids[t] for t in pruned.eos or []]
    pad_token = pruned.pad_token
    pad_id = source_ids[pad_token] if pad_token is not None else 0

    doc = pruned.copy()
    byte_level = _find_pretokenizer(doc.data.get("pre_tokenizer"), "ByteLevel")
    if byte_level is not None:
        byte_level["add_prefix_space"] = True
    # model2vec's clean_and_create_vocabulary
    doc.data["post_processor"] = None
    if doc.data.get("padding") is not None:
        padding = doc.data["padding"]
        doc.data["padding"] = _benign_padding(padding["pad_id"], padding["pad_token"])
    internal = doc.sorted_vocabulary
    counts = {"regex": 0, "duplicate": 0, "empty": 0}
    if token_remove_regex is not None:
        removed = [t for t in internal if token_remove_regex.match(t)]
        doc.remove_tokens(removed)
        counts["regex"] = len(removed)
    tokenizer = doc.text_steps()
    seen = set(internal)  # the vocabulary before the removal, as model2vec
    to_add: list[str] = []
    multiword: list[str] = []
    seen_multiword: set[str] = set()
    for word in vocabulary:
        pieces = _preprocess(word, tokenizer)
        if not pieces:
            logger.debug(f"Token {word!r} was empty after preprocessing.")
            counts["empty"] += 1
            continue
        if len(pieces) > 1:
            logger.debug(
                f"Token {word!r} was split into {pieces} by the pre-tokenizer: adding it as a multi-word token."
            )
            if word in doc._vocab:
                doc.remove_tokens([word])
            form = tokenizer.normalizer.normalize_str(word) if tokenizer.normalizer is not None else word
            form = form.strip()
            if form in seen_multiword or form in doc._vocab:
                continue
            multiword.append(form)
            seen_multiword.add(form)
            continue
        token = pieces[0]
        if token in seen:
            logger.debug(f"Token {token!r} was already in the vocabulary.")
            counts["duplicate"] += 1
            continue
        if token_remove_regex is not None and token_remove_regex.match(token):
            logger.debug(f"Token {token!r} was removed due to regex match.")
            counts["regex"] += 1
            continue
        seen.add(token)
        to_add.append(token)
    doc.prune_added_tokens()
    doc.add_tokens(to_add)
    doc.add_added_tokens(multiword)
    logger.info(
        f"Vocabulary: {len(to_add)} words added, {len(multiword)} multi-word tokens, {counts['duplicate']} already "
        f"present, {counts['regex']} removed by token_remove_pattern, {counts['empty']} empty."
    )
    tokens = doc.sorted_vocabulary
    if not tokens:
        raise ValueError(
            "The vocabulary is empty after preprocessing: check token_remove_pattern, it removed every token."
        )

    # Each token as the transformer sees it: [bos] token [eos] for a token of its own vocabulary, else the
    # pruned tokenizer's encoding (special tokens added; padding off, unlike model2vec 0.10, which pads
    # such words to the tokenizer.json's fixed padding length and averages over the padding).
    pruned_vocab = pruned.vocabulary
    input_ids: list[list[int]] = [[*prefix, source_ids[t], *suffix] for t in tokens if t in pruned_vocab]
    new = [t for t in tokens if t not in pruned_vocab]
    if new:
        encoder = pruned.tokenizer()
        encoder.no_padding()
        pruned_tokens = {i: t for t, i in pruned_vocab.items()}
        # by id: an unknown piece's token text is the input text, not the unknown token
        encoded = {
            t: [source_ids[pruned_tokens[i]] for i in e.ids]
            for t, e in zip(new, encoder.encode_batch(new), strict=True)
        }
        known = iter(input_ids)
        input_ids = [encoded[t] if t in encoded else next(known) for t in tokens]
    if model_vocab_size is not None:
        bad = next((ids for ids in input_ids if any(i >= model_vocab_size for i in ids)), None)
        if bad is not None:
            raise ValueError(
                f"The tokenizer gives id {max(bad)}, beyond the transformer's {model_vocab_size} embedding rows: "
                "the tokenizer.json does not belong to this model."
            )
    return DistillVocabulary(tokens=tokens, tokenizer=doc.tokenizer(), input_ids=input_ids, pad_id=pad_id)

"""Exact, fast tokenization through a word cache.

A static embedding model does almost no arithmetic, so the Hugging Face tokenizer is the bottleneck.
Most tokenizer pipelines tokenize every *pre-token* (word) on its own: ``model(pre_token)`` does not
depend on the neighbouring words. Natural text repeats words, so :class:`FastTokenizer` normalises and
splits ASCII texts with the same rules in Python (``str.lower``, a compiled regex), looks every pre-token
up in a bounded ``dict`` and calls the tokenizer's model only for words it has not seen.

Exactness is the contract: ``encode_flat`` returns the ids of
``tokenizer.encode(text, add_special_tokens=False)`` for every text. The fast path is only enabled for
pipelines whose ASCII behaviour is known (the component types are whitelisted, and the normaliser's
action on every ASCII character and every pair of ASCII characters is read from the tokenizer itself
at construction). Any text the fast rules do not cover -- non-ASCII text, text containing an added
token such as ``[CLS]``, or a substring the pipeline treats specially -- is sent to the Hugging Face
tokenizer whole (all such texts of a call in one ``encode_batch_fast`` call).

Supported fast pipelines (ASCII text only):

* normaliser: ``None``, ``BertNormalizer``, ``Lowercase``, ``NFC``/``NFD``/``NFKC``/``NFKD``,
  ``StripAccents``, ``Precompiled`` (SentencePiece charsmaps) and ``Sequence`` of these;
* pre-tokeniser: ``BertPreTokenizer``, ``Whitespace``, ``WhitespaceSplit``, ``Metaspace`` (``split=True``,
  non-ASCII replacement) alone or after ``WhitespaceSplit``;
* model: ``WordPiece``, ``WordLevel``, ``Unigram`` or ``BPE`` without dropout;
* Llama-style BPE with no pre-tokeniser (normaliser ``Prepend("▁")`` + ``Replace(" ", "▁")``), when the
  vocabulary (or, failing that, the merges) proves that no merge can cross a word boundary (texts with a leading space or a double space are
  sent to the Hugging Face tokenizer).

Only numpy and tokenizers are imported.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any

import numpy as np
from tokenizers import Tokenizer

__all__ = ["FastTokenizer"]

# Rust ``char::is_whitespace`` restricted to ASCII (Python's ``str.isspace`` also counts \x1c-\x1f).
_RUST_WS = "\t\n\x0b\x0c\r "
# Rust ``char::is_ascii_punctuation``: every ASCII punctuation and symbol character.
_ASCII_PUNCT = "".join(chr(c) for c in range(128) if chr(c) in r"""!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~""")
_ASCII_WORD = "A-Za-z0-9_"  # Rust regex ``\w`` on ASCII

_CHAR_LOCAL_NORMALIZERS = {"BertNormalizer", "Lowercase", "NFC", "NFD", "NFKC", "NFKD", "StripAccents", "Precompiled"}
_POST_PROCESSORS = {"TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel"}
_MODELS = {"WordPiece", "WordLevel", "Unigram", "BPE"}


class _Unsupported(Exception):
    """The pipeline has no verified fast path (the message says why)."""


def _class(chars: str) -> str:
    """A regex character class body matching exactly ``chars``."""
    return "".join(re.escape(c) for c in chars)


@dataclass(frozen=True)
class _Splitter:
    """How normalised ASCII text becomes cache keys, and how a key becomes the model's pre-token."""

    # "whitespace": cache keys are the chunks of ``str.split()`` and ``pattern`` (if any) finds the
    # pre-tokens inside a chunk (a chunk's ids are its pre-tokens' ids: whitespace always separates).
    # "regex": ``pattern.findall`` gives the keys, each exactly one pre-token.
    # "space": ``str.split(" ")`` gives the keys (Llama-style BPE; texts with a leading or a double
    # space go to the HF tokenizer).
    mode: str
    pattern: re.Pattern[str] | None
    separators: str  # characters that only ever separate words (mapping one to another is harmless)
    key_prefix: str = ""  # pre-token = key_prefix + piece.replace(" ", space_replacement)
    space_replacement: str | None = None
    prepend_space: bool = False  # prepend " " to non-empty text that does not start with " "


@dataclass(frozen=True)
class _Plan:
    """Everything the fast path needs; immutable, so it is shared safely between threads."""

    splitter: _Splitter
    delete: re.Pattern[str] | None  # characters the normaliser removes
    lower: bool
    translate: dict[int, str] | None  # any remaining per-character mapping
    raw_substrings: tuple[str, ...]  # a text containing one of these goes to the HF tokenizer
    normalized_substrings: tuple[str, ...]  # ... or whose normalised form contains one of these
    special: re.Pattern[str] | None  # characters that start a raw substring or are deleted
    joiner: str  # an ASCII character not matched by ``special``


def _metaspace(spec: dict[str, Any]) -> tuple[str, str]:
    """Validate a Metaspace spec; returns ``(replacement, prepend_scheme)``."""
    replacement = spec.get("replacement")
    scheme = spec.get("prepend_scheme")
    if not isinstance(replacement, str) or len(replacement) != 1 or replacement.isascii():
        raise _Unsupported(f"Metaspace replacement {replacement!r} is not a single non-ASCII character")
    if spec.get("split") is not True:
        raise _Unsupported("Metaspace with split=False keeps the whole text as one pre-token")
    if scheme not in ("always", "never", "first"):
        raise _Unsupported(f"Metaspace prepend_scheme {scheme!r} is not supported")
    return replacement, scheme


def _splitter(spec: dict[str, Any] | None) -> _Splitter:
    """The ASCII splitting rules equivalent to a pre-tokenizer spec."""
    if spec is None:
        raise _Unsupported("no pre-tokenizer: the whole text is one pre-token")
    kind = spec.get("type")
    if kind == "Sequence":
        parts = spec.get("pretokenizers") or []
        if len(parts) == 1:
            return _splitter(parts[0])
        if [p.get("type") for p in parts] == ["WhitespaceSplit", "Metaspace"]:
            replacement, scheme = _metaspace(parts[1])
            if scheme == "first":
                raise _Unsupported("Metaspace prepend_scheme 'first' after another pre-tokenizer")
            return _Splitter("whitespace", None, _RUST_WS, key_prefix=replacement if scheme == "always" else "")
        raise _Unsupported(f"pre-tokenizer Sequence {[p.get('type') for p in parts]} is not supported")
    if kind == "BertPreTokenizer":
        punct = _class(_ASCII_PUNCT)
        return _Splitter("whitespace", re.compile(f"[^{punct}]+|[{punct}]"), _RUST_WS)
    if kind == "WhitespaceSplit":
        return _Splitter("whitespace", None, _RUST_WS)
    if kind == "Whitespace":
        return _Splitter("whitespace", re.compile(f"[{_ASCII_WORD}]+|[^{_ASCII_WORD}]+"), _RUST_WS)
    if kind == "Metaspace":
        replacement, scheme = _metaspace(spec)
        # " " -> replacement, then a split *before* every replacement character (MergedWithNext).
        return _Splitter(
            "regex", re.compile("[ ]?[^ ]+|[ ]"), "", space_replacement=replacement, prepend_space=scheme != "never"
        )
    raise _Unsupported(f"pre-tokenizer {kind!r} is not supported")


def _check_normalizer(spec: dict[str, Any] | None) -> None:
    if spec is None:
        return
    kind = spec.get("type")
    if kind == "Sequence":
        for part in spec.get("normalizers") or []:
            _check_normalizer(part)
        return
    if kind not in _CHAR_LOCAL_NORMALIZERS:
        raise _Unsupported(f"normalizer {kind!r} is not supported")


def _llama_bpe_splitter(config: dict[str, Any], tokenizer: Tokenizer) -> _Splitter:
    """Llama/SentencePiece-style BPE with no pre-tokenizer, when merges cannot cross a word boundary.

    The normaliser ``Prepend(r) + Replace(" ", r)`` turns ``"a b"`` into ``"▁a▁b"``, and the whole text
    is one pre-token. A merge joining two symbols across the boundary before an ``r`` produces a symbol
    with ``r`` after its first character. If every such merge result consists only of ``r`` (true for
    Llama: only ``"▁▁"``-style runs), it needs two adjacent ``r``. Texts without a leading space and
    without a double space have none, so every ``r`` starts an independent segment ``r + word``
    (``ignore_merges`` is rejected; ``r`` is in the vocabulary, so unknown-token fusing cannot cross it).
    """
    norm = config.get("normalizer") or {}
    parts = norm.get("normalizers") if norm.get("type") == "Sequence" else None
    if not parts or [p.get("type") for p in parts] != ["Prepend", "Replace"]:
        raise _Unsupported("no pre-tokenizer and the normalizer is not Prepend + Replace")
    replacement = parts[0].get("prepend")
    replace = parts[1]
    if (
        not isinstance(replacement, str)
        or len(replacement) != 1
        or replacement.isascii()
        or replace.get("pattern") != {"String": " "}
        or replace.get("content") != replacement
    ):
        raise _Unsupported("no pre-tokenizer and the normalizer is not Prepend(r) + Replace(' ', r)")
    model = config["model"]
    if model.get("type") != "BPE":
        raise _Unsupported("no pre-tokenizer and the model is not BPE")
    if model.get("ignore_merges") or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix"):
        raise _Unsupported("BPE with ignore_merges or subword prefix/suffix and no pre-tokenizer")
    if tokenizer.token_to_id(replacement) is None:
        raise _Unsupported(f"BPE vocabulary has no {replacement!r}")
    # Every merge result is a vocabulary token (tokenizers refuses to load a BPE model otherwise), so a
    # vocabulary with no such token proves it for all merges without parsing them.
    if any(replacement in token[1:] and set(token) != {replacement} for token in tokenizer.get_vocab(False)):
        for merge in json.loads(tokenizer.to_str())["model"].get("merges", []):
            left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
            merged = left + right
            if replacement in merged[1:] and set(merged) != {replacement}:
                raise _Unsupported(f"BPE merge {merge!r} can join symbols across a word boundary")
    return _Splitter("space", None, "", key_prefix=replacement)


def _state(component: Any) -> dict[str, Any] | None:
    """The JSON spec of a tokenizer component (``None`` if absent)."""
    if component is None:
        return None
    spec = json.loads(component.__getstate__())
    return spec if isinstance(spec, dict) else None


def _config(tokenizer: Tokenizer) -> dict[str, Any]:
    """The pipeline spec, read per component (cheap even for a large vocabulary)."""
    model = tokenizer.model
    model_spec: dict[str, Any] = {"type": type(model).__name__}
    if model_spec["type"] == "BPE":
        model_spec.update(
            dropout=model.dropout,
            ignore_merges=model.ignore_merges,
            continuing_subword_prefix=model.continuing_subword_prefix,
            end_of_word_suffix=model.end_of_word_suffix,
        )
    return {
        "normalizer": _state(tokenizer.normalizer),
        "pre_tokenizer": _state(tokenizer.pre_tokenizer),
        "post_processor": _state(tokenizer.post_processor),
        "model": model_spec,
    }


def _plan(tokenizer: Tokenizer, config: dict[str, Any]) -> _Plan:
    """Work out and verify the fast path for ``tokenizer`` (raises :class:`_Unsupported`)."""
    model = config.get("model") or {}
    if model.get("type") not in _MODELS:
        raise _Unsupported(f"model {model.get('type')!r} is not supported")
    if model.get("type") == "BPE" and model.get("dropout") not in (None, 0, 0.0):
        raise _Unsupported("BPE dropout makes tokenization random")
    post = config.get("post_processor")
    posts = (post.get("processors") or [] if post.get("type") == "Sequence" else [post]) if post else []
    for p in posts:
        if p.get("type") not in _POST_PROCESSORS:
            raise _Unsupported(f"post-processor {p.get('type')!r} is not supported")

    if config.get("pre_tokenizer") is None:
        splitter = _llama_bpe_splitter(config, tokenizer)
        normalize: Callable[[str], str] = str  # handled by the splitter (Prepend + Replace)
    else:
        splitter = _splitter(config["pre_tokenizer"])
        _check_normalizer(config.get("normalizer"))
        normalizer = tokenizer.normalizer
        normalize = str if normalizer is None else normalizer.normalize_str

    # The normaliser is character-local on ASCII (whitelisted types; SentencePiece charsmaps are
    # grapheme-local, and the only multi-character ASCII grapheme is "\r\n"). Read its action on every
    # character and every pair from the tokenizer itself; a pair that does not compose becomes a
    # substring that sends the text to the HF tokenizer.
    table = [normalize(chr(c)) for c in range(128)]
    if not all(out.isascii() for out in table):
        raise _Unsupported("the normalizer maps an ASCII character outside ASCII")
    # All 16384 pairs in one string first: for these character/grapheme-local normaliser types an odd
    # pair shows up there too, and the usual answer ("none") then costs one call instead of 16384.
    pairs = [chr(a) + chr(b) for a in range(128) for b in range(128)]
    odd_pairs: tuple[str, ...] = ()
    if normalize("".join(pairs)) != "".join(table[ord(p[0])] + table[ord(p[1])] for p in pairs):
        odd_pairs = tuple(p for p in pairs if normalize(p) != table[ord(p[0])] + table[ord(p[1])])
    if len(odd_pairs) > 8:
        raise _Unsupported(f"the normalizer is not character-local on ASCII ({odd_pairs[:8]!r}...)")

    added = tokenizer.get_added_tokens_decoder().values()
    if config.get("pre_tokenizer") is None and any(tok.normalized for tok in added):
        raise _Unsupported("an added token is matched on normalized text and there is no pre-tokenizer")
    raw_subs = {tok.content for tok in added if tok.content}
    norm_subs: set[str] = set()
    for tok in added:
        if tok.normalized and tok.content:
            norm_subs.add(tok.content)
            normalized = normalize(tok.content)
            if normalized:
                norm_subs.add(normalized)
    raw_subs.update(odd_pairs)
    if splitter.mode == "whitespace":
        # str.split() also splits at \x1c-\x1f, which Rust's char::is_whitespace does not.
        raw_subs.update(chr(c) for c in range(128) if any(x in table[c] for x in "\x1c\x1d\x1e\x1f"))

    # Express the table as "delete some characters, then maybe lowercase" when it is exactly that (up
    # to replacing a separator by another separator, which splits identically); else translate with it.
    seps = "" if any(c in s for s in norm_subs for c in splitter.separators) else splitter.separators
    deleted = "".join(chr(c) for c in range(128) if table[c] == "")
    lower = any(table[c] == chr(c).lower() != chr(c) for c in range(128))
    simple = all(
        out == ("" if char in deleted else char.lower() if lower else char)
        or (char in seps and len(out) == 1 and out in seps)
        for char, out in zip(map(chr, range(128)), table, strict=True)
    )
    if not simple:
        translate: dict[int, str] | None = {c: out for c, out in enumerate(table) if out != chr(c)}
        deleted, lower = "", False
    else:
        translate = None
    starts_set = {sub[0] for sub in raw_subs} | set(deleted)
    if translate is None:
        # Without deletions (texts with deletable characters are flagged anyway) the normalised text is
        # the raw text lowercased character by character, so an occurrence of a normalised substring
        # starts at a raw character that lowercases to its first character: flag those texts too.
        heads = {sub[0] for sub in norm_subs}
        starts_set |= {chr(c) for c in range(128) if (chr(c).lower() if lower else chr(c)) in heads}
    starts = "".join(sorted(starts_set))
    joiner = next(c for c in "\n" + "".join(map(chr, range(128))) if c not in starts)
    return _Plan(
        splitter=splitter,
        special=re.compile(f"[{_class(starts)}]") if starts else None,
        joiner=joiner,
        delete=re.compile(f"[{_class(deleted)}]") if deleted else None,
        lower=lower,
        translate=translate,
        raw_substrings=tuple(sorted(raw_subs)),
        normalized_substrings=tuple(sorted(norm_subs)),
    )


def _chunker(split: _Splitter) -> Callable[[str], list[str]]:
    """The function that cuts one normalised text into cache keys."""
    if split.mode == "whitespace":
        return str.split
    if split.mode == "space":
        return lambda text: text.split(" ")
    assert split.pattern is not None
    return split.pattern.findall


_MARK = "\x80"  # ends every text in a stream of cache keys (never inside a fast-path key: those are ASCII)
_MARK_JOIN = " \x80 "
_MARK_CODE = -1
_MISS = -(1 << 62)
_ID_BITS = 20
_ID_MASK = (1 << _ID_BITS) - 1
_COUNT_SHIFT = 60


class _Generation:
    """One generation of the word cache: key -> code, and the id tuples of words too long to pack.

    A code ``>= 0`` packs up to three ids below ``2**20`` and their count (``count << 60``); a code
    ``<= -2`` points at ``long[-2 - code]``; ``-1`` marks the end of a text. Entries are only ever added
    (under the tokenizer's lock), so a reader holding a generation always sees consistent codes.
    """

    __slots__ = ("codes", "long")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {_MARK: _MARK_CODE}
        self.long: list[tuple[int, ...]] = []

    def code(self, ids: tuple[int, ...]) -> int:
        if len(ids) <= 3 and all(0 <= t <= _ID_MASK for t in ids):
            code = len(ids) << _COUNT_SHIFT
            for k, t in enumerate(ids):
                code |= t << (_ID_BITS * k)
            return code
        self.long.append(ids)
        return -1 - len(self.long)


def _expand(codes: np.ndarray, long: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Flat int32 ids and per-text offsets from a stream of word codes (texts end at ``_MARK_CODE``)."""
    counts = np.where(codes >= 0, codes >> _COUNT_SHIFT, 0)
    side = np.flatnonzero(codes < _MARK_CODE)
    pieces: list[tuple[int, ...]] = []
    if len(side):
        pieces = [long[-2 - c] for c in codes[side].tolist()]
        counts[side] = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    starts = ends - counts
    within = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    packed = np.repeat(np.maximum(codes, 0), counts)
    ids = ((packed >> (within * _ID_BITS)) & _ID_MASK).astype(np.int32)
    if pieces:
        side_counts = counts[side]
        first = np.cumsum(side_counts) - side_counts
        at = np.repeat(starts[side] - first, side_counts) + np.arange(int(side_counts.sum()), dtype=np.int64)
        ids[at] = np.fromiter(chain.from_iterable(pieces), dtype=np.int32, count=len(at))
    offsets = np.zeros(int(np.count_nonzero(codes == _MARK_CODE)) + 1, dtype=np.int64)
    offsets[1:] = ends[codes == _MARK_CODE]
    return ids, offsets


def _assemble(n: int, groups: list[tuple[list[int], np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Put the ids of groups of texts (text indices, ids, offsets) back in text order."""
    if len(groups) == 1 and len(groups[0][0]) == n:
        return groups[0][1], groups[0][2]
    lengths = np.zeros(n, dtype=np.int64)
    for index, _, offsets in groups:
        lengths[np.asarray(index, dtype=np.int64)] = np.diff(offsets)
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_offsets[1:])
    ids = np.empty(int(out_offsets[-1]), dtype=np.int32)
    for index, group_ids, offsets in groups:
        counts = np.diff(offsets)
        shift = out_offsets[np.asarray(index, dtype=np.int64)] - offsets[:-1]
        ids[np.arange(len(group_ids), dtype=np.int64) + np.repeat(shift, counts)] = group_ids
    return ids, out_offsets


class FastTokenizer:
    """Exact drop-in for ``tokenizer.encode_batch(texts, add_special_tokens=False)`` ids, flattened.

    Args:
        tokenizer: A ``tokenizers.Tokenizer``. It is copied; padding and truncation are disabled on the
            copy, so ids are never truncated or padded.
        cache_size: Maximum number of words kept in the word -> ids cache (the cache is cleared when it
            would grow beyond this). ``0`` disables caching (every word is tokenized by the model).

    Raises:
        TypeError: If ``tokenizer`` is not a ``tokenizers.Tokenizer`` or ``cache_size`` is not an int.
        ValueError: If ``cache_size`` is negative.
    """

    def __init__(self, tokenizer: Tokenizer, *, cache_size: int = 1_000_000) -> None:
        if not isinstance(tokenizer, Tokenizer):
            raise TypeError(
                f"tokenizer must be a tokenizers.Tokenizer, got {type(tokenizer).__name__}; "
                "load one with tokenizers.Tokenizer.from_file(path)"
            )
        if isinstance(cache_size, bool) or not isinstance(cache_size, int):
            raise TypeError(f"cache_size must be an int, got {cache_size!r}")
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}; use 0 to disable the cache")
        if tokenizer.padding is not None or tokenizer.truncation is not None:
            tokenizer = Tokenizer.from_str(tokenizer.to_str())
            tokenizer.no_padding()
            tokenizer.no_truncation()
        self._tokenizer = tokenizer
        self._cache_size = cache_size
        self._state = _Generation()
        self._lock = threading.Lock()
        self._plan: _Plan | None
        try:
            self._plan = _plan(tokenizer, _config(tokenizer))
            self._reason = "fast path verified for this pipeline (ASCII texts)"
        except _Unsupported as exc:
            self._plan = None
            self._reason = str(exc)

    @property
    def fast_path(self) -> bool:
        """Whether a verified fast path applies to this tokenizer's pipeline."""
        return self._plan is not None

    @property
    def cached_words(self) -> int:
        """Number of words currently in the word -> ids cache (never more than ``cache_size``)."""
        return len(self._state.codes) - 1

    @property
    def fast_path_reason(self) -> str:
        """Why the fast path is (or is not) used for this tokenizer, in words."""
        return self._reason

    def encode_flat(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of ``texts``, concatenated.

        Args:
            texts: The texts (a sequence of ``str``; not a single ``str``).

        Returns:
            ``(ids, offsets)``: ``ids`` is an ``int32`` array of all ids, ``offsets`` an ``int64`` array
            of length ``len(texts) + 1``, such that ``ids[offsets[i]:offsets[i + 1]]`` equals
            ``tokenizer.encode(texts[i], add_special_tokens=False).ids``.

        Raises:
            TypeError: If ``texts`` is a ``str`` or contains something that is not a ``str``.
        """
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of str, not a single str; wrap it: [text]")
        texts = texts if isinstance(texts, list) else list(texts)
        if not all(map(str.__instancecheck__, texts)):
            bad = next(t for t in texts if not isinstance(t, str))
            raise TypeError(f"texts must contain only str, found {type(bad).__name__}: {bad!r}")
        plan = self._plan
        if plan is None:
            return self._hf_flat(texts)

        split = plan.splitter
        chunk = _chunker(split)
        flagged = self._flagged(texts, plan)
        lower = plan.lower
        # Normalised added tokens are covered by ``_flagged`` unless the normaliser translates.
        per_text = plan.translate is not None or split.prepend_space
        space_mode = split.mode == "space"
        joinable = not per_text and split.mode != "regex"

        # Texts take one of three routes: "joined" (the common case: ASCII, nothing special; all of
        # them are cut into cache keys by one C-level split of the joined batch), "careful" (keys
        # made with every check, one text at a time) or "hf" (the Hugging Face tokenizer).
        joined_idx: list[int] = []
        careful_keys: list[str] = []
        careful_idx: list[int] = []
        fallback: list[int] = []
        for i, text in enumerate(texts):
            if (
                joinable
                and text
                and i not in flagged
                and text.isascii()
                and (not space_mode or (text[0] != " " and "  " not in text))
            ):
                joined_idx.append(i)
                continue
            found = self._careful(text, plan, chunk)
            if found is None:
                fallback.append(i)
                continue
            careful_keys.extend(found)
            careful_keys.append(_MARK)
            careful_idx.append(i)

        groups: list[tuple[list[int], np.ndarray, np.ndarray]] = []
        if joined_idx:
            if len(joined_idx) == len(texts):
                batch = texts
            else:
                batch = [texts[i] for i in joined_idx]
            joined = _MARK_JOIN.join(batch) + _MARK_JOIN
            if space_mode:
                keys = joined.split(" ")
                keys.pop()  # the "" after the last marker
            else:
                keys = (joined.lower() if lower else joined).split()
            groups.append((joined_idx, *self._ids_from_keys(keys)))
        if careful_idx:
            groups.append((careful_idx, *self._ids_from_keys(careful_keys)))
        if fallback:
            groups.append((fallback, *self._hf_flat([texts[i] for i in fallback])))
        return _assemble(len(texts), groups)

    def encode_one(self, text: str) -> list[int]:
        """Token ids of one text: ``tokenizer.encode(text, add_special_tokens=False).ids``, with no array work.

        This is the short path of a single ``encode(str)`` call; :meth:`encode_flat` is the batch path.
        """
        plan = self._plan
        if plan is None:
            return list(self._tokenizer.encode(text, add_special_tokens=False).ids)
        split = plan.splitter
        keys: list[str] | None
        if (
            plan.translate is None
            and not split.prepend_space
            and split.mode != "regex"
            and text.isascii()
            and (plan.special is None or plan.special.search(text) is None)
        ):
            if split.mode == "whitespace":
                keys = (text.lower() if plan.lower else text).split()
            elif text[:1] != " " and "  " not in text:
                keys = text.split(" ") if text else []
            else:
                keys = self._careful(text, plan, _chunker(split))
        else:
            keys = self._careful(text, plan, _chunker(split))
        if keys is None:
            return list(self._tokenizer.encode(text, add_special_tokens=False).ids)
        state = self._state if self._cache_size else _Generation()
        codes = list(map(state.codes.get, keys))
        if None in codes:
            missing = [key for key, code in zip(keys, codes, strict=True) if code is None]
            new = self._tokenize_words(list(dict.fromkeys(missing)))
            with self._lock:
                table = self._store(state, new)
            codes = [table[key] if code is None else code for key, code in zip(keys, codes, strict=True)]
        ids: list[int] = []
        append = ids.append
        long = state.long
        for code in codes:
            if code is None:  # pragma: no cover - every miss was filled above
                raise AssertionError("unfilled word code")
            if code >= 0:
                count = code >> _COUNT_SHIFT
                append(code & _ID_MASK)
                if count > 1:
                    append((code >> _ID_BITS) & _ID_MASK)
                    if count > 2:
                        append((code >> (2 * _ID_BITS)) & _ID_MASK)
            else:
                ids.extend(long[-2 - code])
        return ids

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _flagged(texts: list[str], plan: _Plan) -> set[int]:
        """Indices of texts that may need deletions or contain (the start of) a fallback substring."""
        special = plan.special
        if special is None:
            return set()
        joined = plan.joiner.join(texts)
        positions = [m.start() for m in special.finditer(joined)]
        if not positions:
            return set()
        ends = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1)
        return set(np.searchsorted(ends, np.asarray(positions, dtype=np.int64), side="right").tolist())

    @staticmethod
    def _careful(text: str, plan: _Plan, chunk: Callable[[str], list[str]]) -> list[str] | None:
        """Cache keys of one text with every check; ``None`` if the HF tokenizer must handle it."""
        split = plan.splitter
        if (
            not text.isascii()
            or any(s in text for s in plan.raw_substrings)
            or (split.mode == "space" and (text.startswith(" ") or "  " in text))
        ):
            return None
        if plan.delete is not None:
            text = plan.delete.sub("", text)
        if plan.lower:
            text = text.lower()
        if plan.translate is not None:
            text = text.translate(plan.translate)
        if any(s in text for s in plan.normalized_substrings):
            return None
        if split.prepend_space and text and text[0] != " ":
            text = " " + text
        return chunk(text) if text else []

    def _hf_flat(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids and offsets straight from the HF tokenizer."""
        encodings = self._tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        all_ids = [e.ids for e in encodings]
        offsets = np.zeros(len(all_ids) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, all_ids), dtype=np.int64, count=len(all_ids)), out=offsets[1:])
        ids = np.fromiter(chain.from_iterable(all_ids), dtype=np.int32, count=int(offsets[-1]))
        return ids, offsets

    def _ids_from_keys(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids and offsets of texts given as cache keys, each text's keys followed by ``_MARK``."""
        state = self._state if self._cache_size else _Generation()
        codes = np.fromiter(map(state.codes.get, keys, repeat(_MISS)), dtype=np.int64, count=len(keys))
        miss = np.flatnonzero(codes == _MISS)
        if len(miss):
            miss_keys = [keys[i] for i in miss.tolist()]
            new = self._tokenize_words(list(dict.fromkeys(miss_keys)))
            with self._lock:
                table = self._store(state, new)
            codes[miss] = np.fromiter(map(table.__getitem__, miss_keys), dtype=np.int64, count=len(miss_keys))
        return _expand(codes, state.long)

    def _store(self, state: _Generation, new: dict[str, tuple[int, ...]]) -> dict[str, int]:
        """Codes of freshly tokenized words; adds them to the cache within its bound (caller holds the lock)."""
        table = {key: state.code(ids) for key, ids in new.items()}
        limit = self._cache_size
        if not limit or state is not self._state:
            return table
        if len(state.codes) - 1 + len(table) > limit:
            # Start a new generation for later calls; this call keeps using ``state`` (its codes refer to it).
            fresh = _Generation()
            for key in list(new)[:limit]:
                fresh.codes[key] = fresh.code(new[key])
            self._state = fresh
        else:
            state.codes.update(table)
        return table

    def _tokenize_words(self, keys: list[str]) -> dict[str, tuple[int, ...]]:
        """Run the tokenizer's model on the pre-token of each cache key."""
        assert self._plan is not None
        split = self._plan.splitter
        prefix, replacement = split.key_prefix, split.space_replacement
        inner = split.pattern.findall if split.mode == "whitespace" and split.pattern is not None else None
        tokenize = self._tokenizer.model.tokenize
        out: dict[str, tuple[int, ...]] = {}
        for key in keys:
            if inner is not None:  # a whitespace-free chunk: its pre-tokens, each tokenized on its own
                out[key] = tuple(token.id for piece in inner(key) for token in tokenize(prefix + piece))
            else:
                pre_token = key if replacement is None else key.replace(" ", replacement)
                out[key] = tuple(token.id for token in tokenize(prefix + pre_token))
        return out

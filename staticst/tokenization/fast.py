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
  vocabulary (or, failing that, the merges) proves that no merge can cross a word boundary (texts with a
  leading space or a double space are sent to the Hugging Face tokenizer).

The pipeline is verified and described as data by :mod:`staticst.tokenization.plan`; how each
pre-tokenizer family cuts text is in :mod:`staticst.tokenization.pretokenizers`; the cache itself is in
:mod:`staticst.tokenization.cache`. Every text takes one of three routes, decided in one place
(:meth:`FastTokenizer._route`): *joined* (plain ASCII: the keys of all such texts of a call come from one
C-level split of the joined batch), *careful* (keys made with every check, one text at a time) or *hf*
(the Hugging Face tokenizer).

Only numpy and tokenizers are imported.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from itertools import chain, repeat

import numpy as np
from tokenizers import Tokenizer

from staticst.tokenization.cache import MARK, MARK_JOIN, MISS, Generation, assemble, expand, ids_of_codes
from staticst.tokenization.guard import tokenizer_call
from staticst.tokenization.plan import Plan, build_plan
from staticst.tokenization.pretokenizers import Unsupported
from staticst.tokenization.reloadable import ReloadableTokenizer

__all__ = ["FastTokenizer", "hf_flat"]

JOINED, CAREFUL, HF = 0, 1, 2  # the routes a text can take


def hf_flat(tokenizer: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Ids (``int32``) and offsets (``int64``) of ``texts`` straight from the Hugging Face tokenizer."""
    encodings = tokenizer_call(tokenizer.encode_batch_fast, texts, add_special_tokens=False)
    all_ids = [e.ids for e in encodings]
    offsets = np.zeros(len(all_ids) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, all_ids), dtype=np.int64, count=len(all_ids)), out=offsets[1:])
    ids = np.fromiter(chain.from_iterable(all_ids), dtype=np.int32, count=int(offsets[-1]))
    return ids, offsets


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
        if not isinstance(tokenizer, (Tokenizer, ReloadableTokenizer)):
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
        self._state = Generation()
        self._lock = threading.Lock()
        self._plan: Plan | None
        try:
            self._plan = build_plan(tokenizer)
            self._reason = f"fast path verified for this pipeline (ASCII texts, {self._plan.family.name} family)"
        except Unsupported as exc:
            self._plan = None
            self._reason = str(exc)

    @property
    def fast_path(self) -> bool:
        """Whether a verified fast path applies to this tokenizer's pipeline."""
        return self._plan is not None

    @property
    def plan(self) -> Plan | None:
        """The verified plan (pre-tokenizer family and normaliser as data), or ``None``."""
        return self._plan

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
            return self.hf_flat(texts)

        flagged = self._flagged(texts, plan)
        joined_idx: list[int] = []
        careful_keys: list[str] = []
        careful_idx: list[int] = []
        fallback: list[int] = []
        for i, text in enumerate(texts):
            route, keys = self._route(text, i in flagged, plan)
            if route == JOINED:
                joined_idx.append(i)
            elif route == CAREFUL:
                assert keys is not None
                careful_keys.extend(keys)
                careful_keys.append(MARK)
                careful_idx.append(i)
            else:
                fallback.append(i)

        groups: list[tuple[list[int], np.ndarray, np.ndarray]] = []
        if joined_idx:
            batch = texts if len(joined_idx) == len(texts) else [texts[i] for i in joined_idx]
            joined = MARK_JOIN.join(batch) + MARK_JOIN
            keys = plan.family.batch_keys(joined.lower() if plan.lower else joined)
            groups.append((joined_idx, *self._ids_from_keys(keys)))
        if careful_idx:
            groups.append((careful_idx, *self._ids_from_keys(careful_keys)))
        if fallback:
            groups.append((fallback, *self.hf_flat([texts[i] for i in fallback])))
        return assemble(len(texts), groups)

    def encode_one(self, text: str) -> list[int]:
        """Token ids of one text: ``tokenizer.encode(text, add_special_tokens=False).ids``, with no array work.

        This is the short path of a single ``encode(str)`` call; :meth:`encode_flat` is the batch path.
        """
        plan = self._plan
        if plan is None:
            return list(tokenizer_call(self._tokenizer.encode, text, add_special_tokens=False).ids)
        flagged = plan.special is not None and plan.special.search(text) is not None
        route, keys = self._route(text, flagged, plan)
        if route == HF:
            return list(tokenizer_call(self._tokenizer.encode, text, add_special_tokens=False).ids)
        if route == JOINED:
            keys = plan.family.keys(text.lower() if plan.lower else text)
        assert keys is not None
        state = self._state if self._cache_size else Generation()
        codes = list(map(state.codes.get, keys))
        if None in codes:
            missing = [key for key, code in zip(keys, codes, strict=True) if code is None]
            new = self.tokenize_words(list(dict.fromkeys(missing)))
            with self._lock:
                table = self._store(state, new)
            codes = [table[key] if code is None else code for key, code in zip(keys, codes, strict=True)]
        return ids_of_codes(codes, state.long)  # type: ignore[arg-type]  # every None was filled above

    def hf_flat(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids (``int32``) and offsets straight from the Hugging Face tokenizer."""
        return hf_flat(self._tokenizer, texts)

    def tokenize_words(self, keys: list[str]) -> dict[str, tuple[int, ...]]:
        """The ids of each cache key, from the tokenizer's model run on the key's pre-tokens."""
        assert self._plan is not None
        family = self._plan.family
        tokenize = self._tokenizer.model.tokenize
        return {key: tuple(t.id for piece in family.pre_tokens(key) for t in tokenize(piece)) for key in keys}

    # -- internals -------------------------------------------------------------------------------

    @staticmethod
    def _route(text: str, flagged: bool, plan: Plan) -> tuple[int, list[str] | None]:
        """The route ``text`` takes (and its cache keys on the careful route): decided here only.

        Args:
            text: The raw text.
            flagged: ``text`` holds a character of ``plan.special`` (it may need deletions or contain the
                start of a substring that sends it to the Hugging Face tokenizer).
            plan: The verified plan.
        """
        family = plan.family
        if plan.joined_route and text and not flagged and text.isascii() and family.accepts(text):
            return JOINED, None
        if not text.isascii() or not family.accepts(text) or any(s in text for s in plan.raw_substrings):
            return HF, None
        if plan.delete is not None:
            text = plan.delete.sub("", text)
        if plan.lower:
            text = text.lower()
        if plan.translate is not None:
            text = text.translate(plan.translate)
        if any(s in text for s in plan.normalized_substrings):
            return HF, None
        if family.prepend_space and text and text[0] != " ":
            text = " " + text
        return CAREFUL, family.keys(text) if text else []

    @staticmethod
    def _flagged(texts: list[str], plan: Plan) -> set[int]:
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

    def _ids_from_keys(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Ids and offsets of texts given as cache keys, each text's keys followed by ``MARK``."""
        state = self._state if self._cache_size else Generation()
        codes = np.fromiter(map(state.codes.get, keys, repeat(MISS)), dtype=np.int64, count=len(keys))
        miss = np.flatnonzero(codes == MISS)
        if len(miss):
            miss_keys = [keys[i] for i in miss.tolist()]
            new = self.tokenize_words(list(dict.fromkeys(miss_keys)))
            with self._lock:
                table = self._store(state, new)
            codes[miss] = np.fromiter(map(table.__getitem__, miss_keys), dtype=np.int64, count=len(miss_keys))
        return expand(codes, state.long)

    def _store(self, state: Generation, new: dict[str, tuple[int, ...]]) -> dict[str, int]:
        """Codes of freshly tokenized words; adds them to the cache within its bound (caller holds the lock)."""
        table = {key: state.code(ids) for key, ids in new.items()}
        limit = self._cache_size
        if not limit or state is not self._state:
            return table
        if len(state.codes) - 1 + len(table) > limit:
            # Start a new generation for later calls; this call keeps using ``state`` (its codes refer to it).
            fresh = Generation()
            for key in list(new)[:limit]:
                fresh.codes[key] = fresh.code(new[key])
            self._state = fresh
        else:
            state.codes.update(table)
        return table

"""A model's Hugging Face tokenizer that can let go of its memory while the native tokenizer does the work.

``tokenizers`` keeps a large vocabulary in structures many times the size of its ``tokenizer.json``: a
276K-piece Unigram tokenizer holds about 310 MB per process, where the compiled native pipeline
(:mod:`staticst.tokenization.native`) that tokenizes for the kernel holds 16 MB. Every process that loads the
model (Ray actors, Spark Python workers, server and pool workers) would keep both. :class:`ReloadableTokenizer`
stands in for the tokenizer everywhere the package holds it (the model's parts, the engine's
:class:`~staticst.tokenization.text.TextTokenizer`, the word-cache fast path): the engine calls :meth:`release`
once a native pipeline tokenizes every text, keeping the tokenizer's JSON compressed (a few MB), and any later
use rebuilds the same tokenizer from it (its state, padding and truncation included) and keeps it again.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any, cast

from tokenizers import Tokenizer

__all__ = ["RELEASE_MIN_VOCAB", "ReloadableTokenizer", "real_tokenizer"]

#: The engine releases tokenizers of at least this many tokens (below it the saving is a few MB, and a
#: rebuild on the next use would cost more than it saves).
RELEASE_MIN_VOCAB = 100_000


class ReloadableTokenizer:
    """A ``tokenizers.Tokenizer`` (every attribute is the tokenizer's) whose Rust object can be released.

    Args:
        tokenizer: The tokenizer it stands for.
    """

    __slots__ = ("_lock", "_source", "_tokenizer", "releases")

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tokenizer: Tokenizer | None = tokenizer
        self._source: bytes | None = None
        self._lock = threading.Lock()
        self.releases = 0

    @classmethod
    def wrap(cls, tokenizer: Tokenizer) -> Tokenizer:
        """``tokenizer`` behind a :class:`ReloadableTokenizer` (itself if it is one), typed as what it stands for."""
        return tokenizer if isinstance(tokenizer, ReloadableTokenizer) else cast(Tokenizer, cls(tokenizer))

    @classmethod
    def _from_json(cls, source: bytes) -> ReloadableTokenizer:
        return cls(Tokenizer.from_str(zlib.decompress(source).decode("utf-8")))

    @property
    def loaded(self) -> bool:
        """Whether the Rust tokenizer is in memory now."""
        return self._tokenizer is not None

    def get(self) -> Tokenizer:
        """The tokenizer, rebuilt from its JSON if it was released."""
        tokenizer = self._tokenizer
        if tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    assert self._source is not None
                    self._tokenizer = Tokenizer.from_str(zlib.decompress(self._source).decode("utf-8"))
                tokenizer = self._tokenizer
        return tokenizer

    def release(self) -> None:
        """Let go of the Rust tokenizer (its JSON is kept, compressed, to rebuild it on the next use)."""
        with self._lock:
            if self._tokenizer is not None:  # the JSON of its state now (calls may have changed it since a load)
                self._source = zlib.compress(self._tokenizer.to_str().encode("utf-8"), 1)
                self._tokenizer = None
                self.releases += 1

    def to_str(self, pretty: bool = False) -> str:
        """The tokenizer's JSON (from the kept copy when it is released: no rebuild)."""
        source = self._source
        if self._tokenizer is None and source is not None and not pretty:
            return zlib.decompress(source).decode("utf-8")
        return str(self.get().to_str(pretty))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ReloadableTokenizer.__slots__:
            object.__setattr__(self, name, value)
        else:  # a settable property of the tokenizer (normalizer, pre_tokenizer, ...)
            setattr(self.get(), name, value)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        with self._lock:  # a released tokenizer pickles its kept JSON (no rebuild)
            source = self._source if self._tokenizer is None else None
        if source is None:
            source = zlib.compress(self.get().to_str().encode("utf-8"), 1)
        return (ReloadableTokenizer._from_json, (source,))

    def __repr__(self) -> str:
        return repr(self.get())


def real_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """The ``tokenizers.Tokenizer`` itself (what the public API hands out), whether or not it is wrapped."""
    return tokenizer.get() if isinstance(tokenizer, ReloadableTokenizer) else tokenizer

"""Tokens over HTTP: truncation at the model's token limit, ``/tokenize`` and ``/decode``.

A static model pools at most ``max_seq_length`` token ids of each text (``model.max_seq_length``; the first
ones, as sentence-transformers and model2vec do; model2vec also cuts a text to ``max_length * median token
length`` characters before tokenizing). text-embeddings-inference lets a request choose instead
(``truncate``, ``truncation_direction``), and :class:`Truncator` maps those choices onto the model:

* ``truncate: true`` (or absent, with the service's ``--auto-truncate``, the default): the model's own rule,
  exactly ``model.encode``.
* ``truncate: false``: no cut of any kind. A text (prompt included) of more than ``max_seq_length`` tokens
  is refused with a 413, as text-embeddings-inference refuses it; shorter texts are pooled whole (also
  past model2vec's character cut).
* ``truncation_direction: "left"``: the *last* ``max_seq_length`` tokens of the whole text are pooled;
  ``"right"``: the first ones.

Each rule other than the model's own is a copy of the model whose engine has other token settings
(``Embedder.with_settings``: the same table, tokenizer and word cache), made once when first asked for.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson

from staticst.server._errors import PAYLOAD_TOO_LARGE, RequestError
from staticst.server._spec import Truncation
from staticst.tokenization.guard import tokenizer_call

if TYPE_CHECKING:
    from collections.abc import Callable

    from staticst.model import StaticSentenceTransformer
    from staticst.server._validation import Limits

__all__ = [
    "CHUNK_CHARS",
    "DIRECTIONS",
    "Truncator",
    "chunks",
    "decode_run",
    "prompt_text",
    "token_limit",
    "tokenize_run",
]

CHUNK_CHARS = 65_536
"""Characters of text handed to the tokenizer at once by ``/tokenize`` and the ``truncate: false`` check (its
encodings hold ~100 bytes per token: a whole 16 MiB body at once would hold hundreds of MB)."""

DIRECTIONS = ("right", "left", "Right", "Left")
"""Accepted ``truncation_direction`` values: huggingface_hub sends lowercase, text-embeddings-inference's
own schema spells them capitalised."""


def token_limit(model: Any) -> int | None:
    """The model's token limit per text (``max_seq_length``), ``None`` when it has none."""
    limit = getattr(model, "max_seq_length", None)
    if limit is None or (isinstance(limit, float) and math.isinf(limit)):
        return None
    return int(limit)


def prompt_text(model: Any, prompt_name: str | None) -> str:
    """The text ``model.encode(..., prompt_name=prompt_name)`` prepends (the default prompt when ``None``)."""
    name = prompt_name if prompt_name is not None else getattr(model, "default_prompt_name", None)
    if not name:
        return ""
    return str((getattr(model, "prompts", None) or {}).get(name, ""))


def _with_rules(model: StaticSentenceTransformer, side: str, exact: bool) -> StaticSentenceTransformer:
    """``model`` truncating on ``side``; ``exact``: without the character cut (for ``truncate: false``)."""
    settings = model.tokenizer_settings
    char_limit = None if exact or side != settings.truncation_side else settings.char_limit
    wanted = dataclasses.replace(settings, truncation_side=side, char_limit=char_limit)  # type: ignore[arg-type]
    if wanted == settings:
        return model
    return model.with_tokenizer_settings(wanted)  # shares the table, prompts and caches


class Truncator:
    """Picks the model to encode a request with for its :class:`Truncation`, and refuses over-long texts.

    Args:
        model: The served model.
        auto_truncate: What a request without ``truncate`` gets (the service's ``--auto-truncate``).
    """

    def __init__(self, model: StaticSentenceTransformer, auto_truncate: bool) -> None:
        self.model = model
        self.auto_truncate = auto_truncate
        self.limit = token_limit(model)
        settings = getattr(model, "tokenizer_settings", None)
        self.side: str = getattr(settings, "truncation_side", "right")
        self._models: dict[tuple[bool, str], StaticSentenceTransformer] = {(False, self.side): model}

    def resolve(self, truncation: Truncation | None) -> tuple[StaticSentenceTransformer, bool]:
        """The model for a request, and whether its texts must be checked against the limit (``truncate: false``).

        Args:
            truncation: The request's choice (``None``: the defaults).

        Returns:
            ``(model, strict)``.
        """
        if truncation is None or self.limit is None:
            return self.model, False
        strict = not (self.auto_truncate if truncation.truncate is None else truncation.truncate)
        side = self.side if strict or truncation.direction is None else truncation.direction.lower()
        key = (strict, side)
        found = self._models.get(key)
        if found is None:
            found = self._models[key] = _with_rules(self.model, side, exact=strict)
        return found, strict

    def check(
        self, model: StaticSentenceTransformer, texts: list[str], prompt_name: str | None, param: Callable[[int], str]
    ) -> None:
        """Refuse (413) the first text with more tokens than the limit, its prompt included.

        Args:
            model: The model the texts are encoded with.
            texts: The texts, without their prompt.
            prompt_name: The request's prompt name (``None``: the model's default prompt).
            param: Names text ``i`` in the message (``inputs[3]``).

        Raises:
            RequestError: 413 naming the text, its token count and the limit.
        """
        limit = self.limit
        if limit is None:
            return
        prompt = prompt_text(model, prompt_name)
        full = [prompt + t for t in texts] if prompt else texts
        for start, part in chunks(full):  # bounded memory: the tokenizer's encodings of one chunk at a time
            encodings = tokenizer_call(model.tokenizer.encode_batch, part, add_special_tokens=False)
            for i, encoding in enumerate(encodings, start):
                count = len(encoding.ids)
                if count <= limit:
                    continue
                with_prompt = " (with its prompt)" if prompt else ""
                raise RequestError(
                    PAYLOAD_TOO_LARGE,
                    f"{param(i)} has {count} tokens{with_prompt}; the model reads at most {limit} (max_seq_length) "
                    "and the request asked not to truncate (truncate: false): shorten it, or send truncate: true",
                    error_type="input_too_long",
                    param=param(i),
                    limit=limit,
                    value=count,
                )


def chunks(texts: list[str], max_chars: int = CHUNK_CHARS) -> Iterator[tuple[int, list[str]]]:
    """``(start, texts[start:end])`` in order, each part at most ``max_chars`` characters (or one text)."""
    start, size = 0, 0
    for end, text in enumerate(texts):
        if size and size + len(text) > max_chars:
            yield start, texts[start:end]
            start, size = end, 0
        size += len(text)
    if start < len(texts):
        yield start, texts[start:]


def _tokens_json(text: str, enc: Any) -> bytes:
    """One text's tokens as text-embeddings-inference lists them, as JSON bytes."""
    return orjson.dumps(
        [
            {"id": i, "text": token, "special": True, "start": None, "stop": None}
            if special
            else {"id": i, "text": text[start:stop], "special": False, "start": start, "stop": stop}
            for i, token, (start, stop), special in zip(
                enc.ids, enc.tokens, enc.offsets, enc.special_tokens_mask, strict=True
            )
        ]
    )


def tokenize_run(
    model: StaticSentenceTransformer, texts: list[str], kwargs: dict[str, Any], limits: Limits
) -> list[bytes]:
    """``/tokenize``: each text's tokens as text-embeddings-inference lists them, rendered to JSON.

    One ``{"id", "text", "special", "start", "stop"}`` per token of the model's tokenizer, with no
    truncation: ``start`` / ``stop`` are character offsets into the text (its prompt prepended) and ``text``
    is that slice; special tokens (added when ``add_special_tokens``; the model never pools them) have their
    token string as ``text`` and null offsets.

    The work is bounded: texts are tokenized :data:`CHUNK_CHARS` characters at a time, each text's list is
    rendered to JSON bytes at once (no Python object per token is kept), and a request whose texts hold more
    than ``limits.max_tokenize_tokens`` tokens in all is refused with a 413 as soon as the count passes it.

    Returns:
        One JSON array (bytes) per text.

    Raises:
        RequestError: 413 when the texts hold more tokens than ``limits.max_tokenize_tokens``.
    """
    prompt = prompt_text(model, kwargs.get("prompt_name"))
    full = [prompt + t for t in texts] if prompt else texts
    special = bool(kwargs.get("add_special_tokens", True))
    limit = limits.max_tokenize_tokens
    parts: list[bytes] = []
    total = 0
    for start, part in chunks(full):
        encodings = tokenizer_call(model.tokenizer.encode_batch, part, add_special_tokens=special)
        total += sum(len(enc.ids) for enc in encodings)
        if total > limit:
            raise RequestError(
                PAYLOAD_TOO_LARGE,
                f"the texts hold more than {limit} tokens (over {total} in inputs[0..{start + len(part) - 1}]); "
                f"/tokenize lists at most {limit} per request (server option --max-tokenize-tokens): send fewer "
                "or shorter texts per request",
                error_type="payload_too_large",
                param="inputs",
                limit=limit,
                value=total,
            )
        parts.extend(_tokens_json(text, enc) for text, enc in zip(part, encodings, strict=True))
        del encodings
    return parts


def decode_run(
    model: StaticSentenceTransformer, ids: list[list[int]], kwargs: dict[str, Any], limits: Limits
) -> list[str]:
    """``/decode``: the text of each sequence of token ids (the tokenizer's decoder)."""
    skip = bool(kwargs.get("skip_special_tokens", True))
    return list(tokenizer_call(model.tokenizer.decode_batch, ids, skip_special_tokens=skip))

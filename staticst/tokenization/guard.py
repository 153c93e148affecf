"""One wrapper around calls into the Hugging Face tokenizer: a Rust panic becomes a :class:`TokenizerError`.

``tokenizers`` is Rust behind pyo3: a panic inside it (for example the Oniguruma regex of a ``Split``
pre-tokenizer or a ``Replace`` normalizer hitting its backtracking limit on a text, as ``(a|a)+b`` does
on ``"aaa...c"``) reaches Python as ``pyo3_runtime.PanicException``, a ``BaseException`` that
``except Exception`` does not catch. :func:`tokenizer_call` is the one place it is turned into an error of
staticst's tree that names the text. (Rust's panic hook still prints its message, and a backtrace when
``RUST_BACKTRACE`` is set, to stderr: that is the library's own, process-wide hook, left alone.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from staticst.errors import TokenizerError

__all__ = ["is_panic", "tokenizer_call"]

T = TypeVar("T")
_SHOWN = 60


def is_panic(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust panic surfaced by pyo3 (``pyo3_runtime.PanicException``)."""
    return type(exc).__name__ == "PanicException" and type(exc).__module__ == "pyo3_runtime"


def _failing_member(tokenizer: Any, pair: Sequence[str]) -> str:
    """The text of a pair the tokenizer panics on alone (the first one), else both joined by a space."""
    single = getattr(tokenizer, "encode", None)
    for text in pair:
        try:
            if single is not None:
                single(text)
        except BaseException as exc:
            if is_panic(exc):
                return text
            raise
    return " ".join(pair)


def _first_failing(tokenizer: Any, texts: Sequence[Any], kwargs: dict[str, Any]) -> int | None:
    """The index of the first text the tokenizer panics on alone (only called after a batch panicked)."""
    single = getattr(tokenizer, "encode", None)
    if single is None:
        return None
    options = {k: v for k, v in kwargs.items() if k == "add_special_tokens"}
    for i, text in enumerate(texts):
        try:
            if isinstance(text, (tuple, list)) and len(text) == 2:  # a text pair: encode(text, pair)
                single(text[0], text[1], **options)
            else:
                single(text, **options)
        except BaseException as exc:
            if is_panic(exc):
                return i
            raise
    return None


def tokenizer_call(call: Callable[..., T], texts: Any, /, **kwargs: Any) -> T:
    """``call(texts, **kwargs)``, a method of a ``tokenizers.Tokenizer``, with a panic raised as TokenizerError.

    Args:
        call: The bound method (``tokenizer.encode``, ``encode_batch``, ``encode_batch_fast``, ``decode_batch``).
        texts: Its first argument: one text or a list of them (or of id lists for ``decode_batch``).
        **kwargs: Its keyword arguments.

    Returns:
        What ``call`` returns.

    Raises:
        TokenizerError: The tokenizer panicked; the message names the text (for a batch, the first text that
            fails on its own), the tokenizer's reason and the fix. ``.text`` holds that text, ``.index`` its
            position in a batch.
    """
    try:
        return call(texts, **kwargs)
    except BaseException as exc:
        if not is_panic(exc):
            raise
        batch = isinstance(texts, (list, tuple))
        index = _first_failing(getattr(call, "__self__", None), texts, kwargs) if batch else None
        text = texts[index] if batch and index is not None else None if batch else texts
        if isinstance(text, (tuple, list)) and len(text) == 2 and all(isinstance(t, str) for t in text):
            text = _failing_member(getattr(call, "__self__", None), text)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(text, str):
            shown = repr(text) if len(text) <= _SHOWN else f"{text[:_SHOWN]!r}... ({len(text)} characters)"
            where = f"text {index} of the batch, {shown}" if index is not None else shown
        else:
            where = "a text of the batch" if text is None else f"the input {str(text)[:_SHOWN]}"
        raise TokenizerError(
            f"The model's tokenizer failed on {where}: {reason}. This is the Hugging Face tokenizer's own failure "
            "(e.g. a regex of a Split pre-tokenizer or Replace normalizer in tokenizer.json that backtracks too much "
            "on this text): change or shorten the text, or fix that pattern in the model's tokenizer.json.",
            text=text if isinstance(text, str) else None,
            index=index,
        ) from exc

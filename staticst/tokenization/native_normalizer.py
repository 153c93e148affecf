"""The tokenizer's normaliser compiled to a native program (``staticst._kernel.Normalizer``).

:func:`compile_normalizer` reads the ``normalizer`` section of ``tokenizer.to_str()`` and compiles it to the
kernel's steps, or refuses with a reason naming the component (for example "Replace with a regex pattern
...", "the normalizer 'X' is not implemented natively"); a refused pipeline takes the Hugging Face tokenizer (the exact slow path). Every Hugging Face
normaliser is native except ``Replace`` with a regex other than a literal or a run of one character
(``x+``, ``x{n,}``), and any type this module does not know.

The compiled normaliser is exact against the ``tokenizers`` version its Unicode tables were probed with
(``_kernel.UNICODE_TABLES``; see ``tools/gen_unicode.py``): where that version disagrees with the tables on a
code point, ``normalize`` answers ``None`` for a text holding it (the caller takes the slow path), never a
different string. Under another installed ``tokenizers`` version a pipeline that depends on the tables is
refused, with that reason.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tokenizers

__all__ = ["NormalizerCompilation", "compile_normalizer", "normalizer_steps"]

try:
    from staticst import _kernel  # typed by staticst/_kernel.pyi
except ImportError:  # no compiler at install time, or STATICST_NO_KERNEL=1
    _kernel = None  # type: ignore[assignment]  # the stub types the module; None: no native normaliser

if TYPE_CHECKING:
    from staticst._kernel import Normalizer

Step = tuple[Any, ...]

# steps whose result depends on the Unicode tables (the rest: fixed byte or string rules)
_TABLE_STEPS = {
    "bert_clean",
    "bert_cjk",
    "bert_strip",
    "lowercase",
    "nfd",
    "nfkd",
    "nfc",
    "nfkc",
    "strip_accents",
    "strip",
    "precompiled",
}


class _Refused(Exception):
    """A normaliser component with no native equivalent; its message is the reason."""


@dataclass(frozen=True)
class NormalizerCompilation:
    """What :func:`compile_normalizer` made of a tokenizer's normaliser.

    Attributes:
        normalizer: the ``_kernel.Normalizer``, or ``None`` when the pipeline takes the slow path.
        reason: why it is not native (``None`` when it is).
        steps: the compiled steps (empty when refused).
    """

    normalizer: Normalizer | None
    reason: str | None
    steps: tuple[Step, ...]


def _literal_regex(pattern: str) -> str | None:
    """The text an Oniguruma regex matches when it is a plain literal (escapes allowed), else None."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 >= len(pattern):
                return None
            nxt = pattern[i + 1]
            if nxt.isalnum() or nxt.isspace() or ord(nxt) >= 0x80:
                return None  # \s, \d, \n, \x41, ...: a class or a code, not a literal
            out.append(nxt)
            i += 2
            continue
        if c in ".^$|?*+()[]{}":
            return None
        out.append(c)
        i += 1
    return "".join(out)


_RUN = re.compile(r"^(\\[^0-9A-Za-z\s]|[^\\.^$|?*+()\[\]{}])(\+|\{([0-9]+),\})$")


def _regex_steps(pattern: str, content: str) -> list[Step]:
    literal = _literal_regex(pattern)
    if literal is not None:
        if not literal:
            raise _Refused("Replace with an empty pattern")
        return [("replace", literal, content)]
    m = _RUN.match(pattern)
    if m:
        char = m.group(1)[-1]
        minimum = 1 if m.group(2) == "+" else int(m.group(3))
        if 1 <= minimum <= 1_000_000:
            return [("replace_run", char, minimum, content)]
    raise _Refused(f"Replace with a regex pattern {pattern!r} (only literals and runs of one character are native)")


def _steps(section: dict[str, Any] | None) -> list[Step]:
    if section is None:
        return []
    kind = section.get("type")
    if kind == "Sequence":
        out: list[Step] = []
        for sub in section.get("normalizers") or []:
            out += _steps(sub)
        return out
    if kind == "BertNormalizer":
        lowercase = bool(section.get("lowercase", True))
        strip = section.get("strip_accents")
        strip = lowercase if strip is None else bool(strip)  # tokenizers: None follows lowercase
        out = []
        if section.get("clean_text", True):
            out.append(("bert_clean",))
        if section.get("handle_chinese_chars", True):
            out.append(("bert_cjk",))
        if strip:
            out.append(("bert_strip",))
        if lowercase:
            out.append(("lowercase",))
        return out
    simple = {
        "Lowercase": "lowercase",
        "NFD": "nfd",
        "NFKD": "nfkd",
        "NFC": "nfc",
        "NFKC": "nfkc",
        "StripAccents": "strip_accents",
        "Nmt": "nmt",
        "ByteLevel": "bytelevel",
    }
    if kind in simple:
        return [(simple[kind],)]
    if kind == "Strip":
        left, right = bool(section.get("strip_left", True)), bool(section.get("strip_right", True))
        return [("strip", left, right)] if left or right else []
    if kind == "Prepend":
        prepend = section.get("prepend", "")
        return [("prepend", prepend)] if prepend else []
    if kind == "Replace":
        pattern = section.get("pattern") or {}
        content = section.get("content", "")
        if "String" in pattern:
            if not pattern["String"]:
                raise _Refused("Replace with an empty pattern")
            return [("replace", pattern["String"], content)]
        if "Regex" in pattern:
            return _regex_steps(pattern["Regex"], content)
        raise _Refused(f"Replace with a pattern of unknown form {pattern!r}")
    if kind == "Precompiled":
        charsmap = section.get("precompiled_charsmap")
        if not charsmap:
            raise _Refused("Precompiled without a precompiled_charsmap")
        return [("precompiled", base64.b64decode(charsmap))]
    raise _Refused(f"the normalizer {kind!r} is not implemented natively")


def normalizer_steps(section: dict[str, Any] | None) -> tuple[list[Step] | None, str | None]:
    """The kernel steps of a ``tokenizer.json`` normalizer section, or ``(None, reason)`` when refused."""
    try:
        return _steps(section), None
    except _Refused as exc:
        return None, str(exc)


def compile_normalizer(tokenizer: Any) -> NormalizerCompilation:
    """Compile a tokenizer's normaliser to a ``_kernel.Normalizer``, or say why it cannot be.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``, its JSON string, or the parsed JSON (a dict).

    Returns:
        A :class:`NormalizerCompilation`: ``normalizer`` set, or ``reason`` naming the component that stays on
        the Hugging Face path.
    """
    if isinstance(tokenizer, dict):
        spec = tokenizer
    elif isinstance(tokenizer, str):
        spec = json.loads(tokenizer)
    else:
        spec = json.loads(tokenizer.to_str())
    steps, reason = normalizer_steps(spec.get("normalizer"))
    if steps is None:
        return NormalizerCompilation(None, reason, ())
    if _kernel is None:
        return NormalizerCompilation(None, "the compiled kernel is not built", ())
    checked = _kernel.UNICODE_TABLES["tokenizers"]
    if checked != tokenizers.__version__ and any(s[0] in _TABLE_STEPS for s in steps):
        return NormalizerCompilation(
            None,
            f"tokenizers {tokenizers.__version__} is installed but the Unicode tables were checked against "
            f"tokenizers {checked} (regenerate them: python tools/gen_unicode.py)",
            (),
        )
    return NormalizerCompilation(_kernel.Normalizer(steps), None, tuple(steps))

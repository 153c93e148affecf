"""The native tokenizer: a ``tokenizers.Tokenizer`` compiled into the kernel's pipeline, or refused with the reason.

:func:`compile_pipeline` reads the tokenizer's pipeline component by component and builds a
``staticst._kernel.Pipeline`` that tokenizes any text in C exactly as
``tokenizer.encode(text, add_special_tokens=False).ids`` does:

1. **added tokens** with ``normalized=False`` are cut out of the raw text (leftmost-longest, with their
   ``single_word`` / ``lstrip`` / ``rstrip``), tokens with ``normalized=True`` out of each normalised piece;
2. the **normaliser** (:mod:`staticst.tokenization.native_normalizer`), with a 128-entry table for ASCII pieces
   read off the tokenizer itself when the normaliser maps ASCII character by character;
3. the **pre-tokenizers** (``csrc/pretok.c``): BertPreTokenizer, Whitespace, WhitespaceSplit, Metaspace, ByteLevel,
   Punctuation, Digits, CharDelimiterSplit, Split (a string, the GPT-2 regex or the cl100k / Llama-3 / Qwen2
   regex) and Sequence;
4. the **model** (:mod:`staticst.tokenization.native_model`): WordPiece, Unigram or BPE, behind the kernel's word
   table (a word's key is its pre-token, so a hit is exactly the model's output).

The post-processor does not matter (the ids are taken without special tokens), nor do the decoder, padding and
truncation. Anything else -- another pre-tokenizer, a regex the kernel does not implement, a model or normaliser
the kernel has no native form of -- is refused by name: the kernel then takes the word-cache plan
(:mod:`staticst.tokenization.plan`) or the Hugging Face tokenizer, and ``info()`` says which and why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tokenizers
from tokenizers import Tokenizer

from staticst.tokenization.pretokenizers import Unsupported

__all__ = [
    "NativePipeline",
    "compile_added_tokens",
    "compile_ascii_table",
    "compile_pipeline",
    "compile_pretokenizer",
]

try:
    from staticst import _kernel  # typed by staticst/_kernel.pyi
except ImportError:  # no compiled kernel: nothing here is used
    _kernel = None  # type: ignore[assignment]  # the stub types the module; None: no native pipeline

if TYPE_CHECKING:
    from staticst._kernel import Normalizer, Pipeline, TokenModel

# csrc/pipeline.h: enum st_pt_kind, enum st_behavior, enum st_prepend and the class bits
BERT, WHITESPACE, WSSPLIT, CLASS, CHAR, STRING, GPT2, CL100K, METASPACE, BYTELEVEL, RUNSPLIT = range(11)
BEHAVIORS = {"Removed": 0, "Isolated": 1, "MergedWithPrevious": 2, "MergedWithNext": 3, "Contiguous": 4}
PREPEND = {"always": 0, "first": 1, "never": 2}
C_PUNCT, C_NUM = 0x02, 0x04

#: The GPT-2 split (ByteLevel's own regex), as tokenizers writes it.
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_CL100K_HEAD = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
_CL100K_TAIL = r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
#: The cl100k family (GPT-4, Llama 3: \p{N}{1,3}; Qwen2: \p{N}): the number part -> at most this many digits.
CL100K_NUMBERS = {r"\p{N}{1,3}": 3, r"\p{N}": 1, r"\p{N}+": 0}
_REGEX_META = set(r"\.^$|?*+()[]{}")
#: Operations that ask no Unicode class (their result does not depend on the generated tables).
_TABLE_FREE = {CHAR, STRING, METASPACE, RUNSPLIT}


@dataclass(frozen=True)
class NativePipeline:
    """A compiled pipeline and what it is, in words (shown by ``info()``)."""

    pipeline: Pipeline
    description: str


def _state(component: Any) -> dict[str, Any] | None:
    if component is None:
        return None
    spec = json.loads(component.__getstate__())
    return spec if isinstance(spec, dict) else None


def _behavior(spec: dict[str, Any], default: str = "Isolated") -> int:
    name = spec.get("behavior", default)
    if name not in BEHAVIORS:
        raise Unsupported(f"pre-tokenizer {spec.get('type')} behavior {name!r} is not supported")
    return BEHAVIORS[name]


def _split_op(spec: dict[str, Any]) -> dict[str, Any]:
    """A ``Split`` pre-tokenizer: a literal string or one of the regexes the kernel implements by hand."""
    pattern = spec.get("pattern") or {}
    behavior = _behavior(spec, "Removed")
    invert = int(bool(spec.get("invert")))
    if "String" in pattern:
        text = pattern["String"]
    elif "Regex" in pattern:
        regex = pattern["Regex"]
        if regex == GPT2_PATTERN:
            return {"kind": GPT2, "behavior": behavior, "invert": invert}
        if regex.startswith(_CL100K_HEAD) and regex.endswith(_CL100K_TAIL):
            numbers = regex[len(_CL100K_HEAD) : len(regex) - len(_CL100K_TAIL)]
            if numbers in CL100K_NUMBERS:
                return {"kind": CL100K, "behavior": behavior, "invert": invert, "num_max": CL100K_NUMBERS[numbers]}
        if not regex or any(c in _REGEX_META for c in regex):
            raise Unsupported(
                f"Split regex {regex!r} is not one the kernel implements (the GPT-2 and cl100k / Llama-3 / Qwen2 "
                "patterns, and literal strings)"
            )
        text = regex  # a regex without metacharacters is the string itself
    else:
        raise Unsupported(f"Split pattern {pattern!r} is not supported")
    if not text:
        raise Unsupported("Split with an empty pattern")
    if len(text) == 1:
        return {"kind": CHAR, "ch": text, "behavior": behavior, "invert": invert}
    return {"kind": STRING, "pattern": text, "behavior": behavior, "invert": invert}


def _ops(spec: dict[str, Any]) -> list[dict[str, Any]]:
    kind = spec.get("type")
    if kind == "Sequence":
        return [op for part in spec.get("pretokenizers") or [] for op in _ops(part)]
    if kind == "BertPreTokenizer":
        return [{"kind": BERT}]
    if kind == "Whitespace":
        return [{"kind": WHITESPACE}]
    if kind == "WhitespaceSplit":
        return [{"kind": WSSPLIT}]
    if kind == "Punctuation":
        return [{"kind": CLASS, "classes": C_PUNCT, "behavior": _behavior(spec)}]
    if kind == "Digits":
        return [{"kind": CLASS, "classes": C_NUM, "behavior": 1 if spec.get("individual_digits") else 4}]
    if kind == "CharDelimiterSplit":
        delimiter = spec.get("delimiter")
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise Unsupported(f"CharDelimiterSplit delimiter {delimiter!r} is not one character")
        return [{"kind": CHAR, "ch": delimiter, "behavior": 0}]
    if kind == "Split":
        return [_split_op(spec)]
    if kind == "Metaspace":
        replacement = spec.get("replacement")
        scheme = spec.get("prepend_scheme", "always")
        if not isinstance(replacement, str) or len(replacement) != 1:
            raise Unsupported(f"Metaspace replacement {replacement!r} is not one character")
        if scheme not in PREPEND:
            raise Unsupported(f"Metaspace prepend_scheme {scheme!r} is not supported")
        return [
            {"kind": METASPACE, "ch": replacement, "prepend": PREPEND[scheme], "split": int(spec.get("split", True))}
        ]
    if kind == "ByteLevel":
        return [
            {
                "kind": BYTELEVEL,
                "prepend": int(bool(spec.get("add_prefix_space"))),
                "split": int(spec.get("use_regex", True)),
            }
        ]
    raise Unsupported(f"pre-tokenizer {kind!r} is not implemented natively")


def compile_pretokenizer(spec: dict[str, Any] | None) -> tuple[list[dict[str, Any]], bool]:
    """The kernel's operations for a pre-tokenizer spec, and whether a word's key is its text before ByteLevel.

    A final ByteLevel's byte mapping is left to the model's input (the key stays the raw text, shorter).

    Raises:
        Unsupported: A pre-tokenizer or pattern the kernel does not implement (the message names it).
    """
    if spec is None:
        return [], False
    ops = _ops(spec)
    if len(ops) > 16:
        raise Unsupported(f"a pre-tokenizer Sequence of {len(ops)} operations (at most 16)")
    defer = bool(ops) and ops[-1]["kind"] == BYTELEVEL
    if defer:
        ops[-1]["map"] = 0
    return ops, defer


#: Normaliser types whose action on a string is the concatenation of their action on its characters, when it
#: is so on every ASCII character and pair (read from the tokenizer): the ASCII table is exact for them.
_TABLE_NORMALIZERS = {
    "BertNormalizer",
    "Lowercase",
    "NFC",
    "NFD",
    "NFKC",
    "NFKD",
    "StripAccents",
    "Precompiled",
    "Prepend",
}


def _normalizer_types(spec: dict[str, Any] | None) -> list[dict[str, Any]]:
    if spec is None:
        return []
    if spec.get("type") == "Sequence":
        return [part for sub in spec.get("normalizers") or [] for part in _normalizer_types(sub)]
    return [spec]


def _table_ok(spec: dict[str, Any]) -> bool:
    if spec.get("type") in _TABLE_NORMALIZERS:
        return True
    pattern = spec.get("pattern") or {}
    return spec.get("type") == "Replace" and len(pattern.get("String") or "") == 1


def compile_ascii_table(
    normalize: Callable[[str], str], spec: dict[str, Any] | None
) -> tuple[tuple[str, ...], str, tuple[str, ...]] | None:
    """The normaliser on ASCII as ``(table, prefix, odd pairs)``, read from the tokenizer, or ``None``.

    ``normalize(text) == prefix + table[c0] + table[c1] + ...`` for non-empty output, except for texts holding
    one of the odd pairs (they take the normaliser itself). ``None`` when the normaliser is not made of types
    for which that extends from pairs to whole texts, or when it does not hold on ASCII.
    """
    parts = _normalizer_types(spec)
    if not parts or not all(_table_ok(part) for part in parts):
        return None
    outs = [normalize(chr(c)) for c in range(128)]
    nonempty = [out for out in outs if out]
    prefix = ""
    if nonempty:
        first = nonempty[0]
        k = 0
        while k < len(first) and all(len(out) > k and out[k] == first[k] for out in nonempty):
            k += 1
        prefix = first[:k] if any(p.get("type") == "Prepend" for p in parts) else ""
    table = tuple(out[len(prefix) :] for out in outs)
    if any(normalize(chr(c)) != (prefix + table[c] if table[c] else "") for c in range(128)):
        return None
    if any(len(out.encode("utf-8")) > 8 for out in table) or len(prefix.encode("utf-8")) > 8:
        return None

    def expected(text: str) -> str:
        body = "".join(table[ord(c)] for c in text)
        return prefix + body if body else ""

    pairs = [chr(a) + chr(b) for a in range(128) for b in range(128)]
    if normalize("".join(pairs)) == expected("".join(pairs)):
        return table, prefix, ()
    odd = tuple(p for p in pairs if normalize(p) != expected(p))
    if len(odd) > 16:
        return None
    return table, prefix, odd


def compile_added_tokens(
    tokenizer: Tokenizer,
) -> tuple[list[tuple[str, int, bool, bool, bool]], list[tuple[str, int, bool, bool, bool]]]:
    """The added tokens matched in the raw text and (by their normalised form) in each normalised piece.

    Raises:
        Unsupported: An added token's normalised form is empty (``tokenizers`` cannot match it either).
    """
    normalizer = tokenizer.normalizer
    skip_special = bool(getattr(tokenizer, "encode_special_tokens", False))
    raw: list[tuple[str, int, bool, bool, bool]] = []
    norm: list[tuple[str, int, bool, bool, bool]] = []
    for token_id, token in sorted(tokenizer.get_added_tokens_decoder().items()):
        if not token.content or (skip_special and token.special):
            continue
        rules = (bool(token.single_word), bool(token.lstrip), bool(token.rstrip))
        if token.normalized:
            form = normalizer.normalize_str(token.content) if normalizer is not None else token.content
            if not form:
                raise Unsupported(f"added token {token.content!r} normalises to nothing")
            norm.append((form, int(token_id), *rules))
        else:
            raw.append((token.content, int(token_id), *rules))
    return raw, norm


def _build_model(tokenizer: Tokenizer) -> TokenModel:
    try:
        from staticst.tokenization import native_model
    except ImportError as exc:
        raise Unsupported(f"the native models are not built ({exc})") from None
    try:
        return native_model.build_token_model(tokenizer)
    except (Unsupported, ValueError, TypeError) as exc:
        raise Unsupported(f"model {type(tokenizer.model).__name__}: {exc}") from None


def _build_normalizer(spec: dict[str, Any] | None) -> Normalizer | None:
    if spec is None:
        return None
    try:
        from staticst.tokenization import native_normalizer
    except ImportError as exc:
        raise Unsupported(f"the native normalisers are not built ({exc})") from None
    compiled = native_normalizer.compile_normalizer({"normalizer": spec})
    if compiled.normalizer is None:
        raise Unsupported(f"normalizer: {compiled.reason}")
    return compiled.normalizer


def _run_split(tokenizer: Tokenizer, config: dict[str, Any]) -> list[dict[str, Any]]:
    """No pre-tokenizer: the Llama-style BPE whose merges provably never cross a word boundary is cut there."""
    from staticst.tokenization.pretokenizers import family_for

    try:
        family = family_for(config, tokenizer)  # the proof (Prepend(r) + Replace(' ', r), merges checked)
    except Unsupported:
        return []
    prefix = getattr(family, "prefix", "")
    return [{"kind": RUNSPLIT, "ch": prefix}] if prefix else []


def compile_pipeline(tokenizer: Tokenizer) -> NativePipeline:
    """The kernel's native pipeline for ``tokenizer``.

    Raises:
        Unsupported: A component the kernel does not implement natively (the message names it).
    """
    if _kernel is None:
        raise Unsupported("the compiled kernel is not built")
    from staticst.tokenization.plan import pipeline_config

    config = pipeline_config(tokenizer)
    model_spec = config.get("model") or {}
    if model_spec.get("type") == "BPE" and model_spec.get("dropout") not in (None, 0, 0.0):
        raise Unsupported("BPE dropout makes tokenization random")
    norm_spec = config.get("normalizer")
    pre_spec = config.get("pre_tokenizer")
    ops, defer = compile_pretokenizer(pre_spec)
    checked = _kernel.UNICODE_TABLES["tokenizers"]
    uses_tables = any(op["kind"] not in _TABLE_FREE and not (op["kind"] == BYTELEVEL and not op["split"]) for op in ops)
    if checked != tokenizers.__version__ and uses_tables:
        raise Unsupported(
            f"tokenizers {tokenizers.__version__} is installed but the pre-tokenizers' Unicode tables were checked "
            f"against tokenizers {checked} (regenerate them: python tools/gen_unicode.py)"
        )
    if pre_spec is None:
        ops = _run_split(tokenizer, config)
    first = any(op["kind"] == METASPACE and op.get("prepend") == PREPEND["first"] for op in ops)
    if first and norm_spec is not None:
        for part in _normalizer_types(norm_spec):
            pattern = part.get("pattern") or {}
            if part.get("type") == "Replace" and ("Regex" in pattern or len(pattern.get("String") or "") > 1):
                raise Unsupported("Metaspace prepend_scheme 'first' after a Replace of more than one character")
    raw, norm = compile_added_tokens(tokenizer)
    if checked != tokenizers.__version__ and any(any(t[2:]) for t in raw + norm):
        raise Unsupported(
            f"tokenizers {tokenizers.__version__} is installed but the added tokens' word and space classes were "
            f"checked against tokenizers {checked} (regenerate them: python tools/gen_unicode.py)"
        )
    model = _build_model(tokenizer)
    normalizer = _build_normalizer(norm_spec)
    ascii_table = None
    if norm_spec is not None and tokenizer.normalizer is not None:
        ascii_table = compile_ascii_table(tokenizer.normalizer.normalize_str, norm_spec)
    pipeline = _kernel.Pipeline(
        model=model,
        normalizer=normalizer,
        pretok=ops,
        added_raw=raw,
        added_norm=norm,
        ascii=ascii_table,
        key_bytelevel=defer,
        first_check=first,
    )
    pre = "none" if pre_spec is None else str(pre_spec.get("type"))
    if pre_spec is None and ops:
        pre = "none (words cut where no merge crosses)"
    described = (
        f"native tokenizer: {model_spec.get('type')} model, "
        f"{'no normalizer' if norm_spec is None else norm_spec.get('type') + ' normalizer'}, {pre} pre-tokenizer"
    )
    if raw or norm:
        described += f", {len(raw) + len(norm)} added tokens"
    return NativePipeline(pipeline, described)

"""The JSON files of a model folder, read and checked at load: every key staticst uses, with its rules.

``config.json`` (model2vec) and ``config_sentence_transformers.json`` are validated key by key against
:data:`MODEL2VEC_KEYS` / :data:`ST_KEYS`; ``modules.json`` must list only modules staticst runs. A wrong
type or value is an :class:`~staticst.errors.InvalidConfigError` naming the file, the key, the value and
what is allowed, raised when the model loads, never later at encode time. Keys staticst does not use
are kept as they are (and written back on save).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from staticst.errors import CorruptModelError, InvalidConfigError, UnknownLayoutError

__all__ = ["MODEL2VEC_KEYS", "SIMILARITY_FN_NAMES", "ST_KEYS", "check_modules", "read_json", "validate"]

SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")
#: Module types (by their last dotted name) staticst runs, in this order: a static embedding, then Normalize.
STATIC_MODULES = ("StaticEmbedding",)
NORMALIZE_MODULES = ("Normalize",)


def read_json(path: Path) -> Any:
    """Parse a JSON file.

    Raises:
        CorruptModelError: The file cannot be read, is not UTF-8 JSON, or is nested too deeply to parse.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        kind = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CorruptModelError(f"Could not read {path} as JSON: {kind}. Re-download or re-save the model.") from None


def _positive_int_or_null(value: Any) -> bool:
    # at most sys.maxsize (ssize_t): the largest limit the native kernel (and a Python str) can hold
    return value is None or (type(value) is int and 0 < value <= sys.maxsize)


def _bool(value: Any) -> bool:
    return isinstance(value, bool)


def _prompts(value: Any) -> bool:
    return value is None or (
        isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    )


def _string_or_null(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _similarity(value: Any) -> bool:
    return value is None or value in SIMILARITY_FN_NAMES


Rule = tuple[Callable[[Any], bool], str]

#: config.json keys staticst reads: check, and what is allowed (for the message).
MODEL2VEC_KEYS: dict[str, Rule] = {
    "normalize": (_bool, "true or false"),
    "max_length": (_positive_int_or_null, f"a positive integer up to {sys.maxsize}, or null for no limit"),
}
#: config_sentence_transformers.json keys staticst reads.
ST_KEYS: dict[str, Rule] = {
    "prompts": (_prompts, 'an object of prompt name -> prompt text strings, e.g. {"query": "query: "}'),
    "default_prompt_name": (_string_or_null, "a prompt name (a string) or null"),
    "similarity_fn_name": (_similarity, f"one of {', '.join(SIMILARITY_FN_NAMES)}, or null"),
}


def validate(path: Path, config: Any, rules: dict[str, Rule]) -> dict[str, Any]:
    """``config`` (parsed from ``path``), checked against ``rules``.

    Raises:
        InvalidConfigError: Not an object, or a key with a wrong type or value.
    """
    if not isinstance(config, dict):
        raise InvalidConfigError(f"{path} must hold a JSON object, got {type(config).__name__}. Re-save the model.")
    for key, (ok, allowed) in rules.items():
        if key in config and not ok(config[key]):
            raise InvalidConfigError(
                f"{path}: {key!r} is {json.dumps(config[key])[:80]}, which is not allowed; use {allowed}."
            )
    return config


def _last_name(module_type: str) -> str:
    return module_type.rsplit(".", 1)[-1]


def check_modules(path: Path) -> list[dict[str, Any]]:
    """The modules listed in ``modules.json``, refused unless they are a static embedding and an optional Normalize.

    Raises:
        CorruptModelError: The file is not a JSON list of module objects.
        UnknownLayoutError: A module staticst does not run (a transformer, a Dense layer, custom code), wherever
            it stands; the message names its type.
    """
    modules = read_json(path)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise CorruptModelError(f"{path} must hold a JSON list of module objects, got {json.dumps(modules)[:80]}.")
    names = [_last_name(str(m.get("type", ""))) for m in modules]
    for position, (module, name) in enumerate(zip(modules, names, strict=True)):
        allowed = STATIC_MODULES if position == 0 else NORMALIZE_MODULES
        if name not in allowed:
            if name == "Transformer" or any(n in ("Transformer", "Pooling") for n in names):
                raise UnknownLayoutError(
                    f"{path.parent} is a transformer model (modules.json lists {', '.join(names)}), not a static "
                    "embedding model: load it with sentence_transformers.SentenceTransformer."
                )
            raise UnknownLayoutError(
                f"{path} lists the module {module.get('type')!r} at position {position}; staticst runs a "
                "StaticEmbedding module followed by an optional Normalize, nothing else."
            )
    return modules

"""sentence-transformers argument handling for the facade: checks, input coercion and output conversion.

Everything here mirrors what ``SentenceTransformer`` 6.2 accepts and returns; none of it knows about
tables or tokenizers (that is :mod:`staticst.engine`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

import staticst.util as util
from staticst.errors import MissingDependencyError

__all__ = [
    "ALLOWED_PRECISIONS",
    "ENCODE_OPTION_NAMES",
    "PLAIN_OPTIONS",
    "SIMILARITY_FN_NAMES",
    "EncodeOptions",
    "Precision",
    "as_texts",
    "check_device",
    "check_encode_options",
    "check_init_options",
    "check_kernel_options",
    "check_positive",
    "check_token_embeddings",
    "check_truncate_dim",
    "convert_output",
    "has_pairs",
    "import_torch",
    "input_length",
    "initial_prompts",
    "invalid_text",
    "prompted",
    "renamed_inputs",
    "resolve_prompt",
    "unsupported_modality",
    "warn_non_cpu_workers",
    "warn_once",
]

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"] | None
ALLOWED_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")


@dataclass(slots=True)
class EncodeOptions:
    """Every option of ``encode`` (besides ``inputs`` and ``**kwargs``), with sentence-transformers' defaults.

    The one place these defaults are written: ``encode_with_usage`` reads its options through
    :meth:`pop_from`, the general path of ``encode`` takes one of these, and the short path compares
    :meth:`output_key` with :data:`PLAIN_OPTIONS` (derived from the defaults below). The public signatures
    (``encode``, ``encode_query``, ``encode_document``) spell the same defaults out, as sentence-transformers'
    do; ``tests/test_encode.py`` pins them to this class.
    """

    prompt_name: str | None = None
    prompt: str | None = None
    batch_size: Any = 32
    show_progress_bar: bool | None = None
    output_value: Any = "sentence_embedding"
    precision: Any = "float32"
    convert_to_numpy: bool = True
    convert_to_tensor: bool = False
    device: Any = None
    normalize_embeddings: bool = False
    truncate_dim: int | None = None
    pool: dict[str, Any] | None = None
    chunk_size: int | None = None

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> EncodeOptions:
        """The options named in ``kwargs`` (removed from it; the rest stay) over the defaults."""
        return cls(**{name: kwargs.pop(name) for name in ENCODE_OPTION_NAMES if name in kwargs})

    def output_key(self) -> tuple[Any, ...]:
        """``(precision, output_value, convert_to_numpy, convert_to_tensor, device, pool, chunk_size)``."""
        return (
            self.precision, self.output_value, self.convert_to_numpy, self.convert_to_tensor, self.device, self.pool,
            self.chunk_size,
        )  # fmt: skip


#: The names of :class:`EncodeOptions`, in ``encode``'s order.
ENCODE_OPTION_NAMES = tuple(f.name for f in fields(EncodeOptions))
#: :meth:`EncodeOptions.output_key` at the defaults: an ``encode(str)`` call whose output options are these
#: (and no other keyword) takes the engine's single-text path.
PLAIN_OPTIONS = EncodeOptions().output_key()
_ENCODE_KWARGS = {"task", "processing_kwargs"}
_NO_EFFECT_INIT = ("model_kwargs", "processor_kwargs", "tokenizer_kwargs", "config_kwargs")
logger = logging.getLogger("staticst.model")
_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Emit ``message`` as a ``UserWarning`` the first time ``key`` is seen in this process."""
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, UserWarning, stacklevel=3)


def warn_non_cpu_workers(devices: Sequence[Any]) -> None:
    """Warn once that worker devices other than ``"cpu"`` still start CPU workers."""
    if any(str(d) != "cpu" for d in devices):
        warn_once(f"device:{list(devices)}", f"staticst runs on the CPU; devices {list(devices)!r} start CPU workers.")


def check_device(device: Any) -> None:
    """Warn once that a device other than ``"cpu"`` has no effect."""
    if device is None:
        return
    if isinstance(device, list) or str(device) != "cpu":
        warn_once(f"device:{device}", f"staticst runs on the CPU with numpy; device={device!r} has no effect.")


def check_positive(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive integer (``bool`` is not an integer here)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}.")


def check_truncate_dim(truncate_dim: Any) -> None:
    """Raise ``ValueError`` unless ``truncate_dim`` is a positive integer."""
    if isinstance(truncate_dim, bool) or not isinstance(truncate_dim, (int, np.integer)) or truncate_dim <= 0:
        raise ValueError(f"truncate_dim must be a positive integer or None, got {truncate_dim!r}.")


def check_init_options(
    kwargs: Mapping[str, Any],
    token: bool | str | None,
    use_auth_token: bool | str | None,
    device: Any,
    backend: str,
    trust_remote_code: bool,
    truncate_dim: Any,
) -> bool | str | None:
    """The checks the constructor makes of its options; returns the Hub token to use.

    Raises:
        TypeError: An unknown keyword argument.
        ValueError: Both ``token`` and ``use_auth_token``, an unknown ``backend`` or a bad ``truncate_dim``.
    """
    unknown = sorted(set(kwargs) - set(_NO_EFFECT_INIT))
    if unknown:
        raise TypeError(
            f"StaticSentenceTransformer() got unexpected keyword argument(s) {unknown}. Accepted: "
            "device, prompts, default_prompt_name, cache_folder, trust_remote_code, revision, local_files_only, "
            f"token, truncate_dim, similarity_fn_name, model_card_data, backend, kernel, {', '.join(_NO_EFFECT_INIT)}."
        )
    for key in kwargs:
        if kwargs[key]:
            warn_once(f"init:{key}", f"StaticSentenceTransformer ignores {key}: a static model has no {key[:-7]}.")
    if use_auth_token is not None:
        if token is not None:
            raise ValueError("Both `token` and `use_auth_token` are specified. Please only specify `token`.")
        token = use_auth_token
    check_device(device)
    if backend not in ("torch", "onnx", "openvino"):
        raise ValueError(f"backend must be 'torch', 'onnx' or 'openvino', got {backend!r}.")
    if trust_remote_code:
        warn_once("init:trust_remote_code", "staticst never runs remote code; trust_remote_code has no effect.")
    if truncate_dim is not None:
        check_truncate_dim(truncate_dim)
    return token


def check_kernel_options(use_kernels: bool, kernel_config: Any, backend: str) -> tuple[bool, Any]:
    """sentence-transformers 6.3's checks of ``use_kernels`` / ``kernel_config``; returns the pair to keep.

    ``kernel_config`` must be a ``transformers.KernelConfig`` (checked by type name: transformers is not
    imported) and implies ``use_kernels``; kernels need the torch backend. Neither has an effect on a static
    model (sentence-transformers applies them to a transformer backbone, which a static model has none of).

    Raises:
        ValueError: ``use_kernels`` (or a ``kernel_config``) with a backend other than ``"torch"``.
        TypeError: A ``kernel_config`` that is not a ``transformers.KernelConfig``.
    """
    use = bool(use_kernels) or kernel_config is not None
    if use and backend != "torch":
        raise ValueError("use_kernels and kernel_config require the torch backend")
    if kernel_config is not None:
        kind = type(kernel_config)
        if not (
            kind.__module__.split(".")[0] == "transformers" and any(c.__name__ == "KernelConfig" for c in kind.__mro__)
        ):
            raise TypeError("kernel_config must be a transformers.KernelConfig")
        import copy

        kernel_config = copy.deepcopy(kernel_config)
    return use, kernel_config


def initial_prompts(
    st_config: Mapping[str, Any], prompts: Mapping[str, str] | None, default_prompt_name: str | None
) -> tuple[dict[str, str], str | None]:
    """The prompts and default prompt name of a loaded model, merged as sentence-transformers 6.3 merges them.

    ``{"query": ..., "document": ...}`` placeholders, then the constructor's prompts, then the saved ones for
    names not set yet (a saved ``query`` / ``document`` fills a placeholder); placeholders left empty become
    ``""``. The constructor's default prompt name wins over the saved one.

    Raises:
        ValueError: The default prompt name is not one of the prompts (sentence-transformers' message).
    """
    merged: dict[str, str | None] = {"query": None, "document": None}
    if prompts:
        merged.update(prompts)
    for name, text in dict(st_config.get("prompts") or {}).items():
        if (name not in merged or merged[name] is None) and text is not None:
            merged[str(name)] = str(text)
    final = {name: "" if text is None else text for name, text in merged.items()}
    default = default_prompt_name if default_prompt_name is not None else st_config.get("default_prompt_name")
    if default is not None and default not in final:
        raise ValueError(
            f"Default prompt name '{default}' not found in the configured prompts dictionary with keys "
            f"{list(final.keys())!r}."
        )
    return final, default


def check_encode_options(
    model_name: str,
    batch_size: Any,
    precision: Any,
    output_value: Any,
    kwargs: dict[str, Any],
    model_kwargs: Sequence[str] = (),
) -> None:
    """The checks ``encode`` makes of its options (as sentence-transformers makes them).

    Args:
        model_name: The class name the messages give (sentence-transformers': ``"SentenceTransformer"``).
        batch_size: ``encode``'s ``batch_size``.
        precision: ``encode``'s ``precision``.
        output_value: ``encode``'s ``output_value``.
        kwargs: ``encode``'s extra keyword arguments.
        model_kwargs: The extra keyword arguments the model's modules take (``get_model_kwargs()``).

    Raises:
        ValueError: An unknown keyword argument, a bad ``batch_size``, ``precision`` or ``output_value``.
    """
    unused = set(kwargs) - _ENCODE_KWARGS - set(model_kwargs)
    if unused:
        raise ValueError(
            f"{model_name}.encode() has been called with additional keyword arguments that this model "
            f"does not use: {sorted(unused)}. "
            + (
                f"As per {model_name}.get_model_kwargs(), the valid additional keyword arguments are: {list(model_kwargs)}."
                if model_kwargs
                else f"As per {model_name}.get_model_kwargs(), this model does not accept any additional keyword arguments."
            )
        )
    if kwargs.get("processing_kwargs"):
        warn_once("encode:processing_kwargs", "processing_kwargs has no effect on a static model.")
    check_positive("batch_size", batch_size)
    if precision is not None and precision not in ALLOWED_PRECISIONS:
        raise ValueError(f"Precision {precision!r} is not supported, must be one of {set(ALLOWED_PRECISIONS)}")
    if output_value not in ("sentence_embedding", "token_embeddings", None):
        raise ValueError(
            f"output_value={output_value!r} is not an output of this model: use 'sentence_embedding' (or None)."
        )


def check_token_embeddings(output_value: Any, n: int) -> None:
    """``output_value="token_embeddings"`` on a non-empty input: a static model has no contextual token vectors.

    Raises:
        ValueError: Always (``n > 0``); sentence-transformers raises ``KeyError('token_embeddings')`` there.
    """
    if output_value == "token_embeddings" and n:
        raise ValueError(
            f"output_value={output_value!r} is not available: a static model has no contextual token embeddings. "
            "Use output_value='sentence_embedding' (or None), or staticst.StaticModel.encode_as_sequence() for "
            "the (static) vector of every token."
        )


def resolve_prompt(
    prompts: Mapping[str, str], default_prompt_name: str | None, prompt: str | None, prompt_name: str | None
) -> str | None:
    """The prompt text ``encode`` prepends: ``prompt``, else ``prompts[prompt_name]``, else the default prompt's.

    Raises:
        ValueError: ``prompt_name`` is not a key of ``prompts``.
        TypeError: ``prompt`` is not a string.
    """
    if prompt is not None and not isinstance(prompt, str):
        raise TypeError(
            f"prompt must be a str (the text put before every input) or None, got {type(prompt).__name__}: "
            f"{prompt!r:.80}. Pass the text itself, e.g. prompt='query: ', or a prompt_name."
        )
    if prompt is None:
        if prompt_name is not None:
            if prompt_name not in prompts:
                raise ValueError(
                    f"Prompt name '{prompt_name}' not found in the configured prompts dictionary with keys "
                    f"{list(prompts.keys())!r}."
                )
            return prompts[prompt_name]
        if default_prompt_name is not None:
            return prompts.get(default_prompt_name)
        return None
    if prompt_name is not None:
        logger.warning(
            "Provide either a `prompt`, a `prompt_name`, or neither, but not both. "
            "Ignoring the `prompt_name` in favor of `prompt`."
        )
    return prompt


def _is_series(inputs: Any) -> bool:
    kind = type(inputs)
    return kind.__name__ == "Series" and kind.__module__.startswith("pandas")


def as_texts(inputs: Any) -> tuple[list[Any], bool]:
    """``(texts, single)``: the inputs of ``encode`` as a list of ``str``, and whether one ``str`` was given.

    Accepted, as sentence-transformers accepts them: a ``str``; a list, a tuple or another sequence of
    ``str``; a 1-D numpy array of ``str``; a pandas ``Series`` of ``str``.

    Raises:
        TypeError: Anything else (a set has no order, a DataFrame is not a column, bytes are not text), or an
            item that is not a ``str``; the message names the type or the item.
    """
    if isinstance(inputs, str):
        return [inputs], True
    if isinstance(inputs, np.ndarray):
        pairs = inputs.ndim == 2 and inputs.shape[1] == 2
        if not (inputs.ndim == 1 or pairs) or inputs.dtype.kind not in "UO":
            error = unsupported_modality([inputs]) if inputs.dtype.kind not in "UO" else None
            if error is not None:
                raise error
            raise TypeError(
                f"encode() takes a str, a 1-D array of str or an (n, 2) array of text pairs; got an array of "
                f"{inputs.dtype} {inputs.shape}."
            )
        texts = [tuple(row) for row in inputs.tolist()] if pairs else inputs.tolist()
    elif isinstance(inputs, (list, tuple)):
        texts = list(inputs)
    elif _is_series(inputs):
        texts = inputs.tolist()
    elif isinstance(inputs, (set, frozenset)):
        raise TypeError(
            f"encode() got a {type(inputs).__name__}: its order changes from run to run, so rows could not be matched "
            "to texts. Pass a list, e.g. sorted(texts)."
        )
    elif isinstance(inputs, Sequence) and not isinstance(inputs, (bytes, bytearray, memoryview)):
        texts = list(inputs)
    else:
        error = unsupported_modality([inputs])
        if error is not None:
            raise error
        hint = " (pick its column: df['text'])" if type(inputs).__name__ == "DataFrame" else ""
        hint = (
            " (decode it first: data.decode('utf-8'))" if isinstance(inputs, (bytes, bytearray, memoryview)) else hint
        )
        raise TypeError(f"encode() takes a str or a list of str, got {type(inputs).__name__}{hint}.")
    if not all(issubclass(kind, str) for kind in set(map(type, texts))):  # one C-level pass over texts
        error = unsupported_modality(texts)
        if error is not None:
            raise error
        texts = [_as_pair(i, t) for i, t in enumerate(texts)]
    return texts, False


_MULTIMODAL_KEYS = ("audio", "image", "text", "video")


def _modality(item: Any) -> str | tuple[str, ...] | None:
    """sentence-transformers' modality of an ``encode`` input (``None``: not an input it recognises)."""
    kind = type(item)
    if any(c.__module__.startswith("PIL.") and c.__name__ == "Image" for c in kind.__mro__):
        return "image"
    if isinstance(item, dict):
        if "role" in item and "content" in item:
            return "message"
        if "array" in item:
            return "audio" if "sampling_rate" in item else "video" if "video_metadata" in item else None
        if not item or set(item) - set(_MULTIMODAL_KEYS):
            return None
        return next(iter(item)) if len(item) == 1 else tuple(sorted(item))
    if isinstance(item, list) and item and isinstance(item[0], dict) and "role" in item[0] and "content" in item[0]:
        return "message"
    ndim = getattr(item, "ndim", None) if (isinstance(item, np.ndarray) or kind.__module__ == "torch") else None
    if ndim is not None:
        return {1: "audio", 2: "audio", 3: "image", 4: "video", 5: "video"}.get(int(ndim))
    return None


def unsupported_modality(items: Sequence[Any], owner: str = "SentenceTransformer") -> ValueError | None:
    """sentence-transformers' error for a batch holding images, audio, video or chat messages (``None`` otherwise).

    A static model takes text only; the messages are sentence-transformers 6.3's (``raise_unsupported_modality_error``
    with the source ``"SentenceTransformer model"``).
    """
    found: list[str | tuple[str, ...]] = []
    for item in items:
        if isinstance(item, str) or (
            isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(x, str) for x in item)
        ):
            found.append("text")
            continue
        modality = _modality(item)
        if modality is None:
            return None
        found.append(modality)
    kinds = set(found)
    if kinds <= {"text"}:
        return None
    source = f"{owner} model"

    def name(m: str | tuple[str, ...]) -> str:
        return "+".join(m) if isinstance(m, tuple) else m

    if len(kinds) == 1:
        (modality,) = kinds
        if modality == "message":
            return ValueError(
                f"This {source} does not support chat-style 'message' inputs (dicts or lists of dicts with "
                "'role' and 'content'). Supported modalities: text."
            )
        if isinstance(modality, tuple) and all(part == "text" for part in modality):
            return ValueError(
                f"This {source} supports {' and '.join(modality)} individually, but cannot combine them in a single "
                "input. Encode each modality separately (one call per modality)."
            )
        return ValueError(f"Modality '{name(modality)}' is not supported by this {source}. Supported modalities: text.")
    if "message" in kinds:
        return ValueError(
            f"This {source} does not support chat-style 'message' inputs (dicts or lists of dicts with 'role' and "
            "'content'), which this batch mixes with other modalities. Supported modalities: text."
        )
    present = ", ".join(sorted(name(m) for m in kinds))
    parts = sorted({p for m in kinds for p in (m if isinstance(m, tuple) else (m,))} - {"text"})
    return ValueError(
        f"This batch mixes multiple modalities ({present}), but this {source} does not support "
        f"{', '.join(parts)}. Supported modalities: text."
    )


def _as_pair(i: int, item: Any) -> Any:
    """Item ``i`` of an ``encode`` batch: a ``str``, or a text pair ``(str, str)`` (a tuple or a list of two).

    Raises:
        TypeError: Anything else; the message names the item.
    """
    if isinstance(item, str):
        return item
    if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(x, str) for x in item):
        return (item[0], item[1])
    raise TypeError(
        f"encode() inputs must be str or text pairs (str, str); item {i} is {type(item).__name__}: {item!r:.80}."
    )


def has_pairs(texts: Sequence[Any]) -> bool:
    """Whether a batch from :func:`as_texts` holds text pairs (every item is otherwise a ``str``)."""
    return not all(issubclass(kind, str) for kind in set(map(type, texts)))


def input_length(item: str | tuple[str, str]) -> int:
    """sentence-transformers' length of an input for its batch order: characters (a pair: both texts)."""
    return len(item) if isinstance(item, str) else len(item[0]) + len(item[1])


def prompted(prompt: str | None, texts: list[Any]) -> list[Any]:
    """``texts`` with ``prompt`` prepended to each text (to the first text of a pair), as sentence-transformers does."""
    if not prompt:
        return texts
    return [prompt + t if isinstance(t, str) else (prompt + t[0], t[1]) for t in texts]


_renamed_warned: set[str] = set()


def renamed_inputs(inputs: Any, kwargs: dict[str, Any], method: str) -> Any:
    """sentence-transformers' deprecated ``sentences=`` keyword: the inputs to encode, popped from ``kwargs``.

    Logs the warning sentence-transformers 6.2 logs (once per process); when both ``inputs`` and
    ``sentences`` are given, ``sentences`` is dropped, as sentence-transformers does.

    Raises:
        TypeError: Neither ``inputs`` nor ``sentences`` was given.
    """
    if "sentences" in kwargs:
        old = kwargs.pop("sentences")
        if "sentences" not in _renamed_warned:
            _renamed_warned.add("sentences")
            logger.warning("The `sentences` argument was renamed and is now deprecated. Please use `inputs` instead.")
        if inputs is None:
            return old
    if inputs is None:
        raise TypeError(f"{method}() missing 1 required argument: 'inputs' (the text or texts to encode).")
    return inputs


def invalid_text(texts: Sequence[Any]) -> ValueError | None:
    """The error for the first text that is not valid Unicode (a lone surrogate), or ``None`` if all are."""
    for i, item in enumerate(texts):
        text = item if isinstance(item, str) else item[0] + item[1]
        if text.isascii():
            continue
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            char = ord(text[exc.start])
            return ValueError(
                f"encode() input {i} is not valid Unicode text: it holds the lone surrogate U+{char:04X} at position "
                f"{exc.start}. Text decoded with errors='surrogateescape' keeps undecodable bytes that way: decode "
                "with errors='replace' (or fix the source encoding)."
            )
    return None


def import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(
            "convert_to_tensor=True / convert_to_numpy=False return torch tensors, but torch is not installed. "
            "Install it (`pip install torch`) or keep the default numpy output."
        ) from exc
    return torch


def convert_output(
    emb: np.ndarray,
    *,
    n: int,
    single: bool,
    output_value: str | None,
    precision: str | None,
    convert_to_numpy: bool,
    convert_to_tensor: bool,
) -> Any:
    """``encode``'s return value from the float32 rows, as sentence-transformers shapes it."""
    if output_value != "sentence_embedding":  # None / token_embeddings of an empty input
        return []
    result: Any = emb
    if n and precision and precision != "float32":
        result = util.quantize_embeddings(emb, precision=precision)
    if convert_to_tensor or not convert_to_numpy:
        torch = import_torch()
        if convert_to_tensor:
            result = torch.as_tensor(result) if n else torch.tensor([])
        else:
            result = list(torch.from_numpy(np.asarray(result)))
    elif not n:
        result = np.array([])
    return result[0] if single else result

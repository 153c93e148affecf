"""``distill``: a static model from a transformer's ONNX export, as model2vec 0.10's ``distill`` makes it.

The recipe (model2vec's): every token of the transformer's vocabulary (plus the words of ``vocabulary``) is
run through the transformer on its own (``[CLS] token [SEP]`` for BERT), its output vectors are pooled
into one vector per token, and the table is reduced by PCA, weighted by Zipf/SIF and quantized. Here the
transformer runs in ONNX Runtime (:mod:`staticst.distill.runner`), the tokenizer is edited on
``tokenizer.json`` (:mod:`staticst.distill.vocabulary`), the PCA is scikit-learn's
(:mod:`staticst.distill.postprocess`): no torch, no transformers.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from staticst.distill.postprocess import PCADims, apply_pca, sif_weights, validate_pca_dims
from staticst.distill.runner import DEFAULT_BATCH_SIZE, ONNX_CANDIDATES, OnnxTransformer, PoolingMode, find_onnx_file
from staticst.distill.vocabulary import build_vocabulary, read_tokenizer
from staticst.errors import ModelNotFoundError
from staticst.static_model import StaticModel, _quantized, _vocabulary_quantized

__all__ = ["DEFAULT_TOKEN_REMOVE_PATTERN", "distill", "distill_module_parts", "from_distillation_kwargs"]

logger = logging.getLogger("staticst.distill")

DEFAULT_TOKEN_REMOVE_PATTERN = r"\[unused\d+\]"
_QUANTIZE_TO = ("float16", "float32", "float64", "int8")
#: The files of a Hub repository a distillation reads.
_HUB_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json", "README.md")


def _validated(
    vocabulary: Sequence[str] | None,
    pca_dims: object,
    sif_coefficient: float | None,
    token_remove_pattern: str | None,
    quantize_to: Any,
    vocabulary_quantization: int | None,
    pooling: Any,
    batch_size: int,
) -> tuple[list[str], PCADims, re.Pattern[str] | None, str, PoolingMode]:
    """The arguments, checked before anything is loaded (model2vec's checks, and the ones it leaves to chance)."""
    if isinstance(vocabulary, (str, bytes)):
        raise TypeError(
            f"vocabulary must be a list of words, not a single {type(vocabulary).__name__}: pass [{vocabulary!r}]."
        )
    words = list(vocabulary or [])
    bad = next((w for w in words if not isinstance(w, str)), None)
    if bad is not None:
        raise TypeError(f"vocabulary must hold strings; it holds {bad!r} ({type(bad).__name__}).")
    if sif_coefficient is not None and not 0 < sif_coefficient < 1.0:
        raise ValueError(
            f"sif_coefficient={sif_coefficient!r} must be > 0 and < 1.0 (1e-4 is a good default), or None for no weighting."
        )
    regex = None
    if token_remove_pattern is not None:
        try:
            regex = re.compile(token_remove_pattern)
        except re.error as exc:
            raise ValueError(
                f"token_remove_pattern={token_remove_pattern!r} is not a regular expression: {exc}"
            ) from exc
    dtype = str(getattr(quantize_to, "value", quantize_to))
    if dtype not in _QUANTIZE_TO:
        raise ValueError(f"quantize_to={quantize_to!r} is not one of {list(_QUANTIZE_TO)}.")
    try:
        mode = PoolingMode(getattr(pooling, "value", pooling))
    except ValueError:
        raise ValueError(f"pooling={pooling!r} is not one of {[m.value for m in PoolingMode]}.") from None
    if vocabulary_quantization is not None and (
        isinstance(vocabulary_quantization, bool)
        or not isinstance(vocabulary_quantization, int)
        or vocabulary_quantization < 1
    ):
        raise ValueError(
            f"vocabulary_quantization={vocabulary_quantization!r} must be a positive number of clusters, or None."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive int.")
    return words, validate_pca_dims(pca_dims), regex, dtype, mode


def _providers(device: str | None) -> list[Any]:
    """ONNX Runtime execution providers for model2vec's ``device`` (``None`` / ``"cpu"``: the CPU).

    Raises:
        ValueError: A device whose provider this onnxruntime does not have.
    """
    if device is None or device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            index = int(device.split(":", 1)[1]) if ":" in device else 0
            return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        raise ValueError(
            f"device={device!r}: this onnxruntime has no CUDA provider (it has {ort.get_available_providers()}); "
            "install onnxruntime-gpu, or pass device='cpu'."
        )
    raise ValueError(
        f"device={device!r} is not supported by distillation in ONNX Runtime: pass 'cpu', 'cuda' or 'cuda:N'."
    )


def _resolve(
    model_name: str | os.PathLike[str],
    onnx_file: str | os.PathLike[str] | None,
    revision: str | None,
    token: str | None,
) -> tuple[Path, bool]:
    """The local folder of ``model_name`` and whether it was a local folder (else a Hub snapshot).

    Raises:
        ModelNotFoundError: Neither a folder nor a Hub repository that can be fetched.
    """
    local = Path(model_name).expanduser()
    if local.is_dir():
        return local, True
    name = str(model_name)
    if local.is_absolute() or name.startswith((".", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(f"No such folder: {name!r}. Pass a model folder, or a Hub id like 'org/name'.")
    import huggingface_hub
    from huggingface_hub.errors import (
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    onnx_names = [str(onnx_file)] if onnx_file is not None else list(ONNX_CANDIDATES)
    patterns = [*_HUB_FILES, *onnx_names, *(f"{n}_data" for n in onnx_names), *(f"{n}.data" for n in onnx_names)]
    try:
        snapshot = huggingface_hub.snapshot_download(name, revision=revision, token=token, allow_patterns=patterns)
    except LocalEntryNotFoundError as exc:
        raise ModelNotFoundError(
            f"Model {name!r} is not a folder, and not in the Hugging Face cache while the Hub cannot be reached "
            "(HF_HUB_OFFLINE or no network): pass a local folder, or download it once with network access."
        ) from exc
    except (RepositoryNotFoundError, HFValidationError, HfHubHTTPError) as exc:
        raise ModelNotFoundError(
            f"Model {name!r} is not a folder and could not be fetched from the Hub: {exc}"
        ) from exc
    return Path(snapshot), False


def _model_vocab_size(folder: Path) -> int | None:
    import json

    path = folder / "config.json"
    try:
        size = json.loads(path.read_text(encoding="utf-8")).get("vocab_size") if path.is_file() else None
    except (OSError, ValueError):
        return None
    return size if isinstance(size, int) and size > 0 else None


def _card_language(folder: Path) -> list[str] | None:
    readme = folder / "README.md"
    if not readme.is_file():
        return None
    from huggingface_hub import ModelCard

    language = ModelCard.load(readme).data.to_dict().get("language")
    return [language] if isinstance(language, str) else language


def distill(
    model_name: str | os.PathLike[str],
    vocabulary: Sequence[str] | None = None,
    device: str | None = None,
    pca_dims: PCADims = 256,
    sif_coefficient: float | None = 1e-4,
    token_remove_pattern: str | None = DEFAULT_TOKEN_REMOVE_PATTERN,
    trust_remote_code: bool = False,
    quantize_to: str = "float16",
    vocabulary_quantization: int | None = None,
    pooling: str = "mean",
    *,
    onnx_file: str | os.PathLike[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    show_progress_bar: bool = True,
    num_threads: int | None = None,
    revision: str | None = None,
    token: str | None = None,
) -> StaticModel:
    """Distill a static model from a transformer, as model2vec 0.10's ``distill``, without torch.

    Every token of the transformer's vocabulary (and every word of ``vocabulary``) goes through the
    transformer on its own; the pooled outputs become the rows of the table, which is reduced by PCA,
    weighted by Zipf/SIF and quantized. The transformer runs in ONNX Runtime from the folder's
    ``onnx/model.onnx`` (or ``model.onnx``, or ``onnx_file``); the tokenizer is the folder's ``tokenizer.json``.

    Args:
        model_name: A model folder (with ``tokenizer.json`` and an ONNX export), or a Hub id.
        vocabulary: Words to add to the model's vocabulary. A word the tokenizer keeps in one piece becomes a
            token; one it splits (``"New York"``) a multi-word token. ``None``: the model's vocabulary only.
        device: ``None`` / ``"cpu"``, or ``"cuda"`` / ``"cuda:N"`` with onnxruntime-gpu.
        pca_dims: Components to keep: an int, a float in (0, 1) (share of variance), ``"auto"`` (all, rotated)
            or ``None`` (no PCA).
        sif_coefficient: SIF coefficient of the Zipf weighting, in (0, 1); ``None``: no weighting.
        token_remove_pattern: Tokens matching this regular expression (``re.match``) are dropped.
        trust_remote_code: Accepted for model2vec compatibility; an ONNX graph runs no model code.
        quantize_to: ``"float16"``, ``"float32"``, ``"float64"`` or ``"int8"``.
        vocabulary_quantization: Cluster the rows into this many (k-means), or ``None``.
        pooling: ``"mean"`` over the token's positions, ``"first"`` (``[CLS]``), ``"last"``, or ``"pooler"``
            (the graph's ``pooler_output``).
        onnx_file: The ONNX file to run (absolute, or relative to the model folder).
        batch_size: Token sequences per forward pass.
        show_progress_bar: Show a progress bar over the tokens.
        num_threads: ONNX Runtime threads (default: every CPU this process may use).
        revision: Hub revision (Hub ids only).
        token: Hub token (Hub ids only).

    Returns:
        A :class:`staticst.StaticModel` (``normalize=True``), to ``encode``, ``save_pretrained`` or evaluate.

    Raises:
        ModelNotFoundError: No such folder / repository, or no ``tokenizer.json`` or ONNX export in it (the
            message says how to export one).
        MissingDependencyError: onnxruntime or scikit-learn is missing (``pip install 'staticst[distill]'``).
        ValueError: A bad argument, or a vocabulary left empty by ``token_remove_pattern``.
        TypeError: ``vocabulary`` is not a list of strings.
    """
    words, dims, regex, dtype, mode = _validated(
        vocabulary,
        pca_dims,
        sif_coefficient,
        token_remove_pattern,
        quantize_to,
        vocabulary_quantization,
        pooling,
        batch_size,
    )
    providers = _providers(device)
    folder, is_local = _resolve(model_name, onnx_file, revision, token)
    if not (folder / "tokenizer.json").is_file():
        raise ModelNotFoundError(
            f"{folder / 'tokenizer.json'} does not exist: distillation reads the transformer's fast tokenizer from it. "
            "Save it with transformers (AutoTokenizer.from_pretrained(...).save_pretrained(folder))."
        )
    onnx_path = find_onnx_file(folder, onnx_file)
    vocab = build_vocabulary(read_tokenizer(folder), words, regex, _model_vocab_size(folder))
    transformer = OnnxTransformer(onnx_path, threads=num_threads, providers=providers)
    embeddings = transformer.embed(
        vocab.input_ids, vocab.pad_id, mode, batch_size=batch_size, progress=show_progress_bar
    )
    del transformer  # the session's memory goes before the post-processing's

    weights: np.ndarray | None = sif_weights(len(embeddings), sif_coefficient)
    mapping: np.ndarray | None = None
    if vocabulary_quantization is not None:
        embeddings, mapping, weights = _vocabulary_quantized(embeddings, weights, vocabulary_quantization)
        embeddings = apply_pca(embeddings, dims)
    else:
        assert weights is not None
        embeddings = apply_pca(embeddings, dims) * weights[:, None]
        weights = None
    embeddings = _quantized(embeddings, dtype, None)

    config: dict[str, Any] = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "tokenizer_name": str(model_name),
        "apply_pca": dims,
        "sif_coefficient": sif_coefficient,
        "hidden_dim": int(embeddings.shape[1]),
        "seq_length": 1000000,
        "normalize": True,
        "pooling": mode.value,
    }
    base_model_name = os.path.basename(str(model_name)) if is_local else str(model_name)
    language = None if is_local else _card_language(folder)  # model2vec reads a local model's language as None
    return StaticModel(
        vectors=embeddings,
        tokenizer=vocab.tokenizer,
        config=config,
        normalize=True,
        base_model_name=base_model_name,
        language=language,
        weights=weights,
        token_mapping=mapping,
    )


def from_distillation_kwargs(
    model_name: str,
    vocabulary: list[str] | None = None,
    device: str | None = None,
    pca_dims: int | None = 256,
    apply_zipf: bool = True,
    sif_coefficient: float | None = 1e-4,
    token_remove_pattern: str | None = DEFAULT_TOKEN_REMOVE_PATTERN,
    quantize_to: str = "float32",
    use_subword: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """The :func:`distill` arguments sentence-transformers 6.2's ``StaticEmbedding.from_distillation`` passes.

    sentence-transformers hands its arguments to model2vec's ``distill``; ``apply_zipf`` and ``use_subword``
    are dropped there with a warning (model2vec 0.10 has neither: ``sif_coefficient=None`` turns the Zipf
    weighting off). Its ``quantize_to`` default is ``"float32"``.

    Returns:
        Keyword arguments for :func:`distill` (``model_name`` included). Keywords :func:`distill` does not
        take are dropped with a warning naming them, as sentence-transformers drops what model2vec lacks.
    """
    import inspect

    if not apply_zipf or not use_subword:
        dropped = [name for name, value in (("apply_zipf", apply_zipf), ("use_subword", use_subword)) if not value]
        logger.warning(
            f"{', '.join(dropped)}=False is ignored, as sentence-transformers ignores it with model2vec 0.10 "
            "(pass sif_coefficient=None to turn the Zipf weighting off)."
        )
    accepted = set(inspect.signature(distill).parameters)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        logger.warning(
            f"distill does not take {', '.join(map(repr, unknown))}: ignored, as sentence-transformers ignores them."
        )
        kwargs = {key: value for key, value in kwargs.items() if key in accepted}
    return {
        "model_name": model_name,
        "vocabulary": vocabulary,
        "device": device,
        "pca_dims": pca_dims,
        "sif_coefficient": sif_coefficient,
        "token_remove_pattern": token_remove_pattern,
        "quantize_to": quantize_to,
        **kwargs,
    }


def distill_module_parts(
    model_name: str,
    vocabulary: list[str] | None = None,
    device: str | None = None,
    pca_dims: int | None = 256,
    apply_zipf: bool = True,
    sif_coefficient: float | None = 1e-4,
    token_remove_pattern: str | None = DEFAULT_TOKEN_REMOVE_PATTERN,
    quantize_to: str = "float32",
    use_subword: bool = True,
    **kwargs: Any,
) -> tuple[Tokenizer, np.ndarray, str]:
    """What sentence-transformers 6.2's ``StaticEmbedding.from_distillation`` builds its module from, without torch.

    The arguments and defaults are sentence-transformers' (``quantize_to="float32"``; ``apply_zipf`` and
    ``use_subword`` are ignored as there, see :func:`from_distillation_kwargs`); :func:`distill` runs the
    distillation, and the table is folded as ``StaticEmbedding._fold_model2vec_weights`` folds it: row ``i``
    is ``embeddings[token_mapping[i]] * weights[i]`` (the mapping and weights of a ``vocabulary_quantization``
    model), in the table's dtype.

    Returns:
        ``(tokenizer, embedding_weights, base_model)``: ``StaticEmbedding(tokenizer, embedding_weights=...,
        base_model=model_name)`` is sentence-transformers' module.
    """
    model = distill(**from_distillation_kwargs(
        model_name, vocabulary, device, pca_dims, apply_zipf, sif_coefficient, token_remove_pattern, quantize_to, use_subword, **kwargs
    ))  # fmt: skip
    table = np.asarray(model.embedding)
    if model.token_mapping is not None:
        table = table[np.asarray(model.token_mapping, dtype=np.int64)]
    if model.weights is not None:
        dtype = np.promote_types(table.dtype, np.float32)
        table = (table.astype(dtype) * np.asarray(model.weights)[:, None]).astype(dtype)  # torch's promotion, then back
    return model.tokenizer, np.ascontiguousarray(table), model_name

"""``StaticSentenceTransformer``: a torch-free drop-in for ``SentenceTransformer`` on static models.

This module is the sentence-transformers adaptor and nothing else: it resolves the model name, asks
:mod:`staticst.persistence` for the parts, hands them to the engine (:class:`staticst.engine.Embedder`)
and turns sentence-transformers' arguments into engine calls. See ``docs/architecture.md``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tokenizers import Tokenizer

import staticst.util as util
from staticst._st_args import (
    PLAIN_OPTIONS,
    SIMILARITY_FN_NAMES,
    Precision,
    as_texts,
    check_device,
    check_encode_options,
    check_init_options,
    check_positive,
    check_token_embeddings,
    check_truncate_dim,
    convert_output,
    has_pairs,
    initial_prompts,
    invalid_text,
    prompted,
    renamed_inputs,
    resolve_prompt,
    warn_non_cpu_workers,
    warn_once,
)
from staticst._st_compat import CPUDevice, STCompatMixin
from staticst._st_io import STSaveMixin
from staticst.engine import ENCODE_STEP, Embedder
from staticst.errors import PoolingOverflowError
from staticst.model_card import ModelCardData
from staticst.persistence.hub import BUILTIN_MODEL_PATH, resolve_model
from staticst.persistence.load import ModelParts, read_model
from staticst.pooling import PoolingConfig, normalize_rows
from staticst.tokenization import TokenizerSettings

__all__ = ["ModelCardData", "StaticSentenceTransformer"]

logger = logging.getLogger(__name__)


class StaticSentenceTransformer(STSaveMixin, STCompatMixin):
    """Load a static embedding model and encode text like ``sentence_transformers.SentenceTransformer``.

    Args:
        model_name_or_path: A local folder, a Hugging Face Hub id, or ``None`` for the built-in model
            (``minishlab/potion-base-8M``, shipped in the package: no download).
        device: Accepted for compatibility; staticst always runs on the CPU (warns once if not ``"cpu"``).
        prompts: Prompt name -> text prepended to inputs; overrides prompts saved with the model.
        default_prompt_name: Prompt used when ``encode`` gets neither ``prompt`` nor ``prompt_name``.
        cache_folder: Hub cache folder (default ``SENTENCE_TRANSFORMERS_HOME`` or the HF cache).
        trust_remote_code: Accepted for compatibility; staticst never runs remote code.
        revision: Hub branch, tag or commit.
        local_files_only: Never use the network.
        token: Hub token.
        use_auth_token: Deprecated alias of ``token``.
        truncate_dim: Truncate embeddings to this many dimensions (Matryoshka).
        similarity_fn_name: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"``.
        model_card_data: Metadata for the model card.
        backend: Accepted for compatibility (``"torch"``, ``"onnx"``, ``"openvino"``); no effect.
        kernel: staticst's own setting: ``"native"`` (the compiled kernel), ``"numpy"`` (the pure path) or
            ``"auto"`` (native when built and supported); ``None`` reads ``STATICST_KERNEL``, else ``"auto"``.
            Both give bit-identical vectors; ``info()["backend"]`` says which runs and why.
        **kwargs: ``model_kwargs``, ``processor_kwargs``, ``tokenizer_kwargs``, ``config_kwargs`` are accepted
            with a warning (no effect on a static model); anything else raises ``TypeError``.

    Raises:
        ModelNotFoundError: The model or one of its files does not exist.
        UnknownLayoutError: The folder is in no known layout.
        CorruptModelError: A file is truncated or malformed.
        VocabularyMismatchError: The table does not fit the tokenizer's vocabulary.
        NonFiniteEmbeddingError: The table holds NaN or Inf.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | os.PathLike[str] | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        use_auth_token: bool | str | None = None,
        truncate_dim: int | None = None,
        similarity_fn_name: str | None = None,
        model_card_data: ModelCardData | None = None,
        backend: str = "torch",
        kernel: str | None = None,
        **kwargs: Any,
    ) -> None:
        token = check_init_options(kwargs, token, use_auth_token, device, backend, trust_remote_code, truncate_dim)
        folder, model_id, resolved_revision = resolve_model(
            model_name_or_path,
            revision=revision,
            token=token,
            cache_folder=cache_folder,
            local_files_only=local_files_only,
        )
        self.model_path = folder
        self.model_id = model_id
        self.revision = resolved_revision
        self._parts: ModelParts = read_model(folder)
        self._engine = Embedder.from_parts(self._parts, kernel=kernel)

        st_config = self._parts.st_config
        self.prompts, self.default_prompt_name = initial_prompts(st_config, prompts, default_prompt_name)
        self.truncate_dim: int | None = truncate_dim
        self._similarity_fn_name: str | None = None
        self.similarity_fn_name = similarity_fn_name or st_config.get("similarity_fn_name")
        self.model_card_data = model_card_data or ModelCardData(
            model_id=None,  # as ST: the id this model is saved / pushed under, set by save(model_name=...)
            base_model=None if Path(str(model_id)).expanduser().exists() else model_id,
            base_model_revision=resolved_revision,
            license="mit" if folder == BUILTIN_MODEL_PATH else None,
        )

    # ------------------------------------------------------------------ properties

    @property
    def engine(self) -> Embedder:
        """The engine this model encodes with (table, tokenizer and pooling settings in force)."""
        return self._engine

    @property
    def layout(self) -> str:
        """Name of the disk layout the model was loaded from."""
        return self._parts.resolved.layout.name

    @property
    def tokenizer(self) -> Tokenizer:
        """The model's ``tokenizers.Tokenizer`` (padding and truncation disabled; rules applied by staticst)."""
        return self._engine.tokenizer.tokenizer

    @property
    def tokenizer_settings(self) -> TokenizerSettings:
        """Truncation and unknown-token rules in force (see ``docs/model-formats.md``)."""
        return self._engine.settings

    def with_tokenizer_settings(self, settings: TokenizerSettings) -> StaticSentenceTransformer:
        """A copy of this model under other token rules (e.g. left truncation), sharing its table and caches.

        A staticst extension (the server uses it for TEI's ``truncation_direction``); this model is unchanged.
        """
        twin = copy.copy(self)
        twin._engine = self._engine.with_settings(settings)
        return twin

    @property
    def pooling_config(self) -> PoolingConfig:
        """The pooling arithmetic and normalisation in force (see ``docs/model-formats.md``)."""
        return self._engine.pooling

    @property
    def num_threads(self) -> int:
        """Native threads a large batch is split over (``STATICST_NUM_THREADS`` or the usable CPUs); settable."""
        return self._engine.threads

    @num_threads.setter
    def num_threads(self, value: int) -> None:
        self._engine.threads = value

    @property
    def device(self) -> CPUDevice:
        """Always ``"cpu"``: a ``str`` that also has ``torch.device``'s ``type`` / ``index`` and equals ``torch.device("cpu")``."""
        return CPUDevice()

    @property
    def embedding_table(self) -> np.ndarray:
        """The (read-only, possibly memory-mapped) embedding table."""
        return self._engine.table

    @property
    def max_seq_length(self) -> int | float:
        """Token limit per text (``math.inf`` when there is none, as sentence-transformers reports)."""
        limit = self._engine.settings.max_length
        return math.inf if limit is None else limit

    @max_seq_length.setter
    def max_seq_length(self, value: int | float | None) -> None:
        if value is None or value == math.inf:
            new: int | None = None
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"max_seq_length must be a positive int, None or math.inf, got {value!r}.")
        else:
            new = value
        self._engine = self._engine.with_max_length(new)

    @property
    def similarity_fn_name(self) -> str:
        """Similarity used by :meth:`similarity`; defaults to ``"cosine"`` on first access, as in ST."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | None) -> None:
        value = getattr(value, "value", value)
        if value is not None and value not in SIMILARITY_FN_NAMES:
            raise ValueError(f"similarity_fn_name must be one of {SIMILARITY_FN_NAMES}, got {value!r}.")
        self._similarity_fn_name = value

    def get_sentence_embedding_dimension(self) -> int:
        """Dimension of the vectors ``encode`` returns (after ``truncate_dim``)."""
        dim = self._engine.dim
        return min(dim, self.truncate_dim) if self.truncate_dim is not None else dim

    def get_embedding_dimension(self) -> int:
        """Alias of :meth:`get_sentence_embedding_dimension` (sentence-transformers 6 name)."""
        return self.get_sentence_embedding_dimension()

    def get_max_seq_length(self) -> int | float:
        """Same as :attr:`max_seq_length`."""
        return self.max_seq_length

    def get_model_kwargs(self) -> list[str]:
        """Extra ``encode`` keyword arguments this model uses: none, as for ST static models."""
        return []

    def num_parameters(self) -> int:
        """Number of stored parameters (table entries, plus per-token weights)."""
        weights = self._engine.weights
        return int(self._engine.table.size) + (int(weights.size) if weights is not None else 0)

    def info(self) -> dict[str, Any]:
        """A summary of the model: id, layout, dimensions, vocabulary, dtype and numeric settings."""
        engine = self._engine
        return {
            "model": self.model_id,
            "revision": self.revision,
            "path": str(self.model_path),
            "layout": self.layout,
            "dim": engine.dim,
            "vocab_size": int(self.tokenizer.get_vocab_size(with_added_tokens=True)),
            "table_rows": int(engine.table.shape[0]),
            "dtype": str(engine.table.dtype),
            "vocabulary_quantized": engine.mapping is not None,
            "token_weights": engine.weights is not None,
            **engine.info(),
            "num_parameters": self.num_parameters(),
        }

    def __repr__(self) -> str:
        i = self.info()
        return (
            f"StaticSentenceTransformer(model={i['model']!r}, layout={i['layout']!r}, dim={i['dim']}, "
            f"dtype={i['dtype']!r}, normalize={i['normalize']}, max_length={i['max_length']})"
        )

    # ------------------------------------------------------------------ encoding

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        return resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Pool ``texts`` into model vectors (the model's own normalisation, no prompt, no truncation).

        This is the core of :meth:`encode` (:meth:`staticst.engine.Embedder.embed`): ``(len(texts), dim)``
        float32, memory bounded per step.
        """
        return self._engine.embed(texts)

    def encode(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: Literal["sentence_embedding", "token_embeddings"] | None = "sentence_embedding",
        precision: Precision = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | list[str] | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Embed one text or a batch, with sentence-transformers 6.2 semantics.

        Args:
            inputs: A ``str`` (returns shape ``(dim,)``) or a list / tuple / 1-D array of ``str``
                (returns ``(n, dim)`` in input order); text pairs ``(a, b)`` (or an ``(n, 2)`` array) are
                encoded as one text each, as in ST. ``sentences=`` is accepted with ST's deprecation warning.
            prompt_name: Key of :attr:`prompts` whose text is prepended to every input.
            prompt: Text prepended to every input; wins over ``prompt_name``.
            batch_size: Progress-bar granularity (results do not depend on it); must be positive.
            show_progress_bar: Show a tqdm bar; ``None`` shows it when this logger is at INFO/DEBUG.
            output_value: ``"sentence_embedding"``, or ``None`` for ST's dict per input (``input_ids``,
                ``offsets``, ``sentence_embedding``, numpy); ``"token_embeddings"`` only for an empty input.
            precision: ``None`` / ``"float32"``, ``"int8"``, ``"uint8"``, ``"binary"`` or ``"ubinary"``
                (``staticst.util.quantize_embeddings``; ranges from the batch itself, as in ST).
            convert_to_numpy: Return numpy (default). ``False`` returns a list of torch tensors (needs torch).
            convert_to_tensor: Return one torch tensor (needs torch; imported only then).
            device: Accepted for compatibility (warns once if not ``"cpu"``); a list such as ``["cpu", "cpu"]``
                encodes large inputs in that many temporary worker processes, as in sentence-transformers.
            normalize_embeddings: L2-normalise after truncation.
            truncate_dim: Keep the first ``truncate_dim`` dimensions (default: the model's ``truncate_dim``).
            pool: A pool from :meth:`start_multi_process_pool`: inputs of at least
                ``staticst.multiprocess.POOL_MIN_TEXTS`` texts are encoded by its worker processes.
            chunk_size: Texts per chunk sent to a worker (default: about a quarter of each worker's share,
                between 1,024 and 8,192); no effect without a pool (warns once).
            **kwargs: ``task`` is accepted (no effect, as on ST static models); anything else raises.

        Returns:
            ``np.ndarray`` float32 (or int8/uint8 for quantized precisions); for ``encode([])`` the empty
            ``np.array([])`` sentence-transformers returns.

        Raises:
            ValueError: Unknown keyword argument, bad ``batch_size``, ``precision``, ``truncate_dim`` or
                ``prompt_name``.
            TypeError: Inputs that are not strings.
            MissingDependencyError: A torch output was requested and torch is not installed.
        """
        if kwargs or inputs is None:
            inputs = renamed_inputs(inputs, kwargs, "encode")
        options = (precision, output_value, convert_to_numpy, convert_to_tensor, device, pool, chunk_size)
        if type(inputs) is str and not kwargs and options == PLAIN_OPTIONS and type(batch_size) is int and batch_size > 0:
            return self._encode_one(inputs, prompt_name, prompt, normalize_embeddings, truncate_dim)
        result, _ = self._encode(
            inputs, prompt_name, prompt, batch_size, show_progress_bar, output_value, precision, convert_to_numpy,
            convert_to_tensor, device, normalize_embeddings, truncate_dim, pool, chunk_size, kwargs,
        )  # fmt: skip
        return result

    def encode_with_usage(self, inputs: str | Sequence[str] | np.ndarray, **kwargs: Any) -> tuple[Any, int]:
        """:meth:`encode`, and the number of token ids pooled for the inputs (prompts included), in one pass.

        A staticst extension (the server's OpenAI ``usage`` counts): the keyword arguments are
        :meth:`encode`'s, except ``pool`` and a list of ``device`` (worker processes do not count).

        Raises:
            ValueError: ``pool`` or a list of devices was given, or any reason :meth:`encode` raises.
        """
        if kwargs.get("pool") is not None or isinstance(kwargs.get("device"), list):
            raise ValueError("encode_with_usage() encodes in this process: drop pool= and device=[...].")
        names = (
            "prompt_name", "prompt", "batch_size", "show_progress_bar", "output_value", "precision", "convert_to_numpy",
            "convert_to_tensor", "device", "normalize_embeddings", "truncate_dim", "pool", "chunk_size",
        )  # fmt: skip
        defaults = (None, None, 32, None, "sentence_embedding", "float32", True, False, None, False, None, None, None)
        options = {name: kwargs.pop(name, default) for name, default in zip(names, defaults, strict=True)}
        return self._encode(inputs, **options, kwargs=kwargs)

    def _encode(
        self,
        inputs: Any,
        prompt_name: str | None,
        prompt: str | None,
        batch_size: Any,
        show_progress_bar: bool | None,
        output_value: Any,
        precision: Any,
        convert_to_numpy: bool,
        convert_to_tensor: bool,
        device: Any,
        normalize_embeddings: bool,
        truncate_dim: int | None,
        pool: dict[str, Any] | None,
        chunk_size: int | None,
        kwargs: dict[str, Any],
    ) -> tuple[Any, int]:
        """The general path of :meth:`encode`: ``(result, token ids pooled)`` (-1 when worker processes encoded)."""
        check_encode_options(type(self).__name__, batch_size, precision, output_value, kwargs)
        devices = device if isinstance(device, list) else None
        if pool is not None:
            from staticst.multiprocess import check_pool

            check_pool(pool)
        if devices is not None:
            if not devices:
                raise ValueError("device=[] names no worker: pass a list such as ['cpu', 'cpu'], or a single device.")
            warn_non_cpu_workers(devices)
        else:
            check_device(device)
        if chunk_size is not None:
            check_positive("chunk_size", chunk_size)
            if pool is None and devices is None:
                warn_once("encode:chunk_size", "chunk_size only applies with a pool (or a list of devices); no effect.")
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        if truncate_dim is not None:
            check_truncate_dim(truncate_dim)
        raw, single = as_texts(inputs)
        check_token_embeddings(output_value, len(raw))
        texts = prompted(self._resolve_prompt(prompt, prompt_name), raw)
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)

        emb = None
        tokens = -1
        try:
            if has_pairs(texts):
                emb = self._embed_items(texts)
            elif pool is not None or devices is not None:
                from staticst.multiprocess import embed_pooled

                with _bar(len(texts), bool(show_progress_bar)) as bar:
                    emb = embed_pooled(
                        self._engine, str(self.model_path), texts, pool, devices, chunk_size, bar.update if bar else None
                    )
            if emb is None:
                emb, tokens = self._embed_with_progress(texts, batch_size, bool(show_progress_bar))
        except (TypeError, ValueError) as exc:  # e.g. tokenizers' error for a lone surrogate: name the input
            error = invalid_text(texts)
            if error is None:
                raise
            raise error from exc
        if truncate_dim is not None:
            emb = emb[:, :truncate_dim]
        if output_value is None:
            dicts = self._output_dicts(raw, texts, np.ascontiguousarray(emb), batch_size)
            return (dicts[0] if single else dicts), tokens
        if normalize_embeddings:
            emb = _normalized(emb)
        result = convert_output(
            np.ascontiguousarray(emb),
            n=len(texts),
            single=single,
            output_value=output_value,
            precision=precision,
            convert_to_numpy=convert_to_numpy,
            convert_to_tensor=convert_to_tensor,
        )
        return result, tokens

    def _encode_one(
        self, text: str, prompt_name: str | None, prompt: str | None, normalize: bool, truncate_dim: int | None
    ) -> np.ndarray:
        """The short path of ``encode(str)``: same results, no batching machinery."""
        if prompt is not None or prompt_name is not None or self.default_prompt_name is not None:
            resolved = self._resolve_prompt(prompt, prompt_name)
            if resolved:
                text = resolved + text
        try:
            vec = self._engine.embed_one(text)
        except (TypeError, ValueError) as exc:  # e.g. tokenizers' error for a lone surrogate
            error = invalid_text([text])
            if error is None:
                raise
            raise error from exc
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim
        if truncate_dim is not None:
            check_truncate_dim(truncate_dim)
            vec = vec[:truncate_dim]
        if normalize:
            vec = _normalized(vec[None, :])[0]
        return np.ascontiguousarray(vec)

    def _embed_with_progress(self, texts: list[str], batch_size: int, show: bool) -> tuple[np.ndarray, int]:
        if not show or len(texts) <= batch_size:
            return self._engine.embed_counted(texts)
        from tqdm.auto import tqdm

        step = max(batch_size, min(ENCODE_STEP, len(texts) // 20 or 1))
        out = np.empty((len(texts), self._engine.dim), dtype=np.float32)
        tokens = 0
        with tqdm(total=len(texts), desc="Batches", unit="text") as bar:
            for lo in range(0, len(texts), step):
                hi = min(len(texts), lo + step)
                out[lo:hi], counted = self._engine.embed_counted(texts[lo:hi])
                tokens += counted
                bar.update(hi - lo)
        return out, tokens

    def encode_query(self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any) -> Any:
        """Like :meth:`encode`, using the ``"query"`` prompt when neither prompt argument is given."""
        inputs = renamed_inputs(inputs, kwargs, "encode_query")
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(inputs, prompt_name=prompt_name, prompt=prompt, task="query", **kwargs)

    def encode_document(self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any) -> Any:
        """Like :meth:`encode`, using the first of the ``"document"`` / ``"passage"`` / ``"corpus"`` prompts."""
        inputs = renamed_inputs(inputs, kwargs, "encode_document")
        if prompt_name is None and prompt is None:
            prompt_name = next((c for c in ("document", "passage", "corpus") if c in self.prompts), None)
        return self.encode(inputs, prompt_name=prompt_name, prompt=prompt, task="document", **kwargs)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """All-pairs similarity matrix under :attr:`similarity_fn_name` (numpy, float32)."""
        return util.similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> np.ndarray:
        """Row-wise similarity ``sim(a[i], b[i])`` under :attr:`similarity_fn_name` (numpy, float32)."""
        return util.pairwise_similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    @contextlib.contextmanager
    def truncate_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Temporarily set :attr:`truncate_dim` (a context manager, as in ST)."""
        if truncate_dim is not None:
            check_truncate_dim(truncate_dim)
        original = self.truncate_dim
        try:
            self.truncate_dim = truncate_dim
            yield
        finally:
            self.truncate_dim = original

    def tokenize(self, texts: Sequence[str], **kwargs: Any) -> dict[str, np.ndarray]:
        """Token ids as ``encode`` pools them: ``{"input_ids": flat ids, "offsets": start of each text}``.

        ST 6 deprecates this name for :meth:`preprocess`, which it equals (but for ``{}`` on no input).
        """
        batch, _ = as_texts(texts)
        ids, offsets = self._ids(batch)
        return {"input_ids": ids, "offsets": offsets[:-1]}



def _normalized(emb: np.ndarray) -> np.ndarray:
    """``normalize_embeddings``: sentence-transformers' L2 rule, raising on a norm that overflows."""
    try:
        return normalize_rows(emb, "sentence-transformers").astype(np.float32, copy=False)
    except FloatingPointError as exc:
        raise PoolingOverflowError(str(exc)) from None


@contextlib.contextmanager
def _bar(total: int, show: bool) -> Iterator[Any]:
    """A tqdm progress bar over ``total`` texts when ``show`` (else ``None``), closed on exit."""
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="Batches", unit="text") as bar:
        yield bar

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
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from tokenizers import Tokenizer

import staticst.util as util
from staticst._st_args import (
    PLAIN_OPTIONS,
    SIMILARITY_FN_NAMES,
    EncodeOptions,
    Precision,
    as_texts,
    check_device,
    check_encode_options,
    check_init_options,
    check_kernel_options,
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
from staticst._st_merge import merge_models
from staticst.engine import ENCODE_STEP, Embedder
from staticst.errors import PoolingOverflowError
from staticst.families import SENTENCE_TRANSFORMERS, Family, family_named
from staticst.model_card import ModelCardData
from staticst.modules import Module, Normalize, StaticEmbedding, parts_from_table
from staticst.persistence.hub import BUILTIN_MODEL_PATH, resolve_model
from staticst.persistence.load import ModelParts, read_model
from staticst.pooling import PoolingConfig, normalize_rows
from staticst.tokenization import TokenizerSettings
from staticst.tokenization.reloadable import real_tokenizer

__all__ = ["ModelCardData", "StaticSentenceTransformer"]

logger = logging.getLogger(__name__)


class StaticSentenceTransformer(STSaveMixin, STCompatMixin):
    """Load a static embedding model and encode text like ``sentence_transformers.SentenceTransformer``.

    Every folder is read the way sentence-transformers 6.3 reads it, whatever its layout (the reference is the
    class, not the folder): the unknown token is kept, the only token limit is the tokenizer's own saved
    truncation (``max_seq_length`` is ``math.inf`` otherwise), and output is normalised when ``modules.json``
    lists a ``Normalize`` module. ``family="model2vec"`` reads it under model2vec 0.10's rules instead.

    Args:
        model_name_or_path: A local folder, a Hugging Face Hub id, or ``None`` for the built-in model
            (``minishlab/potion-base-8M``, shipped in the package: no download).
        modules: Build the model from modules instead of a folder, as in sentence-transformers:
            ``[StaticEmbedding(...)]`` or ``[StaticEmbedding(...), Normalize()]`` (:mod:`staticst.modules`).
            Ignored, with sentence-transformers' warning, when ``model_name_or_path`` is given.
        device: Accepted for compatibility; staticst always runs on the CPU (warns once if not ``"cpu"``).
        prompts: Prompt name -> text prepended to inputs; overrides prompts saved with the model.
        default_prompt_name: Prompt used when ``encode`` gets neither ``prompt`` nor ``prompt_name``.
        cache_folder: Hub cache folder (default ``SENTENCE_TRANSFORMERS_HOME`` or the HF cache).
        trust_remote_code: Accepted for compatibility; staticst never runs remote code.
        revision: Hub branch, tag or commit.
        local_files_only: Never use the network.
        token: Hub token.
        use_auth_token: Deprecated alias of ``token``.
        model_kwargs: Accepted with a warning (a static model has no transformers model to pass them to).
        processor_kwargs: Accepted with a warning (``tokenizer_kwargs`` is its deprecated name).
        config_kwargs: Accepted with a warning.
        use_kernels: sentence-transformers 6.3's switch for a transformer backbone's Hub kernels; accepted as
            sentence-transformers accepts it, and, as there on a static model (no backbone), no effect.
            Not staticst's ``kernel`` setting.
        kernel_config: A ``transformers.KernelConfig`` (anything else raises ``TypeError``, as in
            sentence-transformers); implies ``use_kernels``; no effect on a static model.
        model_card_data: Metadata for the model card.
        backend: ``"torch"``, ``"onnx"`` or ``"openvino"``, accepted for compatibility (no effect; reported by
            :meth:`get_backend`).
        similarity_fn_name: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"``.
        truncate_dim: Truncate embeddings to this many dimensions (Matryoshka).
        family: staticst's own setting, the reference whose numeric rules apply: ``"sentence-transformers"``
            (default: what ``SentenceTransformer`` gives for the folder) or ``"model2vec"`` (what
            ``model2vec.StaticModel`` gives: ``[UNK]`` dropped, ``max_length`` from ``config.json`` (default
            512) with model2vec's character cut, normalisation from the config). See ``docs/model-formats.md``.
        kernel: staticst's own setting: ``"native"`` (the compiled kernel), ``"numpy"`` (the pure path) or
            ``"auto"`` (native when built and supported); ``None`` reads ``STATICST_KERNEL``, else ``"auto"``.
            Both give bit-identical vectors; ``info()["backend"]`` says which runs and why.
        **kwargs: ``tokenizer_kwargs`` (the deprecated name of ``processor_kwargs``); anything else raises
            ``TypeError``.

    Raises:
        ModelNotFoundError: The model or one of its files does not exist.
        UnknownLayoutError: The folder is in no known layout.
        CorruptModelError: A file is truncated or malformed.
        VocabularyMismatchError: The table does not fit the tokenizer's vocabulary.
        NonFiniteEmbeddingError: The table holds NaN or Inf.
        ValueError: An unknown ``family`` or ``backend``, an empty ``modules`` list, ``use_kernels`` with a
            backend other than ``"torch"``.
        TypeError: A module staticst does not run, a ``kernel_config`` that is not a ``KernelConfig``, or an
            unknown keyword argument.
    """

    #: The archetype sentence-transformers writes to ``config_sentence_transformers.json``.
    model_type: str = "SentenceTransformer"
    #: The class whose API this one implements: the name sentence-transformers' messages give.
    _st_name: str = "SentenceTransformer"
    #: The similarity functions a single-vector model supports (multi-vector ``maxsim`` is refused).
    SUPPORTED_SIMILARITY_FN_NAMES: ClassVar[tuple[str, ...]] = SIMILARITY_FN_NAMES

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        modules: Sequence[Any] | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | os.PathLike[str] | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        use_auth_token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        use_kernels: bool = False,
        kernel_config: Any = None,
        model_card_data: ModelCardData | None = None,
        backend: str = "torch",
        similarity_fn_name: str | None = None,
        truncate_dim: int | None = None,
        family: str | Family | None = None,
        kernel: str | None = None,
        **kwargs: Any,
    ) -> None:
        no_effect = {"model_kwargs": model_kwargs, "processor_kwargs": processor_kwargs, "config_kwargs": config_kwargs}
        token = check_init_options(
            {**kwargs, **no_effect}, token, use_auth_token, device, backend, trust_remote_code, truncate_dim
        )
        self.use_kernels, self.kernel_config = check_kernel_options(use_kernels, kernel_config, backend)
        self._family: Family = family_named(family) if family is not None else SENTENCE_TRANSFORMERS
        self.backend = backend
        self.trust_remote_code = trust_remote_code
        self._model_card_text: str | None = None
        if model_name_or_path is not None and modules is not None:
            logger.warning(
                "Both `model_name_or_path` and `modules` were provided. The modules are loaded from "
                "`model_name_or_path`, so the `modules` argument is ignored."
            )
        base_model: str | None
        if modules is not None and model_name_or_path is None:
            st_modules = _checked_modules(modules, type(self).__name__)
            first = st_modules[0]
            assert isinstance(first, StaticEmbedding)  # _checked_modules puts one first
            normalize = any(isinstance(m, Normalize) for m in st_modules[1:])
            self.model_path: Path | None = None
            self.model_id: str | None = None
            self.revision: str | None = None
            self._parts: ModelParts = parts_from_table(first.weight, first.tokenizer, normalize)
            self._engine = Embedder.from_parts(self._parts, kernel=kernel, family=self._family, normalize=normalize)
            self._st_modules = st_modules
            base_model = first.base_model
        else:
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
            self._parts = read_model(folder)
            self._engine = Embedder.from_parts(self._parts, kernel=kernel, family=self._family)
            self._st_modules = [StaticEmbedding._bound_to(self)]
            if self._engine.pooling.normalize:
                self._st_modules.append(Normalize())
            base_model = None if Path(str(model_id)).expanduser().exists() else model_id
        self._module_names = [str(i) for i in range(len(self._st_modules))]

        st_config = self._parts.st_config
        self.prompts, self.default_prompt_name = initial_prompts(st_config, prompts, default_prompt_name)
        saved_truncate_dim = st_config.get("truncate_dim")
        self.truncate_dim: int | None = truncate_dim if truncate_dim is not None else saved_truncate_dim
        self._similarity_fn_name: str | None = None
        saved_similarity = st_config.get("similarity_fn_name")
        if similarity_fn_name is None and saved_similarity in SIMILARITY_FN_NAMES:
            similarity_fn_name = saved_similarity  # a multi-vector name saved by another model class falls through
        self.similarity_fn_name = similarity_fn_name
        self.model_card_data = model_card_data or ModelCardData(
            model_id=None,  # as ST: the id this model is saved / pushed under, set by save(model_name=...)
            base_model=base_model,
            base_model_revision=self.revision,
            license="mit" if self.model_path == BUILTIN_MODEL_PATH else None,
        )
        self.model_card_data.register_model(self)

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
        return real_tokenizer(self._engine.tokenizer.tokenizer)

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
        """The read-only embedding table (a view of the machine-wide copy when it is 16 MiB or more)."""
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
        if value is not None and value not in self.SUPPORTED_SIMILARITY_FN_NAMES:
            hint = " Use MultiVectorEncoder for MaxSim late-interaction scoring." if value == "maxsim" else ""
            raise ValueError(
                f"{type(self).__name__} only supports similarity_fn_name in "
                f"{self.SUPPORTED_SIMILARITY_FN_NAMES}, got {value!r}.{hint}"
            )
        self._similarity_fn_name = value

    def _parse_model_config(self, model_config: dict[str, Any]) -> None:
        """Merge a saved ``config_sentence_transformers.json`` into the settings, as sentence-transformers 6.3 does.

        Saved prompts fill only names not set yet; the saved default prompt, similarity function (a supported
        one: a multi-vector name falls through) and ``truncate_dim`` apply only where none is set.
        """
        for name, text in dict(model_config.get("prompts") or {}).items():
            if name not in self.prompts or self.prompts[name] is None:
                self.prompts[name] = text
        if self.default_prompt_name is None:
            self.default_prompt_name = model_config.get("default_prompt_name")
        saved = model_config.get("similarity_fn_name")
        if self._similarity_fn_name is None and saved in self.SUPPORTED_SIMILARITY_FN_NAMES:
            self.similarity_fn_name = saved
        if self.truncate_dim is None:
            self.truncate_dim = model_config.get("truncate_dim")

    @property
    def family(self) -> str:
        """The reference whose numeric rules apply: ``"sentence-transformers"`` (default) or ``"model2vec"``."""
        return self._engine.family.name

    @property
    def modalities(self) -> list[str]:
        """The input modalities the model takes: ``["text"]`` (sentence-transformers 6's ``modalities``)."""
        return list(getattr(self._st_modules[0], "modalities", ["text"]))

    def supports(self, modality: str | tuple[str, ...]) -> bool:
        """Whether the model takes ``modality`` (``"text"``; a tuple only if every part is taken and ``"message"`` is)."""
        supported = self.modalities
        if modality in supported:
            return True
        if isinstance(modality, tuple) and "message" in supported:
            return all(part in supported for part in modality)
        return False

    def get_backend(self) -> str:
        """The ``backend`` the model was created with (``"torch"`` by default), as sentence-transformers reports it.

        staticst computes with its own engine whatever the value; ``info()["backend"]`` says which (native or numpy).
        """
        return self.backend

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the table as sentence-transformers holds it (``float32`` for a float32 table; numpy, not torch).

        A vocabulary-quantized table with per-token weights is held folded into float32, as in sentence-transformers.
        """
        engine = self._engine
        if engine.weights is not None:
            return np.dtype(np.promote_types(engine.table.dtype, np.float32))
        return np.dtype(engine.table.dtype)

    def get_device_name(self) -> str:
        """``"cpu"``: the device staticst runs on (sentence-transformers picks ``cuda`` / ``mps`` when available)."""
        return "cpu"

    @property
    def tokenizer_kwargs(self) -> dict[str, Any]:
        """Nothing: a static model's tokenizer takes no loading arguments (sentence-transformers 5 attribute)."""
        return {}

    def get_embedding_dimension(self) -> int:
        """Dimension of the vectors ``encode`` returns (after ``truncate_dim``)."""
        dim = self._engine.dim
        return min(dim, self.truncate_dim) if self.truncate_dim is not None else dim

    def get_sentence_embedding_dimension(self) -> int:
        """The older name of :meth:`get_embedding_dimension` (sentence-transformers 6 deprecates it; kept silent here)."""
        return self.get_embedding_dimension()

    def get_max_seq_length(self) -> int | float:
        """Same as :attr:`max_seq_length`."""
        return self.max_seq_length

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
            "path": None if self.model_path is None else str(self.model_path),
            "layout": self.layout,
            "dim": engine.dim,
            "vocab_size": engine.tokenizer.vocab_size,
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
        output = (precision, output_value, convert_to_numpy, convert_to_tensor, device, pool, chunk_size)
        if not kwargs and output == PLAIN_OPTIONS and type(batch_size) is int and batch_size > 0:
            if type(inputs) is str:
                return self._encode_one(inputs, prompt_name, prompt, normalize_embeddings, truncate_dim)
            # one text in a list: the same short path (no progress bar would be shown for it)
            if (
                type(inputs) is list
                and len(inputs) == 1
                and type(inputs[0]) is str
                and (
                    show_progress_bar is False or (show_progress_bar is None and not logger.isEnabledFor(logging.INFO))
                )
            ):
                return self._encode_one(inputs[0], prompt_name, prompt, normalize_embeddings, truncate_dim)[None, :]
        options = EncodeOptions(
            prompt_name, prompt, batch_size, show_progress_bar, output_value, precision, convert_to_numpy,
            convert_to_tensor, device, normalize_embeddings, truncate_dim, pool, chunk_size,
        )  # fmt: skip
        result, _ = self._encode(inputs, options, kwargs)
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
        options = EncodeOptions.pop_from(kwargs)
        return self._encode(inputs, options, kwargs)

    def _encode(self, inputs: Any, options: EncodeOptions, kwargs: dict[str, Any]) -> tuple[Any, int]:
        """The general path of :meth:`encode`: ``(result, token ids pooled)`` (-1 when worker processes encoded)."""
        check_encode_options(
            self._st_name, options.batch_size, options.precision, options.output_value, kwargs, self.get_model_kwargs()
        )
        devices = options.device if isinstance(options.device, list) else None
        if options.pool is not None:
            from staticst.multiprocess import check_pool

            check_pool(options.pool)
        if devices is not None:
            if not devices:
                raise ValueError("device=[] names no worker: pass a list such as ['cpu', 'cpu'], or a single device.")
            warn_non_cpu_workers(devices)
        else:
            check_device(options.device)
        if options.chunk_size is not None:
            check_positive("chunk_size", options.chunk_size)
            if options.pool is None and devices is None:
                warn_once("encode:chunk_size", "chunk_size only applies with a pool (or a list of devices); no effect.")
        truncate_dim = options.truncate_dim if options.truncate_dim is not None else self.truncate_dim
        if truncate_dim is not None:
            check_truncate_dim(truncate_dim)
        raw, single = as_texts(inputs)
        check_token_embeddings(options.output_value, len(raw))
        texts = prompted(self._resolve_prompt(options.prompt, options.prompt_name), raw)
        show_progress_bar = options.show_progress_bar
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)

        emb = None
        tokens = -1
        try:
            if has_pairs(texts):
                emb = self._embed_items(texts)
            elif options.pool is not None or devices is not None:
                from staticst.multiprocess import embed_pooled

                with _bar(len(texts), bool(show_progress_bar), options.batch_size) as bar:
                    emb = embed_pooled(
                        self._engine,
                        self._worker_folder(),
                        texts,
                        options.pool,
                        devices,
                        options.chunk_size,
                        bar.update if bar else None,
                    )
            if emb is None:
                emb, tokens = self._embed_with_progress(texts, options.batch_size, bool(show_progress_bar))
        except (TypeError, ValueError) as exc:  # e.g. tokenizers' error for a lone surrogate: name the input
            error = invalid_text(texts)
            if error is None:
                raise
            raise error from exc
        if truncate_dim is not None:
            emb = emb[:, :truncate_dim]
        if options.output_value is None:
            as_tensors = (
                options.convert_to_tensor or not options.convert_to_numpy
            )  # torch only when the caller asks for tensors
            dicts = self._output_dicts(raw, texts, np.ascontiguousarray(emb), options.batch_size, as_tensors)
            return (dicts[0] if single else dicts), tokens
        if options.normalize_embeddings:
            emb = _normalized(emb)
        result = convert_output(
            np.ascontiguousarray(emb),
            n=len(texts),
            single=single,
            output_value=options.output_value,
            precision=options.precision,
            convert_to_numpy=options.convert_to_numpy,
            convert_to_tensor=options.convert_to_tensor,
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
        if not show or not texts:
            return self._engine.embed_counted(texts)
        step = max(batch_size, min(ENCODE_STEP, len(texts) // 20 or 1))
        out = np.empty((len(texts), self._engine.dim), dtype=np.float32)
        tokens = 0
        with _bar(len(texts), True, batch_size) as bar:
            assert bar is not None
            for lo in range(0, len(texts), step):
                hi = min(len(texts), lo + step)
                out[lo:hi], counted = self._engine.embed_counted(texts[lo:hi])
                tokens += counted
                bar.update(hi - lo)
        return out, tokens

    def encode_query(
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
        """:meth:`encode` with the ``"query"`` prompt when neither prompt argument is given, and ``task="query"``.

        As in sentence-transformers 6.3, ``encode`` is called with ``inputs=`` and every option by keyword
        (code that wraps or overrides ``encode`` sees the same arguments).
        """
        inputs = renamed_inputs(inputs, kwargs, "encode_query")
        if prompt_name is None and prompt is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(
            inputs=inputs,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            output_value=output_value,
            precision=precision,
            convert_to_numpy=convert_to_numpy,
            convert_to_tensor=convert_to_tensor,
            device=device,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            pool=pool,
            chunk_size=chunk_size,
            task="query",
            **kwargs,
        )

    def encode_document(
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
        """:meth:`encode` with the first of the ``"document"`` / ``"passage"`` / ``"corpus"`` prompts, ``task="document"``.

        As in sentence-transformers 6.3, ``encode`` is called with ``inputs=`` and every option by keyword.
        """
        inputs = renamed_inputs(inputs, kwargs, "encode_document")
        if prompt_name is None and prompt is None:
            prompt_name = next((c for c in ("document", "passage", "corpus") if c in self.prompts), None)
        return self.encode(
            inputs=inputs,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            output_value=output_value,
            precision=precision,
            convert_to_numpy=convert_to_numpy,
            convert_to_tensor=convert_to_tensor,
            device=device,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            pool=pool,
            chunk_size=chunk_size,
            task="document",
            **kwargs,
        )

    def encode_multi_process(
        self,
        sentences: list[str],
        pool: dict[str, Any],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        chunk_size: int | None = None,
        show_progress_bar: bool | None = None,
        precision: Precision = "float32",
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
    ) -> np.ndarray:
        """Deprecated (as in sentence-transformers 6): :meth:`encode` with ``pool=pool`` does the same."""
        warnings.warn(
            "The `encode_multi_process` method has been deprecated, and its functionality has been integrated into "
            "`encode`. You can now call `encode` with the same parameters to achieve multi-process encoding.",
            DeprecationWarning,
            stacklevel=2,
        )
        result: np.ndarray = self.encode(
            sentences,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            output_value="sentence_embedding",
            precision=precision,
            convert_to_numpy=True,
            convert_to_tensor=False,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            pool=pool,
            chunk_size=chunk_size,
        )
        return result

    @classmethod
    def merge(
        cls,
        models: Sequence[str | os.PathLike[str] | StaticSentenceTransformer],
        method: str = "linear",
        *,
        base_model: str | os.PathLike[str] | StaticSentenceTransformer | None = None,
        parameters: dict[str, Any] | None = None,
        dtype: Any = "float32",
        out_dtype: Any = None,
        device: str = "cpu",
        batch_options: Any = None,
        **load_kwargs: Any,
    ) -> StaticSentenceTransformer:
        """Merge static models that share a tokenizer, as sentence-transformers 6.3's ``merge`` does, without torch.

        sentence-transformers merges every floating-point tensor with mergekit; a static model has one, the token
        table (model2vec's quantization and token weights folded in, as sentence-transformers reads them). The
        models must have the same modules and settings and the same tokenizer vocabulary; the result is a copy
        of the first model (prompts, similarity function, token rules, normalisation) holding the merged table,
        with a fresh model card. The same arithmetic as mergekit 0.1.5 for the methods staticst runs
        (``docs/compatibility.md`` gives the measured agreement).

        Args:
            models: Two or more models or local paths / Hub ids (loaded with ``load_kwargs``).
            method: ``"linear"`` (weighted mean; ``parameters={"weight": [...], "normalize": True}``),
                ``"slerp"`` (two models; ``{"t": 0.5}``; the base defaults to the first), ``"task_arithmetic"``
                or ``"ties"`` (``base_model`` required; ``weight`` and ``density`` per model other than the
                base, ``lambda``, ``normalize``, ``rescale``). mergekit's other methods raise a ``ValueError``
                naming these (they need ``sentence_transformers.SentenceTransformer.merge``, with torch).
            base_model: The reference model of task-vector methods: one of ``models`` (the same object or
                path) or another model.
            parameters: The method's parameters; per-model values as a list in input order (models other than
                the base, for task-vector methods), a dict keyed by input index, or one value for all.
            dtype: Convert the tables to ``"float16"``, ``"float32"`` (default) or ``"float64"`` (names or torch
                dtypes) before merging; ``None`` keeps their dtype.
            out_dtype: Cast the merged table to this dtype (``None``: the method's output dtype).
            device: Accepted for compatibility (staticst runs on the CPU).
            batch_options: Accepted for compatibility (mergekit's tensor packing); no effect.
            **load_kwargs: Passed to the constructor when a model is given as a path or id.

        Returns:
            A new model; ``save_pretrained(path)`` writes it in the first model's layout.

        Raises:
            ValueError: Fewer than two models, models that do not fit together (the message names the model and
                what differs), a method staticst does not run, a ``base_model`` the method does not use (or its
                absence where required), parameter values of the wrong number, a bad dtype, a quantized
                (integer) table, or a merge that produces NaN / Inf.
            TypeError: An input that is neither a model nor a path, or unknown parameters.
        """
        return merge_models(
            cls,
            models,
            method,
            base_model=base_model,
            parameters=parameters,
            dtype=dtype,
            out_dtype=out_dtype,
            device=device,
            batch_options=batch_options,
            **load_kwargs,
        )

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

    @contextlib.contextmanager
    def truncate_sentence_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Deprecated name of :meth:`truncate_embeddings` (warns ``FutureWarning``, as sentence-transformers 6.3)."""
        warnings.warn(
            "The `truncate_sentence_embeddings` method has been renamed to `truncate_embeddings`.",
            FutureWarning,
            stacklevel=3,
        )
        with self.truncate_embeddings(truncate_dim):
            yield

    def tokenize(self, texts: Sequence[str], **kwargs: Any) -> dict[str, np.ndarray]:
        """Token ids as ``encode`` pools them: ``{"input_ids": flat ids, "offsets": start of each text}``.

        ST 6 deprecates this name for :meth:`preprocess`, which it equals (but for ``{}`` on no input).
        """
        batch, _ = as_texts(texts)
        ids, offsets = self._ids(batch)
        return {"input_ids": ids, "offsets": offsets[:-1]}


def _checked_modules(modules: Sequence[Any], owner: str) -> list[Module]:
    """The ``modules=`` of a model: a :class:`StaticEmbedding` followed by optional :class:`Normalize` modules.

    sentence-transformers' own ``StaticEmbedding`` / ``Normalize`` objects are taken too (their table is copied
    to numpy), so code that builds the torch modules works unchanged.

    Raises:
        ValueError: An empty list (sentence-transformers' message).
        TypeError: Any other module (the message names it).
    """
    modules = list(modules.values()) if isinstance(modules, dict) else list(modules)
    if not modules:
        raise ValueError(
            f"An empty modules list was passed to {owner}. Please provide at least one module, e.g. a Transformer module."
        )
    first = modules[0]
    if not isinstance(first, StaticEmbedding):
        weight = getattr(getattr(first, "embedding", None), "weight", None)
        if type(first).__name__ != "StaticEmbedding" or weight is None:
            raise TypeError(
                f"{owner}(modules=...) runs a StaticEmbedding followed by an optional Normalize; the first module is "
                f"{type(first).__name__}. Build it with staticst.StaticEmbedding(tokenizer, embedding_weights=...) or "
                "StaticEmbedding.from_model2vec(...)."
            )
        first = StaticEmbedding(
            first.tokenizer, embedding_weights=weight, base_model=getattr(first, "base_model", None)
        )
    rest: list[Module] = []
    for i, module in enumerate(modules[1:], start=1):
        if type(module).__name__ != "Normalize":
            raise TypeError(
                f"{owner}(modules=...) runs a StaticEmbedding followed by an optional Normalize; module {i} is "
                f"{type(module).__name__}, which a static model does not run."
            )
        rest.append(module if isinstance(module, Normalize) else Normalize())
    return [first, *rest]


def _normalized(emb: np.ndarray) -> np.ndarray:
    """``normalize_embeddings``: sentence-transformers' L2 rule, raising on a norm that overflows."""
    try:
        return normalize_rows(emb, "sentence-transformers").astype(np.float32, copy=False)
    except FloatingPointError as exc:
        raise PoolingOverflowError(str(exc)) from None


class _BatchBar:
    """Counts texts done, shows batches of ``batch_size`` done: sentence-transformers' "Batches" bar."""

    def __init__(self, bar: Any, batch_size: int) -> None:
        self._bar = bar
        self._batch_size = batch_size
        self._texts = 0

    def update(self, texts: int) -> None:
        """Record ``texts`` more texts encoded; the bar moves by the batches they complete."""
        before = -(-self._texts // self._batch_size)
        self._texts += texts
        self._bar.update(-(-self._texts // self._batch_size) - before)


@contextlib.contextmanager
def _bar(total: int, show: bool, batch_size: int) -> Iterator[_BatchBar | None]:
    """A tqdm bar over the batches of ``total`` texts when ``show`` (else ``None``), closed on exit.

    As sentence-transformers' ``encode`` shows it: "Batches", ``ceil(total / batch_size)`` steps; its
    ``update`` takes a number of texts.
    """
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=-(-total // batch_size), desc="Batches") as bar:
        yield _BatchBar(bar, batch_size)

"""What code written for a torch ``SentenceTransformer`` calls besides ``encode``, on the static facade.

:class:`STCompatMixin` gives :class:`staticst.StaticSentenceTransformer` the rest of the surface a user's
existing code hits: pickling and ``copy.deepcopy``, ``preprocess`` / ``is_singular_input``, text pairs and
``output_value=None`` in ``encode``, the torch module calls (``to``, ``eval``, ``train``, ``half``, ...),
``model[0]`` / ``len(model)`` / iteration (saving and publishing: :mod:`staticst._st_io`). Nothing here is numeric:
vectors come from :class:`staticst.engine.Embedder`.
"""

from __future__ import annotations

import builtins
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from staticst._pairs import token_ids
from staticst._st_args import as_texts, input_length, invalid_text, prompted, warn_once
from staticst.engine import Embedder
from staticst.modules import Module, Normalize
from staticst.persistence.hub import BUILTIN_MODEL_PATH
from staticst.persistence.load import ModelParts, read_model

__all__ = ["CPUDevice", "STCompatMixin", "token_ids"]  # token_ids: re-exported from staticst._pairs

logger = logging.getLogger("staticst.model")


class CPUDevice(str):
    """What ``model.device`` is: the string ``"cpu"`` that also behaves like ST's ``torch.device("cpu")``.

    It has ``type`` (``"cpu"``) and ``index`` (``None``) as a ``torch.device`` does, and compares equal to
    ``torch.device("cpu")`` (so ``tensor.device == model.device`` holds, as in sentence-transformers), with
    no torch import.
    """

    __slots__ = ()

    def __new__(cls) -> CPUDevice:
        return super().__new__(cls, "cpu")

    @property
    def type(self) -> str:
        """``"cpu"``, as ``torch.device("cpu").type``."""
        return "cpu"

    @property
    def index(self) -> None:  # type: ignore[override]  # torch.device.index, not str.index
        """``None``, as ``torch.device("cpu").index``."""
        return None

    def __eq__(self, other: object) -> bool:
        if type(other).__name__ == "device" and type(other).__module__ == "torch":
            return getattr(other, "type", None) == "cpu" and getattr(other, "index", None) in (None, 0)
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__

    def __reduce__(self) -> tuple[builtins.type[CPUDevice], tuple[()]]:
        return (CPUDevice, ())


class STCompatMixin:
    """The torch-model surface of the facade (see the module docstring)."""

    _engine: Embedder
    _parts: ModelParts
    model_path: Path | None
    model_id: str | None
    model_card_data: Any
    _st_modules: list[Module]
    _module_names: list[str]
    training: bool = False

    # ------------------------------------------------------------------ pickling

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the parts read from disk and the settings in force, not the native kernel or the word cache.

        The table travels with the pickle (it is the model's private memory, as ST pickles its weights), so
        the copy works where the folder does not exist; the built-in model travels as a reference to the copy
        inside the package. The engine, its native kernel and its word cache are rebuilt on unpickling.
        """
        state = self.__dict__.copy()
        engine: Embedder = state.pop("_engine")
        state.pop("_pair_tokenizer", None)
        state.pop("_worker_tmp", None)
        state["_engine_state"] = (engine.kernel_request, engine.threads, engine.settings, engine.pooling, engine.family)
        if self.model_path is not None and Path(self.model_path) == BUILTIN_MODEL_PATH:
            state["_parts"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the engine from the pickled parts and settings (see :meth:`__getstate__`)."""
        kernel, threads, settings, pooling, family = state.pop("_engine_state")
        if state["_parts"] is None:
            state["_parts"] = read_model(BUILTIN_MODEL_PATH)
            state["model_path"] = BUILTIN_MODEL_PATH
        self.__dict__.update(state)
        engine = Embedder.from_parts(self._parts, kernel=kernel, threads=threads, family=family)
        self._engine = engine.with_settings(settings, pooling)

    # ------------------------------------------------------------------ torch module calls

    def to(self, *args: Any, **kwargs: Any) -> Any:
        """No effect for ``"cpu"``; any other device or a dtype warns once (staticst runs float32 on the CPU)."""
        for value in (*args, *kwargs.values()):
            if str(value) not in ("cpu", "torch.float32", "None"):
                warn_once(f"to:{value}", f"staticst runs on the CPU in float32; .to({value!r}) has no effect.")
        return self

    def cpu(self) -> Any:
        """No effect (staticst always runs on the CPU)."""
        return self

    def cuda(self, device: Any = None) -> Any:
        """No effect, with a warning once: staticst runs on the CPU."""
        warn_once("to:cuda", "staticst runs on the CPU; .cuda() has no effect.")
        return self

    def eval(self) -> Any:
        """No effect: a static model is always in inference mode."""
        return self

    def train(self, mode: bool = True) -> Any:
        """``train(False)`` has no effect; ``train(True)`` warns once (staticst does not train)."""
        if mode:
            warn_once("train", "staticst does not train models; .train() has no effect (training stays False).")
        return self

    def half(self) -> Any:
        """No effect, with a warning once: vectors stay float32 (cast them with ``.astype(np.float16)``)."""
        warn_once(
            "half", "staticst computes in float32; .half() has no effect. Cast the output: emb.astype(np.float16)."
        )
        return self

    def bfloat16(self) -> Any:
        """No effect, with a warning once: vectors stay float32."""
        warn_once("bfloat16", "staticst computes in float32; .bfloat16() has no effect.")
        return self

    def float(self) -> Any:
        """No effect: vectors are already float32."""
        return self

    def set_pooling_include_prompt(self, include_prompt: bool) -> None:
        """No effect, as in sentence-transformers on a model without a ``Pooling`` module (a static model has none)."""

    def requires_grad_(self, requires_grad: bool = True) -> Any:
        """No effect: there are no gradients."""
        return self

    # ------------------------------------------------------------------ modules

    def _refresh_normalize(self) -> None:
        """Pool with normalisation exactly when a ``Normalize`` module follows the input module (as ST runs them)."""
        normalize = any(isinstance(m, Normalize) for m in self._st_modules[1:])
        if normalize != self._engine.pooling.normalize:
            self._engine = self._engine.with_settings(
                pooling=dataclasses.replace(self._engine.pooling, normalize=normalize)
            )

    def __getitem__(self, index: int) -> Module:
        """``model[0]``: the input :class:`~staticst.StaticEmbedding`; ``model[1]``: :class:`~staticst.Normalize` if any."""
        return self._st_modules[index]

    def __len__(self) -> int:
        """The number of modules, as ST counts them (``StaticEmbedding``, plus ``Normalize`` when normalised)."""
        return len(self._st_modules)

    def __iter__(self) -> Iterator[Module]:
        """The modules (see :meth:`__getitem__`)."""
        return iter(list(self._st_modules))

    def children(self) -> Iterator[Module]:
        """The modules in order (``nn.Module.children``)."""
        return iter(list(self._st_modules))

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` pairs, named ``"0"``, ``"1"``, ... as ST names them (``nn.Module.named_children``)."""
        return iter(list(zip(self._module_names, self._st_modules, strict=True)))

    def add_module(self, name: str, module: Any) -> None:
        """Append a module after the last one (``nn.Module.add_module``): a :class:`~staticst.Normalize`.

        Raises:
            TypeError: ``module`` is not a ``Normalize`` module (a static model runs its input module and an
                optional ``Normalize``, nothing else).
            KeyError: A module of that name exists already.
        """
        if type(module).__name__ != "Normalize":
            raise TypeError(
                f"add_module({name!r}, {type(module).__name__}): a static model runs its StaticEmbedding followed by "
                "an optional Normalize; pass staticst.Normalize()."
            )
        if str(name) in self._module_names:
            raise KeyError(f"attribute {name!r} already exists")
        self._st_modules.append(module if isinstance(module, Normalize) else Normalize())
        self._module_names.append(str(name))
        self._refresh_normalize()

    def get_model_kwargs(self) -> list[str]:
        """Extra ``encode`` keyword arguments the modules take (their ``forward_kwargs``): none for a static model."""
        kwargs: set[str] = set()
        for module in self._st_modules:
            kwargs.update(getattr(module, "forward_kwargs", ()))
        return list(kwargs)

    # ------------------------------------------------------------------ inputs

    def is_singular_input(self, inputs: Any) -> bool:
        """Whether ``encode`` treats ``inputs`` as one example (ST's rule: anything but a list, tuple or array)."""
        if isinstance(inputs, (list, tuple)):
            return False
        return not (isinstance(inputs, np.ndarray) and inputs.ndim >= 1 and inputs.dtype.kind in ("U", "O"))

    def preprocess(self, inputs: Sequence[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, np.ndarray]:
        """The ids ``encode`` pools: ``{"input_ids": flat int64 ids, "offsets": start of each input}`` (ST 6's name).

        Args:
            inputs: A list of texts or text pairs.
            prompt: Text prepended to every input.
            **kwargs: Accepted for compatibility (``processing_kwargs``); no effect.

        Returns:
            numpy arrays where sentence-transformers returns tensors; ``{}`` for no input, as ST.
        """
        if not len(inputs):
            return {}
        items, _ = as_texts(list(inputs) if isinstance(inputs, tuple) else inputs)
        ids, offsets = self._ids(prompted(prompt, items))
        return {"input_ids": ids, "offsets": offsets[:-1]}

    # ------------------------------------------------------------------ token ids

    def _ids(self, items: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Flat ids and ``len(items) + 1`` offsets of texts and text pairs, as :meth:`_embed_items` pools them."""
        return token_ids(self._engine, items, self.__dict__)

    def _embed_items(self, items: list[Any]) -> np.ndarray:
        """Model vectors of a batch holding text pairs (texts alone go through the engine's fast path)."""
        try:
            ids, offsets = self._ids(items)
            return self._engine.pool_ids(ids, offsets)
        except (TypeError, ValueError) as exc:
            error = invalid_text(items)
            if error is None:
                raise
            raise error from exc

    def _output_dicts(
        self, raw: list[Any], items: list[Any], emb: np.ndarray, batch_size: int, as_tensors: bool
    ) -> list[dict[str, Any]]:
        """``output_value=None``: per input, the dict sentence-transformers returns.

        sentence-transformers runs inputs longest first in batches of ``batch_size``; each dict holds the
        batch's ``input_ids`` (the input's own id when the batch has as many ids as inputs), the input's
        ``offsets`` entry within its batch, and its ``sentence_embedding`` (after ``truncate_dim``, before
        ``normalize_embeddings``, as in ST). Values are numpy, or torch tensors (as ST's) when ``as_tensors``
        (the caller asked for tensors: ``convert_to_tensor=True`` or ``convert_to_numpy=False``).
        """
        convert = _torch_converter() if as_tensors else None
        order = np.argsort([-input_length(t) for t in raw])
        out: list[dict[str, Any]] = [{} for _ in raw]
        for start in range(0, len(order), batch_size):
            batch = [int(i) for i in order[start : start + batch_size]]
            ids, offsets = self._ids([items[i] for i in batch])
            for j, i in enumerate(batch):
                item = {
                    "input_ids": ids[j] if len(ids) == len(batch) else ids,
                    "offsets": offsets[j],
                    "sentence_embedding": emb[i],
                }
                out[i] = {k: convert(v) for k, v in item.items()} if convert is not None else item
        return out


def _torch_converter() -> Any:
    """Return a numpy array or scalar -> torch tensor converter (imports torch: only when the caller asked for tensors)."""
    from staticst._st_args import import_torch

    torch = import_torch()

    def convert(value: Any) -> Any:
        return torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else torch.tensor(value)

    return convert

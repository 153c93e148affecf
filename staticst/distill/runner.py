"""The transformer's forward pass in ONNX Runtime: one pooled vector per token, in bounded memory.

model2vec 0.10's ``create_embeddings`` with torch replaced by an ``onnxruntime.InferenceSession``: the
token sequences are sorted by length, run in batches of 256 padded with the padding id under an attention
mask, pooled (``mean`` over the mask, ``first``, ``last`` non-padding position, or the graph's
``pooler_output``), and written straight into one preallocated ``(tokens, hidden)`` float32 array in the
original order. NaN / Inf become numbers as in model2vec (``np.nan_to_num``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from staticst.errors import MissingDependencyError, ModelNotFoundError

__all__ = ["DEFAULT_BATCH_SIZE", "ONNX_CANDIDATES", "PoolingMode", "OnnxTransformer", "find_onnx_file"]

DEFAULT_BATCH_SIZE = 256
#: Where a model folder's ONNX export is looked for, in order (Hub repositories keep theirs in ``onnx/``).
ONNX_CANDIDATES = ("onnx/model.onnx", "model.onnx")
_HIDDEN_OUTPUTS = ("last_hidden_state", "token_embeddings")
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}

EXPORT_HELP = (
    "Export one (once, where torch is installed) with Optimum:\n"
    "    pip install 'optimum[exporters]' && optimum-cli export onnx --model {folder} --task feature-extraction {folder}/onnx\n"
    "or with torch.onnx:\n"
    "    python -c \"import torch; from transformers import AutoModel; m = AutoModel.from_pretrained('{folder}').eval(); "
    "x = torch.ones(1, 8, dtype=torch.long); torch.onnx.export(m, (x, x, torch.zeros_like(x)), '{folder}/onnx/model.onnx', "
    "input_names=['input_ids', 'attention_mask', 'token_type_ids'], output_names=['last_hidden_state'], "
    "dynamic_axes={{k: {{0: 'batch', 1: 'seq'}} for k in ['input_ids', 'attention_mask', 'token_type_ids', 'last_hidden_state']}}, "
    'opset_version=17, dynamo=False)"\n'
    "(drop token_type_ids for models without them), or pass onnx_file= naming the export you have."
)


class PoolingMode(str, Enum):
    """How a token's vector is read off the transformer's outputs (model2vec 0.10's ``PoolingMode``)."""

    MEAN = "mean"
    LAST = "last"
    FIRST = "first"
    POOLER = "pooler"


def find_onnx_file(folder: Path, onnx_file: str | os.PathLike[str] | None) -> Path:
    """The ONNX export to run: ``onnx_file`` (absolute, or relative to ``folder``), else ``onnx/model.onnx``, else ``model.onnx``.

    Raises:
        ModelNotFoundError: No such file; the message names what was looked for and how to export one.
    """
    if onnx_file is not None:
        path = Path(onnx_file).expanduser()
        candidates = [path] if path.is_absolute() else [folder / path, path]
    else:
        candidates = [folder / name for name in ONNX_CANDIDATES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = " or ".join(str(c) for c in candidates)
    raise ModelNotFoundError(
        f"No ONNX export of the transformer: {looked} does not exist. Distillation runs the transformer in "
        f"ONNX Runtime (no torch). {EXPORT_HELP.format(folder=folder)}"
    )


def _session(path: Path, threads: int, providers: Sequence[str]) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MissingDependencyError(
            "Distillation runs the transformer in ONNX Runtime, which is not installed: pip install 'staticst[distill]'"
        ) from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=list(providers))


class OnnxTransformer:
    """A transformer exported to ONNX, run in ONNX Runtime on token-id sequences.

    Args:
        path: The ``.onnx`` file.
        threads: Intra-op threads (all usable CPUs by default).
        providers: ONNX Runtime execution providers (default: the CPU).

    Raises:
        MissingDependencyError: onnxruntime is not installed.
        ValueError: The graph has an input this runner cannot fill, or no hidden-state output.
    """

    def __init__(
        self, path: Path, threads: int | None = None, providers: Sequence[str] = ("CPUExecutionProvider",)
    ) -> None:
        from staticst.kernel import default_threads

        self.path = path
        self.session = _session(path, threads or default_threads(), providers)
        inputs = {i.name: i for i in self.session.get_inputs()}
        unknown = sorted(set(inputs) - {"input_ids", "attention_mask", "token_type_ids", "position_ids"})
        if "input_ids" not in inputs or unknown:
            raise ValueError(
                f"{path} has inputs {sorted(inputs)}; distillation fills input_ids, attention_mask, token_type_ids "
                "and position_ids only: export the transformer with those inputs (see docs/distill.md)."
            )
        self._inputs = {name: _INT_TYPES.get(spec.type, np.int64) for name, spec in inputs.items()}
        outputs = [o.name for o in self.session.get_outputs()]
        ranked = {o.name: len(o.shape) if isinstance(o.shape, list) else 0 for o in self.session.get_outputs()}
        hidden = next((n for n in _HIDDEN_OUTPUTS if n in outputs), None)
        if hidden is None:
            hidden = next((n for n in outputs if ranked[n] == 3), None)
        if hidden is None:
            raise ValueError(
                f"{path} has outputs {outputs} and none of rank 3 (batch, sequence, hidden): not a transformer export."
            )
        self.hidden_output = hidden
        self.pooler_output = "pooler_output" if "pooler_output" in outputs else None

    def _feed(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        feed: dict[str, np.ndarray] = {}
        for name, dtype in self._inputs.items():
            if name == "input_ids":
                feed[name] = ids.astype(dtype, copy=False)
            elif name == "attention_mask":
                feed[name] = mask.astype(dtype, copy=False)
            elif name == "token_type_ids":
                feed[name] = np.zeros(ids.shape, dtype=dtype)
            else:  # position_ids: what the model would default to
                feed[name] = np.broadcast_to(np.arange(ids.shape[1], dtype=dtype), ids.shape).copy()
        return feed

    def embed(
        self,
        sequences: Sequence[Sequence[int]],
        pad_id: int,
        pooling: PoolingMode,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = True,
    ) -> np.ndarray:
        """One pooled vector per sequence: ``(len(sequences), hidden)`` float32, in input order.

        Raises:
            ValueError: ``pooling="pooler"`` on an export without a ``pooler_output``.
        """
        if pooling is PoolingMode.POOLER and self.pooler_output is None:
            raise ValueError(
                f"pooling='pooler' needs the transformer's pooler_output, which {self.path} does not have (its outputs: "
                f"{[o.name for o in self.session.get_outputs()]}): export the model with it, or use pooling='mean' / 'first'."
            )
        output = self.pooler_output if pooling is PoolingMode.POOLER else self.hidden_output
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        order = np.argsort(lengths, kind="stable")
        out: np.ndarray | None = None
        from tqdm.auto import tqdm

        with tqdm(total=len(sequences), desc="Encoding tokens", unit=" tokens", disable=not progress) as bar:
            for lo in range(0, len(order), batch_size):
                rows = order[lo : lo + batch_size]
                batch_lengths = lengths[rows]
                width = int(batch_lengths.max()) if len(rows) else 0
                ids = np.full((len(rows), max(width, 1)), pad_id, dtype=np.int64)
                for r, row in enumerate(rows):
                    seq = sequences[row]
                    ids[r, : len(seq)] = seq
                mask = (np.arange(ids.shape[1])[None, :] < batch_lengths[:, None]).astype(np.int64)
                (result,) = self.session.run([output], self._feed(ids, mask))
                pooled = _pool(np.asarray(result, dtype=np.float32), mask, batch_lengths, pooling)
                if out is None:
                    out = np.empty((len(sequences), pooled.shape[1]), dtype=np.float32)
                out[rows] = pooled
                bar.update(len(rows))
        if out is None:
            return np.zeros((0, 0), dtype=np.float32)
        np.nan_to_num(out, copy=False)
        return out


def _pool(result: np.ndarray, mask: np.ndarray, lengths: np.ndarray, pooling: PoolingMode) -> np.ndarray:
    """model2vec's poolings of one batch (``result`` is ``(batch, seq, hidden)``, or ``(batch, hidden)`` for the pooler)."""
    if pooling is PoolingMode.POOLER:
        return result
    if pooling is PoolingMode.FIRST:
        return result[:, 0, :]
    if pooling is PoolingMode.LAST:
        last = np.clip(lengths - 1, 0, None)
        return result[np.arange(len(result)), last, :]
    weights = mask.astype(np.float32) / np.clip(lengths, 1, None)[:, None].astype(np.float32)
    return np.einsum("bs,bsh->bh", weights, result, dtype=np.float32)

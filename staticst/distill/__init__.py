"""Make a static model from a transformer without torch: ``staticst.distill(...)``.

``from staticst.distill import distill`` (model2vec's spelling: ``from model2vec.distill import distill``)
or ``staticst.distill(...)`` (this module is callable) distils a transformer's ONNX export into a
:class:`staticst.StaticModel`, with model2vec 0.10's arguments and results. Needs the ``distill`` extra
(``pip install 'staticst[distill]'``: onnxruntime, scikit-learn); importing this module imports neither.

- :mod:`staticst.distill.distillation`: :func:`distill`, the recipe end to end; :func:`distill_module_parts`,
  what ``StaticEmbedding.from_distillation`` (sentence-transformers' arguments) builds its module from.
- :mod:`staticst.distill.vocabulary`: the tokenizer and vocabulary, edited on ``tokenizer.json``.
- :mod:`staticst.distill.runner`: the transformer in ONNX Runtime, pooled per token.
- :mod:`staticst.distill.postprocess`: PCA, Zipf/SIF weights.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from staticst.distill.distillation import (
    DEFAULT_TOKEN_REMOVE_PATTERN,
    distill,
    distill_module_parts,
    from_distillation_kwargs,
)
from staticst.distill.runner import PoolingMode
from staticst.static_model import StaticModel

__all__ = ["DEFAULT_TOKEN_REMOVE_PATTERN", "PoolingMode", "distill", "distill_module_parts", "from_distillation_kwargs"]


class _CallableModule(types.ModuleType):
    """This module's type: calling ``staticst.distill(...)`` calls :func:`distill`."""

    def __call__(self, *args: Any, **kwargs: Any) -> StaticModel:
        return distill(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

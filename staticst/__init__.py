"""staticst: a torch-free, sentence-transformers-compatible drop-in for static embedding models.

>>> from staticst import StaticSentenceTransformer
>>> model = StaticSentenceTransformer()            # built-in minishlab/potion-base-8M, no download
>>> model.encode(["It's sunny.", "The weather is lovely today."]).shape
(2, 256)
"""

from __future__ import annotations

from staticst import distill, util
from staticst._version import __version__
from staticst.corpus import embed_corpus, encode_iter
from staticst.errors import (
    CorpusError,
    CorpusInputError,
    CorpusOutputError,
    CorruptModelError,
    EmbeddingShapeError,
    InvalidConfigError,
    MissingDependencyError,
    ModelLoadError,
    ModelNotFoundError,
    NonFiniteEmbeddingError,
    PoolingOverflowError,
    StaticSTError,
    TaskDataError,
    TokenizerError,
    UnknownLayoutError,
    VocabularyMismatchError,
)
from staticst.model import StaticSentenceTransformer
from staticst.model_card import ModelCardData
from staticst.modules import Normalize, StaticEmbedding
from staticst.persistence.hub import BUILTIN_MODEL_ID
from staticst.pooling import PoolingConfig
from staticst.static_model import StaticModel
from staticst.tokenization import TokenizerSettings

__all__ = [
    "BUILTIN_MODEL_ID",
    "CorpusError",
    "CorpusInputError",
    "CorpusOutputError",
    "CorruptModelError",
    "EmbeddingShapeError",
    "InvalidConfigError",
    "MissingDependencyError",
    "ModelCardData",
    "ModelLoadError",
    "ModelNotFoundError",
    "NonFiniteEmbeddingError",
    "Normalize",
    "PoolingConfig",
    "PoolingOverflowError",
    "StaticEmbedding",
    "StaticModel",
    "StaticSTError",
    "StaticSentenceTransformer",
    "TaskDataError",
    "TokenizerError",
    "TokenizerSettings",
    "UnknownLayoutError",
    "VocabularyMismatchError",
    "__version__",
    "distill",
    "embed_corpus",
    "encode_iter",
    "util",
]

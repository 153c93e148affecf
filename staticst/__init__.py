"""staticst: a torch-free, sentence-transformers-compatible drop-in for static embedding models.

>>> from staticst import StaticSentenceTransformer
>>> model = StaticSentenceTransformer()            # built-in minishlab/potion-base-8M, no download
>>> model.encode(["It's sunny.", "The weather is lovely today."]).shape
(2, 256)
"""

from __future__ import annotations

from staticst import util
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
    UnknownLayoutError,
    VocabularyMismatchError,
)
from staticst.model import StaticSentenceTransformer
from staticst.model_card import ModelCardData
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
    "PoolingConfig",
    "PoolingOverflowError",
    "StaticModel",
    "StaticSTError",
    "StaticSentenceTransformer",
    "TokenizerSettings",
    "UnknownLayoutError",
    "VocabularyMismatchError",
    "__version__",
    "embed_corpus",
    "encode_iter",
    "util",
]

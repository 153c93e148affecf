"""Exceptions raised by staticst.

The hierarchy::

    StaticSTError                      base of every staticst error
    ├── ModelLoadError                 a model could not be loaded
    │   ├── ModelNotFoundError         no such folder / hub id, or a required file is missing
    │   │                              (also a FileNotFoundError)
    │   ├── UnknownLayoutError         the folder holds files, but in no layout staticst knows
    │   │                              (also a ValueError, as model2vec raises for a folder without its files)
    │   ├── CorruptModelError          a truncated or unreadable safetensors / JSON / tokenizer file,
    │   │                              or a tensor of the wrong name, rank or dtype
    │   ├── InvalidConfigError         a config file key with a wrong type or value (also a ValueError)
    │   ├── VocabularyMismatchError    table rows disagree with the tokenizer vocabulary (also a
    │   │                              ValueError, as model2vec raises for the same mismatch)
    │   └── NonFiniteEmbeddingError    the table (or per-token weights) hold NaN or Inf
    ├── MissingDependencyError         an optional extra (e.g. torch for ``convert_to_tensor``) is not
    │                                  installed (also an ImportError)
    ├── CorpusError                    bulk encoding (staticst.corpus, ``staticst encode``) could not run
    │   ├── CorpusInputError           an input file, format, field or record that cannot be read: the message
    │   │                              names the file and line (also a ValueError)
    │   └── CorpusOutputError          an output path or a partial run that cannot be used (also an OSError)
    ├── TaskDataError                  an mteb task's local data (``staticst.integrations.mteb.local_task``) is
    │                                  missing or unreadable: the message names the file (also a ValueError)
    ├── TokenizerError                 the model's Hugging Face tokenizer failed on a text (a Rust panic, e.g. a
    │                                  tokenizer.json regex that backtracks too much): the message names the
    │                                  text (also a ValueError)
    ├── PoolingOverflowError           a text's sum, mean or norm overflowed to Inf/NaN (a finite table with
    │                                  huge values): raised instead of returning a wrong vector (also a
    │                                  FloatingPointError)
    └── EmbeddingShapeError            ``staticst.util`` got embeddings of the wrong rank or mismatched
                                       dimensions (also a ValueError, and a RuntimeError as torch raises
                                       in sentence-transformers)

Usage errors in calls (a bad ``batch_size``, an unknown keyword argument, an unknown prompt name)
raise the built-in ``ValueError`` / ``TypeError``, as sentence-transformers does.
"""

from __future__ import annotations

__all__ = [
    "CorpusError",
    "CorpusInputError",
    "CorpusOutputError",
    "CorruptModelError",
    "EmbeddingShapeError",
    "InvalidConfigError",
    "MissingDependencyError",
    "ModelLoadError",
    "ModelNotFoundError",
    "NonFiniteEmbeddingError",
    "PoolingOverflowError",
    "StaticSTError",
    "TaskDataError",
    "TokenizerError",
    "UnknownLayoutError",
    "VocabularyMismatchError",
]


class StaticSTError(Exception):
    """Base class of every error raised by staticst."""


class ModelLoadError(StaticSTError):
    """A model could not be loaded."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """The model folder, hub id or one of its required files does not exist."""


class UnknownLayoutError(ModelLoadError, ValueError):
    """The folder exists but matches none of the known disk layouts.

    Also a ``ValueError``: model2vec raises that for a folder without its model files, so
    ``except ValueError`` written against it keeps working.
    """


class CorruptModelError(ModelLoadError):
    """A model file is truncated, unreadable, or holds a tensor of the wrong name, rank or dtype."""


class InvalidConfigError(ModelLoadError, ValueError):
    """A key of ``config.json`` / ``config_sentence_transformers.json`` has a wrong type or value."""


class VocabularyMismatchError(ModelLoadError, ValueError):
    """The embedding table's row count disagrees with the tokenizer vocabulary.

    Also a ``ValueError``: model2vec raises that when tokens and vectors do not match.
    """


class NonFiniteEmbeddingError(ModelLoadError):
    """The embedding table or the per-token weights contain NaN or Inf values."""


class MissingDependencyError(StaticSTError, ImportError):
    """An optional dependency needed for the requested feature is not installed."""


class CorpusError(StaticSTError):
    """Bulk encoding could not run."""


class CorpusInputError(CorpusError, ValueError):
    """An input file, format, field or record cannot be read; the message names the file and the line."""


class CorpusOutputError(CorpusError, OSError):
    """An output path, or the partial folder of an interrupted run, cannot be used."""


class TaskDataError(StaticSTError, ValueError):
    """An mteb task's local data is missing, incomplete or unreadable; the message names the file."""


class TokenizerError(StaticSTError, ValueError):
    """The model's Hugging Face tokenizer failed on a text (a Rust panic inside ``tokenizers``).

    ``pyo3_runtime.PanicException`` is a ``BaseException`` that ``except Exception`` misses; staticst raises
    this instead, naming the text. Also a ``ValueError``: the input is one this tokenizer cannot process.

    Attributes:
        text: The text the tokenizer failed on, when it is known.
        index: Its position in the batch handed to the tokenizer, when it is known.
    """

    def __init__(self, message: str, *, text: str | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.text = text
        self.index = index


class PoolingOverflowError(StaticSTError, FloatingPointError):
    """A text's pooled vector overflowed to Inf or NaN; the message names the input."""


class EmbeddingShapeError(StaticSTError, ValueError, RuntimeError):
    """Embeddings of the wrong rank, or whose dimensions do not match.

    A ``ValueError``; also a ``RuntimeError`` because that is what sentence-transformers (torch) raises
    for the same input, so ``except RuntimeError`` written against it keeps working.
    """

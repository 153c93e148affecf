# The typed face of the compiled module staticst._kernel (C11, csrc/*.c), checked against the built module by
# `python -m mypy.stubtest staticst._kernel` (.ci/run, tests/test_kernel_stub.py). Argument names, their order and
# which are optional follow the C parsers (kwlist arrays, PyArg_Parse* format strings); METH_O / METH_VARARGS
# functions take positional arguments only. No type here is subclassable (no Py_TPFLAGS_BASETYPE): all are final.
# The dtypes are the ones the C code checks (ValueError / TypeError otherwise).

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Literal, Protocol, TypeAlias, TypedDict, final

import numpy as np
import numpy.typing as npt

# module.c / kernel.h: the word cache's longest key, the normaliser's longest output per ASCII character, the
# Kernel(mode=...) codes by pre-tokenizer family, the Kernel(arithmetic=...) codes by pooling arithmetic
MAX_KEY: Final[int]
MAX_NORM: Final[int]
MODES: Final[dict[str, int]]
ARITHMETICS: Final[dict[str, int]]
# kernel_type.c: the fields Kernel(config) reads from its config object, in order
KERNEL_CONFIG_FIELDS: Final[tuple[str, ...]]
# normalizer_type.c: the library versions the generated Unicode tables were checked against
# ({"tokenizers": ..., "unicodedata": ..., "regex_unicode": ...})
UNICODE_TABLES: Final[dict[str, str]]

_Table: TypeAlias = npt.NDArray[np.float32] | npt.NDArray[np.float16] | npt.NDArray[np.float64] | npt.NDArray[np.int8]
_Ids: TypeAlias = npt.NDArray[np.int32]
_Offsets: TypeAlias = npt.NDArray[np.int64]
# 1-D values numpy casts to float32 under its "safe" rule (float64 arrays are refused: TypeError)
_F32Like: TypeAlias = npt.NDArray[np.float32] | npt.NDArray[np.float16] | Sequence[float]

class _KernelConfig(Protocol):
    @property
    def words(self) -> WordTable: ...
    @property
    def table(self) -> _Table: ...
    @property
    def mapping(self) -> npt.NDArray[np.int64] | None: ...
    @property
    def weights(self) -> npt.NDArray[np.float32] | npt.NDArray[np.float64] | None: ...
    @property
    def mode(self) -> int: ...
    @property
    def prepend_space(self) -> bool: ...
    @property
    def norm_table(self) -> Sequence[bytes]: ...
    @property
    def raw(self) -> Sequence[bytes]: ...
    @property
    def normalized(self) -> Sequence[bytes]: ...
    @property
    def char_limit(self) -> int: ...
    @property
    def max_length(self) -> int: ...
    @property
    def truncate_left(self) -> bool: ...
    @property
    def unk_id(self) -> int: ...
    @property
    def drop_unknown(self) -> bool: ...
    @property
    def arithmetic(self) -> int: ...
    @property
    def normalize(self) -> bool: ...
    @property
    def weight_sum(self) -> bool: ...
    @property
    def resolve(self) -> Callable[[list[str]], Sequence[Sequence[int]]]: ...
    @property
    def fallback(self) -> Callable[[list[str]], tuple[Any, Any]]: ...
    @property
    def threads(self) -> int: ...
    @property
    def boundary(self) -> str | bytes | None: ...
    @property
    def pipeline(self) -> Pipeline | None: ...

# ---------------------------------------------------------------- module.c

def empty_rows(n: int, dim: int, /) -> npt.NDArray[np.float32]: ...
def trim_heap() -> bool: ...
def _f32_to_f16(values: _F32Like, /) -> npt.NDArray[np.uint16]: ...
def _pairwise_sum(values: _F32Like, /) -> float: ...
def _round_f16(values: _F32Like, /) -> npt.NDArray[np.float32]: ...

@final
class WordTable:
    def __init__(self, max_words: int = 262144, start_words: int = 16384) -> None: ...
    def __len__(self) -> int: ...
    def clear(self) -> None: ...
    @property
    def max_words(self) -> int: ...
    @property
    def generations(self) -> int: ...

# ---------------------------------------------------------------- kernel_type.c

@final
class Kernel:
    # config: an object with every field of KERNEL_CONFIG_FIELDS as an attribute (staticst.kernel.KernelConfig)
    def __init__(self, config: _KernelConfig) -> None: ...
    def embed(self, texts: Sequence[str], out: npt.NDArray[np.float32], /) -> int: ...
    def embed_one(self, text: str, /) -> npt.NDArray[np.float32]: ...
    def tokenize(self, texts: Sequence[str], /) -> tuple[_Ids, _Offsets]: ...
    def pool(self, ids: _Ids, offsets: _Offsets, out: npt.NDArray[np.float32], /) -> None: ...
    @property
    def threads(self) -> int: ...
    @threads.setter
    def threads(self, value: int) -> None: ...
    @property
    def words(self) -> WordTable: ...

# ---------------------------------------------------------------- model.c

@final
class TokenModel:
    # The C tp_init takes any arguments and raises TypeError: a TokenModel is built by the class methods only.
    def __init__(self, *args: object, **kwargs: object) -> None: ...
    @classmethod
    def wordpiece(
        cls,
        vocab: dict[str, int],
        unk_token: str,
        continuing_subword_prefix: str,
        max_input_chars_per_word: int,
    ) -> TokenModel: ...
    @classmethod
    def unigram(
        cls,
        vocab: Iterable[tuple[str, float] | list[Any]],
        unk_id: int | None,
        byte_fallback: bool,
    ) -> TokenModel: ...
    @classmethod
    def bpe(
        cls,
        vocab: dict[str, int],
        merges: Iterable[tuple[str, str] | list[str]],
        unk_token: str | None,
        continuing_subword_prefix: str | None,
        end_of_word_suffix: str | None,
        fuse_unk: bool,
        byte_fallback: bool,
        ignore_merges: bool,
    ) -> TokenModel: ...
    def encode(self, word: str, /) -> list[int]: ...
    def encode_words(self, words: Iterable[str], /) -> list[list[int]]: ...
    def encode_flat(self, words: Iterable[str], /) -> tuple[_Ids, _Offsets]: ...
    @property
    def kind(self) -> Literal["WordPiece", "Unigram", "BPE"]: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def memory(self) -> int: ...
    @property
    def build_ms(self) -> float: ...
    @property
    def trie_states(self) -> int: ...

# ---------------------------------------------------------------- pipeline.c

# One pre-tokenizer operation: int fields (kind, behavior, invert, classes, prepend, split, map, num_max) and the
# str fields ch (one character) and pattern.
_PretokOp: TypeAlias = dict[str, int | str]
# One added token: (content, id, single_word, lstrip, rstrip).
_Added: TypeAlias = tuple[str, int, bool, bool, bool]
# The ASCII table: (128 normalised characters, the prefix, the odd two-character pairs).
_Ascii: TypeAlias = tuple[Sequence[str], str, Iterable[str]]

@final
class Pipeline:
    def __init__(
        self,
        model: TokenModel | None = None,
        normalizer: Normalizer | None = None,
        pretok: Iterable[_PretokOp] | None = None,
        added_raw: Iterable[_Added] = (),
        added_norm: Iterable[_Added] = (),
        ascii: _Ascii | None = None,
        key_bytelevel: bool = False,
        first_check: bool = False,
    ) -> None: ...
    def pre_tokenize(self, text: str, /) -> list[str] | None: ...
    def split_added(self, text: str, normalized: bool = False, /) -> list[tuple[str, int | None]] | None: ...
    def encode(self, text: str, /) -> list[int] | None: ...

# ---------------------------------------------------------------- normalizer_type.c

_SimpleStep: TypeAlias = Literal[
    "bert_clean",
    "bert_cjk",
    "bert_strip",
    "lowercase",
    "nfd",
    "nfkd",
    "nfc",
    "nfkc",
    "strip_accents",
    "nmt",
    "bytelevel",
]
# One step of a normaliser program, in order: a simple step, ("strip", left, right), ("replace", pattern, content),
# ("replace_run", char, min, content), ("prepend", text) or ("precompiled", charsmap).
_Step: TypeAlias = (
    tuple[_SimpleStep]
    | tuple[Literal["strip"], bool, bool]
    | tuple[Literal["replace"], str, str]
    | tuple[Literal["replace_run"], str, int, str]
    | tuple[Literal["prepend"], str]
    | tuple[Literal["precompiled"], bytes]
)

@final
class Normalizer:
    def __init__(self, steps: Iterable[_Step]) -> None: ...
    def normalize(self, text: str, /) -> str | None: ...
    def _repeat(self, text: str, n: int, /) -> int: ...
    @property
    def description(self) -> str: ...

class _UniRecord(TypedDict):
    props: int
    flags: int
    lower: tuple[int, ...]
    ccc: int
    gcb: int
    decomposition: tuple[int, ...]
    compat_decomposition: tuple[int, ...]

def _uni_record(cp: int, /) -> _UniRecord: ...
def _uni_compose(a: int, b: int, /) -> int: ...

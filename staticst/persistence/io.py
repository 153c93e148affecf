"""Reading and writing safetensors files: a strict header parser and private-memory tensor reads.

The reader parses the safetensors header itself (8-byte little-endian length + JSON) and accepts exactly
the files the reference ``safetensors.safe_open`` accepts (``tests/test_io_fuzz.py`` checks that on
generated malformed files): a UTF-8 JSON object at most 100 MB, nested at most 127 levels; every
tensor an object (or a 3-item array) with a known ``dtype``, a ``shape`` of non-negative 64-bit integers
and two ``data_offsets`` integers; ``__metadata__`` absent, ``null`` or an object of strings; the tensors,
sorted by offsets, covering the data region from byte 0 to the end of the file with no gap, overlap or
trailing byte, each exactly ``prod(shape) * itemsize`` bytes. Anything else is
:class:`~staticst.errors.CorruptModelError` naming the file and what is wrong.

Tensors are never memory-mapped from the model file: a process never dies with SIGBUS because a model file was
truncated or overwritten in place while it runs (``docs/reliability.md``). Small files are read into private
memory (``numpy.fromfile``). **One table per node**: tensors of :data:`SHARE_MIN_BYTES` or more are copied once per
machine into a content-addressed, read-only file in ``/dev/shm/staticst-<uid>/`` (named by the SHA-256 of
the tensors, written under a temporary name and linked into place atomically) and every process that loads
the same model maps that copy read-only, so N worker processes hold the table's pages once
(:func:`share_tensors`). A process holds a shared ``flock`` on the copy while it maps it; the last one to
let go (or any later load, for the copies of processes that died) deletes it. ``STATICST_TABLE_SHARE=0``
turns sharing off (private copies, as before); ``STATICST_TABLE_SHARE_DIR`` moves the copies elsewhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import mmap
import os
import secrets
import stat
import struct
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from staticst.errors import CorruptModelError, ModelNotFoundError

__all__ = [
    "SHARE_MIN_BYTES",
    "SafetensorsFile",
    "TensorInfo",
    "array_digest",
    "read_safetensors",
    "share_tensors",
    "shared_dir",
    "write_safetensors",
]

# dtype -> item size in bytes, for every dtype safetensors knows (header validation).
ITEM_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
}  # fmt: skip
# The dtypes staticst reads into numpy.
_DTYPES: dict[str, np.dtype[Any]] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
MAX_HEADER = 100_000_000
MAX_DEPTH = 127  # serde_json's recursion limit, as safetensors applies it
_U64 = 1 << 64
_FIX = "The file is truncated or corrupt: download or save the model again."


class _Bad:
    """A JSON number safetensors does not read as an unsigned integer (a float, or a negative literal)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _parse_int(text: str) -> int | _Bad:
    return _Bad(text) if text.startswith("-") else int(text)


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives inside a safetensors file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class SafetensorsFile:
    """A parsed, validated safetensors header plus the path; tensors are read on demand.

    Attributes:
        path: The file.
        data_offset: Where the tensors' bytes start.
        tensors: Each tensor's dtype, shape and offsets.
        metadata: The ``__metadata__`` strings.
        shared: The node-wide read-only copy of the tensors' bytes (see :func:`share_tensors`), or ``None``:
            tensors are then read into private memory.
        shared_path: The file in ``/dev/shm`` that ``shared`` maps (``None`` when not shared).
        digest: The SHA-256 naming the shared copy (``None`` when not shared).
    """

    path: Path
    data_offset: int
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    shared: np.ndarray | None = None
    shared_path: Path | None = None
    digest: str | None = None

    def get(self, name: str) -> np.ndarray:
        """Return tensor ``name`` as a numpy array: a read-only view of the shared copy, or private memory.

        Raises:
            CorruptModelError: The tensor's dtype is not one staticst reads, or the file changed since its
                header was read.
        """
        info = self.tensors[name]
        dtype = _DTYPES.get(info.dtype)
        if dtype is None:
            raise CorruptModelError(
                f"Tensor {name!r} in {self.path} has dtype {info.dtype}, which staticst cannot read. "
                f"Supported: {', '.join(sorted(_DTYPES))}. Re-save the table as float32, float16 or int8."
            )
        count = math.prod(info.shape)
        if count == 0:
            return np.zeros(info.shape, dtype=dtype)
        if self.shared is not None and info.start % dtype.itemsize == 0:  # aligned: a view of the shared pages
            return self.shared[info.start : info.end].view(dtype).reshape(info.shape)
        try:
            arr = np.fromfile(self.path, dtype=dtype, count=count, offset=self.data_offset + info.start)
        except (OSError, ValueError) as exc:
            raise CorruptModelError(f"Could not read tensor {name!r} from {self.path}: {exc}. {_FIX}") from exc
        if arr.size != count:
            raise CorruptModelError(f"{self.path} ended inside tensor {name!r} (it changed while being read). {_FIX}")
        return arr.reshape(info.shape)


def _depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value (an object or array is one level), iteratively."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _valid_strings(value: Any) -> bool:
    """No lone surrogate in any key or string: safetensors requires valid UTF-8 text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _u64(value: Any) -> int | None:
    """``value`` as safetensors reads a ``usize``: a non-negative JSON integer below 2**64, else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
        return None
    return value


def _tensor(path: Path, name: str, entry: Any) -> TensorInfo:
    where = f"{path}: tensor {name!r}"
    if isinstance(entry, list):  # serde also reads a struct from a [dtype, shape, data_offsets] array
        if len(entry) != 3:
            raise CorruptModelError(f"{where} is an array of {len(entry)} items, not [dtype, shape, offsets]. {_FIX}")
        entry = dict(zip(("dtype", "shape", "data_offsets"), entry, strict=True))
    if not isinstance(entry, dict):
        raise CorruptModelError(f"{where} is a JSON {type(entry).__name__}, not an object. {_FIX}")
    missing = [key for key in ("dtype", "shape", "data_offsets") if key not in entry]
    if missing:
        raise CorruptModelError(f"{where} has no {missing[0]!r}. {_FIX}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in ITEM_SIZES:
        raise CorruptModelError(
            f"{where} has an unknown dtype {dtype!r}; safetensors dtypes: {sorted(ITEM_SIZES)}. {_FIX}"
        )
    dims = [_u64(d) for d in shape] if isinstance(shape, list) else [None]
    if not isinstance(shape, list) or any(d is None for d in dims):
        raise CorruptModelError(f"{where} has shape {shape!r}; a shape is a list of non-negative integers. {_FIX}")
    ends = [_u64(o) for o in offsets] if isinstance(offsets, list) else [None]
    if not isinstance(offsets, list) or len(offsets) != 2 or any(o is None for o in ends):
        raise CorruptModelError(f"{where} has data_offsets {offsets!r}; expected [start, end] integers. {_FIX}")
    return TensorInfo(name, dtype, tuple(d for d in dims if d is not None), ends[0] or 0, ends[1] or 0)


def _layout_check(path: Path, tensors: list[TensorInfo], data_size: int) -> None:
    """Sorted by offsets, the tensors tile the data region exactly: no hole, overlap or trailing byte."""
    position = 0
    for info in sorted(tensors, key=lambda t: (t.start, t.end)):
        if info.start != position or info.end < info.start:
            raise CorruptModelError(
                f"{path}: tensor {info.name!r} claims bytes {info.start}..{info.end}, but the previous tensor ends at "
                f"{position} (a gap or an overlap). {_FIX}"
            )
        count = math.prod(info.shape)
        nbytes = count * ITEM_SIZES[info.dtype]
        if count >= _U64 or nbytes >= _U64:
            raise CorruptModelError(f"{path}: tensor {info.name!r} has a shape {info.shape} too large to exist. {_FIX}")
        if info.end - info.start != nbytes:
            raise CorruptModelError(
                f"{path}: tensor {info.name!r} claims {info.end - info.start} bytes for shape {info.shape} of "
                f"{info.dtype} ({nbytes} bytes). {_FIX}"
            )
        position = info.end
    if position != data_size:
        raise CorruptModelError(
            f"{path}: the tensors cover {position} bytes of data but the file holds {data_size} after the header "
            f"(truncated, or trailing bytes). {_FIX}"
        )


def read_safetensors(path: Path) -> SafetensorsFile:
    """Parse and validate the header of a safetensors file (see the module docstring for the rules).

    Args:
        path: The ``.safetensors`` file.

    Returns:
        The parsed file description.

    Raises:
        ModelNotFoundError: The file does not exist.
        CorruptModelError: The file is one ``safetensors.safe_open`` would refuse.
    """
    if not path.is_file():
        raise ModelNotFoundError(f"Missing weights file {path}.")
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(0)
            if size < 8:
                raise CorruptModelError(f"{path} is {size} bytes, too small to be a safetensors file. {_FIX}")
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len > MAX_HEADER or 8 + header_len > size:
                raise CorruptModelError(
                    f"{path} declares a {header_len}-byte header but the file holds {size} bytes "
                    f"(at most {MAX_HEADER} are allowed). {_FIX}"
                )
            raw = handle.read(header_len)
    except OSError as exc:
        raise CorruptModelError(f"Could not read {path}: {exc}.") from exc
    try:
        text = raw.decode("utf-8")
        header = json.loads(text, parse_int=_parse_int, parse_float=_Bad, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CorruptModelError(
            f"{path} has an unreadable safetensors header ({type(exc).__name__}: {exc}). {_FIX}"
        ) from None
    if not isinstance(header, dict):
        raise CorruptModelError(
            f"{path} has a safetensors header that is a JSON {type(header).__name__}, not an object. {_FIX}"
        )
    if _depth(header) > MAX_DEPTH or not _valid_strings(header):
        raise CorruptModelError(f"{path} has a safetensors header nested too deeply or holding invalid text. {_FIX}")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
    ):
        raise CorruptModelError(f"{path}: '__metadata__' must be an object of strings, got {metadata!r:.80}. {_FIX}")
    tensors = [_tensor(path, str(name), entry) for name, entry in header.items()]
    data_offset = 8 + header_len
    _layout_check(path, tensors, size - data_offset)
    return SafetensorsFile(path, data_offset, {t.name: t for t in tensors}, dict(metadata or {}))


# ---------------------------------------------------------------------------------------------- one table per node

#: A file whose tensors take at least this many bytes is shared between the processes of a machine.
SHARE_MIN_BYTES = 16 << 20
_SHARE_ENV = "STATICST_TABLE_SHARE"
_SHARE_DIR_ENV = "STATICST_TABLE_SHARE_DIR"
_SUFFIX = ".tensors"
_BLOCK = 8 << 20
_LOCK_WAIT_S = 5.0  # a loader waits at most this long for a shared lock (a sweeper holds it for microseconds)
#: The SHA-256 of every tensor view handed out from a shared copy, by (address, bytes, dtype, shape).
_DIGESTS: dict[tuple[int, int, str, tuple[int, ...]], str] = {}
_DIGESTS_LOCK = threading.Lock()


def shared_dir() -> Path | None:
    """This user's folder of shared tensor copies (``/dev/shm/staticst-<uid>``), or ``None`` when sharing is off.

    Off when ``STATICST_TABLE_SHARE`` is ``0`` / ``false`` / ``no`` / ``off``, or the machine has no ``/dev/shm``
    (``STATICST_TABLE_SHARE_DIR`` names another folder, ideally on a tmpfs).
    """
    if os.environ.get(_SHARE_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    root = os.environ.get(_SHARE_DIR_ENV) or "/dev/shm"
    if not hasattr(os, "geteuid") or not hasattr(mmap, "MAP_SHARED") or not os.path.isdir(root):
        return None
    return Path(root) / f"staticst-{os.geteuid()}"


def array_digest(array: np.ndarray) -> str:
    """The SHA-256 (hex) of an array's little-endian bytes, C order; free for the tensors of a shared copy."""
    arr = np.asarray(array)
    key = (int(arr.__array_interface__["data"][0]), int(arr.nbytes), arr.dtype.str, tuple(arr.shape))
    if arr.flags.c_contiguous:
        with _DIGESTS_LOCK:
            known = _DIGESTS.get(key)
        if known is not None:
            return known
    data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
    digest = hashlib.sha256()
    flat = data.reshape(-1).view(np.uint8)
    for lo in range(0, flat.size, _BLOCK):
        digest.update(flat[lo : lo + _BLOCK].data)
    return digest.hexdigest()


def _private_folder(folder: Path) -> bool:
    """Create (mode 0700) or check this user's folder: a real folder, ours, that nobody else may write."""
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _hash_tensors(
    path: Path, data_offset: int, ordered: list[TensorInfo], sink: int | None = None
) -> tuple[str, dict[str, str]]:
    """Stream the tensors' bytes once: each tensor's SHA-256, and the digest naming the copy (optionally written to ``sink``)."""
    digests: dict[str, str] = {}
    view = memoryview(bytearray(_BLOCK))
    try:
        with path.open("rb", buffering=0) as handle:
            handle.seek(data_offset)
            for info in ordered:
                digest = hashlib.sha256()
                remaining = info.end - info.start
                while remaining:
                    n = handle.readinto(view[: min(remaining, _BLOCK)])
                    if not n:
                        raise CorruptModelError(
                            f"{path} ended inside tensor {info.name!r} (it changed while being read). {_FIX}"
                        )
                    digest.update(view[:n])
                    if sink is not None:
                        _write_all(sink, view[:n])
                    remaining -= n
                digests[info.name] = digest.hexdigest()
    except OSError as exc:
        if sink is not None and exc.filename is None:
            raise  # a write to the shared copy failed (no space): the caller falls back to a private copy
        raise CorruptModelError(f"Could not read {path}: {exc}. {_FIX}") from exc
    naming = hashlib.sha256()
    for info in ordered:
        naming.update(
            json.dumps([info.name, info.dtype, list(info.shape), info.start, info.end, digests[info.name]]).encode()
        )
    return naming.hexdigest(), digests


def _lock_shared(fd: int) -> bool:
    """A shared ``flock`` on ``fd``, waiting at most :data:`_LOCK_WAIT_S` (never a hang)."""
    import fcntl
    import time

    deadline = time.monotonic() + _LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)


def _open_copy(target: Path, size: int) -> int | None:
    """``target`` opened read-only and locked shared, if it is a usable copy (ours, read-only, the right size)."""
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        usable = (
            stat.S_ISREG(info.st_mode)
            and info.st_uid == os.geteuid()
            and info.st_size == size
            and not info.st_mode & 0o222
        )
        if usable and _lock_shared(fd):
            again = os.stat(target, follow_symlinks=False)
            if (again.st_ino, again.st_dev) == (info.st_ino, info.st_dev):  # not swept away meanwhile
                return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _remove_if_unused(path: Path, inode: int | None = None) -> None:
    """Delete a shared copy nobody maps any more: an exclusive ``flock`` on a fresh descriptor, then unlink."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        info = os.fstat(fd)
        if (inode is None or info.st_ino == inode) and os.stat(path, follow_symlinks=False).st_ino == info.st_ino:
            os.unlink(path)
    except OSError:
        pass  # in use (or gone)
    finally:
        os.close(fd)


def _sweep(folder: Path, keep: str) -> None:
    """Delete the copies no process maps (their last user died) and the temporary files of dead processes."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if name.endswith(_SUFFIX) and not name.startswith(keep):
            _remove_if_unused(Path(entry.path))
        elif ".tmp-" in name:
            try:
                pid = int(name.split(".tmp-")[1].split("-")[0])
                os.kill(pid, 0)
            except ProcessLookupError:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            except (ValueError, IndexError, OSError):
                pass


def _create_copy(st: SafetensorsFile, ordered: list[TensorInfo], target: Path, digest: str, size: int) -> int | None:
    """Write the tensors into a new copy at ``target`` (temporary name, then an atomic link); its locked descriptor."""
    folder = target.parent
    try:
        free = os.statvfs(folder)
        if free.f_bavail * free.f_frsize < size + (64 << 20):
            return None  # the tmpfs is (nearly) full: a private copy instead
    except OSError:
        return None
    tmp = folder / f"{digest}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError:
        return None
    try:
        _lock_shared(fd)  # nobody sweeps it from the moment it has its final name
        again, _ = _hash_tensors(st.path, st.data_offset, ordered, sink=fd)
        if again != digest:
            raise CorruptModelError(f"{st.path} changed while being read. {_FIX}")
        os.fchmod(fd, 0o400)
        with contextlib.suppress(FileExistsError):  # another process made the same copy first: theirs is used
            os.link(tmp, target)
        return _open_copy(target, size)
    except OSError:
        return None  # e.g. ENOSPC: a private copy instead
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        os.close(fd)


def _release(fd: int, path: Path, inode: int, owner: int, base: int, end: int) -> None:
    """When a shared copy's mapping is freed: drop its digests, close the lock, delete the copy if unused."""
    with _DIGESTS_LOCK:
        for key in [k for k in _DIGESTS if base <= k[0] < end]:
            del _DIGESTS[key]
    with contextlib.suppress(OSError):
        os.close(fd)  # in a forked child this leaves the parent's lock in place (the same open file)
    if os.getpid() == owner:
        _remove_if_unused(path, inode)


def share_tensors(st: SafetensorsFile) -> SafetensorsFile:
    """``st`` with its tensors served from this machine's shared read-only copy (one table per node).

    The tensors' bytes are streamed from the file once (never held in private memory) and hashed; a copy named
    by that digest in :func:`shared_dir` is mapped read-only, or first written under a temporary name and linked
    into place. Every way this can fail (sharing off, tensors under :data:`SHARE_MIN_BYTES`, no ``/dev/shm``, a
    full tmpfs, a folder or file that is not this user's alone) returns ``st`` unchanged: private copies.

    Raises:
        CorruptModelError: The file changed or ended while being read.
    """
    folder = shared_dir()
    ordered = sorted(st.tensors.values(), key=lambda t: (t.start, t.end))
    size = ordered[-1].end if ordered else 0
    if folder is None or size < SHARE_MIN_BYTES or not _private_folder(folder):
        return st
    digest, digests = _hash_tensors(st.path, st.data_offset, ordered)
    _sweep(folder, keep=digest)
    target = folder / f"{digest}{_SUFFIX}"
    fd = None
    for _ in range(3):  # a copy swept or replaced between two steps is looked for again
        fd = _open_copy(target, size)
        if fd is None:
            fd = _create_copy(st, ordered, target, digest, size)
        if fd is not None:
            break
    if fd is None:
        return st
    try:
        mapped = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        os.close(fd)
        return st
    region = np.frombuffer(mapped, dtype=np.uint8)  # read-only: the mapping is PROT_READ
    base = int(region.__array_interface__["data"][0])
    with _DIGESTS_LOCK:
        for info in ordered:
            dtype = _DTYPES.get(info.dtype)
            if dtype is not None and info.start % dtype.itemsize == 0:
                count = math.prod(info.shape)
                _DIGESTS[(base + info.start, count * dtype.itemsize, dtype.str, tuple(info.shape))] = digests[info.name]
    weakref.finalize(mapped, _release, fd, target, os.fstat(fd).st_ino, os.getpid(), base, base + size)
    return dataclasses.replace(st, shared=region, shared_path=target, digest=digest)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write numpy arrays with the reference ``safetensors`` library (so any reader accepts the file)."""
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path), metadata=metadata)

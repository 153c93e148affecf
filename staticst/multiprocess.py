"""Encoding on several cores: sentence-transformers' ``start_multi_process_pool`` API over worker processes.

The per-word work of tokenization needs the GIL, so threads cannot share it; processes can. A pool is
a dict shaped like sentence-transformers' (``{"input": Queue, "output": Queue, "processes": [...]}``)
holding *spawned* worker processes (never forked: safe in threaded applications). Each worker builds
the model's engine (:class:`staticst.engine.Embedder`) from its folder once (a table of 16 MiB or more is mapped from
one read-only copy per machine, a smaller one read into the worker's private memory) and then serves chunks:

* the parent puts ``(call, chunk, shared-memory name, first row, texts, settings)`` on the input
  queue, chunks of ``chunk_size`` texts (default: about a quarter of each worker's share, between
  1,024 and 8,192 texts; sentence-transformers' smaller default chunks cost more than they balance);
* a worker encodes its chunk with :meth:`Embedder.embed <staticst.engine.Embedder.embed>`, under the
  parent engine's current token rules and pooling configuration (sent with every chunk, so
  ``max_seq_length`` changes apply), writes the rows straight into a shared-memory block
  (the pool's own block, created once and grown when needed, so no call pays page faults for a new
  one; freed by ``stop_multi_process_pool``), and reports ``(call, chunk, error)``; calls on one pool
  run one at a time;
* prompts, ``truncate_dim``, ``normalize_embeddings``, ``precision`` and output conversion stay in the
  parent, exactly as without a pool.

Results are bit-identical to encoding in one process. Calls with fewer than :data:`POOL_MIN_TEXTS`
texts are encoded in the calling process, where the round trip to the workers would cost more than it
saves. Only the standard library, numpy and the engine are imported here; workers never build a facade.
"""

from __future__ import annotations

import itertools
import logging
import math
import mmap
import multiprocessing as mp
import os
import pickle
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing import shared_memory
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from staticst.engine import Embedder

if TYPE_CHECKING:
    from staticst.pooling import PoolingConfig
    from staticst.tokenization import TokenizerSettings

__all__ = [
    "MAX_CHUNK",
    "MIN_CHUNK",
    "POOL_MIN_TEXTS",
    "STALL_TIMEOUT",
    "check_pool",
    "embed_pooled",
    "encode_with_pool",
    "start_pool",
    "stop_pool",
]

logger = logging.getLogger(__name__)

#: Fewer texts than this are encoded in the calling process even when a pool is given.
POOL_MIN_TEXTS = 4096
#: Bounds of the default ``chunk_size``.
MIN_CHUNK, MAX_CHUNK = 1024, 8192
_POOL_MARK = "staticst"
_LOCK = "staticst_lock"
_BLOCK = "staticst_block"
_STOPPED = "staticst_stopped"
_TIMEOUT = "staticst_timeout"
#: Results at least this large get a shared block of their own, returned without a copy.
OWN_BLOCK_BYTES = 64 << 20
#: Default seconds a pool call waits with no chunk finishing before it raises ``TimeoutError``.
STALL_TIMEOUT = 60.0
_POLL_SECONDS = 1.0
_calls = itertools.count()


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def start_pool(folder: str, target_devices: Sequence[str] | None, timeout: float = STALL_TIMEOUT) -> dict[str, Any]:
    """Spawn the workers of a pool for the model stored in ``folder`` (see the module docstring).

    Args:
        folder: The model folder each worker loads.
        target_devices: One entry per worker; ``None``: one worker per usable CPU.
        timeout: Seconds a call waits without any chunk finishing before it gives up with ``TimeoutError``
            (a worker stopped with SIGSTOP, or starved); a chunk of a few thousand texts takes milliseconds.

    Raises:
        ValueError: ``target_devices`` is not a non-empty list, or ``timeout`` is not positive.
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}.")
    if target_devices is None:
        n_workers = _usable_cpus()
    else:
        if isinstance(target_devices, str) or not isinstance(target_devices, Sequence) or not target_devices:
            raise ValueError(
                f"target_devices must be a non-empty list such as ['cpu', 'cpu'] (one worker process each), "
                f"got {target_devices!r}."
            )
        n_workers = len(target_devices)
    ctx = mp.get_context("spawn")
    input_queue = ctx.Queue()
    output_queue = ctx.Queue()
    processes = []
    for _ in range(n_workers):
        process = ctx.Process(target=_worker, args=(folder, input_queue, output_queue), daemon=True)
        process.start()
        processes.append(process)
    logger.info("Started a staticst pool of %d worker process(es) for %s", n_workers, folder)
    return {
        "input": input_queue,
        "output": output_queue,
        "processes": processes,
        _POOL_MARK: folder,
        _LOCK: threading.Lock(),
        _BLOCK: None,
        _TIMEOUT: float(timeout),
    }


def stop_pool(pool: dict[str, Any]) -> None:
    """Stop the workers of ``pool`` (after the chunk each one is working on) and close its queues.

    Stopping a pool twice does nothing the second time.
    """
    if pool.get(_STOPPED):
        return
    pool[_STOPPED] = True
    processes = pool["processes"]
    for _ in processes:
        pool["input"].put(None)
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join()
        process.close()
    pool["input"].cancel_join_thread()
    pool["input"].close()
    pool["output"].close()
    _drop_block(pool)


def check_pool(pool: Any) -> None:
    """Raise ``ValueError`` unless ``pool`` is a live pool made by ``start_multi_process_pool``."""
    if not isinstance(pool, dict) or _POOL_MARK not in pool:
        raise ValueError(
            "pool must be the dict returned by StaticSentenceTransformer.start_multi_process_pool() "
            f"(a sentence-transformers pool runs a different model), got {type(pool).__name__}."
        )
    if pool.get(_STOPPED):
        raise ValueError("the pool has been stopped: start a new one with start_multi_process_pool().")
    dead = [p for p in pool["processes"] if not p.is_alive()]
    if len(dead) == len(pool["processes"]):
        raise ValueError(
            f"every worker of the pool has died ({_describe(dead)}): stop it with stop_multi_process_pool() and "
            "start a new one with start_multi_process_pool()."
        )


def _describe(processes: Sequence[Any]) -> str:
    """``pid 12 (killed by SIGKILL), pid 13 (exit code 1)``: what happened to each process."""
    parts = []
    for process in processes:
        code = process.exitcode
        if code is None:
            state = _proc_state(process.pid)
            parts.append(f"pid {process.pid} ({'stopped (SIGSTOP)' if state == 'T' else 'running'})")
        elif code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            parts.append(f"pid {process.pid} (killed by {name})")
        else:
            parts.append(f"pid {process.pid} (exit code {code})")
    return ", ".join(parts)


def _proc_state(pid: int | None) -> str | None:
    """The state letter of a Linux process (``R``, ``S``, ``T`` for stopped, ...), or ``None`` if unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def encode_with_pool(
    engine: Embedder,
    texts: list[str],
    pool: dict[str, Any],
    chunk_size: int | None,
    progress: Callable[[int], Any] | None = None,
) -> np.ndarray:
    """``engine.embed(texts)`` computed by the workers of ``pool``: ``(len(texts), dim)`` float32.

    Args:
        engine: The caller's engine (its token rules and pooling are sent with every chunk).
        texts: The texts.
        pool: A pool from :func:`start_pool`.
        chunk_size: Texts per chunk (``None``: about four chunks per worker).
        progress: Called with the number of texts of each chunk as it finishes (a progress bar's ``update``).

    A result of at least :data:`OWN_BLOCK_BYTES` is written into a block of its own and returned without a copy
    (the workers write the rows, this process maps the same pages): the peak memory of a large call is the
    result once, not twice. Smaller results reuse the pool's block (no page faults) and are copied out.
    """
    n = len(texts)
    dim = engine.dim  # the engine's rows: before any truncate_dim
    if chunk_size is None:  # about 4 chunks per worker: balanced, with few per-chunk costs
        chunk_size = min(MAX_CHUNK, max(MIN_CHUNK, math.ceil(n / len(pool["processes"]) / 4)))
    call = (os.getpid(), next(_calls))
    size = n * dim * 4
    with pool[_LOCK]:  # one call at a time per pool: they share its output block
        own = size >= OWN_BLOCK_BYTES and Path("/dev/shm").is_dir()
        block = shared_memory.SharedMemory(create=True, size=size) if own else _block(pool, size)
        try:
            _run_call(pool, call, block.name, texts, engine, dim, chunk_size, progress)
        except BaseException:
            # Chunks of a failed call may still be running: never let them write into a later call's rows.
            if own:
                _release(block)
            else:
                _drop_block(pool)
            raise
        if own:
            try:
                return _mapped_rows(block, n, dim)
            finally:
                _release(block)
        view = np.ndarray((n, dim), dtype=np.float32, buffer=block.buf)
        out = view.copy()
        del view
        return out


def _mapped_rows(block: shared_memory.SharedMemory, n: int, dim: int) -> np.ndarray:
    """The rows the workers wrote into ``block``, as an array over a mapping of its own (no copy).

    The mapping outlives ``block`` (closed and unlinked right after): the pages are freed with the array.
    """
    fd = os.open(Path("/dev/shm") / block.name.lstrip("/"), os.O_RDWR)
    try:
        mapped = mmap.mmap(fd, n * dim * 4)
    finally:
        os.close(fd)
    return np.frombuffer(mapped, dtype=np.float32, count=n * dim).reshape(n, dim)


def _release(block: shared_memory.SharedMemory) -> None:
    block.close()
    block.unlink()


def embed_pooled(
    engine: Embedder,
    folder: str,
    texts: list[str],
    pool: dict[str, Any] | None,
    devices: Sequence[Any] | None,
    chunk_size: int | None,
    progress: Callable[[int], Any] | None = None,
) -> np.ndarray | None:
    """``encode(pool=...)`` / ``encode(device=[...])``: the vectors from worker processes, or ``None``.

    ``None`` means the call should be encoded in-process: fewer than :data:`POOL_MIN_TEXTS` texts, where the
    round trip to the workers would cost more than it saves. With ``devices`` (and no ``pool``) a temporary
    pool of ``len(devices)`` workers for the model in ``folder`` is started and stopped around the call.
    ``progress`` is called with each finished chunk's number of texts.
    """
    if len(texts) < POOL_MIN_TEXTS:
        return None
    if pool is not None:
        return encode_with_pool(engine, texts, pool, chunk_size, progress)
    temporary = start_pool(folder, [str(d) for d in devices or ()])
    try:
        return encode_with_pool(engine, texts, temporary, chunk_size, progress)
    finally:
        stop_pool(temporary)


def _block(pool: dict[str, Any], size: int) -> shared_memory.SharedMemory:
    """The pool's output block, grown to at least ``size`` bytes (kept between calls: no page faults)."""
    block: shared_memory.SharedMemory | None = pool[_BLOCK]
    if block is None or block.size < size:
        _drop_block(pool)
        block = shared_memory.SharedMemory(create=True, size=max(size, 1 << 20))
        pool[_BLOCK] = block
    return block


def _drop_block(pool: dict[str, Any]) -> None:
    block: shared_memory.SharedMemory | None = pool.get(_BLOCK)
    pool[_BLOCK] = None
    if block is not None:
        block.close()
        block.unlink()


def _run_call(
    pool: dict[str, Any],
    call: tuple[int, int],
    name: str,
    texts: list[str],
    engine: Embedder,
    dim: int,
    chunk_size: int,
    progress: Callable[[int], Any] | None = None,
) -> None:
    """Queue the chunks of one call and wait until every worker reported its chunks."""
    n = len(texts)
    processes = pool["processes"]
    starts = range(0, n, chunk_size)
    settings = (engine.settings, engine.pooling)
    for chunk, lo in enumerate(starts):
        pool["input"].put((call, chunk, name, lo, n, dim, texts[lo : lo + chunk_size], settings))
    errors: list[BaseException] = []
    pending = len(starts)
    timeout = float(pool.get(_TIMEOUT, STALL_TIMEOUT))
    last_progress = time.monotonic()
    while pending:
        try:
            their_call, chunk, error = pool["output"].get(timeout=min(_POLL_SECONDS, timeout))
        except queue.Empty:
            dead = [p for p in processes if not p.is_alive()]
            if dead:
                raise RuntimeError(
                    f"{len(dead)} staticst pool worker(s) died: {_describe(dead)}. Stop the pool "
                    "(stop_multi_process_pool) and start a new one before retrying."
                ) from None
            if time.monotonic() - last_progress > timeout:
                raise TimeoutError(
                    f"no staticst pool worker finished a chunk in {timeout:g} s ({pending} of {len(starts)} chunks "
                    f"outstanding; workers: {_describe(processes)}). A worker may be stopped (SIGSTOP) or starved: stop "
                    "the pool (stop_multi_process_pool) and start a new one, or pass a larger timeout to "
                    "start_multi_process_pool()."
                ) from None
            continue
        if their_call != call:  # a late answer to an earlier call that failed: not ours
            continue
        pending -= 1
        last_progress = time.monotonic()
        if progress is not None:
            progress(min(chunk_size, n - chunk * chunk_size))
        if error is not None:
            errors.append(error)
    if errors:
        raise errors[0]


def _worker(folder: str, input_queue: Any, output_queue: Any) -> None:
    """Worker loop: build the engine once, then encode chunks into the callers' shared-memory blocks."""
    # This process is ours: keep the Rust tokenizer on this worker's core (its thread pool would compete
    # with the other workers for the same cores).
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    base = Embedder.load(folder)
    attached: dict[str, shared_memory.SharedMemory] = {}  # the caller's current block, kept mapped
    while True:
        item = input_queue.get()
        if item is None:
            for block in attached.values():
                block.close()
            return
        call, chunk, name, lo, n, dim, texts, (settings, pooling) = item
        try:
            if name not in attached:
                for old in attached.values():
                    old.close()
                attached.clear()
                attached[name] = shared_memory.SharedMemory(name=name)
            _encode_chunk(base, settings, pooling, attached[name], lo, n, dim, texts)
        except Exception as exc:  # reported to the caller, which raises it
            output_queue.put((call, chunk, _picklable(exc)))
        else:
            output_queue.put((call, chunk, None))


def _encode_chunk(
    base: Embedder,
    settings: TokenizerSettings,
    pooling: PoolingConfig,
    block: shared_memory.SharedMemory,
    lo: int,
    n: int,
    dim: int,
    texts: list[str],
) -> None:
    engine = base if (settings, pooling) == (base.settings, base.pooling) else base.with_settings(settings, pooling)
    vectors = engine.embed(texts)
    view = np.ndarray((n, dim), dtype=np.float32, buffer=block.buf)
    view[lo : lo + len(texts)] = vectors
    del view


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError("".join(traceback.format_exception(exc)))
    return exc

"""Running the service: ``staticst serve`` options and the uvicorn launcher (one or more worker processes)."""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

from staticst._argtypes import port as _port
from staticst._argtypes import positive_int as _positive_int
from staticst.server._app import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_INPUT_CHARS,
    DEFAULT_MAX_TOKENIZE_TOKENS,
    create_app,
)
from staticst.server._protocol import DEFAULT_TIMEOUT_HEADER, ServeConfig, protocol_class
from staticst.server._timeouts import DEFAULT_TIMEOUT_BODY, check_timeout

__all__ = [
    "DEFAULT_BACKLOG",
    "DEFAULT_TIMEOUT_KEEP_ALIVE",
    "FD_RESERVE",
    "MAX_BACKLOG",
    "MAX_WORKERS",
    "WORKERS_PER_CPU",
    "add_serve_arguments",
    "auto_limit_concurrency",
    "build_app",
    "check_workers",
    "main_from_args",
    "serve",
    "server_config",
    "usable_cpus",
    "worker_healthcheck_timeout",
]

logger = logging.getLogger("staticst.server")

GRACEFUL_SHUTDOWN_SECONDS = 30
DEFAULT_TIMEOUT_KEEP_ALIVE = 5.0
"""Seconds an idle kept-alive connection stays open after an answer (uvicorn's default)."""
DEFAULT_BACKLOG = 4096
"""Listen backlog: connections the kernel queues before they are accepted (Linux caps it at somaxconn)."""
FD_RESERVE = 64
"""File descriptors the automatic connection cap leaves for the process (model files, the socket, threads)."""
Concurrency = int | str | None
"""``limit_concurrency``: a positive integer, ``"auto"`` (from the open-file limit) or ``None`` (no cap)."""
MAX_WORKERS = 1024
"""Most worker processes even with ``force_workers`` (each loads the model): more is a typo, not a deployment."""
WORKERS_PER_CPU = 4
"""Most worker processes per usable CPU without ``force_workers``: past it workers only queue for the cores."""
MIN_WORKER_HEALTHCHECK = 30.0
"""Least seconds a worker may take to answer the supervisor's health check (uvicorn's default: 5)."""
HEALTHCHECK_LOAD_FACTOR = 20
"""The health-check timeout is at least this many times the model's load time measured in the parent."""
MAX_BACKLOG = 2**31 - 1
"""The largest listen backlog the C ``listen()`` takes (Linux caps it at ``net.core.somaxconn`` anyway)."""


def _check_int(name: str, value: object, high: int, low: int = 1) -> int:
    """``value`` if it is an integer in ``low..high``; else a ValueError naming the option, the value and the range.

    Raises:
        ValueError: Not an integer (booleans are not), or out of range (e.g. past ``ssize_t``).
    """
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def auto_limit_concurrency() -> int | None:
    """The default connection cap: the open-file limit (``ulimit -n``) minus :data:`FD_RESERVE`.

    So the server answers 503 to the connection over the cap instead of running out of file descriptors
    (when it can no longer accept anyone). ``None`` (no cap) when the limit is unlimited or unknown.

    Returns:
        The cap, at least 1.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(1, soft - FD_RESERVE if soft > 2 * FD_RESERVE else soft // 2)


def _resolve_concurrency(value: Concurrency) -> int | None:
    if value == "auto":
        return auto_limit_concurrency()
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= sys.maxsize:
        raise ValueError(
            f"limit_concurrency must be a positive integer up to {sys.maxsize}, 'auto' or None, got {value!r}"
        )
    return value


def _seconds(value: str) -> float:
    """The ``type=`` of a timeout option: a positive number of seconds."""
    try:
        return check_timeout("timeout", float(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}") from None


def _concurrency(value: str) -> Concurrency:
    """The ``type=`` of ``--limit-concurrency``: a positive integer, ``auto`` or ``none``."""
    if value.lower() in ("auto", "none"):
        return "auto" if value.lower() == "auto" else None
    try:
        return _positive_int(value)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, 'auto' or 'none', got {value!r}") from None


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    """A no-op signal handler (see :func:`serve`)."""


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else ``os.cpu_count()``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def check_workers(workers: object, force: bool = False) -> int:
    """``workers`` if it is a sensible number of worker processes; else a ValueError naming it and the limit.

    Each worker is a process that loads the model and runs Python on one core: past
    :data:`WORKERS_PER_CPU` per usable CPU they only queue for the cores and fill the memory
    (``--workers 99999999999999999999`` once started hundreds before anything failed).

    Args:
        workers: The requested number of worker processes.
        force: Allow up to :data:`MAX_WORKERS` whatever the CPU count (``--force-workers``).

    Returns:
        ``workers``.

    Raises:
        ValueError: Not an integer from 1 to :data:`MAX_WORKERS`, or (without ``force``) more than
            :data:`WORKERS_PER_CPU` per usable CPU.
    """
    cpus = usable_cpus()
    try:
        _check_int("workers", workers, MAX_WORKERS)
    except ValueError as exc:
        raise ValueError(
            f"{exc} (this machine has {cpus} usable CPUs; one worker per CPU is the usual choice)"
        ) from None
    assert isinstance(workers, int)
    limit = WORKERS_PER_CPU * cpus
    if workers > limit and not force:
        raise ValueError(
            f"workers is {workers}, more than {WORKERS_PER_CPU} per usable CPU ({limit} on this machine's {cpus} "
            f"CPUs): each worker is a process holding the model, and past one per CPU they only queue for the "
            f"cores. Use --workers {cpus}, or --force-workers (force_workers=True) to start {workers} anyway "
            f"(at most {MAX_WORKERS})."
        )
    return workers


def worker_healthcheck_timeout(load_seconds: float) -> float:
    """Seconds the worker supervisor waits for a worker's health-check answer before it kills and respawns it.

    uvicorn's default, 5 s, kills workers that are still importing and loading the model on a busy machine,
    then respawns them, in a loop (start-ups took minutes). The timeout grows with the model's load time
    measured in the parent: at least :data:`MIN_WORKER_HEALTHCHECK` seconds, and
    :data:`HEALTHCHECK_LOAD_FACTOR` times that load time.

    Args:
        load_seconds: Wall-clock seconds the parent took to load the model and build the app.

    Returns:
        The timeout in seconds.
    """
    return max(MIN_WORKER_HEALTHCHECK, HEALTHCHECK_LOAD_FACTOR * load_seconds)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``staticst serve`` options to ``parser``.

    Adds the optional positional ``model`` and ``--host``, ``--port``, ``--workers``, ``--force-workers``,
    ``--timeout-worker-healthcheck``, ``--max-batch``,
    ``--max-input-chars``, ``--max-body-bytes``, ``--max-tokenize-tokens``, ``--timeout-keep-alive``, ``--timeout-header``,
    ``--timeout-body``, ``--limit-concurrency``, ``--backlog``, ``--served-model-name``,
    ``--auto-truncate`` / ``--no-auto-truncate``, ``--access-log`` and ``--log-level``.

    Args:
        parser: The (sub)parser of the ``serve`` command.
    """
    parser.add_argument("model", nargs="?", default=None, help="folder or Hub id (default: built-in potion-base-8M)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8080, help="port to bind, 0 for any free port (default: 8080)")
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help=f"worker processes sharing the socket, at most {WORKERS_PER_CPU} per usable CPU (default: 1)",
    )
    parser.add_argument(
        "--force-workers",
        action="store_true",
        help=f"allow more than {WORKERS_PER_CPU} workers per CPU (up to {MAX_WORKERS})",
    )
    parser.add_argument(
        "--timeout-worker-healthcheck",
        type=_seconds,
        default=None,
        help="with --workers > 1, seconds a worker has to answer the supervisor's health check before it is "
        f"killed and respawned (default: {HEALTHCHECK_LOAD_FACTOR} x the model's load time, at least "
        f"{MIN_WORKER_HEALTHCHECK:g})",
    )
    parser.add_argument(
        "--max-batch",
        type=_positive_int,
        default=DEFAULT_MAX_BATCH,
        help=f"most texts per request (default: {DEFAULT_MAX_BATCH})",
    )
    parser.add_argument(
        "--max-input-chars",
        type=_positive_int,
        default=DEFAULT_MAX_INPUT_CHARS,
        help=f"most characters per text (default: {DEFAULT_MAX_INPUT_CHARS})",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        help=f"largest request body in bytes (default: {DEFAULT_MAX_BODY_BYTES})",
    )
    parser.add_argument(
        "--max-tokenize-tokens",
        type=_positive_int,
        default=DEFAULT_MAX_TOKENIZE_TOKENS,
        help=f"most tokens one /tokenize answer lists, 413 above (default: {DEFAULT_MAX_TOKENIZE_TOKENS})",
    )
    parser.add_argument(
        "--timeout-keep-alive",
        type=_seconds,
        default=DEFAULT_TIMEOUT_KEEP_ALIVE,
        help=f"seconds an idle connection stays open after an answer (default: {DEFAULT_TIMEOUT_KEEP_ALIVE:g})",
    )
    parser.add_argument(
        "--timeout-header",
        type=_seconds,
        default=DEFAULT_TIMEOUT_HEADER,
        help="seconds a connection has to send a complete request head, from when it opens or starts a "
        f"request; then it is closed (default: {DEFAULT_TIMEOUT_HEADER:g})",
    )
    parser.add_argument(
        "--timeout-body",
        type=_seconds,
        default=DEFAULT_TIMEOUT_BODY,
        help=f"seconds a request body may take to arrive; 408 after (default: {DEFAULT_TIMEOUT_BODY:g})",
    )
    parser.add_argument(
        "--limit-concurrency",
        type=_concurrency,
        default="auto",
        help="most connections and requests at once per worker, 503 above; 'auto': the open-file limit "
        f"(ulimit -n) minus {FD_RESERVE}; 'none': no cap (default: auto)",
    )
    parser.add_argument(
        "--backlog",
        type=_positive_int,
        default=DEFAULT_BACKLOG,
        help=f"listen backlog (default: {DEFAULT_BACKLOG})",
    )
    parser.add_argument(
        "--served-model-name",
        default=None,
        help="model name in /info, /v1/models and /v1/embeddings (default: the model folder's name or the Hub id)",
    )
    parser.add_argument(
        "--auto-truncate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="cut texts over the model's max_seq_length when a request does not say (truncate); "
        "--no-auto-truncate refuses them with 413, as text-embeddings-inference does by default (default: on)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request (costs throughput)")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"], help="default: info"
    )


def build_app(
    model_name_or_path: str | None,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    timeout_body: float = DEFAULT_TIMEOUT_BODY,
    served_model_name: str | None = None,
    auto_truncate: bool = True,
    max_tokenize_tokens: int = DEFAULT_MAX_TOKENIZE_TOKENS,
) -> Any:
    """Load the model and build the app (the factory each worker process calls).

    Args:
        model_name_or_path: Folder or Hub id; ``None`` for the built-in model.
        max_batch: Most texts per request.
        max_input_chars: Most characters per text.
        max_body_bytes: Largest request body in bytes.
        timeout_body: Seconds a request body may take to arrive (408 after).
        served_model_name: Name in ``/info`` and ``/v1/embeddings``; ``None``: the folder's name or Hub id.
        auto_truncate: Cut texts over the model's token limit when a request does not say (else 413).
        max_tokenize_tokens: Most tokens one ``/tokenize`` answer lists (413 above).

    Returns:
        The ASGI application.
    """
    from staticst.model import StaticSentenceTransformer

    model = StaticSentenceTransformer(model_name_or_path)
    return create_app(
        model,
        max_batch=max_batch,
        max_input_chars=max_input_chars,
        max_body_bytes=max_body_bytes,
        timeout_body=timeout_body,
        model_name=served_model_name,
        auto_truncate=auto_truncate,
        max_tokenize_tokens=max_tokenize_tokens,
    )


def server_config(
    app: Any,
    *,
    timeout_keep_alive: float = DEFAULT_TIMEOUT_KEEP_ALIVE,
    timeout_header: float = DEFAULT_TIMEOUT_HEADER,
    limit_concurrency: Concurrency = "auto",
    backlog: int = DEFAULT_BACKLOG,
    http: str = "auto",
    **kwargs: Any,
) -> ServeConfig:
    """The uvicorn configuration :func:`serve` runs: the header deadline, the timeouts and the caps.

    Args:
        app: The ASGI application (or a factory with ``factory=True``).
        timeout_keep_alive: Seconds an idle connection stays open after an answer.
        timeout_header: Seconds a connection has to send a complete request head.
        limit_concurrency: Most connections and requests at once (503 above): a positive integer, ``"auto"``
            (:func:`auto_limit_concurrency`) or ``None`` (no cap).
        backlog: Listen backlog.
        http: The HTTP/1.1 parser: ``"auto"``, ``"httptools"`` or ``"h11"`` (see
            :func:`staticst.server._protocol.protocol_class`).
        **kwargs: More ``uvicorn.Config`` arguments (``host``, ``port``, ``workers``, ``log_level``...).

    Returns:
        The configuration.

    Raises:
        ValueError: When an option is out of range.
    """
    _check_int("backlog", backlog, MAX_BACKLOG)
    options: dict[str, Any] = {
        "loop": "auto",
        "lifespan": "off",
        "ws": "none",  # no WebSocket routes: upgrade requests are plain requests
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "server_header": False,
        **kwargs,
    }
    return ServeConfig(
        app,
        timeout_header=check_timeout("timeout_header", timeout_header),
        http=protocol_class(http),
        timeout_keep_alive=check_timeout("timeout_keep_alive", timeout_keep_alive),
        limit_concurrency=_resolve_concurrency(limit_concurrency),
        backlog=backlog,
        **options,
    )


def _worker_app(model_name_or_path: str | None, **options: Any) -> Any:
    """:func:`build_app` for a server process: also moves the loaded objects out of the GC's way.

    ``gc.freeze()`` puts everything alive after start-up (modules, model, app) in the permanent
    generation, so full collections during serving no longer walk it (fewer multi-millisecond pauses).
    """
    app = build_app(model_name_or_path, **options)
    gc.collect()
    gc.freeze()
    if threading.current_thread() is threading.main_thread():
        # A worker process: SIGHUP (its terminal closed, or sent to the process group) drains like SIGTERM.
        signal.signal(signal.SIGHUP, _hangup_as_sigterm)
    return app


def _hangup_as_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGHUP handler of a worker process: raise SIGTERM, which uvicorn turns into a graceful shutdown."""
    signal.raise_signal(signal.SIGTERM)


def serve(
    model_name_or_path: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    force_workers: bool = False,
    timeout_worker_healthcheck: float | None = None,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_tokenize_tokens: int = DEFAULT_MAX_TOKENIZE_TOKENS,
    timeout_keep_alive: float = DEFAULT_TIMEOUT_KEEP_ALIVE,
    timeout_header: float = DEFAULT_TIMEOUT_HEADER,
    timeout_body: float = DEFAULT_TIMEOUT_BODY,
    limit_concurrency: Concurrency = "auto",
    backlog: int = DEFAULT_BACKLOG,
    served_model_name: str | None = None,
    auto_truncate: bool = True,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve a model over HTTP with uvicorn (uvloop + httptools when installed) until SIGINT/SIGTERM/SIGHUP.

    The model is loaded once before binding, so a bad model name fails fast. With ``workers > 1`` the
    socket is bound once and shared by that many worker processes, each loading the model (a table of 16 MiB or more is
    mapped from one read-only copy per machine, a smaller one is a private copy);
    the supervisor's health-check timeout grows with the model's load time (see
    :func:`worker_healthcheck_timeout`), so workers still loading on a busy machine are not killed.
    On SIGTERM or SIGHUP the server stops accepting connections and finishes in-flight requests (up to 30 s).
    (SIGHUP sent to the supervisor of several workers replaces them one by one, uvicorn's reload, each
    old worker draining.)

    Args:
        model_name_or_path: Folder or Hub id; ``None`` for the built-in potion-base-8M.
        host: Address to bind.
        port: Port to bind (0: any free port).
        workers: Number of worker processes, at most :data:`WORKERS_PER_CPU` per usable CPU.
        force_workers: Allow more workers than that (up to :data:`MAX_WORKERS`).
        timeout_worker_healthcheck: With ``workers > 1``, seconds a worker has to answer the supervisor's
            health check before it is killed and respawned; ``None``: from the model's load time.
        max_batch: Most texts per request.
        max_input_chars: Most characters per text.
        max_body_bytes: Largest request body in bytes.
        max_tokenize_tokens: Most tokens one ``/tokenize`` answer lists (413 above).
        timeout_keep_alive: Seconds an idle connection stays open after an answer.
        timeout_header: Seconds a connection has to send a complete request head (then it is closed).
        timeout_body: Seconds a request body may take to arrive (then 408 and the connection is closed).
        limit_concurrency: Most connections and requests at once per worker (503 above): a positive
            integer, ``"auto"`` (the open-file limit minus :data:`FD_RESERVE`) or ``None`` (no cap).
        backlog: Listen backlog.
        served_model_name: Name in ``/info`` and ``/v1/embeddings``; ``None``: the folder's name or Hub id.
        auto_truncate: Cut texts over the model's ``max_seq_length`` when a request does not say (``truncate``);
            ``False``: refuse them with a 413, as text-embeddings-inference does by default.
        access_log: Log every request.
        log_level: uvicorn log level.

    Raises:
        ValueError: When an option is out of range.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    check_workers(workers, force_workers)
    if timeout_worker_healthcheck is not None:
        check_timeout("timeout_worker_healthcheck", timeout_worker_healthcheck)
    factory = functools.partial(
        _worker_app,
        model_name_or_path,
        max_batch=max_batch,
        max_input_chars=max_input_chars,
        max_body_bytes=max_body_bytes,
        timeout_body=timeout_body,
        served_model_name=served_model_name,
        auto_truncate=auto_truncate,
        max_tokenize_tokens=max_tokenize_tokens,
    )
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "timeout_keep_alive": timeout_keep_alive,
        "timeout_header": timeout_header,
        "limit_concurrency": limit_concurrency,
        "backlog": backlog,
        "access_log": access_log,
        "log_level": log_level,
    }
    check_timeout("timeout_body", timeout_body)
    server_config(factory, factory=True, **common)  # validates the server options before the model loads
    main_thread = threading.current_thread() is threading.main_thread()
    hangup = signal.getsignal(signal.SIGHUP) if main_thread else None
    started = time.monotonic()
    app = factory()  # validates the model and the limits in this process before anything binds
    load_seconds = time.monotonic() - started
    if hangup is not None:
        signal.signal(signal.SIGHUP, hangup)  # the factory's worker-process handler is not this process's
    if workers == 1:
        config = server_config(app, **common)
        _log_limits(config, timeout_body)
        server = uvicorn.Server(config)
        if threading.current_thread() is not threading.main_thread():
            server.run()
            return
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown; with this (restored) no-op
        # handler in place that re-raise is a no-op, so a SIGTERM-ed server returns and the CLI exits 0.
        # SIGHUP (the terminal closed, or `kill -HUP`) drains the same way instead of killing the process.
        previous = signal.signal(signal.SIGTERM, _ignore_signal)
        previous_hup = signal.signal(signal.SIGHUP, lambda signum, frame: server.handle_exit(signal.SIGTERM, frame))
        try:
            server.run()
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGHUP, previous_hup)
        return
    # Each worker is a spawned process that calls the (picklable) factory: no import string, no env vars.
    config = server_config(factory, factory=True, workers=workers, **common)
    if timeout_worker_healthcheck is None:
        timeout_worker_healthcheck = worker_healthcheck_timeout(load_seconds)
    # Set after construction: uvicorn < 0.30 has no health check (and no such argument).
    config.timeout_worker_healthcheck = timeout_worker_healthcheck  # type: ignore[assignment]
    _log_limits(config, timeout_body)
    logging.getLogger("uvicorn.error").info(
        "%d workers; model loaded in %.2f s here, worker health-check timeout %g s",
        workers,
        load_seconds,
        timeout_worker_healthcheck,
    )
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()


def _log_limits(config: ServeConfig, timeout_body: float) -> None:
    logging.getLogger("uvicorn.error").info(
        "timeouts: keep-alive %g s, header %g s, body %g s; connection cap %s per worker; backlog %d",
        config.timeout_keep_alive,
        config.timeout_header,
        timeout_body,
        config.limit_concurrency or "none",
        config.backlog,
    )


def main_from_args(args: argparse.Namespace) -> int:
    """Run ``staticst serve`` from parsed arguments (see :func:`add_serve_arguments`).

    Args:
        args: The parsed ``serve`` arguments.

    Returns:
        The exit status (0 after a clean shutdown).
    """
    try:
        serve(
            args.model,
            host=args.host,
            port=args.port,
            workers=args.workers,
            force_workers=getattr(args, "force_workers", False),
            timeout_worker_healthcheck=getattr(args, "timeout_worker_healthcheck", None),
            max_batch=args.max_batch,
            max_input_chars=args.max_input_chars,
            max_body_bytes=getattr(args, "max_body_bytes", DEFAULT_MAX_BODY_BYTES),
            max_tokenize_tokens=getattr(args, "max_tokenize_tokens", DEFAULT_MAX_TOKENIZE_TOKENS),
            timeout_keep_alive=getattr(args, "timeout_keep_alive", DEFAULT_TIMEOUT_KEEP_ALIVE),
            timeout_header=getattr(args, "timeout_header", DEFAULT_TIMEOUT_HEADER),
            timeout_body=getattr(args, "timeout_body", DEFAULT_TIMEOUT_BODY),
            limit_concurrency=getattr(args, "limit_concurrency", "auto"),
            backlog=getattr(args, "backlog", DEFAULT_BACKLOG),
            served_model_name=getattr(args, "served_model_name", None),
            auto_truncate=getattr(args, "auto_truncate", True),
            access_log=getattr(args, "access_log", False),
            log_level=getattr(args, "log_level", "info"),
        )
    except KeyboardInterrupt:
        return 0
    except OSError as exc:  # e.g. address already in use
        print(f"staticst serve: error: {exc}", file=sys.stderr)
        return 1
    return 0

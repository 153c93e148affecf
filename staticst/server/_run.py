"""Running the service: ``staticst serve`` options and the uvicorn launcher (one or more worker processes)."""

from __future__ import annotations

import argparse
import functools
import gc
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

from staticst._argtypes import port as _port
from staticst._argtypes import positive_int as _positive_int
from staticst.server._app import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INPUT_CHARS, create_app

__all__ = ["add_serve_arguments", "build_app", "main_from_args", "serve"]

logger = logging.getLogger("staticst.server")

GRACEFUL_SHUTDOWN_SECONDS = 30


def _ignore_signal(signum: int, frame: FrameType | None) -> None:
    """A no-op signal handler (see :func:`serve`)."""


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``staticst serve`` options to ``parser``.

    Adds the optional positional ``model`` and ``--host``, ``--port``, ``--workers``, ``--max-batch``,
    ``--max-input-chars``, ``--max-body-bytes``, ``--access-log`` and ``--log-level``.

    Args:
        parser: The (sub)parser of the ``serve`` command.
    """
    parser.add_argument("model", nargs="?", default=None, help="folder or Hub id (default: built-in potion-base-8M)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8080, help="port to bind, 0 for any free port (default: 8080)")
    parser.add_argument(
        "--workers", type=_positive_int, default=1, help="worker processes sharing the socket (default: 1)"
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
    parser.add_argument("--access-log", action="store_true", help="log every request (costs throughput)")
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"], help="default: info"
    )


def build_app(
    model_name_or_path: str | None,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Any:
    """Load the model and build the app (the factory each worker process calls).

    Args:
        model_name_or_path: Folder or Hub id; ``None`` for the built-in model.
        max_batch: Most texts per request.
        max_input_chars: Most characters per text.
        max_body_bytes: Largest request body in bytes.

    Returns:
        The ASGI application.
    """
    from staticst.model import StaticSentenceTransformer

    model = StaticSentenceTransformer(model_name_or_path)
    return create_app(model, max_batch=max_batch, max_input_chars=max_input_chars, max_body_bytes=max_body_bytes)


def _worker_app(model_name_or_path: str | None, **limits: int) -> Any:
    """:func:`build_app` for a server process: also moves the loaded objects out of the GC's way.

    ``gc.freeze()`` puts everything alive after start-up (modules, model, app) in the permanent
    generation, so full collections during serving no longer walk it (fewer multi-millisecond pauses).
    """
    app = build_app(model_name_or_path, **limits)
    gc.collect()
    gc.freeze()
    return app


def serve(
    model_name_or_path: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve a model over HTTP with uvicorn (uvloop + httptools when installed) until SIGINT/SIGTERM.

    The model is loaded once before binding, so a bad model name fails fast. With ``workers > 1`` the
    socket is bound once and shared by that many worker processes, each loading the model (memory-mapped).
    On SIGTERM the server stops accepting connections and finishes in-flight requests (up to 30 s).

    Args:
        model_name_or_path: Folder or Hub id; ``None`` for the built-in potion-base-8M.
        host: Address to bind.
        port: Port to bind (0: any free port).
        workers: Number of worker processes.
        max_batch: Most texts per request.
        max_input_chars: Most characters per text.
        max_body_bytes: Largest request body in bytes.
        access_log: Log every request.
        log_level: uvicorn log level.

    Raises:
        ValueError: When an option is out of range.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    factory = functools.partial(
        _worker_app,
        model_name_or_path,
        max_batch=max_batch,
        max_input_chars=max_input_chars,
        max_body_bytes=max_body_bytes,
    )
    app = factory()  # validates the model and the limits in this process before anything binds
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "auto",
        "http": "auto",
        "lifespan": "off",
        "access_log": access_log,
        "log_level": log_level,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "backlog": 4096,
        "server_header": False,
    }
    if workers == 1:
        server = uvicorn.Server(uvicorn.Config(app, **common))
        if threading.current_thread() is not threading.main_thread():
            server.run()
            return
        # uvicorn re-raises the captured SIGTERM after its graceful shutdown; with this (restored) no-op
        # handler in place that re-raise is a no-op, so a SIGTERM-ed server returns and the CLI exits 0.
        previous = signal.signal(signal.SIGTERM, _ignore_signal)
        try:
            server.run()
        finally:
            signal.signal(signal.SIGTERM, previous)
        return
    # Each worker is a spawned process that calls the (picklable) factory: no import string, no env vars.
    config = uvicorn.Config(factory, factory=True, workers=workers, **common)
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()


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
            max_batch=args.max_batch,
            max_input_chars=args.max_input_chars,
            max_body_bytes=getattr(args, "max_body_bytes", DEFAULT_MAX_BODY_BYTES),
            access_log=getattr(args, "access_log", False),
            log_level=getattr(args, "log_level", "info"),
        )
    except KeyboardInterrupt:
        return 0
    except OSError as exc:  # e.g. address already in use
        print(f"staticst serve: error: {exc}", file=sys.stderr)
        return 1
    return 0

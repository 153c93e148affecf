"""Live servers for the server tests: uvicorn in a thread on 127.0.0.1:0, and ``staticst serve`` as a subprocess.

One copy of each helper for every server test file (ephemeral ports only, every wait bounded). uvicorn, httpx and
starlette are imported on use: the server extra is optional and the test files skip without it.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np


def same_bits(got: np.ndarray, expected: np.ndarray) -> None:
    """``got`` is float32 and bit for bit ``expected`` (as float32)."""
    expected = np.asarray(expected, dtype=np.float32)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


class LiveServer:
    """uvicorn in a background thread on a socket bound to 127.0.0.1:0.

    Args:
        app: The ASGI app.
        configured: Run it with :func:`staticst.server._run.server_config` (the configuration ``staticst serve``
            runs, its own protocol and timeouts) instead of plain ``uvicorn.Config``.
        **options: More keyword arguments of ``server_config`` (only with ``configured``).
    """

    def __init__(self, app: Any, *, configured: bool = False, **options: Any) -> None:
        import uvicorn

        if options and not configured:
            raise TypeError(f"options {sorted(options)} need configured=True (they are server_config's)")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        if configured:
            from staticst.server._run import server_config

            config = server_config(app, log_level="warning", timeout_graceful_shutdown=2, **options)
        else:
            config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
        assert not self.thread.is_alive(), "the test server did not stop"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(port: int, *args: str, timeout: float = 60.0) -> subprocess.Popen[bytes]:
    """``staticst serve`` (the CLI, built-in model unless ``args`` name one) on 127.0.0.1:``port``.

    Waits until ``/health`` answers (``timeout`` seconds at most); ``args`` are more command-line arguments.
    """
    import httpx

    argv = [sys.executable, "-m", "staticst.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"staticst serve exited early: {proc.stdout.read().decode() if proc.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    proc.wait(timeout=10)
    raise RuntimeError(f"staticst serve did not start within {timeout:g} s")


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then the exit code (killed, and an error, after 30 s)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise

"""Slow and idle clients: header, body and keep-alive timeouts, the connection cap, the listen backlog.

Real servers on 127.0.0.1 ephemeral ports: uvicorn in a thread with ``staticst.server``'s configuration
(both HTTP/1.1 parsers, httptools and h11), and ``staticst serve`` itself in a subprocess. The timeouts are
small (1 s); the checks are that sockets *get* closed within a generous bound and that ``/health`` is served
during a flood, never how fast anything happens.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed: pip install 'staticst[server]'")

import httpx  # noqa: E402

from staticst import StaticSentenceTransformer  # noqa: E402
from staticst.server import add_serve_arguments, create_app  # noqa: E402
from tests._live import LiveServer, free_port, stop  # noqa: E402

PARSERS = ["httptools", "h11"]
CLOSE_WITHIN = 20.0  # seconds: the bound for "the server closed it" (the timeouts are 1 s; the machine is shared)
PARTIAL_HEAD = b"POST /embed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"
BODY = json.dumps({"inputs": ["a slow body"]}).encode()
HEAD_WITH_BODY = (
    b"POST /embed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    % len(BODY)
)


@pytest.fixture()
def serve_with(model: StaticSentenceTransformer) -> Iterator[Callable[..., LiveServer]]:
    """Start servers with given options (an app with a 1 s body timeout); all stopped after the test."""
    started: list[LiveServer] = []

    def start(timeout_body: float = 1.0, **options: Any) -> LiveServer:
        server = LiveServer(create_app(model, timeout_body=timeout_body), configured=True, **options).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


def connect(port: int, payload: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if payload:
        sock.sendall(payload)
    return sock


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (head and ``content-length`` body), however the segments arrive."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed before the response head was complete: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(v) for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")[1:]) if k.lower() == b"content-length")
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, f"closed before the response body was complete: {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def read_until_closed(sock: socket.socket, within: float = CLOSE_WITHIN) -> bytes:
    """Everything the server sends until it closes the connection; fails if it is still open after ``within`` s."""
    data = b""
    deadline = time.monotonic() + within
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"the server left the connection open for {within} s (got {data[:200]!r})")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def health(url: str) -> int:
    return httpx.get(f"{url}/health", timeout=10, headers={"Connection": "close"}).status_code


# ----------------------------------------------------------------------------- the header timeout
@pytest.mark.parametrize("http", PARSERS)
def test_idle_and_half_sent_connections_are_closed_after_the_header_timeout(
    serve_with: Callable[..., LiveServer], http: str
) -> None:
    live = serve_with(http=http, timeout_header=1, timeout_keep_alive=30)
    silent = [connect(live.port) for _ in range(10)]
    partial = [connect(live.port, PARTIAL_HEAD) for _ in range(10)]
    kept = []  # a whole request, then half of the next head: uvicorn's keep-alive timer stops at its first byte
    for _ in range(5):
        sock = connect(live.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\nHo")
        kept.append(sock)
    assert health(live.url) == 200  # served while 25 sockets are stuck
    try:
        for sock in silent:
            assert read_until_closed(sock) == b""  # closed without a word: it never started a request
        for sock in partial + kept:
            answer = read_until_closed(sock)
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
            assert b"connection: close" in answer
    finally:
        for sock in silent + partial + kept:
            sock.close()
    assert health(live.url) == 200


@pytest.mark.parametrize("http", PARSERS)
def test_an_idle_kept_alive_connection_waits_for_the_keep_alive_timeout_not_the_header_one(
    serve_with: Callable[..., LiveServer], http: str
) -> None:
    live = serve_with(http=http, timeout_header=1, timeout_keep_alive=1.5)
    with connect(live.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n") as sock:
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert read_until_closed(sock) == b""  # closed by the keep-alive timeout, silently
    slow = serve_with(http=http, timeout_header=1, timeout_keep_alive=30)
    with connect(slow.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n") as sock:
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(2.5)  # idle for more than the header timeout, well within the keep-alive one
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")


# ----------------------------------------------------------------------------- the body timeout
@pytest.mark.parametrize("http", PARSERS)
def test_a_body_that_does_not_arrive_in_time_is_a_408_and_the_connection_closes(
    serve_with: Callable[..., LiveServer], http: str
) -> None:
    live = serve_with(http=http, timeout_body=1, timeout_header=30)
    with connect(live.port, HEAD_WITH_BODY + BODY[:10]) as sock:
        answer = read_until_closed(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b"connection: close" in head.lower()
    error = json.loads(body)
    assert error["error_type"] == "timeout" and "--timeout-body" in error["error"] and error["value"] == 10
    with connect(live.port, HEAD_WITH_BODY + BODY) as sock:  # the same request, sent whole, is answered
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("http", PARSERS)
def test_a_body_that_keeps_dripping_after_an_early_answer_is_cut_off(
    serve_with: Callable[..., LiveServer], http: str
) -> None:
    """A 415 is answered before the body is read; a client that then drips the body forever is closed."""
    live = serve_with(http=http, timeout_header=1, timeout_keep_alive=30)
    head = b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\nab"
    with connect(live.port, head) as sock:
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 415")
        deadline = time.monotonic() + CLOSE_WITHIN
        closed = False
        while not closed and time.monotonic() < deadline:
            try:
                sock.sendall(b"x")
                sock.settimeout(0.2)
                closed = sock.recv(4096) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        assert closed, "the server kept reading a dripping body for good"


# ----------------------------------------------------------------------------- the connection cap
def test_over_the_connection_cap_new_requests_get_503_until_the_idle_ones_time_out(
    serve_with: Callable[..., LiveServer],
) -> None:
    live = serve_with(limit_concurrency=8, timeout_header=4, timeout_keep_alive=30)
    fillers = [connect(live.port) for _ in range(10)]
    try:
        deadline = time.monotonic() + 4
        statuses = set()
        while 503 not in statuses and time.monotonic() < deadline:
            statuses.add(health(live.url))
        assert 503 in statuses  # refused at once, not left hanging
        for sock in fillers:
            assert read_until_closed(sock) == b""
    finally:
        for sock in fillers:
            sock.close()
    assert health(live.url) == 200


# ----------------------------------------------------------------------------- staticst serve itself
def _serve(port: int, *options: str, nofile: int | None = None) -> subprocess.Popen[bytes]:
    """``staticst serve`` with options in a subprocess (optionally with a low open-file limit)."""
    argv = [sys.executable, "-m", "staticst.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning", *options]

    def limit_files() -> None:
        import resource

        assert nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=limit_files if nofile else None
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"staticst serve exited early: {proc.stdout.read().decode() if proc.stdout else ''}")
        try:
            if health(f"http://127.0.0.1:{port}") == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("staticst serve did not start within 60 s")


def test_serve_survives_a_slow_client_flood_and_closes_it() -> None:
    """150 sockets that send nothing, half a head, or a head and half a body; /health answers throughout."""
    port = free_port()
    proc = _serve(port, "--timeout-header", "1", "--timeout-body", "1", "--timeout-keep-alive", "1")
    flood: list[tuple[str, socket.socket]] = []
    try:
        for i in range(50):
            flood.append(("silent", connect(port)))
            flood.append(("head", connect(port, PARTIAL_HEAD)))
            flood.append(("body", connect(port, HEAD_WITH_BODY + BODY[: 5 + i % 5])))
        assert [health(f"http://127.0.0.1:{port}") for _ in range(20)] == [200] * 20
        for kind, sock in flood:
            answer = read_until_closed(sock)
            expected = {"silent": b"", "head": b"HTTP/1.1 408 Request Timeout", "body": b"HTTP/1.1 408 Request Timeout"}
            assert answer.startswith(expected[kind]) and (kind != "silent" or answer == b""), (kind, answer[:200])
            if kind == "body":
                assert json.loads(answer.partition(b"\r\n\r\n")[2])["error_type"] == "timeout"
        assert health(f"http://127.0.0.1:{port}") == 200
    finally:
        for _, sock in flood:
            sock.close()
        assert stop(proc) == 0


def test_a_flood_larger_than_the_fd_limit_does_not_lock_clients_out() -> None:
    """With 160 open files allowed, 250 idle sockets: the server frees them and serves new clients again."""
    port = free_port()
    proc = _serve(port, "--timeout-header", "1", nofile=160)
    flood = []
    try:
        flood = [connect(port) for _ in range(250)]
        deadline = time.monotonic() + 60
        served = False
        while not served and time.monotonic() < deadline:
            try:
                served = health(f"http://127.0.0.1:{port}") == 200
            except httpx.TransportError:  # dropped while the process is out of descriptors
                time.sleep(0.2)
        assert served, "new clients stayed locked out"
        assert proc.poll() is None
    finally:
        for sock in flood:
            sock.close()
        assert stop(proc) == 0


# ----------------------------------------------------------------------------- options
def test_serve_options_and_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from staticst.server._run import auto_limit_concurrency, serve

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a check that came after the model load would fail fast

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args([])
    assert (args.timeout_keep_alive, args.timeout_header, args.timeout_body) == (5.0, 10.0, 30.0)
    assert (args.limit_concurrency, args.backlog, args.served_model_name) == ("auto", 4096, None)
    args = parser.parse_args(
        ["--timeout-keep-alive", "2.5", "--timeout-header", "3", "--timeout-body", "60", "--limit-concurrency", "500",
         "--backlog", "128", "--served-model-name", "embedder"]
    )  # fmt: skip
    assert (args.timeout_keep_alive, args.timeout_header, args.timeout_body) == (2.5, 3.0, 60.0)
    assert (args.limit_concurrency, args.backlog, args.served_model_name) == (500, 128, "embedder")
    assert parser.parse_args(["--limit-concurrency", "none"]).limit_concurrency is None
    for bad in (["--timeout-header", "0"], ["--timeout-body", "-1"], ["--timeout-keep-alive", "inf"],
                ["--limit-concurrency", "0"], ["--backlog", "0"]):  # fmt: skip
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    for kwargs in ({"timeout_header": 0}, {"timeout_body": float("nan")}, {"limit_concurrency": -3}, {"backlog": 0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            serve("no/such-model-is-loaded-before-the-options-are-checked", **kwargs)
    cap = auto_limit_concurrency()
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert cap is None if soft == resource.RLIM_INFINITY else cap == max(1, soft - 64 if soft > 128 else soft // 2)


def test_server_config_selects_the_parser_with_the_header_timeout(model: StaticSentenceTransformer) -> None:
    from staticst.server._protocol import H11Protocol, HeaderTimeout, HttpToolsProtocol
    from staticst.server._run import server_config

    app = create_app(model)
    for http, cls in (("auto", HttpToolsProtocol), ("httptools", HttpToolsProtocol), ("h11", H11Protocol)):
        config = server_config(app, http=http, timeout_header=2, limit_concurrency=None, backlog=64)
        assert config.http is cls and issubclass(cls, HeaderTimeout)
        assert (config.timeout_header, config.limit_concurrency, config.backlog) == (2, None, 64)
    with pytest.raises(ValueError, match="http"):
        server_config(app, http="zttp")

"""uvicorn's HTTP/1.1 protocols with a header timeout, and the uvicorn configuration that selects them.

uvicorn bounds the idle time between requests (``timeout_keep_alive``) but nothing else: a connection that
is opened and sends nothing, or sends half a request head and stops, stays open for good (and holds a file
descriptor). :class:`HeaderTimeout` adds the missing deadline to uvicorn's two HTTP/1.1 parsers
(:class:`HttpToolsProtocol`, :class:`H11Protocol`):

* A connection has ``timeout_header`` seconds to deliver a complete request head whenever it is the
  client's turn and uvicorn's keep-alive timer is not running: from the moment it is opened, from the first
  byte of the next request on a kept-alive connection (uvicorn cancels its keep-alive timer on that byte),
  and after an answer sent before the request body was complete (the rest of that body must arrive too).
* While a request is being answered the deadline is off: the application bounds the body itself
  (``timeout_body``, :mod:`staticst.server._app`) and the answer may take as long as the model needs.
* When the deadline passes, the connection is closed; if the client had sent part of a request it first
  gets a ``408 Request Timeout``.

The timer is armed only when a head is not complete at the end of the read that began it, so a request
arriving in one piece (nearly all of them) costs a flag check, not a timer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol as _H11Base

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsBase
except ImportError:  # pragma: no cover - httptools is part of uvicorn[standard]
    _HttpToolsBase = None  # type: ignore[assignment,misc]

__all__ = [
    "DEFAULT_TIMEOUT_HEADER",
    "H11Protocol",
    "HeaderTimeout",
    "HttpToolsProtocol",
    "ServeConfig",
    "protocol_class",
]

logger = logging.getLogger("staticst.server")

DEFAULT_TIMEOUT_HEADER = 10.0
"""Seconds a client has to send a complete request head (see the module docstring)."""

_MESSAGE = b"the request headers did not arrive in time"
_RESPONSE_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_MESSAGE), _MESSAGE)
)

if TYPE_CHECKING:  # the attributes the mixin reads are uvicorn's (both parsers have them)
    _Base = _H11Base
else:
    _Base = object


class ServeConfig(uvicorn.Config):
    """``uvicorn.Config`` with one more setting, ``timeout_header``, read by :class:`HeaderTimeout`.

    A module-level class, so a configuration pickled for spawned worker processes unpickles in them.
    """

    def __init__(self, app: Any, *, timeout_header: float | None = DEFAULT_TIMEOUT_HEADER, **kwargs: Any) -> None:
        """Build the configuration.

        Args:
            app: The ASGI application (or factory, with ``factory=True``).
            timeout_header: Seconds for a complete request head; ``None``: no deadline (uvicorn's behaviour).
            **kwargs: ``uvicorn.Config`` keyword arguments.
        """
        super().__init__(app, **kwargs)
        self.timeout_header = timeout_header


class HeaderTimeout(_Base):
    """Mixin for a uvicorn HTTP/1.1 protocol class: closes connections that do not send a request head in time.

    Reads ``config.timeout_header`` (``None`` or absent: no deadline). Written against what uvicorn's
    httptools and h11 protocols share: ``cycle`` (the request being answered), ``timeout_keep_alive_task``
    (uvicorn's idle timer), ``on_response_complete``, ``transport`` and ``loop``.
    """

    _deadline: asyncio.TimerHandle | None = None
    _heard = False  # bytes arrived while the deadline ran: the client started a request (-> 408)
    _timeout_header: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the connection and its deadline for the first request head."""
        super().connection_made(transport)
        self._timeout_header = getattr(self.config, "timeout_header", None)
        self._sync(heard=False)

    def data_received(self, data: bytes) -> None:
        """Parse the bytes, then arm the deadline if a head is still incomplete (or disarm it)."""
        super().data_received(data)
        self._sync(heard=True)

    def on_response_complete(self) -> None:
        """After an answer: uvicorn's keep-alive timer runs, unless the request body is still arriving."""
        super().on_response_complete()
        self._sync(heard=False)

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the deadline with the connection."""
        self._disarm()
        super().connection_lost(exc)

    def _waiting_for_client(self) -> bool:
        """Whether it is the client's turn with no uvicorn timer running (the deadline's condition)."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return False  # a request is being answered: its body is bounded by the application
        return self.timeout_keep_alive_task is None  # else uvicorn's keep-alive timer bounds the idle time

    def _sync(self, heard: bool) -> None:
        if self._timeout_header is None:
            return
        if not self._waiting_for_client():
            self._disarm()
            return
        if self._deadline is None:
            self._deadline = self.loop.call_later(self._timeout_header, self._expire)
            self._heard = heard
        else:
            self._heard = self._heard or heard

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._heard = False

    def _expire(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self or not self._waiting_for_client():
            return
        logger.debug("closing a connection that sent no complete request head in %s s", self._timeout_header)
        if self._heard:
            transport.write(_RESPONSE_408)
        transport.close()


class H11Protocol(HeaderTimeout, _H11Base):
    """uvicorn's h11 protocol with the header deadline."""


if _HttpToolsBase is not None:

    class HttpToolsProtocol(HeaderTimeout, _HttpToolsBase):  # type: ignore[misc]
        """uvicorn's httptools protocol with the header deadline (uvicorn's default parser)."""


def protocol_class(http: str = "auto") -> type[asyncio.Protocol]:
    """The protocol class to pass as uvicorn's ``http=`` for a parser name.

    Args:
        http: ``"auto"`` (httptools when installed, else h11, as uvicorn chooses), ``"httptools"`` or ``"h11"``.

    Returns:
        The class, with the header deadline.

    Raises:
        ValueError: For another name, or ``"httptools"`` when httptools is not installed.
    """
    if http == "h11" or (http == "auto" and _HttpToolsBase is None):
        return H11Protocol
    if http in ("auto", "httptools"):
        if _HttpToolsBase is None:  # pragma: no cover - httptools is part of uvicorn[standard]
            raise ValueError("http='httptools' needs httptools: pip install httptools")
        return HttpToolsProtocol
    raise ValueError(f"http must be 'auto', 'httptools' or 'h11', got {http!r}")

"""Timeouts of the application: checking a timeout option, and the deadline on reading a request body.

The connection-level timeouts (keep-alive, request head) belong to the server (:mod:`staticst.server._protocol`);
the body deadline belongs to the application, so that a late body is answered with a 408 in the route's
error style.
"""

from __future__ import annotations

import asyncio
import math
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import anyio

__all__ = ["DEFAULT_TIMEOUT_BODY", "body_deadline", "check_timeout"]

DEFAULT_TIMEOUT_BODY = 30.0
"""Seconds a request's whole body may take to arrive once its headers are in (408 after)."""


def check_timeout(name: str, value: Any) -> float:
    """``value`` as a timeout in seconds: a positive finite number.

    Args:
        name: The option's name, for the message.
        value: The value.

    Returns:
        The value as a float.

    Raises:
        ValueError: When it is not a positive finite number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


class _AsyncioDeadline:
    """Cancel the current asyncio task after ``seconds``; the cancellation surfaces as ``TimeoutError``.

    One ``loop.call_later`` per use (under a microsecond): cheaper than an anyio cancel scope, which matters
    on a path every request takes.
    """

    __slots__ = ("_handle", "_seconds", "_task", "expired")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self.expired = False

    def __enter__(self) -> _AsyncioDeadline:
        self._task = asyncio.current_task()
        self._handle = asyncio.get_running_loop().call_later(self._seconds, self._expire)
        return self

    def _expire(self) -> None:
        if self._task is not None:
            self.expired = True
            self._task.cancel()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        if self.expired and exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            uncancel = getattr(self._task, "uncancel", None)  # Python >= 3.11: undo our own cancellation
            if uncancel is not None:
                uncancel()
            raise TimeoutError(f"no complete body within {self._seconds} s") from None


def body_deadline(seconds: float) -> AbstractContextManager[Any]:
    """A context manager raising ``TimeoutError`` when its block runs longer than ``seconds``.

    On asyncio (uvicorn) a single timer; on another event loop (trio), anyio's ``fail_after``.

    Args:
        seconds: The time allowed.

    Returns:
        The context manager.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio
        return anyio.fail_after(seconds)
    return _AsyncioDeadline(seconds)

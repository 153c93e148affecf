"""``argparse`` value types shared by the ``staticst`` command line and ``staticst serve``."""

from __future__ import annotations

import argparse

__all__ = ["port", "positive_int", "shard"]


def positive_int(value: str) -> int:
    """The ``type=`` of options that take a positive integer.

    Raises:
        argparse.ArgumentTypeError: ``value`` is not an integer above zero.
    """
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def port(value: str) -> int:
    """The ``type=`` of a TCP port option (0 asks the system for any free port).

    Raises:
        argparse.ArgumentTypeError: ``value`` is not an integer in 0..65535.
    """
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {value!r}")
    return number


def shard(value: str) -> tuple[int, int]:
    """The ``type=`` of ``--shard``: ``i/n`` with ``0 <= i < n`` (this machine's part of the input).

    Raises:
        argparse.ArgumentTypeError: ``value`` is not two integers ``i/n`` with ``0 <= i < n``.
    """
    try:
        index_text, count_text = value.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n with 0 <= i < n (e.g. 0/4 ... 3/4), got {value!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected i/n with 0 <= i < n (e.g. 0/4 ... 3/4), got {value!r}")
    return index, count

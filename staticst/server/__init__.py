"""The HTTP embedding service (``pip install 'staticst[server]'``; run with ``staticst serve``).

``import staticst`` never imports this package; it needs Starlette, uvicorn and orjson.

Example:
    >>> from staticst import StaticSentenceTransformer
    >>> from staticst.server import create_app
    >>> app = create_app(StaticSentenceTransformer())  # any ASGI server can run it
"""

from __future__ import annotations

try:
    import orjson  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"staticst.server needs the server extra ({exc.name} is missing): pip install 'staticst[server]'"
    ) from exc

from staticst.server._app import create_app
from staticst.server._media import negotiate
from staticst.server._run import add_serve_arguments, build_app, main_from_args, serve, server_config
from staticst.server._validation import Limits, RequestError

__all__ = [
    "Limits",
    "RequestError",
    "add_serve_arguments",
    "build_app",
    "create_app",
    "main_from_args",
    "negotiate",
    "serve",
    "server_config",
]

"""The ``staticst`` command line: a thin layer over the library.

Commands::

    staticst encode [TEXT ...] [--model M] [--output FILE.npy|FILE.jsonl] ...   (stdin: one text per line)
    staticst info [MODEL] [--json]
    staticst serve [MODEL] [--host H] [--port P] ...                          (needs staticst[server])
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import numpy as np

from staticst._argtypes import positive_int

__all__ = ["build_parser", "main"]


def build_parser(with_server: bool = False) -> argparse.ArgumentParser:
    """The argument parser of the ``staticst`` command.

    Args:
        with_server: Add the ``serve`` options from ``staticst.server`` (imports the server extra).
    """
    parser = argparse.ArgumentParser(prog="staticst", description="Static embeddings, sentence-transformers style, no torch.")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encode", help="embed texts (arguments, or one per line on stdin)")
    enc.add_argument("texts", nargs="*", help="texts to embed; read stdin (one per line) when none are given")
    enc.add_argument("--model", "-m", default=None, help="folder or Hub id (default: built-in potion-base-8M)")
    enc.add_argument("--output", "-o", default=None, help="write .npy (array) or .jsonl; default: JSON lines on stdout")
    enc.add_argument("--batch-size", type=positive_int, default=1024)
    enc.add_argument("--normalize", action="store_true", help="L2-normalise the output")
    enc.add_argument("--truncate-dim", type=positive_int, default=None, help="keep the first N dimensions")
    enc.add_argument("--prompt-name", default=None, help="prepend the model's prompt of this name")
    enc.add_argument("--precision", default="float32", choices=["float32", "int8", "uint8", "binary", "ubinary"])

    info = sub.add_parser("info", help="show a model's layout, dimensions, vocabulary and settings")
    info.add_argument("model", nargs="?", default=None, help="folder or Hub id (default: built-in model)")
    info.add_argument("--json", action="store_true", help="print JSON")

    serve = sub.add_parser("serve", help="run the HTTP embedding service (pip install 'staticst[server]')")
    if with_server:
        from staticst.server import add_serve_arguments

        add_serve_arguments(serve)
    else:
        serve.add_argument("args", nargs=argparse.REMAINDER, help="see `staticst serve --help`")
    return parser


def _read_texts(args_texts: Sequence[str], stdin: TextIO) -> list[str]:
    if args_texts:
        return list(args_texts)
    return [line.rstrip("\r\n") for line in stdin]


def _cmd_encode(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    from staticst.model import StaticSentenceTransformer

    texts = _read_texts(args.texts, stdin)
    model = StaticSentenceTransformer(args.model)
    emb = model.encode(
        texts,
        batch_size=args.batch_size,
        normalize_embeddings=args.normalize,
        truncate_dim=args.truncate_dim,
        prompt_name=args.prompt_name,
        precision=args.precision,
    )
    emb = np.asarray(emb)
    if args.output and args.output.endswith(".npy"):
        np.save(args.output, emb)
        print(f"wrote {emb.shape} {emb.dtype} to {args.output}", file=sys.stderr)
        return 0
    lines = (json.dumps({"index": i, "embedding": row.tolist()}) + "\n" for i, row in enumerate(emb))
    if args.output:
        with Path(args.output).open("w", encoding="utf-8") as handle:
            handle.writelines(lines)
        print(f"wrote {len(texts)} rows to {args.output}", file=sys.stderr)
    else:
        stdout.writelines(lines)
    return 0


def _cmd_info(args: argparse.Namespace, stdout: TextIO) -> int:
    from staticst.model import StaticSentenceTransformer

    info = StaticSentenceTransformer(args.model).info()
    if args.json:
        stdout.write(json.dumps(info, indent=2) + "\n")
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            stdout.write(f"{key:<{width}}  {value}\n")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from staticst.server import main_from_args

    return int(main_from_args(args))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (errors are printed, not raised)."""
    from staticst.errors import StaticSTError

    argv = list(sys.argv[1:] if argv is None else argv)
    with_server = bool(argv) and argv[0] == "serve"
    if with_server:
        try:
            parser = build_parser(with_server=True)
        except ImportError as exc:
            print(f"staticst serve needs the server extra: pip install 'staticst[server]' ({exc})", file=sys.stderr)
            return 2
    else:
        parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "encode":
            return _cmd_encode(args, sys.stdin, sys.stdout)
        if args.command == "info":
            return _cmd_info(args, sys.stdout)
        return _cmd_serve(args)
    except (StaticSTError, ValueError, TypeError) as exc:
        print(f"staticst {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

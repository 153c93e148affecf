"""The ``staticst`` command line: a thin layer over the library.

Commands::

    staticst encode [TEXT ...] [-i FILE|GLOB|FOLDER ... | stdin] [-o OUT.npy|.parquet|.jsonl|.f32|.bin]
                    [--shard i/n] [--resume] ...
    staticst info [MODEL] [--json]
    staticst serve [MODEL] [--host H] [--port P] ...                          (needs staticst[server])
    staticst --version

``encode`` streams: texts given as arguments are encoded in one call; otherwise the input (files, globs or
folders, or stdin: one text per line, or JSON lines / CSV / Parquet with ``--field``) is read and written a
batch at a time by :func:`staticst.corpus.embed_corpus` (an output file: atomic, resumable, locked against a
second run) or to stdout as JSON lines. ``--shard i/n`` embeds one machine's part of the input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, TextIO

import numpy as np

from staticst._argtypes import positive_int, shard

__all__ = ["build_parser", "main"]

_PRECISIONS = ["float32", "int8", "uint8", "binary", "ubinary"]


def build_parser(with_server: bool = False) -> argparse.ArgumentParser:
    """The argument parser of the ``staticst`` command.

    Args:
        with_server: Add the ``serve`` options from ``staticst.server`` (imports the server extra).
    """
    from staticst._version import __version__

    parser = argparse.ArgumentParser(
        prog="staticst", description="Static embeddings, sentence-transformers style, no torch."
    )
    parser.add_argument("--version", action="version", version=f"staticst {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encode", help="embed texts: arguments, a corpus file, or stdin (one text per line)")
    enc.add_argument("texts", nargs="*", help="texts to embed; without them the input is --input or stdin")
    enc.add_argument("--model", "-m", default=None, help="folder or Hub id (default: built-in potion-base-8M)")
    enc.add_argument(
        "--input",
        "-i",
        action="append",
        default=None,
        help="corpus file (.txt lines, .jsonl, .csv, .parquet), a quoted glob ('data/*.jsonl') or a folder; repeatable; "
        "default stdin",
    )
    enc.add_argument(
        "--shard",
        type=shard,
        default=None,
        metavar="I/N",
        help="embed only part I of N of the input (0 <= I < N): one per machine",
    )
    enc.add_argument(
        "--format",
        default=None,
        choices=["text", "jsonl", "csv", "parquet"],
        help="input format (default: by extension)",
    )
    enc.add_argument("--field", default=None, help="text field of JSON lines / CSV / Parquet input (default: text)")
    enc.add_argument(
        "--id-field", default=None, help="a field written with each vector as its id (JSON lines, Parquet)"
    )
    enc.add_argument(
        "--output", "-o", default=None, help="write .npy, .parquet, .jsonl, .f32 or .bin; default: JSON lines on stdout"
    )
    enc.add_argument("--keep-text", action="store_true", help="also write each text (JSON lines, Parquet)")
    enc.add_argument("--resume", action="store_true", help="continue the interrupted run that left OUTPUT.partial")
    enc.add_argument(
        "--on-error",
        default="fail",
        choices=["fail", "skip"],
        help="a line that cannot be read: stop (default) or skip and list it",
    )
    enc.add_argument("--quiet", "-q", action="store_true", help="no progress bar (default: shown on a terminal)")
    enc.add_argument("--batch-size", type=positive_int, default=32768, help="texts per batch and checkpoint")
    enc.add_argument("--normalize", action="store_true", help="L2-normalise the output")
    enc.add_argument("--truncate-dim", type=positive_int, default=None, help="keep the first N dimensions")
    enc.add_argument("--prompt-name", default=None, help="prepend the model's prompt of this name")
    enc.add_argument(
        "--precision",
        default="float32",
        choices=_PRECISIONS,
        help="quantize; binary / ubinary pack signs 8 per byte (any input); int8 / uint8 calibrate on the call "
        "(TEXT arguments only)",
    )

    info = sub.add_parser("info", help="show a model's layout, dimensions, vocabulary, settings and backend")
    info.add_argument("model", nargs="?", default=None, help="folder or Hub id (default: built-in model)")
    info.add_argument("--json", action="store_true", help="print JSON")

    serve = sub.add_parser("serve", help="run the HTTP embedding service (pip install 'staticst[server]')")
    if with_server:
        from staticst.server import add_serve_arguments

        add_serve_arguments(serve)
    else:
        serve.add_argument("args", nargs=argparse.REMAINDER, help="see `staticst serve --help`")
    return parser


def _json_lines(rows: np.ndarray, start: int, ids: Sequence[Any] | None = None) -> bytes:
    import orjson

    key = "id" if ids is not None else "index"
    return b"".join(
        orjson.dumps(
            {key: ids[i] if ids is not None else start + i, "embedding": row}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        + b"\n"
        for i, row in enumerate(rows)
    )


def _records_from(args: argparse.Namespace, source: Any) -> Iterator[Any]:
    from staticst.corpus.sources import BadRecord
    from staticst.errors import CorpusInputError

    for item in source.records():
        if isinstance(item, BadRecord):
            if args.on_error == "fail":
                raise CorpusInputError(f"{item.where}: {item.reason}. Fix the input or pass --on-error skip.")
            print(f"staticst encode: skipped {item.where}: {item.reason}", file=sys.stderr)
            continue
        yield item


def _batches(records: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _cmd_encode(args: argparse.Namespace, stdout: BinaryIO) -> int:
    from staticst.corpus import check_output, embed_corpus, open_source
    from staticst.corpus.run import STREAM_PRECISIONS
    from staticst.model import StaticSentenceTransformer

    if args.output is not None:
        check_output(args.output)  # before any work: a bad path fails in milliseconds, not after the corpus
    if args.texts and args.input is not None:
        raise ValueError("give texts as arguments or --input FILE, not both.")
    if args.texts and args.shard is not None:
        raise ValueError("--shard splits an input file; texts given as arguments are encoded in one call.")
    if args.precision not in STREAM_PRECISIONS and not args.texts:
        raise ValueError(
            f"--precision {args.precision} takes its ranges from the embeddings of the whole call (as "
            "sentence-transformers calibrates it), which a corpus streamed in batches never has in one piece: give "
            "the texts as arguments, or write float32 with --output and quantize afterwards "
            "(staticst.util.quantize_embeddings with calibration_embeddings). binary and ubinary need no "
            "calibration and work on any input."
        )
    source = None
    if not args.texts:  # the input is checked (files exist, pyarrow for Parquet) before the model loads
        source = open_source(args.input, format=args.format, field=args.field, id_field=args.id_field, shard=args.shard)
    model = StaticSentenceTransformer(args.model)
    options = {
        "normalize_embeddings": args.normalize,
        "truncate_dim": args.truncate_dim,
        "prompt_name": args.prompt_name,
    }
    if args.texts:
        emb = np.asarray(model.encode(list(args.texts), precision=args.precision, **options))
        if args.output:
            if not args.output.endswith(".npy"):
                raise ValueError("texts given as arguments are written as .npy (or as JSON lines to stdout).")
            np.save(args.output, emb)
            print(f"wrote {emb.shape} {emb.dtype} to {args.output}", file=sys.stderr)
        else:
            stdout.write(_json_lines(emb, 0))
        return 0
    if args.output is not None:
        report = embed_corpus(
            model,
            source,
            args.output,
            resume=args.resume,
            on_error=args.on_error,
            progress=False if args.quiet else None,
            batch_texts=args.batch_size,
            keep_texts=args.keep_text,
            input_format=args.format,
            field=args.field,
            id_field=args.id_field,
            precision=args.precision,
            **options,
        )
        note = f", skipped {report.skipped} (listed in {report.errors})" if report.skipped else ""
        resumed = f", resumed after {report.resumed_from:,} records" if report.resumed_from else ""
        print(
            f"wrote {report.rows:,} rows to {report.output} in {report.seconds:.1f} s "
            f"({report.rows_per_second:,.0f} rows/s){note}{resumed}",
            file=sys.stderr,
        )
        return 0
    assert source is not None
    if args.precision != "float32":
        options["precision"] = args.precision
    start = 0
    for batch in _batches(_records_from(args, source), args.batch_size):
        rows = np.asarray(model.encode([r.text for r in batch], **options))
        ids = [r.id for r in batch] if args.id_field is not None else None
        stdout.write(_json_lines(rows, start, ids))
        start += len(rows)
    stdout.flush()
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
    """Run the CLI; returns the exit status (errors are one line on stderr, never a traceback)."""
    from staticst.errors import StaticSTError

    argv = list(sys.argv[1:] if argv is None else argv)
    with_server = bool(argv) and argv[0] == "serve"
    if with_server:
        try:
            parser = build_parser(with_server=True)
        except ImportError as exc:
            hint = str(exc) if "staticst[server]" in str(exc) else f"{exc}: pip install 'staticst[server]'"
            if any(a in ("-h", "--help") for a in argv[1:]):
                print(f"usage: staticst serve [MODEL] [options]\n\nThe HTTP embedding service. {hint}", file=sys.stdout)
                return 0
            print(f"staticst serve: error: {hint}", file=sys.stderr)
            return 2
    else:
        parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "encode":
            return _cmd_encode(args, sys.stdout.buffer)
        if args.command == "info":
            return _cmd_info(args, sys.stdout)
        return _cmd_serve(args)
    except BrokenPipeError:  # e.g. `staticst encode ... | head -1`: the reader has gone; end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"staticst {args.command}: interrupted", file=sys.stderr)
        return 130
    except (StaticSTError, ValueError, TypeError, OSError) as exc:
        detail = (
            f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror and exc.filename else exc
        )
        print(f"staticst {args.command}: error: {detail}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

"""Memory soak: feed millions of unique words through encode and show that RSS levels off at a bound.

Usage::

    python benchmarks/soak.py [--words 3000000] [--batch 20000] [--kernel native|numpy|both] [--model PATH]

Every batch holds texts of never-seen words (``w<batch>x<i>q`` style, plus real text), so the word caches
fill up and are replaced: the native word table holds at most ``staticst.kernel.WORD_TABLE_WORDS`` words
and the numpy path's cache at most ``staticst.tokenization.text.WORD_CACHE_SIZE``; both start a new
generation when full. The script prints RSS after each slice of the run and the growth over the second
half (it must be close to zero: memory has levelled off). A bounded loopback run; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def soak(kernel: str, model_path: str | None, words: int, batch: int) -> list[tuple[int, float, float]]:
    """Rows ``(words fed, seconds, RSS MB)`` after each batch."""
    from staticst import StaticSentenceTransformer

    model = StaticSentenceTransformer(model_path, kernel=kernel)
    rows: list[tuple[int, float, float]] = []
    start = time.perf_counter()
    fed = 0
    n = 0
    while fed < words:
        texts = [f"the quick fox w{n}x{i}q jumps over z{n}y{i}k" for i in range(batch // 2)]
        model.encode(texts)
        fed += 2 * len(texts)
        n += 1
        gc.collect()
        rows.append((fed, time.perf_counter() - start, _rss_mb()))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=3_000_000, help="unique words to feed (default 3,000,000)")
    parser.add_argument("--batch", type=int, default=20_000, help="unique words per encode call")
    parser.add_argument("--kernel", choices=["native", "numpy", "both"], default="both")
    parser.add_argument("--model", default=None, help="model folder (default: the built-in potion-base-8M)")
    args = parser.parse_args(argv)
    from staticst import kernel as kernels
    from staticst.tokenization.text import WORD_CACHE_SIZE

    print(f"bounds: native word table {kernels.WORD_TABLE_WORDS:,} words, numpy word cache {WORD_CACHE_SIZE:,} words")
    ok = True
    for kernel in (["native", "numpy"] if args.kernel == "both" else [args.kernel]):
        rows = soak(kernel, args.model, args.words, args.batch)
        print(f"\n{kernel}: | unique words fed | seconds | RSS (MB) |")
        print("|---:|---:|---:|")
        step = max(1, len(rows) // 12)
        for fed, seconds, rss in rows[::step] + ([rows[-1]] if (len(rows) - 1) % step else []):
            print(f"| {fed:,} | {seconds:.1f} | {rss:.1f} |")
        half = rows[len(rows) // 2][2]
        growth = rows[-1][2] - half
        peak = max(r[2] for r in rows)
        print(f"{kernel}: RSS at half-way {half:.1f} MB, at the end {rows[-1][2]:.1f} MB (growth {growth:+.1f} MB), peak {peak:.1f} MB")
        ok &= growth < 8.0
    print("\nverdict:", "memory levels off" if ok else "memory still grows over the second half")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

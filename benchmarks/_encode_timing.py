"""Encoding benchmark, in-process timing: whole-corpus batch throughput and one-sentence latency, the
libraries alternating round by round, and staticst's multi-process pool as a user calls it."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from _encode_setup import WARMUP_CALLS


class EnvGuard:
    """Puts ``TOKENIZERS_PARALLELISM`` back as it was (model2vec sets it to "false" when it uses threads)."""

    def __init__(self) -> None:
        self.value = os.environ.get("TOKENIZERS_PARALLELISM")

    def restore(self) -> None:
        if self.value is None:
            os.environ.pop("TOKENIZERS_PARALLELISM", None)
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = self.value


def rotated(items: Sequence[str], shift: int) -> list[str]:
    if not items:
        return []
    k = shift % len(items)
    return list(items[k:]) + list(items[:k])


def time_batch(
    models: dict[str, Any], libs: list[str], corpus: list[str], batch_size: int | None, repeats: int,
    budget_s: float, guard: EnvGuard,
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Whole-corpus ``encode`` per library, alternating, ``repeats`` rounds (a library whose runs exceed
    ``budget_s`` in total stops early)."""
    runs: dict[str, list[float]] = {lib: [] for lib in libs}
    spent: dict[str, float] = dict.fromkeys(libs, 0.0)
    kwargs = {} if batch_size is None else {"batch_size": batch_size}
    for r in range(repeats):
        for lib in rotated(libs, r):
            if spent[lib] > budget_s:
                continue
            gc.collect()
            start = time.perf_counter()
            models[lib].encode(corpus, **kwargs)
            elapsed = time.perf_counter() - start
            guard.restore()
            spent[lib] += elapsed
            runs[lib].append(elapsed)
    return {
        lib: {
            "sentences_per_s": len(corpus) / float(np.median(times)),
            "median_s": float(np.median(times)),
            "runs_s": [round(t, 4) for t in times],
        }
        for lib, times in runs.items()
    }


def time_single(
    models: dict[str, Any], libs: list[str], sentences: list[str], rounds: int, budget_s: float, guard: EnvGuard
) -> dict[str, dict[str, Any]]:
    """``encode(str)`` per call (µs), alternating libraries per round; median and p90 of each round, median of those."""
    for lib in libs:  # warm-up
        for text in sentences[:WARMUP_CALLS]:
            models[lib].encode(text)
        guard.restore()
    per_round: dict[str, list[tuple[float, float, int]]] = {lib: [] for lib in libs}
    clock = time.perf_counter_ns
    for r in range(rounds):
        for lib in rotated(libs, r):
            encode: Callable[[str], Any] = models[lib].encode
            gc.collect()
            times: list[int] = []
            deadline = time.perf_counter() + budget_s
            for i, text in enumerate(sentences):
                start = clock()
                encode(text)
                times.append(clock() - start)
                if i % 64 == 63 and time.perf_counter() > deadline:
                    break
            guard.restore()
            us = np.asarray(times) / 1000
            per_round[lib].append((float(np.median(us)), float(np.percentile(us, 90)), len(times)))
    return {
        lib: {
            "p50_us": float(np.median([p50 for p50, _, _ in stats])),
            "p90_us": float(np.median([p90 for _, p90, _ in stats])),
            "calls": sum(n for _, _, n in stats),
            "round_p50_us": [round(p50, 2) for p50, _, _ in stats],
        }
        for lib, stats in per_round.items()
    }


class PoolEncoder:
    """``encode`` through a staticst multi-process pool (one worker per usable CPU), as a user would call it."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.pool = model.start_multi_process_pool()
        self.workers = len(self.pool["processes"])

    def encode(self, texts: Any, **kwargs: Any) -> Any:
        return self.model.encode(texts, pool=self.pool, **kwargs)

    def stop(self) -> None:
        self.model.stop_multi_process_pool(self.pool)


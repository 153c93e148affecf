"""The word cache of the fast path: cache key -> packed word code, bounded, in generations.

A code ``>= 0`` packs up to three token ids below ``2**20`` and their count; longer words point into a
side list. :func:`expand` turns a stream of codes (texts ended by :data:`MARK_CODE`) into flat ids and
offsets with a handful of numpy calls; :func:`assemble` puts groups of texts back in input order.
"""

from __future__ import annotations

from itertools import chain

import numpy as np

__all__ = ["MARK", "MARK_CODE", "MARK_JOIN", "MISS", "Generation", "assemble", "expand", "ids_of_codes"]

MARK = "\x80"  # ends every text in a stream of cache keys (never inside a fast-path key: those are ASCII)
MARK_JOIN = " \x80 "
MARK_CODE = -1
MISS = -(1 << 62)
_ID_BITS = 20
_ID_MASK = (1 << _ID_BITS) - 1
_COUNT_SHIFT = 60


class Generation:
    """One generation of the word cache: key -> code, and the id tuples of words too long to pack.

    A code ``>= 0`` packs up to three ids below ``2**20`` and their count (``count << 60``); a code
    ``<= -2`` points at ``long[-2 - code]``; ``-1`` marks the end of a text. Entries are only ever added
    (under the tokenizer's lock), so a reader holding a generation always sees consistent codes.
    """

    __slots__ = ("codes", "long")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {MARK: MARK_CODE}
        self.long: list[tuple[int, ...]] = []

    def code(self, ids: tuple[int, ...]) -> int:
        """The code of a word with these ids (packed, or a new entry of the side list)."""
        if len(ids) <= 3 and all(0 <= t <= _ID_MASK for t in ids):
            code = len(ids) << _COUNT_SHIFT
            for k, t in enumerate(ids):
                code |= t << (_ID_BITS * k)
            return code
        self.long.append(ids)
        return -1 - len(self.long)


def expand(codes: np.ndarray, long: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Flat int32 ids and per-text offsets from a stream of word codes (texts end at ``MARK_CODE``)."""
    counts = np.where(codes >= 0, codes >> _COUNT_SHIFT, 0)
    side = np.flatnonzero(codes < MARK_CODE)
    pieces: list[tuple[int, ...]] = []
    if len(side):
        pieces = [long[-2 - c] for c in codes[side].tolist()]
        counts[side] = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    starts = ends - counts
    within = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
    packed = np.repeat(np.maximum(codes, 0), counts)
    ids = ((packed >> (within * _ID_BITS)) & _ID_MASK).astype(np.int32)
    if pieces:
        side_counts = counts[side]
        first = np.cumsum(side_counts) - side_counts
        at = np.repeat(starts[side] - first, side_counts) + np.arange(int(side_counts.sum()), dtype=np.int64)
        ids[at] = np.fromiter(chain.from_iterable(pieces), dtype=np.int32, count=len(at))
    offsets = np.zeros(int(np.count_nonzero(codes == MARK_CODE)) + 1, dtype=np.int64)
    offsets[1:] = ends[codes == MARK_CODE]
    return ids, offsets


def assemble(n: int, groups: list[tuple[list[int], np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Put the ids of groups of texts (text indices, ids, offsets) back in text order."""
    if len(groups) == 1 and len(groups[0][0]) == n:
        return groups[0][1], groups[0][2]
    lengths = np.zeros(n, dtype=np.int64)
    for index, _, offsets in groups:
        lengths[np.asarray(index, dtype=np.int64)] = np.diff(offsets)
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_offsets[1:])
    ids = np.empty(int(out_offsets[-1]), dtype=np.int32)
    for index, group_ids, offsets in groups:
        counts = np.diff(offsets)
        shift = out_offsets[np.asarray(index, dtype=np.int64)] - offsets[:-1]
        ids[np.arange(len(group_ids), dtype=np.int64) + np.repeat(shift, counts)] = group_ids
    return ids, out_offsets


def ids_of_codes(codes: list[int], long: list[tuple[int, ...]]) -> list[int]:
    """The ids of one text's word codes, as a list (the short path of a single text: no arrays)."""
    ids: list[int] = []
    append = ids.append
    for code in codes:
        if code >= 0:
            count = code >> _COUNT_SHIFT
            append(code & _ID_MASK)
            if count > 1:
                append((code >> _ID_BITS) & _ID_MASK)
                if count > 2:
                    append((code >> (2 * _ID_BITS)) & _ID_MASK)
        else:
            ids.extend(long[-2 - code])
    return ids

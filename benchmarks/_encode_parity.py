"""Encoding benchmark, correctness: every library's vectors against the reference library's, before any timing.

The reference is model2vec for folders in its own layout, sentence-transformers for a sentence-transformers layout
(model2vec and laghu read that table but not its ``Normalize`` module). staticst's three backends must be
bit-identical to each other and within ``PARITY_TOL`` of the reference; another library that differs by more than
``ST_TOL`` on more than ``ST_MAX_DIFFERING`` of the corpus is effectively another model: "n/a", never a number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from _encode_setup import SHORT, STATICST_VARIANTS, log, version

PARITY_TOL = 1e-6  # staticst vs the reference: the tests require <= 1e-6 (0.0 vs model2vec, ~1e-7 vs ST)
ST_TOL = 1e-3  # ST pools float16 tables in float16 (differences ~5e-4 on wordllama); a real mismatch is >> 1e-3
# ST keeps the tokenizer's unknown token, model2vec drops it: sentences with one differ. Up to this share of the
# corpus, a library is measured with a note (same work per sentence); above it, it is effectively another model.
ST_MAX_DIFFERING = 0.01


def ids_hint(lib: str, m2v: Any, ids: list[int], text: str) -> str:
    """Why ``lib``'s vector differs from model2vec's on ``text``, from its token ids ``ids`` (else "")."""
    try:
        theirs = list(m2v.tokenize([text])[0])
    except Exception:  # private-ish attributes of model2vec changed: no hint
        return ""
    if ids == theirs:
        return ""
    unk = getattr(m2v, "unk_token_id", None)
    if unk is not None and [i for i in ids if i != unk] == theirs:
        return f"; {lib} keeps the unknown token (id {unk}) that model2vec drops, e.g. in {text!r:.80}"
    return f"; {lib}'s token ids differ from model2vec's, e.g. on {text!r:.80}"


def mismatch_hint(lib: str, m2v: Any, model: Any, text: str) -> str:
    """Why ST's or laghu's vector differs from model2vec's on ``text``: the token ids, or else the pooling."""
    try:
        if lib == "sentence-transformers":
            ids = list(model[0].tokenizer.encode(text, add_special_tokens=False).ids)
        else:
            ids = list(model.tokenize([text])[0])
    except Exception:
        return ""
    hint = ids_hint(SHORT[lib], m2v, ids, text)
    if hint or lib != "laghu":
        return hint
    return (
        f"; the token ids are the same, the pooled values differ (laghu {version('laghu')} is written to match "
        f"model2vec 0.9 and says 0.10 gives different vectors; model2vec here is {version('model2vec')})"
    )


def norm_hint(vec: np.ndarray, ref: np.ndarray) -> str:
    """A note when the reference's vectors have unit length and these do not (a skipped Normalize module)."""
    if not len(vec) or vec.shape != ref.shape:
        return ""
    ours, theirs = np.linalg.norm(vec, axis=1), np.linalg.norm(ref, axis=1)
    nonzero = theirs > 0
    if np.allclose(theirs[nonzero], 1, atol=1e-4) and not np.allclose(ours[nonzero], 1, atol=1e-2):
        return (
            f"; the reference's vectors have unit length, these do not (median norm {np.median(ours):.3g}): "
            "the folder's Normalize module is not applied"
        )
    return ""


def check_parity(
    vectors: dict[str, np.ndarray], models: dict[str, Any], status: dict[str, dict[str, Any]], corpus: list[str],
    order: tuple[str, ...],
) -> dict[str, Any]:  # fmt: skip
    """Compare every encoded library with the reference; marks libraries computing other vectors "n/a" (and drops
    them from ``models``). Returns the parity record; ``staticst_ok`` is False on any staticst mismatch."""
    reference = next((lib for lib in order if lib in vectors), None)
    diffs: dict[str, float | None] = {}
    differing: dict[str, int] = {}
    identical: dict[str, bool] = {}
    ok = True
    base = vectors.get("staticst")
    for lib in STATICST_VARIANTS[1:]:  # the backends give bit-identical vectors
        if lib in vectors and base is not None:
            identical[lib] = bool(np.array_equal(vectors[lib], base))
            if not identical[lib]:
                ok = False
                log(f"  !! PARITY FAILURE: {lib} is not bit-identical to staticst (default backend)")
    if reference is None:
        log(f"  parity: no reference library ({' / '.join(order)}) measured this model: vectors not checked")
    for lib, vec in vectors.items():
        if reference is None or lib == reference:
            diffs[lib] = 0.0 if lib == reference else None
            continue
        ref = vectors[reference]
        per_sentence = np.abs(vec - ref).max(axis=1) if vec.shape == ref.shape else np.full(len(corpus), np.inf)
        diff = float(per_sentence.max()) if len(per_sentence) else 0.0
        diffs[lib] = diff
        differing[lib] = int((per_sentence > ST_TOL).sum())
        log(
            f"  parity: max |{lib} - {reference}| = {diff:.3g} over {len(corpus)} sentences "
            f"({differing[lib]} differ by > {ST_TOL:g})"
        )
        if lib in STATICST_VARIANTS:
            if not diff <= PARITY_TOL:
                ok = False
                log(f"  !! PARITY FAILURE: {lib} differs from {reference} by {diff:.3g} (> {PARITY_TOL})")
            continue
        if not differing[lib]:
            continue
        share = differing[lib] / len(corpus)
        note = (
            f"vectors differ from {reference}'s by > {ST_TOL:g} on {differing[lib]} of {len(corpus)} sentences "
            f"({share:.2%}; max abs diff {diff:.3g})"
        )
        worst = corpus[int(per_sentence.argmax())]
        if reference == "model2vec":
            note += mismatch_hint(lib, models["model2vec"], models[lib], worst)
        note += norm_hint(vec, ref)
        if share <= ST_MAX_DIFFERING:  # a few sentences (unknown tokens): the same work, timed as it runs
            status[lib]["note"] = note
            log(f"  {lib}: measured, but {note}")
        else:  # effectively another model: its timings would not compare like with like
            status[lib] = {**status[lib], "status": "n/a", "reason": f"computes different vectors: {note}"}
            models.pop(lib)
            log(f"  {lib}: n/a ({status[lib]['reason']})")
    return {
        "reference": reference,
        "max_abs_diff": diffs,
        "differing_sentences": differing,
        "backends_identical": identical,
        "tolerance": ST_TOL,
        "staticst_tolerance": PARITY_TOL,
        "staticst_ok": ok,
    }

"""The generated Unicode tables (csrc/unicode_data.h) against their generator and the installed tokenizers.

Three links make "the tables agree with tokenizers on every code point, or the code point is flagged":
1. the committed header is exactly what tools/gen_unicode.py generates now (it cannot drift), and the
   generator's flags are, by construction, the code points where the installed tokenizers was seen to
   disagree with the tables (it probes every code point, U+0000..U+10FFFF without surrogates);
2. the compiled tables (read back through `_kernel._uni_record`) hold exactly the generator's model;
3. the probes themselves are re-checked here on the model's own terms for the properties the pre-tokenizers
   use (BertPreTokenizer, WhitespaceSplit, Digits), independently of the generator's code.
The normalisers built on the tables are checked end to end in tests/test_native_normalizer.py.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from tokenizers import pre_tokenizers

from staticst import kernel as kernels

REPO = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.skipif(
        not kernels.available() and not os.environ.get("STATICST_REQUIRE_KERNEL"),
        reason="the compiled kernel is not built (CI sets STATICST_REQUIRE_KERNEL=1 and builds it)",
    ),
    # the generator's end-to-end run (every code point probed against tokenizers: about 35 s of one core) runs with
    # the integration jobs, which CI runs beside the upstream suites
    pytest.mark.slow,
]


def _load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_unicode", REPO / "tools" / "gen_unicode.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gen_unicode"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen() -> Any:
    return _load_generator()


@pytest.fixture(scope="module")
def generated(gen: Any) -> tuple[Any, dict[int, int], str]:
    """The model, the flags (probing the installed tokenizers on every code point) and the header text."""
    model = gen.Model()
    flags = gen.Prober(model).run()
    gen.check_invariants(model, flags)
    text, _ = gen.emit(model, flags, gen.sources())
    return model, flags, text


def test_committed_header_is_what_the_generator_makes(generated: tuple[Any, dict[int, int], str], gen: Any) -> None:
    from staticst import _kernel

    _, _, text = generated
    committed = (REPO / "csrc" / "unicode_data.h").read_text(encoding="utf-8")
    # the sources first, for a message that says which one moved
    assert _kernel.UNICODE_TABLES == gen.sources(), (
        f"the tables were generated from {_kernel.UNICODE_TABLES}, this environment has {gen.sources()}: "
        "regenerate with `python tools/gen_unicode.py` (or install the versions the header states)"
    )
    assert committed == text, (
        f"csrc/unicode_data.h is not what tools/gen_unicode.py generates with {gen.sources()}: "
        "run `python tools/gen_unicode.py`, rebuild, and run tests/test_native_normalizer.py"
    )


def test_header_states_its_sources(gen: Any) -> None:
    from staticst import _kernel

    src = gen.sources()
    assert _kernel.UNICODE_TABLES == src
    head = (REPO / "csrc" / "unicode_data.h").read_text(encoding="utf-8")[:3000]
    assert f"unicodedata, Unicode {src['unicodedata']}" in head and f"tokenizers {src['tokenizers']}" in head
    assert f"(PyPI regex), Unicode {src['regex_unicode']}" in head


def test_compiled_tables_hold_the_model(generated: tuple[Any, dict[int, int], str], gen: Any) -> None:
    from staticst import _kernel

    model, flags, _ = generated
    mismatches = []
    for cp in gen.CODE_POINTS:
        rec = _kernel._uni_record(cp)
        props = model.props[cp] | (gen.FLAGGED_BIT if flags.get(cp) else 0)
        low = model.lower.get(cp, chr(cp))
        hangul = 0xAC00 <= cp < 0xAC00 + 11172
        canon = tuple(ord(c) for c in unicodedata.normalize("NFD", chr(cp))) if hangul else tuple(model.canon.get(cp, ()))
        compat = tuple(model.compat.get(cp, ())) or canon
        want = (props, flags.get(cp, 0), tuple(ord(c) for c in low), model.ccc.get(cp, 0), model.gcb.get(cp, 0),
                canon, compat)
        got = (rec["props"], rec["flags"], rec["lower"], rec["ccc"], rec["gcb"], rec["decomposition"],
               rec["compat_decomposition"])
        if got != want:
            mismatches.append((hex(cp), got, want))
    assert not mismatches, mismatches[:5]


def test_compositions_are_the_primary_composites(generated: tuple[Any, dict[int, int], str]) -> None:
    from staticst import _kernel

    model, _, _ = generated
    for (a, b), c in model.pairs.items():
        assert _kernel._uni_compose(a, b) == c
        # the definition, from Python's own NFC
        assert unicodedata.normalize("NFC", chr(a) + chr(b)) == chr(c)
    # Hangul by arithmetic, both steps
    assert _kernel._uni_compose(0x1100, 0x1161) == 0xAC00
    assert _kernel._uni_compose(0xAC00, 0x11A8) == 0xAC01
    assert _kernel._uni_compose(0xAC01, 0x11A8) == 0  # an LVT takes no second T
    assert _kernel._uni_compose(0xAC00, 0x11A7) == 0  # T_BASE itself is not a trailing consonant
    # excluded composites (U+0958 DEVANAGARI QA, a composition exclusion) do not compose
    assert _kernel._uni_compose(0x0915, 0x093C) == 0


def test_flags_are_few_and_on_rare_code_points(generated: tuple[Any, dict[int, int], str]) -> None:
    """Flags mark the version gaps between the sources and tokenizers' crates, not everyday text."""
    _, flags, _ = generated
    everyday = "".join(chr(c) for c in range(0x20, 0x250)) + "ΑαБбअআกあアㄱ가中文ﬁ①½€—–…“”‘’«»¿¡"
    assert not [hex(ord(c)) for c in everyday if flags.get(ord(c))]
    assert len(flags) < 40_000


def _pieces(pretok: Any, text: str) -> list[str]:
    return [t for t, _ in pretok.pre_tokenize_str(text)]


def test_pretokenizer_classes_agree_or_are_flagged(generated: tuple[Any, dict[int, int], str], gen: Any) -> None:
    """An independent re-check of the bits i18c's pre-tokenizers use, read from the compiled tables."""
    from staticst import _kernel

    bit, fbit = gen.PROP_BIT, gen.FLAG_BIT
    bert, ws_split, digits = (pre_tokenizers.BertPreTokenizer(), pre_tokenizers.WhitespaceSplit(),
                              pre_tokenizers.Digits(individual_digits=True))
    wrong = []
    for cp in gen.CODE_POINTS:
        rec = _kernel._uni_record(cp)
        p, f = rec["props"], rec["flags"]
        c = chr(cp)
        s = "a" + c + "a"
        if not f & (fbit["WHITESPACE"] | fbit["PUNCT"]):
            want = ["a", "a"] if p & bit["WHITESPACE"] else (["a", c, "a"] if p & bit["PUNCT"] else [s])
            if _pieces(bert, s) != want:
                wrong.append(("bert", hex(cp)))
        if not f & fbit["WHITESPACE"] and (_pieces(ws_split, s) == ["a", "a"]) != bool(p & bit["WHITESPACE"]):
            wrong.append(("whitespace", hex(cp)))
        if not f & fbit["NUMERIC"] and (_pieces(digits, s) == ["a", c, "a"]) != bool(p & bit["NUMERIC"]):
            wrong.append(("numeric", hex(cp)))
    assert not wrong, wrong[:10]

"""The native normalisers (`_kernel.Normalizer`, built by staticst/tokenization/native_normalizer.py) against
Hugging Face tokenizers' own normalisers: every code point alone, each script's text, tricky sequences, and
hypothesis over arbitrary Unicode strings. `normalize(s)` must equal `normalizer.normalize_str(s)` whenever it is
not None, and be None only where a code point is flagged in the Unicode tables (never on ordinary text).
"""

from __future__ import annotations

import json
import os
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Regex, Tokenizer, models
from tokenizers import normalizers as N

from staticst import kernel as kernels
from staticst.tokenization import native_normalizer
from staticst.tokenization.native_normalizer import compile_normalizer, normalizer_steps

pytestmark = pytest.mark.skipif(
    not kernels.available() and not os.environ.get("STATICST_REQUIRE_KERNEL"),
    reason="the compiled kernel is not built (CI sets STATICST_REQUIRE_KERNEL=1 and builds it)",
)

FUZZ_EXAMPLES = int(os.environ.get("STATICST_FUZZ_EXAMPLES", "60"))
CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]

# Ordinary text in many scripts (written for these tests).
MULTILINGUAL = [
    "The quick brown fox jumps over the lazy dog, doesn't it? (Yes: 42 times!)",
    "Le cœur a ses raisons que la raison ne connaît point. Où est l'hôtel ?",
    "Größere Straßen führen über die Brücke nach Köln; Äpfel kosten 3,50 €.",
    "¿Dónde está la estación? El niño comió piñas y jamón ibérico.",
    "A informação está disponível em português: ação, coração, irmã.",
    "İstanbul'da ılık bir akşam; çay, şeker ve güzel günler. IĞDIR",
    "Zażółć gęślą jaźń. Łódź i Kraków leżą w Polsce.",
    "Tiếng Việt có dấu: Người Việt Nam yêu hòa bình và tự do.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Flygande bäckasiner söka hwila på mjuka tuvor. Åsa och Örjan.",
    "Árvíztűrő tükörfúrógép, öt szép szűz lány őrült írót nyúz.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю. ЁЖИК",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. ΟΔΥΣΣΕΥΣ και ΣΟΦΙΑ πάντα.",
    "صِف خَلقَ خَودِ كَمِثلِ الشَمسِ إِذ بَزَغَت يَحظى الضَجيعُ بِها نَجلاءَ مِعطارِ",
    "עטלף אבק נס דרך מזגן שהתפוצץ כי חם. שָׁלוֹם עֲלֵיכֶם",
    "زبان فارسی زیباست؛ کتاب‌ها را روی میز گذاشتم.",
    "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम।",
    "আমার সোনার বাংলা, আমি তোমায় ভালোবাসি। চিরদিন তোমার আকাশ।",
    "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน",
    "我能吞下玻璃而不伤身体。北京欢迎你！中华人民共和国成立于1949年。",
    "いろはにほへと ちりぬるを。東京タワーは３３３メートルです。ｶﾀｶﾅ",
    "다람쥐 헌 쳇바퀴에 타고파. 한국어 문장입니다: 가나다라마바사.",
    "யாமறிந்த மொழிகளிலே தமிழ்மொழி போல் இனிதாவது எங்கும் காணோம்",
    "ქართული ენა ლამაზია. საქართველოს დედაქალაქი თბილისია.",
    "Հայերեն լեզուն գեղեցիկ է։ Երևանը մայրաքաղաքն է։",
    "ሰማይ አይታረስ ንጉሥ አይከሰስ። ኢትዮጵያ",
    "ಕನ್ನಡ ಭಾಷೆ ಸುಂದರವಾಗಿದೆ. తెలుగు భాష. മലയാളം ഭാഷ. ગુજરાતી ભાષા. ਪੰਜਾਬੀ ਭਾਸ਼ਾ.",
    "ພາສາລາວ ງາມຫຼາຍ. ភាសាខ្មែរ ស្រស់ស្អាត. မြန်မာဘာသာ",
    "Ꭰꮿꮩꭺ. ᠮᠣᠩᠭᠣᠯ. བོད་ཡིག། ދިވެހި. ߒߞߏ",
    "Emoji 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ and symbols ① ½ ﬁ ™ № ℃ ㎏ ⅓ —–… “quoted” «guillemets»",
    "Tabs\tnew\nlines\r\nand  spaces\u00a0non-breaking\u2009thin\u3000ideographic.",
]

TRICKY = [
    "",
    " ",
    # ASCII chars a stage removes between a letter and its marks (Nmt, clean_text): the letter still composes
    # with them under NFC / NFKC, as tokenizers applies the removal first (found by the property test below)
    "a\x1f\u0300",
    "e\x1f\u0301\x1f\u0327",
    "A\x01\x7f\u030a",
    "xo\x00\x08\u0308y",
    "\u0301",  # a lone combining mark
    "e\u0301\u0302",
    "a\u0302\u0323\u0301\u0323",  # marks out of canonical order
    "\u0323\u0301a\u0301\u0323",
    "\u1100\u1161\u11a8\u1100\u1161",  # Hangul jamo, composing
    "\uac00\u11a8\u1161",  # an LV + T, then a lone V
    "\u0130\u0130stanbul I\u0307",  # capital I with dot (lowercase is two chars)
    "ΣΑΣ ΟΔΟΣ Σ.",  # final sigma (Rust's to_lowercase has no final-sigma rule)
    "中文 字符\u3000日本",  # CJK with spaces
    "\x00\x01\x07\x0b\x0c\x1f\x7f\x85\u200b\u200c\u200d\u2028\u2029\ufeff",  # controls, zero-widths
    "\ufffd\ufffdx\ufffd",
    "a\u200db\u200cc",  # joiners
    "👍🏽👍🏿👨‍👩‍👧 🏳️‍🌈 🇺🇸🇬🇧🇦",  # emoji, modifiers, ZWJ sequences, flags
    "\u0600\u0661\u06dd",  # Arabic prepend marks
    "क्‍ष क्ष क्क्ष",  # InCB conjuncts
    "\r\n\r\r\n\n\r",
    "ǅǈǋ ﬃ ﬄ ſt Ǆ ẞß",
    "Å Å Å Ω Ω",  # singletons, compatibility
    "\u0958\u095f\ufb1d",  # composition exclusions
    "\u0344\u0f73\u0f75\u0f81",  # non-starter decompositions
    "ｶﾞｷﾞ ﾊﾟ ｶ\u3099",  # halfwidth katakana + voiced marks
    "\U0001d400\U0001d7ce\U0001f130\U0002f800",  # mathematical letters, compatibility ideographs
    "a" + "\u0301" * 40 + "\u0316" * 40,  # a long run of marks (the heap path)
    "x" + "".join(chr(c) for c in [0x0345, 0x0301, 0x0334, 0x0316, 0x05b0, 0x0e38, 0x0f71, 0x1dce]) * 20,
    "  \t leading and trailing \n ",
    "▁▁already ▁marked▁",
]


def _from_shared(name: str) -> Any:
    root = Path(os.environ.get("STATICST_SHARED_DIR") or Path(__file__).resolve().parent.parent.parent / "shared")
    path = root / "models" / name / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"shared tokenizer {path} is missing")
    return Tokenizer.from_file(str(path)).normalizer


CONFIGS: dict[str, Callable[[], Any]] = {
    "bert": lambda: _from_shared("potion-base-8M"),
    "bert-cased": lambda: N.BertNormalizer(lowercase=False),
    "bert-strip-cased": lambda: N.BertNormalizer(strip_accents=True, lowercase=False),
    "bert-lower-no-strip": lambda: N.BertNormalizer(strip_accents=False, lowercase=True),
    "bert-no-clean": lambda: N.BertNormalizer(clean_text=False, handle_chinese_chars=False),
    "nfc": N.NFC,
    "nfd": N.NFD,
    "nfkc": N.NFKC,
    "nfkd": N.NFKD,
    "lowercase": N.Lowercase,
    "strip": N.Strip,
    "lstrip": lambda: N.Strip(left=True, right=False),
    "rstrip": lambda: N.Strip(left=False, right=True),
    "strip-accents": N.StripAccents,
    "nfd-strip-accents-lower": lambda: N.Sequence([N.NFD(), N.StripAccents(), N.Lowercase()]),
    "nfkc-lower": lambda: N.Sequence([N.NFKC(), N.Lowercase()]),
    "lower-nfkc-nfc": lambda: N.Sequence([N.Lowercase(), N.NFKC(), N.NFC()]),
    "nmt-nfkc": lambda: N.Sequence([N.Nmt(), N.NFKC()]),
    "bytelevel": N.ByteLevel,
    "llama": lambda: _from_shared("wordllama-l2-supercat-256"),
    "precompiled": lambda: _from_shared("tokenlearn-10k-int8"),
    "replace-run": lambda: N.Sequence([N.Replace(Regex(" {2,}"), " "), N.Replace(Regex("a+"), "A")]),
    "replace-literals": lambda: N.Sequence(
        [N.Replace("``", '"'), N.Replace(Regex(r"\.\.\."), "…"), N.Replace("ß", "ss"), N.Replace("Σ", "")]
    ),
    "mixed": lambda: N.Sequence(
        [N.Strip(), N.NFKC(), N.Lowercase(), N.Prepend("▁"), N.Replace(" ", "▁"), N.BertNormalizer()]
    ),
}
# every code point alone (the others: text, tricky sequences, hypothesis)
EVERY_CODE_POINT = ["bert", "bert-cased", "bert-strip-cased", "nfc", "nfd", "nfkc", "nfkd", "lowercase", "strip",
                    "strip-accents", "nmt-nfkc", "bytelevel", "llama", "precompiled"]  # fmt: skip


def _tokenizer_with(normalizer: Any) -> Tokenizer:
    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.normalizer = normalizer
    return tok


class Pair:
    """The Hugging Face normaliser and its native compilation."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.hf = CONFIGS[name]()
        comp = compile_normalizer(_tokenizer_with(self.hf))
        assert comp.normalizer is not None, (name, comp.reason)
        self.native = comp.normalizer

    def check(self, s: str) -> str | None:
        """None when they agree (or the native one rightly takes the slow path), else a description."""
        got = self.native.normalize(s)
        want = self.hf.normalize_str(s)
        if got is None:
            return None if _flagged(s, want) else f"{self.name}: slow path on unflagged {s!r}"
        return None if got == want else f"{self.name}: {s!r} -> {got!r}, tokenizers {want!r}"


_FLAGGED_CACHE: dict[int, bool] = {}


def _is_flagged(cp: int) -> bool:
    from staticst import _kernel

    if cp not in _FLAGGED_CACHE:
        _FLAGGED_CACHE[cp] = bool(_kernel._uni_record(cp)["flags"])
    return _FLAGGED_CACHE[cp]


def _flagged(s: str, out: str) -> bool:
    """Some code point of the text, of what a step may make of it, or of the output is flagged."""
    pool = s + unicodedata.normalize("NFKD", s) + s.lower() + out
    return any(_is_flagged(ord(c)) for c in set(pool))


@pytest.fixture(scope="module")
def pairs() -> dict[str, Pair]:
    return {name: Pair(name) for name in CONFIGS}


# ------------------------------------------------------------------------------------------------ compilation


def test_shared_tokenizers_compile_to_the_expected_programs(pairs: dict[str, Pair]) -> None:
    assert pairs["bert"].native.description.startswith("stream[clean cjk NFD strip-Mn lower]")
    assert "ASCII fast path: 1 stage" in pairs["bert"].native.description
    assert pairs["llama"].native.description.startswith("prepend(3 bytes) | replace(1 bytes -> 3 bytes)")
    assert pairs["precompiled"].native.description.startswith("precompiled(")


def test_refusals_name_the_component() -> None:
    regex_replace = json.loads(_tokenizer_with(N.Replace(Regex(r"\s+"), " ")).to_str())["normalizer"]
    steps, reason = normalizer_steps(regex_replace)
    assert steps is None and reason is not None and reason.startswith("Replace with a regex pattern '\\\\s+'")
    steps, reason = normalizer_steps({"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Unheard"}]})
    assert steps is None and reason == "the normalizer 'Unheard' is not implemented natively"
    steps, reason = normalizer_steps({"type": "Replace", "pattern": {"String": ""}, "content": "x"})
    assert steps is None and reason == "Replace with an empty pattern"
    comp = compile_normalizer(_tokenizer_with(N.Replace(Regex("[ab]"), "c")))
    assert comp.normalizer is None and comp.reason and "Replace with a regex pattern '[ab]'" in comp.reason


def test_simple_regexes_compile_natively() -> None:
    for pattern, step in [(" {2,}", ("replace_run", " ", 2, "_")), ("a+", ("replace_run", "a", 1, "_")),
                          (r"\.\.\.", ("replace", "...", "_")), (r"\+{3,}", ("replace_run", "+", 3, "_")),
                          ("▁", ("replace", "▁", "_"))]:  # fmt: skip
        steps, reason = normalizer_steps({"type": "Replace", "pattern": {"Regex": pattern}, "content": "_"})
        assert steps == [step], (pattern, reason)
    for pattern in [r"\s+", "a|b", "(ab)+", "a{2}", "a{,3}", ".", "^x", r"\d"]:
        steps, reason = normalizer_steps({"type": "Replace", "pattern": {"Regex": pattern}, "content": "_"})
        assert steps is None and reason, pattern


def test_no_normalizer_is_the_identity() -> None:
    tok = _tokenizer_with(None)
    comp = compile_normalizer(tok)
    assert comp.normalizer is not None and comp.steps == ()
    assert comp.normalizer.normalize("Héllo\u0301 ☃") == "Héllo\u0301 ☃"


def test_another_tokenizers_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native_normalizer.tokenizers, "__version__", "0.0.1")
    comp = compile_normalizer(_tokenizer_with(N.NFC()))
    assert comp.normalizer is None and comp.reason is not None
    assert "tokenizers 0.0.1 is installed" in comp.reason and "python tools/gen_unicode.py" in comp.reason
    # steps that do not read the tables stay native
    assert compile_normalizer(_tokenizer_with(N.Prepend("▁"))).normalizer is not None


def test_bad_specs_raise_clear_errors() -> None:
    from staticst import _kernel

    with pytest.raises(ValueError, match="unknown step"):
        _kernel.Normalizer([("nfx",)])
    with pytest.raises(TypeError, match="must be a tuple"):
        _kernel.Normalizer(["nfc"])
    with pytest.raises(ValueError, match="Precompiled: the charsmap holds 2 bytes"):
        _kernel.Normalizer([("precompiled", b"ab")])
    with pytest.raises(ValueError, match="longer than the charsmap"):
        _kernel.Normalizer([("precompiled", b"\xff\x00\x00\x00abcd")])
    with pytest.raises(ValueError, match="not valid UTF-8"):
        _kernel.Normalizer([("precompiled", b"\x00\x00\x00\x00\xff")])
    with pytest.raises(ValueError, match="empty pattern"):
        _kernel.Normalizer([("replace", "", "x")])
    with pytest.raises(TypeError, match="takes a str"):
        _kernel.Normalizer([]).normalize(b"x")
    with pytest.raises(UnicodeEncodeError):
        _kernel.Normalizer([("nfc",)]).normalize("a\ud800b")


# ------------------------------------------------------------------------------------------------ exactness


@pytest.mark.parametrize("name", EVERY_CODE_POINT)
def test_every_code_point_alone(pairs: dict[str, Pair], name: str) -> None:
    pair = pairs[name]
    wrong, slow = [], 0
    for cp in CODE_POINTS:
        c = chr(cp)
        got = pair.native.normalize(c)
        if got is None:
            slow += 1
            if not _flagged(c, pair.hf.normalize_str(c)):
                wrong.append((hex(cp), "slow path, unflagged"))
            continue
        want = pair.hf.normalize_str(c)
        if got != want:
            wrong.append((hex(cp), got, want))
    assert not wrong, wrong[:10]
    assert slow < 25_000  # the flagged code points: new in versions the sources and crates do not share


@pytest.mark.parametrize("name", list(CONFIGS))
def test_multilingual_text_is_exact_and_never_slow(pairs: dict[str, Pair], name: str) -> None:
    pair = pairs[name]
    for text in [*MULTILINGUAL, " ".join(MULTILINGUAL), "\n".join(MULTILINGUAL) * 20]:
        got = pair.native.normalize(text)
        assert got is not None, f"{name}: ordinary text took the slow path: {text[:60]!r}"
        assert got == pair.hf.normalize_str(text), (name, text[:60])


@pytest.mark.parametrize("name", list(CONFIGS))
def test_tricky_sequences(pairs: dict[str, Pair], name: str) -> None:
    pair = pairs[name]
    problems = [p for s in TRICKY for p in [pair.check(s), pair.check(s + " " + s[::-1]), pair.check(s * 3)] if p]
    assert not problems, problems[:5]


# any code point but surrogates, with a weight on the ones that interact (marks, jamo, controls, CJK, emoji)
_INTERESTING = (
    "aeiouAEIOUsSıIİiΣσς \t\n\r\x00\x01\x1f\x7f\x0b\x85\u00a0\u3000\u2028\ufeff\ufffd\u200b\u200c\u200d"
    "\u0300\u0301\u0302\u0307\u0316\u0323\u0327\u0334\u0345\u0591\u05b0\u064b\u0670\u093c\u094d\u0e38\u0f71\u302a\u3099"
    "\u1100\u1161\u11a8\u11a7\uac00\uac01\ud7a3\u4e00\u4e2d\u3400\uf900\U00020000\U0002f800"
    "\u0600\u06dd\u0915\u0937\U0001f1e6\U0001f1e8\U0001f44d\U0001f3fd\u00a9\u2764\ufe0f\U000e0061"
    "\u00c5\u212b\u2126\u1e9b\u0958\ufb1d\u0344\u0f73\u01c4\u00bd\u2460\ufb01\uff76\uff9e\u3000\u2581"
)
TEXT = st.text(
    alphabet=st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(_INTERESTING)), max_size=40
)


@pytest.mark.parametrize("name", list(CONFIGS))
@settings(max_examples=FUZZ_EXAMPLES * 3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=TEXT)
def test_property_arbitrary_unicode(pairs: dict[str, Pair], name: str, text: str) -> None:
    problem = pairs[name].check(text)
    assert problem is None, problem


@settings(max_examples=FUZZ_EXAMPLES * 5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_fuzz_arbitrary_utf8(pairs: dict[str, Pair], data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    for pair in pairs.values():
        problem = pair.check(text)
        assert problem is None, problem


def test_long_texts_and_threads(pairs: dict[str, Pair]) -> None:
    """Buffers past the stack ones, long mark runs, and one program shared by threads (GIL released)."""
    long_text = "\n".join(MULTILINGUAL * 30) + "e" + "\u0301\u0316\u0345" * 500 + "x" * 5000
    want = {name: p.hf.normalize_str(long_text) for name, p in pairs.items()}
    errors: list[str] = []

    def work() -> None:
        for name, p in pairs.items():
            got = p.native.normalize(long_text)
            if got is not None and got != want[name]:
                errors.append(name)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# ------------------------------------------------------------------------------------------------ Precompiled


def build_charsmap(mapping: dict[str, str]) -> bytes:
    """A sentencepiece precompiled charsmap (darts-clone double array + NUL-ended strings) for `mapping`."""
    normalized = bytearray()
    values: dict[bytes, int] = {}
    for key, value in mapping.items():
        values[key.encode()] = len(normalized)
        normalized += value.encode() + b"\0"
    trie: dict[str, Any] = {"children": {}, "value": None}
    for key_bytes, v in values.items():
        node = trie
        for b in key_bytes:
            node = node["children"].setdefault(b, {"children": {}, "value": None})
        node["value"] = v
    units: dict[int, int] = {}
    next_block = 256
    queue = [(trie, 0, 0)]  # node, position, label
    while queue:
        node, pos, label = queue.pop(0)
        unit = label
        if node["children"] or node["value"] is not None:
            block = next_block
            next_block += 256
            offset = pos ^ block
            assert offset < 1 << 21
            unit |= offset << 10
            if node["value"] is not None:
                unit |= 1 << 8
                units[block] = (1 << 31) | node["value"]
            for b, child in sorted(node["children"].items()):
                queue.append((child, block ^ b, b))
        units[pos] = unit
    array = [units.get(i, 0) for i in range(next_block)]
    blob = b"".join(u.to_bytes(4, "little") for u in array)
    return len(blob).to_bytes(4, "little") + blob + bytes(normalized)


CHARSMAP = {
    "a": "A",
    "ab": "X",  # never used: the shortest prefix wins
    "e\u0301": "é",  # a two-char grapheme key
    "\u0301": "",  # a mark deleted
    "\r\n": "<CRLF>",
    "x": "",
    "ｱ": "ア",
    "\u1100\u1161": "가",  # 6 bytes: never looked up whole
    "\U0001f1e6": "[A]",
    "\u0600": "(P)",
    "i\u0307": "i",
    "o\u0308\u0304": "ȫ",
    "🏽": "",
}


@pytest.fixture(scope="module")
def custom_precompiled() -> tuple[Any, Any]:
    blob = build_charsmap(CHARSMAP)
    hf = N.Precompiled(blob)
    comp = compile_normalizer(_tokenizer_with(hf))
    assert comp.normalizer is not None, comp.reason
    return hf, comp.normalizer


_PC_ALPHABET = "".join(CHARSMAP) + "bcdeio\u0301\u0302\u0308\u0304\u0307 \r\n\u1100\u1161\u11a8\U0001f1e7\U0001f44d🏽\u200d\u0600\u0915\u094d\x00"


@settings(max_examples=FUZZ_EXAMPLES * 10, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list(_PC_ALPHABET)), max_size=30))
def test_precompiled_grapheme_semantics(custom_precompiled: tuple[Any, Any], text: str) -> None:
    hf, native = custom_precompiled
    got = native.normalize(text)
    want = hf.normalize_str(text)
    assert got == want or (got is None and _flagged(text, want)), (text, got, want)


def test_precompiled_examples(custom_precompiled: tuple[Any, Any]) -> None:
    hf, native = custom_precompiled
    for text in ["ab", "abc", "e\u0301", "e\u0301\u0301", "\r\n", "\n\r", "a\u0301", "ｱ\u3099", "\u1100\u1161",
                 "\U0001f1e6\U0001f1e6", "\u0600a", "\u0600\u0600x", "i\u0307\u0307", "o\u0308\u0304",
                 "👍🏽", "a\x00b", "\x00\u0301"]:  # fmt: skip
        assert native.normalize(text) == hf.normalize_str(text), text


def test_malformed_charsmap_takes_the_slow_path() -> None:
    """An index past the double array panics in tokenizers; the native program answers None (the slow path)."""
    from staticst import _kernel

    units = [0] * 4
    units[0] = 1 << 10  # root offset 1: children at 1 ^ byte, mostly past the array
    blob = b"".join(u.to_bytes(4, "little") for u in units)
    native = _kernel.Normalizer([("precompiled", len(blob).to_bytes(4, "little") + blob + b"X\0")])
    assert native.normalize("a") is None
    assert native.normalize("") == ""

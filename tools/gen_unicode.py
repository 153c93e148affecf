#!/usr/bin/env python3
"""Generate csrc/unicode_data.h: the code point tables of the native normalisers and pre-tokenizers.

The kernel's tokenizer (issue 18) must give exactly what Hugging Face `tokenizers` gives. `tokenizers` does not
use one Unicode version: its char methods come from the Rust standard library of the compiler that built it,
normalisation from the `unicode-normalization-alignments` crate, categories from `unicode_categories`,
grapheme clusters from `unicode-segmentation`, and the regex classes from `regex` and Oniguruma. So the tables
come from stated sources, and the installed `tokenizers` is *probed* for every code point
(U+0000..U+10FFFF, surrogates excluded): wherever its behaviour differs from what the tables say, the code point
is flagged (`ST_UF_*`), and a text holding it takes the exact slow path (the Hugging Face tokenizer) in any step
that depends on the flagged property. Never a different id.

Sources (their versions are written into the header):
  * Python's `unicodedata` (`unicodedata.unidata_version`): general categories (for `unicode_categories`:
    BERT control / punctuation / nonspacing marks, combining marks), canonical combining classes,
    decomposition mappings, compositions (the primary composites: canonical pairs that are their own NFC),
    lowercase (`str.lower` per code point, which is `char::to_lowercase` on a lone code point).
  * the `regex` module (PyPI `regex`, its Unicode version detected below): White_Space, Alphabetic and
    General_Category N / L at its version (for the Rust standard library's `char` methods and the regex
    engines' `\\s`, `\\w`, `\\p{L}`, `\\p{N}`), Grapheme_Cluster_Break, Extended_Pictographic and
    Indic_Conjunct_Break (for `unicode-segmentation`'s extended grapheme clusters).
  * the installed `tokenizers`: probed for every code point; its disagreements become the flags.

Usage (from the repository root, in the project's venv):
  python tools/gen_unicode.py            # regenerate csrc/unicode_data.h (prints the flag counts)
  python tools/gen_unicode.py --check    # exit 1 when the committed header is not what this script generates

Regenerate whenever `tokenizers`, Python (its unicodedata) or `regex` changes version, then run
tests/test_unicode_tables.py and tests/test_native_normalizer.py. tests/test_unicode_tables.py fails when the
committed header differs from what this script generates with the installed versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import regex
import tokenizers
from tokenizers import Regex, normalizers, pre_tokenizers

ROOT = Path(__file__).resolve().parent.parent
HEADER = ROOT / "csrc" / "unicode_data.h"
MAX_CP = 0x110000
CODE_POINTS = [cp for cp in range(MAX_CP) if not 0xD800 <= cp <= 0xDFFF]

# ------------------------------------------------------------------------------------------------ bits

# st_uni_props(cp): what the tables say (each bit documented in the header).
PROPS = [
    ("WHITESPACE", "Rust char::is_whitespace (White_Space): Strip, WhitespaceSplit, BertPreTokenizer, BERT clean_text"),
    ("ALPHABETIC", "Rust char::is_alphabetic (Alphabetic). No tokenizers component uses it alone: not probed"),
    ("NUMERIC", "Rust char::is_numeric (General_Category Nd|Nl|No): the Digits pre-tokenizer"),
    ("ALPHANUMERIC", "Rust char::is_alphanumeric (ALPHABETIC|NUMERIC). Used by no tokenizers component: not probed"),
    ("PUNCT", "BERT punctuation: char::is_ascii_punctuation || unicode_categories is_punctuation (P*): "
     "BertPreTokenizer, Punctuation"),
    ("CONTROL", "BERT is_control: unicode_categories is_other (Cc|Cf|Co) except \\t \\n \\r: clean_text removes it"),
    ("CJK", "BertNormalizer handle_chinese_chars: one of its eight code point ranges"),
    ("RE_WORD", "regex crate \\w (Alphabetic|M|Nd|Pc|Join_Control): the Whitespace pre-tokenizer"),
    ("RE_SPACE", "regex crate \\s (White_Space): the Whitespace pre-tokenizer"),
    ("ONIG_SPACE", "Oniguruma \\s (White_Space): the ByteLevel pre-tokenizer's GPT-2 pattern"),
    ("ONIG_LETTER", "Oniguruma \\p{L}: the ByteLevel pre-tokenizer's GPT-2 pattern"),
    ("ONIG_NUMBER", "Oniguruma \\p{N}: the ByteLevel pre-tokenizer's GPT-2 pattern"),
    ("MN", "unicode_categories is_mark_nonspacing (Mn): BertNormalizer strip_accents removes it after NFD"),
    ("MARK", "is_combining_mark (Mn|Mc|Me): the StripAccents normaliser removes it"),
    ("LOWER", "char::to_lowercase changes it (the record's lowercase delta, or the multi table)"),
    ("LOWER_MULTI", "char::to_lowercase gives more than one char (st_uni_lower_multi)"),
    ("DECOMP", "has a canonical decomposition (NFD changes it; Hangul syllables included)"),
    ("KDECOMP", "has a compatibility or canonical decomposition (NFKD changes it)"),
    ("COMP_FIRST", "first element of a primary composite pair (Hangul L and LV included)"),
    ("COMP_SECOND", "second element of a primary composite pair (Hangul V and T included)"),
    ("BERT_SPACE", "BERT is_whitespace: \\t \\n \\r or char::is_whitespace (clean_text maps it to a space)"),
]
PROP_BIT = {name: 1 << i for i, (name, _) in enumerate(PROPS)}
FLAGGED_BIT = 1 << 31  # ST_UP_FLAGGED: st_uni_flags(cp) != 0

# st_uni_flags(cp): where the installed tokenizers was seen to disagree with the tables.
FLAGS = [
    ("WHITESPACE", "char::is_whitespace (probed: Strip, WhitespaceSplit, BertPreTokenizer, BERT clean_text)"),
    ("NUMERIC", "char::is_numeric (probed: Digits)"),
    ("PUNCT", "BERT punctuation (probed: BertPreTokenizer)"),
    ("CONTROL", "BERT is_control (probed: BertNormalizer clean_text)"),
    ("CJK", "handle_chinese_chars ranges (probed: BertNormalizer handle_chinese_chars)"),
    ("RE_WORD", "regex crate \\w (probed: Whitespace)"),
    ("RE_SPACE", "regex crate \\s (probed: Whitespace)"),
    ("ONIG_SPACE", "Oniguruma \\s (probed: Split on Regex('\\s'))"),
    ("ONIG_LETTER", "Oniguruma \\p{L} (probed: Split on Regex('\\p{L}'))"),
    ("ONIG_NUMBER", "Oniguruma \\p{N} (probed: Split on Regex('\\p{N}'))"),
    ("MN", "nonspacing mark (probed: BertNormalizer strip_accents)"),
    ("MARK", "combining mark (probed: StripAccents)"),
    ("LOWER", "to_lowercase (probed: Lowercase)"),
    ("NFD", "canonical decomposition or combining class (probed: NFD alone and beside marks of class 1 / 240)"),
    ("NFKD", "compatibility decomposition (probed: NFKD)"),
    ("COMPOSE", "canonical composition (probed: NFC / NFKC alone, every composition pair)"),
    ("GRAPHEME", "grapheme cluster break class (probed: Precompiled with a charsmap of every byte)"),
]
FLAG_BIT = {name: 1 << i for i, (name, _) in enumerate(FLAGS)}

# Grapheme_Cluster_Break classes as unicode-segmentation's table has them (ExtPict and InCB=Consonant are
# classes of their own there), plus two InCB bits.
GCB_CLASSES = ["OTHER", "CR", "LF", "CONTROL", "EXTEND", "ZWJ", "RI", "PREPEND", "SPACINGMARK", "L", "V", "T",
               "LV", "LVT", "EXTPICT", "INCB_CONSONANT"]
GCB = {name: i for i, name in enumerate(GCB_CLASSES)}
GCB_INCB_LINKER = 1 << 4
GCB_INCB_EXTEND = 1 << 5

CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
              (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]

S_BASE, L_BASE, V_BASE, T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
L_COUNT, V_COUNT, T_COUNT = 19, 21, 28
N_COUNT = V_COUNT * T_COUNT
S_COUNT = L_COUNT * N_COUNT


def regex_unicode_version() -> str:
    """The Unicode version of the `regex` module's tables (it does not say; found from first-assigned points)."""
    # one code point first assigned in each version (checked against the version's DerivedAge)
    sentinels = [("17.0.0", 0x323B0), ("16.0.0", 0x10D40), ("15.1.0", 0x2EBF0), ("15.0.0", 0x11F00),
                 ("14.0.0", 0x1E290), ("13.0.0", 0x1FAD0)]
    assigned = regex.compile(r"\p{Assigned}")
    for version, cp in sentinels:
        if assigned.match(chr(cp)):
            return version
    return "older than 13.0.0"


def sources() -> dict[str, str]:
    """The versions the header depends on (package versions that do not change the tables are left out)."""
    return {
        "unicodedata": unicodedata.unidata_version,
        "regex_unicode": regex_unicode_version(),
        "tokenizers": tokenizers.__version__,
    }


# ------------------------------------------------------------------------------------------------ the model


_ALL = "".join(chr(cp) for cp in CODE_POINTS)


def _regex_set(pattern: str) -> set[int]:
    """The code points a regex-module class matches (one pass over a string of every code point)."""
    out: set[int] = set()
    for m in regex.finditer(f"(?:{pattern})+", _ALL):
        out.update(CODE_POINTS[m.start():m.end()])
    return out


class Model:
    """Every table the header holds, as Python data (what the C code must reproduce)."""

    def __init__(self) -> None:
        cat = {cp: unicodedata.category(chr(cp)) for cp in CODE_POINTS}
        self.cat = cat
        white = _regex_set(r"\p{White_Space}")
        alpha = _regex_set(r"\p{Alphabetic}")
        rx_n = _regex_set(r"\p{N}")
        rx_l = _regex_set(r"\p{L}")
        rx_word = _regex_set(r"[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]")
        self.white = white
        self.props: dict[int, int] = {}
        self.lower: dict[int, str] = {}
        self.ccc: dict[int, int] = {}
        self.canon: dict[int, list[int]] = {}  # full canonical decomposition (recursive expansion)
        self.compat: dict[int, list[int]] = {}  # full compatibility decomposition, where it differs
        raw_canon: dict[int, list[int]] = {}
        for cp in CODE_POINTS:
            c = chr(cp)
            dec = unicodedata.decomposition(c)
            if dec and not dec.startswith("<"):
                raw_canon[cp] = [int(x, 16) for x in dec.split()]
            ccc = unicodedata.combining(c)
            if ccc:
                self.ccc[cp] = ccc
            low = c.lower()
            if low != c:
                self.lower[cp] = low
        for cp in CODE_POINTS:
            if 0xAC00 <= cp < 0xAC00 + S_COUNT:
                continue  # Hangul syllables: arithmetic
            nfd = unicodedata.normalize("NFD", chr(cp))
            if nfd != chr(cp):
                self.canon[cp] = [ord(x) for x in self._expand(cp, raw_canon)]
            nfkd = unicodedata.normalize("NFKD", chr(cp))
            if nfkd != nfd:
                self.compat[cp] = [ord(x) for x in self._expand_compat(cp)]
        # primary composites: a two-element canonical mapping whose composite is its own NFC
        self.pairs: dict[tuple[int, int], int] = {}
        for cp, dec in raw_canon.items():
            if len(dec) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp):
                self.pairs[(dec[0], dec[1])] = cp
        firsts = {a for a, _ in self.pairs}
        seconds = {b for _, b in self.pairs}
        # grapheme classes (unicode-segmentation: ExtPict and InCB=Consonant are classes of their own)
        self.gcb: dict[int, int] = {}
        for name, pat in [("CR", r"\p{GCB=CR}"), ("LF", r"\p{GCB=LF}"), ("CONTROL", r"\p{GCB=Control}"),
                          ("EXTEND", r"\p{GCB=Extend}"), ("ZWJ", r"\p{GCB=ZWJ}"), ("RI", r"\p{GCB=Regional_Indicator}"),
                          ("PREPEND", r"\p{GCB=Prepend}"), ("SPACINGMARK", r"\p{GCB=SpacingMark}"),
                          ("L", r"\p{GCB=L}"), ("V", r"\p{GCB=V}"), ("T", r"\p{GCB=T}"), ("LV", r"\p{GCB=LV}"),
                          ("LVT", r"\p{GCB=LVT}"), ("EXTPICT", r"\p{Extended_Pictographic}"),
                          ("INCB_CONSONANT", r"\p{InCB=Consonant}")]:
            for cp in _regex_set(pat):
                if cp in self.gcb:
                    raise SystemExit(f"U+{cp:04X} is in two grapheme classes ({GCB_CLASSES[self.gcb[cp]]}, {name})")
                self.gcb[cp] = GCB[name]
        for cp in _regex_set(r"\p{InCB=Linker}"):
            self.gcb[cp] = self.gcb.get(cp, 0) | GCB_INCB_LINKER
        for cp in _regex_set(r"\p{InCB=Extend}"):
            self.gcb[cp] = self.gcb.get(cp, 0) | GCB_INCB_EXTEND
        for cp in CODE_POINTS:
            c = chr(cp)
            g = cat[cp]
            p = 0
            if cp in white:
                p |= PROP_BIT["WHITESPACE"] | PROP_BIT["RE_SPACE"] | PROP_BIT["ONIG_SPACE"]
            if cp in alpha:
                p |= PROP_BIT["ALPHABETIC"] | PROP_BIT["ALPHANUMERIC"]
            if cp in rx_n:
                p |= PROP_BIT["NUMERIC"] | PROP_BIT["ALPHANUMERIC"] | PROP_BIT["ONIG_NUMBER"]
            if cp in rx_l:
                p |= PROP_BIT["ONIG_LETTER"]
            if cp in rx_word:
                p |= PROP_BIT["RE_WORD"]
            if (cp < 0x80 and c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") or g.startswith("P"):
                p |= PROP_BIT["PUNCT"]
            if c not in "\t\n\r" and g in ("Cc", "Cf", "Co"):
                p |= PROP_BIT["CONTROL"]
            if any(lo <= cp <= hi for lo, hi in CJK_RANGES):
                p |= PROP_BIT["CJK"]
            if g == "Mn":
                p |= PROP_BIT["MN"]
            if g in ("Mn", "Mc", "Me"):
                p |= PROP_BIT["MARK"]
            if cp in self.lower:
                p |= PROP_BIT["LOWER"]
                if len(self.lower[cp]) > 1:
                    p |= PROP_BIT["LOWER_MULTI"]
            hangul_s = S_BASE <= cp < S_BASE + S_COUNT
            if cp in self.canon or hangul_s:
                p |= PROP_BIT["DECOMP"] | PROP_BIT["KDECOMP"]
            if cp in self.compat:
                p |= PROP_BIT["KDECOMP"]
            if cp in firsts or L_BASE <= cp < L_BASE + L_COUNT or (hangul_s and (cp - S_BASE) % T_COUNT == 0):
                p |= PROP_BIT["COMP_FIRST"]
            if cp in seconds or V_BASE <= cp < V_BASE + V_COUNT or T_BASE < cp < T_BASE + T_COUNT:
                p |= PROP_BIT["COMP_SECOND"]
            if c in "\t\n\r" or cp in white:
                p |= PROP_BIT["BERT_SPACE"]
            self.props[cp] = p

    @staticmethod
    def _expand(cp: int, raw: dict[int, list[int]]) -> str:
        if 0xAC00 <= cp < 0xAC00 + S_COUNT:
            return unicodedata.normalize("NFD", chr(cp))
        if cp not in raw:
            return chr(cp)
        return "".join(Model._expand(x, raw) for x in raw[cp])

    @staticmethod
    def _expand_compat(cp: int) -> str:
        if 0xAC00 <= cp < 0xAC00 + S_COUNT:
            return unicodedata.normalize("NFD", chr(cp))
        dec = unicodedata.decomposition(chr(cp))
        if not dec:
            return chr(cp)
        parts = dec.split()
        if parts[0].startswith("<"):
            parts = parts[1:]
        return "".join(Model._expand_compat(int(x, 16)) for x in parts)

    # -- the model's behaviour of tokenizers' components (what the C code does), for the probes

    def has(self, cp: int, name: str) -> bool:
        return bool(self.props[cp] & PROP_BIT[name])

    def with_prop(self, name: str) -> set[int]:
        bit = PROP_BIT[name]
        return {cp for cp, p in self.props.items() if p & bit}

    def to_lower(self, s: str) -> str:
        return "".join(self.lower.get(ord(c), c) for c in s)

    def grapheme_clusters(self, s: str) -> list[str]:
        """Extended grapheme clusters, as unicode-segmentation forms them (UAX #29 with GB9c and GB11)."""
        out: list[str] = []
        if not s:
            return out
        start = 0
        ri = 0
        ep = False  # ExtPict Extend* ends at the previous char
        zwj_ep = False  # ExtPict Extend* ZWJ ends at the previous char
        incb = 0  # 0 none, 1 consonant [extend]*, 2 consonant [extend|linker]* with a linker
        prev = None
        for i, ch in enumerate(s):
            g = self.gcb.get(ord(ch), 0)
            cls = g & 15
            if prev is not None:
                pcls = prev & 15
                if pcls == GCB["CR"] and cls == GCB["LF"]:
                    brk = False
                elif pcls in (GCB["CONTROL"], GCB["CR"], GCB["LF"]) or cls in (GCB["CONTROL"], GCB["CR"], GCB["LF"]):
                    brk = True
                elif pcls == GCB["L"] and cls in (GCB["L"], GCB["V"], GCB["LV"], GCB["LVT"]):
                    brk = False
                elif pcls in (GCB["LV"], GCB["V"]) and cls in (GCB["V"], GCB["T"]):
                    brk = False
                elif pcls in (GCB["LVT"], GCB["T"]) and cls == GCB["T"]:
                    brk = False
                elif cls in (GCB["EXTEND"], GCB["ZWJ"], GCB["SPACINGMARK"]) or pcls == GCB["PREPEND"]:
                    brk = False
                elif cls == GCB["INCB_CONSONANT"]:
                    brk = incb != 2
                elif pcls == GCB["ZWJ"] and cls == GCB["EXTPICT"]:
                    brk = not zwj_ep
                elif pcls == GCB["RI"] and cls == GCB["RI"]:
                    brk = ri % 2 == 0
                else:
                    brk = True
                if brk:
                    out.append(s[start:i])
                    start = i
            # state after this char
            ri = ri + 1 if cls == GCB["RI"] else 0
            zwj_ep = cls == GCB["ZWJ"] and ep
            ep = cls == GCB["EXTPICT"] or (ep and cls == GCB["EXTEND"])
            if cls == GCB["INCB_CONSONANT"]:
                incb = 1
            elif g & GCB_INCB_LINKER:
                incb = 2 if incb else 0
            elif not g & GCB_INCB_EXTEND:
                incb = 0
            prev = g
        out.append(s[start:])
        return out


# ------------------------------------------------------------------------------------------------ probes


def _joined(norm: Callable[[str], str], units: list[str], sep: str) -> list[str]:
    """norm over many units at once (sep must pass unchanged and reset every context)."""
    out: list[str] = []
    step = 4096
    for i in range(0, len(units), step):
        chunk = units[i:i + step]
        res = norm(sep.join(chunk)).split(sep)
        if len(res) != len(chunk):  # a unit produced the separator: one at a time
            res = [norm(u) for u in chunk]
        out.extend(res)
    return out


def _probe_norm(norm: normalizers.Normalizer, units: list[str], sep: str = "\n") -> list[str]:
    return _joined(norm.normalize_str, units, sep)


def charsmap_every_byte(exclude: bytes = b"\n") -> bytes:
    """A sentencepiece precompiled charsmap whose trie holds every single byte (except `exclude`) -> "X".

    Its double array: the root's children at 1024 ^ byte, each with a leaf at (1024 ^ byte) ^ 2048.
    With it, tokenizers' Precompiled gives one X per grapheme cluster shorter than 6 bytes and one per char
    of a longer cluster: the cluster boundaries show.
    """
    units = [0] * (3072 + 256)
    units[0] = 1024 << 10  # root: offset 1024 (offset = unit >> 10 while bit 9 is clear)
    for b in range(1, 256):
        if bytes([b]) in exclude:
            continue
        units[1024 ^ b] = (2048 << 10) | (1 << 8) | b  # label b, has a leaf, offset 2048
        units[(1024 ^ b) ^ 2048] = 1 << 31  # the leaf: value 0 (the string "X" at offset 0)
    trie = b"".join(u.to_bytes(4, "little") for u in units)
    return len(trie).to_bytes(4, "little") + trie + b"X\0"


class Prober:
    """Runs tokenizers on every code point and collects the flags (code point -> ST_UF_* bits)."""

    def __init__(self, model: Model) -> None:
        self.m = model
        self.flags: Counter[int] = Counter()
        self.flag_of: dict[int, int] = {}

    def flag(self, cp: int, name: str) -> None:
        self.flag_of[cp] = self.flag_of.get(cp, 0) | FLAG_BIT[name]

    def run(self) -> dict[int, int]:
        self.whitespace_and_bert()
        self.lowercase()
        self.normal_forms()
        self.pretokenizers()
        self.graphemes()
        return self.flag_of

    # -- BertNormalizer, Strip, StripAccents, Lowercase

    def whitespace_and_bert(self) -> None:
        m = self.m
        cps = CODE_POINTS
        strip = normalizers.Strip()
        for cp in cps:
            if (strip.normalize_str(chr(cp)) == "") != m.has(cp, "WHITESPACE"):
                self.flag(cp, "WHITESPACE")
        clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                                           lowercase=False)
        got = _probe_norm(clean, [chr(cp) for cp in cps], sep="#")
        for cp, g in zip(cps, got, strict=True):
            removed = cp in (0, 0xFFFD) or m.has(cp, "CONTROL")
            want = "" if removed else (" " if m.has(cp, "BERT_SPACE") else chr(cp))
            if g != want:
                if (g == "") != removed:
                    self.flag(cp, "CONTROL")
                else:
                    self.flag(cp, "WHITESPACE")
        cjk = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False,
                                         lowercase=False)
        got = _probe_norm(cjk, [chr(cp) for cp in cps], sep="#")
        for cp, g in zip(cps, got, strict=True):
            want = f" {chr(cp)} " if m.has(cp, "CJK") else chr(cp)
            if g != want:
                self.flag(cp, "CJK")
        strip_acc = normalizers.StripAccents()
        got = _probe_norm(strip_acc, [chr(cp) for cp in cps], sep="#")
        for cp, g in zip(cps, got, strict=True):
            if (g == "") != m.has(cp, "MARK"):
                self.flag(cp, "MARK")

    def lowercase(self) -> None:
        m = self.m
        got = _probe_norm(normalizers.Lowercase(), [chr(cp) for cp in CODE_POINTS])
        for cp, g in zip(CODE_POINTS, got, strict=True):
            if g != m.to_lower(chr(cp)):
                self.flag(cp, "LOWER")

    # -- NFD / NFKD / NFC / NFKC, canonical ordering, compositions, BERT's strip_accents

    def normal_forms(self) -> None:
        m = self.m
        cps = CODE_POINTS
        nfd, nfkd, nfc, nfkc = normalizers.NFD(), normalizers.NFKD(), normalizers.NFC(), normalizers.NFKC()
        ref = unicodedata.normalize
        # the separator "a" is a starter that composes with nothing that follows a probe unit's end ... except
        # marks, which no unit ends with after NFC; "\n" is safer: no decomposition, class 0, no composition.
        singles = [chr(cp) for cp in cps]
        for probe_units, norm, form, name in [
            (singles, nfd, "NFD", "NFD"),
            ([c + "\u0334" for c in singles], nfd, "NFD", "NFD"),
            (["\u0345" + c for c in singles], nfd, "NFD", "NFD"),
            (singles, nfkd, "NFKD", "NFKD"),
            (singles, nfc, "NFC", "COMPOSE"),
            (singles, nfkc, "NFKC", "COMPOSE"),
        ]:
            got = _probe_norm(norm, probe_units)
            for cp, u, g in zip(cps, probe_units, got, strict=True):
                if g != ref(form, u):
                    self.flag(cp, name)
        # every class-nonzero mark against a mark of every class, both orders
        classes: dict[int, int] = {}  # per class, a mark tokenizers agrees on (the first unflagged one)
        for cp, ccc in sorted(m.ccc.items()):
            if not self.flag_of.get(cp, 0) & FLAG_BIT["NFD"]:
                classes.setdefault(ccc, cp)
        marks = sorted(m.ccc)
        for cp in marks:
            units = [chr(cp) + chr(r) for r in classes.values()] + [chr(r) + chr(cp) for r in classes.values()]
            got = _probe_norm(nfd, units)
            if any(g != ref("NFD", u) for u, g in zip(units, got, strict=True)):
                self.flag(cp, "NFD")
        # every composition pair of the tables, and every decomposition tokenizers knows recomposed
        units, owners = [], []
        for (a, b), c in m.pairs.items():
            units.append(chr(a) + chr(b))
            owners.append((a, b, c))
        tok_nfd = _probe_norm(nfd, singles)
        for cp, d in zip(cps, tok_nfd, strict=True):
            if d != chr(cp) and len(d) > 1:
                units.append(d)
                owners.append(tuple(ord(x) for x in d) + (cp,))
        for norm, form in [(nfc, "NFC"), (nfkc, "NFKC")]:
            got = _probe_norm(norm, units)
            for u, g, own in zip(units, got, owners, strict=True):
                if g != ref(form, u):
                    for x in own:
                        self.flag(x, "COMPOSE")
        # BertNormalizer strip_accents: NFD, then nonspacing marks removed
        sa = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                                        lowercase=False)
        got = _probe_norm(sa, singles, sep="#")
        for cp, g in zip(cps, got, strict=True):
            want = "".join(x for x in ref("NFD", chr(cp)) if not m.has(ord(x), "MN"))
            if g != want:
                flagged_parts = [x for x in ref("NFD", chr(cp)) if m.cat[ord(x)] == "Mn" or ord(x) == cp]
                for x in flagged_parts or [chr(cp)]:
                    self.flag(ord(x), "MN")
                self.flag(cp, "MN")

    # -- pre-tokenizer classes (for the pipeline's pre-tokenizers)

    def pretokenizers(self) -> None:
        m = self.m
        cps = CODE_POINTS
        step = 8192
        white, punctuation, numeric = m.with_prop("WHITESPACE"), m.with_prop("PUNCT"), m.with_prop("NUMERIC")
        re_word, re_space = m.with_prop("RE_WORD"), m.with_prop("RE_SPACE")

        def spans(pretok: pre_tokenizers.PreTokenizer, units: list[str], sep: str) -> list[list[tuple[int, int]]]:
            """Per unit, the (start, end) of the pieces inside it, relative to the unit (char offsets)."""
            out: list[list[tuple[int, int]]] = []
            for i in range(0, len(units), step):
                chunk = units[i:i + step]
                starts, pos = [], 0
                for u in chunk:
                    starts.append(pos)
                    pos += len(u) + len(sep)
                per: list[list[tuple[int, int]]] = [[] for _ in chunk]
                k = 0
                for _, (s0, e0) in pretok.pre_tokenize_str(sep.join(chunk)):
                    while k + 1 < len(starts) and starts[k + 1] <= s0:
                        k += 1
                    per[k].append((s0 - starts[k], e0 - starts[k]))
                out.extend(per)
            return out

        # BertPreTokenizer: "a" c "a" -> split (whitespace), isolated (punctuation) or one piece
        units = ["a" + chr(cp) + "a" for cp in cps]
        for cp, got in zip(cps, spans(pre_tokenizers.BertPreTokenizer(), units, " "), strict=True):
            ws, punct = cp in white, cp in punctuation
            want = [(0, 1), (2, 3)] if ws else ([(0, 1), (1, 2), (2, 3)] if punct else [(0, 3)])
            if got != want:
                if got == [(0, 1), (2, 3)] or ws:
                    self.flag(cp, "WHITESPACE")
                if got == [(0, 1), (1, 2), (2, 3)] or punct:
                    self.flag(cp, "PUNCT")
        for cp, got in zip(cps, spans(pre_tokenizers.WhitespaceSplit(), units, " "), strict=True):
            if (got == [(0, 1), (2, 3)]) != (cp in white):
                self.flag(cp, "WHITESPACE")
        # Digits(individual_digits): a numeric c is a piece of its own (the pieces may span units: look for it)
        digit_pieces: set[tuple[int, int]] = set()
        for i in range(0, len(units), step):
            chunk = units[i:i + step]
            for _, (s0, e0) in pre_tokenizers.Digits(individual_digits=True).pre_tokenize_str("".join(chunk)):
                if e0 - s0 == 1:
                    digit_pieces.add((i, s0))
        for j, cp in enumerate(cps):
            i = j - j % step
            isolated = (i, (j - i) * 3 + 1) in digit_pieces
            if isolated != (cp in numeric):
                self.flag(cp, "NUMERIC")
        # Whitespace (regex crate): "a" c "!" -> "ac" "!" (\w), "a" "!" (\s) or "a" "c!" (neither)
        units = ["a" + chr(cp) + "!" for cp in cps]
        for cp, got in zip(cps, spans(pre_tokenizers.Whitespace(), units, " "), strict=True):
            word, space = cp in re_word, cp in re_space
            want = [(0, 2), (2, 3)] if word else ([(0, 1), (2, 3)] if space else [(0, 1), (1, 3)])
            if got != want:
                if word or got == [(0, 2), (2, 3)]:
                    self.flag(cp, "RE_WORD")
                if space or got == [(0, 1), (2, 3)]:
                    self.flag(cp, "RE_SPACE")
                if not (word or space):
                    self.flag(cp, "RE_WORD")
        # Oniguruma classes: Split(Regex(class), "removed") over every code point: the removed ones matched
        for name, pat in [("ONIG_SPACE", r"\s"), ("ONIG_LETTER", r"\p{L}"), ("ONIG_NUMBER", r"\p{N}")]:
            split = pre_tokenizers.Split(Regex(pat), behavior="removed")
            members = m.with_prop(name)
            for i in range(0, len(cps), step):
                chunk = cps[i:i + step]
                kept = [False] * len(chunk)
                for _, (s0, e0) in split.pre_tokenize_str("".join(chr(cp) for cp in chunk)):
                    for k in range(s0, e0):
                        kept[k] = True
                for cp, k in zip(chunk, kept, strict=True):
                    if (not k) != (cp in members):
                        self.flag(cp, name)

    # -- grapheme clusters (the Precompiled normaliser)

    def graphemes(self) -> None:
        m = self.m
        pc = normalizers.Precompiled(charsmap_every_byte())

        def output(s: str) -> str:
            # one X per cluster shorter than 6 bytes, one per char of a longer one; the trie search stops at a
            # NUL byte, so a NUL (a cluster of its own: a control) stays
            out = []
            for k in m.grapheme_clusters(s):
                if k[0] == "\0":
                    out.append(k)
                elif len(k.encode()) < 6:
                    out.append("X")
                else:
                    out.append("".join("\0" if c == "\0" else "X" for c in k))
            return "".join(out)

        memo: dict[tuple[tuple[int, int], ...], str] = {}

        def expected(s: str) -> str:
            key = tuple((m.gcb.get(ord(c), 0), ord(c) if c in "\0\r\n" else len(c.encode())) for c in s)
            if key not in memo:
                memo[key] = output(s)
            return memo[key]

        probes: list[tuple[int, str]] = []
        for cp in CODE_POINTS:
            if cp == 0x0A:
                continue
            c = chr(cp)
            n = len(c.encode())
            probes += [(cp, "a" + c), (cp, c + "a"), (cp, "\r" + c)]
            if n <= 3:
                probes += [(cp, c + "\u0300"), (cp, "\u0600" + c)]
        # sequences whose short clusters depend on pre-context (Hangul, regional indicators, emoji ZWJ, InCB)
        interesting = [cp for cp, g in m.gcb.items() if (g & 15) in (GCB["L"], GCB["V"], GCB["T"], GCB["LV"],
                       GCB["LVT"], GCB["RI"], GCB["EXTPICT"], GCB["ZWJ"], GCB["INCB_CONSONANT"]) or g & 48]
        heads = ["\u1100", "\u1161", "\u11a8", "\uac00", "\uac01", "\U0001f1e6", "\u00a9", "\u200d", "\u0915\u094d",
                 "\u00a9\u200d"]
        for cp in interesting:
            c = chr(cp)
            for h in heads:
                probes.append((cp, h + c + "\u0300"))
                probes.append((cp, h + c))
        units = [p for _, p in probes]
        got = _probe_norm(pc, units)
        for (cp, u), g in zip(probes, got, strict=True):
            want = expected(u)
            if g != want:
                self.flag(cp, "GRAPHEME")


# ------------------------------------------------------------------------------------------------ emission


def two_level(values: list[int], shift: int) -> tuple[list[int], list[int]]:
    """Split values (indexed by code point) into stage1 (block ids) and stage2 (deduplicated blocks)."""
    size = 1 << shift
    blocks: dict[tuple[int, ...], int] = {}
    stage1: list[int] = []
    stage2: list[int] = []
    for start in range(0, len(values), size):
        block = tuple(values[start:start + size])
        if block not in blocks:
            blocks[block] = len(blocks)
            stage2.extend(block)
        stage1.append(blocks[block])
    return stage1, stage2


def best_three_level(values: list[int]) -> tuple[int, int, list[int], list[int], list[int]]:
    """The smallest three-level split of values: t2[(t1[(t0[cp >> (a + b)] << b) | (cp >> a & mask_b)] << a) | (cp & mask_a)].

    (Two levels with any block size cost 50-80% more here: the upper planes repeat a few blocks.)
    """
    best = None
    for a in range(4, 9):
        s1, s2 = two_level(values, a)
        for b in range(3, 8):
            t0, t1 = two_level(s1, b)
            cost = len(t0) * _item(t0) + len(t1) * _item(t1) + len(s2) * _item(s2)
            if best is None or cost < best[0]:
                best = (cost, a, b, t0, t1, s2)
    assert best is not None
    return best[1], best[2], best[3], best[4], best[5]


def _item(values: list[int]) -> int:
    return 1 if max(values) < 256 else 2


def c_array(ctype: str, name: str, values: Iterable[int], per_line: int = 24) -> str:
    vals = list(values)
    lines = []
    for i in range(0, len(vals), per_line):
        lines.append("    " + ",".join(str(v) for v in vals[i:i + per_line]) + ",")
    return f"const {ctype} {name}[{len(vals)}] = {{\n" + "\n".join(lines) + "\n};\n"


def ctype_for(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    if lo >= 0 and hi < 256:
        return "uint8_t"
    if lo >= 0 and hi < 65536:
        return "uint16_t"
    if lo >= -32768 and hi < 32768:
        return "int16_t"
    return "int32_t" if lo < 0 else "uint32_t"


def emit(model: Model, flags: dict[int, int], src: dict[str, str]) -> tuple[str, dict[str, int]]:
    # records: (props, flags, lower delta, ccc, gcb)
    rec_index: dict[tuple[int, int, int, int, int], int] = {}
    rec_of = [0] * MAX_CP
    lower_multi: list[tuple[int, str]] = []
    for cp in range(MAX_CP):
        if 0xD800 <= cp <= 0xDFFF:
            key = (0, 0, 0, 0, GCB["CONTROL"])  # surrogates never reach the tables (valid UTF-8 only)
        else:
            p = model.props[cp]
            f = flags.get(cp, 0)
            if f:
                p |= FLAGGED_BIT
            low = model.lower.get(cp)
            delta = 0
            if low is not None:
                if len(low) == 1:
                    delta = ord(low) - cp
                else:
                    lower_multi.append((cp, low))
            key = (p, f, delta, model.ccc.get(cp, 0), model.gcb.get(cp, 0))
        if key not in rec_index:
            rec_index[key] = len(rec_index)
        rec_of[cp] = rec_index[key]
    # decompositions: per code point an index into st_uni_dec (0: none); st_uni_dec[i] = canonical length |
    # compatibility length << 8 (in UTF-16 units), then the canonical sequence, then the compatibility one, in
    # UTF-16 (length 0: the compatibility decomposition is the canonical one, or there is none)
    def utf16(seq: list[int]) -> list[int]:
        units = []
        for x in seq:
            if x < 0x10000:
                units.append(x)
            else:
                x -= 0x10000
                units += [0xD800 | (x >> 10), 0xDC00 | (x & 0x3FF)]
        return units

    dec_data = [0]
    dec_of = [0] * MAX_CP
    for cp in range(MAX_CP):
        canon = model.canon.get(cp)
        compat = model.compat.get(cp)
        if canon is None and compat is None:
            continue
        dec_of[cp] = len(dec_data)
        canon = utf16(canon or [])
        compat = utf16(compat or [])
        dec_data.append(len(canon) | (len(compat) << 8))
        dec_data.extend(canon)
        dec_data.extend(compat)
    assert len(dec_data) < 65536
    pairs = sorted(model.pairs.items())
    ra, rb, r0, r1, r2 = best_three_level(rec_of)
    da, db, d0, d1, d2 = best_three_level(dec_of)
    table_bytes = (len(rec_index) * 16 + sum(len(t) * _item(t) for t in (r0, r1, r2, d0, d1, d2))
                   + len(dec_data) * 2 + len(pairs) * 12 + len(lower_multi) * 16)
    stats = {
        "records": len(rec_index),
        "props_levels": len(r0) + len(r1) + len(r2),
        "dec_levels": len(d0) + len(d1) + len(d2),
        "dec_data": len(dec_data), "pairs": len(pairs), "table_bytes": table_bytes,
    }
    flag_counts = Counter()
    for f in flags.values():
        for name, bit in FLAG_BIT.items():
            if f & bit:
                flag_counts[name] += 1
    out = []
    out.append("/*\n * GENERATED by tools/gen_unicode.py -- do not edit; regenerate with `python tools/gen_unicode.py`\n"
               " * (and check with `python tools/gen_unicode.py --check`) whenever tokenizers, Python or regex change.\n *\n")
    out.append(" * Sources:\n")
    out.append(f" *   Python's unicodedata, Unicode {src['unicodedata']}: general categories, combining classes,\n"
               " *     decompositions, compositions, lowercase\n")
    out.append(f" *   the regex module's tables (PyPI regex), Unicode {src['regex_unicode']}: White_Space, Alphabetic, L, N, \\w,\n"
               " *     Grapheme_Cluster_Break, Extended_Pictographic, Indic_Conjunct_Break\n")
    out.append(f" *   tokenizers {src['tokenizers']}: probed for every code point; disagreements are flagged (ST_UF_*)\n *\n")
    out.append(" * Flagged code points per reason (a code point may have several):\n")
    for name, _ in FLAGS:
        out.append(f" *   ST_UF_{name:<12} {flag_counts.get(name, 0)}\n")
    out.append(f" *   (any flag: {len(flags)})\n *\n")
    out.append(" * Layout (three levels, A and B below): record = st_uni_records[t2[(t1[(t0[cp >> (A + B)] << B)\n"
               " *   | ((cp >> A) & (2^B - 1))] << A) | (cp & (2^A - 1))]]; the decomposition of cp starts at st_uni_dec +\n"
               " *   the same lookup in the st_uni_dec_t* tables (0: none). Tables: "
               f"{table_bytes} bytes.\n */\n")
    out.append("#ifndef STATICST_UNICODE_DATA_H\n#define STATICST_UNICODE_DATA_H\n\n#include <stdint.h>\n\n")
    out.append(f'#define ST_UNI_TOKENIZERS_VERSION "{src["tokenizers"]}"\n')
    out.append(f'#define ST_UNI_UNICODEDATA_VERSION "{src["unicodedata"]}"\n')
    out.append(f'#define ST_UNI_REGEX_UNICODE_VERSION "{src["regex_unicode"]}"\n\n')
    out.append("/* st_uni_props(cp): what the tables say, as tokenizers sees it */\n")
    for i, (name, doc) in enumerate(PROPS):
        out.append(f"#define ST_UP_{name} (1u << {i}) /* {doc} */\n")
    out.append("#define ST_UP_FLAGGED (1u << 31) /* st_uni_flags(cp) != 0 */\n\n")
    out.append("/* st_uni_flags(cp): tokenizers was seen to disagree with the tables on this property here; a step\n"
               " * that depends on it sends the text to the slow path (ST_HF) */\n")
    for i, (name, doc) in enumerate(FLAGS):
        out.append(f"#define ST_UF_{name} (1u << {i}) /* {doc} */\n")
    out.append("\n/* st_uni_gcb(cp): Grapheme_Cluster_Break class (low 4 bits) as unicode-segmentation has it, plus InCB */\n")
    for i, name in enumerate(GCB_CLASSES):
        out.append(f"#define ST_GCB_{name} {i}\n")
    out.append(f"#define ST_GCB_INCB_LINKER {GCB_INCB_LINKER} /* Indic_Conjunct_Break=Linker */\n")
    out.append(f"#define ST_GCB_INCB_EXTEND {GCB_INCB_EXTEND} /* Indic_Conjunct_Break=Extend */\n\n")
    out.append("/* Hangul syllable arithmetic (Unicode 3.12) */\n")
    out.append(f"#define ST_HANGUL_S_BASE 0x{S_BASE:X}\n#define ST_HANGUL_L_BASE 0x{L_BASE:X}\n"
               f"#define ST_HANGUL_V_BASE 0x{V_BASE:X}\n#define ST_HANGUL_T_BASE 0x{T_BASE:X}\n"
               f"#define ST_HANGUL_L_COUNT {L_COUNT}\n#define ST_HANGUL_V_COUNT {V_COUNT}\n"
               f"#define ST_HANGUL_T_COUNT {T_COUNT}\n#define ST_HANGUL_N_COUNT {N_COUNT}\n"
               f"#define ST_HANGUL_S_COUNT {S_COUNT}\n\n")
    out.append("typedef struct {\n    uint32_t props;   /* ST_UP_* */\n    uint32_t flags;   /* ST_UF_* */\n"
               "    int32_t lower;    /* simple lowercase: cp + lower (ST_UP_LOWER_MULTI: see st_uni_lower_multi) */\n"
               "    uint8_t ccc;      /* canonical combining class */\n    uint8_t gcb;      /* ST_GCB_* */\n"
               "    uint16_t pad;\n} st_uni_rec;\n\n")
    out.append(f"#define ST_UNI_REC_A {ra}\n#define ST_UNI_REC_B {rb}\n#define ST_UNI_DEC_A {da}\n#define ST_UNI_DEC_B {db}\n")
    out.append(f"#define ST_UNI_N_PAIRS {len(pairs)}\n#define ST_UNI_N_LOWER_MULTI {len(lower_multi)}\n\n")
    names = [("st_uni_rec_t0", r0), ("st_uni_rec_t1", r1), ("st_uni_rec_t2", r2),
             ("st_uni_dec_t0", d0), ("st_uni_dec_t1", d1), ("st_uni_dec_t2", d2)]
    out.append("/* the tables (defined once, in unicode.c, which defines ST_UNICODE_TABLES before including this) */\n")
    out.append("extern const st_uni_rec st_uni_records[];\n")
    for name, arr in names:
        out.append(f"extern const {ctype_for(arr)} {name}[];\n")
    out.append("extern const uint16_t st_uni_dec[];\nextern const uint32_t st_uni_pair_first[], st_uni_pair_second[], "
               "st_uni_pair_composite[];\nextern const uint32_t st_uni_lower_multi[];\n\n")
    out.append("""/* The record of a code point (cp <= 0x10FFFF; surrogates have an inert record). */
static inline const st_uni_rec *st_uni_rec_of(uint32_t cp) {
    uint32_t i = st_uni_rec_t0[cp >> (ST_UNI_REC_A + ST_UNI_REC_B)];
    i = st_uni_rec_t1[(i << ST_UNI_REC_B) | ((cp >> ST_UNI_REC_A) & ((1u << ST_UNI_REC_B) - 1))];
    return &st_uni_records[st_uni_rec_t2[(i << ST_UNI_REC_A) | (cp & ((1u << ST_UNI_REC_A) - 1))]];
}

/* The decomposition entry of a code point: 0 (none), else st_uni_dec[i] = canonical length | compatibility
 * length << 8 (UTF-16 units; compatibility length 0: same as the canonical one), then both sequences. */
static inline uint32_t st_uni_dec_of(uint32_t cp) {
    uint32_t i = st_uni_dec_t0[cp >> (ST_UNI_DEC_A + ST_UNI_DEC_B)];
    i = st_uni_dec_t1[(i << ST_UNI_DEC_B) | ((cp >> ST_UNI_DEC_A) & ((1u << ST_UNI_DEC_B) - 1))];
    return st_uni_dec_t2[(i << ST_UNI_DEC_A) | (cp & ((1u << ST_UNI_DEC_A) - 1))];
}

""")
    out.append("#ifdef ST_UNICODE_TABLES\n\n")
    recs = sorted(rec_index.items(), key=lambda kv: kv[1])
    out.append(f"const st_uni_rec st_uni_records[{len(recs)}] = {{\n")
    for (p, f, d, ccc, g), _ in recs:
        out.append(f"    {{{p}u,{f}u,{d},{ccc},{g},0}},\n")
    out.append("};\n")
    for name, arr in names:
        out.append(c_array(ctype_for(arr), name, arr))
    out.append(c_array("uint16_t", "st_uni_dec", dec_data))
    out.append("/* primary composites, sorted by (first, second) */\n")
    out.append(c_array("uint32_t", "st_uni_pair_first", [a for (a, _), _ in pairs]))
    out.append(c_array("uint32_t", "st_uni_pair_second", [b for (_, b), _ in pairs]))
    out.append(c_array("uint32_t", "st_uni_pair_composite", [c for _, c in pairs]))
    out.append("/* multi-char lowercase: code point, then up to 3 chars (0-padded) */\n")
    ml = []
    for cp, low in lower_multi:
        chars = [ord(x) for x in low] + [0] * (3 - len(low))
        ml.extend([cp] + chars)
    out.append(c_array("uint32_t", "st_uni_lower_multi", ml or [0, 0, 0, 0]))
    out.append("\n#endif /* ST_UNICODE_TABLES */\n#endif\n")
    return "".join(out), {**stats, **{f"flag_{k}": v for k, v in flag_counts.items()}, "flagged": len(flags)}


def check_invariants(model: Model, flags: dict[int, int]) -> None:
    """What csrc/normalize.c assumes of the tables (its ASCII fast paths)."""
    ascii_flagged = sorted(cp for cp in flags if cp < 0x80)
    if ascii_flagged:
        raise SystemExit(f"tokenizers disagrees with the tables on ASCII code points {ascii_flagged}: the C fast "
                         "paths assume it never does; investigate before regenerating")
    if any(b < 0x80 for _, b in model.pairs):
        raise SystemExit("an ASCII char is the second of a composition pair: the NFC fast path assumes none is")
    if any(cp < 0x80 and (model.ccc.get(cp) or cp in model.canon or cp in model.compat) for cp in range(0x80)):
        raise SystemExit("an ASCII char decomposes or has a combining class: the fast paths assume none does")


def generate() -> tuple[str, dict[str, int]]:
    src = sources()
    model = Model()
    flags = Prober(model).run()
    check_invariants(model, flags)
    return emit(model, flags, src)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the committed header instead of writing it")
    ap.add_argument("--output", type=Path, default=HEADER)
    args = ap.parse_args(argv)
    text, stats = generate()
    print(json.dumps(stats, indent=1), file=sys.stderr)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is not what tools/gen_unicode.py generates with {sources()}: regenerate it",
                  file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

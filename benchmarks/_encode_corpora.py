"""Multilingual text for the encoding benchmark: Django's translation catalogues, by script group.

Source: the ``.po`` translation files that the Django package ships (``django/conf/locale`` and every
``django/contrib/*/locale``; Django >= 5.2, BSD-3-Clause, "Copyright (c) Django Software Foundation and individual
contributors"; each catalogue says it is distributed under the same licence as Django). Every translated
message (``msgstr``, plural forms included) of the languages of a group, deduplicated, in a fixed order:
natural interface sentences and phrases written by people in each language — short (20 to 35 characters on
average), with placeholders such as ``%(value)s`` left as they are. Nothing is downloaded: the benchmark
needs the package installed (``pip install staticst[bench]``, which ``[dev]`` includes).

The English group is the benchmark's own English (MTEB sentences from ``shared/``), not these catalogues.
"""

from __future__ import annotations

import ast
import hashlib
import random
from pathlib import Path

__all__ = ["GROUPS", "GROUP_TITLES", "catalogue_root", "group_texts", "parse_po", "source_note"]

#: Script groups of the issue: languages (Django locale names) whose messages make up each one.
GROUPS: dict[str, tuple[str, ...]] = {
    "latin": ("fr", "de", "es", "pt", "tr", "pl", "vi", "cs", "sv", "hu"),
    "cyrillic-greek": ("ru", "uk", "bg", "sr", "mk", "el"),
    "cjk": ("zh_Hans", "zh_Hant", "ja", "ko"),
    "arabic-hebrew-indic-thai": ("ar", "he", "fa", "hi", "bn", "th"),
}
GROUP_TITLES: dict[str, str] = {
    "english": "English (MTEB sentences)",
    "latin": "Latin-script languages (fr, de, es, pt, tr, pl, vi, cs, sv, hu)",
    "cyrillic-greek": "Cyrillic and Greek (ru, uk, bg, sr, mk, el)",
    "cjk": "Chinese, Japanese, Korean",
    "arabic-hebrew-indic-thai": "Arabic, Hebrew, Persian, Hindi, Bengali, Thai",
}


def catalogue_root() -> Path:
    """The installed Django package folder (ImportError naming the extra when it is not installed)."""
    try:
        import django
    except ImportError as exc:
        raise ImportError("the multilingual benchmark text comes from Django's translation catalogues: "
                          "pip install 'staticst[bench]' (or Django>=5.2)") from exc  # fmt: skip
    return Path(django.__file__).resolve().parent


def parse_po(path: Path) -> list[dict[str, str]]:
    """The entries of a gettext ``.po`` file: ``msgid``, ``msgstr``, ``msgstr[0]``, ... as decoded strings."""
    entries: list[dict[str, str]] = []
    entry: dict[str, str] = {}
    field = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            if entry:
                entries.append(entry)
            entry, field = {}, None
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            if field is not None:
                entry[field] += ast.literal_eval(line)
            continue
        key, _, value = line.partition(" ")
        field = key
        entry[key] = ast.literal_eval(value)
    if entry:
        entries.append(entry)
    return entries


def language_texts(root: Path, language: str) -> list[str]:
    """Every translated message of one language, in file order, deduplicated (blank ones dropped)."""
    seen: dict[str, None] = {}
    for path in sorted(root.glob(f"**/locale/{language}/LC_MESSAGES/*.po")):
        for entry in parse_po(path):
            if not entry.get("msgid"):
                continue  # the header
            for key, value in entry.items():
                text = " ".join(value.split())
                if key.startswith("msgstr") and text:
                    seen.setdefault(text, None)
    return list(seen)


def group_texts(group: str, root: Path | None = None, seed: int = 0) -> list[str]:
    """The messages of a script group, languages interleaved, in a fixed shuffled order (same on every run)."""
    root = catalogue_root() if root is None else root
    texts: dict[str, None] = {}
    for language in GROUPS[group]:
        found = language_texts(root, language)
        if not found:
            raise FileNotFoundError(f"no Django catalogue for language {language!r} under {root}")
        for text in found:
            texts.setdefault(text, None)
    ordered = list(texts)
    random.Random(seed).shuffle(ordered)
    return ordered


def source_note(root: Path | None = None) -> dict[str, str]:
    """Where the text came from: the Django version and a digest of the catalogues read."""
    root = catalogue_root() if root is None else root
    import django

    digest = hashlib.sha256()
    for path in sorted(root.glob("**/locale/*/LC_MESSAGES/*.po")):
        digest.update(path.read_bytes())
    return {"package": "Django", "version": django.get_version(), "licence": "BSD-3-Clause",
            "catalogues_sha256": digest.hexdigest()[:16]}  # fmt: skip

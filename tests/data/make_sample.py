"""Regenerate tests/data/multilingual.tsv (see README.md here): 24 messages per Django locale, plus English.

Usage (from the repo root, Django installed): python tests/data/make_sample.py
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from benchmarks._encode_corpora import catalogue_root, language_texts, parse_po  # noqa: E402

PER_LANGUAGE = 24


def main() -> None:
    root = catalogue_root()
    languages = sorted({p.parts[p.parts.index("locale") + 1] for p in root.glob("**/locale/*/LC_MESSAGES/*.po")})
    lines = []
    english: dict[str, None] = {}
    for path in sorted(root.glob("conf/locale/fr/LC_MESSAGES/django.po")):
        for entry in parse_po(path):
            if entry.get("msgid"):
                english.setdefault(" ".join(entry["msgid"].split()), None)
    picks = list(english)[:: max(1, len(english) // (PER_LANGUAGE * 4))][: PER_LANGUAGE * 4]
    lines += [f"en\t{text}" for text in picks]
    for language in languages:
        if language.startswith("en"):
            continue
        texts = language_texts(root, language)
        step = max(1, len(texts) // PER_LANGUAGE)
        lines += [f"{language}\t{text}" for text in texts[::step][:PER_LANGUAGE]]
    (HERE / "multilingual.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(len(lines), "lines,", sum(len(line) for line in lines), "characters")


if __name__ == "__main__":
    main()

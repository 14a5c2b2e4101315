"""Whole-token multilingual keyword tables for field heuristics, loaded from JSON data files.

One file per language next to this module (`keywords_<lang>.json`: en, de, fr, es, pt, it,
nl). Matching is on whole tokens after splitting camelCase/snake_case/kebab-case and folding
accents, never on substrings: Bitwarden's old substring match filled "Tell us about
yourself" with a phone number because "tel" occurs inside "Tell". Phrases are token tuples;
a longer phrase beats a shorter one ("company name" is organization, not name). The data
files may be written with accents: every phrase goes through the same `tokens()` as the
page's text. Chromium's autofill regexes (BSD) were the reference for the vocabulary.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

_CAMEL = re.compile(
    r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])"
)
_NON_WORD = re.compile(r"[^0-9a-z]+")
DATA_DIR = Path(__file__).parent
LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "es", "pt", "it", "nl")


@lru_cache(maxsize=8192)
def tokens(text: str) -> tuple[str, ...]:
    """Split a label/name/id into lowercase ASCII-folded whole tokens."""
    if not text:
        return ()
    text = text.replace("ß", "ss").replace("ẞ", "SS")
    text = _CAMEL.sub(" ", text)
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch)).lower()
    return tuple(t for t in _NON_WORD.split(folded) if t)


class PhraseSet:
    """Token phrases indexed by their first token, so a lookup costs O(tokens), not O(phrases)."""

    def __init__(self, phrases: tuple[tuple[str, ...], ...]) -> None:
        self.phrases = tuple(dict.fromkeys(p for p in phrases if p))
        self._by_first: dict[str, list[tuple[str, ...]]] = {}
        for phrase in sorted(self.phrases, key=len, reverse=True):
            self._by_first.setdefault(phrase[0], []).append(phrase)

    def longest(self, toks: tuple[str, ...]) -> int:
        """Length of the longest phrase occurring as a contiguous token run (0 = none)."""
        best = 0
        for i, tok in enumerate(toks):
            for phrase in self._by_first.get(tok, ()):
                k = len(phrase)
                if k <= best:
                    break  # sorted longest first
                if toks[i : i + k] == phrase:
                    best = k
                    break
        return best

    def starts(self, toks: tuple[str, ...]) -> bool:
        return bool(toks) and any(toks[: len(p)] == p for p in self._by_first.get(toks[0], ()))

    def __or__(self, other: PhraseSet) -> PhraseSet:
        return PhraseSet(self.phrases + other.phrases)


def _phrases(texts: list[str]) -> PhraseSet:
    return PhraseSet(tuple(tokens(t) for t in texts))


@cache
def _table(lang: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (DATA_DIR / f"keywords_{lang}.json").read_text(encoding="utf-8")
    )
    return data


def _group(lang: str, key: str) -> dict[str, list[str]]:
    value = _table(lang).get(key, {})
    return value if isinstance(value, dict) else {}


def _flat(lang: str, key: str) -> list[str]:
    value = _table(lang).get(key, [])
    return value if isinstance(value, list) else []


def _merged_groups(key: str, langs: tuple[str, ...]) -> dict[str, PhraseSet]:
    out: dict[str, list[str]] = {}
    for lang in langs:
        for name, texts in _group(lang, key).items():
            out.setdefault(name, []).extend(texts)
    return {name: _phrases(texts) for name, texts in out.items()}


def _merged_flat(key: str, langs: tuple[str, ...] = LANGUAGES) -> PhraseSet:
    return _phrases([t for lang in langs for t in _flat(lang, key)])


def page_languages(lang: str | None) -> tuple[str, ...]:
    """The tables to use for a page: its own language plus English, or all when unknown."""
    primary = (lang or "").lower().replace("_", "-").split("-")[0]
    return (
        ("en", primary)
        if primary in LANGUAGES and primary != "en"
        else ("en",)
        if primary == "en"
        else LANGUAGES
    )


@cache
def kind_phrases(langs: tuple[str, ...] = LANGUAGES) -> dict[str, PhraseSet]:
    """kind -> phrases for the given languages (all by default)."""
    return _merged_groups("kinds", langs)


KIND_PHRASES: dict[str, PhraseSet] = kind_phrases()
SENSITIVE_PHRASES: dict[str, PhraseSet] = _merged_groups("sensitive", LANGUAGES)
NEW_PASSWORD_PHRASES: PhraseSet = _merged_flat("new_password")
HONEYPOT_PHRASES: PhraseSet = _merged_flat("honeypot")
SEARCH_PHRASES: PhraseSet = _merged_flat("search")
# Fields that ask for something the profile never holds (promo codes, comments, order numbers):
# help text mentioning "name" next to them must not make them a name field.
NOT_PROFILE_PHRASES: PhraseSet = _merged_flat("not_profile")
# A label starting with one of these (or ending in "?") is a question -> freetext draft.
QUESTION_STARTS: PhraseSet = _merged_flat("question")
SECTION_PHRASES: dict[str, PhraseSet] = _merged_groups("sections", LANGUAGES)
PART_PHRASES: dict[str, PhraseSet] = _merged_groups("parts", LANGUAGES)


def find_phrases(toks: tuple[str, ...], phrases: PhraseSet) -> int:
    return phrases.longest(toks)


def starts_with_phrase(toks: tuple[str, ...], phrases: PhraseSet) -> bool:
    return phrases.starts(toks)

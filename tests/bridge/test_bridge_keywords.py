"""The keyword tables are data (app/bridge/keywords_<lang>.json): every language loads, names only
kinds the classifier knows, and labels in each language classify as a person would read them."""

from __future__ import annotations

import json

import pytest

from app.bridge.classify import KIND_PRIORITY, classify_field
from app.bridge.fields import FieldDescriptor
from app.bridge.keywords import DATA_DIR, LANGUAGES, kind_phrases, page_languages, tokens


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_language_table_is_well_formed(lang: str) -> None:
    data = json.loads((DATA_DIR / f"keywords_{lang}.json").read_text(encoding="utf-8"))
    assert data["language"] == lang
    assert set(data["kinds"]) <= set(KIND_PRIORITY)
    for key in ("kinds", "sensitive", "sections", "parts"):
        assert all(
            phrases and all(tokens(p) for p in phrases) for phrases in data.get(key, {}).values()
        ), key


def test_at_least_seven_languages_and_page_language_selection() -> None:
    assert {"en", "de", "fr", "es", "pt", "it", "nl"} <= set(LANGUAGES)
    assert page_languages("it-IT") == ("en", "it") and page_languages(None) == LANGUAGES
    assert "given-name" in kind_phrases(("en", "it"))


@pytest.mark.parametrize(
    "label, lang, kind",
    [
        ("Postleitzahl", "de", "postal-code"),
        ("Straße und Hausnummer", "de", "street-address"),
        ("Code postal", "fr", "postal-code"),
        ("Complément d'adresse", "fr", "address-line2"),
        ("Código postal", "es", "postal-code"),
        ("Apellidos", "es", "family-name"),
        ("Telemóvel", "pt", "tel"),
        ("Bairro", "pt", "address-level3"),
        ("Cognome", "it", "family-name"),
        ("Città", "it", "address-level2"),
        ("Achternaam", "nl", "family-name"),
        ("Woonplaats", "nl", "address-level2"),
        ("Nome", "it", "given-name"),
        ("Nome", "pt", "name"),  # one word, two meanings: the page's language
    ],
)
def test_labels_in_each_language(label: str, lang: str, kind: str) -> None:
    assert classify_field(FieldDescriptor(ref="f", label=label, lang=lang)).kind == kind


def test_whole_tokens_not_substrings() -> None:
    for label in (
        "Tell us about yourself",
        "Hotel name preference",
        "Stateless ID",
        "Cityscape photo",
    ):
        assert classify_field(FieldDescriptor(ref="f", label=label)).kind not in (
            "tel",
            "address-level1",
            "address-level2",
        )

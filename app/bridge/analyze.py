"""`memex autofill analyze`: the live classifier run on a saved page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.bridge.classify import classify_form
from app.bridge.fields import Classification, FormContext
from app.bridge.htmlform import LOCAL_ORIGIN, parse_form_html
from app.bridge.sections import fill_plan
from app.bridge.values import fill_values


def classify_page(html: str, origin: str | None) -> list[Classification]:
    page_origin = origin or LOCAL_ORIGIN
    return classify_form(parse_form_html(html, page_origin), FormContext(page_origin=page_origin))


def analyze_html(html: str, origin: str | None, profile: Mapping[str, str]) -> list[dict[str, Any]]:
    """One entry per form control: ref, kind, source, sensitive, section, value (never for
    sensitive fields)."""
    verdicts = classify_page(html, origin)
    values = fill_values(verdicts, profile)
    return [
        {
            "ref": v.ref,
            "kind": v.kind,
            "source": v.source,
            "sensitive": v.sensitive,
            "section": v.section,
            "value": None if v.sensitive else values.get(v.ref),
        }
        for v in verdicts
    ]


def analyze_page(html: str, origin: str | None, profile: Mapping[str, str]) -> dict[str, Any]:
    """{"fields": [...], "plan": [...]}: the fields and which block gets which values."""
    fields = analyze_html(html, origin, profile)
    return {"fields": fields, "plan": fill_plan(fields)}

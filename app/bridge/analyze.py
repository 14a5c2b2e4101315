"""`memex autofill analyze`: the live classifier run on a saved page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.bridge.classify import classify_form
from app.bridge.fields import FormContext
from app.bridge.htmlform import LOCAL_ORIGIN, parse_form_html
from app.bridge.values import fill_values


def analyze_html(html: str, origin: str | None, profile: Mapping[str, str]) -> list[dict[str, Any]]:
    """One entry per form control: ref, kind, source, sensitive, value (never for sensitive fields)."""
    page_origin = origin or LOCAL_ORIGIN
    verdicts = classify_form(parse_form_html(html, page_origin), FormContext(page_origin=page_origin))
    values = fill_values(verdicts, profile)
    return [{"ref": v.ref, "kind": v.kind, "source": v.source, "sensitive": v.sensitive,
             "value": None if v.sensitive else values.get(v.ref)} for v in verdicts]

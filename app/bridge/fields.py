"""Values that describe form fields: what the browser (or a saved page) reports, and what we decide.

`FieldDescriptor` is the wire format the extension's content script sends (validated with
pydantic: the host never trusts a loose dict). `Classification` is the classifier's verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Fields whose values are secrets or identity documents: never filled, never logged, whatever
# a message claims. Kinds are WHATWG autocomplete field names.
SENSITIVE_KINDS: frozenset[str] = frozenset(
    {
        "current-password",
        "new-password",
        "one-time-code",
        "username",
        "webauthn",
        "cc-name",
        "cc-given-name",
        "cc-additional-name",
        "cc-family-name",
        "cc-number",
        "cc-exp",
        "cc-exp-month",
        "cc-exp-year",
        "cc-csc",
        "cc-type",
        "transaction-currency",
        "transaction-amount",
    }
)

# WHATWG autocomplete field names memex knows how to fill (plus "freetext" for drafts).
FILLABLE_KINDS: frozenset[str] = frozenset(
    {
        "name",
        "honorific-prefix",
        "given-name",
        "additional-name",
        "family-name",
        "honorific-suffix",
        "nickname",
        "organization-title",
        "organization",
        "street-address",
        "address-line1",
        "address-line2",
        "address-line3",
        "address-level4",
        "address-level3",
        "address-level2",
        "address-level1",
        "country",
        "country-name",
        "postal-code",
        "language",
        "bday",
        "bday-day",
        "bday-month",
        "bday-year",
        "sex",
        "url",
        "photo",
        "email",
        "impp",
        "tel",
        "tel-country-code",
        "tel-national",
        "tel-area-code",
        "tel-local",
        "tel-local-prefix",
        "tel-local-suffix",
        "tel-extension",
    }
)

# Card kinds: classified (so a plan can show them) but, being sensitive, never given a value.
CARD_KINDS: frozenset[str] = frozenset(k for k in SENSITIVE_KINDS if k.startswith("cc-"))

FREETEXT = "freetext"
MAX_OPTIONS = 400


class FieldDescriptor(BaseModel):
    """One form control as the content script (or the HTML analyzer) sees it."""

    model_config = ConfigDict(extra="ignore", str_max_length=2000)

    ref: str = Field(max_length=200)
    tag: str = "input"
    type: str = "text"
    id: str = ""
    name: str = ""
    autocomplete: str = ""
    label: str = ""
    aria_label: str = ""
    aria_labelledby: str = ""
    placeholder: str = ""
    title: str = ""
    nearby: str = ""
    visible: bool = True
    opacity: float = 1.0
    width: float = 10.0
    height: float = 10.0
    readonly: bool = False
    disabled: bool = False
    aria_hidden: bool = False
    tabindex: int | None = None
    frame_origin: str | None = None
    maxlength: int | None = None
    inputmode: str = ""
    # select options as (value, text) pairs; enough to tell a month list from a state list
    options: list[tuple[str, str]] = Field(default_factory=list)
    group: str = ""  # the form (or form-like block) the field belongs to
    context: str = ""  # fieldset legend / nearest heading above the field
    lang: str = ""  # the document's language (html lang)

    @field_validator("options", mode="before")
    @classmethod
    def _cap_options(cls, value: Any) -> Any:
        # a page may carry thousands of options: keep the first ones, short, instead of refusing
        if not isinstance(value, list):
            return []
        out = []
        for item in value[:MAX_OPTIONS]:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                out.append((str(item[0])[:120], str(item[1])[:120]))
        return out


@dataclass(frozen=True)
class Classification:
    """The verdict for one field. `kind` is None when the field must not be filled."""

    ref: str
    kind: str | None
    source: str
    sensitive: bool = False
    section: str | None = None
    reason: str = ""
    # what the field looked like (maxlength, options): values.py formats for it; never serialized
    descriptor: FieldDescriptor | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "kind": self.kind,
            "source": self.source,
            "sensitive": self.sensitive,
            "section": self.section,
        }


@dataclass(frozen=True)
class FormContext:
    """Where the form lives: the top-level page origin (None for a local file)."""

    page_origin: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

"""Profile values for classified fields (profile keys are WHATWG autocomplete names).

A kind missing from the profile may be derived from others (name <- given + family,
address-line1 <- first line of street-address, tel-area-code <- tel, bday-month <- bday, ...):
a registry of small functions. The value is then formatted for the field (formats.py): its
part of a phone or a date, a select's matching option, what fits its maxlength. A profile key
prefixed with a section ("shipping street-address") is used for fields of that block first.
Sensitive kinds and freetext never get a value here, whatever the profile holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from app.bridge.fields import FREETEXT, SENSITIVE_KINDS, Classification, FieldDescriptor
from app.bridge.formats import date_part_value, format_value, phone_part

Derivation = Callable[[Mapping[str, str]], str | None]
DERIVATIONS: dict[str, Derivation] = {}


def derives(*kinds: str) -> Callable[[Derivation], Derivation]:
    def register(fn: Derivation) -> Derivation:
        for kind in kinds:
            DERIVATIONS[kind] = fn
        return fn

    return register


def _lines(p: Mapping[str, str]) -> list[str]:
    return [
        ln.strip()
        for ln in p.get("street-address", "").replace(",", "\n").splitlines()
        if ln.strip()
    ]


@derives("name")
def _name(p: Mapping[str, str]) -> str | None:
    parts = [p.get(k, "") for k in ("given-name", "additional-name", "family-name")]
    return " ".join(x for x in parts if x) or None


@derives("given-name")
def _given(p: Mapping[str, str]) -> str | None:
    full = p.get("name", "").split()
    return full[0] if len(full) >= 2 else None


@derives("family-name")
def _family(p: Mapping[str, str]) -> str | None:
    full = p.get("name", "").split()
    return full[-1] if len(full) >= 2 else None


@derives("street-address")
def _street(p: Mapping[str, str]) -> str | None:
    lines = [p.get(k, "") for k in ("address-line1", "address-line2", "address-line3")]
    return "\n".join(x for x in lines if x) or None


@derives("address-line1")
def _line1(p: Mapping[str, str]) -> str | None:
    lines = _lines(p)
    return lines[0] if lines else None


@derives("address-line2")
def _line2(p: Mapping[str, str]) -> str | None:
    lines = _lines(p)
    return lines[1] if len(lines) > 1 and "address-line1" not in p else None


@derives("address-line3")
def _line3(p: Mapping[str, str]) -> str | None:
    lines = _lines(p)
    return ", ".join(lines[2:]) if len(lines) > 2 and "address-line1" not in p else None


@derives("country")
def _country(p: Mapping[str, str]) -> str | None:
    return p.get("country-name") or None


@derives("country-name")
def _country_name(p: Mapping[str, str]) -> str | None:
    return p.get("country") or None


@derives("tel-national")
def _tel_national(p: Mapping[str, str]) -> str | None:
    return phone_part("tel-national", p["tel"], None) if p.get("tel") else None


PHONE_PARTS = (
    "tel-country-code",
    "tel-area-code",
    "tel-local",
    "tel-local-prefix",
    "tel-local-suffix",
    "tel-extension",
)
DATE_PARTS = ("bday-day", "bday-month", "bday-year")


def _base(kind: str, profile: Mapping[str, str]) -> str | None:
    value = profile.get(kind)
    if value:
        return value
    derive = DERIVATIONS.get(kind)
    return derive(profile) if derive else None


def value_for(
    kind: str | None,
    profile: Mapping[str, str],
    descriptor: FieldDescriptor | None = None,
    section: str | None = None,
) -> str | None:
    """The value to fill for `kind`, or None. Never a value for sensitive kinds or freetext."""
    if kind is None or kind == FREETEXT or kind in SENSITIVE_KINDS:
        return None
    profile = _for_section(profile, section)
    if kind in PHONE_PARTS and not profile.get(kind):
        tel = profile.get("tel")
        return phone_part(kind, tel, descriptor) if tel else None
    if kind in DATE_PARTS and not profile.get(kind):
        bday = profile.get("bday")
        return date_part_value(kind, bday, descriptor) if bday else None
    value = _base(kind, profile)
    return None if value is None else format_value(kind, value, descriptor)


def _for_section(profile: Mapping[str, str], section: str | None) -> Mapping[str, str]:
    if not section:
        return profile
    word = section.split("-")[0] if not section.startswith("section-") else section
    prefix = f"{word} "
    scoped = {k[len(prefix) :]: v for k, v in profile.items() if k.startswith(prefix) and v}
    return {**profile, **scoped} if scoped else profile


def fill_values(verdicts: Iterable[Classification], profile: Mapping[str, str]) -> dict[str, str]:
    """ref -> value for every non-sensitive classified field the profile can fill."""
    safe = {k: v for k, v in profile.items() if k.split(" ")[-1] not in SENSITIVE_KINDS}
    out: dict[str, str] = {}
    for v in verdicts:
        if v.sensitive or v.kind in SENSITIVE_KINDS:
            continue
        value = value_for(v.kind, safe, v.descriptor, v.section)
        if value is not None:
            out[v.ref] = value
    return out

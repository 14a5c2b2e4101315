"""Profile values for classified fields (profile keys are WHATWG autocomplete names).

A kind missing from the profile may be derived from others (name <- given + family,
address-line1 <- first line of street-address, ...): a registry of small functions.
Sensitive kinds and freetext never get a value here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from app.bridge.fields import FREETEXT, SENSITIVE_KINDS, Classification

Derivation = Callable[[Mapping[str, str]], str | None]
DERIVATIONS: dict[str, Derivation] = {}


def derives(kind: str) -> Callable[[Derivation], Derivation]:
    def register(fn: Derivation) -> Derivation:
        DERIVATIONS[kind] = fn
        return fn
    return register


def _lines(p: Mapping[str, str]) -> list[str]:
    return [ln.strip() for ln in p.get("street-address", "").replace(",", "\n").splitlines() if ln.strip()]


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


@derives("country")
def _country(p: Mapping[str, str]) -> str | None:
    return p.get("country-name") or None


@derives("country-name")
def _country_name(p: Mapping[str, str]) -> str | None:
    return p.get("country") or None


@derives("tel-national")
def _tel_national(p: Mapping[str, str]) -> str | None:
    return p.get("tel") or None


def value_for(kind: str | None, profile: Mapping[str, str]) -> str | None:
    """The value to fill for `kind`, or None. Never a value for sensitive kinds or freetext."""
    if kind is None or kind == FREETEXT or kind in SENSITIVE_KINDS:
        return None
    value = profile.get(kind)
    if value:
        return value
    derive = DERIVATIONS.get(kind)
    return derive(profile) if derive else None


def fill_values(verdicts: Iterable[Classification], profile: Mapping[str, str]) -> dict[str, str]:
    """ref -> value for every non-sensitive classified field the profile can fill."""
    safe = {k: v for k, v in profile.items() if k not in SENSITIVE_KINDS}
    out: dict[str, str] = {}
    for v in verdicts:
        if v.sensitive:
            continue
        value = value_for(v.kind, safe)
        if value is not None:
            out[v.ref] = value
    return out

"""A stored profile value cut and formatted for the part a field asks for, or for a select's
options.

"+1 415 555 0100 x12" becomes "415" / "555" / "0100" / "12" for a four-box phone; "1990-07-04"
becomes "04" / "07" / "1990" (or "July" for a month select); "CA" matches a state select whose
options say "California"; "DE" a country select in German ("Deutschland") or by code. Countries
and regions come from places.json next to this module. A value that does not fit (longer than
the field's maxlength, no option that matches) is not filled: a truncated phone number is worse
than an empty box.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.bridge.fields import FieldDescriptor
from app.bridge.keywords import tokens

# ITU calling codes of one and two digits; every other code has three.
_CC1 = {"1", "7"}
_CC2 = {
    "20",
    "27",
    "30",
    "31",
    "32",
    "33",
    "34",
    "36",
    "39",
    "40",
    "41",
    "43",
    "44",
    "45",
    "46",
    "47",
    "48",
    "49",
    "51",
    "52",
    "53",
    "54",
    "55",
    "56",
    "57",
    "58",
    "60",
    "61",
    "62",
    "63",
    "64",
    "65",
    "66",
    "81",
    "82",
    "84",
    "86",
    "90",
    "91",
    "92",
    "93",
    "94",
    "95",
    "98",
}
_EXT = re.compile(r"\s*(?:x|ext\.?|extension|durchwahl|ramal|poste)\s*(\d{1,6})\s*$", re.IGNORECASE)
MONTH_NAMES: dict[str, tuple[str, ...]] = {
    "en": (
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ),
    "de": (
        "januar",
        "februar",
        "marz",
        "april",
        "mai",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "dezember",
    ),
    "fr": (
        "janvier",
        "fevrier",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "aout",
        "septembre",
        "octobre",
        "novembre",
        "decembre",
    ),
    "es": (
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
    "pt": (
        "janeiro",
        "fevereiro",
        "marco",
        "abril",
        "maio",
        "junho",
        "julho",
        "agosto",
        "setembro",
        "outubro",
        "novembro",
        "dezembro",
    ),
    "it": (
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ),
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
}


@dataclass(frozen=True)
class Phone:
    country_code: str  # digits, "" when the stored number has none
    national: str  # digits
    extension: str


def split_phone(value: str) -> Phone | None:
    ext = ""
    m = _EXT.search(value)
    if m:
        ext, value = m.group(1), value[: m.start()]
    digits = re.sub(r"\D", "", value)
    if not digits:
        return None
    stripped = value.strip()
    if stripped.startswith("00"):
        stripped, digits = "+" + stripped[2:], digits[2:]
    if stripped.startswith("+"):
        for n, codes in ((1, _CC1), (2, _CC2)):
            if digits[:n] in codes:
                return Phone(digits[:n], digits[n:], ext)
        return Phone(digits[:3], digits[3:], ext)
    if len(digits) == 11 and digits.startswith("1"):
        return Phone("1", digits[1:], ext)
    return Phone("", digits, ext)


def _nanp(p: Phone) -> bool:
    return len(p.national) == 10 and p.country_code in ("", "1")


def phone_part(kind: str, value: str, d: FieldDescriptor | None) -> str | None:
    p = split_phone(value)
    if p is None:
        return None
    national = p.national.lstrip("0") if p.country_code else p.national
    area_len = 3 if _nanp(p) or d is None or not d.maxlength else min(d.maxlength, 5)
    area, local = national[:area_len], national[area_len:]
    prefix_len = 3 if len(local) == 7 else len(local) // 2
    parts = {
        "tel-country-code": f"+{p.country_code}"
        if p.country_code
        else ("+1" if _nanp(p) else None),
        "tel-national": p.national or None,
        "tel-area-code": area or None,
        "tel-local": local or None,
        "tel-local-prefix": local[:prefix_len] or None,
        "tel-local-suffix": local[prefix_len:] or None,
        "tel-extension": p.extension or None,
    }
    return parts.get(kind)


def fit_phone(value: str, d: FieldDescriptor | None) -> str | None:
    """A whole phone number for a field that may be short: the stored form, else +digits, else
    the national digits; None when even those do not fit."""
    if d is None or d.maxlength is None or len(value) <= d.maxlength:
        return value
    p = split_phone(value)
    if p is None:
        return None
    for candidate in (f"+{p.country_code}{p.national}" if p.country_code else "", p.national):
        if candidate and len(candidate) <= d.maxlength:
            return candidate
    return None


def parse_date(value: str) -> tuple[int, int, int] | None:
    """(year, month, day) from ISO 2001-02-03, or 03.02.2001 / 03/02/2001 (day first)."""
    m = re.match(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})", value)
    if m:
        y, mo, dd = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        m = re.match(r"^\s*(\d{1,2})[./-](\d{1,2})[./-](\d{4})\s*$", value)
        if not m:
            return None
        dd, mo, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
    return (y, mo, dd) if 1 <= mo <= 12 and 1 <= dd <= 31 else None


def date_part_value(kind: str, value: str, d: FieldDescriptor | None) -> str | None:
    date = parse_date(value)
    if date is None:
        return None
    y, mo, dd = date
    if kind.endswith("-year"):
        return str(y)[-2:] if d is not None and d.maxlength == 2 else str(y)
    number = mo if kind.endswith("-month") else dd
    if d is not None and d.tag == "select":
        names = (
            [MONTH_NAMES[lang][mo - 1] for lang in MONTH_NAMES] if kind.endswith("-month") else []
        )
        return match_option([f"{number:02d}", str(number), *names], d.options, prefix=bool(names))
    return f"{number:02d}"


@lru_cache(maxsize=1)
def _places() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (Path(__file__).parent / "places.json").read_text(encoding="utf-8")
    )
    return data


def _norm(text: str) -> str:
    return " ".join(tokens(text))


def country_entry(value: str) -> dict[str, Any] | None:
    want = _norm(value)
    for c in _places()["countries"]:
        names = [c["code"], c["alpha3"], *c["names"].values(), *c["aliases"]]
        if want in {_norm(n) for n in names}:
            return c
    return None


def country_candidates(value: str) -> list[str]:
    c = country_entry(value)
    if c is None:
        return [value]
    return [c["code"], c["alpha3"], *c["names"].values(), *c["aliases"], value]


def country_name(value: str, lang: str) -> str:
    c = country_entry(value)
    if c is None or len(value.strip()) > 3:
        return value  # already a name (or unknown): keep the user's own spelling
    return str(c["names"].get((lang or "en")[:2].lower(), c["names"]["en"]))


def region_candidates(value: str) -> list[str]:
    want = _norm(value)
    for regions in _places()["regions"].values():
        for r in regions:
            if want in (_norm(r["code"]), _norm(r["name"])):
                return [r["code"], r["name"], value]
    return [value]


def match_option(
    candidates: list[str], options: list[tuple[str, str]], *, prefix: bool = False
) -> str | None:
    """The value of the first option whose value or text equals a candidate (folded); with
    `prefix`, an option text starting with a candidate's first three letters ("Jul" for July)."""
    wanted = [_norm(c) for c in candidates if c and _norm(c)]
    for want in wanted:
        for value, text in options:
            if want in (_norm(value), _norm(text)):
                return value or text
    if prefix:
        for want in wanted:
            if len(want) >= 3 and not want.isdigit():
                for value, text in options:
                    t = _norm(text)
                    if len(t) >= 3 and want.startswith(t[:3]) and not t.isdigit():
                        return value or text
    return None


Formatter = Callable[[str, str, FieldDescriptor | None], str | None]
FORMATTERS: dict[str, Formatter] = {}


def formats(*kinds: str) -> Callable[[Formatter], Formatter]:
    def register(fn: Formatter) -> Formatter:
        for k in kinds:
            FORMATTERS[k] = fn
        return fn

    return register


@formats("tel")
def _tel(kind: str, value: str, d: FieldDescriptor | None) -> str | None:
    return fit_phone(value, d)


@formats("country", "country-name")
def _country(kind: str, value: str, d: FieldDescriptor | None) -> str | None:
    if d is not None and d.tag == "select":
        return match_option(country_candidates(value), d.options)
    return country_name(value, d.lang if d is not None else "en")


@formats("address-level1")
def _region(kind: str, value: str, d: FieldDescriptor | None) -> str | None:
    if d is not None and d.tag == "select":
        return match_option(region_candidates(value), d.options)
    return value


@formats("postal-code")
def _postal(kind: str, value: str, d: FieldDescriptor | None) -> str | None:
    if d is not None and d.maxlength and len(value) > d.maxlength:
        head = value.split("-")[0].strip()  # ZIP+4 in a five-digit box
        return head if len(head) <= d.maxlength else None
    return value


@formats("bday")
def _bday(kind: str, value: str, d: FieldDescriptor | None) -> str | None:
    date = parse_date(value)
    if d is not None and d.type == "date":  # a date input takes ISO only
        return f"{date[0]:04d}-{date[1]:02d}-{date[2]:02d}" if date else None
    return value


@formats("street-address")
def _street(kind: str, value: str, d: FieldDescriptor | None) -> str | None:
    if d is not None and d.tag == "textarea":
        return value
    return ", ".join(ln.strip() for ln in value.splitlines() if ln.strip())


def format_value(kind: str, value: str, d: FieldDescriptor | None) -> str | None:
    """The stored `value` for a field of `kind` (described by `d`, when known)."""
    fmt = FORMATTERS.get(kind)
    out = fmt(kind, value, d) if fmt else value
    if out is None or d is None:
        return out
    if d.tag == "select" and kind not in FORMATTERS and d.options:
        return match_option([out], d.options)
    if d.maxlength is not None and len(out) > d.maxlength:
        return None
    return out

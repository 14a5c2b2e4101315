"""Form-level pass over classified fields: runs of fields that together hold one value.

A phone split over three or four boxes, a date of birth over three selects, a card expiry over
a month and a year select, a street address over two lines. Neighbours decide what one field
alone cannot: box sizes (maxlength), option lists, the order of the boxes, and whether the
next field is a second line. Each refinement is a small rule in a registry, run in order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from app.bridge.fields import SENSITIVE_KINDS, Classification, FieldDescriptor, FormContext
from app.bridge.keywords import PART_PHRASES, find_phrases, tokens

Pair = tuple[FieldDescriptor, Classification]
Refinement = Callable[[list[Pair], FormContext], None]
REFINEMENTS: dict[str, Refinement] = {}

TEL_PARTS = (
    "tel-country-code",
    "tel-area-code",
    "tel-local-prefix",
    "tel-local-suffix",
    "tel-extension",
    "tel-local",
    "tel-national",
)
TEL_FAMILY = frozenset(("tel",) + TEL_PARTS)
_MONTHS = frozenset(
    tokens(
        "january february march april may june july august september october november december "
        "jan feb mar apr jun jul aug sep sept oct nov dec "
        "januar februar marz juni juli oktober dezember "
        "janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre "
        "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre "
        "janeiro fevereiro marco maio junho julho setembro outubro novembro dezembro "
        "gennaio febbraio aprile maggio giugno luglio settembre ottobre dicembre "
        "januari februari maart mei augustus"
    )
)
_PLUS_CODE = re.compile(r"^\+?\d{1,4}$")


def refinement(name: str) -> Callable[[Refinement], Refinement]:
    def register(fn: Refinement) -> Refinement:
        REFINEMENTS[name] = fn
        return fn

    return register


def refine_parts(
    descriptors: list[FieldDescriptor], verdicts: list[Classification], ctx: FormContext
) -> list[Classification]:
    """The verdicts with parts resolved; fields keep their order, excluded fields are untouched."""
    out = list(verdicts)
    index = {v.ref: i for i, v in enumerate(verdicts)}
    groups: dict[str, list[Pair]] = {}
    for d, v in zip(descriptors, verdicts, strict=True):
        if v.source.startswith("excluded:"):
            continue  # hidden, foreign, honeypot...: not a neighbour a person sees
        groups.setdefault(d.group, []).append((d, v))
    for pairs in groups.values():
        for rule in REFINEMENTS.values():
            rule(pairs, ctx)
        for _d, v in pairs:
            out[index[v.ref]] = v
    return out


def _set(pairs: list[Pair], i: int, kind: str, how: str) -> None:
    d, v = pairs[i]
    if v.source == "autocomplete" or v.kind == kind:
        return
    pairs[i] = (
        d,
        replace(
            v,
            kind=kind,
            source=f"{v.source}+{how}" if v.kind else how,
            sensitive=v.sensitive or kind in SENSITIVE_KINDS,
        ),
    )


def _unlabelled(d: FieldDescriptor) -> bool:
    return not (d.label or d.aria_label or d.aria_labelledby or d.placeholder)


# --- phones ----------------------------------------------------------------------------------


def _country_code_select(d: FieldDescriptor) -> bool:
    opts = [t or v for v, t in d.options if (t or v).strip()]
    plus = sum(1 for o in opts if "+" in o and any(ch.isdigit() for ch in o))
    return d.tag == "select" and len(opts) >= 3 and plus >= len(opts) * 0.6


def _tel_candidate(d: FieldDescriptor, v: Classification) -> bool:
    """An unclassified box right after a phone box: the next part of the same number (a small
    box, or an unlabelled one typed as a phone)."""
    if v.kind is not None or d.tag != "input" or d.type.lower() not in ("tel", "text", "number"):
        return False
    small = d.maxlength is not None and d.maxlength <= 4
    return small or (_unlabelled(d) and d.type.lower() in ("tel", "number"))


@refinement("country-code-select")
def _code_selects(pairs: list[Pair], ctx: FormContext) -> None:
    for i, (d, v) in enumerate(pairs):
        if _country_code_select(d) and (
            v.kind in (None, "tel", "country")
            and i + 1 < len(pairs)
            and pairs[i + 1][1].kind in TEL_FAMILY
        ):
            _set(pairs, i, "tel-country-code", "options")


def _assign_run(lengths: list[int | None], explicit: list[str | None]) -> list[str] | None:
    n = len(lengths)
    if n == 2:
        first = lengths[0]
        if explicit[0] == "tel-area-code" or (first == 3 and explicit[0] != "tel-country-code"):
            return ["tel-area-code", "tel-local"]
        if explicit[0] == "tel-country-code" or (first is not None and first <= 4):
            return ["tel-country-code", "tel-national"]
        return None  # a whole number and something else: nothing says it is split
    if n == 3:
        if lengths[0] is not None and lengths[0] <= 2 or explicit[0] == "tel-country-code":
            return ["tel-country-code", "tel-area-code", "tel-local"]
        return ["tel-area-code", "tel-local-prefix", "tel-local-suffix"]
    if n == 4:
        if (
            explicit[3] == "tel-extension"
            or (lengths[:3] == [3, 3, 4])
            or explicit[0] == "tel-area-code"
        ):
            return ["tel-area-code", "tel-local-prefix", "tel-local-suffix", "tel-extension"]
        return ["tel-country-code", "tel-area-code", "tel-local-prefix", "tel-local-suffix"]
    return [
        "tel-country-code",
        "tel-area-code",
        "tel-local-prefix",
        "tel-local-suffix",
        "tel-extension",
    ][:n] + ["tel-extension"] * max(0, n - 5)


def _part_named(d: FieldDescriptor) -> str | None:
    """The phone part a box's visible words name ("Ext." on name=phone4), if any."""
    from app.bridge.keywords import kind_phrases

    phrases = kind_phrases()
    words = tokens(" ".join((d.label, d.aria_label, d.placeholder, d.nearby)))
    hits = [
        k
        for k in TEL_PARTS
        if k not in ("tel-local", "tel-national") and find_phrases(words, phrases[k])
    ]
    return hits[0] if len(hits) == 1 else None


def _is_split(run: list[Pair]) -> bool:
    if any(v.kind in TEL_PARTS and v.kind not in ("tel-extension", "tel-national") for _, v in run):
        return True
    later = run[1:]
    if all(_unlabelled(d) or v.kind is None for d, v in later):
        return True
    short = [d.maxlength for d, _ in run[:-1]]
    return all(m is not None and m <= 4 for m in short)


@refinement("phone-parts")
def _phone_parts(pairs: list[Pair], ctx: FormContext) -> None:
    i = 0
    while i < len(pairs):
        d, v = pairs[i]
        if v.kind not in TEL_FAMILY or v.kind == "tel-extension":
            i += 1
            continue
        j = i + 1
        while j < len(pairs) and j - i < 5:
            dj, vj = pairs[j]
            if vj.kind in TEL_FAMILY or _tel_candidate(dj, vj):
                j += 1
                continue
            break
        run = pairs[i:j]
        if len(run) >= 2 and _is_split(run):
            lengths = [dd.maxlength for dd, _ in run]
            explicit = [vv.kind if vv.kind in TEL_PARTS else _part_named(dd) for dd, vv in run]
            if explicit[-1] == "tel-extension" and len(run) >= 3:
                head = _assign_run(lengths[:-1], explicit[:-1])
                kinds = None if head is None else head + ["tel-extension"]
            else:
                kinds = _assign_run(lengths, explicit)
            for k, kind in enumerate(kinds or []):
                if pairs[i + k][1].kind != "tel-extension" or kind == "tel-extension":
                    _set(pairs, i + k, kind, "phone-parts")
        i = j


# --- dates: birthday and card expiry ---------------------------------------------------------


def date_part(d: FieldDescriptor) -> str | None:
    """ "day" | "month" | "year" from the field's options, its own words or its size."""
    if d.tag == "select" and d.options:
        texts = [(t or v).strip().lower() for v, t in d.options if (t or v).strip()]
        nums = [int(x) for x in (re.sub(r"\D", "", t) for t in texts) if x and len(x) <= 4]
        words = sum(1 for t in texts if set(tokens(t)) & _MONTHS)
        if texts and words >= len(texts) * 0.5:
            return "month"
        if nums and len(nums) >= len(texts) * 0.6:
            hi, lo = max(nums), min(nums)
            if hi >= 1900 or (
                len(nums) >= 5
                and all(10 <= n <= 99 for n in nums)
                and lo >= 10
                and hi - lo < 40
                and len(set(nums)) == len(nums)
                and nums == sorted(nums)
                and hi > 31
            ):
                return "year"
            if hi <= 12 and len(nums) >= 10:
                return "month"
            if hi <= 31 and len(nums) >= 28:
                return "day"
    for text in (d.label, d.aria_label, d.placeholder, d.name, d.id):
        toks = tokens(text)
        hits = [p for p, phrases in PART_PHRASES.items() if find_phrases(toks, phrases)]
        if len(hits) == 1:
            return hits[0]
    if d.maxlength == 4 and d.tag == "input":
        return "year"
    return None


_PART_KINDS = {
    "bday": {"day": "bday-day", "month": "bday-month", "year": "bday-year"},
    "cc-exp": {"month": "cc-exp-month", "year": "cc-exp-year"},
}
_FAMILY = {
    "bday": ("bday", "bday-day", "bday-month", "bday-year"),
    "cc-exp": ("cc-exp", "cc-exp-month", "cc-exp-year"),
}


def _date_runs(pairs: list[Pair], family: str) -> None:
    kinds = _FAMILY[family]
    parts = _PART_KINDS[family]
    i = 0
    while i < len(pairs):
        d, v = pairs[i]
        if v.kind not in kinds:
            i += 1
            continue
        j = i + 1
        limit = 3 if family == "bday" else 2
        while j < len(pairs) and j - i < limit:
            dj, vj = pairs[j]
            if vj.kind in kinds or (vj.kind is None and date_part(dj) is not None):
                j += 1
                continue
            break
        run = list(range(i, j))
        found = {k: date_part(pairs[k][0]) for k in run}
        if len(run) == 1:
            part = found[i]
            if d.tag == "select" and part in parts:
                _set(pairs, i, parts[part], "date-part")
            elif (
                v.kind == family and part in parts and d.maxlength is not None and d.maxlength <= 4
            ):
                _set(pairs, i, parts[part], "date-part")
        else:
            order = [
                p
                for p in (("day", "month", "year") if family == "bday" else ("month", "year"))
                if p in parts
            ]
            if family == "bday" and (d.lang or "").lower() in ("en-us", "en"):
                order = ["month", "day", "year"]
            taken = {p for p in found.values() if p in parts}
            missing = [p for p in order if p not in taken]
            for k in run:
                part = found[k] if found[k] in parts else (missing.pop(0) if missing else None)
                if part is not None:
                    _set(pairs, k, parts[part], "date-part")
        i = j


def _words_of(d: FieldDescriptor) -> tuple[str, ...]:
    return tokens(" ".join((d.label, d.aria_label, d.aria_labelledby, d.nearby, d.context)))


@refinement("date-parts-from-context")
def _unnamed_dates(pairs: list[Pair], ctx: FormContext) -> None:
    # "Birthday" above three selects labelled only Month / Day / Year; a month and a year
    # select right after a card number: the run's neighbourhood says whose date it is.
    from app.bridge.keywords import kind_phrases

    phrases = kind_phrases()
    i = 0
    while i < len(pairs):
        if pairs[i][1].kind is not None or date_part(pairs[i][0]) is None:
            i += 1
            continue
        j = i
        while (
            j < len(pairs)
            and j - i < 3
            and pairs[j][1].kind is None
            and date_part(pairs[j][0]) is not None
        ):
            j += 1
        words = _words_of(pairs[i][0])
        prev = pairs[i - 1][1].kind if i > 0 else None
        family = None
        if find_phrases(words, phrases["bday"]):
            family = "bday"
        elif (prev or "").startswith("cc-") or find_phrases(words, phrases["cc-exp"]):
            family = "cc-exp"
        if family is not None and (j - i >= 2 or family == "cc-exp"):
            for k in range(i, j):
                part = date_part(pairs[k][0])
                if part in _PART_KINDS[family]:
                    _set(pairs, k, _PART_KINDS[family][part], "date-context")
        i = max(j, i + 1)


@refinement("date-parts")
def _dates(pairs: list[Pair], ctx: FormContext) -> None:
    _date_runs(pairs, "bday")
    _date_runs(pairs, "cc-exp")


# --- street address over lines ---------------------------------------------------------------


@refinement("address-lines")
def _address_lines(pairs: list[Pair], ctx: FormContext) -> None:
    for i, (d, v) in enumerate(pairs):
        if v.kind != "street-address" or d.tag == "textarea":
            continue
        nxt = [vv.kind for _, vv in pairs[i + 1 : i + 3]]
        if "address-line2" in nxt:
            _set(pairs, i, "address-line1", "address-lines")
        elif (
            i + 1 < len(pairs)
            and nxt
            and nxt[0] is None
            and _unlabelled(pairs[i + 1][0])
            and pairs[i + 1][0].tag == "input"
        ):
            _set(pairs, i, "address-line1", "address-lines")
            _set(pairs, i + 1, "address-line2", "address-lines")


# --- a name next to a card number is the card holder ------------------------------------------

_ADDRESS_KINDS = frozenset(
    {
        "street-address",
        "address-line1",
        "address-line2",
        "address-level2",
        "address-level1",
        "postal-code",
        "country",
    }
)


@refinement("card-holder")
def _card_holder(pairs: list[Pair], ctx: FormContext) -> None:
    if any(v.kind in _ADDRESS_KINDS for _, v in pairs):
        return
    for i, (d, v) in enumerate(pairs):
        if v.kind != "name" or v.source == "autocomplete":
            continue
        near = [pairs[k][1].kind for k in (i - 1, i + 1) if 0 <= k < len(pairs)]
        if "cc-number" in near:
            pairs[i] = (
                d,
                replace(v, kind="cc-name", source=f"{v.source}+card-holder", sensitive=True),
            )

"""Sections: which block of a page a field belongs to (billing, shipping, contact, payment).

In order of trust: the WHATWG autocomplete section (`section-*`, `shipping`, `billing`); the
field's own name or id ("billingZip"); its fieldset legend or the heading above it; the
names of its containers (`<fieldset name=shipping>`, custom elements such as
`<shipping-address>`). Fields with no such word inherit the block they sit in; a block ends
where a kind repeats (a second address form on the same page). The fill plan lists which
block gets which values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from app.bridge.fields import CARD_KINDS, Classification, FieldDescriptor
from app.bridge.keywords import SECTION_PHRASES, find_phrases, tokens

SECTION_ORDER = ("billing", "shipping", "contact")
_ADDRESS = frozenset(
    {
        "street-address",
        "address-line1",
        "address-line2",
        "address-line3",
        "address-level1",
        "address-level2",
        "address-level3",
        "postal-code",
        "country",
        "country-name",
    }
)
_REPEATABLE = frozenset({"tel", "email", "freetext"})  # a phone and a mobile sit in one block


def section_word(text: str) -> str | None:
    """billing / shipping / contact when the text names one (longest phrase wins)."""
    toks = tokens(text)
    best: tuple[int, str] | None = None
    for name in SECTION_ORDER:
        n = find_phrases(toks, SECTION_PHRASES[name])
        if n and (best is None or n > best[0]):
            best = (n, name)
    return best[1] if best else None


def _hint(d: FieldDescriptor, v: Classification) -> str | None:
    if v.section:
        for word in ("billing", "shipping"):
            if word in v.section.split():
                return word
        return v.section
    for text in (d.name, d.id, d.context):
        found = section_word(text)
        if found:
            return found
    return None


def assign_sections(
    descriptors: list[FieldDescriptor], verdicts: list[Classification]
) -> list[Classification]:
    """Each classified field gets its block's name; excluded fields keep section None."""
    out = list(verdicts)
    blocks: list[list[int]] = []
    seen: set[str] = set()
    group: str | None = None
    block_hint: str | None = None
    block_card = False
    for i, (d, v) in enumerate(zip(descriptors, verdicts, strict=True)):
        if v.kind is None:
            continue
        hint = _hint(d, v)
        card = v.kind in CARD_KINDS
        boundary = (
            not blocks
            or d.group != group
            or (v.kind in seen and v.kind not in _REPEATABLE)
            or (hint is not None and block_hint is not None and hint != block_hint)
            or card != block_card
        )
        if boundary:
            blocks.append([])
            seen, group, block_hint, block_card = set(), d.group, hint, card
        elif block_hint is None:
            block_hint = hint
        blocks[-1].append(i)
        seen.add(v.kind)
    used: dict[str, int] = {}
    for block in blocks:
        name = _block_name([descriptors[i] for i in block], [verdicts[i] for i in block])
        used[name] = used.get(name, 0) + 1
        label = name if used[name] == 1 else f"{name}-{used[name]}"
        for i in block:
            own = verdicts[i].section
            out[i] = replace(
                verdicts[i], section=own if own and own.startswith("section-") else label
            )
    return out


def _block_name(ds: list[FieldDescriptor], vs: list[Classification]) -> str:
    votes: dict[str, int] = {}
    for d, v in zip(ds, vs, strict=True):
        hint = _hint(d, v)
        if hint in SECTION_ORDER:
            votes[hint] = votes.get(hint, 0) + 1
    kinds = {v.kind for v in vs}
    if kinds and kinds <= CARD_KINDS | {"cc-name"}:
        return "payment"
    if votes:
        return max(votes, key=lambda k: (votes[k], -SECTION_ORDER.index(k)))
    return "address" if kinds & _ADDRESS else "contact"


def fill_plan(fields: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Blocks in page order: {"section", "fields": [refs], "values": {ref: value}} (values only
    for fields memex would fill; secrets never appear)."""
    plan: list[dict[str, Any]] = []
    for f in fields:
        if f.get("kind") is None:
            continue
        section = str(f.get("section") or "contact")
        if not plan or plan[-1]["section"] != section:
            plan.append({"section": section, "fields": [], "values": {}})
        plan[-1]["fields"].append(f["ref"])
        if f.get("value") is not None and not f.get("sensitive"):
            plan[-1]["values"][f["ref"]] = f["value"]
    return plan

"""Field classification: secrets -> exclusions -> autocomplete -> heuristics -> freetext -> parts.

Every field gets a kind where one can be told, secrets included (cc-number, current-password,
username, ...): those come out `sensitive` and never get a value (values.py refuses them
whatever the kind). Kind None means there is nothing to fill (hidden, honeypot, search box,
read-only, foreign frame, promo code, ...). Each stage is a registry of named rules; the first
verdict wins. A form-level pass (parts.py, sections.py) then turns runs of fields into phone,
date and address parts and tells billing, shipping, contact and payment blocks apart.
The same classifier runs in the native host (for the live browser) and in
`memex autofill analyze` (for saved pages).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from app.bridge.fields import (
    FILLABLE_KINDS,
    FREETEXT,
    SENSITIVE_KINDS,
    Classification,
    FieldDescriptor,
    FormContext,
)
from app.bridge.keywords import (
    HONEYPOT_PHRASES,
    NEW_PASSWORD_PHRASES,
    NOT_PROFILE_PHRASES,
    QUESTION_STARTS,
    SEARCH_PHRASES,
    SENSITIVE_PHRASES,
    PhraseSet,
    find_phrases,
    kind_phrases,
    page_languages,
    starts_with_phrase,
    tokens,
)

OPACITY_FLOOR = 0.7  # KeePassXC's anti-clickjacking floor over the field and its ancestors

Rule = Callable[[FieldDescriptor, FormContext], Classification | None]
EXCLUSION_RULES: dict[str, Rule] = {}
POSITIVE_RULES: dict[str, Rule] = {}


def exclusion(name: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        EXCLUSION_RULES[name] = fn
        return fn

    return register


def positive(name: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        POSITIVE_RULES[name] = fn
        return fn

    return register


def _null(d: FieldDescriptor, reason: str, *, sensitive: bool = False) -> Classification:
    return Classification(d.ref, None, f"excluded:{reason}", sensitive=sensitive, reason=reason)


def _own_texts(d: FieldDescriptor, *, title: bool = True) -> list[str]:
    texts = [d.label, d.aria_label, d.aria_labelledby, d.placeholder, d.name, d.id]
    if title:
        texts.append(d.title)
    return [t for t in texts if t]


def _describing_tokens(d: FieldDescriptor) -> list[tuple[str, ...]]:
    return [tokens(t) for t in _own_texts(d)]


def _any_phrase(token_lists: Iterable[tuple[str, ...]], phrases: PhraseSet) -> bool:
    return any(find_phrases(t, phrases) for t in token_lists)


def _has_visible_label(d: FieldDescriptor) -> bool:
    return bool(d.label or d.aria_label or d.aria_labelledby or d.placeholder)


# --- autocomplete attribute (WHATWG grammar) -----------------------------------------------

_CONTACT_FIELDS = frozenset(
    {
        "tel",
        "tel-country-code",
        "tel-national",
        "tel-area-code",
        "tel-local",
        "tel-local-prefix",
        "tel-local-suffix",
        "tel-extension",
        "email",
        "impp",
    }
)
_CONTACT_HINTS = frozenset({"home", "work", "mobile", "fax", "pager"})
_KNOWN_FIELDS = FILLABLE_KINDS | SENSITIVE_KINDS


@dataclass(frozen=True)
class AutocompleteToken:
    field: str
    section: str | None = None
    mode: str | None = None  # "shipping" | "billing"
    contact: str | None = None  # "home" | "work" | ...
    webauthn: bool = False


def parse_autocomplete(value: str) -> AutocompleteToken | None:
    """Parse an autofill detail token list; None for "on"/"off"/empty/invalid values."""
    toks = value.lower().split()
    if not toks:
        return None
    webauthn = toks[-1] == "webauthn"
    if webauthn:
        toks = toks[:-1]
    if not toks or len(toks) > 4:
        return None
    field = toks[-1]
    if field not in _KNOWN_FIELDS:
        return None
    rest = toks[:-1]
    section = mode = contact = None
    if rest and rest[0].startswith("section-") and len(rest[0]) > len("section-"):
        section = rest.pop(0)
    if rest and rest[0] in ("shipping", "billing"):
        mode = rest.pop(0)
    if rest and rest[0] in _CONTACT_HINTS and field in _CONTACT_FIELDS:
        contact = rest.pop(0)
    if rest:
        return None
    return AutocompleteToken(field, section, mode, contact, webauthn)


def _section(ac: AutocompleteToken | None) -> str | None:
    if ac is None:
        return None
    parts = [p for p in (ac.section, ac.mode) if p]
    return " ".join(parts) or None


# --- secrets: decided before anything else, whatever a later rule would say -----------------


@dataclass(frozen=True)
class _Secret:
    kind: str | None
    source: str
    reason: str


def _password_kind(d: FieldDescriptor, ac: AutocompleteToken | None) -> str:
    if ac is not None and ac.field in ("current-password", "new-password"):
        return ac.field
    own = [
        tokens(t)
        for t in (d.label, d.aria_label, d.aria_labelledby, d.placeholder, d.name, d.id)
        if t
    ]
    return "new-password" if _any_phrase(own, NEW_PASSWORD_PHRASES) else "current-password"


# Keyword categories that make a field secret even against its autocomplete attribute: a
# field labelled "CVC" stays secret if the page claims autocomplete=email.
_STRONG_CARD = ("cc-csc", "cc-number")


def _secret(d: FieldDescriptor, ctx: FormContext) -> _Secret | None:
    ac = parse_autocomplete(d.autocomplete)
    if ac is not None and (ac.field in SENSITIVE_KINDS or ac.webauthn):
        kind = ac.field if ac.field in SENSITIVE_KINDS else None
        return _Secret(kind, "autocomplete", "webauthn" if kind is None else ac.field)
    if d.type.lower() == "password":
        card = _card_secret(d, ctx)
        return card or _Secret(_password_kind(d, ac), "type", "password")
    phrases = kind_phrases()  # every language: a secret in any language stays a secret
    for text in _own_texts(d):
        toks = tokens(text)
        best_kind = max((find_phrases(toks, p) for p in phrases.values()), default=0)
        for reason, cat in SENSITIVE_PHRASES.items():
            n = find_phrases(toks, cat)
            if n and n >= best_kind:  # "pin code" is a postal code, not a PIN
                kind = (
                    _password_kind(d, ac)
                    if reason == "password"
                    else ("one-time-code" if reason == "one-time-code" else None)
                )
                return _Secret(kind, f"keyword:{reason}", reason)
    return (
        _card_secret(d, ctx) if ac is None or ac.field not in FILLABLE_KINDS else _csc_only(d, ctx)
    )


def _card_secret(d: FieldDescriptor, ctx: FormContext) -> _Secret | None:
    # the field's words taken together ("Card type" on name=cc_brand is a card type, not a
    # number); the title alone never makes a billing name a card field
    scores, _ = score_kinds(d, ctx, title=False)
    if not scores:
        return None
    kind = max(scores, key=lambda k: (scores[k], _RANK.get(k, 0)))
    return _Secret(kind, "keyword:payment", kind) if kind in _STRONG_CARD else None


def _csc_only(d: FieldDescriptor, ctx: FormContext) -> _Secret | None:
    secret = _card_secret(d, ctx)
    return secret if secret is not None and secret.kind == "cc-csc" else None


# --- exclusion rules (order matters: cheapest structural checks first) ----------------------

_UNFILLABLE_TYPES = frozenset(
    {"submit", "button", "reset", "image", "file", "checkbox", "radio", "range", "color", "hidden"}
)


@exclusion("hidden")
def _hidden(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    return _null(d, "hidden") if d.type.lower() == "hidden" else None


@exclusion("cross-origin-frame")
def _foreign_frame(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    if d.frame_origin is None or ctx.page_origin is None:
        return None
    return None if d.frame_origin == ctx.page_origin else _null(d, "cross-origin-frame")


@exclusion("unfillable-type")
def _unfillable(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    return _null(d, f"type-{d.type.lower()}") if d.type.lower() in _UNFILLABLE_TYPES else None


@exclusion("invisible")
def _invisible(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    if not d.visible or d.width <= 1 or d.height <= 1 or d.opacity < OPACITY_FLOOR:
        return _null(d, "invisible")
    return None


@exclusion("honeypot")
def _honeypot(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    toks = _describing_tokens(d) + [tokens(d.nearby)]
    if _any_phrase(toks, HONEYPOT_PHRASES):
        return _null(d, "honeypot")
    # aria-hidden + removed from the tab order: a field meant for bots, not people
    if d.aria_hidden and d.tabindex is not None and d.tabindex < 0:
        return _null(d, "honeypot")
    return None


@exclusion("decoy")
def _decoy(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    # Out of the tab order and with nothing a person could read as its label: a field the
    # page keeps for the browser's own autofill or for bots, never one a person types into.
    if d.tabindex is not None and d.tabindex < 0 and not _has_visible_label(d):
        return _null(d, "decoy")
    return None


@exclusion("search")
def _search(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    if d.type.lower() == "search":
        return _null(d, "search")
    own = [tokens(t) for t in (d.name, d.id, d.label, d.aria_label, d.placeholder) if t]
    return _null(d, "search") if _any_phrase(own, SEARCH_PHRASES) else None


@exclusion("readonly")
def _readonly(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    return _null(d, "disabled" if d.disabled else "readonly") if d.readonly or d.disabled else None


# --- positive rules ---------------------------------------------------------------------------


@positive("autocomplete")
def _by_autocomplete(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    ac = parse_autocomplete(d.autocomplete)
    if ac is None or ac.field not in FILLABLE_KINDS:
        return None
    return Classification(d.ref, ac.field, "autocomplete", section=_section(ac))


@positive("input-type-email")
def _by_email_type(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    if d.tag == "input" and d.type.lower() == "email":
        return Classification(d.ref, "email", "type")
    return None


def _is_question(label: str) -> bool:
    toks = tokens(label)
    return bool(toks) and (
        label.rstrip().endswith(("?", "？")) or starts_with_phrase(toks, QUESTION_STARTS)
    )


def _label_text(d: FieldDescriptor) -> str:
    return d.label or d.aria_label or d.aria_labelledby or d.placeholder or d.title


@positive("question")
def _question_textarea(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    # A question in a textarea is freetext even if it mentions a company or a city.
    if d.tag == "textarea" and _is_question(_label_text(d) or d.nearby):
        return Classification(d.ref, FREETEXT, "freetext")
    return None


# Higher first: breaks ties between equally long matches ("Business phone" is tel).
KIND_PRIORITY: tuple[str, ...] = (
    "not-profile",
    "cc-csc",
    "cc-exp-month",
    "cc-exp-year",
    "cc-exp",
    "cc-type",
    "cc-name",
    "cc-number",
    "email",
    "username",
    "tel-extension",
    "tel",
    "tel-country-code",
    "tel-area-code",
    "tel-local-prefix",
    "tel-local-suffix",
    "url",
    "postal-code",
    "bday",
    "address-line3",
    "address-line2",
    "address-line1",
    "address-level3",
    "address-level2",
    "address-level1",
    "country",
    "given-name",
    "additional-name",
    "family-name",
    "organization-title",
    "street-address",
    "organization",
    "sex",
    "language",
    "nickname",
    "honorific-prefix",
    "name",
)
_RANK = {k: len(KIND_PRIORITY) - i for i, k in enumerate(KIND_PRIORITY)}
SIGNAL_WEIGHTS: dict[str, float] = {
    "label": 4,
    "aria_label": 4,
    "aria_labelledby": 4,
    "placeholder": 3,
    "name": 2,
    "id": 2,
    "title": 1,
    "nearby": 2,
}
# Selects only hold what their options say; these kinds have option lists memex can match.
SELECT_KINDS = frozenset(
    {
        "country",
        "address-level1",
        "address-level2",
        "sex",
        "language",
        "bday",
        "bday-day",
        "bday-month",
        "bday-year",
        "honorific-prefix",
        "tel-country-code",
        "cc-exp",
        "cc-exp-month",
        "cc-exp-year",
        "cc-type",
        "not-profile",
    }
)
TEXTAREA_KINDS = frozenset({"street-address", "not-profile"})


@lru_cache(maxsize=64)
def _phrase_tables(lang: str) -> tuple[dict[str, PhraseSet], dict[str, PhraseSet]]:
    """The page's language (with English) first; every language when that finds nothing, since
    pages mix languages and often declare the wrong one."""
    primary = dict(kind_phrases(page_languages(lang)))
    primary["not-profile"] = NOT_PROFILE_PHRASES
    every = dict(kind_phrases())
    every["not-profile"] = NOT_PROFILE_PHRASES
    return primary, every


def _best_kind(toks: tuple[str, ...], table: dict[str, PhraseSet]) -> tuple[str, int] | None:
    best: tuple[int, int, str] | None = None
    for kind, phrases in table.items():
        length = find_phrases(toks, phrases)
        if length and (best is None or (length, _RANK.get(kind, 0)) > best[:2]):
            best = (length, _RANK.get(kind, 0), kind)
    return (best[2], best[0]) if best else None


_PATH_SEP = re.compile(r"[.$\[\]:/]+")
_CAMEL_SEGMENT = re.compile(r"[a-z][A-Z]")


def identifier_tail(identifier: str) -> str:
    """The last segment of a structured name: "passengers[0].firstName" -> "firstName",
    "dwfrm_billing_billingAddress_addressFields_states_stateCode" -> "stateCode". The outer
    segments name the form and the block; the last one names the field."""
    segments = [x for x in _PATH_SEP.split(identifier) if x and not x.isdigit()]
    if len(segments) <= 1:
        parts = identifier.split("_")
        if len(parts) >= 3 and any(_CAMEL_SEGMENT.search(x) for x in parts):
            segments = [x for x in parts if x and not x.isdigit()]
    return segments[-1] if segments else identifier


def score_kinds(
    d: FieldDescriptor, ctx: FormContext, *, title: bool = True
) -> tuple[dict[str, float], dict[str, str]]:
    """kind -> weighted evidence from the field's texts, and the first signal naming each kind."""
    signals = tuple(
        (s, getattr(d, s))
        for s in SIGNAL_WEIGHTS
        if s != "nearby" and getattr(d, s) and (title or s != "title")
    )
    if not (d.label or d.aria_label or d.aria_labelledby) and d.nearby:
        signals += (("nearby", d.nearby),)  # unlabelled field: fall back on the text beside it
    scores, first = _scores(signals, d.lang or str(ctx.extra.get("lang") or ""))
    return dict(scores), dict(first)


@lru_cache(maxsize=4096)
def _scores(
    signals: tuple[tuple[str, str], ...], lang: str
) -> tuple[tuple[tuple[str, float], ...], tuple[tuple[str, str], ...]]:
    primary, every = _phrase_tables(lang)
    scores: dict[str, float] = {}
    first_signal: dict[str, str] = {}
    for signal, text in signals:
        toks = tokens(text)
        hit = None
        if signal in ("name", "id"):
            tail = tokens(identifier_tail(text))
            hit = _best_kind(tail, primary) or _best_kind(tail, every) if tail != toks else None
        hit = hit or _best_kind(toks, primary) or _best_kind(toks, every)
        if hit is None:
            continue
        kind, length = hit
        if signal == "nearby" and kind == "name" and length == 1 and len(toks) > 6:
            continue  # help text ("type the name of the offer") does not name the field
        scores[kind] = scores.get(kind, 0.0) + SIGNAL_WEIGHTS[signal] * (1 + 0.5 * (length - 1))
        first_signal.setdefault(kind, signal)
    return tuple(scores.items()), tuple(first_signal.items())


@positive("heuristics")
def _by_heuristics(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    scores, first_signal = score_kinds(d, ctx)
    if d.tag == "select":
        scores = {k: v for k, v in scores.items() if k in SELECT_KINDS}
    elif d.tag == "textarea":
        scores = {k: v for k, v in scores.items() if k in TEXTAREA_KINDS}
    if not scores:
        return None
    kind = max(scores, key=lambda k: (scores[k], _RANK.get(k, 0)))
    if kind == "not-profile":
        return _null(d, "not-profile")
    for family in SCHEMA_FAMILIES:
        if kind in family and len(family & set(scores)) > 1:
            kind = _schema_kind(d, ctx, family) or kind
    return Classification(
        d.ref, kind, f"heuristic:{first_signal[kind]}", sensitive=kind in SENSITIVE_KINDS
    )


# Kinds of one family that the label and the name/id may disagree on. Label "Shipping address"
# on name=address1, label "Extn." on name=phoneEx: the name is the form's data schema, the label
# only its presentation, so within a family the schema decides (as Firefox's heuristics do).
SCHEMA_FAMILIES: tuple[frozenset[str], ...] = (
    frozenset({"street-address", "address-line1"}),
    frozenset({"tel", "tel-extension"}),
)


def _schema_kind(d: FieldDescriptor, ctx: FormContext, family: frozenset[str]) -> str | None:
    primary, every = _phrase_tables(d.lang or str(ctx.extra.get("lang") or ""))
    for text in (d.name, d.id):
        toks = tokens(text)
        hit = _best_kind(toks, primary) or _best_kind(toks, every)
        if hit and hit[0] in family:
            return hit[0]
    return None


_TYPE_KINDS = {"tel": "tel", "url": "url"}


@positive("input-type")
def _by_type(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    kind = _TYPE_KINDS.get(d.type.lower()) if d.tag == "input" else None
    if kind is None:
        return None
    # type=tel on a field whose own label names something else ("Member ID") is not a phone
    if kind == "tel" and (d.label or d.aria_label or d.aria_labelledby):
        return None
    return Classification(d.ref, kind, "type")


@positive("freetext")
def _freetext(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    if d.tag == "textarea" or (d.tag == "input" and _is_question(_label_text(d))):
        return Classification(d.ref, FREETEXT, "freetext")
    return None


def classify_field(d: FieldDescriptor, ctx: FormContext | None = None) -> Classification:
    """One field on its own (no neighbours): the kind, or None with the reason."""
    return replace(_classify_field(d, ctx or FormContext()), descriptor=d)


def _classify_field(d: FieldDescriptor, ctx: FormContext) -> Classification:
    secret = _secret(d, ctx)
    for rule in EXCLUSION_RULES.values():
        verdict = rule(d, ctx)
        if verdict is not None:
            return replace(verdict, sensitive=secret is not None)
    if secret is not None:
        section = _section(parse_autocomplete(d.autocomplete))
        source = secret.source if secret.kind else f"excluded:{secret.reason}"
        return Classification(
            d.ref, secret.kind, source, sensitive=True, section=section, reason=secret.reason
        )
    for rule in POSITIVE_RULES.values():
        verdict = rule(d, ctx)
        if verdict is not None:
            if verdict.kind in SENSITIVE_KINDS and not verdict.sensitive:
                verdict = replace(verdict, sensitive=True)
            return verdict
    return Classification(d.ref, None, "unknown")


def classify_form(
    fields: Iterable[FieldDescriptor], ctx: FormContext | None = None
) -> list[Classification]:
    """Every field of a page, then the form-level pass: phone/date/address parts and sections."""
    from app.bridge.parts import refine_parts
    from app.bridge.sections import assign_sections

    ctx = ctx or FormContext()
    descriptors = list(fields)
    verdicts = [classify_field(f, ctx) for f in descriptors]
    verdicts = refine_parts(descriptors, verdicts, ctx)
    return assign_sections(descriptors, verdicts)

"""Field classification: exclusions -> autocomplete -> input type -> heuristics -> freetext.

Each stage is a list of named rules in a registry; the first rule that returns a verdict
wins. Kinds are WHATWG autocomplete field names or "freetext"; kind None means the field
must not be filled (hidden, secret, honeypot, search box, read-only, foreign frame, ...).
The same classifier runs in the native host (for the live browser) and in
`memex autofill analyze` (for saved pages).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
    KIND_PHRASES,
    QUESTION_STARTS,
    SEARCH_PHRASES,
    SENSITIVE_PHRASES,
    PhraseSet,
    find_phrases,
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


def _describing_tokens(d: FieldDescriptor) -> list[tuple[str, ...]]:
    texts = (d.label, d.aria_label, d.aria_labelledby, d.placeholder, d.name, d.id, d.title)
    return [tokens(t) for t in texts if t]


def _any_phrase(token_lists: Iterable[tuple[str, ...]], phrases: PhraseSet) -> bool:
    return any(find_phrases(t, phrases) for t in token_lists)


# --- autocomplete attribute (WHATWG grammar) -----------------------------------------------

_CONTACT_FIELDS = frozenset({"tel", "tel-country-code", "tel-national", "tel-area-code", "tel-local",
                             "tel-local-prefix", "tel-local-suffix", "tel-extension", "email", "impp"})
_CONTACT_HINTS = frozenset({"home", "work", "mobile", "fax", "pager"})
_KNOWN_FIELDS = FILLABLE_KINDS | SENSITIVE_KINDS | {"tel-local-prefix", "tel-local-suffix"}


@dataclass(frozen=True)
class AutocompleteToken:
    field: str
    section: str | None = None
    mode: str | None = None      # "shipping" | "billing"
    contact: str | None = None   # "home" | "work" | ...
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


# --- exclusion rules (order matters: cheapest structural checks first) ----------------------

_UNFILLABLE_TYPES = frozenset({"submit", "button", "reset", "image", "file", "checkbox", "radio",
                               "range", "color", "hidden"})


@exclusion("hidden")
def _hidden(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    return _null(d, "hidden") if d.type.lower() == "hidden" else None


@exclusion("cross-origin-frame")
def _foreign_frame(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    if d.frame_origin is None or ctx.page_origin is None:
        return None
    return None if d.frame_origin == ctx.page_origin else _null(d, "cross-origin-frame")


@exclusion("password")
def _password(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    ac = parse_autocomplete(d.autocomplete)
    if d.type.lower() == "password" or (ac and ac.field in ("current-password", "new-password")):
        return _null(d, "password", sensitive=True)
    return None


@exclusion("sensitive-autocomplete")
def _sensitive_ac(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    ac = parse_autocomplete(d.autocomplete)
    if ac and (ac.field in SENSITIVE_KINDS or ac.webauthn):
        return _null(d, ac.field, sensitive=True)
    return None


@exclusion("sensitive-keywords")
def _sensitive_words(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    toks = _describing_tokens(d)
    for reason, phrases in SENSITIVE_PHRASES.items():
        if _any_phrase(toks, phrases):
            return _null(d, reason, sensitive=True)
    return None


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


_TYPE_KINDS = {"email": "email", "tel": "tel", "url": "url"}


@positive("input-type")
def _by_type(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    kind = _TYPE_KINDS.get(d.type.lower()) if d.tag == "input" else None
    return Classification(d.ref, kind, "type") if kind else None


def _is_question(label: str) -> bool:
    toks = tokens(label)
    return bool(toks) and (label.rstrip().endswith(("?", "？")) or starts_with_phrase(toks, QUESTION_STARTS))


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
    "email", "tel", "url", "postal-code", "bday", "address-line2", "address-line1",
    "address-level2", "address-level1", "country", "given-name", "additional-name",
    "family-name", "organization-title", "street-address", "organization", "sex", "language",
    "nickname", "honorific-prefix", "name",
)
_RANK = {k: len(KIND_PRIORITY) - i for i, k in enumerate(KIND_PRIORITY)}
SIGNAL_WEIGHTS: dict[str, float] = {
    "label": 4, "aria_label": 4, "aria_labelledby": 4, "placeholder": 3,
    "name": 2, "id": 2, "title": 2,
}


def _best_kind(toks: tuple[str, ...]) -> tuple[str, int] | None:
    best: tuple[int, int, str] | None = None
    for kind, phrases in KIND_PHRASES.items():
        length = find_phrases(toks, phrases)
        if length and (best is None or (length, _RANK[kind]) > best[:2]):
            best = (length, _RANK[kind], kind)
    return (best[2], best[0]) if best else None


@positive("heuristics")
def _by_heuristics(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    signals = {s: getattr(d, s) for s in SIGNAL_WEIGHTS if getattr(d, s)}
    if not (d.label or d.aria_label or d.aria_labelledby) and d.nearby:
        signals["nearby"] = d.nearby  # unlabelled field: fall back on the text beside it
    scores: dict[str, float] = {}
    first_signal: dict[str, str] = {}
    for signal, text in signals.items():
        hit = _best_kind(tokens(text))
        if hit is None:
            continue
        kind, length = hit
        scores[kind] = scores.get(kind, 0.0) + SIGNAL_WEIGHTS.get(signal, 1) * (1 + 0.5 * (length - 1))
        first_signal.setdefault(kind, signal)
    if not scores:
        return None
    kind = max(scores, key=lambda k: (scores[k], _RANK[k]))
    if d.tag == "select" and kind not in ("country", "address-level1", "sex", "language", "bday"):
        return None  # a select whose options we cannot match to a profile value
    return Classification(d.ref, kind, f"heuristic:{first_signal[kind]}")


@positive("freetext")
def _freetext(d: FieldDescriptor, ctx: FormContext) -> Classification | None:
    if d.tag == "textarea" or (d.tag == "input" and _is_question(_label_text(d))):
        return Classification(d.ref, FREETEXT, "freetext")
    return None


def classify_field(d: FieldDescriptor, ctx: FormContext | None = None) -> Classification:
    ctx = ctx or FormContext()
    for rule in EXCLUSION_RULES.values():
        verdict = rule(d, ctx)
        if verdict is not None:
            return verdict
    for rule in POSITIVE_RULES.values():
        verdict = rule(d, ctx)
        if verdict is not None:
            return verdict
    return Classification(d.ref, None, "unknown")


def classify_form(fields: Iterable[FieldDescriptor], ctx: FormContext | None = None) -> list[Classification]:
    return [classify_field(f, ctx) for f in fields]

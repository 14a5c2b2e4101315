"""Field classification on a table of saved forms (en, de, pt, es, fr) with traps."""

from __future__ import annotations

import pytest

from app.bridge.classify import classify_field, classify_form, parse_autocomplete
from app.bridge.fields import FieldDescriptor, FormContext
from app.bridge.htmlform import parse_form_html
from app.bridge.keywords import tokens
from app.bridge.values import fill_values
from tests.bridge.bridge_forms import EXPECTED, FORMS_DIR, SENSITIVE_REFS

ORIGIN = "https://forms.example"


def _classified(form: str) -> dict[str, object]:
    html = (FORMS_DIR / form).read_text(encoding="utf-8")
    return {c.ref: c for c in classify_form(parse_form_html(html, ORIGIN), FormContext(ORIGIN))}


def test_table_is_big_enough() -> None:
    assert len(EXPECTED) >= 12
    assert sum(len(v) for v in EXPECTED.values()) >= 80
    langs = {f.rsplit("_", 1)[-1].split(".")[0] for f in EXPECTED}
    assert {"en", "de", "es", "fr"} <= langs and ({"pt", "ptbr"} & langs)


def test_precision_and_recall_on_the_table() -> None:
    tp = fp = fn = 0
    wrong = []
    for form, expected in EXPECTED.items():
        got = _classified(form)
        assert set(got) == set(expected), f"{form}: parsed fields differ from the table"
        for ref, kind in expected.items():
            predicted = got[ref].kind  # type: ignore[attr-defined]
            if predicted is not None:
                tp += predicted == kind
                fp += predicted != kind
            if kind is not None and predicted != kind:
                fn += 1
            if predicted != kind:
                wrong.append((form, ref, kind, predicted))
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert precision >= 0.98 and recall >= 0.9, wrong


@pytest.mark.parametrize("form", sorted(EXPECTED))
def test_sensitive_fields_are_flagged_and_never_get_values(form: str) -> None:
    got = _classified(form)
    flagged = {ref for ref, c in got.items() if c.sensitive}  # type: ignore[attr-defined]
    assert flagged == SENSITIVE_REFS.get(form, set())
    # a profile that (wrongly) holds secrets still never fills them
    profile = {
        "cc-number": "4111111111111111",
        "current-password": "hunter2",
        "email": "a@b.example",
        "given-name": "Ada",
        "name": "Ada Lovelace",
        "tel": "+1 555 0100",
    }
    values = fill_values(got.values(), profile)  # type: ignore[arg-type]
    assert not (set(values) & flagged)
    assert "4111111111111111" not in values.values() and "hunter2" not in values.values()


@pytest.mark.parametrize("label", ["Tell us about yourself", "Tell me more", "Telling your story"])
def test_tell_is_not_tel(label: str) -> None:
    c = classify_field(FieldDescriptor(ref="x", label=label))
    assert c.kind != "tel"


@pytest.mark.parametrize(
    "desc, reason",
    [
        (dict(label="Phone", width=0, height=0), "invisible"),
        (dict(label="Email", opacity=0.0), "invisible"),
        (dict(label="Email", opacity=0.69), "invisible"),
        (dict(label="Email", visible=False), "invisible"),
        (dict(label="Leave this field empty"), "honeypot"),
        (dict(name="hp_website", placeholder="Website", aria_hidden=True, tabindex=-1), "honeypot"),
        (dict(label="Email", readonly=True), "readonly"),
        (dict(label="Email", disabled=True), "disabled"),
        (dict(label="Email", frame_origin="https://ads.example"), "cross-origin-frame"),
        (dict(type="search", label="Search"), "search"),
        (dict(name="q"), "search"),
        (dict(type="hidden", name="email"), "hidden"),
    ],
)
def test_traps_are_never_filled(desc: dict, reason: str) -> None:
    c = classify_field(FieldDescriptor(ref="t", **desc), FormContext(ORIGIN))
    assert c.kind is None and c.source == f"excluded:{reason}"


def test_opacity_floor_is_inclusive() -> None:
    assert classify_field(FieldDescriptor(ref="e", label="Email", opacity=0.7)).kind == "email"


@pytest.mark.parametrize(
    "desc, kind",
    [
        (dict(type="password", label="Password"), "current-password"),
        (dict(type="password", label="Confirm password"), "new-password"),
        (dict(autocomplete="new-password"), "new-password"),
        (dict(autocomplete="cc-number", label="Email"), "cc-number"),
        (dict(autocomplete="one-time-code"), "one-time-code"),
        (dict(label="Kreditkartennummer", name="kartennummer"), "cc-number"),
        (dict(label="Número de tarjeta"), "cc-number"),
        (dict(label="CVV"), "cc-csc"),
        (dict(label="CVC", autocomplete="email"), "cc-csc"),
        (dict(label="Name on card"), "cc-name"),
        (dict(label="Expiry date", placeholder="MM/YY"), "cc-exp"),
        (dict(label="Card type", tag="select", type="select"), "cc-type"),
        (dict(label="Verification code"), "one-time-code"),
        (dict(label="Username", autocomplete="username"), "username"),
        (dict(label="Benutzername"), "username"),
        (dict(label="Mot de passe"), "current-password"),
        (dict(label="Wachtwoord"), "current-password"),
    ],
)
def test_secrets_get_their_kind_and_are_sensitive(desc: dict, kind: str) -> None:
    c = classify_field(FieldDescriptor(ref="s", **desc))
    assert c.kind == kind and c.sensitive
    assert fill_values([c], {kind: "secret", "email": "a@b.example"}) == {}


@pytest.mark.parametrize(
    "desc, reason",
    [
        (dict(label="Social security number"), "government-id"),
        (dict(label="Numéro de sécurité sociale"), "government-id"),
        (dict(label="CPF"), "government-id"),
        (dict(label="Steuer-ID"), "government-id"),
        (dict(label="Codice fiscale"), "government-id"),
        (dict(label="IBAN"), "payment"),
    ],
)
def test_identity_numbers_are_sensitive_without_a_kind(desc: dict, reason: str) -> None:
    c = classify_field(FieldDescriptor(ref="s", **desc))
    assert c.kind is None and c.sensitive and c.reason == reason


@pytest.mark.parametrize(
    "value, field, section, mode, contact",
    [
        ("email", "email", None, None, None),
        ("shipping street-address", "street-address", None, "shipping", None),
        ("section-a billing postal-code", "postal-code", "section-a", "billing", None),
        ("section-x shipping work tel", "tel", "section-x", "shipping", "work"),
        ("HOME EMAIL", "email", None, None, "home"),
        ("email webauthn", "email", None, None, None),
    ],
)
def test_autocomplete_grammar(value: str, field: str, section, mode, contact) -> None:
    ac = parse_autocomplete(value)
    assert ac is not None and (ac.field, ac.section, ac.mode, ac.contact) == (
        field,
        section,
        mode,
        contact,
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "on",
        "off",
        "nonsense",
        "billing shipping email",
        "work given-name",
        "section- email",
        "shipping email extra",
    ],
)
def test_autocomplete_grammar_rejects(value: str) -> None:
    assert parse_autocomplete(value) is None


def test_invalid_autocomplete_falls_back_to_heuristics() -> None:
    c = classify_field(FieldDescriptor(ref="f", autocomplete="off", label="First name"))
    assert c.kind == "given-name" and c.source == "heuristic:label"


def test_autocomplete_beats_the_label() -> None:
    c = classify_field(
        FieldDescriptor(ref="f", autocomplete="shipping family-name", label="First name")
    )
    assert (c.kind, c.source, c.section) == ("family-name", "autocomplete", "shipping")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("firstName", ("first", "name")),
        ("last_name", ("last", "name")),
        ("addressLine2", ("address", "line", "2")),
        ("E-Mail-Adresse", ("e", "mail", "adresse")),
        ("Straße", ("strasse",)),
        ("Téléphone", ("telephone",)),
        ("HTMLEmailField", ("html", "email", "field")),
    ],
)
def test_tokens(text: str, expected: tuple[str, ...]) -> None:
    assert tokens(text) == expected


def test_longer_phrase_and_priority_break_ties() -> None:
    assert classify_field(FieldDescriptor(ref="a", label="Company name")).kind == "organization"
    assert classify_field(FieldDescriptor(ref="b", label="Business phone")).kind == "tel"
    assert classify_field(FieldDescriptor(ref="c", label="Email address")).kind == "email"
    assert classify_field(FieldDescriptor(ref="d", label="Address line 2")).kind == "address-line2"


def test_question_in_textarea_is_freetext_even_if_it_names_a_field_kind() -> None:
    c = classify_field(
        FieldDescriptor(
            ref="q",
            tag="textarea",
            type="textarea",
            label="Which city would you like to work in, and why?",
        )
    )
    assert c.kind == "freetext"
    # freetext is drafted on request, never filled
    assert fill_values([c], {"freetext": "x", "address-level2": "Lisbon"}) == {}


@pytest.mark.parametrize(
    "name, kind",
    [
        ("dwfrm_billing_billingAddress_addressFields_states_stateCode", "address-level1"),
        ("dwfrm_shipping_shippingAddress_addressFields_postalCode", "postal-code"),
        ("passengers[0].firstName", "given-name"),
        ("ctl00$MainContent$txtLastName", "family-name"),
        ("checkout.shippingAddress.city", "address-level2"),
        ("shipping_first_name", "given-name"),
    ],
)
def test_framework_names_are_read_by_their_last_segment(name: str, kind: str) -> None:
    assert classify_field(FieldDescriptor(ref="f", name=name)).kind == kind

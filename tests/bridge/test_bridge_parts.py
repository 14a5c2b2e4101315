"""Parts, sections and values formatted for the field: the checkout fixture written for them
(tests/bridge/forms/checkout_parts_en.html) and single descriptors."""

from __future__ import annotations

import pytest

from app.bridge.analyze import analyze_page
from app.bridge.classify import classify_form
from app.bridge.fields import FieldDescriptor, FormContext
from app.bridge.formats import match_option, parse_date, split_phone
from app.bridge.values import fill_values, value_for
from tests.bridge.bridge_forms import FORMS_DIR

ORIGIN = "https://forms.example"
PROFILE = {
    "given-name": "Ada",
    "family-name": "Lovelace",
    "tel": "+1 415 555 0100 x12",
    "bday": "1990-07-04",
    "address-level1": "California",
    "country": "DE",
    "street-address": "12 Main St\nApt 4",
    "postal-code": "94066-1234",
    "address-level2": "San Bruno",
    "email": "ada@example.org",
    "organization": "ACME",
    "shipping address-level2": "Oakland",
}


@pytest.fixture(scope="module")
def page() -> dict:
    html = (FORMS_DIR / "checkout_parts_en.html").read_text(encoding="utf-8")
    result = analyze_page(html, ORIGIN, {**PROFILE, "cc-number": "4111111111111111"})
    result["by_ref"] = {f["ref"]: f for f in result["fields"]}
    return result


def test_values_are_cut_and_formatted_for_each_part(page: dict) -> None:
    v = {ref: f["value"] for ref, f in page["by_ref"].items()}
    assert (v["phone1"], v["phone2"], v["phone3"], v["phone4"]) == ("415", "555", "0100", "12")
    assert (v["dob_m"], v["dob_d"], v["dob_y"]) == ("7", "4", "1990")  # the options' own values
    assert v["ship_state"] == "CA" and v["ship_country"] == "DE"  # "California" -> option CA
    assert v["ship_zip"] == "94066"  # ZIP+4 in a five-digit type=tel box
    assert (v["ship_street"], v["ship_apt"]) == ("12 Main St", "Apt 4")
    assert v["bill_street"] == "12 Main St, Apt 4"  # one line holds the whole street address


def test_no_sensitive_field_ever_gets_a_value(page: dict) -> None:
    secret = [f for f in page["fields"] if f["sensitive"]]
    assert {f["kind"] for f in secret} == {
        "cc-name",
        "cc-number",
        "cc-exp-month",
        "cc-exp-year",
        "cc-csc",
        "cc-type",
    }
    assert all(f["value"] is None for f in secret)
    assert "4111111111111111" not in str(page)


def test_sections_and_the_fill_plan(page: dict) -> None:
    sections = {ref: f["section"] for ref, f in page["by_ref"].items() if f["kind"]}
    assert {sections[r] for r in ("ship_first", "ship_street", "ship_zip", "ship_country")} == {
        "shipping"
    }
    assert {sections[r] for r in ("phone1", "contact_email", "dob_y")} == {"contact"}
    assert {sections[r] for r in ("cc_name", "cc_num", "exp_y", "cc_cvv")} == {"payment"}
    assert {sections[r] for r in ("bill_first", "bill_street", "bill_zip")} == {"billing"}
    plan = {b["section"]: b for b in page["plan"]}
    assert (
        plan["shipping"]["values"]["ship_city"] == "Oakland"
    )  # a "shipping ..." profile key wins there
    assert page["by_ref"]["fl_city"]["value"] == "San Bruno"
    assert plan["payment"]["values"] == {} and "cc_num" in plan["payment"]["fields"]


def _form(*descs: dict) -> list:
    fields = [FieldDescriptor(ref=f"f{i}", group="g", **d) for i, d in enumerate(descs)]
    return classify_form(fields, FormContext(ORIGIN))


def test_three_unlabelled_boxes_after_a_phone_label_are_area_prefix_suffix() -> None:
    got = _form(dict(label="Phone", type="tel"), dict(type="tel"), dict(type="tel"))
    assert [c.kind for c in got] == ["tel-area-code", "tel-local-prefix", "tel-local-suffix"]
    assert fill_values(got, {"tel": "(415) 555-0100"}) == {"f0": "415", "f1": "555", "f2": "0100"}


def test_country_code_select_before_the_number() -> None:
    opts = [("+1", "US +1"), ("+44", "UK +44"), ("+49", "DE +49")]
    got = _form(
        dict(tag="select", type="select", options=opts, label="Code"), dict(label="Phone number")
    )
    assert [c.kind for c in got] == ["tel-country-code", "tel-national"]
    assert fill_values(got, {"tel": "+44 20 7946 0000"}) == {"f0": "+44", "f1": "2079460000"}


def test_two_separate_phones_stay_whole_numbers() -> None:
    got = _form(dict(label="Phone", name="phone"), dict(label="Mobile", name="mobile"))
    assert [c.kind for c in got] == ["tel", "tel"]


def test_extension_label_and_zip_on_type_tel() -> None:
    assert _form(dict(label="Ext.", name="ext", maxlength=5))[0].kind == "tel-extension"
    assert _form(dict(label="ZIP", type="tel", maxlength=5))[0].kind == "postal-code"
    assert _form(dict(label="Member ID", type="tel"))[0].kind is None


def test_title_does_not_make_a_billing_name_a_card_field() -> None:
    got = _form(
        dict(label="First name", title="Card holder first name"),
        dict(label="Last name", title="Name on card"),
    )
    assert [(c.kind, c.sensitive) for c in got] == [("given-name", False), ("family-name", False)]


def test_help_text_with_name_does_not_make_promo_or_comment_fields_names() -> None:
    got = _form(
        dict(label="Promo code", nearby="Enter the name of the friend who referred you"),
        dict(nearby="Have a coupon? Type the name printed on it here"),
        dict(tag="textarea", type="textarea", label="Comments"),
    )
    assert [c.kind for c in got] == [None, None, None]


def test_birthday_text_boxes_by_placeholder() -> None:
    got = _form(
        dict(label="Date of birth", placeholder="DD", maxlength=2),
        dict(placeholder="MM", maxlength=2),
        dict(placeholder="YYYY", maxlength=4),
    )
    assert [c.kind for c in got] == ["bday-day", "bday-month", "bday-year"]
    assert fill_values(got, {"bday": "1990-07-04"}) == {"f0": "04", "f1": "07", "f2": "1990"}


def test_month_select_by_name_in_the_pages_language() -> None:
    opts = [("", "Mes")] + [
        (str(i), m)
        for i, m in enumerate(
            "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
            "diciembre".split(),
            1,
        )
    ]
    d = FieldDescriptor(ref="m", tag="select", type="select", options=opts, lang="es")
    assert value_for("bday-month", {"bday": "1990-07-04"}, d) == "7"


@pytest.mark.parametrize(
    "stored, options, want",
    [
        ("DE", [("de", "Deutschland"), ("fr", "Frankreich")], "de"),
        ("Germany", [("276", "Deutschland"), ("250", "Frankreich")], "276"),
        ("Deutschland", [("DEU", "Germany")], "DEU"),
        ("NY", [("", "--"), ("new-york", "New York")], "new-york"),
    ],
)
def test_country_and_region_selects(stored: str, options: list, want: str) -> None:
    kind = "address-level1" if stored == "NY" else "country"
    d = FieldDescriptor(ref="s", tag="select", type="select", options=options)
    assert value_for(kind, {kind: stored}, d) == want


def test_values_that_do_not_fit_are_not_filled() -> None:
    d = FieldDescriptor(ref="t", maxlength=6)
    assert value_for("tel", {"tel": "+1 415 555 0100"}, d) is None  # never a truncated number
    assert (
        value_for(
            "country",
            {"country": "XX"},
            FieldDescriptor(ref="c", tag="select", type="select", options=[("DE", "Germany")]),
        )
        is None
    )
    assert match_option(["Germany"], [("DE", "Germany")]) == "DE"


def test_phone_and_date_parsing() -> None:
    assert split_phone("+49 30 1234567").country_code == "49"  # type: ignore[union-attr]
    assert split_phone("0044 20 7946 0000").country_code == "44"  # type: ignore[union-attr]
    assert split_phone("415-555-0100 ext. 7").extension == "7"  # type: ignore[union-attr]
    assert parse_date("04.07.1990") == (1990, 7, 4) and parse_date("1990-07-04") == (1990, 7, 4)
    assert parse_date("July 4") is None


def _months() -> list[tuple[str, str]]:
    return [("", "Month")] + [(f"{i:02d}", f"{i:02d}") for i in range(1, 13)]


def test_selects_named_only_month_day_year_under_a_birthday_label() -> None:
    days = [("", "Day")] + [(str(i), str(i)) for i in range(1, 32)]
    years = [("", "Year")] + [(str(y), str(y)) for y in range(2008, 1919, -1)]
    got = _form(
        dict(tag="select", type="select", aria_label="Month", nearby="Birthday", options=_months()),
        dict(tag="select", type="select", aria_label="Day", options=days),
        dict(tag="select", type="select", aria_label="Year", options=years),
    )
    assert [c.kind for c in got] == ["bday-month", "bday-day", "bday-year"]


def test_month_and_year_selects_after_a_card_number_are_the_expiry() -> None:
    years = [(str(y), str(y)) for y in range(2026, 2037)]
    got = _form(
        dict(label="Card number"),
        dict(tag="select", type="select", options=_months()),
        dict(tag="select", type="select", options=years),
    )
    assert [(c.kind, c.sensitive) for c in got] == [
        ("cc-number", True),
        ("cc-exp-month", True),
        ("cc-exp-year", True),
    ]
    assert fill_values(got, {"bday": "1990-07-04"}) == {}


def test_confirm_email_and_newsletter_email_are_email() -> None:
    got = _form(dict(label="Confirm email"), dict(label="Newsletter email"))
    assert [c.kind for c in got] == ["email", "email"]


def test_a_phone_next_to_an_unrelated_box_stays_whole() -> None:
    got = _form(dict(label="Phone", name="phone"), dict(name="x1"))
    assert [c.kind for c in got] == ["tel", None]
    got = _form(
        dict(label="Phone", name="phone", maxlength=4), dict(name="rest", type="tel", maxlength=10)
    )
    assert [c.kind for c in got] == ["tel-country-code", "tel-national"]


def test_group_label_before_a_row_of_selects_reaches_the_first() -> None:
    from app.bridge.analyze import analyze_html

    days = "".join(f"<option>{i}</option>" for i in range(1, 32))
    months = "".join(
        f"<option value={i}>{m}</option>"
        for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)
    )
    years = "".join(f"<option>{y}</option>" for y in range(2024, 1920, -1))
    html = (
        "<form><div>Date of birth</div><div><select id=bd "
        f"aria-label=Day><option>DD</option>{days}</select>"
        f"<select id=bm aria-label=Month><option>MM</option>{months}</select>"
        f"<select id=by aria-label=Year><option>YYYY</option>{years}</select></div>"
        "<label for=ff>Frequent flyer number</label><input id=ff></form>"
    )
    rows = {r["ref"]: r for r in analyze_html(html, ORIGIN, {"bday": "1990-07-04"})}
    assert [(rows[r]["kind"], rows[r]["value"]) for r in ("bd", "bm", "by")] == [
        ("bday-day", "4"),
        ("bday-month", "7"),
        ("bday-year", "1990"),
    ]
    assert rows["ff"]["kind"] is None


def test_table_header_row_labels_the_column() -> None:
    from app.bridge.analyze import analyze_html

    html = (
        "<form><table><thead><tr><th>First name</th><th>Last name</th><th>Email</th></tr></thead>"
        "<tbody><tr><td><input id=a></td><td><input id=b></td><td><input id=c></td></tr></tbody>"
        "</table></form>"
    )
    kinds = [r["kind"] for r in analyze_html(html, ORIGIN, {})]
    assert kinds == ["given-name", "family-name", "email"]


def test_no_profile_key_smuggles_a_secret_into_a_field() -> None:
    from app.bridge.fields import SENSITIVE_KINDS

    profile = {
        f"{prefix}{k}": "secret-value"
        for k in SENSITIVE_KINDS
        for prefix in ("", "billing ", "shipping ")
    }
    # ("webauthn" alone is no autofill token: it only ever follows a field name)
    fields = [
        FieldDescriptor(ref=k, autocomplete=k, group="g")
        for k in sorted(SENSITIVE_KINDS - {"webauthn"})
    ]
    fields += [FieldDescriptor(ref="wa", autocomplete="email webauthn", group="g")]
    fields += [FieldDescriptor(ref="name", label="Name on card", group="g")]
    got = classify_form(fields, FormContext(ORIGIN))
    assert all(c.sensitive for c in got)
    assert fill_values(got, profile) == {}
    assert all(value_for(k, profile) is None for k in SENSITIVE_KINDS)


def test_date_input_gets_iso_and_short_phone_box_gets_national_digits() -> None:
    assert (
        value_for("bday", {"bday": "04.07.1990"}, FieldDescriptor(ref="d", type="date"))
        == "1990-07-04"
    )
    assert value_for("bday", {"bday": "04.07.1990"}, FieldDescriptor(ref="d")) == "04.07.1990"
    assert (
        value_for("tel", {"tel": "+1 415 555 0100"}, FieldDescriptor(ref="t", maxlength=10))
        == "4155550100"
    )

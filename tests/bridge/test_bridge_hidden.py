"""Fields a person cannot see are never filled: statically in `autofill analyze` (the page's
own CSS, iframe attributes) and live in real Chromium (computed style and geometry at fill
time, including what only layout can tell: clipped by a collapsed container, covered by
another element, hidden after the fields were listed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.bridge.analyze import analyze_html
from tests.bridge.bridge_browser import CHROMIUM, PROFILE, browser_session
from tests.bridge.bridge_forms import FORMS_DIR

PAGE = (FORMS_DIR / "hidden_css_en.html").read_text(encoding="utf-8")
VISIBLE = {"v_email": PROFILE["email"], "v_city": PROFILE["address-level2"]}
HIDDEN_STATIC = [
    "h_attr",
    "h_desc",
    "h_child",
    "h_translate",
    "h_scale",
    "h_clip_inset",
    "h_clip_circle",
    "h_clip",
    "h_offscreen",
    "h_opacity",
    "h_details",
]
# need layout: only the live extension can tell (documented in app/bridge/pagestyle.py)
HIDDEN_LAYOUT = ["h_collapsed", "h_covered"]
FRAMES = {
    "fr_none": "fi_none",
    "fr_zero": "fi_zero",
    "fr_vis": "fi_vis",
    "fr_sandbox": "fi_sandbox",
}


def test_analyze_resolves_hidden_fields_from_the_pages_own_css() -> None:
    rows = {r["ref"]: r for r in analyze_html(PAGE, "https://forms.example", PROFILE)}
    assert {ref: rows[ref]["value"] for ref in VISIBLE} == VISIBLE
    assert (
        rows["fi_ok"]["value"] == PROFILE["email"]
    )  # a visible same-origin frame is the page's own
    for ref in HIDDEN_STATIC + list(FRAMES.values()):
        assert rows[ref]["kind"] is None and rows[ref]["value"] is None, ref
    assert rows["fi_sandbox"]["source"] == "excluded:cross-origin-frame"  # a bare sandbox is opaque
    for ref in ("fi_none", "fi_zero", "fi_vis"):
        assert rows[ref]["source"] == "excluded:invisible"


@pytest.mark.parametrize(
    "sandbox, foreign",
    [
        ("sandbox", True),
        ('sandbox=""', True),
        ('sandbox="allow-scripts"', True),
        ('sandbox="allow-same-origin allow-forms"', False),
    ],
)
def test_sandboxed_frames_are_foreign_unless_allowed_same_origin(
    sandbox: str, foreign: bool
) -> None:
    html = (
        f"<iframe {sandbox} width=300 height=90 "
        """srcdoc="<label for='e'>Email</label><input id='e'>"></iframe>"""
    )
    row = analyze_html(html, "https://forms.example", PROFILE)[0]
    assert (row["source"] == "excluded:cross-origin-frame") is foreign
    assert (row["value"] is None) is foreign


@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
)
def test_chromium_fills_only_what_a_person_can_see(tmp_path: Path, home) -> None:
    pytest.importorskip("playwright")
    with browser_session(tmp_path, page_html=PAGE) as s:
        s.wait_state("idle")
        s.click_memex()
        assert s.wait_state("confirm", "error") == "confirm"
        # the page hides a listed field between the listing and the fill: still never filled
        s.page.evaluate(
            "() => { document.getElementById('v_city').style.transform = 'translateX(-9999px)'; }"
        )
        s.page.keyboard.press("Enter")
        assert s.wait_state("filled", "error") == "filled"
        v = s.values()
        assert v["v_email"] == PROFILE["email"]
        assert v["v_city"] == ""
        assert s.page.frame_locator("#fr_ok").locator("#fi_ok").input_value() == PROFILE["email"]
        for ref in HIDDEN_STATIC + HIDDEN_LAYOUT:
            assert v[ref] == "", ref
        for frame, ref in FRAMES.items():
            assert s.page.frame_locator(f"#{frame}").locator(f"#{ref}").input_value() == "", ref


CHECKOUT = (FORMS_DIR / "checkout_parts_en.html").read_text(encoding="utf-8")
CHECKOUT_PROFILE = {
    "given-name": "Ada",
    "family-name": "Lovelace",
    "email": "ada@example.org",
    "tel": "+1 415 555 0100 x12",
    "bday": "1990-07-04",
    "address-level1": "New York",
    "country": "Germany",
    "street-address": "12 Main St\nApt 4",
    "postal-code": "94066-1234",
    "address-level2": "San Bruno",
}


@pytest.mark.browser
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt-get install chromium)"
)
def test_chromium_fills_parts_and_selects_and_never_card_fields(tmp_path: Path, home) -> None:
    pytest.importorskip("playwright")
    with browser_session(tmp_path, page_html=CHECKOUT, profile=CHECKOUT_PROFILE) as s:
        s.wait_state("idle")
        s.click_memex()
        assert s.wait_state("confirm", "error") == "confirm"
        s.page.keyboard.press("Enter")
        assert s.wait_state("filled", "error") == "filled"
        v = dict(
            s.page.evaluate(
                "() => Object.fromEntries(Array.from(document.querySelectorAll("
                "'input, select, textarea')).map(e => [e.id, e.value]))"
            )
        )
        assert (v["phone1"], v["phone2"], v["phone3"], v["phone4"]) == ("415", "555", "0100", "12")
        assert (v["dob_m"], v["dob_d"], v["dob_y"]) == ("7", "4", "1990")
        assert (v["ship_state"], v["ship_country"], v["ship_zip"]) == ("NY", "DE", "94066")
        assert (v["ship_street"], v["ship_apt"], v["bill_street"]) == (
            "12 Main St",
            "Apt 4",
            "12 Main St, Apt 4",
        )
        assert all(
            v[r] == ""
            for r in ("cc_name", "cc_num", "cc_cvv", "promo", "offer", "comments", "member")
        )
        assert v["exp_m"] == "01" and v["exp_y"] == "2026"  # untouched first options


def test_cli_analyze_reports_hidden_fields_as_excluded(capsys, home) -> None:
    from tests.cli_support import run

    code, r = run(
        capsys,
        "autofill",
        "analyze",
        str(FORMS_DIR / "hidden_css_en.html"),
        "--url",
        "https://forms.example",
        "--no-values",
        "--json",
    )
    assert code == 0
    kinds = {f["ref"]: (f["kind"], f["source"]) for f in r["fields"]}
    assert all(kinds[ref][0] is None for ref in HIDDEN_STATIC + list(FRAMES.values()))
    assert kinds["fi_sandbox"][1] == "excluded:cross-origin-frame"
    assert {b["section"] for b in r["plan"]} and all(not b["values"] for b in r["plan"])


def test_hostile_nesting_is_bounded_and_never_filled() -> None:
    deep = (
        "<form>"
        + "<div>" * 5000
        + "<label>Email<input id=deep></label>"
        + "</div>" * 5000
        + "</form>"
    )
    row = analyze_html(deep, "https://forms.example", PROFILE)[0]
    assert row["kind"] is None and row["value"] is None

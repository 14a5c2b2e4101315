"""Form-field classifier quality on real checkout pages and on the project's own form table.

    python benchmarks/forms.py --json [--data DIR]

Real pages: the forms-dev split next to the repository (shared/data/forms-dev, or --data, or
$MEMEX_FORMS_DEV), saved retailer pages with Firefox's expected field names per section. As
that split's README says: the kinds memex gives the page's fields in document order, without
the fields it would not fill and without the password-like kinds, are aligned with the
concatenated expected list by longest common subsequence; precision = matches / predicted,
recall = matches / expected. Pages are only read, never copied.

Baseline in the same run: the same alignment for a classifier that trusts only the
autocomplete attribute (what a browser without heuristics fills), reported as
`<figure>_vs_autocomplete_only`.
Own table: tests/bridge/forms with tests/bridge/bridge_forms.py, per field (None = never fill).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._common import emit, parser, ratio, target  # noqa: E402

# Firefox's expectations never list these (secrets and credentials), so the alignment drops them.
PASSWORD_LIKE = frozenset(
    {"current-password", "new-password", "username", "one-time-code", "cc-csc", "webauthn"}
)
ORIGIN = "https://shop.example"
Classifier = Callable[[str], list[str]]


def default_data_dir() -> Path:
    env = os.environ.get("MEMEX_FORMS_DEV")
    return Path(env) if env else ROOT.parent / "shared" / "data" / "forms-dev"


def lcs(a: Sequence[str], b: Sequence[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def memex_kinds(html: str) -> list[str]:
    """The kinds memex would act on, in document order (fillable and card kinds, no secrets)."""
    from app.bridge.analyze import classify_page

    out = []
    for v in classify_page(html, ORIGIN):
        if (
            v.kind is None
            or v.kind == "freetext"
            or v.kind in PASSWORD_LIKE
            or v.source.startswith("excluded:")
        ):
            continue
        out.append(v.kind)
    return out


def autocomplete_only_kinds(html: str) -> list[str]:
    from app.bridge.classify import parse_autocomplete
    from app.bridge.htmlform import parse_form_html

    out = []
    for d in parse_form_html(html, ORIGIN):
        ac = parse_autocomplete(d.autocomplete)
        if ac and d.visible and d.type != "hidden" and ac.field not in PASSWORD_LIKE:
            out.append(ac.field)
    return out


def score_pages(data: Path, classify: Classifier) -> dict[str, object]:
    expected = json.loads((data / "expected.json").read_text(encoding="utf-8"))
    pages: dict[str, dict[str, object]] = {}
    matched = predicted = wanted = 0
    for page, spec in sorted(expected.items()):
        want = [k for section in spec["sections"] for k in section]
        got = classify((data / page).read_text(encoding="utf-8", errors="replace"))
        m = lcs(got, want)
        matched, predicted, wanted = matched + m, predicted + len(got), wanted + len(want)
        pages[page] = {
            "precision": round(m / len(got), 4) if got else None,
            "recall": round(m / len(want), 4) if want else None,
            "predicted": got,
            "expected": want,
        }
    return {
        "pages": len(pages),
        "expected_fields": wanted,
        "predicted_fields": predicted,
        "precision": round(matched / predicted, 4) if predicted else 0.0,
        "recall": round(matched / wanted, 4) if wanted else 0.0,
        "per_page": pages,
    }


def own_table() -> dict[str, object]:
    from app.bridge.analyze import analyze_html, classify_page
    from tests.bridge.bridge_forms import EXPECTED, FORMS_DIR, SENSITIVE_REFS

    tp = fp = fn = 0
    sensitive_values = 0
    wrong = []
    for form, expected in EXPECTED.items():
        html = (FORMS_DIR / form).read_text(encoding="utf-8")
        got = {c.ref: c.kind for c in classify_page(html, ORIGIN)}
        for ref, kind in expected.items():
            pred = got.get(ref)
            tp += pred is not None and pred == kind
            fp += pred is not None and pred != kind
            fn += kind is not None and pred != kind
            if pred != kind:
                wrong.append(f"{form}:{ref}:{kind}->{pred}")
        rows = analyze_html(
            html,
            ORIGIN,
            {
                "cc-number": "4111111111111111",
                "current-password": "x",
                "email": "a@example.org",
                "given-name": "Ada",
            },
        )
        sensitive_values += sum(
            1
            for r in rows
            if (r["sensitive"] or r["ref"] in SENSITIVE_REFS.get(form, ())) and r["value"]
        )
    return {
        "forms": len(EXPECTED),
        "fields": sum(len(v) for v in EXPECTED.values()),
        "precision": round(tp / max(tp + fp, 1), 4),
        "recall": round(tp / max(tp + fn, 1), 4),
        "sensitive_values": sensitive_values,
        "wrong": wrong,
    }


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument(
        "--data", type=Path, default=None, help="the forms-dev folder (expected.json and pages)"
    )
    args = ap.parse_args()
    data = args.data or default_data_dir()
    results: dict[str, object] = {"own_table": own_table()}
    ratios: dict[str, object] = {}
    targets: dict[str, object] = {
        "own_table_sensitive_values": target(results["own_table"]["sensitive_values"], "==", 0)
    }  # type: ignore[index]
    if (data / "expected.json").is_file():
        dev = score_pages(data, memex_kinds)
        base = score_pages(data, autocomplete_only_kinds)
        results["dev"] = dev
        results["autocomplete_only"] = {
            k: base[k] for k in ("precision", "recall", "predicted_fields")
        }
        for fig in ("precision", "recall"):
            ratios[f"{fig}_vs_autocomplete_only"] = ratio(dev[fig], base[fig])  # type: ignore[arg-type]
        targets["dev_precision"] = target(dev["precision"], ">=", 0.95)  # type: ignore[arg-type]
        targets["dev_recall"] = target(dev["recall"], ">=", 0.92)  # type: ignore[arg-type]
    else:
        results["dev"] = {"skipped": f"no forms-dev data at {data.name}"}
    emit("forms", results, ratios, targets, as_json=args.json)


if __name__ == "__main__":
    main()

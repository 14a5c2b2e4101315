"""What a saved page's own CSS does to its fields, resolved without a layout engine.

The page's `<style>` rules are matched with lexbor's selector engine (tag, class, id,
attribute, descendant and child selectors, :not(), :nth-child() ...), applied in order of
specificity and source order, `!important` last, then the inline style. A field counts as
hidden when it or an ancestor has `display:none`, `visibility:hidden`, the `hidden` or
`inert` attribute, a closed `<details>`, combined opacity below the floor, an off-screen
position or margin, a `transform` that moves it off-screen or scales it to nothing, a
`clip-path` or `clip` that leaves nothing, or a zero size of its own.

Not resolved statically (the live extension checks them at fill time with computed style and
geometry): external stylesheets, rules behind media queries or dynamic pseudo-classes
(:hover, :focus), clipping by an ancestor's `overflow` (collapsed accordions are opened by
script), other elements drawn over the field, and anything a script changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_AT_BLOCK = re.compile(
    r"@(media|supports|keyframes|font-face|page|-webkit-keyframes)[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}",
    re.IGNORECASE | re.DOTALL,
)
_LENGTH = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(px|em|rem|%|vw|vh|pt)?\s*$")
_DYNAMIC = re.compile(
    r":(hover|focus|active|visited|focus-within|focus-visible|target|checked)|::|:before|:after"
)
OFFSCREEN_PX = 500.0
MAX_RULES = 4000  # rules that can hide something; beyond that a page is not resolved further


@dataclass(frozen=True)
class _Decl:
    value: str
    important: bool


def parse_decls(text: str) -> dict[str, _Decl]:
    out: dict[str, _Decl] = {}
    for part in text.split(";"):
        if ":" in part:
            key, _, value = part.partition(":")
            important = "!important" in value.lower()
            out[key.strip().lower()] = _Decl(
                value.lower().replace("!important", "").strip(), important
            )
    return out


# Only these properties can hide a field; rules that set nothing else (colours, fonts) are skipped.
VISIBILITY_PROPERTIES = frozenset(
    {
        "display",
        "visibility",
        "opacity",
        "position",
        "left",
        "top",
        "right",
        "margin-left",
        "margin-top",
        "transform",
        "clip",
        "clip-path",
        "width",
        "height",
        "max-width",
        "max-height",
        "content-visibility",
    }
)


def _visibility_decls(body: str) -> dict[str, _Decl]:
    return {k: v for k, v in parse_decls(body).items() if k in VISIBILITY_PROPERTIES}


def length(value: str | None) -> float | None:
    """A CSS length in px (em/rem as 16px); None when it is not a plain length."""
    if not value:
        return None
    m = _LENGTH.match(value)
    if not m:
        return None
    n = float(m.group(1))
    return n * 16 if m.group(2) in ("em", "rem") else n


def _specificity(selector: str) -> tuple[int, int, int]:
    ids = len(re.findall(r"#[\w-]+", selector))
    classes = len(re.findall(r"\.[\w-]+|\[[^\]]*\]|:(?!not\b)[\w-]+", selector))
    tags = len(re.findall(r"(?:^|[\s>+~(])([a-zA-Z][\w-]*)", selector))
    return ids, classes, tags


class StyleSheet:
    """Declarations per node (by lexbor mem_id) from the document's own <style> elements."""

    def __init__(self, tree: Any) -> None:
        css = "\n".join(n.text(deep=True) for n in tree.css("style"))
        css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
        css = _AT_BLOCK.sub("", css)  # media queries etc.: depend on the viewport, not resolved
        rules: list[tuple[tuple[int, int, int], int, str, dict[str, _Decl]]] = []
        relevant = [
            (sel, decls)
            for sel, decls in ((m[0], _visibility_decls(m[1])) for m in _RULE.findall(css))
            if decls
        ]
        for order, (selectors, decls) in enumerate(relevant[:MAX_RULES]):
            for sel in selectors.split(","):
                sel = sel.strip()
                if sel and not sel.startswith("@") and not _DYNAMIC.search(sel):
                    rules.append((_specificity(sel), order, sel, decls))
        rules.sort(key=lambda r: (r[0], r[1]))
        self._by_node: dict[int, dict[str, _Decl]] = {}
        for _spec, _order, sel, decls in rules:
            try:
                matches = tree.css(sel)
            except Exception:  # noqa: BLE001 - lexbor refuses selectors it cannot parse; skip them
                continue
            for node in matches:
                style = self._by_node.setdefault(node.mem_id, {})
                for key, decl in decls.items():
                    if decl.important or not (key in style and style[key].important):
                        style[key] = decl

    def style_for(self, node: Any) -> dict[str, str]:
        style = dict(self._by_node.get(node.mem_id, {}))
        for key, decl in parse_decls(node.attributes.get("style") or "").items():
            if not (key in style and style[key].important and not decl.important):
                style[key] = decl
        return {k: d.value for k, d in style.items()}


_TRANSLATE = re.compile(r"translate(3d|x|y)?\(([^)]*)\)")
_SCALE = re.compile(r"scale(x|y|3d)?\(([^)]*)\)")


def transform_hides(value: str | None) -> bool:
    """translate(-9999px) and friends move the field off-screen; scale(0) leaves nothing."""
    if not value or value == "none":
        return False
    for m in _TRANSLATE.finditer(value):
        for part in m.group(2).split(","):
            n = length(part)
            if n is not None and abs(n) >= OFFSCREEN_PX and not part.strip().endswith("%"):
                return True
            if n is not None and part.strip().endswith("%") and abs(n) >= 100:
                return True
    for m in _SCALE.finditer(value):
        nums = [length(p) for p in m.group(2).split(",")]
        if any(n is not None and abs(n) < 0.01 for n in nums):
            return True
    matrix = re.search(r"matrix\(([^)]*)\)", value)
    if matrix:
        entries = [n for n in (length(p) for p in matrix.group(1).split(",")) if n is not None]
        if len(entries) == 6:
            a, b, c, d, tx, ty = entries
            if abs(a * d - b * c) < 1e-4 or abs(tx) >= OFFSCREEN_PX or abs(ty) >= OFFSCREEN_PX:
                return True
    return False


def clip_path_hides(value: str | None) -> bool:
    """inset(50%), circle(0), a polygon of one point: nothing of the field is painted."""
    if not value or value == "none":
        return False
    m = re.match(r"inset\(([^)]*)\)", value)
    if m:
        parts = [p for p in m.group(1).split(" round ")[0].split() if p]
        vals = [length(p) for p in parts]
        pct = [p.endswith("%") for p in parts]
        if not parts or any(v is None for v in vals):
            return False
        top, right, bottom, left = (
            (vals * 4)[:4]
            if len(vals) == 1
            else (
                (vals[0], vals[1], vals[0], vals[1])
                if len(vals) == 2
                else (vals[0], vals[1], vals[2], vals[1])
                if len(vals) == 3
                else vals[:4]
            )
        )
        if all(pct):
            return (top or 0) + (bottom or 0) >= 100 or (left or 0) + (right or 0) >= 100
        return False
    m = re.match(r"(circle|ellipse)\(\s*([^)\s]*)", value)
    if m:
        n = length(m.group(2))
        return n is not None and n <= 0
    m = re.match(r"polygon\(([^)]*)\)", value)
    if m:
        points = {tuple(p.split()) for p in m.group(1).split(",") if p.strip()}
        return len(points) <= 2
    return False


def clip_hides(value: str | None) -> bool:
    m = re.match(r"rect\(([^)]*)\)", value or "")
    if not m:
        return False
    vals = [length(p) for p in re.split(r"[\s,]+", m.group(1).strip()) if p]
    if len(vals) != 4 or any(v is None for v in vals):
        return False
    top, right, bottom, left = vals  # type: ignore[misc]
    return bottom - top <= 1 or right - left <= 1  # type: ignore[operator]


def offscreen(style: dict[str, str]) -> bool:
    if style.get("position") in ("absolute", "fixed", "relative"):
        for side in ("left", "top", "right"):
            n = length(style.get(side))
            if n is not None and (n <= -OFFSCREEN_PX or n >= 10000):
                return True
    for side in ("margin-left", "margin-top", "text-indent"):
        n = length(style.get(side))
        if n is not None and n <= -OFFSCREEN_PX and side != "text-indent":
            return True
    return False

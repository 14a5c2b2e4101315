"""Read form fields out of a saved HTML page (selectolax/lexbor, a real HTML5 parser).

Visibility comes from attributes (`hidden`, `type=hidden`, `width`/`height`), inline
styles and simple `<style>` rules (`.class` / `#id` / `tag` selectors): display, visibility,
opacity (multiplied over ancestors, the same 0.7 floor the extension applies), zero size and
off-screen positioning. `<iframe srcdoc>` documents are read too; a sandboxed one without
`allow-same-origin` has an opaque origin and counts as a foreign frame.
"""

from __future__ import annotations

import re
from typing import Any

from app.bridge.fields import FieldDescriptor

_CONTROL_TAGS = ("input", "select", "textarea")
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_LENGTH = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(px|em|rem|%)?\s*$")
_NEARBY_CHARS = 120
LOCAL_ORIGIN = "file://"  # origin of a saved page analyzed without --url


def _parse_decls(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(";"):
        if ":" in part:
            key, _, value = part.partition(":")
            out[key.strip().lower()] = value.replace("!important", "").strip().lower()
    return out


def _length(value: str | None) -> float | None:
    if not value:
        return None
    m = _LENGTH.match(value)
    return float(m.group(1)) if m else None


class _StyleSheet:
    """Simple selectors only: enough for the usual honeypot tricks (`.hp {display:none}`)."""

    def __init__(self, css: str) -> None:
        self.rules: list[tuple[str, dict[str, str]]] = []
        css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
        for selectors, body in _RULE.findall(css):
            decls = _parse_decls(body)
            for sel in selectors.split(","):
                sel = sel.strip()
                if re.fullmatch(r"[a-zA-Z]*[.#]?[\w-]*", sel) and sel:
                    self.rules.append((sel, decls))

    def style_for(self, node: Any) -> dict[str, str]:
        attrs = node.attributes
        classes = set((attrs.get("class") or "").split())
        style: dict[str, str] = {}
        for sel, decls in self.rules:
            m = re.match(r"([a-zA-Z]*)(.*)", sel)
            tag, rest = (m.group(1), m.group(2)) if m else ("", sel)
            if tag and tag.lower() != node.tag:
                continue
            if rest.startswith(".") and rest[1:] not in classes:
                continue
            if rest.startswith("#") and rest[1:] != attrs.get("id"):
                continue
            style.update(decls)
        style.update(_parse_decls(attrs.get("style") or ""))
        return style


def _text(node: Any) -> str:
    """Visible text of a node, without the text of controls or option lists inside it."""
    parts: list[str] = []
    for child in node.iter(include_text=True):
        if child.tag == "-text":
            parts.append(child.text(deep=False))
        elif child.tag not in _CONTROL_TAGS + ("script", "style", "option", "template"):
            parts.append(_text(child))
    return " ".join(" ".join(parts).split())


class _Document:
    def __init__(self, tree: Any, origin: str | None) -> None:
        self.tree = tree
        self.origin = origin
        css = "\n".join(n.text(deep=True) for n in tree.css("style"))
        self.sheet = _StyleSheet(css)
        self.by_id = {n.attributes.get("id"): n for n in tree.css("[id]")}
        self.label_for: dict[str, str] = {}
        for lab in tree.css("label[for]"):
            self.label_for.setdefault(lab.attributes.get("for") or "", _text(lab))

    def descriptor(self, node: Any, index: int) -> FieldDescriptor:
        a = node.attributes
        ident, name = a.get("id") or "", a.get("name") or ""
        label = self.label_for.get(ident, "") if ident else ""
        wrapping = _ancestor(node, "label")
        if not label and wrapping is not None:
            label = _text(wrapping)
        labelledby = " ".join(_text(self.by_id[i]) for i in (a.get("aria-labelledby") or "").split()
                              if i in self.by_id)
        visible, opacity, width, height, aria_hidden = self._visibility(node)
        tabindex = a.get("tabindex")
        return FieldDescriptor(
            ref=ident or name or f"field-{index}",
            tag=node.tag,
            type=(a.get("type") or "text").lower() if node.tag == "input" else node.tag,
            id=ident, name=name,
            autocomplete=a.get("autocomplete") or "",
            label=label, aria_label=a.get("aria-label") or "", aria_labelledby=labelledby,
            placeholder=a.get("placeholder") or "", title=a.get("title") or "",
            nearby="" if label else _nearby(node),
            visible=visible, opacity=opacity, width=width, height=height,
            readonly="readonly" in a, disabled="disabled" in a or _ancestor_disabled(node),
            aria_hidden=aria_hidden,
            tabindex=int(tabindex) if tabindex and tabindex.lstrip("-").isdigit() else None,
            frame_origin=self.origin,
        )

    def _visibility(self, node: Any) -> tuple[bool, float, float, float, bool]:
        a = node.attributes
        own = self.sheet.style_for(node)
        visible = (a.get("type") or "").lower() != "hidden"
        width = _length(own.get("width")) if "width" in own else _length(a.get("width"))
        height = _length(own.get("height")) if "height" in own else _length(a.get("height"))
        opacity, aria_hidden, visibility = 1.0, False, None
        current: Any = node
        while current is not None and current.tag not in ("html", "-undef", None):
            attrs = current.attributes
            style = own if current is node else self.sheet.style_for(current)
            if "hidden" in attrs or style.get("display") == "none":
                visible = False
            if visibility is None and style.get("visibility") in ("hidden", "collapse", "visible"):
                visibility = style["visibility"]
            opacity *= _length(style.get("opacity")) if _length(style.get("opacity")) is not None else 1.0
            if attrs.get("aria-hidden") == "true":
                aria_hidden = True
            if style.get("position") in ("absolute", "fixed"):
                for side in ("left", "top", "right"):
                    v = _length(style.get(side))
                    if v is not None and v <= -500:
                        visible = False
            if style.get("clip") in ("rect(0,0,0,0)", "rect(0 0 0 0)", "rect(0px,0px,0px,0px)"):
                visible = False
            current = current.parent
        if visibility in ("hidden", "collapse"):
            visible = False
        return visible, opacity, 10.0 if width is None else width, 10.0 if height is None else height, aria_hidden


def _ancestor(node: Any, tag: str) -> Any:
    current = node.parent
    while current is not None:
        if current.tag == tag:
            return current
        current = current.parent
    return None


def _ancestor_disabled(node: Any) -> bool:
    fs = _ancestor(node, "fieldset")
    return fs is not None and "disabled" in fs.attributes


def _nearby(node: Any) -> str:
    """Text just before the field: preceding siblings, else the parent's previous sibling."""
    parts: list[str] = []
    sib = node.prev
    while sib is not None and sum(len(p) for p in parts) < _NEARBY_CHARS:
        if sib.tag in _CONTROL_TAGS or (sib.tag != "-text" and sib.css_first("input, select, textarea")):
            break
        text = sib.text(deep=False) if sib.tag == "-text" else _text(sib)
        if text.strip():
            parts.insert(0, text.strip())
        sib = sib.prev
    if not parts and node.parent is not None:
        prev = node.parent.prev
        while prev is not None and prev.tag == "-text" and not prev.text(deep=False).strip():
            prev = prev.prev
        if prev is not None and prev.tag not in _CONTROL_TAGS and not (
                prev.tag != "-text" and prev.css_first("input, select, textarea")):
            parts.append(_text(prev) if prev.tag != "-text" else prev.text(deep=False).strip())
    return " ".join(" ".join(parts).split())[:_NEARBY_CHARS]


def _frame_origin(iframe: Any, parent_origin: str | None) -> str | None:
    sandbox = iframe.attributes.get("sandbox")
    if sandbox is not None and "allow-same-origin" not in sandbox.split():
        return "null"
    return parent_origin


def parse_form_html(html: str, page_origin: str | None = None) -> list[FieldDescriptor]:
    """All form controls of the page (and of its srcdoc iframes) as descriptors, in order."""
    from selectolax.lexbor import LexborHTMLParser

    out: list[FieldDescriptor] = []
    _collect(LexborHTMLParser(html), page_origin or LOCAL_ORIGIN, out, depth=0)
    return out


def _collect(tree: Any, origin: str | None, out: list[FieldDescriptor], depth: int) -> None:
    from selectolax.lexbor import LexborHTMLParser

    doc = _Document(tree, origin)
    for node in tree.css("input, select, textarea, iframe"):
        if node.tag == "iframe":
            srcdoc = node.attributes.get("srcdoc")
            if srcdoc and depth < 3:
                _collect(LexborHTMLParser(srcdoc), _frame_origin(node, origin), out, depth + 1)
            continue
        out.append(doc.descriptor(node, len(out)))

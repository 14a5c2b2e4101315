"""Read form fields out of a saved HTML page (selectolax/lexbor, a real HTML5 parser).

Labels come from `<label for>` (or, when a page points `for` at a name instead of an id, the
one control with that name), a wrapping `<label>`, `aria-labelledby`, and otherwise the text
just before the field: its preceding siblings, the cell before it in a table row, the
container before its own; a label right after the field (floating labels) counts too.
Visibility is resolved from the page's own CSS (pagestyle.py). `<iframe srcdoc>` documents
are read too: a hidden, zero-size or `display:none` frame hides everything in it, and a
sandboxed frame without `allow-same-origin` has an opaque origin, so it counts as foreign.
"""

from __future__ import annotations

from typing import Any

from app.bridge.fields import MAX_OPTIONS, FieldDescriptor
from app.bridge.pagestyle import (
    StyleSheet,
    clip_hides,
    clip_path_hides,
    length,
    offscreen,
    transform_hides,
)

_CONTROL_TAGS = ("input", "select", "textarea")
_CONTROLS = "input, select, textarea"
_NEARBY_CHARS = 120
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6", "legend")
LOCAL_ORIGIN = "file://"  # origin of a saved page analyzed without --url
MAX_FRAME_DEPTH = 3
MAX_DEPTH = 512  # element nesting walked up from a field; real pages stay far below


def _text(node: Any) -> str:
    """Visible text of a node, without the text of controls or option lists inside it."""
    parts: list[str] = []
    for child in node.iter(include_text=True):
        if child.tag == "-text":
            parts.append(child.text(deep=False))
        elif child.tag not in _CONTROL_TAGS + ("script", "style", "option", "template", "button"):
            parts.append(_text(child))
    return " ".join(" ".join(parts).split())


def _has_control(node: Any) -> bool:
    return node.tag in _CONTROL_TAGS or (
        node.tag != "-text" and node.css_first(_CONTROLS) is not None
    )


class _Document:
    def __init__(self, tree: Any, origin: str | None, hidden_frame: bool, lang: str) -> None:
        self.tree = tree
        self.origin = origin
        self.hidden_frame = hidden_frame
        self.lang = lang
        self.sheet = StyleSheet(tree)
        self.by_id = {n.attributes.get("id"): n for n in tree.css("[id]")}
        self.label_for: dict[str, str] = {}
        for_counts: dict[str, int] = {}
        for lab in tree.css("label[for]"):
            target = lab.attributes.get("for") or ""
            for_counts[target] = for_counts.get(target, 0) + 1
            self.label_for.setdefault(target, _text(lab))
        # `for` naming a wrapper (a custom element) around exactly one control: that control
        self.label_inside: dict[int, str] = {}
        for target, text in self.label_for.items():
            node = self.by_id.get(target)
            if node is not None and node.tag not in _CONTROL_TAGS:
                inner = node.css(_CONTROLS)
                if len(inner) == 1:
                    self.label_inside[inner[0].mem_id] = text
        names: dict[str, int] = {}
        for ctl in tree.css(_CONTROLS):
            n = ctl.attributes.get("name") or ""
            names[n] = names.get(n, 0) + 1
        # `for` naming a control's name (no such id): only when both are unique on the page
        self.label_by_name = {
            t: self.label_for[t]
            for t, c in for_counts.items()
            if c == 1 and names.get(t) == 1 and t not in self.by_id
        }
        self.forms = {f.mem_id: i for i, f in enumerate(tree.css("form"))}
        self.context: dict[int, str] = {}
        heading = ""
        for node in tree.css("h1, h2, h3, h4, h5, h6, input, select, textarea"):
            if node.tag in _HEADINGS:
                heading = _text(node)[:80]
            else:
                self.context[node.mem_id] = heading

    def descriptor(self, node: Any, index: int) -> FieldDescriptor:
        a = node.attributes
        ident, name = a.get("id") or "", a.get("name") or ""
        label = self.label_for.get(ident, "") if ident else ""
        if not label and not ident and name in self.label_by_name:
            label = self.label_by_name[name]
        if not label:
            label = self.label_inside.get(node.mem_id, "")
        wrapping = _ancestor(node, "label")
        if not label and wrapping is not None:
            label = _text(wrapping)
        labelledby = " ".join(
            _text(self.by_id[i])
            for i in (a.get("aria-labelledby") or "").split()
            if i in self.by_id
        )
        visible, opacity, width, height, aria_hidden = self._visibility(node)
        tabindex = a.get("tabindex")
        return FieldDescriptor(
            ref=ident or name or f"field-{index}",
            tag=node.tag,
            type=(a.get("type") or "text").lower() if node.tag == "input" else node.tag,
            id=ident,
            name=name,
            autocomplete=a.get("autocomplete") or "",
            label=label,
            aria_label=a.get("aria-label") or "",
            aria_labelledby=labelledby,
            placeholder=a.get("placeholder") or "",
            title=a.get("title") or "",
            nearby="" if label else _nearby(node),
            visible=visible,
            opacity=opacity,
            width=width,
            height=height,
            readonly="readonly" in a,
            disabled="disabled" in a or _ancestor_disabled(node),
            aria_hidden=aria_hidden,
            tabindex=int(tabindex) if tabindex and tabindex.lstrip("-").isdigit() else None,
            frame_origin=self.origin,
            maxlength=int(a["maxlength"]) if (a.get("maxlength") or "").isdigit() else None,
            inputmode=a.get("inputmode") or "",
            options=_options(node) if node.tag == "select" else [],
            group=self._group(node),
            context=self._context(node),
            lang=self.lang,
        )

    def _group(self, node: Any) -> str:
        form = _ancestor(node, "form")
        prefix = f"{self.origin or ''}|"
        return prefix + (f"form-{self.forms.get(form.mem_id, 0)}" if form is not None else "page")

    def _context(self, node: Any) -> str:
        """Legend of the fieldset around the field, else the heading above it, plus the names of
        its containers (id, name, custom element names): what sections.py reads."""
        parts: list[str] = []
        fs = _ancestor(node, "fieldset")
        legend = fs.css_first("legend") if fs is not None else None
        parts.append(_text(legend) if legend is not None else self.context.get(node.mem_id, ""))
        current, depth = node.parent, 0
        while current is not None and depth < 12 and current.tag not in ("body", "html"):
            attrs = current.attributes
            if "-" in current.tag or current.tag in ("shipping", "billing"):
                parts.append(current.tag)
            parts.extend(
                str(attrs.get(k) or "")
                for k in ("id", "name", "type", "aria-label")
                if attrs.get(k)
            )
            current, depth = current.parent, depth + 1
        return " ".join(p for p in parts if p)[:300]

    def _visibility(self, node: Any) -> tuple[bool, float, float, float, bool]:
        a = node.attributes
        own = self.sheet.style_for(node)
        visible = (a.get("type") or "").lower() != "hidden" and not self.hidden_frame
        width = length(own.get("width")) if "width" in own else length(a.get("width"))
        height = length(own.get("height")) if "height" in own else length(a.get("height"))
        for key in ("max-width", "max-height"):
            if length(own.get(key)) == 0:
                visible = False
        opacity, aria_hidden, visibility = 1.0, False, None
        current: Any = node
        child: Any = None
        depth = 0
        while current is not None and current.tag not in ("html", "-undef", None):
            depth += 1
            if depth > MAX_DEPTH:
                visible = False  # nested deeper than any real form: too deep to vouch for
                break
            attrs = current.attributes
            style = own if current is node else self.sheet.style_for(current)
            if "hidden" in attrs or "inert" in attrs or style.get("display") == "none":
                visible = False
            if (
                current.tag == "details"
                and "open" not in attrs
                and (child is None or child.tag != "summary")
            ):
                visible = False
            if visibility is None and style.get("visibility") in ("hidden", "collapse", "visible"):
                visibility = style["visibility"]
            op = length(style.get("opacity"))
            opacity *= (
                op / 100
                if op is not None and (style.get("opacity") or "").endswith("%")
                else (op if op is not None else 1.0)
            )
            if attrs.get("aria-hidden") == "true":
                aria_hidden = True
            if (
                offscreen(style)
                or transform_hides(style.get("transform"))
                or clip_path_hides(style.get("clip-path"))
                or clip_hides(style.get("clip"))
            ):
                visible = False
            child, current = current, current.parent
        if visibility in ("hidden", "collapse"):
            visible = False
        return (
            visible,
            opacity,
            10.0 if width is None else width,
            10.0 if height is None else height,
            aria_hidden,
        )


def _options(node: Any) -> list[tuple[str, str]]:
    out = []
    for opt in node.css("option")[:MAX_OPTIONS]:
        out.append(
            ((opt.attributes.get("value") or "")[:120], " ".join(opt.text(deep=True).split())[:120])
        )
    return out


def _ancestor(node: Any, tag: str) -> Any:
    current, depth = node.parent, 0
    while current is not None and depth < MAX_DEPTH:
        if current.tag == tag:
            return current
        current, depth = current.parent, depth + 1
    return None


def _ancestor_disabled(node: Any) -> bool:
    fs = _ancestor(node, "fieldset")
    return fs is not None and "disabled" in fs.attributes


def _prev_text(node: Any) -> list[str]:
    parts: list[str] = []
    sib = node.prev
    while sib is not None and sum(len(p) for p in parts) < _NEARBY_CHARS:
        if _has_control(sib):
            break
        text = sib.text(deep=False) if sib.tag == "-text" else _text(sib)
        if text.strip():
            parts.insert(0, text.strip())
        sib = sib.prev
    return parts


def _nearby(node: Any) -> str:
    """Text just before the field: preceding siblings, else a label right after it (floating
    labels), else the text before its containers (a table cell, a wrapper div), three levels up."""
    parts = _prev_text(node)
    if not parts:
        nxt = node.next
        while nxt is not None and nxt.tag == "-text" and not nxt.text(deep=False).strip():
            nxt = nxt.next
        if nxt is not None and nxt.tag == "label":
            return " ".join(_text(nxt).split())[:_NEARBY_CHARS]
    current, depth = node, 0
    while (
        not parts
        and depth < 3
        and current.parent is not None
        and current.parent.tag not in ("form", "body")
    ):
        current, depth = current.parent, depth + 1
        if current.tag == "tr":
            header = _column_header(node)  # the cell before it said nothing: the column's header
            if header:
                parts = [header]
                break
        inner = current.css(_CONTROLS)
        if len(inner) > 1 and inner[0].mem_id != node.mem_id:
            break  # a later field of a group: the text before the group labels its first field
        parts = _prev_text(current)
    if not parts:
        header = _column_header(node)
        if header:
            parts = [header]
    return " ".join(" ".join(parts).split())[-_NEARBY_CHARS:]


def _cells(row: Any) -> list[Any]:
    return [c for c in row.iter() if c.tag in ("td", "th")]


def _column_header(node: Any) -> str:
    """A table whose header row names the columns: the header cell above the field's cell."""
    cell = _ancestor(node, "td")
    row = _ancestor(cell, "tr") if cell is not None else None
    if cell is None or row is None:
        return ""
    cells = _cells(row)
    index = next((i for i, c in enumerate(cells) if c.mem_id == cell.mem_id), -1)
    prev = row.prev
    while prev is not None and prev.tag != "tr":
        prev = prev.prev
    if prev is None and row.parent is not None and row.parent.tag == "tbody":
        head = row.parent.prev
        while head is not None and head.tag != "thead":
            head = head.prev
        prev = head.css_first("tr") if head is not None else None
    if prev is None or index < 0:
        return ""
    above = _cells(prev)
    if index >= len(above) or _has_control(above[index]):
        return ""
    return _text(above[index])


def _frame_origin(iframe: Any, parent_origin: str | None) -> str | None:
    attrs = iframe.attributes
    if "sandbox" in attrs and "allow-same-origin" not in (attrs.get("sandbox") or "").split():
        return "null"  # a bare `sandbox` is an opaque origin: never the page's own
    return parent_origin


def _frame_hidden(doc: _Document, iframe: Any) -> bool:
    visible, opacity, width, height, _ = doc._visibility(iframe)
    return not visible or opacity < 0.7 or width <= 1 or height <= 1


def parse_form_html(html: str, page_origin: str | None = None) -> list[FieldDescriptor]:
    """All form controls of the page (and of its srcdoc iframes) as descriptors, in order."""
    from selectolax.lexbor import LexborHTMLParser

    out: list[FieldDescriptor] = []
    _collect(
        LexborHTMLParser(html), page_origin or LOCAL_ORIGIN, out, depth=0, hidden=False, lang=""
    )
    return out


def _collect(
    tree: Any, origin: str | None, out: list[FieldDescriptor], depth: int, hidden: bool, lang: str
) -> None:
    from selectolax.lexbor import LexborHTMLParser

    root = tree.css_first("html")
    lang = (root.attributes.get("lang") if root is not None else None) or lang
    doc = _Document(tree, origin, hidden, lang or "")
    for node in tree.css("input, select, textarea, iframe"):
        if node.tag == "iframe":
            srcdoc = node.attributes.get("srcdoc")
            if srcdoc and depth < MAX_FRAME_DEPTH:
                _collect(
                    LexborHTMLParser(srcdoc),
                    _frame_origin(node, origin),
                    out,
                    depth + 1,
                    hidden or _frame_hidden(doc, node),
                    lang or "",
                )
            continue
        out.append(doc.descriptor(node, len(out)))

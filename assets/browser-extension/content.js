// memex autofill: content script (top frame only).
//
// Collects field descriptors, shows memex's UI in a CLOSED shadow root (the page cannot read
// the preview or the values in it), and writes values only after a trusted user gesture: a
// real click on memex's own button or the extension shortcut. Fields inside cross-origin
// frames are out of reach by construction; same-origin frames are read with their origin.
// Freetext answers are drafted on request and shown here, never written into the page.
"use strict";

(() => {
  if (window.top !== window || window.__memexAutofill) return;
  window.__memexAutofill = true;

  const OPACITY_FLOOR = 0.7;
  const CONTROL_SELECTOR = "input, select, textarea";
  const CANDIDATE_TYPES = new Set(["", "text", "email", "tel", "url", "search", "number", "date"]);
  let refs = new Map();      // ref -> element, from the last collection
  let ui = null;

  // ---- descriptors --------------------------------------------------------------------------
  function clean(text) { return (text || "").replace(/\s+/g, " ").trim().slice(0, 300); }

  function textWithoutControls(node) {
    const clone = node.cloneNode(true);
    clone.querySelectorAll("input, select, textarea, option, script, style").forEach((n) => n.remove());
    return clean(clone.textContent);
  }

  function labelText(el) {
    if (el.labels && el.labels.length) return clean(Array.from(el.labels).map(textWithoutControls).join(" "));
    return "";
  }

  function labelledBy(el, doc) {
    const ids = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean);
    return clean(ids.map((id) => { const n = doc.getElementById(id); return n ? textWithoutControls(n) : ""; }).join(" "));
  }

  function nearbyText(el) {
    let parts = [];
    for (let sib = el.previousSibling; sib && parts.join(" ").length < 120; sib = sib.previousSibling) {
      if (sib.nodeType === Node.ELEMENT_NODE && (sib.matches(CONTROL_SELECTOR) || sib.querySelector(CONTROL_SELECTOR))) break;
      const t = sib.nodeType === Node.TEXT_NODE ? clean(sib.textContent)
        : sib.nodeType === Node.ELEMENT_NODE ? textWithoutControls(sib) : "";
      if (t) parts.unshift(t);
    }
    if (!parts.length && el.parentElement) {
      const prev = el.parentElement.previousElementSibling;
      if (prev && !prev.matches(CONTROL_SELECTOR) && !prev.querySelector(CONTROL_SELECTOR)) parts.push(textWithoutControls(prev));
    }
    return clean(parts.join(" ")).slice(0, 120);
  }

  // ---- what a person can see, from computed style and geometry at this moment ----------------
  const OFFSCREEN_PX = 2000;

  function clipPathHides(value) {
    if (!value || value === "none") return false;
    let m = /^inset\(([^)]*)\)/.exec(value);
    if (m) {
      const parts = m[1].split(/\s+round\s+/)[0].trim().split(/\s+/);
      if (parts.every((p) => p.endsWith("%"))) {
        const v = parts.map(parseFloat);
        const [t, r, b, l] = v.length === 1 ? [v[0], v[0], v[0], v[0]] : v.length === 2 ? [v[0], v[1], v[0], v[1]]
          : v.length === 3 ? [v[0], v[1], v[2], v[1]] : v;
        return t + b >= 100 || l + r >= 100;
      }
      return false;
    }
    m = /^(circle|ellipse)\(\s*([-\d.]+)/.exec(value);
    if (m) return parseFloat(m[2]) <= 0;
    m = /^polygon\(([^)]*)\)/.exec(value);
    if (m) return new Set(m[1].split(",").map((p) => p.trim())).size <= 2;
    return false;
  }

  function clipHides(value) {
    const m = /^rect\(([^)]*)\)/.exec(value || "");
    if (!m) return false;
    const v = m[1].split(/[\s,]+/).filter(Boolean).map(parseFloat);
    return v.length === 4 && (v[2] - v[0] <= 1 || v[1] - v[3] <= 1);
  }

  function hitTestOk(el, rect, win) {
    // Inside the viewport the browser's own hit test tells whether something else covers the
    // field, or a clip leaves nothing of it: the point must land on the field or on its label.
    // Three points across the field, so an icon inside it (a card logo, a "show" eye) is no cover.
    const doc = el.ownerDocument;
    const y = rect.top + rect.height / 2;
    let onScreen = false;
    for (const fx of [0.5, 0.2, 0.8]) {
      const x = rect.left + rect.width * fx;
      if (x < 0 || y < 0 || x >= win.innerWidth || y >= win.innerHeight) continue;
      onScreen = true;
      const hit = doc.elementFromPoint(x, y);
      if (!hit || hit === el || el.contains(hit)) return true;
      if (ui && (hit === ui.host || ui.host.contains(hit))) return true;  // memex's own button
      if (el.labels && Array.from(el.labels).some((l) => l === hit || l.contains(hit))) return true;
    }
    return !onScreen;  // not on screen now: geometry and style decide
  }

  function frameVisible(win) {
    // a field inside a hidden, zero-size or transparent frame is as hidden as the frame
    for (let w = win; w && w !== w.parent; w = w.parent) {
      let frame = null;
      try { frame = w.frameElement; } catch (e) { return false; }
      if (!frame) return true;
      const v = visibility(frame, w.parent, true);
      // the frame's own viewport (borders excluded): a 0x0 frame still has a 4px border box
      if (!v.visible || v.opacity < OPACITY_FLOOR || frame.clientWidth <= 1 || frame.clientHeight <= 1) return false;
    }
    return true;
  }

  function visibility(el, win, isFrame) {
    const rect = el.getBoundingClientRect();
    let opacity = 1;
    let visible = typeof el.checkVisibility === "function"
      ? el.checkVisibility({ checkVisibilityCSS: true, visibilityProperty: true, contentVisibilityAuto: true })
      : el.offsetParent !== null;
    for (let n = el; n && n.nodeType === Node.ELEMENT_NODE; n = n.parentElement) {
      const style = win.getComputedStyle(n);
      opacity *= parseFloat(style.opacity || "1");
      if (style.display === "none" || style.visibility === "hidden" || style.visibility === "collapse") visible = false;
      if (clipPathHides(style.clipPath) || (style.position === "absolute" || style.position === "fixed") && clipHides(style.clip)) visible = false;
      if (n !== el && /(hidden|clip)/.test(style.overflowX + style.overflowY)) {
        // clipped away by an ancestor that hides its overflow (a collapsed accordion)
        const box = n.getBoundingClientRect();
        const w = Math.min(rect.right, box.right) - Math.max(rect.left, box.left);
        const h = Math.min(rect.bottom, box.bottom) - Math.max(rect.top, box.top);
        if (w < 1 || h < 1) visible = false;
      }
      if (n.inert) visible = false;
    }
    const doc = el.ownerDocument;
    const pageW = Math.max(doc.documentElement.scrollWidth, win.innerWidth);
    const pageH = Math.max(doc.documentElement.scrollHeight, win.innerHeight);
    const sx = win.scrollX, sy = win.scrollY;
    if (rect.right + sx <= 0 || rect.bottom + sy <= 0 || rect.left + sx >= pageW || rect.top + sy >= pageH) visible = false;
    if (rect.left + sx > win.innerWidth + OFFSCREEN_PX) visible = false;  // pushed far to the right
    if (visible && !isFrame && !hitTestOk(el, rect, win)) visible = false;
    if (visible && !isFrame && !frameVisible(win)) visible = false;
    return { visible, opacity, width: rect.width, height: rect.height };
  }

  function groupOf(el) {
    const form = el.closest("form");
    if (!form) return "page";
    return `form-${Array.prototype.indexOf.call(el.ownerDocument.forms, form)}`;
  }

  function contextOf(el) {
    const parts = [];
    const fs = el.closest("fieldset");
    const legend = fs && fs.querySelector("legend");
    if (legend) parts.push(clean(legend.textContent).slice(0, 80));
    else {
      // the nearest heading above the field in document order
      const heads = el.ownerDocument.querySelectorAll("h1, h2, h3, h4, h5, h6");
      let last = null;
      for (const h of heads) {
        if (h.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) last = h; else break;
      }
      if (last) parts.push(clean(last.textContent).slice(0, 80));
    }
    let depth = 0;
    for (let n = el.parentElement; n && depth < 12 && n.tagName !== "BODY"; n = n.parentElement, depth++) {
      if (n.tagName.includes("-")) parts.push(n.tagName.toLowerCase());
      for (const k of ["id", "name", "type", "aria-label"]) { const v = n.getAttribute(k); if (v) parts.push(v); }
    }
    return parts.join(" ").slice(0, 300);
  }

  function optionsOf(el) {
    if (el.tagName !== "SELECT") return [];
    return Array.from(el.options).slice(0, 400).map((o) => [o.value.slice(0, 120), clean(o.text).slice(0, 120)]);
  }

  function collectFrom(doc, win, origin, out) {
    for (const el of doc.querySelectorAll(CONTROL_SELECTOR)) {
      if (el.closest("memex-autofill")) continue;
      const base = el.id || el.getAttribute("name") || `memex-field-${out.length}`;
      let ref = base;
      for (let i = 2; refs.has(ref); i++) ref = `${base}#${i}`;
      refs.set(ref, el);
      const tag = el.tagName.toLowerCase();
      const vis = visibility(el, win);
      const tabindex = el.getAttribute("tabindex");
      out.push({
        ref, tag,
        type: tag === "input" ? (el.getAttribute("type") || "text").toLowerCase() : tag,
        id: el.id || "", name: el.getAttribute("name") || "",
        autocomplete: el.getAttribute("autocomplete") || "",
        label: labelText(el), aria_label: clean(el.getAttribute("aria-label")),
        aria_labelledby: labelledBy(el, doc), placeholder: clean(el.getAttribute("placeholder")),
        title: clean(el.getAttribute("title")), nearby: labelText(el) ? "" : nearbyText(el),
        visible: vis.visible, opacity: vis.opacity, width: vis.width, height: vis.height,
        readonly: !!el.readOnly, disabled: !!el.disabled || !!el.closest("fieldset[disabled]"),
        aria_hidden: !!el.closest("[aria-hidden='true']"),
        tabindex: tabindex !== null && /^-?\d+$/.test(tabindex) ? parseInt(tabindex, 10) : null,
        frame_origin: origin,
        maxlength: tag === "input" && el.maxLength > 0 ? el.maxLength : null,
        inputmode: el.getAttribute("inputmode") || "",
        options: optionsOf(el), group: `${origin}|${groupOf(el)}`, context: contextOf(el),
        lang: (doc.documentElement.getAttribute("lang") || "").slice(0, 20),
      });
    }
    for (const frame of doc.querySelectorAll("iframe, frame")) {
      let inner = null;
      try { inner = frame.contentDocument; } catch (e) { inner = null; }  // cross-origin: unreachable
      if (inner && frame.contentWindow) collectFrom(inner, frame.contentWindow, frame.contentWindow.origin, out);
    }
  }

  function collect() {
    refs = new Map();
    const out = [];
    collectFrom(document, window, window.origin, out);
    // messages are capped at 1 MB: long option lists go first (the host then matches no option)
    const MAX_BYTES = 600000;
    if (JSON.stringify(out).length > MAX_BYTES) {
      const bySize = out.filter((f) => f.options.length).sort((a, b) => b.options.length - a.options.length);
      for (const f of bySize) {
        f.options = [];
        if (JSON.stringify(out).length <= MAX_BYTES) break;
      }
    }
    return out;
  }

  // ---- filling ------------------------------------------------------------------------------
  function setValue(el, value) {
    const tag = el.tagName.toLowerCase();
    const type = (el.getAttribute("type") || "text").toLowerCase();
    // defence in depth: whatever the host says, never write secrets or invisible fields
    if (tag === "input" && ["password", "hidden", "file", "checkbox", "radio", "submit", "button"].includes(type)) return false;
    if (el.disabled || el.readOnly) return false;
    if (/(^|\s)(cc-|current-password|new-password|one-time-code|username)/.test((el.getAttribute("autocomplete") || "").toLowerCase())) return false;
    // checked again now, not when the fields were listed: the page may have hidden it since
    const vis = visibility(el, el.ownerDocument.defaultView);
    if (!vis.visible || vis.opacity < OPACITY_FLOOR || vis.width <= 1 || vis.height <= 1) return false;
    if (tag === "select") {
      const want = String(value).toLowerCase();
      const opt = Array.from(el.options).find((o) => o.value.toLowerCase() === want || clean(o.text).toLowerCase() === want);
      if (!opt) return false;
      el.value = opt.value;
    } else {
      const proto = tag === "textarea" ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
      const setter = Object.getOwnPropertyDescriptor(proto, "value").set;
      setter.call(el, value);  // the native setter, so frameworks (React) notice the change
    }
    el.dispatchEvent(new Event("input", { bubbles: true }));
    el.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function applyValues(values) {
    const filled = [];
    for (const [ref, value] of Object.entries(values || {})) {
      const el = refs.get(ref);
      if (el && el.isConnected && setValue(el, value)) filled.push(ref);
    }
    return filled;
  }

  // ---- UI in a closed shadow root -------------------------------------------------------------
  const STYLE = `
    :host { all: initial; }
    .box { font: 13px/1.4 system-ui, sans-serif; color: #111; background: #fff; border: 1px solid #888;
           border-radius: 8px; box-shadow: 0 2px 12px rgba(0,0,0,.25); padding: 8px; max-width: 320px; }
    button { font: inherit; padding: 4px 10px; margin: 4px 4px 0 0; cursor: pointer; }
    .launch { min-width: 120px; min-height: 36px; }
    ul { margin: 4px 0; padding-left: 18px; max-height: 200px; overflow: auto; }
    .draft { white-space: pre-wrap; background: #f4f4f4; padding: 4px; margin-top: 4px; }
    .muted { color: #555; }`;

  function makeUi() {
    const host = document.createElement("memex-autofill");
    // inline !important so page CSS cannot restyle or hide memex's UI to set up a clickjack
    host.style.cssText = "all: initial !important; position: fixed !important; right: 16px !important; " +
      "bottom: 16px !important; z-index: 2147483647 !important; opacity: 1 !important; display: block !important;";
    const root = host.attachShadow({ mode: "closed" });
    const style = document.createElement("style");
    style.textContent = STYLE;
    const box = document.createElement("div");
    box.className = "box";
    root.append(style, box);
    document.documentElement.appendChild(host);
    return { host, box };
  }

  function trustedClick(event) {
    if (!event.isTrusted) return false;
    // refuse clicks on a memex UI that the page made (nearly) invisible or covered
    for (let n = ui.host; n && n.nodeType === Node.ELEMENT_NODE; n = n.parentElement) {
      if (parseFloat(getComputedStyle(n).opacity || "1") < OPACITY_FLOOR) return false;
    }
    if (event.clientX || event.clientY) {
      const hit = document.elementFromPoint(event.clientX, event.clientY);
      if (hit !== ui.host) return false;
    }
    return true;
  }

  function button(label, onClick, cls) {
    const b = document.createElement("button");
    b.textContent = label;
    if (cls) b.className = cls;
    b.addEventListener("click", (e) => { if (trustedClick(e)) onClick(e); });
    return b;
  }

  function render(state, nodes) {
    ui.host.setAttribute("data-state", state);  // the state only, never values
    ui.box.replaceChildren(...nodes);
  }

  function text(t, cls) { const p = document.createElement("div"); p.textContent = t; if (cls) p.className = cls; return p; }

  function showIdle() { render("idle", [button("Fill with memex", () => startFill("click"), "launch")]); }

  function showError(reply) {
    const state = reply.kind === "unpaired" ? "unpaired" : reply.kind === "not_permitted" ? "not_permitted" : "error";
    render(state, [text(reply.error || "memex could not fill this form."), button("Close", showIdle)]);
  }

  function fieldList(fields) {
    const ul = document.createElement("ul");
    for (const f of fields) {
      if (!f.kind) continue;
      const li = document.createElement("li");
      li.textContent = `${f.ref}: ${f.kind}${f.section ? ` (${f.section})` : ""}${f.sensitive ? " — never filled" : ""}`;
      ul.appendChild(li);
    }
    return ul;
  }

  function showConfirm(reply) {
    const fill = button("Fill", () => confirmFill(reply.token));
    render("confirm", [text(`First fill on ${reply.site}. memex will fill:`), fieldList(reply.fields),
                       fill, button("Cancel", showIdle)]);
    fill.focus();
  }

  function showFilled(reply, filled, ms) {
    const nodes = [text(`memex filled ${filled.length} field(s).`)];
    for (const ref of reply.freetext || []) {
      const slot = document.createElement("div");
      slot.appendChild(button(`Draft an answer for ${ref}`, () => draft(ref, slot)));
      nodes.push(slot);
    }
    nodes.push(button("Close", showIdle));
    render("filled", nodes);
    ui.host.setAttribute("data-filled", String(filled.length));
    ui.host.setAttribute("data-fill-ms", ms.toFixed(1));
  }

  async function send(msg) {
    try {
      return await chrome.runtime.sendMessage(msg);
    } catch (e) {
      return { status: "error", error: String(e.message || e), kind: "extension" };
    }
  }

  let started = 0;
  async function startFill(trigger) {
    started = performance.now();
    render("busy", [text("Asking memex…", "muted")]);
    // a first fill on a site may wait for the user's answer in the desktop app's window
    const hint = setTimeout(() => render("busy", [text("Asking memex… If the memex app is open, answer its question there.", "muted")]), 1500);
    const reply = await send({ type: "fill", fields: collect() });
    clearTimeout(hint);
    handleReply(reply);
  }

  async function confirmFill(token) {
    started = performance.now();
    render("busy", [text("Filling…", "muted")]);
    handleReply(await send({ type: "confirm", token }));
  }

  function handleReply(reply) {
    if (!reply || reply.status === "error") return showError(reply || {});
    if (reply.status === "confirm") return showConfirm(reply);
    if (reply.status === "fill") return showFilled(reply, applyValues(reply.values), performance.now() - started);
    showError({ error: "Unexpected reply from memex." });
  }

  async function draft(ref, slot) {
    const el = refs.get(ref);
    const question = el ? (labelText(el) || el.getAttribute("aria-label") || el.getAttribute("placeholder") || nearbyText(el)) : "";
    slot.replaceChildren(text("Drafting…", "muted"));
    const reply = await send({ type: "draft", ref, question });
    if (!reply || reply.status !== "draft") { slot.replaceChildren(text((reply && reply.error) || "No draft.")); return; }
    const box = text(reply.text || "(memex has nothing on this yet)", "draft");
    const copy = button("Copy", () => navigator.clipboard.writeText(reply.text || "").catch(() => {}));
    slot.replaceChildren(box, copy);
  }

  function hasCandidates() {
    for (const el of document.querySelectorAll(CONTROL_SELECTOR)) {
      const type = (el.getAttribute("type") || "").toLowerCase();
      if (el.tagName !== "INPUT" || CANDIDATE_TYPES.has(type)) return true;
    }
    return false;
  }

  chrome.runtime.onMessage.addListener((msg, sender) => {
    // the extension shortcut is a user gesture delivered by the browser itself
    if (sender.id === chrome.runtime.id && msg && msg.type === "shortcut") {
      if (!ui) ui = makeUi();
      startFill("shortcut");
    }
  });

  function ensureUi() {
    if (ui || !hasCandidates()) return;
    ui = makeUi();
    showIdle();
  }

  ensureUi();
  // forms that appear later (single-page apps): offer memex when the user focuses a field
  document.addEventListener("focusin", (e) => { if (e.target && e.target.matches && e.target.matches(CONTROL_SELECTOR)) ensureUi(); }, true);
})();

// Shows whether this browser is paired, and the code to approve with `memex bridge pair`.
"use strict";
const out = document.getElementById("status");
chrome.runtime.sendMessage({ type: "status" }).then((r) => {
  if (!r || r.status === "error") {
    out.textContent = (r && r.error) || "memex is not reachable. Run `memex bridge install`.";
  } else if (r.paired) {
    out.textContent = `Paired as "${r.name}". Allow a site with: memex bridge permit https://SITE`;
  } else {
    out.textContent = "";
    out.append("Not paired yet. Pairing code: ");
    const code = document.createElement("code");
    code.textContent = r.code;
    out.append(code, document.createElement("br"), `Approve with: memex bridge pair ${r.code} --name "My browser"`);
  }
}, (e) => { out.textContent = String(e.message || e); });

// memex autofill: service worker (Chromium) / background script (Firefox).
//
// Keeps ONE persistent connectNative port to the memex host (a process per message costs
// ~4x the latency). Every request is sealed with crypto_box (tweetnacl, vendored) between this
// extension's permanent pairing key and the host key; the reply must carry nonce + 1.
// The origin sent to the host is what the BROWSER says about the sender (sender.origin /
// sender.url); any origin a content-script message claims is ignored.
"use strict";

if (typeof importScripts === "function" && typeof nacl === "undefined") {
  importScripts("vendor/nacl-fast.min.js");
}

const HOST_NAME = "org.memex.bridge";
const REQUEST_TIMEOUT_MS = 60000;
// Only these keys of a content-script message are forwarded, per message type.
const FORWARDED = { fill: ["fields"], confirm: ["token"], draft: ["ref", "question"] };

let port = null;
let hello = null;          // Promise of the host's hello reply for the current port
let nextId = 1;
const pending = new Map(); // id -> {resolve, reject, timer}
let keysPromise = null;

function b64e(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}

function b64d(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function incrementNonce(nonce) {  // little-endian + 1, like sodium_increment
  const out = new Uint8Array(nonce);
  for (let i = 0, carry = 1; i < out.length && carry; i++) {
    const v = out[i] + carry;
    out[i] = v & 0xff;
    carry = v >> 8;
  }
  return out;
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

class BridgeError extends Error {
  constructor(message, kind) { super(message); this.kind = kind || "error"; }
}

function loadKeys() {
  if (!keysPromise) {
    keysPromise = chrome.storage.local.get(["pairingKey", "hostKey"]).then(async (stored) => {
      if (stored.pairingKey) {
        return { secretKey: b64d(stored.pairingKey), hostKey: stored.hostKey || null,
                 publicKey: nacl.box.keyPair.fromSecretKey(b64d(stored.pairingKey)).publicKey };
      }
      const kp = nacl.box.keyPair();
      await chrome.storage.local.set({ pairingKey: b64e(kp.secretKey) });
      return { secretKey: kp.secretKey, publicKey: kp.publicKey, hostKey: null };
    });
  }
  return keysPromise;
}

function connect() {
  if (port) return;
  port = chrome.runtime.connectNative(HOST_NAME);
  port.onMessage.addListener((msg) => {
    const entry = pending.get(msg && msg.id);
    if (!entry) return;
    pending.delete(msg.id);
    clearTimeout(entry.timer);
    entry.resolve(msg);
  });
  port.onDisconnect.addListener(() => {
    const why = (chrome.runtime.lastError && chrome.runtime.lastError.message) || "memex host exited";
    port = null;
    hello = null;
    for (const [id, entry] of pending) {
      clearTimeout(entry.timer);
      entry.reject(new BridgeError(`memex is not reachable (${why}). Run \`memex bridge install\`.`, "no_host"));
      pending.delete(id);
    }
  });
}

function post(envelope) {
  connect();
  const id = nextId++;
  envelope.id = id;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new BridgeError("memex did not answer in time.", "timeout"));
    }, REQUEST_TIMEOUT_MS);
    pending.set(id, { resolve, reject, timer });
    try {
      port.postMessage(envelope);
    } catch (e) {
      pending.delete(id);
      clearTimeout(timer);
      reject(new BridgeError(String(e.message || e), "no_host"));
    }
  });
}

async function handshake() {
  if (!hello) {
    hello = (async () => {
      const keys = await loadKeys();
      const reply = await post({ action: "hello", client_key: b64e(keys.publicKey), client_name: clientName() });
      if (reply.action !== "hello") throw new BridgeError(reply.error || "bad hello", reply.kind);
      if (keys.hostKey && keys.hostKey !== reply.host_key) {
        throw new BridgeError("memex's key changed since pairing; re-pair this browser.", "host_key_changed");
      }
      if (!keys.hostKey && reply.paired) {  // trust on first use, pinned once the user approved us
        keys.hostKey = reply.host_key;
        await chrome.storage.local.set({ hostKey: reply.host_key });
      }
      if (!reply.paired) hello = null;  // not cached: the user may approve us any moment
      return reply;
    })();
    hello.catch(() => { hello = null; });
  }
  return hello;
}

function clientName() {
  const ua = (self.navigator && navigator.userAgent) || "";
  return ua.includes("Firefox") ? "Firefox extension" : "Chromium extension";
}

async function request(inner) {
  const keys = await loadKeys();
  const hi = await handshake();
  if (!hi.paired) {
    throw new BridgeError(`Pair this browser first: run \`memex bridge pair ${hi.code} --name NAME\`.`, "unpaired");
  }
  const hostKey = b64d(hi.host_key);
  const nonce = nacl.randomBytes(24);
  const plain = new TextEncoder().encode(JSON.stringify(inner));
  const sealed = nacl.box(plain, nonce, hostKey, keys.secretKey);
  const reply = await post({ action: "request", client_key: b64e(keys.publicKey), nonce: b64e(nonce),
                             message: b64e(sealed) });
  if (reply.action === "error") {
    if (reply.kind === "unpaired") hello = null;
    throw new BridgeError(reply.error, reply.kind);
  }
  const replyNonce = b64d(reply.nonce);
  if (!sameBytes(replyNonce, incrementNonce(nonce))) throw new BridgeError("Reply nonce mismatch.", "bad_reply");
  const opened = nacl.box.open(b64d(reply.message), replyNonce, hostKey, keys.secretKey);
  if (!opened) throw new BridgeError("Reply could not be authenticated.", "bad_reply");
  return JSON.parse(new TextDecoder().decode(opened));
}

function originOf(url) {
  try { return new URL(url).origin; } catch (e) { return "null"; }
}

function senderOrigins(sender) {
  const origin = sender.origin || originOf(sender.url);
  // A message from a sub-frame is judged against the tab's page; unknown means refuse.
  const top = sender.frameId === 0 ? origin : (sender.tab && sender.tab.url ? originOf(sender.tab.url) : "null");
  return { origin, top_origin: top };
}

async function handle(msg, sender) {
  if (msg.type === "status") {
    const hi = await handshake();
    return { status: "status", paired: hi.paired, code: hi.code, name: hi.name };
  }
  const keys = FORWARDED[msg.type];
  if (!keys) throw new BridgeError("Unknown request.", "malformed");
  const inner = { type: msg.type, ts: Date.now(), ...senderOrigins(sender) };
  for (const k of keys) if (k in msg) inner[k] = msg[k];
  return request(inner);
}

chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  // content scripts of this extension only (no externally_connectable: pages cannot reach us)
  if (sender.id !== chrome.runtime.id || !msg || typeof msg.type !== "string") return false;
  if (msg.type !== "status" && !sender.tab) return false;
  handle(msg, sender).then(sendResponse, (e) => sendResponse({ status: "error", error: String(e.message || e),
                                                                kind: e.kind || "error" }));
  return true;
});

chrome.commands.onCommand.addListener((command, tab) => {
  if (command === "fill-form" && tab && tab.id !== undefined) {
    chrome.tabs.sendMessage(tab.id, { type: "shortcut" }, { frameId: 0 }).catch(() => {});
  }
});

// Open the port early so the first fill does not pay for starting the host.
handshake().catch(() => {});

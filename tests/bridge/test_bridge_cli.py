"""`memex autofill analyze` and `memex bridge ...`: the command contract and its bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from app.bridge.framing import encode_frame, read_frame
from tests.bridge.bridge_forms import FORMS_DIR
from tests.cli_support import run  # noqa: E402


def test_analyze_returns_kinds_and_profile_values(capsys, runtime) -> None:
    runtime.close()
    code, r = run(
        capsys,
        "autofill",
        "analyze",
        str(FORMS_DIR / "signup_en.html"),
        "--url",
        "https://shop.example/signup",
        "--json",
    )
    assert code == 0
    fields = {f["ref"]: f for f in r["fields"]}
    assert all(set(f) >= {"ref", "kind", "source", "sensitive", "value"} for f in r["fields"])
    assert fields["first"]["value"] == "Ada" and fields["first"]["kind"] == "given-name"
    assert {k: fields["email"][k] for k in ("ref", "kind", "source", "sensitive", "value")} == {
        "ref": "email",
        "kind": "email",
        "source": "type",
        "sensitive": False,
        "value": "ada@example.org",
    }
    assert (
        fields["pw"]["sensitive"]
        and fields["pw"]["value"] is None
        and fields["pw"]["kind"] == "current-password"
    )
    assert fields["about"]["kind"] == "freetext" and fields["about"]["value"] is None
    assert fields["fax_hp"]["kind"] is None  # honeypot hidden by a <style> rule


def test_analyze_foreign_frames_depend_on_the_url(capsys, home) -> None:
    code, r = run(
        capsys, "autofill", "analyze", str(FORMS_DIR / "frames_mixed.html"), "--no-values", "--json"
    )
    kinds = {f["ref"]: f["kind"] for f in r["fields"]}
    assert code == 0 and kinds["f1"] is None and kinds["g1"] == "tel"


@pytest.mark.parametrize(
    "args, kind",
    [
        (["missing.html"], "not_found"),
        (["{binary}"], "bad_input"),
        (["{form}", "--url", "ftp://x.example"], "bad_input"),
        (["{form}", "--url", "http://"], "bad_input"),
    ],
)
def test_analyze_bad_input(capsys, home, tmp_path: Path, args: list[str], kind: str) -> None:
    binary = tmp_path / "blob.html"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    args = [a.format(binary=binary, form=FORMS_DIR / "signup_en.html") for a in args]
    code, r = run(capsys, "autofill", "analyze", *args, "--json")
    assert code != 0 and r["kind"] == kind and r["error"]


def test_install_writes_manifests_for_all_browsers(
    capsys, home, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    code, r = run(capsys, "bridge", "install", "--json")
    assert code == 0 and {i["browser"] for i in r["installed"]} == {"chromium", "chrome", "firefox"}
    by = {i["browser"]: json.loads(Path(i["manifest"]).read_text()) for i in r["installed"]}
    assert by["chromium"]["allowed_origins"] == [f"chrome-extension://{r['extension_id']}/"]
    assert by["firefox"]["allowed_extensions"] == ["bridge@memex.local"]
    assert all(m["name"] == "org.memex.bridge" and m["type"] == "stdio" for m in by.values())
    assert (
        ".config/chromium/NativeMessagingHosts" in r["installed"][0]["manifest"]
        or "Library" in r["installed"][0]["manifest"]
    )
    launcher = Path(by["chrome"]["path"])
    assert os.access(launcher, os.X_OK) and launcher.stat().st_mode & 0o077 == 0
    code, s = run(capsys, "bridge", "status", "--json")
    assert code == 0 and all(b["installed"] and b["current"] for b in s["browsers"].values())


def test_installed_launcher_speaks_native_messaging(capsys, home, tmp_path: Path) -> None:
    code, _ = run(
        capsys,
        "bridge",
        "install",
        "--browser",
        "chromium",
        "--user-data-dir",
        str(tmp_path / "profile"),
        "--json",
    )
    manifest = tmp_path / "profile" / "NativeMessagingHosts" / "org.memex.bridge.json"
    assert code == 0 and manifest.exists()
    launcher = json.loads(manifest.read_text())["path"]
    # started the way Chromium starts it: from elsewhere, with the caller origin as argument
    proc = subprocess.run(
        [launcher, "chrome-extension://ffeieaoapigdbaaflkjkcbgbhanbehho/"],
        input=encode_frame({"action": "hello", "client_key": "A" * 43 + "=", "id": 7}),
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    import io

    reply = read_frame(io.BytesIO(proc.stdout))
    assert (
        proc.returncode == 0
        and reply is not None
        and reply["action"] == "hello"
        and reply["id"] == 7
    )


def test_pair_permit_revoke_status_audit(capsys, settings) -> None:
    from app.bridge.crypto import HostKey
    from app.bridge.service import BridgeService
    from app.bridge.state import BridgeState
    from tests.bridge.bridge_client import FakeExtension

    state = BridgeState(settings.bridge_dir)
    service = BridgeService(
        state=state, host_key=HostKey.load_or_create(settings.bridge_dir), memory=None
    )  # type: ignore[arg-type]
    ext = FakeExtension(service.handle)
    ext.hello()
    code, r = run(capsys, "bridge", "pair", "--json")
    assert code == 0 and [p["code"] for p in r["pending"]] == [ext.code]
    code, r = run(capsys, "bridge", "pair", ext.code, "--json")
    assert code != 0 and r["kind"] == "bad_input"  # a pairing needs a name
    code, r = run(capsys, "bridge", "pair", "ZZZZZZZZ", "--name", "x", "--json")
    assert code != 0 and r["kind"] == "not_found"
    code, r = run(capsys, "bridge", "pair", ext.code.lower(), "--name", "Laptop Chromium", "--json")
    assert code == 0 and r["paired"]["name"] == "Laptop Chromium"
    code, r = run(capsys, "bridge", "permit", "Shop.Example:443", "--json")
    assert code == 0 and r["permitted"] == "https://shop.example"
    code, r = run(capsys, "bridge", "permit", "javascript:alert(1)", "--json")
    assert code != 0 and r["kind"] == "bad_input"
    code, s = run(capsys, "bridge", "status", "--json")
    assert s["sites"] == ["https://shop.example"] and s["pairings"][0]["name"] == "Laptop Chromium"
    assert s["pending"] == [] and s["app_running"] is False
    code, r = run(capsys, "bridge", "revoke", "https://shop.example", "--json")
    assert code == 0 and r["revoked"] == "https://shop.example"
    code, r = run(capsys, "bridge", "revoke", "https://shop.example", "--json")
    assert code != 0 and r["kind"] == "not_found"
    code, r = run(capsys, "bridge", "revoke", "--json")
    assert code == 2 and r["kind"] == "usage"
    code, r = run(capsys, "bridge", "revoke", "--pairing", "Laptop Chromium", "--json")
    assert code == 0 and r["revoked_pairings"] == 1
    assert ext.request({"type": "ping"})["kind"] == "unpaired"
    code, r = run(capsys, "bridge", "audit", "--json")
    assert [e["action"] for e in r["events"]][:4] == ["unpair", "revoke", "permit", "pair"]
    state.close()


def test_packaging_templates_match_what_install_writes() -> None:
    from app.bridge.install import host_manifest

    root = Path(__file__).resolve().parents[2] / "packaging" / "native-messaging"
    for family in ("chromium", "firefox"):
        template = json.loads((root / f"org.memex.bridge.{family}.json").read_text())
        assert template == host_manifest(family, Path("@HOST_LAUNCHER@"))


def test_extension_manifests_pin_the_id_and_agree() -> None:
    import base64
    import hashlib

    from app.bridge.install import CHROMIUM_EXTENSION_ID, FIREFOX_EXTENSION_ID

    ext = Path(__file__).resolve().parents[2] / "assets" / "browser-extension"
    chromium = json.loads((ext / "manifest.json").read_text())
    firefox = json.loads((ext / "manifest.firefox.json").read_text())
    digest = hashlib.sha256(base64.b64decode(chromium["key"])).hexdigest()[:32]
    assert "".join(chr(ord("a") + int(c, 16)) for c in digest) == CHROMIUM_EXTENSION_ID
    assert firefox["browser_specific_settings"]["gecko"]["id"] == FIREFOX_EXTENSION_ID
    for m in (chromium, firefox):
        assert m["manifest_version"] == 3 and "nativeMessaging" in m["permissions"]
        assert all(not cs["all_frames"] for cs in m["content_scripts"])
        assert "externally_connectable" not in m
    assert (ext / "vendor" / "nacl-fast.min.js").exists() and (
        ext / "vendor" / "tweetnacl-LICENSE.txt"
    ).exists()

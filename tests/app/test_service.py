"""The resident service: start on first need, idle shutdown, kill -9, stale files, two CLIs,
version skew, socket permissions, a light client path."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import run_in_process
from app.service import client
from app.service.lock import lock_held, read_owner
from app.service.paths import lock_path, socket_path
from app.service.server import peer_uid

ROOT = Path(__file__).resolve().parents[2]
HEAVY = [
    "torch",
    "transformers",
    "chromadb",
    "sentence_transformers",
    "llama_cpp",
    "PySide6",
    "peft",
]


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch, memex_home: Path, tmp_path: Path):
    """Opt into the service (tests default to MEMEX_NO_SERVICE=1); stop every service after."""
    monkeypatch.delenv("MEMEX_NO_SERVICE", raising=False)
    monkeypatch.setenv("MEMEX_SERVICE_WARM_UP", "0")  # these tests need no model
    yield memex_home
    stop_services(tmp_path)


def stop_services(root: Path) -> None:
    for lock in root.rglob("service.lock"):
        owner = read_owner(lock)
        if not client.stop(lock.parent, wait=True) and owner is not None:
            os.kill(owner.pid, signal.SIGKILL)
        if owner is not None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and owner.alive():
                time.sleep(0.05)


def memex(
    *args: str, stdin: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def pid_of(home: Path) -> int:
    info = client.status(home)
    assert info is not None, "no service answers"
    return int(info["pid"])


def wait_until(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_first_command_starts_the_service_and_it_stops_when_idle(service_env: Path, monkeypatch):
    monkeypatch.setenv("MEMEX_SERVICE_IDLE_MINUTES", "0.03")  # ~2 s
    res = memex("profile", "set", "email", "ana@example.org", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["key"] == "email"
    assert lock_held(lock_path(service_env))
    assert wait_until(lambda: not lock_held(lock_path(service_env)), timeout=90)
    assert not socket_path(service_env).exists()
    res = memex(
        "profile", "show", "--json"
    )  # the next command starts a fresh one and sees the value
    assert [f["value"] for f in json.loads(res.stdout)["fields"]] == ["ana@example.org"]


def test_status_start_stop_and_socket_permissions(service_env: Path):
    res = memex("service", "status", "--json")
    assert json.loads(res.stdout) == {"running": False, "home": str(service_env), "jobs": []}
    res = memex("service", "start", "--json")
    started = json.loads(res.stdout)
    assert res.returncode == 0 and started["started"] is True
    assert stat.S_IMODE(socket_path(service_env).stat().st_mode) == 0o600
    assert stat.S_IMODE(service_env.stat().st_mode) == 0o700
    status = json.loads(memex("service", "status", "--json").stdout)
    assert status["running"] is True and status["pid"] == started["pid"]
    res = memex("service", "stop", "--json")
    assert json.loads(res.stdout) == {"stopped": True, "pid": started["pid"]}
    assert not lock_held(lock_path(service_env))
    res = memex("service", "stop")
    assert res.returncode == 0 and "No memex service" in res.stdout


def test_peer_credentials_name_this_user():
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert peer_uid(a) == os.getuid()


def test_killed_mid_request_one_sentence_then_a_fresh_service(service_env: Path):
    assert memex("service", "start").returncode == 0
    old = pid_of(service_env)
    # `chat --json` waits in the service for the next stdin line: a request surely in flight
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "chat", "--json"],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert wait_until(lambda: (client.status(service_env) or {}).get("in_flight") == 1)
    os.kill(old, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    reply = json.loads(out.strip().splitlines()[-1])
    assert reply["kind"] == "service_unavailable" and reply["error"].count(".") == 1
    assert "Traceback" not in err
    # the killed service left its socket and lock file behind: both are recognised as stale
    assert socket_path(service_env).exists() and lock_path(service_env).exists()
    assert read_owner(lock_path(service_env)) is None
    assert json.loads(memex("service", "status", "--json").stdout)["running"] is False
    res = memex("memories", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["total"] == 0
    assert pid_of(service_env) != old


def test_ctrl_c_on_the_client_interrupts_the_command_in_the_service(service_env: Path):
    assert memex("service", "start").returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "chat", "--json"],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert wait_until(lambda: (client.status(service_env) or {}).get("in_flight") == 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    # as in-process: Ctrl-C ends the chat, which prints its one JSON object
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["turns"] == []
    assert wait_until(lambda: (client.status(service_env) or {}).get("in_flight") == 0)


def test_two_clis_at_once_share_one_service(service_env: Path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "app.cli", "profile", "set", key, value, "--json"],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for key, value in (("email", "ana@example.org"), ("tel", "+31 6 1234 5678"))
    ]
    results = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1] for r in results]
    fields = json.loads(memex("profile", "show", "--json").stdout)["fields"]
    assert sorted(f["key"] for f in fields) == ["email", "tel"]
    assert len(list(service_env.glob("service.sock"))) == 1
    info = client.status(service_env)
    assert info is not None and info["requests"] == 3  # all three ran in the one service


def test_a_newer_client_restarts_an_older_service(service_env: Path, monkeypatch):
    monkeypatch.setenv("MEMEX_SERVICE_VERSION", "0.0.1-old")
    assert memex("service", "start").returncode == 0
    old = client.status(service_env)
    assert old is not None and old["version"] == "0.0.1-old"
    monkeypatch.delenv("MEMEX_SERVICE_VERSION")
    res = memex("memories", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["total"] == 0
    new = client.status(service_env)
    assert new is not None and new["version"] != "0.0.1-old" and new["pid"] != old["pid"]


def test_service_that_cannot_start_falls_back_in_process(service_env: Path):
    service_env.mkdir(parents=True, exist_ok=True)
    (service_env / "settings.json").write_text("{not json")
    res = memex("memories", "--json")
    assert res.returncode == 1 and json.loads(res.stdout)["kind"] == "bad_settings"
    assert not lock_held(lock_path(service_env))


def test_client_path_loads_no_heavy_library(service_env: Path):
    assert memex("service", "start").returncode == 0
    code = (
        "import sys\nfrom app.cli import main\n"
        "try:\n    main(['memories', '--json'])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"print(sorted(m for m in {HEAVY + ['pydantic', 'sqlalchemy', 'app.runtime']!r}"
        " if m in sys.modules))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert json.loads(lines[0])["total"] == 0 and lines[-1] == "[]"


def test_a_command_the_service_answers_never_imports_click(service_env: Path):
    assert memex("service", "start").returncode == 0
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "app.cli", "memories", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["total"] == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines()}
    assert "app.service.client" in imported
    assert not imported & {"click", "app.cli", "app.commands._common", "app.service.jobs"}


def test_the_thin_entry_routes_the_same_commands_as_the_cli():
    import app.cli
    from app.service import entry

    assert entry.SERVICE_COMMANDS == app.cli.SERVICE_COMMANDS
    assert entry.EXCLUSIVE_COMMANDS == app.cli.EXCLUSIVE_COMMANDS


class _Refuse:
    def profile(self) -> dict[str, str]:
        raise AssertionError("the running service should have answered")

    def draft(self, question: str) -> dict:
        raise AssertionError("the running service should have answered")


def test_bridge_host_reads_the_profile_through_the_running_service(service_env: Path):
    from app.service.access import ServiceAccess

    assert memex("profile", "set", "email", "ada@example.org").returncode == 0
    access = ServiceAccess(service_env, _Refuse())
    assert access.profile() == {"email": "ada@example.org"} and access.last_route == "service"
    assert memex("service", "stop").returncode == 0

    class Direct(_Refuse):
        def profile(self) -> dict[str, str]:
            return {"email": "direct"}

    access = ServiceAccess(service_env, Direct())  # no service: the host's own route, none started
    assert access.profile() == {"email": "direct"} and not lock_held(lock_path(service_env))


HOST_SCRIPT = """
import sys
from app.runtime import Runtime
from app.service.host import host_service
from app.settings import load_settings
rt = Runtime(load_settings())
service = host_service(rt, hosted_by="desktop app", open_store=lambda: rt.memory)
print("hosting" if service else "not hosting", flush=True)
sys.stdin.readline()
service.stop()
rt.close()
"""


def test_the_desktop_app_hosts_the_service_and_keeps_it(service_env: Path, monkeypatch):
    assert memex("service", "start").returncode == 0
    standalone = pid_of(service_env)
    app = subprocess.Popen(
        [sys.executable, "-c", HOST_SCRIPT],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert app.stdout.readline().strip() == "hosting"  # the standalone one made way
        info = client.status(service_env)
        assert (
            info is not None
            and info["hosted_by"] == "desktop app"
            and info["pid"] == app.pid != standalone
        )
        res = memex("profile", "set", "tel", "+44 20 7946 0000", "--json")
        assert res.returncode == 0 and json.loads(res.stdout)["key"] == "tel"
        res = memex("service", "stop", "--json")
        assert res.returncode == 1 and json.loads(res.stdout)["kind"] == "service_hosted"
        monkeypatch.setenv("MEMEX_SERVICE_VERSION", "99.0-newer")
        res = memex("profile", "show", "--json")
        assert res.returncode == 1 and json.loads(res.stdout)["kind"] == "service_version"
        assert client.status(service_env)["pid"] == app.pid  # still the app's
    finally:
        app.communicate("\n", timeout=60)
    assert app.returncode == 0
    assert not lock_held(lock_path(service_env))


def test_login_autostart_entry_is_written_and_removed(
    memex_home: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    res = memex("service", "install", "--json")
    entry = Path(json.loads(res.stdout)["path"])
    assert res.returncode == 0 and entry.parent == tmp_path / "config" / "autostart"
    text = entry.read_text()
    assert "[Desktop Entry]" in text and f"--home {memex_home}" in text and "app.service" in text
    assert json.loads(memex("service", "uninstall", "--json").stdout)["removed"] is True
    assert not entry.exists()
    assert json.loads(memex("service", "uninstall", "--json").stdout)["removed"] is False


def test_typed_client_call_through_the_service_and_in_process(service_env: Path, monkeypatch):
    """`call` is what other front-ends (the MCP server) use: one object, or ServiceCallError."""
    assert client.call("profile", ["set", "email", "bo@example.org"])["key"] == "email"
    assert client.status(service_env) is not None  # it ran in the service it started
    with pytest.raises(client.ServiceCallError) as bad:
        client.call("profile", ["set", "shoe-size", "44"])
    assert bad.value.exit_code == 1 and "WHATWG" in bad.value.message
    stop_services(service_env.parent)
    monkeypatch.setenv("MEMEX_NO_SERVICE", "1")  # the same call, in this process
    with pytest.raises(client.ServiceCallError) as none:  # unless no runner was handed in
        client.call("profile", ["show"])
    assert none.value.kind == "service_unavailable"
    fields = client.call("profile", ["show"], local=run_in_process)["fields"]
    assert [f["value"] for f in fields] == ["bo@example.org"] and client.status(service_env) is None


def test_an_exclusive_command_stops_the_service_first(service_env: Path):
    from app.service.route import route

    assert memex("service", "start").returncode == 0
    assert route(["vault", "status", "--json"], {"remember"}, {"vault"}) is None  # runs in-process
    assert not lock_held(lock_path(service_env))


def test_service_threads_open_the_vector_store_at_once(tmp_path: Path):
    """Warm-up and the first request both open chromadb in one process: one client, no error."""
    import threading

    from memory.vectors import VectorStore

    store = VectorStore(tmp_path / "chroma")
    got: list[object] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            got.append(store._coll())
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(got) == 4 and all(c is got[0] for c in got)
    store.close()

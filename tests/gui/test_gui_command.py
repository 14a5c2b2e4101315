"""`memex gui --screenshot`: real offscreen renders of every screen; bad input gets one sentence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.commands.gui import TABS

ROOT = Path(__file__).resolve().parents[2]


def memex(home: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        cwd=ROOT,
    )


def test_screenshot_of_every_screen(tmp_path: Path) -> None:
    from PySide6.QtGui import QImage

    home = tmp_path / "home"
    for tab in TABS:
        png = tmp_path / f"{tab}.png"
        r = memex(
            home, "--json", "gui", "--screenshot", str(png), "--tab", tab, "--size", "900x600"
        )
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out == {"screenshot": str(png), "tab": tab, "width": 900, "height": 600}
        img = QImage(str(png))
        assert (img.width(), img.height()) == (900, 600)
        # a real render, not a blank image: many distinct colours
        colours = {img.pixel(x, y) for x in range(0, 900, 15) for y in range(0, 600, 15)}
        assert len(colours) > 5
    assert not (home / "gui.ini").exists()  # screenshots do not touch the remembered geometry


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--screenshot", "shot.jpg"], "must end in .png"),
        (["--screenshot", "missing-dir/shot.png"], "does not exist"),
        (["--screenshot", "shot.png", "--size", "big"], "--size must look like"),
        (["--screenshot", "shot.png", "--size", "10x10"], "between 400x300"),
        (["--ask", "hello"], "only works together with --screenshot"),
        (["--screenshot", "shot.png", "--tab", "nope"], "nope"),
        (["--tab", "bridge-confirm"], "only works together with --screenshot"),
    ],
)
def test_bad_input_is_one_clear_error(tmp_path: Path, args: list[str], needle: str) -> None:
    fixed = [a if not a.endswith((".png", ".jpg")) else str(tmp_path / a) for a in args]
    r = memex(tmp_path / "home", "--json", "gui", *fixed, timeout=60)
    assert r.returncode != 0
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert needle in out["error"]
    assert "Traceback" not in r.stderr


def test_screenshot_of_the_first_fill_dialog(tmp_path: Path) -> None:
    """The confirmation dialog drawn over the Bridge screen, with this data folder's profile."""
    from PySide6.QtGui import QImage

    home = tmp_path / "home"
    assert memex(home, "--json", "profile", "set", "email", "ada@example.org").returncode == 0
    png = tmp_path / "confirm.png"
    r = memex(home, "--json", "gui", "--screenshot", str(png), "--tab", "bridge-confirm")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tab"] == "bridge-confirm"
    img = QImage(str(png))
    # the window behind is dimmed: its top-left corner is darker than an undimmed render
    plain = tmp_path / "bridge.png"
    assert (
        memex(home, "--json", "gui", "--screenshot", str(plain), "--tab", "bridge").returncode == 0
    )
    assert img.pixelColor(5, 300).lightness() < QImage(str(plain)).pixelColor(5, 300).lightness()


def test_missing_pyside6_says_install_the_gui_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from app.commands import gui as gui_cmd
    from app.errors import NotInstalledError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "PySide6" else real(name, *a)
    )
    with pytest.raises(NotInstalledError, match=r"install the gui extra"):
        gui_cmd._require_qt()


def test_help_does_not_load_qt() -> None:
    code = (
        "import sys; from app.cli import main\n"
        "try:\n    main(['gui', '--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('PySide6', 'torch', 'chromadb', 'llama_cpp') if m in sys.modules])"
    )
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert r.stdout.strip().splitlines()[-1] == "[]"

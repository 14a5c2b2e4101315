"""Running one `memex` command line inside the service, against the warm Runtime.

The command is the same click command the CLI runs in-process; only its terminal (see
streams.py), its Runtime (app.commands._common.HOSTED_RUNTIME) and the folder relative
paths are read from (the client's) differ. Ctrl-C on the client raises KeyboardInterrupt
in the request thread, exactly where an in-process Ctrl-C would land.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.runtime import Runtime

REQUEST_CWD: ContextVar[str | None] = ContextVar("memex_request_cwd", default=None)


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else ctypes.c_void_p(0)
    )


class Cancel:
    """Delivers a client's Ctrl-C to the thread running its command, and only while it does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread_id = threading.get_ident()
        self._armed = False
        self.fired = False

    def arm(self) -> None:
        with self._lock:
            self._thread_id = threading.get_ident()
            self._armed = True

    def disarm(self) -> None:
        with self._lock:
            self._armed = False
            _set_async_exc(self._thread_id, None)  # drop an interrupt not yet delivered

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._armed:
                _set_async_exc(self._thread_id, KeyboardInterrupt)


def patch_relative_paths() -> None:
    """click.Path arguments resolve against the client's folder, not the service's."""
    import click

    if getattr(click.Path.convert, "_memex_cwd", False):
        return
    original = click.Path.convert

    def convert(self: click.Path, value: Any, param: Any, ctx: Any) -> Any:
        cwd = REQUEST_CWD.get()
        if cwd and isinstance(value, (str, os.PathLike)):
            text = os.fspath(value)
            if text and text != "-" and not os.path.isabs(text) and not text.startswith("~"):
                value = os.path.join(cwd, text)
        return original(self, value, param, ctx)

    convert._memex_cwd = True  # type: ignore[attr-defined]
    click.Path.convert = convert  # type: ignore[method-assign, assignment]


def run_argv(argv: list[str], runtime: Callable[[], Runtime], cwd: str, cancel: Cancel) -> int:
    """Run `memex ARGV` in this thread; returns the exit status the CLI would have."""
    import sys

    from app.cli import run_in_process
    from app.commands._common import HOSTED_RUNTIME

    cwd_token = REQUEST_CWD.set(cwd)
    rt_token = HOSTED_RUNTIME.set(runtime)
    code = 0
    try:
        cancel.arm()
        try:
            run_in_process(argv)
        finally:
            cancel.disarm()
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        sys.stderr.write("Aborted.\n")
        code = 130
    except Exception:  # a bug: the client sees the traceback an in-process run would print
        import traceback

        sys.stderr.write(traceback.format_exc())
        code = 1
    finally:
        HOSTED_RUNTIME.reset(rt_token)
        REQUEST_CWD.reset(cwd_token)
    return code


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    import sys

    sys.stderr.write(f"{code}\n")  # sys.exit("message") prints the message and exits 1
    return 1

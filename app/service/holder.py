"""The service's warm Runtime: loaded in parallel at start, rebuilt when settings change."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.runtime import Runtime
    from app.settings import Settings

log = logging.getLogger(__name__)


class RuntimeHolder:
    """One Runtime shared by every request.

    A standalone service owns its Runtime and swaps in a new one when settings.json changes
    (`memex models use`, the GUI's settings): the old one is closed once no request uses it.
    A hosted service (the desktop app) borrows the app's Runtime and never closes it.
    """

    def __init__(
        self, home: Path, runtime: Runtime | None = None, opener: Callable[[], Any] | None = None
    ) -> None:
        self.home = home
        self.owned = runtime is None
        self._opener = opener  # the host's own locked way to open the store (the app's Services)
        self._lock = threading.Lock()
        self._runtime = runtime
        self._settings_stamp: Any = self._stamp() if runtime is not None else None
        self._retired: list[Runtime] = []
        self.store_ready = threading.Event()
        if runtime is not None:
            self.store_ready.set()

    def _stamp(self) -> Any:
        from app.settings import SETTINGS_FILE

        try:
            st = (self.home / SETTINGS_FILE).stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _load(self) -> Settings:
        from app.settings import load_settings

        return load_settings(home=self.home)

    def get(self) -> Runtime:
        if not self.owned:
            assert self._runtime is not None
            if self._opener is not None:
                self._opener()
            return self._runtime
        with self._lock:
            if self._runtime is None:
                from app.runtime import Runtime

                self._settings_stamp = self._stamp()
                rt = Runtime(self._load())
                _ = rt.memory  # opened here, under the lock: Runtime.memory itself is not locked
                self._runtime = rt
            elif self.owned and self._stamp() != self._settings_stamp:
                self._settings_stamp = self._stamp()
                new = self._load()
                if new != self._runtime.settings:
                    from app.runtime import Runtime

                    rt = Runtime(new)
                    _ = rt.memory
                    self._retired.append(self._runtime)
                    self._runtime = rt
                    log.info("settings changed: a fresh Runtime serves the next requests")
            return self._runtime

    def open_store(self) -> None:
        """Open the store before any request touches it (Runtime.memory is not locked)."""
        try:
            _ = self.get().memory
        finally:
            self.store_ready.set()

    def warm_up(self) -> None:
        """Load the embedder and the chat model side by side (most of a cold start is imports)."""
        rt = self.get()
        start = time.perf_counter()

        def embedder() -> None:
            try:
                rt.memory.search("warm up", k=1)
                log.info("embedder warm %.2f s into the warm-up", time.perf_counter() - start)
            except Exception:  # noqa: BLE001 - the first real request reports the error
                log.warning("embedder warm-up failed", exc_info=True)

        def model() -> None:
            try:
                _ = rt.backend
                log.info("chat model warm %.2f s into the warm-up", time.perf_counter() - start)
            except Exception:  # noqa: BLE001 - no model installed: search and remember still work
                log.warning("model warm-up failed", exc_info=True)

        threads = [
            threading.Thread(target=f, name=f"warm-{f.__name__}", daemon=True)
            for f in (embedder, model)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def release_retired(self) -> None:
        """Close Runtimes replaced by a settings change (call when no request is in flight)."""
        with self._lock:
            retired, self._retired = self._retired, []
        for rt in retired:
            try:
                rt.close()
            except Exception:  # noqa: BLE001 - the request it followed has already succeeded
                log.warning("closing a retired Runtime failed", exc_info=True)

    def close(self) -> None:
        self.release_retired()
        with self._lock:
            rt, self._runtime = self._runtime, None
        if rt is not None and self.owned:
            rt.close()

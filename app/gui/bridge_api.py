"""The Bridge screen's calls into app/bridge (worker threads only): plain data in and out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from app.errors import MemexError

_VAULT: list[Any] = []  # the app's VaultAccess: it holds the key after the unlock screen


def use_vault(vault: Any) -> None:
    """Open the bridge state with the app's own key (the one the unlock screen gave it)."""
    _VAULT[:] = [vault]


@contextmanager
def _state(settings: Any) -> Iterator[Any]:
    from app.bridge.state import open_state

    state = open_state(settings, _VAULT[0] if _VAULT else None)  # keyed when the vault is on
    try:
        yield state
    finally:
        state.close()


def snapshot(settings: Any) -> dict[str, Any]:
    from app.bridge.install import installed

    with _state(settings) as st:
        return {
            "browsers": installed(settings),
            "pending": [p.to_json() for p in st.pending()],
            "pairings": [p.to_json() for p in st.pairings()],
            "sites": st.sites(),
            "always": st.confirmations(),
            "audit": st.audit_log(limit=200),
        }


def install(settings: Any, browser: str) -> list[dict[str, str]]:
    from app.bridge.install import install as do_install

    return [i.to_json() for i in do_install(settings, [browser])]


def approve(settings: Any, code: str, name: str) -> None:
    with _state(settings) as st:
        if st.approve(code, name) is None:
            raise MemexError(
                f"No browser is waiting with the code {code}; ask it to pair again.",
                kind="not_found",
            )


def revoke_pairing(settings: Any, name_or_code: str) -> None:
    with _state(settings) as st:
        st.revoke_pairing(name_or_code)


def _site_call(method: str) -> Callable[[Any, str], Any]:
    def call(settings: Any, site: str) -> Any:
        from app.bridge.state import SiteError

        with _state(settings) as st:
            try:
                return getattr(st, method)(site)
            except SiteError as exc:
                raise MemexError(f"Not a web site: {exc}.", kind="bad_input") from exc

    return call


permit = _site_call("permit")
revoke_site = _site_call("revoke_site")

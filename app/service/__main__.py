"""`python -m app.service --home DIR`: the detached service process the CLI starts."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

_T0 = time.perf_counter()  # as close to process start as this module gets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memex-service")
    parser.add_argument("--home", required=True)
    parser.add_argument("--no-warm-up", action="store_true")
    parser.add_argument(
        "--idle-minutes",
        type=float,
        default=None,
        help="override service_idle_minutes (0: stay until logout; login autostart)",
    )
    args = parser.parse_args(argv)
    home = Path(args.home)
    os.environ["MEMEX_NO_SERVICE"] = "1"  # commands run here, and their children, never route back
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s memex-service %(levelname)s %(message)s",
    )

    from app.errors import MemexError
    from app.service.server import Service
    from app.settings import load_settings

    try:
        idle_minutes = load_settings(home=home).service_idle_minutes
        if args.idle_minutes is not None:
            idle_minutes = args.idle_minutes
    except MemexError as exc:
        logging.error("cannot start: %s", exc.message)
        return 1
    service = Service(home, idle_s=idle_minutes * 60 if idle_minutes > 0 else None)
    if not service.start():
        logging.info("another memex service owns %s", home)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: service.stop(wait=False))
    signal.signal(signal.SIGINT, lambda *_: service.stop(wait=False))
    listening = time.perf_counter()
    try:
        service.holder.open_store()
        opened = time.perf_counter()
        if not args.no_warm_up and os.environ.get("MEMEX_SERVICE_WARM_UP", "1") != "0":
            service.holder.warm_up()
        # where a cold start goes (process start -> listening -> store open -> models warm)
        logging.info(
            "cold start: listening %.2f s, store open %.2f s, warm %.2f s after process start",
            listening - _T0,
            opened - _T0,
            time.perf_counter() - _T0,
        )
    except Exception:  # noqa: BLE001 - each request then reports the error as its own
        logging.warning("warm-up failed", exc_info=True)
    while not service.wait(0.5):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Install memex with the dev extras into .venv (first run only) and run the whole test suite.
# Browser tests need Debian's chromium at /usr/bin/chromium and skip cleanly without it.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" "dev,gui,train,bridge"
export QT_QPA_PLATFORM=offscreen
exec .venv/bin/python -m pytest "$@"

#!/usr/bin/env bash
# Install memex into .venv (first run only) and open the desktop app. Extra arguments go to `memex`.
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh" "gui,train,bridge"
exec .venv/bin/memex "$@"

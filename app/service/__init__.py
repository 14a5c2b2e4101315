"""The resident memex service: one process owns MEMEX_HOME; the CLI and the other front-ends
talk to it over an owner-only Unix socket (see DESIGN.md, "Processes")."""

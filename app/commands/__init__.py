"""Subcommands of `memex`; each module is imported only when its command runs."""

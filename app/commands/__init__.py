"""Subcommands of `memex`; each module is imported only when its command runs.

Inside a module, what a command needs beyond click (the store, models, torch, Qt) is imported
in the command's function body, not at the top: `memex CMD --help` then loads none of it
(tests/test_architecture.py checks every subcommand). Those imports are for speed, never to
dodge an import cycle: app.cli and app.commands sit above everything they import.
"""

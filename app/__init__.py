"""memex application layer: the command line, the desktop app, the browser bridge."""

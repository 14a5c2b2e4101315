"""The screens of the main window; `PAGES` maps a tab name to its page class."""

from __future__ import annotations

# tab name -> (sidebar label, "module:Class"); order is the sidebar order.
PAGES: dict[str, tuple[str, str]] = {
    "chat": ("Chat", "app.gui.views.chat:ChatPage"),
    "memories": ("Memories", "app.gui.views.memories:MemoriesPage"),
    "profile": ("Profile", "app.gui.views.profile:ProfilePage"),
    "training": ("Training", "app.gui.views.training:TrainingPage"),
    "models": ("Models", "app.gui.views.models:ModelsPage"),
    "bridge": ("Bridge", "app.gui.views.bridge:BridgePage"),
}
# Names that open a section inside a screen: name -> (screen, section index).
SECTIONS: dict[str, tuple[str, int]] = {"timeline": ("memories", 1), "inbox": ("memories", 2)}

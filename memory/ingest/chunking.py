"""Split text into retrieval chunks of roughly `target` characters on natural boundaries."""

from __future__ import annotations

import re

_PARA = re.compile(r"\n\s*\n")
_SENT = re.compile(r"(?<=[.!?])\s+")


def chunk_text(text: str, target: int = 1200) -> list[str]:
    """Paragraph-aware packing; a paragraph longer than `target` is split on sentences, then
    hard."""
    text = text.strip()
    if len(text) <= target:
        return [text] if text else []
    pieces: list[str] = []
    for para in _PARA.split(text):
        para = para.strip()
        if not para:
            continue
        if len(para) <= target:
            pieces.append(para)
            continue
        for sent in _SENT.split(para):
            while len(sent) > target:
                cut = sent.rfind(" ", 0, target)
                cut = cut if cut > target // 2 else target
                pieces.append(sent[:cut].strip())
                sent = sent[cut:]
            if sent.strip():
                pieces.append(sent.strip())
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if current and len(current) + 2 + len(piece) > target:
            chunks.append(current)
            current = piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks

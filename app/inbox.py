"""Profile proposals: when memories arrive, suggest profile values for the review inbox.

Patterns (memory.extract) find most values; the local model is asked only about first-person
notes the patterns found nothing in, and its answers are kept only when the value literally
occurs in the note (a 135M model invents). Values from superseded memories are never proposed,
and nothing enters the profile until the user accepts it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from app.errors import MemexError
from memory import MemoryStoreError
from memory.extract import MODEL_PROMPT, Extracted, extract, parse_model_reply
from memory.inbox import Inbox, InboxItem

if TYPE_CHECKING:
    from memory import Memory, MemoryStore

log = logging.getLogger(__name__)

MODEL_KEYS = frozenset(
    {
        "name",
        "email",
        "tel",
        "street-address",
        "postal-code",
        "address-level2",
        "country-name",
        "bday",
        "organization",
        "organization-title",
    }
)
# Model calls per batch of new memories: an import of thousands of notes must not take hours.
MAX_MODEL_CALLS = 16
MAX_MODEL_TEXT = 1500
# First-person cues that a note states a profile fact, so asking the model is worthwhile.
_PERSONAL = re.compile(
    r"\b(?:my (?:name|e-?mail|phone|mobile|number|address|birthday|employer|company|title|job)|"
    r"i (?:was born|live|moved|work|joined|started working)|call me|"
    r"mein(?:e)? (?:name|e-?mail|nummer|handynummer|adresse|geburtstag|arbeitgeber)|ich "
    r"(?:wohne|arbeite|bin am)|"
    r"(?:o )?meu (?:nome|e-?mail|n[úu]mero|endere[çc]o|anivers[áa]rio)|a minha "
    r"morada|(?:moro|trabalho|nasci)|"
    r"mi (?:nombre|correo|n[úu]mero|direcci[óo]n|cumplea[ñn]os)|(?:vivo|trabajo|nac[íi])|"
    r"(?:mon|ma) (?:nom|e-?mail|num[ée]ro|adresse|anniversaire)|j'habite|je travaille|je suis "
    r"n[ée]e?)\b",
    re.IGNORECASE,
)

Generate = Callable[[str], str]


def proposals_for(memory: Memory, generate: Generate | None) -> list[Extracted]:
    """Profile values in one memory: patterns first, then (optionally) the local model."""
    found = extract(memory.text)
    if found or generate is None or not _PERSONAL.search(memory.text):
        return found
    note = memory.text[:MAX_MODEL_TEXT]
    try:
        reply = generate(MODEL_PROMPT.format(text=note))
    except MemexError as exc:  # the model could not load: proposals by pattern still stand
        log.warning("inbox: local model unavailable (%s)", exc.message)
        return found
    return parse_model_reply(reply, note, MODEL_KEYS)


def propose(
    store: MemoryStore, mems: Sequence[Memory], generate: Generate | None = None
) -> list[InboxItem]:
    """Propose values from `mems` (oldest first, so newer values supersede older ones)."""
    inbox = Inbox(store)
    created: list[InboxItem] = []
    calls = 0

    def limited(prompt: str) -> str:
        nonlocal calls
        calls += 1
        return generate(prompt) if generate is not None and calls <= MAX_MODEL_CALLS else ""

    for mem in sorted(mems, key=lambda m: m.when):
        current = store.get(mem.id)  # re-read: a later memory of the same batch may supersede it
        if current is None or current.superseded_by:
            continue
        for value in proposals_for(current, limited if generate is not None else None):
            try:
                item = inbox.propose(
                    value.key,
                    value.value,
                    current,
                    confidence=value.confidence,
                    method="model" if value.confidence < 0.6 else "pattern",
                    evidence=value.evidence,
                )
            except (
                MemoryStoreError
            ) as exc:  # one bad value (e.g. too long) must not lose the others
                log.warning("inbox: skipped %s=%r (%s)", value.key, value.value, exc)
                continue
            if item is not None:
                created.append(item)
    inbox.sweep_superseded()
    return created

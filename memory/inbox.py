"""The profile review inbox: values proposed from memories wait here for the user's decision.

Nothing enters the profile without `accept`. Statuses: pending -> accepted | rejected |
superseded (a newer memory proposed another value for the key, or the source memory itself
was superseded). Forgetting a memory deletes its proposals (foreign key cascade).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from memory import profile as profile_rows
from memory.db import from_iso, to_iso, utcnow
from memory.errors import BadInput, NotFound
from memory.types import Memory, ProfileField

if TYPE_CHECKING:
    from memory.store import MemoryStore

STATUSES = ("pending", "accepted", "rejected", "superseded")


@dataclass(frozen=True)
class InboxItem:
    """A proposed profile value and where it came from."""

    id: int
    key: str
    value: str
    source_memory: str | None
    confidence: float
    status: str
    method: str = "pattern"
    evidence: str = ""
    previous_value: str | None = None
    memory_at: datetime | None = None
    created_at: datetime | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "key": self.key,
            "value": self.value,
            "source_memory": self.source_memory,
            "confidence": round(self.confidence, 3),
            "status": self.status,
            "method": self.method,
            "previous_value": self.previous_value,
        }


_COLS = (
    "id, key, value, source_memory, confidence, status, method, evidence, previous_value, "
    "memory_at, created_at"
)


def _row(r: object) -> InboxItem:
    m = r._mapping  # type: ignore[attr-defined]
    return InboxItem(
        id=int(m["id"]),
        key=m["key"],
        value=m["value"],
        source_memory=m["source_memory"],
        confidence=float(m["confidence"]),
        status=m["status"],
        method=m["method"],
        evidence=m["evidence"],
        previous_value=m["previous_value"],
        memory_at=from_iso(m["memory_at"]),
        created_at=from_iso(m["created_at"]),
    )


class Inbox:
    """Inbox operations on a MemoryStore's database (its read/write transactions)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    # reads --------------------------------------------------------------------------
    def list(self, status: str | None = "pending") -> list[InboxItem]:
        if status is not None and status not in STATUSES:
            raise BadInput(f"Unknown inbox status {status!r}; use one of: {', '.join(STATUSES)}.")
        sql = f"SELECT {_COLS} FROM inbox_items"
        params: dict[str, object] = {}
        if status:
            sql += " WHERE status=:s"
            params["s"] = status
        with self.store.read() as conn:
            return [_row(r) for r in conn.execute(text(sql + " ORDER BY key, id"), params)]

    def get(self, item_id: int) -> InboxItem:
        with self.store.read() as conn:
            return self._get(conn, item_id)

    def _get(self, conn: Connection, item_id: int) -> InboxItem:
        r = conn.execute(
            text(f"SELECT {_COLS} FROM inbox_items WHERE id=:i"), {"i": int(item_id)}
        ).first()
        if r is None:
            raise NotFound(
                f"No inbox item with id {item_id}; run `memex inbox list` to see the ids."
            )
        return _row(r)

    # proposals ----------------------------------------------------------------------
    def propose(
        self,
        key: str,
        value: str,
        memory: Memory,
        *,
        confidence: float,
        method: str = "pattern",
        evidence: str = "",
    ) -> InboxItem | None:
        """Add a pending proposal unless it is known, rejected, or older than what exists.

        Newest wins per key: older pending proposals for the key become superseded; a proposal
        from a memory older than the key's current value or pending proposal is not added.
        """
        key = profile_rows.validate(key, value)
        value = value.strip()
        when = memory.when
        now = to_iso(utcnow())
        with self.store.write() as conn:
            current = conn.execute(
                text("SELECT value, source_memory FROM profile_fields WHERE key=:k"), {"k": key}
            ).first()
            if current is not None and current[0].strip().lower() == value.lower():
                return None
            seen = conn.execute(
                text(
                    "SELECT 1 FROM inbox_items WHERE key=:k AND lower(value)=lower(:v) "
                    "AND status IN ('pending', 'rejected', 'accepted')"
                ),
                {"k": key, "v": value},
            ).first()
            if seen is not None:
                return None  # already waiting, or the user already decided on this value
            if current is not None and current[1]:
                src_at = _memory_when(conn, current[1])
                if src_at is not None and src_at >= when:
                    return None  # the accepted value comes from a newer memory
            newer = conn.execute(
                text(
                    "SELECT 1 FROM inbox_items WHERE key=:k AND status='pending' AND memory_at > :t"
                ),
                {"k": key, "t": to_iso(when)},
            ).first()
            if newer is not None:
                return None
            conn.execute(
                text(
                    "UPDATE inbox_items SET status='superseded', updated_at=:n "
                    "WHERE key=:k AND status='pending'"
                ),
                {"k": key, "n": now},
            )
            res = conn.execute(
                text("""INSERT INTO inbox_items(key, value, previous_value, source_memory,
                        memory_at, confidence, method, evidence, status, created_at, updated_at)
                        VALUES (:k, :v, :p, :s, :t, :c, :m, :e, 'pending', :n, :n)
                        ON CONFLICT(key, value, source_memory) DO NOTHING"""),
                {
                    "k": key,
                    "v": value,
                    "p": current[0] if current is not None else None,
                    "s": memory.id,
                    "t": to_iso(when),
                    "c": float(confidence),
                    "m": method,
                    "e": evidence[:500],
                    "n": now,
                },
            )
            if not res.rowcount:
                return None
            return self._get(conn, int(res.lastrowid))  # type: ignore[attr-defined]

    def sweep_superseded(self) -> int:
        """Pending proposals whose source memory has since been superseded are superseded too."""
        with self.store.write() as conn:
            return int(
                conn.execute(
                    text(
                        """UPDATE inbox_items SET status='superseded', updated_at=:n
                   WHERE status='pending'
                   AND source_memory IN (SELECT id FROM memories WHERE superseded_by IS NOT NULL)"""
                    ),
                    {"n": to_iso(utcnow())},
                ).rowcount
            )

    # decisions ----------------------------------------------------------------------
    def accept(self, item_id: int, value: str | None = None) -> tuple[InboxItem, ProfileField]:
        """Put the (optionally edited) value into the profile; other pending values of the key
        are superseded."""
        now = to_iso(utcnow())
        with self.store.write() as conn:
            item = self._get(conn, item_id)
            if item.status not in ("pending", "superseded", "rejected") and value is None:
                raise BadInput(f"Inbox item {item_id} is already {item.status}.")
            final = (value if value is not None else item.value).strip()
            field = profile_rows.set_field(conn, item.key, final, item.source_memory)
            conn.execute(
                text(
                    "UPDATE inbox_items SET status='accepted', value=:v, updated_at=:n WHERE id=:i"
                ),
                {"v": final, "n": now, "i": item.id},
            )
            conn.execute(
                text(
                    "UPDATE inbox_items SET status='superseded', updated_at=:n "
                    "WHERE key=:k AND status='pending' AND id != :i"
                ),
                {"k": item.key, "n": now, "i": item.id},
            )
            return self._get(conn, item.id), field

    def reject(self, item_id: int) -> InboxItem:
        with self.store.write() as conn:
            item = self._get(conn, item_id)
            if item.status == "accepted":
                raise BadInput(
                    f"Inbox item {item_id} was already accepted; use `memex profile unset "
                    f"{item.key}` to remove it."
                )
            conn.execute(
                text("UPDATE inbox_items SET status='rejected', updated_at=:n WHERE id=:i"),
                {"n": to_iso(utcnow()), "i": item.id},
            )
            return self._get(conn, item.id)


def _memory_when(conn: Connection, memory_id: str) -> datetime | None:
    r = conn.execute(
        text("SELECT coalesce(at, created_at) FROM memories WHERE id=:i"), {"i": memory_id}
    ).first()
    return from_iso(r[0]) if r is not None else None

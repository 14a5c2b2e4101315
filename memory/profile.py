"""Profile fields: the values autofill uses, keyed by WHATWG autocomplete field names."""

from __future__ import annotations

from sqlalchemy import Connection, text

from memory.db import from_iso, to_iso, utcnow
from memory.errors import BadInput
from memory.types import ProfileField

# https://html.spec.whatwg.org/multipage/form-control-infrastructure.html#autofill-field
PROFILE_KEYS: frozenset[str] = frozenset(
    {
        "name",
        "honorific-prefix",
        "given-name",
        "additional-name",
        "family-name",
        "honorific-suffix",
        "nickname",
        "username",
        "organization-title",
        "organization",
        "street-address",
        "address-line1",
        "address-line2",
        "address-line3",
        "address-level4",
        "address-level3",
        "address-level2",
        "address-level1",
        "country",
        "country-name",
        "postal-code",
        "language",
        "bday",
        "bday-day",
        "bday-month",
        "bday-year",
        "sex",
        "url",
        "photo",
        "email",
        "tel",
        "tel-country-code",
        "tel-national",
        "tel-area-code",
        "tel-local",
        "tel-extension",
        "impp",
    }
)
MAX_VALUE_CHARS = 2000


def validate(key: str, value: str | None = None) -> str:
    key = key.strip().lower()
    if key not in PROFILE_KEYS:
        raise BadInput(
            f"Unknown profile key {key!r}; use a WHATWG autocomplete name such as "
            "given-name, family-name, email, tel, street-address, postal-code, bday, organization."
        )
    if value is not None:
        if not value.strip():
            raise BadInput(
                f"The value for {key!r} is empty; use `profile unset {key}` to remove it."
            )
        if len(value) > MAX_VALUE_CHARS:
            raise BadInput(f"The value for {key!r} is longer than {MAX_VALUE_CHARS} characters.")
    return key


def list_fields(conn: Connection) -> list[ProfileField]:
    rows = conn.execute(
        text("SELECT key, value, source_memory, updated_at FROM profile_fields ORDER BY key")
    )
    return [
        ProfileField(
            key=r[0], value=r[1], source_memory=r[2], updated_at=from_iso(r[3]) or utcnow()
        )
        for r in rows
    ]


def set_field(conn: Connection, key: str, value: str, source_memory: str | None) -> ProfileField:
    key = validate(key, value)
    now = utcnow()
    conn.execute(
        text("""INSERT INTO profile_fields(key, value, source_memory, updated_at)
                VALUES (:k, :v, :s, :t)
                ON CONFLICT(key) DO UPDATE SET value=excluded.value,
                source_memory=excluded.source_memory,
                updated_at=excluded.updated_at"""),
        {"k": key, "v": value.strip(), "s": source_memory, "t": to_iso(now)},
    )
    return ProfileField(key=key, value=value.strip(), source_memory=source_memory, updated_at=now)


def unset_field(conn: Connection, key: str) -> bool:
    key = validate(key)
    return bool(conn.execute(text("DELETE FROM profile_fields WHERE key=:k"), {"k": key}).rowcount)

"""The vault's keys: one random data key encrypts everything; the passphrase only wraps it.

`vault.json` in the data folder holds the data key wrapped by AES-256-GCM under a key derived
from the passphrase with Argon2id (64 MiB, t=3 by default), or, when the user chooses the OS
keyring, only a check value while the key itself lives in the keyring. Changing the passphrase
rewraps the data key and rewrites nothing else. The data key is what SQLCipher and the sealed
files (`seal`/`unseal`) use; it never touches the data folder in the clear.

An unlocked key may be kept between commands in a `SessionCache`: a folder outside the data
folder that lives in memory (`$XDG_RUNTIME_DIR`, a tmpfs cleared at logout), whose entries
expire after an idle time. A resident service can hold the key in its own memory instead.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from memory.errors import MemoryStoreError

VAULT_FILE = "vault.json"
KEY_BYTES = 32
SEALED_MAGIC = b"MXSEAL1\n"
_NONCE = 12
_WRAP_AAD = b"memex-vault-wrap-v1"
_CHECK_AAD = b"memex-vault-check-v1"
_CHECK_PLAIN = b"memex data key"
KEYRING_SERVICE = "memex-vault"
STORES = ("passphrase", "keyring")


class VaultError(MemoryStoreError):
    kind = "vault"


class VaultLocked(VaultError):
    kind = "locked"


class WrongPassphrase(VaultError):
    kind = "wrong_passphrase"


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost; the floor keeps a stolen vault.json expensive to guess against."""

    time_cost: int = 3
    memory_kib: int = 65536
    parallelism: int = 1

    def __post_init__(self) -> None:
        if self.time_cost < 3 or self.memory_kib < 65536 or self.parallelism < 1:
            raise ValueError(f"Argon2id parameters {self} are below t=3, 64 MiB, p=1.")


@dataclass(frozen=True)
class VaultFile:
    """What vault.json holds (no secret in the clear)."""

    key_id: str
    store: str
    check: str
    created_at: str
    kdf: KdfParams | None = None
    salt: str | None = None
    wrapped: str | None = None
    version: int = 1

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["kdf"] = asdict(self.kdf) if self.kdf else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> VaultFile:
        kdf = data.get("kdf")
        return cls(
            key_id=str(data["key_id"]),
            store=str(data["store"]),
            check=str(data["check"]),
            created_at=str(data.get("created_at", "")),
            kdf=KdfParams(**kdf) if isinstance(kdf, dict) else None,
            salt=_opt_str(data.get("salt")),
            wrapped=_opt_str(data.get("wrapped")),
            version=int(data.get("version", 1)),  # type: ignore[call-overload]
        )


def _opt_str(v: object) -> str | None:
    return None if v is None else str(v)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str | None) -> bytes:
    return base64.b64decode(s or "")


# -- AEAD ---------------------------------------------------------------------------------
def seal(key: bytes, data: bytes, aad: bytes = b"") -> bytes:
    """AES-256-GCM: magic + 12-byte random nonce + ciphertext and tag."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = secrets.token_bytes(_NONCE)
    return SEALED_MAGIC + nonce + AESGCM(key).encrypt(nonce, data, aad)


def unseal(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not blob.startswith(SEALED_MAGIC):
        raise VaultError("The file is not sealed by the memex vault.")
    body = blob[len(SEALED_MAGIC) :]
    try:
        return AESGCM(key).decrypt(body[:_NONCE], body[_NONCE:], aad)
    except InvalidTag as exc:
        raise WrongPassphrase(
            "The key does not open this sealed data (wrong key or damaged file)."
        ) from exc


def starts_with(path: Path, magic: bytes) -> bool:
    """Whether the file begins with `magic` (False when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False


def is_sealed(path: Path) -> bool:
    return starts_with(path, SEALED_MAGIC)


def write_sealed(path: Path, key: bytes, data: bytes) -> None:
    """Seal `data` into `path` atomically (a crash leaves the old file or the new one)."""
    atomic_write(path, seal(key, data, path.name.encode()))


def read_sealed(path: Path, key: bytes) -> bytes:
    return unseal(key, path.read_bytes(), path.name.encode())


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def private_ram_dir(name: str, bases: tuple[str, ...] | None = None) -> Path | None:
    """A folder only this user can open, on memory-backed storage outside the data folder.

    For work files that hold memory text in the clear while a job runs (a training set,
    checkpoints): `$XDG_RUNTIME_DIR` (a per-user tmpfs cleared at logout), else `/dev/shm`.
    None when neither exists; callers must then refuse rather than write plaintext to disk.
    """
    candidates = bases if bases is not None else (os.environ.get("XDG_RUNTIME_DIR", ""), "/dev/shm")
    for base in candidates:
        if not base or not os.path.isdir(base) or not os.access(base, os.W_OK | os.X_OK):
            continue
        folder = Path(base) / name
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            st = folder.lstat()
            if folder.is_symlink() or st.st_uid != os.getuid():
                continue  # someone else's folder (a shared /dev/shm): never write into it
            os.chmod(folder, 0o700)
        except OSError:
            continue
        return folder
    return None


# -- the key file ---------------------------------------------------------------------------
def vault_path(home: Path) -> Path:
    return Path(home) / VAULT_FILE


def read_vault(home: Path) -> VaultFile | None:
    """The vault description, or None when the vault is off."""
    path = vault_path(home)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise VaultError(f"The vault key file {path} cannot be read ({exc.strerror}).") from exc
    try:
        data = json.loads(raw)
        vf = VaultFile.from_json(data)
    except (ValueError, KeyError, TypeError) as exc:
        raise VaultError(
            f"The vault key file {path} is damaged; restore it from a backup."
        ) from exc
    if vf.store not in STORES:
        raise VaultError(f"The vault key file {path} names an unknown key store {vf.store!r}.")
    return vf


def write_vault(path: Path, vf: VaultFile) -> None:
    atomic_write(path, json.dumps(vf.to_json(), indent=2).encode("utf-8"))


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _kek(passphrase: str, salt: bytes, kdf: KdfParams) -> bytes:
    from argon2.low_level import Type, hash_secret_raw

    return hash_secret_raw(
        passphrase.encode("utf-8"),
        salt,
        time_cost=kdf.time_cost,
        memory_cost=kdf.memory_kib,
        parallelism=kdf.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )


def _check_value(key: bytes) -> str:
    return _b64(seal(key, _CHECK_PLAIN, _CHECK_AAD))


def check_passphrase(passphrase: str) -> None:
    if not passphrase:
        raise VaultError("The passphrase is empty; choose one of at least 8 characters.")
    if len(passphrase) < 8:
        raise VaultError("The passphrase is shorter than 8 characters; choose a longer one.")


def wrap_key(
    key: bytes,
    passphrase: str,
    *,
    key_id: str | None = None,
    kdf: KdfParams | None = None,
    created_at: str | None = None,
) -> VaultFile:
    """A passphrase-store vault file for `key` (fresh salt every time)."""
    check_passphrase(passphrase)
    kdf = kdf or KdfParams()
    salt = secrets.token_bytes(16)
    wrapped = seal(_kek(passphrase, salt, kdf), key, _WRAP_AAD)
    return VaultFile(
        key_id=key_id or secrets.token_hex(8),
        store="passphrase",
        check=_check_value(key),
        created_at=created_at or _now(),
        kdf=kdf,
        salt=_b64(salt),
        wrapped=_b64(wrapped),
    )


def keyring_vault(
    key: bytes, *, key_id: str | None = None, created_at: str | None = None
) -> VaultFile:
    """A keyring-store vault file; the key itself goes to `keyring_put`."""
    return VaultFile(
        key_id=key_id or secrets.token_hex(8),
        store="keyring",
        check=_check_value(key),
        created_at=created_at or _now(),
    )


def unwrap_key(vf: VaultFile, passphrase: str) -> bytes:
    if vf.store != "passphrase" or vf.kdf is None:
        raise VaultError("This vault keeps its key in the OS keyring, not behind a passphrase.")
    try:
        return unseal(_kek(passphrase, _unb64(vf.salt), vf.kdf), _unb64(vf.wrapped), _WRAP_AAD)
    except WrongPassphrase:
        raise WrongPassphrase("The passphrase is wrong; nothing was changed.") from None


def key_matches(vf: VaultFile, key: bytes) -> bool:
    try:
        return unseal(key, _unb64(vf.check), _CHECK_AAD) == _CHECK_PLAIN
    except (VaultError, ValueError):
        return False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- the OS keyring ------------------------------------------------------------------------
def _keyring():  # type: ignore[no-untyped-def]
    try:
        import keyring
        from keyring.backends.fail import Keyring as FailKeyring
    except ImportError as exc:
        raise VaultError(
            "The OS keyring needs the `keyring` package; install it or use a passphrase."
        ) from exc
    if isinstance(keyring.get_keyring(), FailKeyring):
        raise VaultError("No OS keyring is available on this machine; use a passphrase instead.")
    return keyring


def keyring_put(key_id: str, key: bytes) -> None:
    try:
        _keyring().set_password(KEYRING_SERVICE, key_id, key.hex())
    except VaultError:
        raise
    except Exception as exc:  # backends raise their own types (dbus, Keychain errors)
        raise VaultError(f"The OS keyring refused to store the key ({exc}).") from exc


def keyring_get(key_id: str) -> bytes | None:
    try:
        value = _keyring().get_password(KEYRING_SERVICE, key_id)
    except VaultError:
        raise
    except Exception as exc:
        raise VaultError(f"The OS keyring could not be read ({exc}).") from exc
    return bytes.fromhex(value) if value else None


def keyring_delete(key_id: str) -> None:
    try:
        _keyring().delete_password(KEYRING_SERVICE, key_id)
    except Exception:  # already gone or no keyring: nothing to remove
        pass


# -- keeping an unlocked key between commands -------------------------------------------------
class SessionCache:
    """Unlocked data keys in a private in-memory folder, one file per vault, expiring when idle.

    `idle_s` <= 0 means no expiry (until logout). Each successful `get` refreshes the idle clock.
    """

    def __init__(self, folder: Path, idle_s: float = 0.0) -> None:
        self.folder = Path(folder)
        self.idle_s = idle_s

    def _path(self, key_id: str) -> Path:
        return self.folder / f"{key_id}.key"

    def put(self, key_id: str, key: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        atomic_write(self._path(key_id), key.hex().encode("ascii"))

    def get(self, key_id: str) -> bytes | None:
        path = self._path(key_id)
        try:
            st = path.stat()
            if self.idle_s > 0 and time.time() - st.st_mtime > self.idle_s:
                path.unlink(missing_ok=True)
                return None
            key = bytes.fromhex(path.read_text(encoding="ascii").strip())
            os.utime(path)
        except (OSError, ValueError):
            return None
        return key if len(key) == KEY_BYTES else None

    def clear(self, key_id: str) -> bool:
        path = self._path(key_id)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed


def unlock_key(
    home: Path, *, passphrase: str | None = None, session: SessionCache | None = None
) -> bytes | None:
    """The data key for `home`, or None when the vault is off.

    Tries, in order: the passphrase (a wrong one is an error, never a silent fallback), the
    session cache, the OS keyring (keyring store). Locked otherwise.
    """
    vf = read_vault(home)
    if vf is None:
        return None
    if passphrase is not None and vf.store == "passphrase":
        return unwrap_key(vf, passphrase)
    if session is not None:
        key = session.get(vf.key_id)
        if key is not None and key_matches(vf, key):
            return key
    if vf.store == "keyring":
        key = keyring_get(vf.key_id)
        if key is not None and key_matches(vf, key):
            return key
        raise VaultLocked("memex is locked: the OS keyring does not hold this vault's key.")
    raise VaultLocked(
        "memex is locked: run `memex vault unlock`, or give the passphrase with "
        "MEMEX_PASSPHRASE or --passphrase-file."
    )


__all__ = [
    "KdfParams",
    "SessionCache",
    "VaultError",
    "VaultFile",
    "VaultLocked",
    "WrongPassphrase",
    "atomic_write",
    "is_sealed",
    "key_matches",
    "keyring_delete",
    "keyring_get",
    "keyring_put",
    "keyring_vault",
    "new_data_key",
    "private_ram_dir",
    "read_sealed",
    "read_vault",
    "seal",
    "unlock_key",
    "unseal",
    "unwrap_key",
    "vault_path",
    "wrap_key",
    "write_sealed",
    "write_vault",
]

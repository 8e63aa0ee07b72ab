"""Site keys at rest: AES-256-GCM under the hub's master key, kept in a file outside the database.

The hub must know each site key itself (it recomputes every HMAC), so a key cannot be hashed like
an operator token; it is encrypted instead. The site id is the associated data, so an encrypted
key copied into another site's row does not decrypt (it cannot make one site's key another's).

    path = master_key_path(data_dir, given)          # --master-key, $NSP_HUB_MASTER_KEY_FILE, …
    box = SiteKeyBox(read_master_key(path), path)    # or create_master_key(path) on a new hub
    stored = box.seal("nsp-a", key)                  # "enc1:<base64 nonce + ciphertext + tag>"
    key = box.open("nsp-a", stored)                  # raises KeyUnusable on any mismatch

docs/security.md says where the master key should live and how to back it up.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_KEY_ENV = "NSP_HUB_MASTER_KEY_FILE"
MASTER_KEY_NAME = "master.key"
SEALED_PREFIX = "enc1:"
_NONCE_BYTES = 12
_SITE_AAD = b"nsp-hub site key v1\x00"
# A known value encrypted at first start: tells a wrong master key from a damaged row.
_CHECK_AAD = b"nsp-hub master key check v1"
_CHECK_PLAIN = b"this is the hub master key"


class MasterKeyError(Exception):
    """The hub cannot use its master key; the message names the file and the fix."""


class KeyUnusable(Exception):
    """A stored site key does not decrypt with this master key for this site id."""


def master_key_path(data_dir: Path, given: Path | None = None) -> Path:
    """--master-key FILE, else $NSP_HUB_MASTER_KEY_FILE, else DATA/master.key."""
    if given is not None:
        return given
    env = os.environ.get(MASTER_KEY_ENV, "").strip()
    return Path(env) if env else data_dir / MASTER_KEY_NAME


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)


def read_master_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise MasterKeyError(f"cannot read the hub master key file {path}: {exc}") from exc
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise MasterKeyError(
            f"{path} is not a hub master key (expected one line of base64 holding 32 bytes): "
            "restore the file from its backup"
        )
    return raw


def create_master_key(path: Path) -> bytes:
    """A new random master key in a new file, mode 0600; FileExistsError if one appeared."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    raw = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, base64.urlsafe_b64encode(raw) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link() never replaces an existing file: two processes starting at once keep one key.
        os.link(tmp, path)
    finally:
        tmp.unlink()
    return raw


class SiteKeyBox:
    def __init__(self, master: bytes, path: Path) -> None:
        self.path = path
        self._aead = AESGCM(master)

    def seal(self, site_id: str, key: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, key.encode("utf-8"), _SITE_AAD + site_id.encode())
        return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, site_id: str, stored: str) -> str:
        if not is_sealed(stored):
            raise KeyUnusable("not an encrypted key")
        try:
            raw = base64.b64decode(stored[len(SEALED_PREFIX) :], validate=True)
            plain = self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _SITE_AAD + site_id.encode()
            )
            return plain.decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise KeyUnusable("does not decrypt") from exc

    def check_value(self) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, _CHECK_PLAIN, _CHECK_AAD)
        return base64.b64encode(nonce + sealed).decode("ascii")

    def matches(self, check_value: str) -> bool:
        try:
            raw = base64.b64decode(check_value, validate=True)
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _CHECK_AAD) == (
                _CHECK_PLAIN
            )
        except (InvalidTag, binascii.Error, ValueError):
            return False

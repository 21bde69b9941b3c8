"""Encryption of stored tokens: AES-256-GCM, each ciphertext naming the key that sealed it.

Keys come as `id:base64key` entries (comma- or line-separated), from AUTOPOST_CREDENTIAL_KEYS or
a mounted file named by AUTOPOST_CREDENTIAL_KEYS_FILE (see `Settings`). Every listed key can
open; the first one seals. To rotate: add the new key last and roll that out everywhere, then
move it first (no process then seals with a key another cannot open), re-seal the stored tokens
(`autopost accounts rekey`) and drop the old keys.
"""

from __future__ import annotations

import base64
import re
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT = b"v1"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_NONCE_BYTES = 12


class KeyringError(Exception):
    """A key set that cannot be used, or a ciphertext it cannot open. Never carries key material."""


class Keyring:
    def __init__(self, keys: dict[str, bytes], current: str):
        if current not in keys:
            raise KeyringError(f"the current key {current!r} is not in the key ring")
        for key_id, key in keys.items():
            if not _KEY_ID.match(key_id):
                raise KeyringError(f"key id {key_id!r} must be 1-32 of A-Z a-z 0-9 _ -")
            if len(key) != 32:
                raise KeyringError(f"key {key_id!r} must be 32 bytes (AES-256), not {len(key)}")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current = current

    def __repr__(self) -> str:  # the keys themselves never appear
        return f"Keyring(current={self.current!r}, keys={sorted(self._ciphers)!r})"

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    @classmethod
    def parse(cls, spec: str) -> "Keyring":
        """`id:base64key` entries, the first one current; blank lines and `#` comments allowed."""
        keys: dict[str, bytes] = {}
        for entry in re.split(r"[,\n]", spec):
            entry = entry.split("#", 1)[0].strip()
            if not entry:
                continue
            key_id, sep, encoded = (part.strip() for part in entry.partition(":"))
            if not sep:
                raise KeyringError("each credential key must be written id:base64key")
            if key_id in keys:
                raise KeyringError(f"credential key {key_id!r} is listed twice")
            keys[key_id] = _decode_key(key_id, encoded)
        if not keys:
            raise KeyringError("no credential keys: set AUTOPOST_CREDENTIAL_KEYS (id:base64key, …) or "
                               "AUTOPOST_CREDENTIAL_KEYS_FILE; `autopost accounts new-key` makes one")
        return cls(keys, next(iter(keys)))

    def seal(self, plaintext: str, context: str) -> bytes:
        """Encrypt under the current key; `context` (e.g. the account and field) is bound to it."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._ciphers[self.current].encrypt(nonce, plaintext.encode(), context.encode())
        return b":".join((_FORMAT, self.current.encode(), nonce + sealed))

    def open(self, ciphertext: bytes, context: str) -> str:
        key_id = self.key_id_of(ciphertext)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise KeyringError(f"credential sealed with key {key_id!r}, which is not in the key ring")
        body = bytes(ciphertext).split(b":", 2)[2]
        try:
            return cipher.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], context.encode()).decode()
        except InvalidTag:
            raise KeyringError(f"credential sealed with key {key_id!r} does not open: "
                               "wrong key or tampered ciphertext") from None

    @staticmethod
    def key_id_of(ciphertext: bytes) -> str:
        parts = bytes(ciphertext).split(b":", 2)
        if len(parts) != 3 or parts[0] != _FORMAT:
            raise KeyringError("not a sealed credential")
        return parts[1].decode("ascii", "replace")


def _decode_key(key_id: str, encoded: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    standard = encoded.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except ValueError:
        raise KeyringError(f"credential key {key_id!r} is not valid base64") from None


def new_key_entry(key_id: str = "k1") -> str:
    """A fresh `id:base64key` entry (for a new deployment, a rotation, a dev stack or a test)."""
    if not _KEY_ID.match(key_id):
        raise KeyringError(f"key id {key_id!r} must be 1-32 of A-Z a-z 0-9 _ -")
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"

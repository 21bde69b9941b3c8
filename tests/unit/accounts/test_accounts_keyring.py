"""Sealing tokens: AES-GCM, the key id in every ciphertext, several keys readable, one writing."""

from __future__ import annotations

import base64

import pytest

from services.accounts import Keyring, KeyringError, new_key_entry


def test_sealed_token_opens_only_with_its_context_and_never_shows_the_plaintext() -> None:
    ring = Keyring.parse(new_key_entry("k1"))
    sealed = ring.seal("act.secret-token", "tiktok/acme/access")
    assert b"act.secret-token" not in sealed and b"secret" not in sealed
    assert Keyring.key_id_of(sealed) == "k1"
    assert ring.open(sealed, "tiktok/acme/access") == "act.secret-token"
    # a ciphertext moved to another account or field does not open
    with pytest.raises(KeyringError, match="does not open"):
        ring.open(sealed, "tiktok/other/access")
    # each seal has its own nonce
    assert ring.seal("same", "c") != ring.seal("same", "c")


def test_tampered_ciphertext_is_refused() -> None:
    ring = Keyring.parse(new_key_entry("k1"))
    sealed = bytearray(ring.seal("token", "ctx"))
    sealed[-1] ^= 1
    with pytest.raises(KeyringError, match="tampered"):
        ring.open(bytes(sealed), "ctx")


def test_rotation_new_key_seals_old_keys_still_open() -> None:
    old, new = new_key_entry("old"), new_key_entry("new")
    before = Keyring.parse(old).seal("token", "ctx")
    rotated = Keyring.parse(f"{new}\n{old}  # kept until every row is re-sealed\n")
    assert rotated.current == "new" and rotated.key_ids == ["new", "old"]
    assert rotated.open(before, "ctx") == "token"
    assert Keyring.key_id_of(rotated.seal("token", "ctx")) == "new"
    # once the old key is dropped, what it sealed says which key is missing
    with pytest.raises(KeyringError, match="'old'"):
        Keyring.parse(new).open(before, "ctx")


@pytest.mark.parametrize("spec, message", [
    ("", "no credential keys"),
    ("justbase64", "id:base64key"),
    ("k1:not*base64", "not valid base64"),
    (f"k1:{base64.b64encode(b'short').decode()}", "32 bytes"),
    (f"bad id:{base64.b64encode(bytes(32)).decode()}", "key id"),
    (f"k1:{base64.b64encode(bytes(32)).decode()},k1:{base64.b64encode(bytes(32)).decode()}", "twice"),
])
def test_bad_key_specs_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(KeyringError, match=message) as raised:
        Keyring.parse(spec)
    assert base64.b64encode(bytes(32)).decode() not in str(raised.value)


def test_url_safe_and_unpadded_keys_are_accepted_and_repr_shows_no_key() -> None:
    raw = bytes(range(32))
    entry = "k9:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    ring = Keyring.parse(entry)
    assert ring.open(ring.seal("x", "c"), "c") == "x"
    assert base64.b64encode(raw).decode()[:10] not in repr(ring) and "k9" in repr(ring)

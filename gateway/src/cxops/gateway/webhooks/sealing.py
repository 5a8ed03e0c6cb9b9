"""Endpoint secrets at rest: sealed with AES-256-GCM, so a copy of the database (a backup, a
replica, a leaked dump) does not let anyone sign webhooks in our name.

They cannot be hashed like API keys: the gateway needs the secret itself to sign. The key is
derived (HKDF-SHA256, with a label of its own) from ``webhook_secrets_key``, or from the signing
secret when that is not set; the trade-off is in gateway/README.md, "Webhook secrets at rest".
The endpoint's id is the associated data, so a sealed secret copied onto another endpoint's row
does not open.
"""

import base64
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = "v1"
_LABEL = b"cxops gateway webhook endpoint secrets v1"
_NONCE_BYTES = 12


class UnsealError(ValueError):
    """The sealed secret does not open with this key: the key material changed, or the row was
    tampered with."""


class SecretSealer:
    def __init__(self, key_material: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(
            key_material.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, secret: str, *, endpoint_id: uuid.UUID) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), endpoint_id.bytes)
        return f"{VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def unseal(self, sealed: str, *, endpoint_id: uuid.UUID) -> str:
        version, _, encoded = sealed.partition(":")
        if version != VERSION:
            raise UnsealError(f"unknown sealing version {version!r}")
        raw = base64.urlsafe_b64decode(encoded)
        try:
            opened = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], endpoint_id.bytes)
        except InvalidTag as exc:
            raise UnsealError("the endpoint secret does not open with this key") from exc
        return opened.decode()

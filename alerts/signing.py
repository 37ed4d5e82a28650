"""Webhook signatures: the body-only ``X-Monitor-Signature`` and the Standard Webhooks headers.

``X-Monitor-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (key: the configured secret's UTF-8
bytes) is kept for receivers written against it. It cannot stop a replay: a captured request stays
valid forever. The Standard Webhooks scheme (https://www.standardwebhooks.com) signs
``"<webhook-id>.<webhook-timestamp>.<body>"`` instead, so a receiver rejects a request whose timestamp
is older than its tolerance (five minutes in the reference libraries) and can drop an id it has seen::

    webhook-id: <stable per alert event and channel: the same on every retry, equal to Idempotency-Key>
    webhook-timestamp: <unix seconds of this attempt>
    webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">

The Standard Webhooks key is derived from the configured secret: a secret of the form
``whsec_<base64>`` (the scheme's own format) means the base64-decoded bytes; any other secret means
its UTF-8 bytes. With the ``standardwebhooks`` library a receiver therefore verifies with
``Webhook(secret)`` for a ``whsec_`` secret and ``Webhook(secret.encode())`` otherwise.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SIGNATURE_HEADER = "X-Monitor-Signature"
PREFIX = "sha256="
WHSEC_PREFIX = "whsec_"


def sign(body: bytes, secret: str) -> str:
    """The ``X-Monitor-Signature`` header value for ``body``."""
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """True if ``header`` is the signature of ``body`` with ``secret`` (constant-time comparison)."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(body, secret), header)


def standard_key(secret: str) -> bytes:
    """The HMAC key of the Standard Webhooks signature for a configured secret (see the module text)."""
    if secret.startswith(WHSEC_PREFIX):
        encoded = secret[len(WHSEC_PREFIX) :]
        try:
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error as exc:
            raise ValueError("a whsec_ secret must be followed by base64") from exc
    return secret.encode("utf-8")


def standard_headers(body: bytes, secret: str, webhook_id: str, timestamp: int) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` for one attempt."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode("ascii"),
    }

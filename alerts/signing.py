"""Webhook signatures: ``X-Monitor-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

The receiver recomputes the HMAC over the exact bytes it received (before any JSON parsing) with the
shared secret and compares in constant time, as GitHub and Stripe receivers do.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Monitor-Signature"
PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value for ``body``."""
    return PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """True if ``header`` is the signature of ``body`` with ``secret`` (constant-time comparison)."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(body, secret), header)

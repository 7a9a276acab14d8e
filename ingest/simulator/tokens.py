"""HS256 JSON Web Tokens, built by hand (no extra dependency), as the Angus console issues them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

HEADER = {"alg": "HS256", "typ": "JWT"}


class TokenError(Exception):
    """The token is not valid; the message is the API's `detail`."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: str, secret: bytes) -> str:
    return _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def encode_token(claims: dict[str, Any], secret: bytes) -> str:
    """A signed token carrying `claims`."""
    head = _b64(json.dumps(HEADER, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}.{_sign(f'{head}.{body}', secret)}"


def decode_token(token: str, secret: bytes, now: float) -> dict[str, Any]:
    """The claims of a valid token; TokenError if malformed, badly signed or expired at `now`."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("Error decoding signature.")
    head, body, signature = parts
    if not hmac.compare_digest(signature, _sign(f"{head}.{body}", secret)):
        raise TokenError("Error decoding signature.")
    try:
        claims = json.loads(_unb64(body))
    except ValueError:
        raise TokenError("Error decoding signature.") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
        raise TokenError("Invalid payload.")
    if now >= claims["exp"]:
        raise TokenError("Signature has expired.")
    return claims

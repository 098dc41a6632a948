"""TOTP codes as an authenticator app computes them (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits),
written out here because the standard library has everything it takes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time

STEP_SECONDS = 30
DIGITS = 6


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def code(secret_base32: str, step: int) -> str:
    secret = secret_base32.replace(" ", "").replace("-", "").upper()
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def _self_test() -> None:
    # RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits) ends in 287082.
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert code(secret, 59 // STEP_SECONDS) == "287082"


_self_test()

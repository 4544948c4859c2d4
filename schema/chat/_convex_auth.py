"""What ``@convex-dev/auth`` computes outside the database: password hashes, JWTs, keys.

Not a function file (the leading ``_``). The rules are the library's
(get-convex/convex-auth ``src/server/implementation/tokens.ts``,
``src/providers/Password.ts``) and lucia's ``Scrypt`` (lucia 3.2,
``packages/lucia/src/crypto.ts``), which the Password provider hashes with:

- a password hash is ``<salt>:<key>``: the salt is 16 random bytes as 32 hex
  digits, the key ``scrypt(NFKC(password), salt=<the salt's hex text>, N=16384,
  r=16, p=1, dkLen=64)`` in hex, so a secret written by Convex Auth verifies here
  and the other way round;
- a JWT has the header ``{"alg": "RS256"}`` (no ``kid``, no ``typ``) and the
  claims ``sub`` = ``"<userId>|<sessionId>"``, ``iss`` = ``CONVEX_SITE_URL``,
  ``aud`` = ``"convex"``, ``iat`` and ``exp`` (1 hour) in whole seconds;
- ``JWT_PRIVATE_KEY`` is a PKCS#8 PEM, with newlines or with the spaces that
  ``npx @convex-dev/auth`` writes instead of them; ``JWKS`` is its public key.
"""

import base64
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import unicodedata
from typing import Any

DEFAULT_SITE_URL = "http://127.0.0.1:3211"  # Convex's local CONVEX_SITE_URL
TOKEN_DURATION_MS = 60 * 60 * 1000  # jwt.durationMs: 1 hour
SESSION_TOTAL_DURATION_MS = 30 * 24 * 60 * 60 * 1000  # 30 days
SESSION_INACTIVE_DURATION_MS = 30 * 24 * 60 * 60 * 1000  # refresh tokens: 30 days
REFRESH_TOKEN_REUSE_WINDOW_MS = 10_000
MAX_FAILED_ATTEMPTS_PER_HOUR = 10
PASSWORD_PROVIDER = "password"
SCRYPT = {"n": 16384, "r": 16, "p": 1, "dklen": 64, "maxmem": 64 * 1024 * 1024}


class Error(Exception):
    """What ``@convex-dev/auth`` throws as a plain ``Error``: the call fails with its text."""


def env(name: str) -> str:
    """An environment variable the library requires (its own error when missing)."""
    value = os.environ.get(name)
    if not value:
        raise Error(f"Missing environment variable `{name}`")
    return value


def site_url() -> str:
    """``CONVEX_SITE_URL``: the tokens' issuer (Convex's local default if unset)."""
    return os.environ.get("CONVEX_SITE_URL", DEFAULT_SITE_URL).rstrip("/")


def duration(name: str, default: int) -> int:
    """A duration in ms from the environment (``AUTH_SESSION_TOTAL_DURATION_MS``)."""
    value = os.environ.get(name)
    return int(value) if value and value.isdigit() else default


# --------------------------------------------------------------------------- passwords


def _scrypt(password: str, salt: str) -> str:
    normalized = unicodedata.normalize("NFKC", password).encode("utf-8")
    return hashlib.scrypt(normalized, salt=salt.encode("ascii"), **SCRYPT).hex()


def hash_password(password: str) -> str:
    """lucia's ``Scrypt.hash``: ``"<32 hex salt>:<128 hex key>"``."""
    salt = secrets.token_bytes(16).hex()
    return f"{salt}:{_scrypt(password, salt)}"


def verify_password(password: str, stored: str) -> bool:
    """lucia's ``Scrypt.verify``: two parts, compared in constant time."""
    parts = stored.split(":")
    if len(parts) != 2:
        return False
    salt, key = parts
    return hmac.compare_digest(_scrypt(password, salt), key)


# --------------------------------------------------------------------------- keys


def private_key() -> Any:
    """``JWT_PRIVATE_KEY`` as a key object (jose's ``importPKCS8`` rules)."""
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    text = env("JWT_PRIVATE_KEY")
    if not text.strip().startswith("-----BEGIN PRIVATE KEY-----"):
        raise Error(
            "JWT_PRIVATE_KEY must be a PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)"
        )
    body = re.sub(r"-----(BEGIN|END) PRIVATE KEY-----|\s", "", text)
    return load_der_private_key(base64.b64decode(body), password=None)


def public_jwks(key: Any) -> str:
    """The JWKS of a private key's public half, as ``npx @convex-dev/auth`` writes it."""
    from jwt.algorithms import RSAAlgorithm

    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return json.dumps({"keys": [{"use": "sig", **jwk}]})


def jwks() -> str:
    """``JWKS``, or the public half of ``JWT_PRIVATE_KEY`` when it is not set."""
    return os.environ.get("JWKS") or public_jwks(private_key())


def make_token(user_id: str, session_id: str, now_ms: float) -> str:
    """The access token of a session, signed with ``JWT_PRIVATE_KEY``."""
    import jwt

    issued = math.floor(now_ms / 1000)
    claims = {
        "sub": f"{user_id}|{session_id}",
        "iat": issued,
        "iss": site_url(),
        "aud": "convex",
        "exp": issued + TOKEN_DURATION_MS // 1000,
    }
    return jwt.encode(claims, private_key(), algorithm="RS256", headers={"typ": None})

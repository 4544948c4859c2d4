"""A signing key pair for an app that issues its own tokens, as ``@convex-dev/auth``.

``npx @convex-dev/auth`` makes a 2048-bit RSA key and sets two environment
variables on the deployment: ``JWT_PRIVATE_KEY`` (PKCS#8 PEM with each newline
replaced by a space) and ``JWKS`` (the public key, ``{"keys": [{"use": "sig",
"kty": "RSA", "n", "e"}]}``, no ``kid``). :func:`convex_auth_keys` makes the same
pair for tests, notebooks and ``one-store demo`` (get-convex/convex-auth
``src/cli/generateKeys.ts``).
"""

from __future__ import annotations

import json


def convex_auth_keys() -> dict[str, str]:
    """``{"JWT_PRIVATE_KEY": ..., "JWKS": ...}`` for a new key, in Convex Auth's format.

    Example:
        >>> import os
        >>> os.environ.update(convex_auth_keys())  # doctest: +SKIP
        >>> sorted(convex_auth_keys())
        ['JWKS', 'JWT_PRIVATE_KEY']
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {
        "JWT_PRIVATE_KEY": pem.strip().replace("\n", " "),
        "JWKS": json.dumps({"keys": [{"use": "sig", **public}]}),
    }

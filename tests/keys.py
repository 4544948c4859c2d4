"""Real signing keys for the auth tests: made with ``cryptography``, tokens signed with PyJWT."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


class Key:
    """A private key with its public JWK (``kid`` and ``alg`` optional)."""

    def __init__(self, alg: str = "RS256", kid: str | None = "k1") -> None:
        self.alg = alg
        self.kid = kid
        if alg == "ES256":
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
            public = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = rsa.generate_private_key(
                public_exponent=65537, key_size=2048
            )
            public = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        public["use"] = "sig"
        if kid is not None:
            public["kid"] = kid
        self.jwk: dict[str, Any] = public

    def sign(
        self, claims: dict[str, Any], *, kid: str | bool | None = True, **header: Any
    ) -> str:
        """A JWT of ``claims``; ``kid=True`` puts this key's kid in the header."""
        headers = dict(header)
        if kid is True and self.kid is not None:
            headers["kid"] = self.kid
        elif isinstance(kid, str):
            headers["kid"] = kid
        token: str = jwt.encode(
            claims, self.private, algorithm=self.alg, headers=headers
        )
        return token


def jwks(*keys: Key) -> str:
    """The JWKS document of ``keys``."""
    return json.dumps({"keys": [k.jwk for k in keys]})


def data_uri(text: str) -> str:
    """``text`` as a base64 ``data:`` URI."""
    return "data:application/json;base64," + base64.b64encode(text.encode()).decode()


def write_app(folder: Path, providers: str, functions: str = "") -> Path:
    """An app folder with ``auth_config.py`` (``providers = <providers>``) and ``me.py``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "auth_config.py").write_text(f"providers = {providers}\n")
    (folder / "me.py").write_text(
        textwrap.dedent(
            """
            from one_store import internal_query, query

            @query
            def identity(ctx, args):
                return ctx.auth.get_user_identity()

            @internal_query
            def secret(ctx, args):
                return {"identity": ctx.auth.get_user_identity()}
            """
        )
        + functions
    )
    return folder

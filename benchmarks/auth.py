"""What verifying a token costs a call, against the same call made anonymously.

``one-store serve`` verifies ``Authorization: Bearer`` on every request, as
Convex does (no token cache), so a signed-in call pays one signature check on
top of its own work. This script times, in one process and interleaved (best
of several ``timeit`` runs, robust on a loaded machine):

- an anonymous ``auth:isAuthenticated`` query of the chat app (the baseline);
- the same query through ``store.with_token(token)`` each time, for a token
  issued by ``auth:signIn`` (OIDC, the app's own issuer, RS256, checked against
  the ``JWKS`` variable) and for a customJwt token (RS256, keys in a ``data:``
  URI);
- ``authenticator.verify`` alone;
- one ``auth:signIn`` with a password (Scrypt, N=16384, r=16: slow on purpose).

It writes a block into RESULTS.md: the ratios are to the anonymous query of the
same run.

    python benchmarks/auth.py
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import fmt, replace_block
from one_store import Store, bundled_app
from one_store.testing import convex_auth_keys

START, END = "<!-- auth:start -->", "<!-- auth:end -->"
ISSUER = "https://issuer.example"


def best_us(fn: Any, number: int, repeat: int = 7) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def custom_jwt_app(folder: Path) -> tuple[Path, str]:
    """An app with a customJwt provider (data: URI keys) and a token for it."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "k1"}
    uri = (
        "data:application/json;base64,"
        + base64.b64encode(json.dumps({"keys": [jwk]}).encode()).decode()
    )
    provider = {
        "type": "customJwt",
        "issuer": ISSUER,
        "jwks": uri,
        "algorithm": "RS256",
    }
    folder.mkdir()
    (folder / "auth_config.py").write_text(f"providers = [{provider!r}]\n")
    (folder / "me.py").write_text(
        "from one_store import query\n\n\n@query\ndef anyone(ctx, args):\n"
        "    return ctx.auth.get_user_identity() is not None\n"
    )
    token = jwt.encode(
        {"iss": ISSUER, "sub": "u", "exp": 4_000_000_000},
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    return folder, token


def measure(workdir: Path) -> dict[str, float]:
    os.environ.update(convex_auth_keys())
    os.environ["CONVEX_SITE_URL"] = "http://127.0.0.1:3211"
    out: dict[str, float] = {}
    with Store.open(workdir / "chat.db", app=bundled_app("chat")) as chat:

        def sign_in() -> Any:
            return chat.action(
                "auth:signIn",
                {
                    "provider": "password",
                    "params": {
                        "flow": "signUp",
                        "email": "bench@example.com",
                        "password": "bench-password",
                    },
                },
            ).unwrap()

        token = sign_in()["tokens"]["token"]
        out["sign-in"] = best_us(sign_in, 1, repeat=5)
        app, custom_token = custom_jwt_app(workdir / "custom")
        with Store.memory(app=app) as custom:
            ops = {
                "anonymous": lambda: chat.query("auth:isAuthenticated", {}),
                "oidc": lambda: (
                    chat.with_token(token).unwrap().query("auth:isAuthenticated", {})
                ),
                "verify": lambda: chat.authenticator.verify(token),
                "custom": lambda: (
                    custom.with_token(custom_token).unwrap().query("me:anyone", {})
                ),
            }
            for _ in range(3):  # interleaved rounds; keep each op's best
                for name, op in ops.items():
                    us = best_us(op, 200, repeat=3)
                    out[name] = min(out.get(name, us), us)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = measure(Path(tmp))
    base = t["anonymous"]
    lines = [
        START,
        "",
        "`python benchmarks/auth.py` (best of interleaved `timeit` runs; µs per call).",
        "",
        "| call | µs | / anonymous |",
        "| --- | ---: | ---: |",
        f"| `auth:isAuthenticated`, anonymous | {fmt(base)} | 1.00 |",
        f"| the same with `store.with_token` (an `auth:signIn` token: OIDC, own issuer, RS256) | {fmt(t['oidc'])} | {t['oidc'] / base:.2f} |",
        f"| the same with a customJwt token (RS256, `data:` URI keys) | {fmt(t['custom'])} | {t['custom'] / base:.2f} |",
        f"| `authenticator.verify` alone (the `auth:signIn` token) | {fmt(t['verify'])} | {t['verify'] / base:.2f} |",
        f"| `auth:signIn` with a password (Scrypt N=16384, r=16) | {fmt(t['sign-in'])} | {t['sign-in'] / base:.0f} |",
        "",
        END,
    ]
    block = "\n".join(lines)
    print(block)
    replace_block(args.out / "RESULTS.md", START, END, block, "Auth (token checks)")


if __name__ == "__main__":
    main()

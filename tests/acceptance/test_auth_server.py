"""Auth against a live ``one-store serve schema/chat``: real clients, real tokens.

- the npm ``ConvexHttpClient`` (``setAuth``, ``setAdminAuth``) runs the chat app's
  sign-in end to end (``js/client.mjs signin``);
- the PyPI ``convex.http_client.ConvexHttpClient`` (``set_auth``,
  ``set_admin_auth``);
- raw HTTP for Convex's answers to each bad ``Authorization`` header
  (convex-backend ``authentication.rs``: 401 ``InvalidAuthHeader`` /
  ``NoAuthProvider`` / ``Unauthenticated`` / ``BadAdminKey``, 400 for a
  malformed header);
- Hypothesis: random and truncated tokens never crash the server and never
  authenticate.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from convex.http_client import ConvexHttpClient
from hypothesis import given, settings
from hypothesis import strategies as st

from one_store.testing import convex_auth_keys

from .live_server import CHAT_APP, live_server
from .test_real_clients import node_client  # noqa: F401  (the npm fixture)

ADMIN_KEY = "one-store|test-admin-key"
SIGN_OUT: dict[str, Any] = {"args": {"type": "signOut"}}
SITE = "http://127.0.0.1:3211"
KEYS = convex_auth_keys()
ENV = {
    "ONE_STORE_ADMIN_KEY": ADMIN_KEY,
    "CONVEX_SITE_URL": SITE,
    **KEYS,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("auth") / "chat.db"
    with live_server(CHAT_APP, db, "--no-access-log", env=ENV) as (url, _process):
        yield url


@pytest.fixture(scope="module")
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def sign_up(
    http: httpx.Client, email: str, password: str = "pass-word-1"
) -> dict[str, str]:
    reply = http.post(
        "/api/action",
        json={
            "path": "auth:signIn",
            "args": {
                "provider": "password",
                "params": {"flow": "signUp", "email": email, "password": password},
            },
        },
    ).json()
    assert reply["status"] == "success", reply
    tokens: dict[str, str] = reply["value"]["tokens"]
    return tokens


def call(
    http: httpx.Client, kind: str, path: str, args: Any, authorization: str | None
) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return http.post(f"/api/{kind}", json={"path": path, "args": args}, headers=headers)


def private_key() -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    begin, end = "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"
    body = KEYS["JWT_PRIVATE_KEY"].removeprefix(begin).removesuffix(end).split()
    pem = "\n".join([begin, *body, end]) + "\n"
    return load_pem_private_key(pem.encode(), password=None)


def site_token(**claims: Any) -> str:
    now = int(time.time())
    body = {"sub": "x|y", "iss": SITE, "aud": "convex", "iat": now, "exp": now + 60}
    return jwt.encode({**body, **claims}, private_key(), algorithm="RS256")


# --------------------------------------------------------------------------- npm


@pytest.fixture(scope="module")
def npm_signin(node_client: Path, server: str) -> dict[str, Any]:  # noqa: F811
    done = subprocess.run(
        ["node", str(node_client), "signin", server],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "ADMIN_KEY": ADMIN_KEY},
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_npm_sign_up_and_set_auth(npm_signin):
    assert npm_signin["tokenKeys"] == ["refreshToken", "token"]
    assert npm_signin["authenticated"] is True
    assert npm_signin["anonymous"] is False
    assert npm_signin["email"] == "ada@example.com"


def test_npm_a_second_user_cannot_see_the_first_users_thread(npm_signin):
    assert npm_signin["adaSees"] == "Ada's"
    assert npm_signin["bobSees"] is None
    assert "Thread not found" in npm_signin["bobSend"]["message"]


def test_npm_refresh_and_sign_out(npm_signin):
    assert npm_signin["refreshedNew"] is True
    assert npm_signin["afterRefresh"] is True
    assert npm_signin["signOut"] is None
    assert npm_signin["refreshAfterSignOut"] == {"tokens": None}


def test_npm_wrong_password_then_rate_limit(npm_signin):
    assert "InvalidSecret" in npm_signin["wrongPassword"]["message"]
    assert "TooManyFailedAttempts" in npm_signin["limited"]["message"]


def test_npm_bad_token_is_a_401(npm_signin):
    message = npm_signin["badToken"]["message"]
    assert '"code":"Unauthenticated"' in message.replace(" ", "")


def test_npm_admin_may_call_internal_functions_users_may_not(npm_signin):
    assert npm_signin["adminInternal"] == {"ok": None}
    assert npm_signin["adminActing"] == "ada@example.com"
    assert "FunctionNotFound" in npm_signin["userInternal"]["message"]
    assert "BadAdminKey" in npm_signin["wrongAdmin"]["message"]


# --------------------------------------------------------------------------- PyPI client


def test_python_client_set_auth_and_admin(server, http):
    tokens = sign_up(http, "py@example.com")
    client = ConvexHttpClient(server)
    assert client.query("auth:isAuthenticated") is False
    client.set_auth(tokens["token"])
    assert client.query("auth:isAuthenticated") is True
    assert client.query("auth:currentUser")["email"] == "py@example.com"
    with pytest.raises(Exception, match="FunctionNotFound"):
        client.mutation("auth:store", SIGN_OUT)
    admin = ConvexHttpClient(server)
    admin.set_admin_auth(ADMIN_KEY)
    assert admin.mutation("auth:store", SIGN_OUT) is None
    assert admin.query("auth:isAuthenticated") is False  # a plain admin has no identity


def test_users_cannot_read_other_users_records_only_admins_can(http):
    tokens = sign_up(http, "private@example.com")
    found = {"email": "private@example.com"}
    for authorization in (None, f"Bearer {tokens['token']}"):
        reply = call(http, "query", "auth:getUserByEmail", found, authorization)
        assert (reply.status_code, reply.json()["code"]) == (404, "FunctionNotFound")
    admin = call(http, "query", "auth:getUserByEmail", found, f"Convex {ADMIN_KEY}")
    user = admin.json()["value"]
    assert user["email"] == "private@example.com"
    by_id = call(http, "query", "auth:getUser", {"userId": user["_id"]}, None)
    assert (by_id.status_code, by_id.json()["code"]) == (404, "FunctionNotFound")


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("authorization", "status", "code"),
    [
        ("Bearer not-a-jwt", 401, "InvalidAuthHeader"),
        ("bearer a.b.c", 401, "InvalidAuthHeader"),
        ("Bearer", 400, "InvalidHeaderFailure"),
        ("Token abcdef", 400, "InvalidAdminKey"),
        ("Basic dXNlcjpwdw==", 400, "InvalidAdminKey"),
        ("Convex wrong-key", 401, "BadAdminKey"),
        ("Convex " + ADMIN_KEY + ":not base64!", 400, "HeaderParseFailure"),
    ],
)
def test_bad_authorization_headers(http, authorization, status, code):
    reply = call(http, "query", "auth:isAuthenticated", {}, authorization)
    assert reply.status_code == status, reply.text
    assert reply.json()["code"] == code


def test_token_failures_over_http(http):
    cases = {
        "expired": (site_token(exp=int(time.time()) - 10), "Unauthenticated"),
        "wrong audience": (site_token(aud="other"), "NoAuthProvider"),
        "wrong issuer": (site_token(iss="https://evil.example"), "NoAuthProvider"),
        "forged": (
            jwt.encode(
                jwt.decode(site_token(), options={"verify_signature": False}),
                convex_auth_private_other(),
                algorithm="RS256",
            ),
            "Unauthenticated",
        ),
    }
    for name, (token, code) in cases.items():
        reply = call(http, "query", "auth:isAuthenticated", {}, f"Bearer {token}")
        assert (reply.status_code, reply.json()["code"]) == (401, code), name
    good = call(http, "query", "auth:isAuthenticated", {}, f"Bearer {site_token()}")
    assert good.json() == {"status": "success", "value": True}


def convex_auth_private_other() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_http_actions_see_the_token_and_refuse_a_bad_one(http):
    ada = sign_up(http, "http-ada@example.com")
    bob = sign_up(http, "http-bob@example.com")
    bearer = {"Authorization": f"Bearer {ada['token']}"}
    me = call(http, "query", "auth:currentUser", {}, bearer["Authorization"]).json()
    thread = call(
        http,
        "mutation",
        "threads:create",
        {"userId": me["value"]["_id"], "title": "t"},
        bearer["Authorization"],
    ).json()["value"]
    http.post(
        "/messages",
        json={"threadId": thread, "role": "user", "content": "hi"},
        headers=bearer,
    )
    own = http.get(f"/threads/{thread}/messages", headers=bearer).json()
    assert [m["content"] for m in own["messages"]] == ["hi"]
    other = http.get(
        f"/threads/{thread}/messages",
        headers={"Authorization": f"Bearer {bob['token']}"},
    )
    assert other.json() == {"messages": []}
    refused = http.get(
        f"/threads/{thread}/messages", headers={"Authorization": "Bearer x.y.z"}
    )
    assert (refused.status_code, refused.json()["code"]) == (401, "InvalidAuthHeader")


def test_the_app_publishes_its_keys(http):
    config = http.get("/.well-known/openid-configuration")
    assert config.json() == {
        "issuer": SITE,
        "jwks_uri": f"{SITE}/.well-known/jwks.json",
        "authorization_endpoint": f"{SITE}/oauth/authorize",
    }
    assert config.headers["cache-control"].startswith("public, max-age=15")
    keys = http.get("/.well-known/jwks.json")
    assert keys.headers["content-type"] == "application/json"
    assert keys.json() == json.loads(KEYS["JWKS"])


def test_the_spec_backend_still_calls_anonymously(http):
    user = call(http, "mutation", "auth:createUser", {"name": "Backend"}, None).json()
    thread = call(
        http,
        "mutation",
        "threads:create",
        {"userId": user["value"], "title": "b"},
        None,
    ).json()
    artifact = http.post(
        "/api/mutation",
        content=json.dumps(
            {
                "path": "artifacts:create",
                "args": {"threadId": thread["value"], "type": "plan", "content": "x"},
            }
        ),
        headers={"Content-Type": "text/plain"},
    )
    assert artifact.json()["status"] == "success"


VALID = site_token(exp=int(time.time()) + 3600)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.text(
            alphabet=st.characters(min_codepoint=33, max_codepoint=126),
            min_size=1,
            max_size=400,
        ),
        st.integers(min_value=1, max_value=400).map(lambda n: VALID[:n]),
    )
)
def test_random_and_truncated_tokens_never_crash_or_authenticate(http, token):
    reply = call(http, "query", "auth:isAuthenticated", {}, f"Bearer {token}")
    if reply.status_code == 200:
        # Only the whole token (or one whose cut lost only base64 padding bits) passes.
        assert token == VALID or token.rstrip("=") == VALID
        return
    assert reply.status_code in (400, 401), reply.text
    assert set(reply.json()) == {"code", "message"}


# ------------------------------------------------------------------ sync protocol


def test_sync_authenticate_runs_the_socket_as_the_tokens_user(server, http):
    from .sync_client import Raw

    token = sign_up(http, "sync-user@example.com")["token"]
    raw = Raw(server).connect("sync-auth")
    try:
        raw.add(0, "auth:isAuthenticated", {})
        assert raw.transition()["modifications"][0]["value"] is False
        raw.send(
            {
                "type": "Authenticate",
                "tokenType": "User",
                "value": token,
                "baseVersion": 0,
            }
        )
        after = raw.transition()
        assert after["endVersion"]["identity"] == 1
        assert after["modifications"][0]["value"] is True
    finally:
        raw.close()


@pytest.mark.parametrize(
    ("claims", "says"),
    [({"exp": int(time.time()) - 60}, "expired"), ({"aud": "other"}, "aud")],
)
def test_sync_authenticate_refuses_a_bad_token_with_auth_error(server, claims, says):
    from .sync_client import Raw

    raw = Raw(server).connect("sync-bad-token")
    raw.send(
        {
            "type": "Authenticate",
            "tokenType": "User",
            "value": site_token(**claims),
            "baseVersion": 0,
        }
    )
    seen, _code = raw.closed()
    errors = [m for m in seen if m["type"] == "AuthError"]
    assert len(errors) == 1, seen
    assert says in errors[0]["error"].lower()
    assert errors[0]["authUpdateAttempted"] is True

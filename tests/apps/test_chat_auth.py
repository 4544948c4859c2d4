"""The chat app's sign-in, as ``@convex-dev/auth`` does it, and who sees which thread.

Expected behaviour from get-convex/convex-auth (``signIn.ts``, ``Password.ts``,
``refreshSession.ts``, ``rateLimit.ts``) and lucia's ``Scrypt``; tokens verified
by the store's own authenticator (``store.with_token``), as ``serve`` does.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success

from one_store import HandlerError, Store, Unauthenticated
from one_store.testing import FakeClock, convex_auth_keys

from .conftest import CHAT_APP
from .helpers import make_chat_thread, make_chat_user, problem_of

SITE = "http://127.0.0.1:3211"
KEYS = convex_auth_keys()  # one key for the module: RSA generation is slow
PASSWORD = "correct horse battery"


@pytest.fixture
def signing_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_PRIVATE_KEY", KEYS["JWT_PRIVATE_KEY"])
    monkeypatch.setenv("JWKS", KEYS["JWKS"])
    monkeypatch.setenv("CONVEX_SITE_URL", SITE)


@pytest.fixture
def chat(signing_env: None, clock: FakeClock) -> Iterator[Store]:
    with Store.memory(app=CHAT_APP, clock=clock, seed=0) as store:
        yield store


def sign_in(store: Store, flow: str, email: str, password: str = PASSWORD) -> Any:
    return store.action(
        "auth:signIn",
        {
            "provider": "password",
            "params": {"flow": flow, "email": email, "password": password},
        },
    )


def tokens(
    store: Store, flow: str, email: str, password: str = PASSWORD
) -> dict[str, str]:
    result: dict[str, str] = sign_in(store, flow, email, password).unwrap()["tokens"]
    return result


def error_text(result: Any) -> str:
    problem = problem_of(result)
    assert isinstance(problem, HandlerError), problem
    return problem.message


def as_user(store: Store, token: str) -> Store:
    view: Store = store.with_token(token).unwrap()
    return view


# --------------------------------------------------------------------------- tokens


def test_sign_up_returns_a_jwt_as_convex_auth_issues_it(chat, clock):
    issued = tokens(chat, "signUp", "ada@example.com")
    assert set(issued) == {"token", "refreshToken"}
    header = jwt.get_unverified_header(issued["token"])
    assert header == {"alg": "RS256"}  # no kid, no typ
    claims = jwt.decode(issued["token"], options={"verify_signature": False})
    user_id, session_id = claims["sub"].split("|")
    now = int(clock() // 1000)
    assert claims == {
        "sub": f"{user_id}|{session_id}",
        "iat": now,
        "iss": SITE,
        "aud": "convex",
        "exp": now + 3600,
    }
    user = chat.query("auth:getUser", {"userId": user_id}).unwrap()
    assert user["email"] == "ada@example.com"
    _refresh_id, refresh_session = issued["refreshToken"].split("|")
    assert refresh_session == session_id
    [session] = chat.documents("authSessions")
    assert session["_id"] == session_id
    assert session["expirationTime"] == clock() + 30 * 24 * 3600 * 1000


def test_the_password_is_stored_as_lucia_scrypt(chat):
    tokens(chat, "signUp", "ada@example.com")
    [account] = chat.documents("authAccounts")
    assert (account["provider"], account["providerAccountId"]) == (
        "password",
        "ada@example.com",
    )
    salt, key = account["secret"].split(":")
    assert len(salt) == 32
    assert len(key) == 128
    assert PASSWORD not in account["secret"]


def test_scrypt_matches_luciass_test_vector():
    import importlib.util

    spec = importlib.util.spec_from_file_location("lib", CHAT_APP / "_convex_auth.py")
    assert spec is not None
    assert spec.loader is not None
    lib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lib)
    stored = (
        "00112233445566778899aabbccddeeff:13af89ff6a88bb0fb3277e79ba724c6c0731b15919c"
        "a892969d63abd1534b867d110179e3bc8af39995ede0f9b2ac14b2b97573df10ba3802c498db"
        "eb61e4f64"
    )
    assert lib.verify_password("correct horse", stored)
    assert not lib.verify_password("correct horsf", stored)
    assert not lib.verify_password("correct horse", "no-colon")


def test_a_token_signs_the_user_in(chat):
    issued = tokens(chat, "signUp", "ada@example.com")
    ada = as_user(chat, issued["token"])
    assert ada.query("auth:isAuthenticated", {}).unwrap() is True
    assert chat.query("auth:isAuthenticated", {}).unwrap() is False
    assert ada.query("auth:currentUser", {}).unwrap()["email"] == "ada@example.com"


def test_the_private_key_may_have_newlines_instead_of_spaces(chat, monkeypatch):
    begin, end = "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----"
    body = KEYS["JWT_PRIVATE_KEY"].removeprefix(begin).removesuffix(end).split()
    folded = "\n".join([begin, *body, end]) + "\n"
    monkeypatch.setenv("JWT_PRIVATE_KEY", folded)
    issued = tokens(chat, "signUp", "ada@example.com")
    assert isinstance(chat.with_token(issued["token"]), Success)


def test_missing_private_key_is_the_librarys_error(chat, monkeypatch):
    monkeypatch.delenv("JWT_PRIVATE_KEY")
    text = error_text(sign_in(chat, "signUp", "ada@example.com"))
    assert text == "Uncaught Error: Missing environment variable `JWT_PRIVATE_KEY`"
    assert list(chat.documents("authSessions")) == []


def test_the_token_expires_after_an_hour_of_the_store_clock(chat, clock):
    issued = tokens(chat, "signUp", "ada@example.com")
    clock.advance(3_600_000 - 1000)
    assert isinstance(chat.with_token(issued["token"]), Success)
    clock.advance(1000)
    problem = problem_of(chat.with_token(issued["token"]))
    assert isinstance(problem, Unauthenticated)
    assert problem.reason == "expired"


def test_a_token_signed_with_another_key_is_refused(chat):
    issued = tokens(chat, "signUp", "ada@example.com")
    claims = jwt.decode(issued["token"], options={"verify_signature": False})
    other = jwt.encode(claims, KEYS_OTHER["JWT_PRIVATE_KEY_PEM"], algorithm="RS256")
    problem = problem_of(chat.with_token(other))
    assert isinstance(problem, Unauthenticated)
    assert problem.reason == "signature"


def _other_key() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {"JWT_PRIVATE_KEY_PEM": pem}


KEYS_OTHER = _other_key()


# --------------------------------------------------------------------------- flows


def test_sign_in_with_the_password(chat):
    tokens(chat, "signUp", "ada@example.com")
    again = tokens(chat, "signIn", "ada@example.com")
    assert isinstance(chat.with_token(again["token"]), Success)
    assert len(list(chat.documents("authSessions"))) == 2


def test_wrong_password_and_unknown_email(chat):
    tokens(chat, "signUp", "ada@example.com")
    assert error_text(sign_in(chat, "signIn", "ada@example.com", "wrong-pw")) == (
        "Uncaught Error: InvalidSecret"
    )
    assert error_text(sign_in(chat, "signIn", "bob@example.com")) == (
        "Uncaught Error: InvalidAccountId"
    )


def test_sign_up_rules(chat):
    assert error_text(sign_in(chat, "signUp", "ada@example.com", "short")) == (
        "Uncaught Error: Invalid password"
    )
    tokens(chat, "signUp", "ada@example.com")
    # The same password signs in; another one is refused.
    assert isinstance(sign_in(chat, "signUp", "ada@example.com"), Success)
    assert error_text(sign_in(chat, "signUp", "ada@example.com", "another-pw")) == (
        "Uncaught Error: Account ada@example.com already exists"
    )
    assert len(list(chat.documents("users"))) == 1


def test_sign_in_needs_a_provider_and_a_known_flow(chat):
    assert "Missing `provider`" in error_text(chat.action("auth:signIn", {}))
    assert "Provider `github` is not configured" in error_text(
        chat.action("auth:signIn", {"provider": "github"})
    )
    bad_flow = {"provider": "password", "params": {"flow": "magic", "email": "a@b"}}
    assert "Missing `flow` param" in error_text(chat.action("auth:signIn", bad_flow))


def test_refresh_rotates_and_sign_out_ends_the_session(chat, clock):
    first = tokens(chat, "signUp", "ada@example.com")
    refreshed = chat.action("auth:signIn", {"refreshToken": first["refreshToken"]})
    second = refreshed.unwrap()["tokens"]
    assert second["refreshToken"] != first["refreshToken"]
    assert isinstance(chat.with_token(second["token"]), Success)
    # Within the 10 s reuse window the same token gives the same child.
    again = chat.action("auth:signIn", {"refreshToken": first["refreshToken"]})
    assert again.unwrap()["tokens"]["refreshToken"] == second["refreshToken"]
    ada = as_user(chat, second["token"])
    assert ada.action("auth:signOut", {}) == Success(None)
    assert list(chat.documents("authSessions")) == []
    assert list(chat.documents("authRefreshTokens")) == []
    after = chat.action("auth:signIn", {"refreshToken": second["refreshToken"]})
    assert after == Success({"tokens": None})


def test_a_reused_refresh_token_after_the_window_is_refused(chat, clock):
    first = tokens(chat, "signUp", "ada@example.com")
    chat.action("auth:signIn", {"refreshToken": first["refreshToken"]}).unwrap()
    second = chat.action("auth:signIn", {"refreshToken": first["refreshToken"]})
    child = second.unwrap()["tokens"]["refreshToken"]
    chat.action("auth:signIn", {"refreshToken": child}).unwrap()  # child used
    clock.advance(11_000)
    stolen = chat.action("auth:signIn", {"refreshToken": first["refreshToken"]})
    assert stolen == Success({"tokens": None})


def test_an_unparseable_refresh_token(chat):
    assert "Can't parse refresh token" in error_text(
        chat.action("auth:signIn", {"refreshToken": "no-bar"})
    )


def test_failed_sign_ins_are_rate_limited(chat, clock):
    tokens(chat, "signUp", "ada@example.com")
    for _ in range(10):
        text = error_text(sign_in(chat, "signIn", "ada@example.com", "wrong-pw"))
        assert text == "Uncaught Error: InvalidSecret"
        clock.advance(1)
    # Limited: even the right password is not checked.
    assert error_text(sign_in(chat, "signIn", "ada@example.com")) == (
        "Uncaught Error: TooManyFailedAttempts"
    )
    [row] = chat.documents("authRateLimits")
    assert row["attemptsLeft"] < 1
    clock.advance(360_000)  # six minutes refill one attempt (10 an hour)
    assert isinstance(sign_in(chat, "signIn", "ada@example.com"), Success)
    assert list(chat.documents("authRateLimits")) == []


def test_store_is_internal_but_callable_in_process(chat):
    spec = chat.function("auth:store").unwrap()
    assert spec.visibility == "internal"
    result = chat.mutation("auth:store", {"args": {"type": "nothing"}})
    assert isinstance(result, Failure)


# --------------------------------------------------------------------------- ownership


@pytest.fixture
def two_users(chat: Store) -> tuple[Store, Store, str, str]:
    ada = as_user(chat, tokens(chat, "signUp", "ada@example.com")["token"])
    bob = as_user(chat, tokens(chat, "signUp", "bob@example.com")["token"])
    ada_id = ada.query("auth:currentUser", {}).unwrap()["_id"]
    thread = ada.mutation(
        "threads:create", {"userId": ada_id, "title": "Mine"}
    ).unwrap()
    ada.mutation(
        "messages:send", {"threadId": thread, "role": "user", "content": "hi"}
    ).unwrap()
    return ada, bob, ada_id, thread


def test_another_users_thread_is_not_there(chat, two_users):
    ada, bob, ada_id, thread = two_users
    artifact = ada.mutation(
        "artifacts:create", {"threadId": thread, "type": "plan", "content": "p"}
    ).unwrap()
    ada.mutation(
        "sessions:upsert", {"threadId": thread, "sdkSessionId": "s", "phase": "p"}
    ).unwrap()
    ada.mutation(
        "toolCalls:record", {"threadId": thread, "toolName": "t", "input": 1}
    ).unwrap()
    request = ada.mutation(
        "approvals:request", {"threadId": thread, "planContent": "x"}
    ).unwrap()
    t = {"threadId": thread}
    assert bob.query("threads:get", t) == Success(None)
    assert bob.query("threads:list", {"userId": ada_id}) == Success([])
    assert bob.query("messages:list", t) == Success([])
    assert bob.query("messages:search", {**t, "query": "hi"}) == Success([])
    assert bob.query("artifacts:listByThread", t) == Success([])
    assert bob.query("artifacts:get", {"artifactId": artifact}) == Success(None)
    assert bob.query("artifacts:fileUrl", {"artifactId": artifact}) == Success(None)
    assert bob.query("sessions:getByThread", t) == Success(None)
    assert bob.query("toolCalls:list", t) == Success([])
    assert bob.query("approvals:listByThread", t) == Success([])
    assert bob.query("approvals:pending", t) == Success(None)
    assert bob.query("approvals:get", {"requestId": request}) == Success(None)
    # The owner, and the anonymous backend, see it all.
    for viewer in (ada, chat):
        assert viewer.query("threads:get", t).unwrap()["title"] == "Mine"
        assert len(viewer.query("messages:list", t).unwrap()) == 1
        assert (
            viewer.query("artifacts:get", {"artifactId": artifact}).unwrap() is not None
        )


def test_another_users_thread_cannot_be_changed(chat, two_users):
    ada, bob, ada_id, thread = two_users
    artifact = ada.mutation(
        "artifacts:create", {"threadId": thread, "type": "plan", "content": "p"}
    ).unwrap()
    request = ada.mutation(
        "approvals:request", {"threadId": thread, "planContent": "x"}
    ).unwrap()
    before = {t: list(chat.documents(t)) for t in chat.storage.tables()}
    t = {"threadId": thread}
    attempts = [
        ("threads:update", {**t, "title": "pwned"}),
        ("threads:archive", t),
        ("threads:remove", t),
        ("messages:send", {**t, "role": "user", "content": "x"}),
        ("artifacts:create", {**t, "type": "plan", "content": "x"}),
        ("artifacts:update", {"artifactId": artifact, "content": "x"}),
        ("sessions:upsert", {**t, "sdkSessionId": "s", "phase": "p"}),
        ("toolCalls:record", {**t, "toolName": "t", "input": 1}),
        ("approvals:approve", {"requestId": request}),
        ("approvals:reject", {"requestId": request}),
        ("threads:create", {"userId": ada_id, "title": "as ada"}),
    ]
    for path, args in attempts:
        result = bob.mutation(path, args)
        assert isinstance(result, Failure), path
        assert "Mine" not in str(result.failure()), path
    assert isinstance(
        bob.query(
            "messages:listPage",
            {**t, "paginationOpts": {"numItems": 5, "cursor": None}},
        ),
        Failure,
    )
    assert {t: list(chat.documents(t)) for t in chat.storage.tables()} == before


def test_a_signed_in_user_works_on_their_own_threads(two_users):
    ada, bob, ada_id, thread = two_users
    bob_id = bob.query("auth:currentUser", {}).unwrap()["_id"]
    own = bob.mutation("threads:create", {"userId": bob_id, "title": "Bob's"}).unwrap()
    assert [
        x["_id"] for x in bob.query("threads:list", {"userId": bob_id}).unwrap()
    ] == [own]
    assert [
        x["_id"] for x in ada.query("threads:list", {"userId": ada_id}).unwrap()
    ] == [thread]


def test_anonymous_backend_keeps_full_access(chat):
    user = make_chat_user(chat)
    thread = make_chat_thread(chat, user)
    assert chat.mutation(
        "artifacts:create", {"threadId": thread, "type": "plan", "content": "c"}
    )


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    )
)
def test_random_tokens_never_sign_anyone_in(chat, text):
    result = chat.with_token(text)
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), Unauthenticated)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_truncated_or_altered_tokens_never_sign_anyone_in(chat, data):
    token = VALID_TOKEN[0] if VALID_TOKEN else None
    if token is None:
        token = tokens(chat, "signUp", "fuzz@example.com")["token"]
        VALID_TOKEN.append(token)
    cut = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    altered = token[:cut]
    if data.draw(st.booleans()):
        flip = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
        char = "A" if token[flip] != "A" else "B"
        altered = token[:flip] + char + token[flip + 1 :]
    if altered == token:
        return
    result = chat.with_token(altered)
    if isinstance(result, Success):
        # Base64 padding bits: a change that decodes to the same bytes is the same token.
        assert _decoded(altered) == _decoded(token)
    else:
        assert isinstance(result.failure(), Unauthenticated)


VALID_TOKEN: list[str] = []


def _decoded(token: str) -> list[bytes]:
    return [base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split(".")]


def test_claims_are_json(chat):
    issued = tokens(chat, "signUp", "ada@example.com")
    payload = issued["token"].split(".")[1]
    assert json.loads(base64.urlsafe_b64decode(payload + "=="))["aud"] == "convex"

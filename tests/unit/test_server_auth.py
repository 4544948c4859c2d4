"""Tests for one_store.server.auth: the ``Authorization`` header and ``Authenticate`` message.

Cases from convex-backend ``crates/local_backend/src/authentication.rs``
(``ExtractAuthenticationToken``) and ``crates/sync`` (``Authenticate``:
``User`` / ``Admin`` with ``impersonating`` / ``None``).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure, Success

from one_store import Store, Unauthenticated
from one_store.server.auth import Gate, new_admin_key, serving_admin_key
from one_store.testing import FakeClock
from tests.keys import Key, data_uri, jwks, write_app

ISSUER = "https://issuer.example"
NOW = 1_700_000_000


@pytest.fixture(scope="module")
def key() -> Key:
    return Key("RS256", "k1")


@pytest.fixture
def gate(tmp_path: Path, key: Key, clock: FakeClock) -> Iterator[Gate]:
    providers = [
        {
            "type": "customJwt",
            "issuer": ISSUER,
            "jwks": data_uri(jwks(key)),
            "algorithm": "RS256",
        }
    ]
    with Store.memory(app=write_app(tmp_path, repr(providers)), clock=clock) as store:
        yield Gate(store, admin_key="dev:secret|abc")


def token(key: Key, **extra: object) -> str:
    return key.sign({"iss": ISSUER, "sub": "u1", "iat": NOW, "exp": NOW + 60, **extra})


def identity_of(result: object) -> Any:
    assert isinstance(result, Success), result
    return result.unwrap().store.query("me:identity").unwrap()


def refusal(result: object) -> Unauthenticated:
    assert isinstance(result, Failure), result
    problem = result.failure()
    assert isinstance(problem, Unauthenticated)
    return problem


def test_no_header_is_anonymous(gate):
    caller = gate.from_header(None).unwrap()
    assert caller.admin is False
    assert identity_of(Success(caller)) is None


def test_bearer_token(gate, key):
    assert identity_of(gate.from_header(f"Bearer {token(key)}"))["subject"] == "u1"
    assert (
        gate.from_header(f"Bearer {token(key)}").unwrap().expires_ms
        == (NOW + 60) * 1000
    )
    assert gate.from_header(None).unwrap().expires_ms is None
    assert identity_of(gate.from_header(f"bearer   {token(key)}  "))["subject"] == "u1"


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        ("Bearer x.y.z", 401, "InvalidAuthHeader"),
        ("Bearer", 400, "InvalidHeaderFailure"),
        ("short", 400, "InvalidHeaderFailure"),
        ("Basic dXNlcg==", 400, "InvalidAdminKey"),
        ("Bearer \u00e9t\u00e9-token", 400, "HeaderParseFailure"),
        ("Convex wrong", 401, "BadAdminKey"),
        ("Convex secret|abc:%%%", 400, "HeaderParseFailure"),
    ],
)
def test_bad_headers(gate, header, status, code):
    problem = refusal(gate.from_header(header))
    assert (problem.status, problem.convex_code) == (status, code)


def test_admin_key_with_and_without_prefix(gate):
    for key in ("secret|abc", "dev:secret|abc", "prod:secret|abc"):
        caller = gate.from_header(f"Convex {key}").unwrap()
        assert caller.admin is True
        assert identity_of(Success(caller)) is None


def test_admin_acting_as_an_identity(gate):
    acting = base64.b64encode(
        json.dumps({"subject": "s", "issuer": "i", "x": 1}).encode()
    )
    caller = gate.from_header(f"Convex secret|abc:{acting.decode()}")
    assert identity_of(caller) == {
        "subject": "s",
        "issuer": "i",
        "x": 1,
        "tokenIdentifier": "i|s",
    }
    assert caller.unwrap().admin is True


def test_admin_key_in_the_query_string_only_without_a_header(gate, key):
    assert gate.from_header(None, "secret|abc").unwrap().admin is True
    assert refusal(gate.from_header(None, "nope")).convex_code == "BadAdminKey"
    assert (
        gate.from_header(f"Bearer {token(key)}", "secret|abc").unwrap().admin is False
    )


def test_no_admin_key_means_no_admin(tmp_path, clock):
    with Store.memory(clock=clock) as store:
        assert (
            refusal(Gate(store, None).from_header("Convex anything")).reason
            == "admin_key"
        )


def test_authenticate_message(gate, key):
    user = gate.authenticate(
        {"type": "Authenticate", "tokenType": "User", "value": token(key)}
    )
    assert identity_of(user)["subject"] == "u1"
    expired = gate.authenticate(
        {"tokenType": "User", "value": token(key, exp=NOW - 60)}
    )
    assert refusal(expired).reason == "expired"
    assert gate.authenticate({"tokenType": "None"}).unwrap().admin is False
    admin = gate.authenticate({"tokenType": "Admin", "value": "secret|abc"})
    assert admin.unwrap().admin is True
    acting = gate.authenticate(
        {"tokenType": "Admin", "value": "secret|abc", "impersonating": {"subject": "z"}}
    )
    assert identity_of(acting)["subject"] == "z"
    assert (
        refusal(gate.authenticate({"tokenType": "Admin", "value": "bad"})).reason
        == "admin_key"
    )
    assert refusal(gate.authenticate({"tokenType": "User"})).reason == "malformed"
    assert (
        refusal(gate.authenticate({"tokenType": "Other", "value": "x"})).reason
        == "malformed"
    )


def test_admin_keys(monkeypatch):
    assert new_admin_key() != new_admin_key()
    assert ":" not in new_admin_key()
    monkeypatch.delenv("ONE_STORE_ADMIN_KEY", raising=False)
    shown = serving_admin_key()  # generated, put where serve reads it, shown
    assert os.environ["ONE_STORE_ADMIN_KEY"] == shown
    assert serving_admin_key() == "from ONE_STORE_ADMIN_KEY"
    monkeypatch.setenv("ONE_STORE_ADMIN_KEY", "mine")
    assert serving_admin_key() == "from ONE_STORE_ADMIN_KEY"

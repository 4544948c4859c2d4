"""Tests for one_store.runtime.auth: tokens verified as Convex's backend verifies them.

Real keys (``cryptography``), real JWTs (PyJWT), real JWKS files, ``data:`` URIs
and a real local HTTP server for fetched keys and OIDC discovery. The expected
codes and texts are convex-backend's (``crates/authentication/src/lib.rs``,
``crates/keybroker/src/broker.rs``) and the 5 s leeway biscuit's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from returns.result import Failure, Success

from one_store import DefinitionError, Store, Unauthenticated
from one_store.runtime.auth import parse_providers
from one_store.testing import FakeClock
from tests.keys import Key, data_uri, jwks, write_app

NOW = 1_700_000_000  # the clock fixture's time, in seconds
ISSUER = "https://issuer.example"
SITE = "http://127.0.0.1:3211"


def refusal(result: Any) -> Unauthenticated:
    assert isinstance(result, Failure), f"expected a refusal, got {result!r}"
    problem = result.failure()
    assert isinstance(problem, Unauthenticated)
    return problem


@pytest.fixture(scope="module")
def key() -> Key:
    return Key("RS256", "k1")


@pytest.fixture(scope="module")
def other() -> Key:
    return Key("RS256", "k1")  # same kid, different key: a forged signature


@pytest.fixture
def custom(tmp_path: Path, key: Key, clock: FakeClock) -> Iterator[Store]:
    """customJwt with applicationID, keys in a JWKS file beside the app."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "keys.json").write_text(jwks(key))
    providers = [
        {
            "type": "customJwt",
            "issuer": ISSUER,
            "jwks": "keys.json",
            "algorithm": "RS256",
            "applicationID": "my-app",
        }
    ]
    app = write_app(tmp_path / "app", repr(providers))
    with Store.memory(app=app, clock=clock) as store:
        yield store


def claims(**extra: Any) -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": "my-app",
        "iat": NOW,
        "exp": NOW + 3600,
        **extra,
    }


# --------------------------------------------------------------------------- customJwt


def test_custom_jwt_identity_has_convex_keys_and_flattened_claims(custom, key):
    token = key.sign(claims(org={"id": "o1", "plan": {"tier": 2}}, roles=["a"]))
    store = custom.with_token(token).unwrap()
    assert store.query("me:identity").unwrap() == {
        "tokenIdentifier": f"{ISSUER}|user-1",
        "issuer": ISSUER,
        "subject": "user-1",
        "org.id": "o1",
        "org.plan.tier": 2,
        "roles": ["a"],
    }


def test_custom_jwt_expired_beyond_the_five_second_leeway(custom, key):
    assert isinstance(custom.with_token(key.sign(claims(exp=NOW - 5))), Success)
    problem = refusal(custom.with_token(key.sign(claims(exp=NOW - 6))))
    assert (problem.reason, problem.convex_code, problem.status) == (
        "expired",
        "InvalidAuthHeader",
        401,
    )
    assert problem.message == "Could not validate token: Token expired 6 seconds ago"


def test_custom_jwt_expiry_follows_the_store_clock(custom, key, clock):
    token = key.sign(claims(exp=NOW + 60))
    assert isinstance(custom.with_token(token), Success)
    clock.advance(66_000)
    assert refusal(custom.with_token(token)).reason == "expired"


def test_custom_jwt_not_yet_valid(custom, key):
    assert isinstance(custom.with_token(key.sign(claims(nbf=NOW + 5))), Success)
    problem = refusal(custom.with_token(key.sign(claims(nbf=NOW + 60))))
    assert problem.reason == "not_yet_valid"
    assert "Token will be valid in 60 seconds" in problem.message


def test_custom_jwt_issued_in_the_future(custom, key):
    problem = refusal(custom.with_token(key.sign(claims(iat=NOW + 60))))
    assert problem.reason == "issued_in_future"


def test_custom_jwt_bad_signature(custom, other):
    problem = refusal(custom.with_token(other.sign(claims())))
    assert (problem.reason, problem.convex_code) == ("signature", "InvalidAuthHeader")
    assert "'kid' (key ID) header is 'k1'" in problem.message


def test_custom_jwt_tampered_payload_fails_the_signature(custom, key):
    header, _, signature = key.sign(claims()).split(".")
    forged = key.sign(claims(sub="admin")).split(".")[1]
    problem = refusal(custom.with_token(f"{header}.{forged}.{signature}"))
    assert problem.reason == "signature"


def test_custom_jwt_requires_a_kid(custom, key):
    problem = refusal(custom.with_token(key.sign(claims(), kid=None)))
    assert problem.reason == "kid"
    assert problem.message == (
        "Could not decode token. JWT may be missing a 'kid' (key ID) header."
    )


def test_custom_jwt_unknown_kid(custom, key):
    problem = refusal(custom.with_token(key.sign(claims(), kid="k9")))
    assert problem.reason == "kid"


def test_custom_jwt_algorithm_must_be_the_configured_one(custom, key):
    es = Key("ES256", "k1")
    assert refusal(custom.with_token(es.sign(claims()))).reason == "signature"


def test_wrong_issuer_is_no_auth_provider(custom, key):
    problem = refusal(custom.with_token(key.sign(claims(iss="https://evil.example"))))
    assert (problem.reason, problem.convex_code) == ("issuer", "NoAuthProvider")
    assert problem.message.endswith(
        f"providers: [CustomJWT(issuer={ISSUER}, app_id=my-app)]"
    )


def test_wrong_audience_is_no_auth_provider(custom, key):
    problem = refusal(custom.with_token(key.sign(claims(aud="other-app"))))
    assert (problem.reason, problem.convex_code) == ("audience", "NoAuthProvider")
    # Extra audiences are fine for a customJwt provider.
    token = key.sign(claims(aud=["other-app", "my-app"]))
    assert isinstance(custom.with_token(token), Success)


def test_issuer_without_scheme_or_with_trailing_slash_matches(custom, key):
    token = key.sign(claims(iss="issuer.example/"))
    identity = custom.with_token(token).unwrap().query("me:identity").unwrap()
    assert identity["issuer"] == "issuer.example/"  # the token's own text
    assert identity["tokenIdentifier"] == "issuer.example/|user-1"


def test_custom_jwt_requires_sub_and_exp(custom, key):
    no_sub = claims()
    del no_sub["sub"]
    assert refusal(custom.with_token(key.sign(no_sub))).reason == "claims"
    no_exp = claims()
    del no_exp["exp"]
    assert refusal(custom.with_token(key.sign(no_exp))).reason == "claims"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b",
        "a.b.c",
        "e30.e30",
        "!!!.???.###",
        "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",  # payload is not JSON
        "eyJhbGciOiJSUzI1NiJ9.WzFd.c2ln",  # payload is a list
    ],
)
def test_malformed_tokens(custom, token):
    problem = refusal(custom.with_token(token))
    assert (problem.reason, problem.convex_code) == ("malformed", "InvalidAuthHeader")


def test_token_without_iss(custom, key):
    body = claims()
    del body["iss"]
    problem = refusal(custom.with_token(key.sign(body)))
    assert problem.message.startswith("Missing issuer claim ('iss')")


def test_jwks_as_a_data_uri(tmp_path, key, clock):
    providers = [
        {
            "type": "customJwt",
            "issuer": ISSUER,
            "jwks": data_uri(jwks(key)),
            "algorithm": "RS256",
        }
    ]
    with Store.memory(app=write_app(tmp_path, repr(providers)), clock=clock) as s:
        assert isinstance(s.with_token(key.sign(claims(aud="anything"))), Success)


def test_es256_custom_jwt(tmp_path, clock):
    es = Key("ES256", "e1")
    providers = [
        {
            "type": "customJwt",
            "issuer": ISSUER,
            "jwks": data_uri(jwks(es)),
            "algorithm": "ES256",
        }
    ]
    with Store.memory(app=write_app(tmp_path, repr(providers)), clock=clock) as s:
        identity = s.with_token(es.sign(claims())).unwrap().query("me:identity")
        assert identity.unwrap()["subject"] == "user-1"


def test_no_auth_config_refuses_every_token(key, clock):
    with Store.memory(clock=clock) as store:
        problem = refusal(store.with_token(key.sign(claims())))
        assert problem.convex_code == "NoAuthProvider"


# --------------------------------------------------------------------------- OIDC


@pytest.fixture
def own_site(tmp_path, monkeypatch, clock) -> Iterator[tuple[Store, Key]]:
    """An app trusting its own CONVEX_SITE_URL, as @convex-dev/auth sets it up."""
    site_key = Key("RS256", kid=None)  # @convex-dev/auth's JWKS has no kid
    monkeypatch.setenv("CONVEX_SITE_URL", SITE)
    monkeypatch.setenv("JWKS", jwks(site_key))
    providers = '[{"domain": __import__("os").environ["CONVEX_SITE_URL"], "applicationID": "convex"}]'
    with Store.memory(app=write_app(tmp_path, providers), clock=clock) as store:
        yield store, site_key


def site_claims(**extra: Any) -> dict[str, Any]:
    return {
        "iss": SITE,
        "sub": "u|s",
        "aud": "convex",
        "iat": NOW,
        "exp": NOW + 3600,
        **extra,
    }


def test_oidc_own_issuer_uses_the_jwks_variable(own_site):
    store, site_key = own_site
    token = site_key.sign(site_claims(email="a@b.c", given_name="Ada", updated_at=NOW))
    identity = store.with_token(token).unwrap().query("me:identity").unwrap()
    assert identity == {
        "tokenIdentifier": f"{SITE}|u|s",
        "issuer": SITE,
        "subject": "u|s",
        "email": "a@b.c",
        "givenName": "Ada",
        "updatedAt": "2023-11-14T22:13:20+00:00",
    }


def test_oidc_has_no_expiry_leeway(own_site, clock):
    store, site_key = own_site
    assert (
        refusal(store.with_token(site_key.sign(site_claims(exp=NOW)))).reason
        == "expired"
    )
    problem = refusal(store.with_token(site_key.sign(site_claims(exp=NOW - 1))))
    assert (problem.reason, problem.convex_code) == ("expired", "Unauthenticated")
    assert problem.message.startswith("Could not verify OIDC token claim.")


def test_oidc_audience_must_be_exactly_the_application_id(own_site):
    store, site_key = own_site
    token = site_key.sign(site_claims(aud=["convex", "other"]))
    assert refusal(store.with_token(token)).reason == "audience"


def test_oidc_bad_signature_and_missing_claims(own_site):
    store, _ = own_site
    forged = Key("RS256", kid=None).sign(site_claims())
    assert refusal(store.with_token(forged)).reason == "signature"
    body = site_claims()
    del body["iat"]
    problem = refusal(store.with_token(own_site[1].sign(body)))
    assert (problem.reason, problem.convex_code) == ("claims", "InvalidAuthHeader")


def test_oidc_refuses_es256(own_site):
    store, _ = own_site
    es = Key("ES256", kid=None)
    assert refusal(store.with_token(es.sign(site_claims()))).reason == "signature"


# --------------------------------------------------------------------------- fetched keys


class KeyServer:
    """A real HTTP server publishing a JWKS and an OpenID configuration."""

    def __init__(self) -> None:
        self.jwks = '{"keys": []}'
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = json.dumps(
                        {"issuer": owner.url, "jwks_uri": owner.url + "/jwks"}
                    )
                elif self.path == "/jwks":
                    owner.fetches += 1
                    body = owner.jwks
                else:
                    self.send_error(404)
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    yield server
    server.close()


def test_fetched_jwks_is_cached_and_refreshed_on_an_unknown_kid(
    tmp_path, key_server, clock
):
    first, second = Key("RS256", "k1"), Key("RS256", "k2")
    key_server.jwks = jwks(first)
    providers = [
        {
            "type": "customJwt",
            "issuer": ISSUER,
            "jwks": key_server.url + "/jwks",
            "algorithm": "RS256",
        }
    ]
    with Store.memory(app=write_app(tmp_path, repr(providers)), clock=clock) as store:
        for _ in range(3):
            assert isinstance(store.with_token(first.sign(claims())), Success)
        assert key_server.fetches == 1
        key_server.jwks = jwks(first, second)  # the provider rotates in k2
        # Fetched a moment ago: an unknown kid does not fetch again yet.
        assert refusal(store.with_token(second.sign(claims()))).reason == "kid"
        assert key_server.fetches == 1
        clock.advance(10_000)
        assert isinstance(store.with_token(second.sign(claims())), Success)
        assert key_server.fetches == 2
        for _ in range(3):  # made-up kids never fetch more than once per 10 s
            store.with_token(first.sign(claims(), kid="made-up"))
        assert key_server.fetches == 2


def test_unreachable_jwks_url(tmp_path, clock):
    providers = [
        {
            "type": "customJwt",
            "issuer": ISSUER,
            "jwks": "http://127.0.0.1:9/jwks",
            "algorithm": "RS256",
        }
    ]
    with Store.memory(app=write_app(tmp_path, repr(providers)), clock=clock) as store:
        problem = refusal(store.with_token(Key().sign(claims())))
        assert (problem.reason, problem.convex_code) == ("jwks", "InvalidAuthHeader")
        assert problem.message.startswith("Could not fetch JWKS from URL")


def test_oidc_discovery_from_the_issuer(tmp_path, key_server, clock):
    signer = Key("RS256", "d1")
    key_server.jwks = jwks(signer)
    providers = [{"domain": key_server.url, "applicationID": "app"}]
    with Store.memory(app=write_app(tmp_path, repr(providers)), clock=clock) as store:
        token = signer.sign(
            {
                "iss": key_server.url,
                "sub": "x",
                "aud": "app",
                "iat": NOW,
                "exp": NOW + 60,
            }
        )
        identity = store.with_token(token).unwrap().query("me:identity").unwrap()
        assert identity["tokenIdentifier"] == f"{key_server.url}|x"
        # A token without a kid is fine when one key fits.
        token = signer.sign(
            {
                "iss": key_server.url,
                "sub": "y",
                "aud": "app",
                "iat": NOW,
                "exp": NOW + 60,
            },
            kid=None,
        )
        assert isinstance(store.with_token(token), Success)


def test_oidc_discovery_failure_is_a_400(tmp_path, clock):
    providers = [{"domain": "http://127.0.0.1:9", "applicationID": "app"}]
    with Store.memory(app=write_app(tmp_path, repr(providers)), clock=clock) as store:
        token = Key().sign(
            {
                "iss": "http://127.0.0.1:9",
                "sub": "x",
                "aud": "app",
                "iat": NOW,
                "exp": NOW + 60,
            }
        )
        problem = refusal(store.with_token(token))
        assert (problem.convex_code, problem.status) == (
            "AuthProviderDiscoveryFailed",
            400,
        )
        assert problem.message.startswith(
            "Auth provider discovery of http://127.0.0.1:9 failed"
        )


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("providers", "wrong"),
    [
        ({"domain": "https://x"}, "applicationID"),
        ({"domain": "https://x", "applicationId": "a"}, "applicationId"),
        (
            {"type": "customJwt", "issuer": "x", "jwks": "y", "algorithm": "HS256"},
            "algorithm",
        ),
        (
            {"type": "customJwt", "domain": "x", "jwks": "y", "algorithm": "RS256"},
            "domain",
        ),
        ({"issuer": "https://x", "applicationID": "a"}, "issuer"),
        ({"type": "saml", "domain": "https://x", "applicationID": "a"}, "type"),
    ],
)
def test_bad_provider_config_raises_at_load(providers, wrong):
    with pytest.raises(DefinitionError, match=wrong):
        parse_providers([providers])


def test_a_jwks_file_is_read_again_for_an_unknown_kid(custom, tmp_path):
    rotated = Key("RS256", "k2")
    assert refusal(custom.with_token(rotated.sign(claims()))).reason == "kid"
    (tmp_path / "app" / "keys.json").write_text(jwks(rotated))
    assert isinstance(custom.with_token(rotated.sign(claims())), Success)


def test_an_injected_http_client_is_not_closed_by_the_store(tmp_path, clock):
    import httpx

    providers = [
        {
            "type": "customJwt",
            "issuer": ISSUER,
            "jwks": "http://127.0.0.1:9/jwks",
            "algorithm": "RS256",
        }
    ]
    client = httpx.Client()
    app = write_app(tmp_path, repr(providers))
    with Store.memory(app=app, clock=clock, http=client) as store:
        assert refusal(store.with_token(Key().sign(claims()))).reason == "jwks"
    assert not client.is_closed
    client.close()

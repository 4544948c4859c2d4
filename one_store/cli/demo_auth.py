"""The demo's sign-in scene: two users of the chat app, each sees only their own thread.

Ada signs up and signs in with a password (``auth:signIn``, as
``@convex-dev/auth``'s Password provider), gets a JWT and works in her thread as
herself (``store.with_token``); Bob signs up too and finds nothing of hers: her
thread is ``None`` to him, her list empty, and writing to it fails. When the
environment has no signing key (``JWT_PRIVATE_KEY``, ``JWKS``), the demo makes
one for its own run, as ``npx @convex-dev/auth`` would for a deployment, and
restores the environment afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

from ..model.errors import Problem
from ..store import Store

PASSWORD = "demo-password-1"


@contextmanager
def signing_keys() -> Iterator[None]:
    """``JWT_PRIVATE_KEY`` and ``JWKS`` for the demo, unless the environment has them."""
    if os.environ.get("JWT_PRIVATE_KEY") and os.environ.get("JWKS"):
        yield
        return
    from ..testing.keys import convex_auth_keys

    saved = {name: os.environ.get(name) for name in ("JWT_PRIVATE_KEY", "JWKS")}
    os.environ.update(convex_auth_keys())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _sign_in(
    store: Store, flow: str, email: str, ok: Callable[[Any, str], Any]
) -> Store:
    """Sign ``email`` in with the password flow; the store as that user."""
    reply = ok(
        store.action(
            "auth:signIn",
            {
                "provider": "password",
                "params": {"flow": flow, "email": email, "password": PASSWORD},
            },
        ),
        f"auth:signIn ({flow} {email})",
    )
    user: Store = ok(store.with_token(reply["tokens"]["token"]), "verify the token")
    return user


def auth_scenario(
    store: Store,
    console: Console,
    ok: Callable[[Any, str], Any],
    expect_failure: Callable[[Any, str], Problem],
    table: Callable[..., Table],
) -> list[tuple[str, Problem]]:
    """Sign two users in; show that the second cannot see the first one's thread."""
    console.rule("[bold]Agent chat app[/] — two users signed in")
    with signing_keys():
        # signUp with the same password signs an existing account in (the demo reruns).
        _sign_in(store, "signUp", "ada@example.com", ok)
        ada = _sign_in(store, "signIn", "ada@example.com", ok)
        bob = _sign_in(store, "signUp", "bob@example.com", ok)
        ada_id = ok(ada.query("auth:currentUser", {}), "current user")["_id"]
        thread = ok(
            ada.mutation("threads:create", {"userId": ada_id, "title": "Ada's diary"}),
            "create Ada's thread",
        )
        ok(
            ada.mutation(
                "messages:send",
                {"threadId": thread, "role": "user", "content": "Dear diary"},
            ),
            "send as Ada",
        )
        seen = table(
            "Signed in with auth:signIn (password)", "caller", "call", "answer"
        )
        own = ok(ada.query("threads:get", {"threadId": thread}), "Ada reads")
        seen.add_row("ada@example.com", "threads:get(her thread)", repr(own["title"]))
        other = ok(bob.query("threads:get", {"threadId": thread}), "Bob reads")
        seen.add_row("bob@example.com", "threads:get(Ada's thread)", repr(other))
        listed = ok(bob.query("threads:list", {"userId": ada_id}), "Bob lists")
        seen.add_row("bob@example.com", "threads:list(Ada's userId)", repr(listed))
        messages = ok(bob.query("messages:list", {"threadId": thread}), "Bob reads")
        seen.add_row("bob@example.com", "messages:list(Ada's thread)", repr(messages))
        console.print(seen)
        return [
            (
                "messages:send to another user's thread",
                expect_failure(
                    bob.mutation(
                        "messages:send",
                        {"threadId": thread, "role": "user", "content": "hi"},
                    ),
                    "Bob writing to Ada's thread",
                ),
            ),
            (
                "auth:signIn with a wrong password",
                expect_failure(
                    store.action(
                        "auth:signIn",
                        {
                            "provider": "password",
                            "params": {
                                "flow": "signIn",
                                "email": "bob@example.com",
                                "password": "wrong-password",
                            },
                        },
                    ),
                    "a wrong password",
                ),
            ),
        ]

"""Convex's sync protocol on the served store, frame by frame.

What each test expects is what Convex's sync worker sends (convex-backend
``crates/sync/src/worker.rs`` and ``state.rs``; the clients' checks in convex-js
``src/browser/sync/remote_query_set.ts`` and ``request_manager.ts``): the
version chain, results in the Transition that acknowledges an Add, a
mutation's ts at or below the Transition that resolves it, QueryFailed for a
query that cannot run, FatalError and close for a broken protocol.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from one_store import Store

from .sync_client import Raw, Stuck, b64ts, served, ts, values

APP = Path(__file__).resolve().parent / "apps" / "http_app"
ZERO = {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("sync") / "notes.db"
    with Store.open(db, app=APP) as store, served(store, ping_after=0.5) as (url, _):
        yield url


@pytest.fixture
def raw(server: str) -> Iterator[Raw]:
    client = Raw(server).connect(str(uuid.uuid4()))  # a session per test, as npm's
    yield client
    client.close()


HTTP = httpx.Client()  # one client: making one per request costs ~100 ms


@pytest.fixture(scope="module", autouse=True)
def _http_client() -> Iterator[None]:
    yield
    HTTP.close()


def post(url: str, kind: str, path: str, args: dict[str, object]) -> object:
    answer = HTTP.post(f"{url}/api/{kind}", json={"path": path, "args": args})
    body = answer.json()
    assert body["status"] == "success", body
    return body["value"]


def texts(notes: object) -> list[str]:
    assert isinstance(notes, list)
    return [n["text"] for n in notes]


def test_the_first_transition_starts_at_zero_and_carries_the_result(raw, server):
    post(server, "mutation", "notes:add", {"text": "first"})
    raw.add(0, "notes:list", {})
    t = raw.transition()
    assert t["startVersion"] == ZERO
    assert t["endVersion"]["querySet"] == 1
    assert t["endVersion"]["identity"] == 0
    assert ts(t["endVersion"]["ts"]) > 0
    (mod,) = t["modifications"]
    assert mod["type"] == "QueryUpdated"
    assert mod["queryId"] == 0
    assert mod["logLines"] == []
    assert "first" in texts(mod["value"])
    assert isinstance(t["serverTs"], int)
    assert isinstance(t["clientClockSkew"], int)


def test_each_transition_starts_where_the_last_ended(raw, server):
    raw.add(0, "notes:list", {})
    last = raw.transition()["endVersion"]
    for n in range(3):
        post(server, "mutation", "notes:add", {"text": f"chain{n}"})
        t = raw.transition()
        assert t["startVersion"] == last
        assert ts(t["endVersion"]["ts"]) >= ts(last["ts"])
        assert f"chain{n}" in texts(values(t)[0])
        last = t["endVersion"]


def test_a_mutation_answers_with_its_ts_before_the_transition_that_shows_it(raw):
    raw.add(0, "notes:list", {})
    raw.transition()
    raw.call("Mutation", 0, "notes:add", {"text": "over the socket"})
    response = raw.recv()
    assert response["type"] == "MutationResponse"
    assert response["requestId"] == 0
    assert response["success"] is True
    assert isinstance(response["result"], str)
    assert response["logLines"] == []
    t = raw.transition()
    assert ts(t["endVersion"]["ts"]) >= ts(response["ts"])
    assert "over the socket" in texts(values(t)[0])


def test_a_write_from_another_socket_reaches_a_subscriber(server, raw):
    raw.add(7, "notes:list", {})
    raw.transition()
    other = Raw(server).connect("other")
    other.call("Mutation", 0, "notes:add", {"text": "from the other socket"})
    assert other.recv()["success"] is True
    other.close()
    assert "from the other socket" in texts(values(raw.transition())[7])


def test_two_queries_only_the_changed_one_is_sent(raw, server):
    raw.modify(
        {"type": "Add", "queryId": 0, "udfPath": "notes:list", "args": [{}]},
        {
            "type": "Add",
            "queryId": 1,
            "udfPath": "notes:counter",
            "args": [{"name": "x"}],
        },
    )
    assert set(values(raw.transition())) == {0, 1}
    post(server, "mutation", "notes:bump", {"name": "x"})
    assert set(values(raw.transition())) == {1}


def test_remove_answers_query_removed_and_stops_updates(raw, server):
    raw.add(0, "notes:counter", {"name": "gone"})
    raw.transition()
    raw.modify({"type": "Remove", "queryId": 0})
    t = raw.transition()
    assert t["endVersion"]["querySet"] == 2
    assert t["modifications"] == [{"type": "QueryRemoved", "queryId": 0}]
    raw.call("Mutation", 1, "notes:bump", {"name": "gone"})
    assert raw.recv()["type"] == "MutationResponse"
    assert raw.transition()["modifications"] == []


def test_paths_are_canonical_as_convex_makes_them(raw):
    # The Python client re-subscribes as "notes.js:list" after a reconnect.
    raw.add(0, "notes.js:list", {})
    assert isinstance(values(raw.transition())[0], list)


@pytest.mark.parametrize(
    ("path", "args", "message"),
    [
        ("notes:nope", {}, "Could not find public function for 'notes:nope'."),
        (
            "notes:secret_count",
            {},
            "Could not find public function for 'notes:secret_count'.",
        ),
        (
            "notes:add",
            {"text": "x"},
            "Trying to execute notes:add as Query, but it is defined as Mutation.",
        ),
    ],
)
def test_a_query_that_cannot_be_found_fails_and_the_socket_stays(
    raw, path, args, message
):
    raw.add(0, path, args)
    assert values(raw.transition())[0] == ("failed", message)
    raw.add(1, "notes:list", {})
    assert isinstance(values(raw.transition())[1], list)


def test_bad_args_fail_the_query_not_the_socket(raw):
    raw.add(0, "notes:get", {"id": "not an id"})
    failed = values(raw.transition())[0]
    assert failed[0] == "failed"
    assert failed[1].startswith("ArgumentValidationError:")
    raw.add(1, "notes:echo", {"x": {"$integer": "!!"}})
    assert values(raw.transition())[1][1].startswith("Invalid args: $integer")


def test_mutation_failures_answer_the_error_and_write_nothing(raw, server):
    before = len(texts(post(server, "query", "notes:list", {})))
    raw.call("Mutation", 0, "notes:reject", {"text": "never"})
    rejected = raw.recv()
    assert rejected["success"] is False
    assert rejected["ts"] is None
    assert rejected["errorData"] == {
        "code": {"$integer": "BQAAAAAAAAA="},
        "why": "rejected",
        "raw": {"$bytes": "AQI="},
    }
    raw.transition()
    raw.call("Mutation", 1, "notes:crash", {"text": "never"})
    crashed = raw.recv()
    assert (crashed["success"], crashed["result"]) == (
        False,
        "Uncaught RuntimeError: boom",
    )
    assert "errorData" not in crashed
    raw.transition()
    raw.call("Mutation", 2, "notes:secret", {"text": "leak"})
    assert raw.recv()["result"] == "Could not find public function for 'notes:secret'."
    assert len(texts(post(server, "query", "notes:list", {}))) == before


def test_an_action_answers_without_ts(raw):
    raw.call("Action", 0, "notes:add_twice", {"text": "act"})
    answer = raw.recv()
    assert answer["type"] == "ActionResponse"
    assert answer["success"] is True
    assert len(answer["result"]) == 2
    assert "ts" not in answer


def test_a_mutation_sent_again_after_a_reconnect_runs_once(server):
    first = Raw(server).connect("same-session")
    first.call("Mutation", 5, "notes:bump", {"name": "once"})
    answer = first.recv()
    first.close()
    again = Raw(server).connect("same-session")
    again.call("Mutation", 5, "notes:bump", {"name": "once"})
    assert again.recv() == answer
    again.close()
    assert answer["result"] == {"$integer": "AQAAAAAAAAA="}  # 1: bumped once
    assert post(server, "query", "notes:counter", {"name": "once"}) == "1"


def test_logging_out_moves_the_identity_version_and_queries_go_on(raw, server):
    raw.add(0, "notes:counter", {"name": "identity"})
    raw.transition()
    raw.send({"type": "Authenticate", "tokenType": "None", "baseVersion": 0})
    t = raw.transition()
    assert t["endVersion"]["identity"] == 1
    assert t["endVersion"]["querySet"] == 1
    # The queries run again as the new identity, and still follow the writes.
    post(server, "mutation", "notes:bump", {"name": "identity"})
    assert values(raw.transition())[0] == {"$integer": b64ts(1)}


def test_a_token_no_provider_verifies_gets_auth_error_and_close(raw):
    raw.send(
        {
            "type": "Authenticate",
            "tokenType": "User",
            "value": "e30.eyJpc3MiOiAiaHR0cHM6Ly9ub2JvZHkuZXhhbXBsZSIsICJzdWIiOiAidSJ9.sig",  # an issuer no provider has
            "baseVersion": 0,
        }
    )
    seen, _code = raw.closed()
    assert seen == [
        {
            "type": "AuthError",
            "error": "No auth provider found matching the given token. Check that your JWT's issuer and audience match one of your configured providers: []",
            "baseVersion": 0,
            "authUpdateAttempted": True,
        }
    ]


def fatal(raw: Raw) -> str:
    seen, _code = raw.closed()
    assert [m["type"] for m in seen if m["type"] != "Ping"][-1:] == ["FatalError"], seen
    return str(seen[-1]["error"])


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"type": "Subscribe"}), "Unknown message type 'Subscribe'"),
        (
            json.dumps({"type": "Mutation", "udfPath": "notes:add", "args": [{}]}),
            "missing the field `requestId`",
        ),
        (
            json.dumps(
                {"type": "Mutation", "requestId": 0, "udfPath": "notes:add", "args": {}}
            ),
            "args must be an array",
        ),
        (
            json.dumps(
                {
                    "type": "ModifyQuerySet",
                    "baseVersion": 3,
                    "newVersion": 4,
                    "modifications": [],
                }
            ),
            "Base version 3 passed up doesn't match the current version 0",
        ),
        (
            json.dumps(
                {
                    "type": "ModifyQuerySet",
                    "baseVersion": 0,
                    "newVersion": 1,
                    "modifications": [{"type": "Remove", "queryId": 9}],
                }
            ),
            "isn't in the query set: 9",
        ),
        (
            json.dumps({"type": "Authenticate", "tokenType": "None", "baseVersion": 4}),
            "Base identity version 4",
        ),
    ],
)
def test_a_broken_frame_gets_fatal_error_and_close_and_others_go_on(
    server, raw, frame, expected
):
    bystander = Raw(server).connect("bystander")
    bystander.add(0, "notes:counter", {"name": "bystander"})
    bystander.transition()
    raw.send(frame)
    assert expected in fatal(raw)
    post(server, "mutation", "notes:bump", {"name": "bystander"})
    assert values(bystander.transition())[0] is not None
    bystander.close()


def test_ts_never_goes_below_what_a_client_saw(server):
    future = 2**62
    client = Raw(server).connect("from-the-future", maxObservedTimestamp=b64ts(future))
    client.add(0, "notes:list", {})
    assert ts(client.transition()["endVersion"]["ts"]) > future
    client.call("Mutation", 0, "notes:add", {"text": "later"})
    assert ts(client.recv()["ts"]) > future
    client.close()


def test_a_silent_server_pings(raw):
    # The fixture's hub pings after 0.5 s of silence (Convex: 15 s).
    assert json.loads(raw.ws.recv(10)) == {"type": "Ping"}


def test_a_frame_over_the_cap_is_refused(tmp_path):
    with (
        Store.open(tmp_path / "cap.db", app=APP) as store,
        served(store, max_frame=2000) as (url, _),
    ):
        client = Raw(url).connect()
        client.call("Mutation", 0, "notes:add", {"text": "x" * 5000})
        seen, code = client.closed()
        assert seen[-1]["type"] == "FatalError"
        assert "MessageTooLarge" in seen[-1]["error"]
        assert code == 1009
        fine = Raw(url).connect()
        fine.call("Mutation", 0, "notes:add", {"text": "x" * 500})
        assert fine.recv()["success"] is True
        fine.close()


def test_a_client_too_far_behind_is_dropped_and_writers_go_on(tmp_path):
    with (
        Store.open(tmp_path / "slow.db", app=APP) as store,
        served(store, max_queue=4) as (url, hub),
    ):
        post(url, "mutation", "notes:add", {"text": "y" * 300_000})
        slow = Stuck(url)
        slow.send(
            {
                "type": "Connect",
                "sessionId": "slow",
                "connectionCount": 0,
                "clientTs": 0,
            }
        )
        slow.send(
            {
                "type": "ModifyQuerySet",
                "baseVersion": 0,
                "newVersion": 1,
                "modifications": [
                    {"type": "Add", "queryId": 0, "udfPath": "notes:list", "args": [{}]}
                ],
            }
        )
        fast = Raw(url).connect("fast")
        fast.add(0, "notes:counter", {"name": "fast"})
        fast.transition()
        for n in range(60):  # ~16 transitions of 300 kB fill the buffers and the queue
            post(url, "mutation", "notes:add", {"text": str(n)})
            post(url, "mutation", "notes:bump", {"name": "fast"})
            assert values(fast.transition())[0] == {"$integer": b64ts(n + 1)}
        deadline = time.monotonic() + 30
        while hub.sockets != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hub.sockets == 1  # the stuck one was dropped, the fast one stays
        fast.close()
        slow.close()


def test_a_write_by_another_process_on_the_file_reaches_a_subscriber(tmp_path):
    db = tmp_path / "shared.db"
    with Store.open(db, app=APP) as store, served(store) as (url, _):
        client = Raw(url).connect()
        client.add(0, "notes:list", {})
        assert values(client.transition())[0] == []
        writer = (
            "import sys\n"
            "from one_store import Store\n"
            "with Store.open(sys.argv[1], app=sys.argv[2]) as s:\n"
            "    s.mutation('notes:add', {'text': 'from another process'}).unwrap()\n"
        )
        subprocess.run(
            [sys.executable, "-c", writer, str(db), str(APP)], check=True, timeout=60
        )
        assert texts(values(client.transition())[0]) == ["from another process"]
        client.close()


async def fan_out(url: str) -> tuple[dict[int, list[dict[str, object]]], set[int]]:
    """200 sockets x 5 counters; one write; what each socket was sent afterwards."""
    from websockets.asyncio.client import connect

    names = [f"c{n}" for n in range(50)]
    held = {s: [names[(s * 5 + k) % 50] for k in range(5)] for s in range(200)}
    sockets = {}
    for s, mine in held.items():
        ws = await connect(url.replace("http://", "ws://") + "/api/sync")
        await ws.send(
            json.dumps(
                {
                    "type": "Connect",
                    "sessionId": f"f{s}",
                    "connectionCount": 0,
                    "clientTs": 0,
                }
            )
        )
        adds = [
            {
                "type": "Add",
                "queryId": k,
                "udfPath": "notes:counter",
                "args": [{"name": name}],
            }
            for k, name in enumerate(mine)
        ]
        await ws.send(
            json.dumps(
                {
                    "type": "ModifyQuerySet",
                    "baseVersion": 0,
                    "newVersion": 1,
                    "modifications": adds,
                }
            )
        )
        sockets[s] = ws
    for ws in sockets.values():  # every socket has its five results
        while (m := json.loads(await ws.recv()))["type"] != "Transition":
            pass
        assert len(m["modifications"]) == 5
    post(url, "mutation", "notes:bump", {"name": "c0"})  # returns after the watches ran
    seen: dict[int, list[dict[str, object]]] = {}
    marker = {"type": "Add", "queryId": 99, "udfPath": "notes:list", "args": [{}]}
    for s, ws in sockets.items():
        # A later ModifyQuerySet: its Transition comes after any the write caused.
        await ws.send(
            json.dumps(
                {
                    "type": "ModifyQuerySet",
                    "baseVersion": 1,
                    "newVersion": 2,
                    "modifications": [marker],
                }
            )
        )
        seen[s] = []
        while True:
            m = json.loads(await ws.recv())
            if m["type"] != "Transition":
                continue
            seen[s] += [x for x in m["modifications"] if x["queryId"] != 99]
            if any(x["queryId"] == 99 for x in m["modifications"]):
                break
        await ws.close()
    return seen, {s for s, mine in held.items() if "c0" in mine}


def test_one_write_fans_out_to_the_sockets_it_touches_only(server):
    import asyncio

    seen, holders = asyncio.run(fan_out(server))
    assert len(holders) == 20
    for s, mods in seen.items():
        if s in holders:
            assert [m["value"] for m in mods] == [{"$integer": b64ts(1)}], s
        else:
            assert mods == [], s


def test_writes_by_an_http_action_and_a_scheduled_job_reach_a_subscriber(tmp_path):
    with (
        Store.open(tmp_path / "writers.db", app=APP) as store,
        served(store) as (url, hub),
    ):
        client = Raw(url).connect()
        client.add(0, "notes:list", {})
        assert values(client.transition())[0] == []
        answer = HTTP.post(f"{url}/notes", json={"text": "from an HTTP action"})
        assert answer.status_code == 200
        assert texts(values(client.transition())[0]) == ["from an HTTP action"]
        post(url, "mutation", "notes:addLater", {"text": "from a job"})
        store.scheduler.run_due()  # what `serve`'s scheduler worker does
        seen = values(client.transition())[0]
        assert texts(seen) == ["from an HTTP action", "from a job"]
        client.close()
        # The last socket gone, its subscription and watch go too.
        deadline = time.monotonic() + 30
        while (len(hub.subscriptions) or hub.sockets) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert (len(hub.subscriptions), hub.sockets) == (0, 0)

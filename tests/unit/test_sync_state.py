"""Tests for one_store.server.sync_messages and one_store.server.sync_state.

The rules are Convex's (convex-backend ``crates/sync/src/state.rs``,
``crates/convex/sync_types/src/types/json.rs``): timestamps are base64 of a
little-endian u64; a ModifyQuerySet must start at the last version received; a
Transition starts where the previous one ended and its versions never go down.
"""

from __future__ import annotations

import base64
import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from one_store.server.sync_messages import (
    MAX_TS,
    Action,
    Add,
    Authenticate,
    Connect,
    Event,
    FunctionResponse,
    ModifyQuerySet,
    Mutation,
    ProtocolError,
    QueryFailed,
    Remove,
    StateVersion,
    Transition,
    canonical_path,
    decode_ts,
    encode_ts,
    parse,
    render,
)
from one_store.server.sync_state import SocketState, Timestamps

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.integers(0, MAX_TS))
def test_timestamps_round_trip(ts):
    assert decode_ts(encode_ts(ts), "ts") == ts


def test_timestamp_encoding_is_convex_s():
    # The transcript's T1 in Convex's own encoding.
    assert encode_ts(0) == "AAAAAAAAAAA="
    assert encode_ts(1724300000000000000) == "AMA02rbx7Rc="


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (5, "must be a base64 string"),
        ("not base64!", "not valid base64"),
        ("AAAA", "must decode to 8 bytes"),
        (
            base64.b64encode(struct.pack("<Q", 2**63)).decode(),
            "above the largest timestamp",
        ),
    ],
)
def test_bad_timestamps_are_refused(text, error):
    with pytest.raises(ProtocolError, match=error):
        decode_ts(text, "maxObservedTimestamp")


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("messages:list", "messages:list"),
        ("messages.js:list", "messages:list"),
        ("dir/messages.js:list", "dir/messages:list"),
        ("messages", "messages:default"),
        ("messages.js", "messages:default"),
    ],
)
def test_paths_are_canonicalised_as_convex_does(path, canonical):
    assert canonical_path(path) == canonical


def test_parse_reads_every_client_message():
    assert parse(
        '{"type":"Connect","sessionId":"s","connectionCount":2,'
        '"lastCloseReason":null,"clientTs":17,"maxObservedTimestamp":"AQAAAAAAAAA="}'
    ) == Connect("s", 2, None, 17.0, 1)
    assert parse(
        json.dumps(
            {
                "type": "ModifyQuerySet",
                "baseVersion": 0,
                "newVersion": 1,
                "modifications": [
                    {
                        "type": "Add",
                        "queryId": 3,
                        "udfPath": "m.js:l",
                        "args": [{"a": 1}],
                    },
                    {"type": "Remove", "queryId": 2},
                ],
            }
        )
    ) == ModifyQuerySet(0, 1, (Add(3, "m:l", {"a": 1}), Remove(2)))
    assert parse(
        '{"type":"Mutation","requestId":1,"udfPath":"m:s","args":[{}]}'
    ) == Mutation(1, "m:s", {})
    assert parse(
        '{"type":"Action","requestId":2.0,"udfPath":"a:b","args":[{}]}'
    ) == Action(2, "a:b", {})
    assert parse(
        '{"type":"Authenticate","tokenType":"None","baseVersion":0}'
    ) == Authenticate("None", None, 0)
    assert parse('{"type":"Event","eventType":"ClientConnect","event":{}}') == Event(
        "ClientConnect"
    )


def refusal(frame: str) -> str | None:
    """The ProtocolError's text for ``frame``, or None when it parses."""
    try:
        parse(frame)
    except ProtocolError as e:
        return str(e)
    return None


@given(json_values)
def test_parse_never_fails_with_anything_but_a_protocol_error(value):
    error = refusal(json.dumps(value))
    assert error is None or error


FIELDS = [
    "type",
    "requestId",
    "udfPath",
    "args",
    "baseVersion",
    "newVersion",
    "modifications",
    "sessionId",
    "tokenType",
    "value",
    "queryId",
]


@given(st.dictionaries(st.sampled_from(FIELDS), json_values))
def test_parse_of_near_messages_names_the_message_or_field(data):
    for kind in ("Connect", "ModifyQuerySet", "Mutation", "Action", "Authenticate"):
        error = refusal(json.dumps({**data, "type": kind}))
        if error is not None:
            assert error.startswith(kind)


def test_rendered_messages_have_convex_s_fields():
    t = Transition(
        StateVersion(), StateVersion(1, 0, 5), (QueryFailed(0, "boom"),), -3, 99
    )
    assert json.loads(render(t)) == {
        "type": "Transition",
        "startVersion": {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="},
        "endVersion": {"querySet": 1, "identity": 0, "ts": encode_ts(5)},
        "modifications": [
            {
                "type": "QueryFailed",
                "queryId": 0,
                "errorMessage": "boom",
                "logLines": [],
                "journal": None,
            }
        ],
        "clientClockSkew": -3,
        "serverTs": 99,
    }
    ok = json.loads(render(FunctionResponse("MutationResponse", 4, True, 1.0, ts=7)))
    assert ok == {
        "type": "MutationResponse",
        "requestId": 4,
        "success": True,
        "result": 1.0,
        "logLines": [],
        "ts": encode_ts(7),
    }
    action = json.loads(
        render(
            FunctionResponse(
                "ActionResponse", 5, False, "no", error_data=None, has_error_data=True
            )
        )
    )
    assert action == {
        "type": "ActionResponse",
        "requestId": 5,
        "success": False,
        "result": "no",
        "logLines": [],
        "errorData": None,
    }


@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(1, 3), st.booleans()), max_size=30
    )
)
def test_query_set_versions_chain_and_never_go_down(steps):
    state = SocketState()
    received = 0
    ends = [state.current]
    for base, step, transition in steps:
        message = ModifyQuerySet(base, base + step, ())
        if base == received:
            state.modify(message)
            received = base + step
        else:
            with pytest.raises(ProtocolError, match=f"Base version {base} passed up"):
                state.modify(message)
        if transition:
            start, end = state.advance(state.take(), ts=len(ends))
            assert start == ends[-1]
            assert end.query_set == received
            assert end.query_set >= start.query_set
            assert end.ts >= start.ts
            ends.append(end)


def test_duplicate_adds_and_unknown_removes_are_refused_and_change_nothing():
    state = SocketState()
    state.modify(ModifyQuerySet(0, 1, (Add(0, "m:l", {}),)))
    with pytest.raises(ProtocolError, match="Duplicate query ID 0"):
        state.modify(ModifyQuerySet(1, 2, (Add(1, "m:l", {}), Add(0, "m:l", {}))))
    with pytest.raises(ProtocolError, match="isn't in the query set: 5"):
        state.modify(ModifyQuerySet(1, 2, (Remove(5),)))
    assert state.received_query_set == 1
    assert state.query_ids == {0}
    state.modify(
        ModifyQuerySet(1, 2, (Remove(0), Add(0, "m:l", {})))
    )  # re-add after remove
    assert state.query_ids == {0}


def test_identity_versions_count_authenticates():
    state = SocketState()
    with pytest.raises(ProtocolError, match="Base identity version 1"):
        state.authenticate(Authenticate("None", None, 1))
    state.authenticate(Authenticate("None", None, 0))
    state.identity_changed()
    _, end = state.advance(state.take(), ts=1)
    assert end.identity == 1


@given(
    st.lists(
        st.one_of(
            st.integers(0, 10**18).map(lambda n: ("clock", n)),
            st.integers(0, 2**63).map(lambda n: ("seen", n)),
        ),
        max_size=40,
    )
)
def test_timestamps_strictly_increase_and_never_fall_below_a_seen_one(events):
    now = [0]
    clock = Timestamps(lambda: now[0])
    last = 0
    floor = 0
    for kind, n in events:
        if kind == "clock":  # the wall clock may jump back
            now[0] = n
        else:
            clock.observe(n)
            floor = max(floor, min(n, MAX_TS))
        ts = clock.tick()
        assert ts > last or ts == MAX_TS
        assert ts > floor or ts == MAX_TS
        last = ts

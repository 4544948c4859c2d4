"""The messages of Convex's WebSocket sync protocol, as typed values.

Every frame is one JSON object in one text frame, with a ``"type"``. The client
sends :class:`Connect`, :class:`ModifyQuerySet`, :class:`Mutation`,
:class:`Action`, :class:`Authenticate` and :class:`Event`; :func:`parse` turns a
frame into one of them or raises :class:`ProtocolError` saying what is wrong and
where. The server answers with :class:`Transition` (carrying
:class:`QueryUpdated`, :class:`QueryFailed` and :class:`QueryRemoved`),
:class:`MutationResponse`, :class:`ActionResponse`, :class:`AuthError`,
:class:`FatalError` and :class:`Ping`, each turned into its frame by
:func:`render`.

The shapes are those of Convex's wire types (convex-backend
``crates/convex/sync_types/src/types/json.rs``; convex-js
``src/browser/sync/protocol.ts``):

- a timestamp (``ts``, ``maxObservedTimestamp``) is padded base64 of a
  little-endian u64 (:func:`encode_ts` / :func:`decode_ts`);
- ``args`` is a JSON array holding one object, in Convex's JSON encoding
  (``$integer``, ``$bytes``, ...); it stays encoded here and is decoded when the
  function runs, so that a bad value fails that call, not the socket;
- ``udfPath`` is canonicalised as Convex does (a trailing ``.js`` on the module
  dropped, ``:default`` added when there is no ``:``), so the Python client's
  ``messages.js:list`` after a reconnect is ``messages:list``.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any, Final, Literal, TypeAlias

import attrs

MAX_TS: Final = 2**63 - 1  # Convex's Timestamp is an i64 of nanoseconds


class ProtocolError(Exception):
    """A frame that is not a message of the protocol (answered with FatalError)."""


# --------------------------------------------------------------------------- values


def encode_ts(ts: int) -> str:
    """Padded base64 of ``ts`` as a little-endian u64 (``encode_ts(0) == "AAAAAAAAAAA="``)."""
    return base64.b64encode(struct.pack("<Q", ts)).decode("ascii")


def decode_ts(text: object, where: str) -> int:
    """The u64 of a base64 timestamp, or ProtocolError naming ``where``."""
    if not isinstance(text, str):
        raise ProtocolError(f"{where} must be a base64 string, got {_kind(text)}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{where} is not valid base64: {text!r}") from None
    if len(raw) != 8:
        raise ProtocolError(f"{where} must decode to 8 bytes, got {len(raw)}")
    value = int(struct.unpack("<Q", raw)[0])
    if value > MAX_TS:
        raise ProtocolError(f"{where} is above the largest timestamp: {value}")
    return value


def canonical_path(path: str) -> str:
    """Convex's canonical function path: ``messages.js:list`` -> ``messages:list``.

    A path without ``:`` names the module's default export (``messages`` ->
    ``messages:default``), as convex-js ``canonicalizeUdfPath`` does.
    """
    module, sep, name = path.rpartition(":")
    if not sep:
        module, name = path, "default"
    if module.endswith(".js"):
        module = module[: -len(".js")]
    return f"{module}:{name}"


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --------------------------------------------------------------------------- client


@attrs.frozen
class Connect:
    """The first frame of every socket."""

    session_id: str
    connection_count: int
    last_close_reason: str | None
    client_ts: float
    max_observed_timestamp: int | None


@attrs.frozen
class Add:
    """Subscribe ``query_id`` to ``udf_path`` with ``args`` (still Convex-JSON)."""

    query_id: int
    udf_path: str
    args: Any
    journal: str | None = None


@attrs.frozen
class Remove:
    """Unsubscribe ``query_id``."""

    query_id: int


QuerySetModification: TypeAlias = Add | Remove


@attrs.frozen
class ModifyQuerySet:
    """Move the socket's query set from ``base_version`` to ``new_version``."""

    base_version: int
    new_version: int
    modifications: tuple[QuerySetModification, ...]


@attrs.frozen
class Mutation:
    """Run a mutation; answered by one MutationResponse."""

    request_id: int
    udf_path: str
    args: Any


@attrs.frozen
class Action:
    """Run an action; answered by one ActionResponse."""

    request_id: int
    udf_path: str
    args: Any


TokenType: TypeAlias = Literal["User", "Admin", "None"]


@attrs.frozen
class Authenticate:
    """Set the socket's identity: a JWT (``User``), a deploy key or logged out."""

    token_type: TokenType
    value: str | None
    base_version: int


@attrs.frozen
class Event:
    """Client telemetry; the server ignores it, as Convex does."""

    event_type: str


ClientMessage: TypeAlias = (
    Connect | ModifyQuerySet | Mutation | Action | Authenticate | Event
)


class _Fields:
    """Typed access to the fields of one message, with errors that name them."""

    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def _get(self, key: str, optional: bool) -> Any:
        if key not in self.data and not optional:
            raise ProtocolError(f"{self.where} is missing the field `{key}`")
        return self.data.get(key)

    def u32(self, key: str) -> int:
        value = self._get(key, False)
        # JSON numbers: 3 and 3.0 are the same number to a JS client.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(
                f"{self.where}.{key} must be an integer, got {_kind(value)}"
            )
        if not 0 <= value < 2**32:
            raise ProtocolError(f"{self.where}.{key} is out of range: {value}")
        return value

    def string(self, key: str, optional: bool = False) -> str | None:
        value = self._get(key, optional)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise ProtocolError(
                f"{self.where}.{key} must be a string, got {_kind(value)}"
            )
        return value

    def required_string(self, key: str) -> str:
        value = self.string(key)
        assert value is not None
        return value

    def number(self, key: str) -> float:
        value = self._get(key, True)
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProtocolError(
                f"{self.where}.{key} must be a number, got {_kind(value)}"
            )
        return float(value)

    def args(self) -> Any:
        value = self._get("args", False)
        if not isinstance(value, list) or len(value) != 1:
            raise ProtocolError(
                f"{self.where}.args must be an array holding one object"
            )
        if not isinstance(value[0], dict):
            raise ProtocolError(
                f"{self.where}.args[0] must be an object, got {_kind(value[0])}"
            )
        return value[0]


def _modification(raw: object, where: str) -> QuerySetModification:
    if not isinstance(raw, dict):
        raise ProtocolError(f"{where} must be an object, got {_kind(raw)}")
    fields = _Fields(raw, where)
    kind = raw.get("type")
    if kind == "Add":
        return Add(
            fields.u32("queryId"),
            canonical_path(fields.required_string("udfPath")),
            fields.args(),
            fields.string("journal", optional=True),
        )
    if kind == "Remove":
        return Remove(fields.u32("queryId"))
    raise ProtocolError(f"{where}.type must be Add or Remove, got {kind!r}")


def _connect(f: _Fields) -> Connect:
    observed = f.data.get("maxObservedTimestamp")
    return Connect(
        session_id=f.required_string("sessionId"),
        connection_count=f.u32("connectionCount") if "connectionCount" in f.data else 0,
        last_close_reason=f.string("lastCloseReason", optional=True),
        client_ts=f.number("clientTs"),
        max_observed_timestamp=None
        if observed is None
        else decode_ts(observed, f"{f.where}.maxObservedTimestamp"),
    )


def _modify(f: _Fields) -> ModifyQuerySet:
    raw = f.data.get("modifications")
    if not isinstance(raw, list):
        raise ProtocolError(f"{f.where}.modifications must be an array")
    return ModifyQuerySet(
        f.u32("baseVersion"),
        f.u32("newVersion"),
        tuple(
            _modification(m, f"{f.where}.modifications[{i}]") for i, m in enumerate(raw)
        ),
    )


def _authenticate(f: _Fields) -> Authenticate:
    kind = f.data.get("tokenType")
    if kind not in ("User", "Admin", "None"):
        raise ProtocolError(
            f"{f.where}.tokenType must be User, Admin or None, got {kind!r}"
        )
    value = None if kind == "None" else f.required_string("value")
    return Authenticate(kind, value, f.u32("baseVersion"))


def parse(text: str | bytes) -> ClientMessage:
    """Parse one client frame.

    Raises:
        ProtocolError: not JSON, not an object, an unknown ``type``, or a field
            missing or of the wrong type (the message names it).

    Example:
        >>> parse('{"type": "Remove"}')
        Traceback (most recent call last):
        ...
        one_store.server.sync_messages.ProtocolError: Unknown message type 'Remove'
    """
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"The message is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"The message must be a JSON object, got {_kind(data)}")
    kind = data.get("type")
    f = _Fields(data, str(kind))
    if kind == "Connect":
        return _connect(f)
    if kind == "ModifyQuerySet":
        return _modify(f)
    if kind in ("Mutation", "Action"):
        cls = Mutation if kind == "Mutation" else Action
        return cls(f.u32("requestId"), f.required_string("udfPath"), f.args())
    if kind == "Authenticate":
        return _authenticate(f)
    if kind == "Event":
        return Event(str(data.get("eventType")))
    raise ProtocolError(f"Unknown message type {kind!r}")


# --------------------------------------------------------------------------- server


@attrs.frozen
class StateVersion:
    """Where a client's view is: query-set version, identity version, timestamp."""

    query_set: int = 0
    identity: int = 0
    ts: int = 0

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "querySet": self.query_set,
            "identity": self.identity,
            "ts": encode_ts(self.ts),
        }


@attrs.frozen
class QueryUpdated:
    """A new result for ``query_id``, its value already rendered as Convex JSON text.

    The text is made once per result and shared by every socket that sends it.
    """

    query_id: int
    value_text: str
    log_lines: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "type": "QueryUpdated",
            "queryId": self.query_id,
            "value": json.loads(self.value_text),
            "logLines": list(self.log_lines),
            "journal": None,
        }

    def to_text(self) -> str:
        """The wire form as text, with the value's text spliced in."""
        return (
            f'{{"type":"QueryUpdated","queryId":{self.query_id},'
            f'"value":{self.value_text},"logLines":{_dumps(list(self.log_lines))},'
            '"journal":null}'
        )


@attrs.frozen
class QueryFailed:
    """``query_id`` failed; ``error_data`` only for a ConvexError (Rejected)."""

    query_id: int
    error_message: str
    log_lines: tuple[str, ...] = ()
    error_data: Any = None
    has_error_data: bool = False

    def to_json(self) -> dict[str, Any]:
        """The wire form (``errorData`` present only for a ConvexError)."""
        out: dict[str, Any] = {
            "type": "QueryFailed",
            "queryId": self.query_id,
            "errorMessage": self.error_message,
            "logLines": list(self.log_lines),
            "journal": None,
        }
        if self.has_error_data:
            out["errorData"] = self.error_data
        return out

    def to_text(self) -> str:
        """The wire form as text."""
        return _dumps(self.to_json())


@attrs.frozen
class QueryRemoved:
    """``query_id`` is no longer in the query set."""

    query_id: int

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"type": "QueryRemoved", "queryId": self.query_id}

    def to_text(self) -> str:
        """The wire form as text."""
        return _dumps(self.to_json())


StateModification: TypeAlias = QueryUpdated | QueryFailed | QueryRemoved


@attrs.frozen
class Transition:
    """Move the client from ``start`` to ``end``, with the results that changed."""

    start: StateVersion
    end: StateVersion
    modifications: tuple[StateModification, ...]
    client_clock_skew: int
    server_ts: int

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "type": "Transition",
            "startVersion": self.start.to_json(),
            "endVersion": self.end.to_json(),
            "modifications": [m.to_json() for m in self.modifications],
            "clientClockSkew": self.client_clock_skew,
            "serverTs": self.server_ts,
        }

    def to_text(self) -> str:
        """The wire form as text (each result's text is spliced in, not re-encoded)."""
        mods = ",".join(m.to_text() for m in self.modifications)
        return (
            f'{{"type":"Transition","startVersion":{_dumps(self.start.to_json())},'
            f'"endVersion":{_dumps(self.end.to_json())},"modifications":[{mods}],'
            f'"clientClockSkew":{self.client_clock_skew},"serverTs":{self.server_ts}}}'
        )


@attrs.frozen
class FunctionResponse:
    """A MutationResponse or ActionResponse: a value, or an error message."""

    kind: Literal["MutationResponse", "ActionResponse"]
    request_id: int
    success: bool
    result: Any
    log_lines: tuple[str, ...] = ()
    ts: int | None = None
    error_data: Any = None
    has_error_data: bool = False

    def to_json(self) -> dict[str, Any]:
        """The wire form (``ts`` on mutations only, ``errorData`` for ConvexErrors)."""
        out: dict[str, Any] = {
            "type": self.kind,
            "requestId": self.request_id,
            "success": self.success,
            "result": self.result,
            "logLines": list(self.log_lines),
        }
        if self.kind == "MutationResponse":
            out["ts"] = None if self.ts is None else encode_ts(self.ts)
        if self.has_error_data:
            out["errorData"] = self.error_data
        return out


@attrs.frozen
class AuthError:
    """A token was refused; the socket closes after it."""

    error: str
    base_version: int
    auth_update_attempted: bool = True

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {
            "type": "AuthError",
            "error": self.error,
            "baseVersion": self.base_version,
            "authUpdateAttempted": self.auth_update_attempted,
        }


@attrs.frozen
class FatalError:
    """The client broke the protocol; the socket closes after it."""

    error: str

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"type": "FatalError", "error": self.error}


@attrs.frozen
class Ping:
    """Sent after 15 s of silence, so that clients know the server is alive."""

    def to_json(self) -> dict[str, Any]:
        """The wire form."""
        return {"type": "Ping"}


ServerMessage: TypeAlias = Transition | FunctionResponse | AuthError | FatalError | Ping


def _dumps(obj: object) -> str:
    # Compact; floats keep their ".0" (the Python client needs it); never NaN.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def render(message: ServerMessage) -> str:
    """The text frame of a server message."""
    if isinstance(message, Transition):
        return message.to_text()
    return _dumps(message.to_json())

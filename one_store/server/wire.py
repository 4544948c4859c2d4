"""The wire format of Convex's function API: request bodies in, reply bodies out.

Shared by the two doors of ``POST /api/query|mutation|action|run``: the lean ASGI
path (:mod:`one_store.server.call_endpoint`) and the Starlette app
(:mod:`one_store.server.http_api`). A body is ``{"path", "args", "format"}``
(Convex's ``UdfPostRequest``, convex-backend ``crates/local_backend/src/public_api.rs``);
``args`` is an object or a one-element array, always decoded as
``convex_encoded_json``; ``format`` chooses the reply's encoding. A malformed
request is a :class:`RequestError`, answered 4xx ``{"code", "message"}``.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, Literal, TypeAlias

from returns.result import Failure, Result, Success
from starlette.responses import JSONResponse

from ..model.errors import FunctionNotFound, Problem, Rejected
from ..model.values import Value, b64, from_convex_json, to_convex_json

MAX_BODY: Final = 20 << 20  # Convex's HTTP_ACTION_BODY_LIMIT; above its 16 MiB args cap
Format: TypeAlias = Literal["json", "convex_encoded_json", "export_json"]
FORMATS: Final[dict[str, Format]] = {
    "json": "json",
    "convex_clean_json": "json",
    "convex_encoded_json": "convex_encoded_json",
    "convex_json": "convex_encoded_json",
    "export_json": "export_json",
}


class RequestError(Exception):
    """A malformed request: answered with ``status`` and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        """The 4xx answer."""
        return JSONResponse(
            {"code": self.code, "message": self.message}, status_code=self.status
        )

    def content(self) -> bytes:
        """The 4xx answer's body, as :meth:`response` renders it."""
        return json.dumps(
            {"code": self.code, "message": self.message},
            ensure_ascii=False,
            allow_nan=False,
            separators=(",", ":"),
        ).encode("utf-8")


# --------------------------------------------------------------------------- values


def to_clean_json(value: Value) -> Any:
    """Convex's lossy ``json`` format: int64 as a decimal string, bytes as base64."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, bytes):
        return b64(value)
    if isinstance(value, list):
        return [to_clean_json(v) for v in value]
    return {k: to_clean_json(v) for k, v in value.items()}


def encode(value: Value, fmt: Format) -> Any:
    """Encode a value for a reply in ``fmt``."""
    if fmt == "json":
        return to_clean_json(value)
    if fmt == "convex_encoded_json":
        return to_convex_json(value)
    from ..snapshot import to_export_json

    return to_export_json(value)


# Python writes a float 5.0 as "5.0", as serde_json does: the Python client needs it.
# Built once (json.dumps with options builds an encoder per call: 7 against 2 us).
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps_reply(obj: object) -> bytes:
    """A reply body as compact UTF-8 JSON."""
    return _ENCODER.encode(obj).encode("utf-8")


class ConvexJSONResponse(JSONResponse):
    """A JSON response rendered compactly (floats keep their ``.0``)."""

    def render(self, content: Any) -> bytes:
        """Render ``content`` as compact UTF-8 JSON."""
        return dumps_reply(content)


def too_large(limit: int) -> RequestError:
    """Convex's 413 for a body over ``limit`` bytes."""
    return RequestError(
        413, "PayloadTooLarge", f"Request body is larger than {limit} bytes"
    )


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


# Built once: json.loads(body, parse_constant=...) builds a decoder per call.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def parse_json(body: bytes) -> Any:
    """Parse a request body as strict JSON (no NaN/Infinity literals), or raise 400.

    The bytes are decoded as ``json.loads`` decodes them (UTF-8, -16 or -32).
    """
    try:
        return _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except RecursionError:
        raise _too_deep() from None
    except ValueError as e:
        raise RequestError(
            400, "BadJsonBody", f"Failed to deserialize the JSON body: {e}"
        ) from None


def parse_format(raw: object) -> Format:
    """The reply format of a request (missing means clean ``json``, as Convex)."""
    if raw is None:
        return "json"
    if isinstance(raw, str) and raw in FORMATS:
        return FORMATS[raw]
    raise RequestError(
        400, "BadFormat", f"format param must be one of [`json`]. Got {raw}"
    )


def parse_args(raw: object) -> Value:
    """Decode ``args`` (an object, or the npm client's one-element array)."""
    if isinstance(raw, list):
        if len(raw) != 1:
            raise RequestError(
                400,
                "BadJsonBody",
                f"args must be an object or an array of one object, got {len(raw)} items",
            )
        raw = raw[0]
    try:
        return from_convex_json(raw)
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, TypeError, OverflowError) as e:
        raise RequestError(400, "BadJsonBody", f"Invalid args: {e}") from None


def _too_deep() -> RequestError:
    # Convex values nest at most 64 levels; Python's parser gives up long after that.
    return RequestError(400, "BadJsonBody", "The JSON body is nested too deeply")


def parse_call(body: bytes, *, need_path: bool) -> tuple[str, Value, Format]:
    """``(path, args, format)`` of a ``/api/<kind>`` body (path is "" for /api/run)."""
    data = parse_json(body)
    if not isinstance(data, dict):
        raise RequestError(400, "BadJsonBody", "The JSON body must be an object")
    path = data.get("path")
    if need_path and not isinstance(path, str):
        raise RequestError(400, "BadJsonBody", "missing field `path` (a string)")
    if "args" not in data:
        raise RequestError(400, "BadJsonBody", "missing field `args`")
    fmt = parse_format(data.get("format"))
    return (path if isinstance(path, str) else ""), parse_args(data["args"]), fmt


# --------------------------------------------------------------------------- replies


def envelope(
    result: Result[Any, Problem], fmt: Format, log_lines: list[str] | None = None
) -> dict[str, Any]:
    """The 200 body for a function that ran: success or error envelope.

    ``logLines`` is left out when empty, as Convex does.
    """
    out: dict[str, Any]
    match result:
        case Success(value):
            out = {"status": "success", "value": encode(value, fmt)}
        case Failure(problem):
            out = {"status": "error", "errorMessage": str(problem)}
            if isinstance(problem, Rejected):
                out["errorData"] = encode(problem.data, fmt)
    if log_lines:
        out["logLines"] = log_lines
    return out


def not_found(path: str) -> RequestError:
    """Convex's 404 ``FunctionNotFound`` for ``path`` (also an internal function's)."""
    return RequestError(404, "FunctionNotFound", FunctionNotFound(path).message)

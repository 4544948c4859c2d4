"""HTTP routes of the test app: exact paths, nested prefixes, errors."""

from typing import Any

from returns.result import Failure, Success

from one_store import (
    ActionCtx,
    ConvexError,
    HttpRequest,
    HttpResponse,
    HttpRouter,
    http_action,
)


@http_action
def post_note(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    match ctx.run_mutation("notes:add", request.json()):
        case Success(note_id):
            return HttpResponse({"id": note_id})
        case Failure(problem):
            return HttpResponse({"error": problem.message}, status=400)
    raise AssertionError("unreachable")


@http_action
def list_notes(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    notes = ctx.run_query("notes:list", {}).unwrap()
    return HttpResponse([n["text"] for n in notes])


@http_action
def files(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    return HttpResponse("files:" + request.path.removeprefix("/files/"))


@http_action
def deep_files(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    return HttpResponse("deep:" + request.path.removeprefix("/files/deep/"))


@http_action
def exact_file(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    return HttpResponse("exact")


@http_action
def echo(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        request.body,
        status=201,
        headers={
            "x-method": request.method,
            "x-url": request.url,
            "x-query": request.query.get("q", ""),
            "content-type": request.headers.get("content-type", "none"),
        },
    )


@http_action
def boom(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    raise ConvexError({"why": "nope"})


@http_action
def crash(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret internals")


@http_action
def not_a_response(ctx: ActionCtx, request: HttpRequest) -> Any:
    return {"plain": "dict"}


@http_action
async def async_hello(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    return HttpResponse({"hello": request.query.get("name", "world")})


http = HttpRouter()
http.route(path="/notes", method="POST", handler=post_note)
http.route(path="/notes", method="GET", handler=list_notes)
http.route(path_prefix="/files/", method="GET", handler=files)
http.route(path_prefix="/files/deep/", method="GET", handler=deep_files)
http.route(path="/files/exact", method="GET", handler=exact_file)
http.route(path="/echo", method="POST", handler=echo)
http.route(path="/echo", method="GET", handler=echo)
http.route(path="/boom", method="GET", handler=boom)
http.route(path="/crash", method="GET", handler=crash)
http.route(path="/not-a-response", method="GET", handler=not_a_response)
http.route(path="/hello", method="GET", handler=async_hello)

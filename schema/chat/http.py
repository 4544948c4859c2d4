"""HTTP routes for the backend (the spec's ``http.ts``), served by ``one-store serve``.

``POST /artifacts`` and ``POST /messages`` take the same JSON as
``artifacts:create`` / ``messages:send`` and answer ``{"id": ...}``;
``GET /threads/<threadId>/messages`` answers the thread's messages, oldest first.
A Failure is answered with status 400 and ``{"error": message}``.

``GET /.well-known/openid-configuration`` and ``GET /.well-known/jwks.json`` are
``@convex-dev/auth``'s ``auth.addHttpRoutes(http)``: the app's own issuer
(``CONVEX_SITE_URL``) and its public keys (``JWKS``), so any OIDC verifier can
check the tokens ``auth:signIn`` issues.

The routes run as the request's caller: with ``Authorization: Bearer <token>``
they see only that user's threads, as ``threads:get`` and the others do.
"""

from typing import Any

from returns.result import Failure, Result, Success

from one_store import ActionCtx, HttpRequest, HttpResponse, HttpRouter, http_action

from . import _convex_auth as lib

# auth.addHttpRoutes: what Convex Auth's discovery routes send.
CACHE_CONTROL = "public, max-age=15, stale-while-revalidate=15, stale-if-error=86400"


def _answer(result: Result[Any, Any], key: str) -> HttpResponse:
    match result:
        case Success(value):
            return HttpResponse({key: value}, status=200)
        case Failure(problem):
            return HttpResponse({"error": problem.message}, status=400)
    raise AssertionError("unreachable")  # pragma: no cover


def _json_object(request: HttpRequest) -> dict[str, Any] | None:
    try:
        body = request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@http_action
def post_artifact(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    body = _json_object(request)
    if body is None:
        return HttpResponse({"error": "Body must be a JSON object"}, status=400)
    return _answer(ctx.run_mutation("artifacts:create", body), "id")


@http_action
def post_message(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    body = _json_object(request)
    if body is None:
        return HttpResponse({"error": "Body must be a JSON object"}, status=400)
    return _answer(ctx.run_mutation("messages:send", body), "id")


@http_action
def get_thread_messages(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    # /threads/<threadId>/messages
    parts = request.path.strip("/").split("/")
    if len(parts) != 3 or parts[2] != "messages":
        return HttpResponse({"error": "Use /threads/<threadId>/messages"}, status=404)
    return _answer(ctx.run_query("messages:list", {"threadId": parts[1]}), "messages")


@http_action
def openid_configuration(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    site = lib.site_url()
    return HttpResponse(
        {
            "issuer": site,
            "jwks_uri": f"{site}/.well-known/jwks.json",
            "authorization_endpoint": f"{site}/oauth/authorize",
        },
        headers={"Cache-Control": CACHE_CONTROL},
    )


@http_action
def jwks(ctx: ActionCtx, request: HttpRequest) -> HttpResponse:
    # The JWKS variable verbatim, as the library sends it.
    return HttpResponse(
        lib.jwks(),
        headers={"Content-Type": "application/json", "Cache-Control": CACHE_CONTROL},
    )


http = HttpRouter()
http.route(
    path="/.well-known/openid-configuration", method="GET", handler=openid_configuration
)
http.route(path="/.well-known/jwks.json", method="GET", handler=jwks)
http.route(path="/artifacts", method="POST", handler=post_artifact)
http.route(path="/messages", method="POST", handler=post_message)
http.route(path_prefix="/threads/", method="GET", handler=get_thread_messages)

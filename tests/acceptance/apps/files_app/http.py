"""Convex's HTTP-action file examples, in Python.

``POST /sendImage?author=...`` stores the request's body and saves a message
(docs.convex.dev/file-storage/upload-files, "Uploading files via an HTTP
action"); ``GET /getImage?storageId=...`` answers the file's bytes
(docs.convex.dev/file-storage/serve-files, "Serving files from HTTP actions").
"""

from typing import Any

from one_store import HttpRequest, HttpResponse, HttpRouter, http_action


@http_action
def send_image(ctx: Any, request: HttpRequest) -> HttpResponse:
    content_type = request.headers.get("content-type")
    storage_id = ctx.storage.store(request.body, content_type=content_type)
    author = request.query.get("author", "anonymous")
    ctx.run_mutation(
        "images:sendImage", {"storageId": storage_id, "author": author}
    ).unwrap()
    return HttpResponse({"storageId": storage_id}, status=200)


@http_action
def get_image(ctx: Any, request: HttpRequest) -> HttpResponse:
    blob = ctx.storage.get(request.query["storageId"])
    if blob is None:
        return HttpResponse("Image not found", status=404)
    return HttpResponse(blob, headers={"content-type": "image/png"})


http = HttpRouter()
http.route(path="/sendImage", method="POST", handler=send_image)
http.route(path="/getImage", method="GET", handler=get_image)

"""The chat app's artifacts with stored files: attach, serve, delete with the thread."""

from __future__ import annotations

from returns.result import Failure

from one_store import Rejected


def thread_with_file(chat, data: bytes = b"%PDF-1.7 plan"):
    user = chat.mutation("auth:createUser", {"name": "Ada"}).unwrap()
    thread = chat.mutation("threads:create", {"userId": user, "title": "t"}).unwrap()
    sid = chat.files.store(data, content_type="application/pdf").unwrap()
    artifact = chat.mutation(
        "artifacts:create",
        {"threadId": thread, "type": "plan", "content": "see file", "fileId": sid},
    ).unwrap()
    return thread, artifact, sid


def test_an_artifact_references_a_stored_file(chat):
    thread, artifact, sid = thread_with_file(chat)
    assert (
        chat.query("artifacts:get", {"artifactId": artifact}).unwrap()["fileId"] == sid
    )
    url = chat.query("artifacts:fileUrl", {"artifactId": artifact}).unwrap()
    assert url == chat.files.get_url(sid).unwrap()
    plain = chat.mutation(
        "artifacts:create", {"threadId": thread, "type": "note", "content": "x"}
    ).unwrap()
    assert chat.query("artifacts:fileUrl", {"artifactId": plain}).unwrap() is None
    assert (
        chat.mutation("artifacts:generateUploadUrl")
        .unwrap()
        .startswith("http://127.0.0.1:3210/api/storage/upload?token=")
    )


def test_an_artifact_cannot_reference_a_deleted_file_or_a_document(chat):
    thread, artifact, sid = thread_with_file(chat)
    chat.files.delete(sid).unwrap()
    match chat.mutation(
        "artifacts:create",
        {"threadId": thread, "type": "plan", "content": "c", "fileId": sid},
    ):
        case Failure(Rejected(data="File not found")):
            pass
        case other:
            raise AssertionError(other)
    bad = chat.mutation(
        "artifacts:create",
        {"threadId": thread, "type": "plan", "content": "c", "fileId": artifact},
    )
    assert bad.failure().code == "ArgsInvalid"
    assert chat.query("artifacts:fileUrl", {"artifactId": artifact}).unwrap() is None


def test_deleting_a_thread_deletes_its_files(chat):
    thread, _artifact, sid = thread_with_file(chat)
    other_thread, _other, kept = thread_with_file(chat, b"other")
    assert chat.mutation("threads:remove", {"threadId": thread}).unwrap() == 2
    assert chat.files.get(sid).unwrap() is None
    assert chat.files.get(kept).unwrap() == b"other"
    assert chat.storage.blobs.names() == [kept]
    # A thread whose file was deleted already is still removed.
    chat.files.delete(kept).unwrap()
    assert chat.mutation("threads:remove", {"threadId": other_thread}).unwrap() == 2

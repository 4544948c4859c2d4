"""File storage in process: ctx.storage, store.files, _storage, v.id("_storage").

Expected values come from Convex's behaviour (docs.convex.dev/file-storage and
convex-backend ``crates/model/src/file_storage``): the ``_storage`` document shape
with a base64 SHA-256 and a float64 size, the error texts of a bad storage ID,
a file stored by an action staying when the action then fails, a delete in a
mutation rolling back with it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path

import pytest
from returns.result import Failure, Success

from one_store import (
    ArgsInvalid,
    ContextError,
    ConvexError,
    DocumentInvalid,
    DocumentNotFound,
    InvalidId,
    LimitExceeded,
    Store,
    action,
    define_schema,
    define_table,
    mutation,
    query,
    v,
)
from one_store.testing import FakeClock, inject_faults

schema = define_schema(
    {
        "notes": define_table(
            {"text": v.string(), "fileId": v.optional(v.id("_storage"))}
        ),
    }
)


@query(args={"id": v.id("_storage")})
def url_of(ctx, args):
    return ctx.storage.get_url(args["id"])


@query(args={"id": v.string()})
def url_of_text(ctx, args):
    return ctx.storage.get_url(args["id"])


@query(args={"id": v.id("_storage")})
def meta(ctx, args):
    return ctx.db.system.get(args["id"])


@query
def listing(ctx, args):
    return ctx.db.system.query("_storage").collect()


@mutation
def upload_url(ctx, args):
    return ctx.storage.generate_upload_url()


@mutation(args={"id": v.string(), "fail": v.boolean()})
def remove(ctx, args):
    ctx.storage.delete(args["id"])
    after = ctx.storage.get_url(args["id"])
    if args["fail"]:
        raise ConvexError("changed my mind")
    return after


@mutation(args={"id": v.string()})
def remove_twice(ctx, args):
    ctx.storage.delete(args["id"])
    ctx.storage.delete(args["id"])


@mutation(args={"id": v.string()})
def remove_nested_then_fail(ctx, args):
    ctx.run_mutation(remove, {"id": args["id"], "fail": True})
    return ctx.storage.get_url(args["id"])


@mutation(args={"text": v.string(), "fileId": v.string()})
def attach(ctx, args):
    return ctx.db.insert("notes", {"text": args["text"], "fileId": args["fileId"]})


@action(args={"data": v.bytes(), "fail": v.boolean()})
def store_then(ctx, args):
    sid = ctx.storage.store(args["data"], content_type="text/plain")
    if args["fail"]:
        raise ConvexError(sid)
    return {
        "id": sid,
        "bytes": ctx.storage.get(sid),
        "url": ctx.storage.get_url(sid),
    }


@action(args={"id": v.string()})
def action_delete(ctx, args):
    ctx.storage.delete(args["id"])
    return [ctx.storage.get(args["id"]), ctx.storage.get_url(args["id"])]


@pytest.fixture
def files_store(tmp_path: Path, clock: FakeClock):
    with Store.open(tmp_path / "f.db", schema=schema, clock=clock, seed=3) as s:
        yield s


def body_names(store: Store) -> list[str]:
    names: list[str] = store.storage.blobs.names()
    return names


def test_a_stored_file_has_convex_metadata(files_store):
    data = b"hello, file"
    sid = files_store.files.store(data, content_type="text/plain").unwrap()
    doc = files_store.query(meta, {"id": sid}).unwrap()
    assert set(doc) == {"_id", "_creationTime", "sha256", "size", "contentType"}
    assert doc["_id"] == sid
    assert doc["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert len(doc["sha256"]) == 44  # padded standard base64, as Convex >= 1.9
    assert doc["size"] == 11.0
    assert isinstance(doc["size"], float)
    assert doc["contentType"] == "text/plain"
    assert files_store.query(listing).unwrap() == [doc]
    assert files_store.files.get(sid).unwrap() == data


def test_content_type_is_absent_when_not_given(files_store):
    sid = files_store.files.store(b"").unwrap()
    doc = files_store.files.metadata(sid).unwrap()
    assert "contentType" not in doc
    assert doc["size"] == 0.0
    assert files_store.files.get(sid).unwrap() == b""


def test_streams_from_a_file_object_and_from_pieces(files_store):
    data = os.urandom(3 * (1 << 20) + 17)
    from_file = files_store.files.store(io.BytesIO(data)).unwrap()
    pieces = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    from_pieces = files_store.files.store(iter(pieces)).unwrap()
    for sid in (from_file, from_pieces):
        with files_store.files.open(sid).unwrap() as body:
            assert body.read() == data


def test_storage_ids_are_checked_by_v_id(files_store):
    sid = files_store.files.store(b"x").unwrap()
    note = files_store.mutation(attach, {"text": "a", "fileId": sid}).unwrap()
    # A document ID where a storage ID belongs is refused by the validator.
    match files_store.mutation(attach, {"text": "b", "fileId": note}):
        case Failure(DocumentInvalid(path=".fileId")):
            pass
        case other:
            raise AssertionError(other)
    match files_store.query(url_of, {"id": note}):
        case Failure(ArgsInvalid(path=".id")):
            pass
        case other:
            raise AssertionError(other)


def test_get_url_points_under_site_url_and_is_none_once_deleted(tmp_path):
    with Store.open(tmp_path / "u.db", site_url="https://files.example/") as s:
        sid = s.files.store(b"x").unwrap()
        url = s.query(url_of, {"id": sid}).unwrap()
        assert url.startswith("https://files.example/api/storage/")
        assert s.files.get_url(sid).unwrap() == url
        # The URL's last segment (a UUID) is accepted as a storage ID, as Convex's
        # legacy IDs are.
        assert s.query(url_of_text, {"id": url.rsplit("/", 1)[1]}).unwrap() == url
        assert s.files.delete(sid) == Success(None)
        assert s.query(url_of, {"id": sid}).unwrap() is None
        assert s.files.get(sid).unwrap() is None
        assert s.files.get_url(sid).unwrap() is None


def test_default_site_url(store):
    sid = store.files.store(b"x").unwrap()
    assert (
        store.files.get_url(sid)
        .unwrap()
        .startswith("http://127.0.0.1:3210/api/storage/")
    )
    url = store.mutation(upload_url).unwrap()
    assert url.startswith("http://127.0.0.1:3210/api/storage/upload?token=")


def test_bad_storage_ids_are_failures_with_convex_text(files_store):
    note = files_store.mutation(attach, {"text": "a", "fileId": "junk"})
    assert isinstance(note, Failure)
    match files_store.query(url_of_text, {"id": "junk"}):
        case Failure(InvalidId(message=message)):
            assert message == (
                "Invalid argument `storageId` for `storage.getUrl`: Invalid storage "
                "ID: \"junk\". Storage ID should be an Id of '_storage' table, or a "
                "UUID string."
            )
        case other:
            raise AssertionError(other)
    doc_id = files_store.run(lambda ctx: ctx.db.insert("notes", {"text": "t"})).unwrap()
    match files_store.files.delete(doc_id):
        case Failure(InvalidId(message=message)):
            assert message.endswith(
                "Invalid storage ID. Storage ID cannot be an ID on any table other "
                "than '_storage'."
            )
        case other:
            raise AssertionError(other)
    assert isinstance(files_store.files.get("junk"), Failure)
    assert isinstance(files_store.files.open(doc_id), Failure)


def test_deleting_twice_is_a_failure(files_store):
    sid = files_store.files.store(b"x").unwrap()
    assert files_store.mutation(remove, {"id": sid, "fail": False}) == Success(None)
    match files_store.files.delete(sid):
        case Failure(DocumentNotFound(id=found)):
            assert found == sid
        case other:
            raise AssertionError(other)
    sid = files_store.files.store(b"y").unwrap()
    match files_store.mutation(remove_twice, {"id": sid}):
        case Failure(DocumentNotFound()):
            pass
        case other:
            raise AssertionError(other)
    # The failed mutation's first delete rolled back: the file is still whole.
    assert files_store.files.get(sid).unwrap() == b"y"


def test_a_failed_mutation_keeps_the_file_it_deleted(files_store):
    sid = files_store.files.store(b"keep me").unwrap()
    result = files_store.mutation(remove, {"id": sid, "fail": True})
    assert isinstance(result, Failure)
    assert files_store.files.get(sid).unwrap() == b"keep me"
    assert body_names(files_store) == [sid]
    # A nested mutation that deletes and fails rolls back alone.
    assert files_store.mutation(remove_nested_then_fail, {"id": sid}).unwrap()
    assert files_store.files.get(sid).unwrap() == b"keep me"
    assert body_names(files_store) == [sid]
    # Committed, the delete removes the row and the body.
    assert files_store.mutation(remove, {"id": sid, "fail": False}) == Success(None)
    assert body_names(files_store) == []
    assert files_store.query(listing).unwrap() == []


def test_a_file_stored_by_an_action_stays_when_the_action_fails(files_store):
    ok = files_store.action(store_then, {"data": b"abc", "fail": False}).unwrap()
    assert ok["bytes"] == b"abc"
    assert ok["url"] == files_store.files.get_url(ok["id"]).unwrap()
    failed = files_store.action(store_then, {"data": b"def", "fail": True})
    sid = failed.failure().data
    assert files_store.files.get(sid).unwrap() == b"def"
    assert len(files_store.query(listing).unwrap()) == 2


def test_an_action_deletes_in_its_own_transaction(files_store):
    sid = files_store.files.store(b"gone").unwrap()
    assert files_store.action(action_delete, {"id": sid}).unwrap() == [None, None]
    match files_store.action(action_delete, {"id": sid}):
        case Failure(DocumentNotFound()):
            pass
        case other:
            raise AssertionError(other)


def test_queries_cannot_write_files_and_mutations_cannot_store(files_store):
    @query
    def sneaky(ctx, args):
        return ctx.storage.generate_upload_url()

    @mutation
    def store_in_mutation(ctx, args):
        return ctx.storage.store(b"x")

    assert isinstance(files_store.query(sneaky), Failure)
    assert isinstance(files_store.mutation(store_in_mutation), Failure)
    assert files_store.query(listing).unwrap() == []


def test_an_open_file_stays_readable_after_a_delete(files_store):
    data = os.urandom(100_000)
    sid = files_store.files.store(data).unwrap()
    with files_store.files.open(sid).unwrap() as body:
        head = body.read(10)
        files_store.files.delete(sid).unwrap()
        assert head + body.read() == data
    assert isinstance(files_store.files.open(sid), Failure)


def test_the_size_cap_keeps_nothing(files_store):
    files_store.files.max_size = 10
    match files_store.files.store(io.BytesIO(b"x" * 11)):
        case Failure(LimitExceeded(limit="fileSize")):
            pass
        case other:
            raise AssertionError(other)
    assert files_store.files.store(b"x" * 10).map(len).unwrap() == 32
    assert len(files_store.query(listing).unwrap()) == 1
    assert len(body_names(files_store)) == 1
    assert not [p for p in os.listdir(files_store.storage.blobs.path) if ".part" in p]


def test_a_commit_that_fails_keeps_no_body(files_store):
    with inject_faults(files_store, busy=1):
        result = files_store.files.store(b"never")
    assert result.failure().code == "Busy"
    assert body_names(files_store) == []
    assert files_store.query(listing).unwrap() == []


def test_an_aborted_upload_keeps_nothing(files_store):
    with files_store.files.begin("text/csv") as upload:
        upload.write(b"a,b\n")
    assert os.listdir(files_store.storage.blobs.path) == []
    with files_store.files.begin("text/csv") as upload:
        upload.write(b"a,b\n")
        sid = upload.commit().unwrap()
    assert files_store.files.metadata(sid).unwrap()["contentType"] == "text/csv"


def test_a_digest_that_does_not_match_keeps_nothing(files_store):
    with files_store.files.begin() as upload:
        upload.write(b"abc")
        wrong = base64.b64encode(hashlib.sha256(b"abd").digest()).decode()
        match upload.commit(sha256=wrong):
            case Failure(ArgsInvalid(message=message)):
                assert message.startswith(f"Sha256 mismatch. Expected: {wrong}")
            case other:
                raise AssertionError(other)
    assert os.listdir(files_store.storage.blobs.path) == []


def test_files_survive_reopening_and_live_beside_the_database(tmp_path):
    path = tmp_path / "keep.db"
    with Store.open(path) as s:
        sid = s.files.store(b"persisted").unwrap()
    assert (tmp_path / "keep.db-files" / sid).read_bytes() == b"persisted"
    with Store.open(path) as s:
        assert s.files.get(sid).unwrap() == b"persisted"
    with Store.open(path, readonly=True) as s:
        assert s.files.get(sid).unwrap() == b"persisted"


@pytest.mark.sqlite_only("a memory store's temporary folder of file bodies")
def test_a_memory_store_removes_its_folder_when_closed():
    s = Store.memory()
    s.files.store(b"x").unwrap()
    folder = s.storage.blobs.path
    assert os.path.isdir(folder)
    s.close()
    assert not os.path.exists(folder)


def test_upload_tokens_are_signed_and_expire_after_an_hour(tmp_path):
    clock = FakeClock(1_700_000_000_000.0)
    with Store.open(tmp_path / "t.db", clock=clock) as s:
        url = s.mutation(upload_url).unwrap()
        token = url.split("token=")[1]
        assert s.files.check_upload_token(token) is None
        forged = token[:-2] + ("00" if token[-2:] != "00" else "11")
        assert s.files.check_upload_token(forged) == "StorageTokenInvalid"
        assert s.files.check_upload_token("zz") == "StorageTokenInvalid"
        assert s.files.check_upload_token("") == "StorageTokenInvalid"
        clock.advance(3_599_000)
        assert s.files.check_upload_token(token) is None
        clock.advance(1_000)
        assert s.files.check_upload_token(token) == "StorageTokenExpired"
    # Another database's token does not verify here (each file has its secret).
    with Store.open(tmp_path / "other.db", clock=clock) as other:
        assert other.files.check_upload_token(token) == "StorageTokenInvalid"
    # The same database keeps its secret across opens.
    with Store.open(tmp_path / "t.db", clock=FakeClock(1_700_000_000_000.0)) as s:
        assert s.files.check_upload_token(token) is None


def test_a_closed_store_refuses_file_calls():
    s = Store.memory()
    sid = s.files.store(b"x").unwrap()
    s.close()
    for call in (
        lambda: s.files.store(b"y"),
        lambda: s.files.get(sid),
        lambda: s.files.delete(sid),
    ):
        with pytest.raises(ContextError, match="closed"):
            call()


def test_watches_see_files_stored_and_deleted(files_store):
    """A file write is a write to ``_storage``: watches over it re-run."""
    sid = files_store.files.store(b"x").unwrap()
    with (
        files_store.watch(url_of, {"id": sid}) as url_watch,
        files_store.watch(listing) as list_watch,
    ):
        assert url_watch.result.unwrap() is not None
        assert len(list_watch.result.unwrap()) == 1
        files_store.files.store(b"y").unwrap()
        assert len(list_watch.result.unwrap()) == 2
        files_store.files.delete(sid).unwrap()
        assert url_watch.result.unwrap() is None
        assert len(list_watch.result.unwrap()) == 1

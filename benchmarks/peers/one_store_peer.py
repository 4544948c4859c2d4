"""one_store through its public API only: schema, @query/@mutation/@action.

Each operation is what a user of one_store writes: a validated mutation per
write (``store.mutation(fn, args)``), a query function per read
(``store.query(fn, args)``), an action that runs three mutations, and the bulk
load as ad-hoc mutations (``store.run``) of ``bulk_chunk()`` documents, because a
Convex transaction may write at most 16,000 documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.peers.base import TEN_TABLES, Peer, bulk_chunk
from benchmarks.workload import (
    EQ_LIMIT,
    LATEST_LIMIT,
    MODELS,
    PAGE_SIZE,
    ROLES,
    SEARCH_LIMIT,
    SETTINGS,
    Doc,
    TokenRange,
)
from one_store import Store, action, define_schema, define_table, mutation, query, v

ROLE = v.union(*(v.literal(r) for r in ROLES))
META = v.object(
    {"tokens": v.int64(), "model": v.union(*(v.literal(m) for m in MODELS))}
)
MESSAGE = {
    "threadId": v.string(),
    "role": ROLE,
    "content": v.string(),
    "tags": v.array(v.string()),
    "meta": META,
}
# The "large" workload's documents also carry 10-100 KB of notes.
WITH_NOTES = {**MESSAGE, "notes": v.optional(v.string())}


def message_table(search: bool = True, fields: Any = None) -> Any:
    table = (
        define_table(fields or MESSAGE)
        .index("by_thread", ["threadId"])
        .index("by_role_tokens", ["role", "meta.tokens"])
    )
    return (
        table.search_index("search_content", search_field="content")
        if search
        else table
    )


SCHEMA = define_schema({"messages": message_table()})


def schema() -> Any:
    """The messages schema of this run's workload (search index, notes or not)."""
    if SETTINGS.search and SETTINGS.notes_kb is None:
        return SCHEMA
    fields = MESSAGE if SETTINGS.notes_kb is None else WITH_NOTES
    return define_schema({"messages": message_table(SETTINGS.search, fields)})


TEN_SCHEMA = define_schema({name: message_table() for name in TEN_TABLES})


@mutation(args=WITH_NOTES)
def send(ctx: Any, args: Doc) -> Any:
    return ctx.db.insert("messages", args)


@mutation(args={"id": v.id("messages"), "role": ROLE, "meta": META})
def retag(ctx: Any, args: Doc) -> None:
    ctx.db.patch(args["id"], {"role": args["role"], "meta": args["meta"]})


@mutation(args={"id": v.id("messages")})
def remove(ctx: Any, args: Doc) -> None:
    ctx.db.delete(args["id"])


@query(args={"id": v.id("messages")})
def get_message(ctx: Any, args: Doc) -> Any:
    return ctx.db.get(args["id"])


@query(args={"threadId": v.string()})
def thread_messages(ctx: Any, args: Doc) -> Any:
    thread = args["threadId"]
    return (
        ctx.db.query("messages")
        .with_index("by_thread", lambda q: q.eq("threadId", thread))
        .take(EQ_LIMIT)
    )


@query(args={"role": ROLE, "lo": v.int64(), "hi": v.int64()})
def tokens_between(ctx: Any, args: Doc) -> Any:
    return (
        ctx.db.query("messages")
        .with_index(
            "by_role_tokens",
            lambda q: (
                q.eq("role", args["role"])
                .gte("meta.tokens", args["lo"])
                .lt("meta.tokens", args["hi"])
            ),
        )
        .collect()
    )


@query(args={"threadId": v.string()})
def newest(ctx: Any, args: Doc) -> Any:
    thread = args["threadId"]
    return (
        ctx.db.query("messages")
        .with_index("by_thread", lambda q: q.eq("threadId", thread))
        .order("desc")
        .take(LATEST_LIMIT)
    )


@query(args={"cursor": v.union(v.string(), v.null())})
def page_messages(ctx: Any, args: Doc) -> Any:
    return ctx.db.query("messages").paginate(
        {"numItems": PAGE_SIZE, "cursor": args["cursor"]}
    )


@query(args={"text": v.string()})
def search_messages(ctx: Any, args: Doc) -> Any:
    text = args["text"]
    return (
        ctx.db.query("messages")
        .with_search_index("search_content", lambda q: q.search("content", text))
        .take(SEARCH_LIMIT)
    )


@action(args={"doc": v.object(WITH_NOTES), "role": ROLE, "meta": META})
def three(ctx: Any, args: Doc) -> None:
    key = ctx.run_mutation(send, args["doc"]).unwrap()
    ctx.run_mutation(
        retag, {"id": key, "role": args["role"], "meta": args["meta"]}
    ).unwrap()
    ctx.run_mutation(remove, {"id": key}).unwrap()


@query(args={"id": v.id("t0")})
def get_t0(ctx: Any, args: Doc) -> Any:
    return ctx.db.get(args["id"])


class OneStorePeer(Peer):
    name = "one_store"

    def __init__(self, store: Store) -> None:
        self.store = store

    @classmethod
    def create(cls, path: Path) -> OneStorePeer:
        return cls(
            Store.open(
                path,
                schema=schema(),
                synchronous=SETTINGS.synchronous,  # type: ignore[arg-type]
                cache_mib=SETTINGS.cache_mib,
            )
        )

    def bulk_insert(self, docs: Sequence[Doc]) -> list[Any]:
        keys: list[Any] = []
        for start in range(0, len(docs), size := bulk_chunk()):
            chunk = docs[start : start + size]

            def load(ctx: Any, chunk: Sequence[Doc] = chunk) -> list[Any]:
                return [ctx.db.insert("messages", d) for d in chunk]

            keys.extend(self.store.run(load).unwrap())
        return keys

    def insert(self, doc: Doc) -> Any:
        return self.store.mutation(send, doc).unwrap()

    def patch(self, key: Any, fields: Doc) -> None:
        self.store.mutation(retag, {"id": key, **fields}).unwrap()

    def delete(self, key: Any) -> None:
        self.store.mutation(remove, {"id": key}).unwrap()

    def get(self, key: Any) -> Doc | None:
        result: Doc | None = self.store.query(get_message, {"id": key}).unwrap()
        return result

    def by_thread(self, thread: str) -> list[Doc]:
        result: list[Doc] = self.store.query(
            thread_messages, {"threadId": thread}
        ).unwrap()
        return result

    def token_range(self, r: TokenRange) -> list[Doc]:
        args = {"role": r.role, "lo": r.lo, "hi": r.hi}
        result: list[Doc] = self.store.query(tokens_between, args).unwrap()
        return result

    def latest(self, thread: str) -> list[Doc]:
        result: list[Doc] = self.store.query(newest, {"threadId": thread}).unwrap()
        return result

    def walk(self, total: int) -> int:
        seen = 0
        cursor: str | None = None
        while seen < total:
            result = self.store.query(page_messages, {"cursor": cursor}).unwrap()
            seen += len(result["page"])
            if result["isDone"]:
                break
            cursor = result["continueCursor"]
        return seen

    def search(self, text: str) -> list[Doc]:
        result: list[Doc] = self.store.query(search_messages, {"text": text}).unwrap()
        return result

    def action3(self, doc: Doc, fields: Doc) -> None:
        self.store.action(three, {"doc": doc, **fields}).unwrap()

    def close(self) -> None:
        self.store.close()

    @classmethod
    def prepare_ten(cls, path: Path, doc: Doc) -> Any:
        with Store.open(path, schema=TEN_SCHEMA) as store:
            return store.run(lambda ctx: ctx.db.insert("t0", doc)).unwrap()

    @classmethod
    def open_ten(cls, path: Path, key: Any) -> Doc | None:
        with Store.open(path, schema=TEN_SCHEMA) as store:
            result: Doc | None = store.query(get_t0, {"id": key}).unwrap()
            return result

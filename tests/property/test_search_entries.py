"""A document's index keys and search entry always match the document after any writes.

``Storage.update`` sets only the key columns that changed and leaves a search
entry alone when the search text and filter values did not change (so a patch of
other fields skips index rewrites and FTS5's delete, insert and segment flush).
These tests pin the outcome: whatever sequence of patches and replaces runs, the
keys and the entry are exactly what a fresh index of the document would hold —
tokenised text and filter sort keys, or no entry when the text is not a string.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from one_store import UNSET, Store, define_schema, define_table, v
from one_store.engine.search import MAX_TERM_BYTES, search_tokens
from one_store.model.keys import sort_key

SCHEMA = define_schema(
    {
        "posts": define_table(
            {
                "body": v.optional(v.any()),
                "channel": v.optional(v.any()),
                "other": v.optional(v.any()),
            }
        )
        .index("by_channel", ["channel"])
        .index("by_other_channel", ["other", "channel"])
        .search_index("search_body", search_field="body", filter_fields=["channel"]),
    }
)

# Values chosen to collide under ``==`` but not under Convex's order (1 / 1.0,
# 0.0 / -0.0, True / 1) and texts that tokenise alike or not at all.
BODIES = st.sampled_from(
    ["alpha beta", "Alpha beta", "gamma", "", 5, None, b"alpha", UNSET]
)
CHANNELS = st.sampled_from([1, 1.0, 0.0, -0.0, True, "x", None, UNSET])
OTHERS = st.sampled_from([1, "changed", UNSET])
FIELDS = st.fixed_dictionaries(
    {}, optional={"body": BODIES, "channel": CHANNELS, "other": OTHERS}
)
STEPS = st.lists(st.tuples(st.sampled_from(["patch", "replace"]), FIELDS), max_size=8)


def entry(store: Store, doc_id: str) -> tuple[Any, ...] | None:
    conn = store.storage.connection
    if store.storage.features.vendor == "postgresql":
        return pg_entry(conn, doc_id)
    (rowid,) = conn.execute("SELECT rowid FROM posts WHERE _id=?", (doc_id,)).fetchone()
    row: tuple[Any, ...] | None = conn.execute(
        'SELECT text, f0 FROM "posts$search$search_body" WHERE rowid=?', (rowid,)
    ).fetchone()
    return row


def pg_entry(conn: Any, doc_id: str) -> tuple[Any, ...] | None:
    """The PostgreSQL engine's entry, its ``tsvector`` read back as tokens in order."""
    row = conn.execute(
        'SELECT tokens::text, f0 FROM "posts$search$search_body" WHERE id = %s',
        (doc_id,),
    ).fetchone()
    if row is None:
        return None
    at: dict[int, str] = {}
    for lexeme, positions in re.findall(r"'((?:[^']|'')*)':([\d,]+)", row[0]):
        for position in positions.split(","):
            at[int(position)] = lexeme.replace("''", "'")
    return " ".join(at[p] for p in sorted(at)), bytes(row[1])


def keys(store: Store, doc_id: str, table: str = "posts") -> tuple[Any, ...]:
    layout = store.storage.layouts[table]
    columns = ", ".join(f'"_k_{name}"' for name, _ in layout.key_fns)
    mark = "%s" if store.storage.features.vendor == "postgresql" else "?"
    row: tuple[Any, ...] = store.storage.connection.execute(
        f"SELECT {columns} FROM {table} WHERE _id={mark}", (doc_id,)
    ).fetchone()
    return tuple(bytes(k) for k in row)


def expected_keys(store: Store, doc: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(fn(doc) for _, fn in store.storage.layouts["posts"].key_fns)


def expected(doc: dict[str, Any]) -> tuple[Any, ...] | None:
    body = doc.get("body", UNSET)
    if not isinstance(body, str):
        return None
    return (" ".join(search_tokens(body)), sort_key(doc.get("channel", UNSET)))


@given(first=FIELDS, steps=STEPS)
@example(first={"body": "a", "channel": 1}, steps=[("patch", {"channel": 1.0})])
@example(first={"body": "a", "channel": 0.0}, steps=[("patch", {"channel": -0.0})])
@example(first={"body": "a b"}, steps=[("patch", {"other": 1}), ("patch", {"body": 5})])
@example(first={"body": 5}, steps=[("replace", {"body": "now text"})])
def test_index_keys_and_search_entry_follow_every_write(
    first: dict[str, Any], steps: list[tuple[str, dict[str, Any]]]
) -> None:
    with Store.memory(SCHEMA, seed=0) as store:
        doc_id = store.run(lambda ctx: ctx.db.insert("posts", first)).unwrap()
        for method, fields in steps:

            def write(ctx: Any, m: str = method, f: dict[str, Any] = fields) -> None:
                getattr(ctx.db, m)(doc_id, f)

            store.run(write).unwrap()
            doc = store.run(lambda ctx: ctx.db.get(doc_id)).unwrap()
            assert entry(store, doc_id) == expected(doc)
            assert keys(store, doc_id) == expected_keys(store, doc)


def reference_tokens(text: str) -> list[str]:
    """Convex's analyser spelled out: alphanumeric runs, long ones dropped, lowercased."""
    return [
        t.lower()
        for t in re.findall(r"[^\W_]+", text)
        if len(t.encode("utf-8")) < MAX_TERM_BYTES
    ]


ASCII_TEXT = st.text(
    st.sampled_from("aZ09 _-.,!@[`{~\x00\x7f\t\n") | st.characters(max_codepoint=127)
)
LONG_WORDS = st.lists(
    st.text(st.sampled_from("aB3"), min_size=28, max_size=36), max_size=3
).map(" ".join)


@given(st.one_of(ASCII_TEXT, LONG_WORDS, st.text()))
@example("Hello, World! foo_bar x-1 ABC123")
@example("a" * 31 + " " + "B" * 32)
@example("Straße ÜBER naïve")
def test_search_tokens_are_convex_tokens(text: str) -> None:
    assert search_tokens(text) == reference_tokens(text)


# Indexes over nested paths and several fields: a patch that names a field
# (with an equal value, a different one, or UNSET) and one that leaves it alone
# must both leave every key column equal to a fresh key of the document.
NESTED = define_schema(
    {
        "rows": define_table(
            {
                "meta": v.optional(v.object({"n": v.optional(v.any())})),
                "tag": v.optional(v.any()),
                "note": v.optional(v.string()),
            }
        )
        .index("by_meta_n", ["meta.n"])
        .index("by_tag_meta_n", ["tag", "meta.n"])
        .index("by_note", ["note"]),
    }
)
METAS = st.sampled_from([{}, {"n": 1}, {"n": 1.0}, {"n": "x"}, UNSET]).map(
    lambda m: dict(m) if isinstance(m, dict) else m  # a fresh object every time
)
NESTED_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "meta": METAS,
        "tag": st.sampled_from([1, True, "t", UNSET]),
        "note": st.sampled_from(["a", "b", UNSET]),
    },
)


@given(first=NESTED_FIELDS, steps=st.lists(NESTED_FIELDS, max_size=8))
@example(first={"meta": {"n": 1}, "tag": 1}, steps=[{"meta": {"n": 1.0}}])
@example(first={"meta": {"n": 1}, "note": "a"}, steps=[{"note": "b"}, {"meta": {}}])
def test_nested_index_keys_follow_every_patch(
    first: dict[str, Any], steps: list[dict[str, Any]]
) -> None:
    with Store.memory(NESTED, seed=0) as store:
        doc_id = store.run(lambda ctx: ctx.db.insert("rows", first)).unwrap()
        layout = store.storage.layouts["rows"]
        for fields in steps:

            def patch(ctx: Any, f: dict[str, Any] = fields) -> None:
                ctx.db.patch(doc_id, f)

            store.run(patch).unwrap()
            doc = store.run(lambda ctx: ctx.db.get(doc_id)).unwrap()
            stored = keys(store, doc_id, "rows")
            assert stored == tuple(fn(doc) for _, fn in layout.key_fns)

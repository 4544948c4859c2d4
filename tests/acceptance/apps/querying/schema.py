"""A forum: threads and their messages, indexed for the query-layer acceptance tests."""

from one_store import define_schema, define_table, v

schema = define_schema(
    {
        "threads": define_table({"title": v.string()}),
        "messages": define_table(
            {
                "threadId": v.id("threads"),
                "author": v.string(),
                "body": v.string(),
                "likes": v.int64(),
            }
        )
        .index("by_thread", ["threadId"])
        .index("by_thread_likes", ["threadId", "likes"])
        .search_index(
            "search_body", search_field="body", filter_fields=["threadId", "author"]
        ),
    }
)

"""Schema of the HTTP API test app: notes (every wire type), counters, events."""

from one_store import define_schema, define_table, v

schema = define_schema(
    {
        "notes": define_table(
            {
                "text": v.string(),
                "count": v.optional(v.int64()),
                "blob": v.optional(v.bytes()),
                "score": v.optional(v.float64()),
                "tags": v.optional(v.array(v.string())),
            }
        ).index("by_text", ["text"]),
        "counters": define_table({"name": v.string(), "value": v.int64()}).index(
            "by_name", ["name"]
        ),
        "events": define_table(
            {"kind": v.string(), "noteId": v.optional(v.id("notes"))}
        ),
    }
)

"""Schema of the file-storage test app: Convex's upload tutorial (messages with images)."""

from one_store import define_schema, define_table, v

schema = define_schema(
    {
        "messages": define_table(
            {"body": v.id("_storage"), "author": v.string(), "format": v.string()}
        ),
    }
)

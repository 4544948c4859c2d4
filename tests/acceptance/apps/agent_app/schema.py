from one_store import define_schema, define_table, v

schema = define_schema(
    {
        "tasks": define_table(
            {
                "goal": v.string(),
                "status": v.union(
                    v.literal("queued"),
                    v.literal("working"),
                    v.literal("done"),
                    v.literal("failed"),
                ),
                "attempts": v.int64(),
                "answer": v.optional(v.string()),
                "error": v.optional(v.string()),
                "updatedAt": v.number(),
            }
        ).index("by_status", ["status", "updatedAt"]),
        "steps": define_table(
            {
                "taskId": v.id("tasks"),
                "kind": v.string(),
                "detail": v.string(),
                "at": v.number(),
            }
        ).index("by_task", ["taskId"]),
        "counters": define_table({"name": v.string(), "value": v.int64()}).index(
            "by_name", ["name"]
        ),
    }
)

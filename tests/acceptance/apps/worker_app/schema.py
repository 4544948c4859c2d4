from one_store import define_schema, define_table, v

schema = define_schema(
    {
        # One row per run of a scheduled job: the job number and the process that ran it.
        "runs": define_table(
            {"job": v.int64(), "kind": v.string(), "pid": v.int64()}
        ).index("by_job", ["job"]),
    }
)

"""Where ``serve`` runs a call: on its event loop only when the engine is local.

A query or mutation on SQLite is a fraction of a millisecond of CPU and runs on
the event loop's thread; on PostgreSQL each call waits on network round trips,
so it takes a worker thread and never holds up the loop (``Features.local``).
"""

from __future__ import annotations

import asyncio
import threading

from returns.result import Success

from one_store import Store, define_schema, define_table, query, v
from one_store.server.call_endpoint import run

SCHEMA = define_schema({"t": define_table({"n": v.int64()})})
RAN_ON: list[int] = []


@query(args={})
def where(ctx, args):
    RAN_ON.append(threading.get_ident())
    return len(ctx.db.query("t").collect())


def test_a_query_runs_on_the_loop_only_on_a_local_engine(engine: str) -> None:
    RAN_ON.clear()
    with Store.memory(SCHEMA) as store:
        spec = store.executor.resolve("query", where).unwrap()

        async def call() -> int:
            result, _ = await run(spec, {}, store)
            assert result == Success(0)
            return threading.get_ident()

        loop_thread = asyncio.run(call())
        assert store.storage.features.local is (engine == "sqlite")
    assert ([loop_thread] == RAN_ON) is (engine == "sqlite")

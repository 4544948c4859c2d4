"""schema/chat rules hold when several writers race on one file (each its own Store)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from returns.result import Success

from one_store import Store

from .conftest import CHAT_APP
from .helpers import make_chat_thread

WRITERS = 6


def race(db: Path, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Run each call from its own thread and Store on ``db``, all released at once."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def writer(index: int, path: str, args: dict[str, Any]) -> None:
        with Store.open(db, app=CHAT_APP, busy_timeout=30.0) as store:
            barrier.wait(timeout=60)
            results[index] = store.mutation(path, args)

    threads = [
        threading.Thread(target=writer, args=(i, path, args))
        for i, (path, args) in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_racing_decisions_on_one_request_let_exactly_one_win(tmp_path: Path):
    db = tmp_path / "chat.db"
    with Store.open(db, app=CHAT_APP) as store:
        thread_id = make_chat_thread(store)
        request_id = store.mutation(
            "approvals:request", {"threadId": thread_id, "planContent": "p"}
        ).unwrap()
    decisions = ["approve" if i % 2 else "reject" for i in range(WRITERS)]
    results = race(
        db, [(f"approvals:{d}", {"requestId": request_id}) for d in decisions]
    )
    winners = [d for d, r in zip(decisions, results, strict=True) if r == Success(None)]
    assert len(winners) == 1
    with Store.open(db, app=CHAT_APP) as store:
        status = store.query("approvals:get", {"requestId": request_id}).unwrap()[
            "status"
        ]
    assert status == {"approve": "approved", "reject": "rejected"}[winners[0]]


def test_racing_upserts_leave_one_session_per_thread(tmp_path: Path):
    db = tmp_path / "chat.db"
    with Store.open(db, app=CHAT_APP) as store:
        thread_id = make_chat_thread(store)
    calls = [
        (
            "sessions:upsert",
            {"threadId": thread_id, "sdkSessionId": f"sdk-{i}", "phase": "planning"},
        )
        for i in range(WRITERS)
    ]
    results = race(db, calls)
    assert all(isinstance(r, Success) for r in results)
    assert len({r.unwrap() for r in results}) == 1  # every call hit the same document
    with Store.open(db, app=CHAT_APP) as store:
        sessions = list(store.documents("sessions"))
    assert len(sessions) == 1
    assert sessions[0]["sdkSessionId"] in {f"sdk-{i}" for i in range(WRITERS)}

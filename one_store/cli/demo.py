"""The ``one-store demo`` scenario: the two bundled apps at work on local files.

The demo opens the two apps one_store was built from, found with
:func:`one_store.bundled_app` (``schema/`` in a checkout, ``one_store/_apps/`` in a
wheel): the ONE agent/human system and the agent chat app, each on its own
SQLite file, as two Convex projects are two deployments: ``db_path`` holds the
ONE system and its sibling ``<stem>.chat<suffix>`` the chat app. It then runs a
realistic scenario, prints what it did as tables, and shows bad input coming
back as a ``Failure`` value. Running it again on the same files reuses the users
and agents it finds and adds a new flow, conversation and thread.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from returns.result import Failure, Result, Success
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..app import bundled_app
from ..model.errors import OneStoreError, Problem, StorageFailure
from ..store import Store
from .demo_auth import auth_scenario
from .demo_lessons import related_lessons_table

ONE_NAME = "the ONE agent/human system"
CHAT_NAME = "the agent chat app"

FLOW_STEPS = [
    {"name": "research", "instructions": "Collect launch requirements"},
    {
        "name": "draft",
        "instructions": "Write the announcement",
        "prerequisites": ["research"],
    },
    {
        "name": "review",
        "instructions": "Check facts and tone",
        "prerequisites": ["draft"],
    },
]
AGENTS = [
    ("Planner", "Breaks a goal into steps", ["planning"]),
    ("Writer", "Drafts announcements", ["writing"]),
    ("Critic", "Reviews drafts", ["review"]),
]


class DemoError(Exception):
    """A step of the scenario did not return what it should have."""


def chat_path(db_path: Path) -> Path:
    """The chat app's file beside ``db_path`` (``demo.db`` -> ``demo.chat.db``).

    Example:
        >>> chat_path(Path("one_store_demo.db")).name
        'one_store_demo.chat.db'
    """
    return db_path.with_name(f"{db_path.stem}.chat{db_path.suffix or '.db'}")


def _ok(result: Result[Any, Problem], what: str) -> Any:
    """The value of a Success; a Failure stops the demo with ``what`` went wrong."""
    match result:
        case Success(value):
            return value
        case Failure(problem):
            raise DemoError(f"{what}: {problem.message}")
    raise AssertionError(f"not a Result: {result!r}")  # pragma: no cover


def _expect_failure(result: Result[Any, Problem], what: str) -> Problem:
    """The Problem of a Failure; a Success here means the app let bad input in."""
    if isinstance(result, Success):
        raise DemoError(f"{what}: expected a Failure, got Success({result.unwrap()!r})")
    return result.failure()


def _when(ms: float) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S")


def _row(table: Table, *cells: object) -> None:
    # Cells hold data (messages, validator text with brackets): never markup.
    table.add_row(*(Text(str(cell)) for cell in cells))


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


@contextmanager
def _open(path: Path, app: Path) -> Iterator[Store]:
    store = Store.open(path, app=app)
    try:
        yield store
    finally:
        store.close()


# ---------------------------------------------------------------- ONE system


def _ensure_one_people(store: Store) -> tuple[str, dict[str, str]]:
    """Find or create the user Ada and the three agents; return their IDs."""
    users = _ok(store.query("users:listUsers", {}), "list users")
    ada = next((u for u in users if u.get("email") == "ada@example.com"), None)
    ada_id = (
        str(ada["_id"])
        if ada
        else _ok(
            store.mutation(
                "users:createUser", {"name": "Ada", "email": "ada@example.com"}
            ),
            "create user Ada",
        )
    )
    agents: dict[str, str] = {}
    for name, description, tags in AGENTS:
        found = _ok(store.query("agents:getAgentByName", {"name": name}), "find agent")
        agents[name] = (
            str(found["_id"])
            if found
            else _ok(
                store.mutation(
                    "agents:createAgent",
                    {
                        "name": name,
                        "description": description,
                        "tags": tags,
                        "createdBy": ada_id,
                    },
                ),
                f"create agent {name}",
            )
        )
    return ada_id, agents


def _one_scenario(store: Store, console: Console) -> list[tuple[str, Problem]]:
    ada_id, agents = _ensure_one_people(store)
    run = len(_ok(store.query("flows:listFlows", {}), "list flows")) + 1
    console.rule(f"[bold]ONE agent/human system[/] — run #{run}")

    # The spec's updateAgent: only the given fields change, plus updatedAt.
    _ok(
        store.mutation(
            "agents:updateAgent",
            {
                "agentId": agents["Planner"],
                "prompt": f"Plan launch #{run} in three steps.",
                "updatedBy": ada_id,
            },
        ),
        "update agent",
    )
    # The spec's deleteLesson, on a lesson that turned out to be wrong.
    _ok(
        store.mutation(
            "lessons:createLesson",
            {
                "title": "Cite sources",
                "content": "Every claim in a draft links its source.",
                "agentId": agents["Writer"],
            },
        ),
        "create lesson",
    )
    outdated = _ok(
        store.mutation(
            "lessons:createLesson",
            {"title": "Outdated", "content": "Use the old template."},
        ),
        "create lesson",
    )
    _ok(store.mutation("lessons:deleteLesson", {"lessonId": outdated}), "delete lesson")
    console.print(related_lessons_table(store, agents, _ok))

    agents_table = _table("Agents", "name", "description", "prompt", "updated")
    for agent in _ok(store.query("agents:listAgents", {}), "list agents"):
        _row(
            agents_table,
            agent["name"],
            agent.get("description", ""),
            agent.get("prompt", "—"),
            _when(agent["updatedAt"]) if "updatedAt" in agent else "—",
        )
    console.print(agents_table)

    # A flow, edited with the spec's updateFlowStep, then walked by an action
    # that commits one mutation per step transition.
    flow_id = _ok(
        store.mutation(
            "flows:createFlow",
            {
                "name": f"Launch checklist #{run}",
                "steps": FLOW_STEPS,
                "agentId": agents["Planner"],
            },
        ),
        "create flow",
    )
    _ok(
        store.mutation(
            "flows:updateFlowStep",
            {
                "flowId": flow_id,
                "stepName": "draft",
                "instructions": "Write a 200-word announcement",
            },
        ),
        "update flow step",
    )
    walked = _ok(store.action("flows:advance", {"flowId": flow_id}), "advance flow")
    flow = _ok(store.query("flows:getFlow", {"flowId": flow_id}), "get flow")
    steps_table = _table(
        f"Flow {flow['name']!r} walked by flows:advance → {walked['status']}",
        "#",
        "step",
        "needs",
        "status",
        "output",
    )
    for number, step in enumerate(flow["steps"], 1):
        _row(
            steps_table,
            str(number),
            step["name"],
            ", ".join(step["prerequisites"]) or "—",
            step["status"],
            step.get("output", ""),
        )
    console.print(steps_table)

    # A conversation started by an action: conversation + participants + message.
    started = _ok(
        store.action(
            "conversations:start",
            {
                "title": f"Launch #{run} kickoff",
                "participants": [
                    {"agentId": agents["Planner"], "role": "lead"},
                    {"agentId": agents["Writer"]},
                    {"userId": ada_id, "role": "owner"},
                ],
                "firstMessage": "The checklist is done; shall we publish?",
            },
        ),
        "start conversation",
    )
    conversation_id = started["conversationId"]
    planner, writer, ada = started["participantIds"]
    for author, content, kind in [
        (writer, "Draft attached, sources cited.", "participant"),
        (ada, "Approved. Publish at noon.", "participant"),
        (planner, "Ada approved the announcement.", "system"),
    ]:
        _ok(
            store.mutation(
                "conversations:addConversationMessage",
                {
                    "conversationId": conversation_id,
                    "authorParticipantId": author,
                    "content": content,
                    "kind": kind,
                },
            ),
            "add conversation message",
        )
    names = {
        p["_id"]: p["displayName"]
        for p in _ok(
            store.query(
                "conversations:listParticipants", {"conversationId": conversation_id}
            ),
            "list participants",
        )
    }
    page = _ok(
        store.query(
            "conversations:listMessages",
            {
                "conversationId": conversation_id,
                "paginationOpts": {"numItems": 10, "cursor": None},
            },
        ),
        "list messages",
    )
    messages_table = _table(
        f"Conversation 'Launch #{run} kickoff' (conversations:start)",
        "time",
        "author",
        "kind",
        "message",
    )
    for message in page["page"]:
        _row(
            messages_table,
            _when(message["createdAt"]),
            names[message["authorParticipantId"]],
            message["kind"],
            message["content"],
        )
    console.print(messages_table)

    return [
        (
            "flows:runStep with an unknown step",
            _expect_failure(
                store.action(
                    "flows:runStep", {"flowId": flow_id, "stepName": "publish"}
                ),
                "unknown flow step",
            ),
        ),
        (
            "addConversationMessage with kind 'robot'",
            _expect_failure(
                store.mutation(
                    "conversations:addConversationMessage",
                    {
                        "conversationId": conversation_id,
                        "authorParticipantId": writer,
                        "content": "beep",
                        "kind": "robot",
                    },
                ),
                "bad message kind",
            ),
        ),
    ]


# ---------------------------------------------------------------- chat app


def _chat_scenario(store: Store, console: Console) -> list[tuple[str, Problem]]:
    email = "grace@example.com"
    user = _ok(store.query("auth:getUserByEmail", {"email": email}), "find user")
    user_id = (
        str(user["_id"])
        if user
        else _ok(
            store.mutation("auth:createUser", {"name": "Grace", "email": email}),
            "create user",
        )
    )
    run = len(_ok(store.query("threads:list", {"userId": user_id}), "list threads"))
    run += 1
    console.rule(f"[bold]Agent chat app[/] — run #{run}")
    thread_id = _ok(
        store.mutation(
            "threads:create", {"userId": user_id, "title": f"Trip to Japan #{run}"}
        ),
        "create thread",
    )

    def send(role: str, content: str) -> None:
        _ok(
            store.mutation(
                "messages:send",
                {"threadId": thread_id, "role": role, "content": content},
            ),
            "send message",
        )

    send("user", "Plan a week in Japan in April.")
    _ok(
        store.mutation(
            "sessions:upsert",
            {"threadId": thread_id, "sdkSessionId": f"sdk-{run}", "phase": "planning"},
        ),
        "upsert session",
    )
    _ok(
        store.mutation(
            "toolCalls:record",
            {
                "threadId": thread_id,
                "toolName": "search_flights",
                "input": {"from": "SFO", "to": "HND", "month": "April"},
                "output": {"cheapest": 812},
            },
        ),
        "record tool call",
    )
    plan = "Day 1-3 Tokyo, day 4-6 Kyoto, day 7 Osaka."
    send("assistant", f"Here is a plan: {plan}")
    # The spec's backend call: POST /api/mutation {"path": "artifacts:create", ...}.
    artifact_id = _ok(
        store.mutation(
            "artifacts:create",
            {"threadId": thread_id, "type": "plan", "content": plan},
        ),
        "create artifact",
    )
    request_id = _ok(
        store.mutation(
            "approvals:request", {"threadId": thread_id, "planContent": plan}
        ),
        "request approval",
    )
    _ok(
        store.mutation(
            "approvals:approve",
            {"requestId": request_id, "decidedBy": user_id, "comment": "Book it"},
        ),
        "approve plan",
    )
    _ok(
        store.mutation(
            "artifacts:update", {"artifactId": artifact_id, "status": "final"}
        ),
        "finalize artifact",
    )
    send("user", "Approved, go ahead.")

    thread_table = _table(
        f"Thread 'Trip to Japan #{run}' (messages:list)", "time", "role", "content"
    )
    for message in _ok(
        store.query("messages:list", {"threadId": thread_id}), "list messages"
    ):
        _row(
            thread_table,
            _when(message["createdAt"]),
            message["role"],
            message["content"],
        )
    console.print(thread_table)

    session = _ok(
        store.query("sessions:getByThread", {"threadId": thread_id}), "get session"
    )
    state = _table("Thread state", "what", "value")
    for artifact in _ok(
        store.query("artifacts:listByThread", {"threadId": thread_id}),
        "list artifacts",
    ):
        _row(state, f"artifact ({artifact['type']})", artifact["status"])
    for approval in _ok(
        store.query("approvals:listByThread", {"threadId": thread_id}),
        "list approvals",
    ):
        _row(state, "approval request", approval["status"])
    _row(state, "session phase", session["phase"])
    _row(state, "session plan", session.get("plan", "—"))
    for call in _ok(
        store.query("toolCalls:list", {"threadId": thread_id}), "list tool calls"
    ):
        _row(state, f"tool call {call['toolName']}", str(call["input"]))
    console.print(state)

    return [
        (
            "approvals:approve a second time",
            _expect_failure(
                store.mutation("approvals:approve", {"requestId": request_id}),
                "approving twice",
            ),
        ),
        (
            "messages:send with a numeric role",
            _expect_failure(
                store.mutation(
                    "messages:send",
                    {"threadId": thread_id, "role": 7, "content": "beep"},
                ),
                "bad role",
            ),
        ),
    ]


def _counts(store: Store, tables: Mapping[str, str]) -> list[tuple[str, int]]:
    return [(label, sum(1 for _ in store.documents(t))) for t, label in tables.items()]


def run_demo(db_path: Path, console: Console) -> int:
    """Run the demo scenario on ``db_path`` (and its chat sibling); print a summary.

    Args:
        db_path: the ONE system's SQLite file; created when missing, reused when
            present. The chat app uses :func:`chat_path` of it.
        console: where the tables go.

    Returns:
        0 when the scenario ran as expected, 1 when a step failed (the message is
        printed), 2 when this installation carries no copy of the apps.

    Example:
        >>> from rich.console import Console
        >>> run_demo(Path("one_store_demo.db"), Console())  # doctest: +SKIP
        0
    """
    try:
        one_app, chat_app = bundled_app("one"), bundled_app("chat")
    except FileNotFoundError as error:
        console.print(f"[red]{escape(str(error))}[/]")
        return 2
    db_path = Path(db_path)
    chat_db = chat_path(db_path)
    console.print(
        f"The two apps one_store was built from, {ONE_NAME} and {CHAT_NAME}, "
        f"each on its own file: [bold]{escape(str(db_path))}[/] and "
        f"[bold]{escape(str(chat_db))}[/].",
        highlight=False,
    )
    failures: list[tuple[str, Problem]] = []
    try:
        with _open(db_path, one_app) as one:
            failures += _one_scenario(one, console)
            one_counts = _counts(
                one,
                {
                    "users": "users",
                    "agents": "agents",
                    "lessons": "lessons",
                    "flows": "flows",
                    "conversations": "conversations",
                    "conversationMessages": "conversation messages",
                },
            )
        with _open(chat_db, chat_app) as chat:
            failures += _chat_scenario(chat, console)
            failures += auth_scenario(chat, console, _ok, _expect_failure, _table)
            chat_counts = _counts(
                chat,
                {
                    "users": "users",
                    "threads": "threads",
                    "messages": "messages",
                    "artifacts": "artifacts",
                    "approvalRequests": "approval requests",
                    "toolCalls": "tool calls",
                },
            )
    except DemoError as error:
        console.print(f"[red]Demo step failed: {escape(str(error))}[/]")
        return 1
    except (OneStoreError, StorageFailure) as error:
        # A file of another app (SchemaMismatchError) or one SQLite cannot open.
        console.print(f"[red]Could not open the demo files: {escape(str(error))}[/]")
        return 1

    console.rule("[bold]Bad input comes back as a Failure, not an exception[/]")
    bad = _table("Failures returned", "call", "problem", "message")
    for call, problem in failures:
        _row(bad, call, problem.code, " ".join(problem.message.splitlines()[:3]))
    console.print(bad)

    totals = _table(
        "Documents in the files (they grow on every run)", "file", "table", "count"
    )
    for path, counts in ((db_path, one_counts), (chat_db, chat_counts)):
        for label, count in counts:
            _row(totals, path.name, label, str(count))
    console.print(totals)
    for path, name, app in (
        (db_path, ONE_NAME, one_app),
        (chat_db, CHAT_NAME, chat_app),
    ):
        console.print(
            f"[bold]{escape(str(path))}[/]: {name} (app folder {escape(str(app))})",
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        "Run the demo again to add to both files; look inside with "
        f"[bold]one-store data --db {escape(str(db_path))}[/].",
        highlight=False,
        soft_wrap=True,
    )
    return 0

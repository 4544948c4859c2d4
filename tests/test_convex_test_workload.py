"""The convex-test benchmark's workload file: the harness's documents and calls.

``benchmarks/convex_test_bench.py`` hands the JS side (``benchmarks/convex_test``,
npm + vitest, not run here) a JSON file; these tests check, without Node, that it
holds exactly what the harness gives the Python stores, in a form that survives
JSON. No timings.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import convex_test_bench as ctb
from benchmarks import run as harness_run
from benchmarks.harness import OPS, RAW, StoreState
from benchmarks.peers.base import Peer
from benchmarks.workload import MODELS, ROLES, make_docs

SIZE = 120


class Recorder:
    """Stands in for a store: records the batches ``run.load`` inserts."""

    docs: list[Any] = []  # noqa: RUF012 - reset per test

    @classmethod
    def create(cls, path: Path) -> Recorder:
        return cls()

    def bulk_insert(self, docs: Any) -> list[int]:
        start = len(Recorder.docs)
        Recorder.docs.extend(docs)
        return list(range(start, start + len(docs)))

    def close(self) -> None:
        pass


@pytest.fixture
def plan() -> ctb.Plan:
    calls = {key: 3 for key in ctb.CALLS}
    return ctb.make_plan(SIZE, reps=2, bulk=7, bulk_reps=1, calls=calls)


@pytest.fixture
def exported(plan: ctb.Plan) -> dict[str, Any]:
    """The workload after a trip through JSON, as the JS side reads it."""
    loaded: dict[str, Any] = json.loads(json.dumps(ctb.workload_json(plan)))
    return loaded


def test_table_is_what_the_harness_loads(monkeypatch, tmp_path, exported):
    monkeypatch.setattr(harness_run, "LOAD_CHUNK", 50)  # three seeded chunks
    Recorder.docs = []
    classes: dict[str, type[Peer]] = {RAW: Recorder}  # type: ignore[dict-item]
    harness_run.load(classes, SIZE, tmp_path, "t", [])
    assert len(Recorder.docs) == SIZE
    assert ctb.table_docs(SIZE) == Recorder.docs
    assert Recorder.docs != make_docs(SIZE, seed=1_000)  # really three chunks
    monkeypatch.undo()
    assert exported["table"] == make_docs(SIZE, seed=1_000)


def test_json_round_trip_changes_nothing(plan):
    workload = ctb.workload_json(plan)
    assert json.loads(json.dumps(workload)) == workload
    tokens = [d["meta"]["tokens"] for d in workload["table"]]
    assert all(type(t) is int and 0 <= t < 2**53 for t in tokens)


def _harness_form(key: str, args: list[Any], keys: list[str]) -> list[Any]:
    """The JSON arguments read back into what ``Op.bind`` gives a store."""
    if key == "get":
        return [keys[p] for p in args]
    if key == "patch":
        return [(keys[p], f) for p, f in args]
    if key == "range":
        return [(r["role"], r["lo"], r["hi"]) for r in args]
    if key == "action3":
        return [tuple(a) for a in args]
    return args


def test_calls_are_the_harness_calls_with_its_seeds(exported):
    keys = [f"key{i}" for i in range(SIZE)]
    state = StoreState(peer=None, keys=keys)  # type: ignore[arg-type]
    by_key = {op["key"]: op for op in exported["ops"]}
    assert list(by_key) == [op.key for op in OPS]
    for op in OPS:
        seeds = ["calibrate-" + op.key, *(f"{op.key}-{rep}" for rep in range(2))]
        slices = [by_key[op.key]["warmup"], *by_key[op.key]["reps"]]
        assert [len(s) for s in slices] == [1, 3, 3]
        for seed, args in zip(seeds, slices, strict=True):
            made = op.make(random.Random(seed), len(args), SIZE)
            if op.key in ("get", "patch"):
                made = op.bind(state, made)
            elif op.key == "range":
                made = [(r.role, r.lo, r.hi) for r in made]
            assert _harness_form(op.key, args, keys) == made, (op.key, seed)
    assert exported["bulk"]["docs"] == make_docs(7, seed=ctb.BULK_SEED)


def test_inserts_and_deletes_balance(exported):
    by_key = {op["key"]: op for op in exported["ops"]}

    def count(key: str) -> int:
        op = by_key[key]
        return len(op["warmup"]) + sum(len(a) for a in op["reps"])

    assert count("delete") == count("insert")


def test_js_schema_uses_the_workload_literals():
    source = (ctb.JS / "convex" / "messages.js").read_text()
    assert f"export const ROLES = {json.dumps(list(ROLES))};" in source
    assert f"export const MODELS = {json.dumps(list(MODELS))};" in source
    schema = (ctb.JS / "convex" / "schema.js").read_text()
    assert '.index("by_thread", ["threadId"])' in schema
    assert '.index("by_role_tokens", ["role", "meta.tokens"])' in schema


def test_write_replaces_only_its_block(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text(f"# R\n\nabove\n\n{ctb.START}\nold\n{ctb.END}\n\nbelow\n")
    ctb.write(out, f"{ctb.START}\nnew\n{ctb.END}")
    text = out.read_text()
    assert "old" not in text
    assert re.fullmatch(
        rf"# R\n\nabove\n\n{re.escape(ctb.START)}\nnew\n{re.escape(ctb.END)}\n\nbelow\n",
        text,
    )
    fresh = tmp_path / "other.md"
    fresh.write_text("# R\n")
    ctb.write(fresh, f"{ctb.START}\nnew\n{ctb.END}")
    assert "## convex-test (optional section)" in fresh.read_text()


def test_render_has_a_row_per_operation():
    results = {
        name: {key: [1.0, 2.0, 3.0] for key in [*(o.key for o in OPS), "bulk"]}
        for name in ctb.COLUMNS
    }
    results[ctb.CONVEX_TEST]["get"] = [8.0]
    js = {k: "x" for k in ("node", "convex", "convex-test", "vitest")}
    js["@edge-runtime/vm"] = "x"
    meta = {
        "command": "c",
        "env": {k: "x" for k in ("date", "machine", "python", "sqlite", "one_store")},
        "js": js,
        "calls": ctb.CALLS,
        "size": SIZE,
        "reps": 3,
        "bulk": 7,
        "bulk_reps": 1,
        "js_seconds": 1.0,
        "py_seconds": 1.0,
    }
    block = ctb.render(results, ["a note"], meta)
    rows = [line for line in block.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(OPS) + 1
    get_row = next(r for r in rows if r.startswith("| get by id"))
    assert get_row.endswith("| **4.00** | **4.00** |")
    assert "n/c (†)" in next(r for r in rows if r.startswith("| text search"))
    assert block.startswith(ctb.START)
    assert block.endswith(ctb.END)

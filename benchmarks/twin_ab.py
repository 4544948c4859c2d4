"""Two source trees in one process, their calls interleaved: an A/B that load cancels.

Usage::

    python benchmarks/twin_ab.py /path/to/clone/A /path/to/clone/B get,patch 300 9

Each tree's ``one_store`` package is copied under another name (``one_store_a``,
``one_store_b``: the package imports itself relatively, so a renamed copy runs
as it is) and gets its own ``OneStorePeer`` (the workload of
``peers/one_store_peer.py``, decorated by that copy) on its own file of the
same 20,000 documents, no search index. For each operation, slices of ``N``
calls alternate A, B, B, A, ... ``R`` times; each slice is timed by the thread's
CPU time and each A/B pair gives a ratio. Two slices a few milliseconds apart
see the same machine, so the load of a shared machine, which makes
``cpu_ab.py``'s separate runs vary by ±10%, mostly cancels here. Prints the
median B/A ratio with its range, per operation.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.workload import SETTINGS, make_docs, patch_fields  # noqa: E402

TABLE = 20_000


def load_tree(src: Path, name: str, folder: Path) -> ModuleType:
    """``src``'s one_store package imported as ``name``, and its peer module."""
    shutil.copytree(src / "one_store", folder / name)
    sys.path.insert(0, str(folder))
    package = importlib.import_module(name)
    saved = sys.modules.get("one_store")
    sys.modules["one_store"] = package  # the peer's ``from one_store import``
    try:
        spec = importlib.util.spec_from_file_location(
            f"{name}_peer", HERE / "peers" / "one_store_peer.py"
        )
        assert spec is not None
        assert spec.loader is not None
        peer = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(peer)
    finally:
        if saved is None:
            del sys.modules["one_store"]
        else:
            sys.modules["one_store"] = saved
    return peer


def calls(op: str, keys: list[Any], r: random.Random, n: int, rep: int) -> list[Any]:
    """``n`` calls' arguments of ``op`` in pair ``rep`` (the same for both trees)."""
    if op == "delete":  # each pair deletes documents no other pair touched
        return keys[TABLE - (rep + 1) * n : TABLE - rep * n]
    if op == "get":
        return [keys[r.randrange(TABLE // 2)] for _ in range(n)]
    if op == "patch":  # documents no delete pair removes
        return [(keys[r.randrange(TABLE // 2)], patch_fields(r)) for _ in range(n)]
    if op == "insert":
        return list(make_docs(n, r.randrange(1 << 30)))
    if op == "walk":
        return [1000] * max(1, n // 100)
    return [f"thread-{r.randrange(100):03d}" for _ in range(n)]


def run(op: str, peer: Any, args: list[Any]) -> float:
    gc.disable()
    start = time.thread_time()
    if op == "patch":
        for key, fields in args:
            peer.patch(key, fields)
    else:
        method = getattr(peer, op)
        for a in args:
            method(a)
    used = time.thread_time() - start
    gc.enable()
    return used


def main() -> int:
    a_src, b_src = Path(sys.argv[1]), Path(sys.argv[2])
    ops = sys.argv[3].split(",")
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    reps = int(sys.argv[5]) if len(sys.argv) > 5 else 9
    SETTINGS.search = False
    folder = Path(f"/tmp/twin_ab-{os.getpid()}")
    folder.mkdir()
    try:
        modules = {
            "A": load_tree(a_src, "one_store_a", folder),
            "B": load_tree(b_src, "one_store_b", folder),
        }
        peers = {
            k: m.OneStorePeer.create(folder / f"{k}.db") for k, m in modules.items()
        }
        base = make_docs(TABLE, 1)
        keys = {k: p.bulk_insert(base) for k, p in peers.items()}
        gc.collect()
        gc.freeze()
        for op in ops:
            ratios: list[float] = []
            spent = {"A": 0.0, "B": 0.0}
            for rep in range(reps + 1):  # the first pair warms up
                seed = random.Random(f"{op}{rep}").randrange(1 << 30)
                order = ["A", "B"] if rep % 2 else ["B", "A"]
                took = {}
                for k in order:
                    args = calls(op, keys[k], random.Random(seed), n, rep)
                    took[k] = run(op, peers[k], args)
                if rep:
                    ratios.append(took["B"] / took["A"])
                    spent["A"] += took["A"]
                    spent["B"] += took["B"]
            ratios.sort()
            per = n if op != "walk" else max(1, n // 100)
            print(
                f"{op}: B/A median {statistics.median(ratios):.3f} "
                f"[{ratios[0]:.3f}-{ratios[-1]:.3f}] over {reps} pairs; "
                f"A {spent['A'] / reps / per * 1e6:.1f} B "
                f"{spent['B'] / reps / per * 1e6:.1f} CPU µs per call",
                flush=True,
            )
        for p in peers.values():
            p.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

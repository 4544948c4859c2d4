"""Benchmark one_store against raw sqlite3, sqlite-utils, peewee and TinyDB.

Usage (from the repository root, after ``pip install -e ".[dev,bench]"``)::

    python benchmarks/run.py            # full run, ≤ 10 minutes on 2 cores
    python benchmarks/run.py --quick    # ≤ 1 minute, smaller tables
    python benchmarks/run.py --scale    # also 1,000,000-document lookups

Writes ``RESULTS.md`` (the generated block between its markers), ``results.json``
and ``results.png`` into ``--out`` (default: this folder). See README.md here.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import gc
import io
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make `benchmarks` importable as a package.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import scale
from benchmarks.harness import (
    OPS,
    PROFILES,
    RAW,
    TIMING,
    Op,
    Sizes,
    StoreState,
    measure_bulk,
    measure_open,
    measure_ops,
    verify,
)
from benchmarks.peers.base import Peer
from benchmarks.peers.peewee_peer import PeeweePeer
from benchmarks.peers.raw_sqlite import RawSqlite
from benchmarks.peers.sqlite_utils_peer import SqliteUtilsPeer
from benchmarks.peers.tinydb_peer import TinyDBPeer
from benchmarks.report import (
    Report,
    Section,
    environment,
    plot,
    ratio,
    render,
    write_json,
    write_results,
)
from benchmarks.workload import SETTINGS, Doc, make_docs

HERE = Path(__file__).resolve().parent
LOAD_CHUNK = 48_000  # documents generated at a time while loading (bounded memory)
SCALE_STORES = (RAW, "one_store", "sqlite-utils")


def peer_classes(only: set[str] | None) -> dict[str, type[Peer]]:
    classes: list[type[Peer]] = [RawSqlite]
    try:
        from benchmarks.peers.one_store_peer import OneStorePeer

        classes.append(OneStorePeer)
    except ImportError as exc:  # the harness still runs the peers without it
        print(f"one_store adapter unavailable ({exc}); running the peers only")
    classes += [SqliteUtilsPeer, PeeweePeer, TinyDBPeer]
    return {
        c.name: c for c in classes if only is None or c.name in only or c.name == RAW
    }


def log(message: str) -> None:
    print(message, flush=True)


def load(
    classes: dict[str, type[Peer]],
    size: int,
    workdir: Path,
    tag: str,
    notes: list[str],
) -> dict[str, StoreState]:
    """Create one store per class and load the same ``size`` documents into each.

    A store that fails to load is left out of the rest of the run, with a note.
    """
    states: dict[str, StoreState] = {}
    for name, cls in classes.items():
        try:
            states[name] = StoreState(
                cls.create(workdir / f"{tag}-{_slug(name)}.db"), []
            )
        except Exception as exc:
            _drop(states, name, exc, f"creating a {tag} store", notes)
    started = time.perf_counter()
    for seed, start in enumerate(range(0, size, LOAD_CHUNK)):
        docs = make_docs(min(LOAD_CHUNK, size - start), seed=1_000 + seed)
        for name, state in list(states.items()):
            try:
                state.keys.extend(state.peer.bulk_insert(docs))
            except Exception as exc:
                _drop(states, name, exc, f"loading {size:,} documents", notes)
    for name, state in list(states.items()):
        if len(state.keys) != size:
            _drop(
                states,
                name,
                RuntimeError(f"loaded {len(state.keys)} of {size}"),
                "loading",
                notes,
            )
    log(
        f"loaded {size:,} documents into {len(states)} stores in "
        f"{time.perf_counter() - started:.1f}s"
    )
    if RAW not in states:
        raise RuntimeError("raw sqlite3, the reference, could not be loaded")
    gc.collect()
    gc.freeze()  # loaded data is long-lived: keep it out of every later collection
    return states


def _drop(
    states: dict[str, StoreState],
    name: str,
    exc: Exception,
    doing: str,
    notes: list[str],
) -> None:
    note = f"**error** {name} left out of this section: {doing} failed with {type(exc).__name__}: {exc}"
    log(note)
    notes.append(note[:300])
    state = states.pop(name, None)
    if state is not None:
        with contextlib.suppress(Exception):
            state.peer.close()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def profile_one_store(
    report_data: list[Section],
    states: dict[str, StoreState],
    sizes: Sizes,
    workdir: Path,
    top: int = 3,
) -> str:
    """cProfile one_store on its three highest ratios; return a Markdown section."""
    if "one_store" not in states:
        return ""
    ranked: list[tuple[float, str, str]] = []
    for s in report_data:
        for key, label, _t in s.rows:
            r = ratio(s.data, key, "one_store")
            if r is not None:
                ranked.append((r, key, label))
    ranked.sort(reverse=True)
    out = [
        "### Profile of one_store's three highest ratios",
        "",
        "cProfile of the one_store calls of each operation (same arguments as the "
        "timed run). Functions by own time (`tottime`) as a share of the profiled "
        "total; `cum` is the share including callees.",
        "",
    ]
    for r, key, label in ranked[:top]:
        prof = cProfile.Profile()
        try:
            run = _profile_target(key, states, sizes, workdir)
            if run is None:
                continue
            gc.disable()
            prof.enable()
            run()
        except Exception as exc:  # the profile is a bonus: never sink the run
            out += [f"#### {label}", "", f"profiling failed: `{exc!r}`", ""]
            continue
        finally:
            prof.disable()
            gc.enable()
        out += [f"#### {label} ({r:.2f}\u00d7 raw)", "", _profile_table(prof), ""]
    return "\n".join(out)


def _profile_target(
    key: str, states: dict[str, StoreState], sizes: Sizes, workdir: Path
) -> Callable[[], None] | None:
    from benchmarks.peers.one_store_peer import OneStorePeer

    if key == "bulk":
        docs = make_docs(min(sizes.bulk, 20_000), seed=777)

        def bulk() -> None:
            peer = OneStorePeer.create(
                workdir / f"profile-bulk-{time.monotonic_ns()}.db"
            )
            peer.bulk_insert(docs)
            peer.close()

        return bulk
    if key == "open":
        path = workdir / "profile-open.db"
        stored = OneStorePeer.prepare_ten(path, make_docs(1, seed=5)[0])

        def open_many() -> None:
            for _ in range(50):
                OneStorePeer.open_ten(path, stored)

        return open_many
    op = next((o for o in OPS if o.key == key), None)
    if op is None:
        return None
    state = states["one_store"]
    n = 200 if key not in ("walk",) else 5
    if key == "delete":
        n = min(n, len(state.inserted))
        if n == 0:
            return None
    args = op.bind(state, op.make(random.Random(f"profile-{key}"), n, len(state.keys)))

    def calls() -> None:
        out = [op.call(state.peer, a) for a in args]
        if key == "insert":
            state.inserted.extend(out)

    return calls


def _profile_table(prof: cProfile.Profile, limit: int = 15) -> str:
    stats = pstats.Stats(prof, stream=io.StringIO())
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in raw.values()) or 1.0
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:limit]
    lines = ["| function | calls | own % | cum % |", "|---|---|---|---|"]
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in rows:
        where = _short(filename)
        name = f"`{where}:{line} {func}`" if line else f"`{func}`"
        lines.append(
            f"| {name} | {nc} | {100 * tt / total:.1f} | {100 * ct / total:.1f} |"
        )
    return "\n".join(lines)


def _short(filename: str) -> str:
    for marker in ("one_store/", "benchmarks/", "site-packages/", "lib/python3"):
        if marker in filename:
            return filename[filename.index(marker) :]
    return filename


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="≤ 1 minute: small tables")
    mode.add_argument(
        "--smoke", action="store_true", help="seconds: tiny tables (tests)"
    )
    parser.add_argument(
        "--scale", action="store_true", help="add 1,000,000-document lookups"
    )
    parser.add_argument(
        "--out", type=Path, default=HERE, help="where to write RESULTS.md etc."
    )
    parser.add_argument(
        "--stores", help="comma-separated subset (raw sqlite3 always runs)"
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the cProfile section"
    )
    parser.add_argument(
        "--workdir", type=Path, help="where store files go (default: a temp dir)"
    )
    parser.add_argument(
        "--gc", action="store_true", help="leave the garbage collector on in slices"
    )
    parser.add_argument(
        "--no-search",
        action="store_true",
        help="the table has no search index (no FTS5 table; no text search)",
    )
    parser.add_argument(
        "--large",
        action="store_true",
        help="documents carry 10-100 KB of notes (smaller tables, see --help)",
    )
    parser.add_argument(
        "--synchronous",
        choices=("NORMAL", "FULL"),
        default="NORMAL",
        help="the SQLite synchronous setting of every store",
    )
    parser.add_argument(
        "--no-scale", action="store_true", help="skip the scale section"
    )
    args = parser.parse_args(argv)
    TIMING.gc = args.gc
    SETTINGS.search = not args.no_search
    SETTINGS.synchronous = args.synchronous
    if args.large:
        SETTINGS.notes_kb = (10, 100)

    mode_name = "quick" if args.quick else "smoke" if args.smoke else "default"
    sizes = PROFILES[mode_name]
    if args.large:
        # 10-100 KB documents: a 100,000-document table would be ~5.5 GB per
        # store; a tenth of the documents (and of the bulk load) is the same
        # shape at a size this machine's disk and time allow.
        sizes = dataclasses.replace(sizes, main=sizes.main // 10, bulk=sizes.bulk // 10)
    scale_sizes = (
        []
        if args.no_scale or args.large
        else [*sizes.scale, *([1_000_000] if args.scale else [])]
    )
    only = set(args.stores.split(",")) if args.stores else None
    classes = peer_classes(only)
    given = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(["python benchmarks/run.py", *given])
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="one_store_bench-", dir=args.workdir))
    try:
        report = run_all(
            classes,
            sizes,
            scale_sizes,
            workdir,
            mode_name,
            command,
            not args.no_profile,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.notes.append(f"Whole run took {time.perf_counter() - started:.0f} s.")
    args.out.mkdir(parents=True, exist_ok=True)
    env = environment()
    plot_name = "results.png"
    plot(args.out / plot_name, report)
    write_results(args.out / "RESULTS.md", render(report, env, plot_name))
    write_json(args.out / "results.json", report, env)
    log(f"wrote {args.out / 'RESULTS.md'} in {time.perf_counter() - started:.0f}s")
    return 0


def _prepare_ten(cls: type[Peer], path: Path, doc: Doc) -> tuple[type[Peer], Path, Any]:
    try:
        return cls, path, cls.prepare_ten(path, doc)
    except Exception as exc:  # reported as this store's error in the table
        return cls, path, exc


def run_all(
    classes: dict[str, type[Peer]],
    sizes: Sizes,
    scale_sizes: Sequence[int],
    workdir: Path,
    mode: str,
    command: str,
    profile: bool,
) -> Report:
    names = list(classes)
    report = Report(
        command=command,
        mode=mode,
        sizes={
            "table": sizes.main,
            "repetitions": sizes.reps,
            "slice": f"{sizes.slice_s}s",
            "bulk": sizes.bulk,
            "scale": "/".join(f"{s:,}" for s in scale_sizes) or "skipped",
            "workload": (
                f"search index {'yes' if SETTINGS.search else 'no'}, "
                f"synchronous={SETTINGS.synchronous}, "
                + (
                    f"notes {SETTINGS.notes_kb[0]}-{SETTINGS.notes_kb[1]} KB"
                    if SETTINGS.notes_kb
                    else "~350 B documents"
                )
                + f", {SETTINGS.cache_mib} MiB page cache"
            ),
        },
    )
    states = load(classes, sizes.main, workdir, "main", report.notes)
    for note in verify(states, sizes.main):
        log(f"verify: {note}")
        report.notes.append(note)
    log(f"operations on a table of {sizes.main:,} documents")
    ops = [op for op in OPS if SETTINGS.search or op.key != "search"]
    op_data = measure_ops(states, ops, sizes, sizes.main, log)
    report.sections.append(
        Section(
            title=f"Operations on a table of {sizes.main:,} messages",
            note="µs per operation. Each write is its own transaction; reads return "
            "documents as dicts.",
            unit="µs/op",
            rows=[(op.key, op.label, op.target) for op in ops],
            data=op_data,
            stores=names,
        )
    )

    def fresh(cls: type[Peer]) -> Callable[[int, int], Peer]:
        return lambda rep, turn: cls.create(
            workdir / f"bulk-{_slug(cls.name)}-{rep}-{turn}.db"
        )

    bulk_data = measure_bulk({n: fresh(c) for n, c in classes.items()}, sizes, log)
    seed_doc = make_docs(1, seed=5)[0]
    seed_doc.pop("notes", None)  # the 10-table schema is the plain message's
    ten = {
        n: _prepare_ten(c, workdir / f"ten-{_slug(n)}.db", seed_doc)
        for n, c in classes.items()
    }
    open_data = measure_open(ten, sizes, log)
    bulk_op = Op("bulk", "", lambda *_: [], lambda *_: None)
    report.sections.append(
        Section(
            title="Bulk insert and cold start",
            note=f"Bulk: µs per document inserting {sizes.bulk:,} documents into an "
            "empty store, in transactions of 8,000 (one_store: one mutation each; "
            "Convex allows 16,000 writes per transaction). Cold start: µs to open a "
            "file whose schema has 10 tables, read one document and close.",
            unit="µs",
            rows=[
                (bulk_op.key, "bulk insert (µs per doc)", 1.5),
                ("open", "open store, 10-table schema", None),
            ],
            data=[*bulk_data, *open_data],
            stores=names,
        )
    )
    for m in bulk_data:
        if m.samples:
            report.notes.append(f"bulk insert, {m.store}: {1e6 / m.median:,.0f} docs/s")
    if profile:
        report.profile = profile_one_store(report.sections, states, sizes, workdir)
    for state in states.values():
        state.peer.close()
    if scale_sizes:
        chosen = [n for n in SCALE_STORES if n in classes]
        report.scale = scale.measure(
            scale_sizes,
            chosen,
            workdir,
            sizes.reps,
            sizes.slice_s,
            cold_reps=max(1, sizes.reps // 2),
            log=log,
        )
    return report


if __name__ == "__main__":
    raise SystemExit(main())

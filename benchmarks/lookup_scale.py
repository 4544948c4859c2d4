"""one_store's get by ID at 10,000 and at 1,000,000 documents, per page-cache size.

Usage (from the repository root)::

    python benchmarks/lookup_scale.py                   # builds both files (~1 min)
    python benchmarks/lookup_scale.py --big 300000 --workdir /tmp/lookups

The scale section of ``run.py`` measures the same thing among a dozen open stores
right after loading them, which makes its 1M-to-10k ratio swing between runs. This
takes one store at a time: open the file, then run rounds of 2,000 untimed and
20,000 timed gets of random IDs on it (a long-lived store: later rounds find what
earlier ones cached) and keep the best round, for each ``cache_mib`` given
(``Store.open``'s page cache; SQLite's own default is 2 MiB). A diagnostic, not
part of ``run.py``.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.peers.one_store_peer import SCHEMA, OneStorePeer
from benchmarks.workload import make_docs
from one_store import Store

CHUNK = 100_000


def build(path: Path, size: int) -> list[str]:
    """The IDs of a file holding ``size`` messages (made once, then reused)."""
    ids_file = path.with_suffix(".ids")
    if not path.exists() or not ids_file.exists():
        path.unlink(missing_ok=True)
        peer = OneStorePeer.create(path)
        keys: list[str] = []
        for start in range(0, size, CHUNK):
            keys += peer.bulk_insert(make_docs(min(CHUNK, size - start), start))
        peer.close()
        ids_file.write_text("\n".join(keys))
    return ids_file.read_text().split("\n")


def gets(peer: OneStorePeer, keys: list[str], seed: int) -> float:
    """µs per get over 20,000 random IDs (after 2,000 untimed ones)."""
    rng = random.Random(seed)
    sample = [keys[rng.randrange(len(keys))] for _ in range(22_000)]
    for key in sample[:2_000]:
        peer.get(key)
    gc.disable()
    start = time.perf_counter()
    for key in sample[2_000:]:
        peer.get(key)
    elapsed = time.perf_counter() - start
    gc.enable()
    return elapsed / 20_000 * 1e6


def best_of(path: Path, keys: list[str], cache_mib: int, rounds: int) -> float:
    """Best round on one open store: later rounds run on the cache earlier ones filled."""
    peer = OneStorePeer(Store.open(path, schema=SCHEMA, cache_mib=cache_mib))
    try:
        return min(gets(peer, keys, seed) for seed in range(rounds))
    finally:
        peer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--cache-mib", type=int, nargs="+", default=[2, 64])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/one_store_lookups"))
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    files = {
        size: (
            args.workdir / f"messages-{size}.db",
            build(args.workdir / f"messages-{size}.db", size),
        )
        for size in (args.small, args.big)
    }
    print(f"get by ID, µs (best of {args.rounds} rounds of 20,000 random IDs)")
    for cache in args.cache_mib:
        best = {
            size: best_of(path, keys, cache, args.rounds)
            for size, (path, keys) in files.items()
        }
        small, big = best[args.small], best[args.big]
        print(
            f"  cache_mib={cache:<4d} {args.small:,}: {small:5.1f}  "
            f"{args.big:,}: {big:5.1f}  ratio {big / small:.2f}"
        )


if __name__ == "__main__":
    main()

"""A 200 MB file is stored and read back with flat memory (peak RSS, in a child).

The child measures its own peak resident set size (``ru_maxrss``) before and
after storing 200 MB (streamed from a generator of 1 MiB pieces, as a file
object or an upload is) and reading it back through ``store.files.open``. A
whole-file copy anywhere on the way would raise the peak by 200 MB; the bound
allows a few MiB of buffers. Memory, not time, is what passes or fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SIZE = 200 * 1024 * 1024
BOUND = 32 * 1024 * 1024

CHILD = textwrap.dedent(
    """
    import hashlib, json, resource, sys
    from one_store import Store

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

    size, db = int(sys.argv[1]), sys.argv[2]
    piece = bytes(range(256)) * 4096  # 1 MiB
    with Store.open(db) as store:
        store.files.store(b"warm up").unwrap()
        before = peak()
        def pieces():
            for _ in range(size // len(piece)):
                yield piece
        sid = store.files.store(pieces(), "application/octet-stream").unwrap()
        stored = peak()
        digest, total = hashlib.sha256(), 0
        with store.files.open(sid).unwrap() as body:
            while chunk := body.read(1 << 20):
                digest.update(chunk)
                total += len(chunk)
        expected = hashlib.sha256()
        for _ in range(size // len(piece)):
            expected.update(piece)
        meta = store.files.metadata(sid).unwrap()
        print(json.dumps({
            "before": before, "stored": stored, "read": peak(), "total": total,
            "size": meta["size"], "same": digest.digest() == expected.digest(),
        }))
    """
)


def test_a_200_mb_file_is_stored_and_read_with_flat_memory(tmp_path: Path):
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(SIZE), str(tmp_path / "big.db")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["total"] == SIZE
    assert out["same"]
    assert out["size"] == SIZE
    assert out["stored"] - out["before"] < BOUND, out
    assert out["read"] - out["before"] < BOUND, out

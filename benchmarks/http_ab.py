"""Server CPU per HTTP request of several server variants, paired in one run.

Usage (from the repository root)::

    python benchmarks/http_ab.py VARIANT [VARIANT ...] [--requests 2000 --rounds 5]

A VARIANT is ``TREE:HTTP:LOOP[:MODE]``: a source tree of one_store (a checkout, or
``git archive <commit> | tar -x -C DIR``), uvicorn's HTTP protocol (``h11``,
``httptools``, or ``serve`` for the protocol ``one-store serve`` uses in that
tree), its loop (``asyncio`` or ``uvloop``), and ``thread`` to run queries and
mutations on worker threads where the tree runs them on the event loop. Every
variant serves the HTTP test app from its own process at once; each round sends
``--requests`` ``notes:add`` mutations to each in turn over one ``http.client``
keep-alive connection, and reads the server process's CPU time from ``/proc``.
CPU time per request is the robust figure on a shared machine; wall time moves
with the load. This is how the steps in RESULTS.md's "HTTP API" were measured.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "acceptance" / "apps" / "http_app"
BODY = json.dumps({"path": "notes:add", "args": {"text": "hello from the benchmark"}})


def child(db: str, http: str, loop: str, mode: str) -> None:
    """Serve ``db`` from this tree (on ``sys.path``) with the given uvicorn setup."""
    import uvicorn

    from one_store import Store
    from one_store.server import http_api
    from one_store.server.sync import WEBSOCKETS

    if mode == "thread":  # queries and mutations back on worker threads
        from one_store.server import call_endpoint
        from one_store.server.sync_subscriptions import run_call

        async def run(spec, args, store):  # type: ignore[no-untyped-def]
            return await call_endpoint.run_in_thread(run_call, store, spec, args)

        call_endpoint.run = run
    protocol: object = http
    if http == "serve":
        from one_store.server.http_protocol import HttpProtocol

        protocol = HttpProtocol
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Store.open(db, app=APP) as store:
        sock = http_api.bind("127.0.0.1", 0)
        config = uvicorn.Config(
            http_api.create_app(store),
            http=protocol,  # type: ignore[arg-type]  # a class or a name, both accepted
            loop=loop,
            log_level="warning",
            lifespan="off",
            **WEBSOCKETS,
        )
        print(http_api.url_of(sock), flush=True)
        uvicorn.Server(config).run(sockets=[sock])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send(port: int, count: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"content-type": "application/json"}
    for _ in range(count):
        connection.request("POST", "/api/mutation", BODY, headers)
        answer = connection.getresponse().read()
    connection.close()
    if b'"success"' not in answer:
        raise RuntimeError(answer.decode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args(argv)
    folder = tempfile.mkdtemp()
    servers: list[tuple[subprocess.Popen[str], int]] = []
    try:
        for i, variant in enumerate(options.variants):
            tree, http, loop, *mode = variant.split(":")
            process = subprocess.Popen(
                [sys.executable, __file__, "--child", f"{folder}/{i}.db", http, loop]
                + (mode or ["inline"]),
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(Path(tree).resolve())},
            )
            assert process.stdout is not None
            found = re.search(r":(\d+)$", process.stdout.readline().strip())
            if found is None:
                raise RuntimeError(f"{variant} did not start")
            servers.append((process, int(found.group(1))))
        for _, port in servers:
            send(port, 300)  # warm up
        cpu: list[list[float]] = [[] for _ in servers]
        wall: list[list[float]] = [[] for _ in servers]
        for _ in range(options.rounds):
            for i, (process, port) in enumerate(servers):
                before, start = cpu_seconds(process.pid), time.perf_counter()
                send(port, options.requests)
                elapsed = time.perf_counter() - start
                cpu[i].append(
                    1e6 * (cpu_seconds(process.pid) - before) / options.requests
                )
                wall[i].append(1e6 * elapsed / options.requests)
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(30)
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("| variant | server CPU µs/request (median) | per round | wall µs/request |")
    print("| --- | ---: | --- | ---: |")
    for variant, c, w in zip(options.variants, cpu, wall, strict=True):
        rounds = ", ".join(f"{x:.0f}" for x in c)
        print(
            f"| `{variant}` | {statistics.median(c):,.0f} | {rounds} "
            f"| {statistics.median(w):,.0f} |"
        )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(*sys.argv[2:6])
        raise SystemExit(0)
    raise SystemExit(main())

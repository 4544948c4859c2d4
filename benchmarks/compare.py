"""Compare recorded runs: one store's paired ratios to raw sqlite3, side by side.

Usage (from the repository root)::

    python benchmarks/compare.py runs/before.json runs/after.json [--store one_store]

Prints a Markdown table: per operation, each run's median paired ratio (to raw
sqlite3, or to ``--against`` another store) with its 95% bootstrap interval (recomputed from the samples in the JSON, so any run
``run.py`` wrote can be compared), and the target's verdict on the last run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import OPS, RAW
from benchmarks.stats import Ratio, paired_ratio

TARGETS: dict[str, float | None] = {op.key: op.target for op in OPS}
TARGETS.update({"bulk": 1.5, "open": None})
LABELS = {op.key: op.label for op in OPS}
LABELS.update({"bulk": "bulk insert (per document)", "open": "open store, 10 tables"})


def ratios(path: Path, store: str, reference: str = RAW) -> dict[str, Ratio]:
    """Per operation, ``store``'s paired ratio to ``reference`` in the run at ``path``."""
    data: dict[str, Any] = json.loads(path.read_text())
    out: dict[str, Ratio] = {}
    for section in data["sections"]:
        found = {(m["op"], m["store"]): m["samples"] for m in section["measurements"]}
        for (op, name), samples in found.items():
            raw = found.get((op, reference))
            if name == store and samples and raw:
                r = paired_ratio(samples, raw, seed=f"{op}-{store}")
                if r is not None:
                    out[op] = r
    return out


def table(paths: list[Path], names: list[str], store: str, reference: str = RAW) -> str:
    """The Markdown comparison of ``paths`` (columns headed by ``names``)."""
    runs = [ratios(p, store, reference) for p in paths]
    ops = [op for op in LABELS if any(op in r for r in runs)]
    head = ["operation", *names, "target", "last run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for op in ops:
        cells = []
        for run in runs:
            r = run.get(op)
            cells.append(
                f"{r.median:.2f}\u00d7 [{r.low:.2f}\u2013{r.high:.2f}]" if r else "n/a"
            )
        # Against another store the question is only "faster?" (below 1.0).
        target = TARGETS.get(op) if reference == RAW else 1.0
        last = runs[-1].get(op)
        verdict = last.verdict(target) if (target and last) else "\u2013"
        goal = f"\u2264 {target}\u00d7" if target else "\u2013"
        lines.append("| " + " | ".join([LABELS[op], *cells, goal, verdict]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--store", default="one_store")
    parser.add_argument("--against", default=RAW, help="the reference store")
    parser.add_argument("--names", help="comma-separated column names")
    args = parser.parse_args(argv)
    names = args.names.split(",") if args.names else [p.stem for p in args.runs]
    print(table(args.runs, names, args.store, args.against))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

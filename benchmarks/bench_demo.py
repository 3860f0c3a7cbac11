"""Time a full-size build of the demo company into a temporary file.

Run by hand: ``.venv/bin/python benchmarks/bench_demo.py [--scale 1.0]``.
Prints the build time (seconds, wall clock, including the commit) and the row
counts of the tables written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dealcase import store  # noqa: E402
from dealcase.demo import build_demo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--today", type=dt.date.fromisoformat, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo.duckdb"
        started = time.perf_counter()
        with store.connect(path) as con:
            report = build_demo(con, seed=args.seed, scale=args.scale, today=args.today)
        seconds = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6

    doc = report.doc
    print(f"scale {args.scale}, seed {args.seed}, today {doc['today']}")
    print(f"build: {seconds:.2f} s (generator reports {doc['seconds']:.2f} s)")
    print(f"file: {size_mb:.1f} MB")
    for key in (
        "deals",
        "won",
        "lost",
        "open",
        "teams",
        "reps",
        "history_rows",
        "answers",
        "stakeholders",
    ):
        print(f"{key:>13}: {doc[key]:,}")


if __name__ == "__main__":
    main()

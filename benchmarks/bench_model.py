"""Speed of the close-likelihood model: training on 100,000 historical rows
and scoring 100,000 open deals.

Run by hand: ``.venv/bin/python benchmarks/bench_model.py [--rows N]``.
Builds two synthetic databases in a temporary folder
(:mod:`dealcase.model_synthetic`) and prints wall-clock and CPU seconds of
each step. Targets: training under 30 s, scoring under 2 s, on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from dealcase import features as feat
from dealcase import model as M
from dealcase import store
from dealcase.model_synthetic import write_synthetic_deals

TODAY = dt.date(2025, 6, 30)


class Clock:
    def __init__(self, label: str):
        self.label = label

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        print(f"{self.label:<46} {self.wall:7.2f} s wall {self.cpu:7.2f} s cpu")


def bench_training(folder: Path, rows: int) -> M.CloseModel:
    # about 14 weekly snapshots per closed deal
    path = folder / "history.duckdb"
    with store.connect(path) as con:
        write_synthetic_deals(con, int(rows / 13), seed=11, today=TODAY, years=3.0)
        with Clock("training rows (snapshot features)") as build:
            frame = M.training_frame(con, TODAY)
        print(f"  {len(frame):,} rows of {frame['deal_id'].nunique():,} closed deals")
        frame = frame.iloc[:rows]
        with Clock("fit: candidates, calibration, final fit") as fit:
            model = M.fit_rows(frame, order=frame["closed_at"])
        print(
            f"  chosen {model.kind}; fold log loss "
            + ", ".join(
                f"{k} {v['log_loss']:.4f}"
                for k, v in model.choice["candidates"].items()
            )
        )
        print(
            f"training total: {build.wall + fit.wall:.2f} s wall, "
            f"{build.cpu + fit.cpu:.2f} s cpu"
        )
        other = "logistic" if model.kind != "logistic" else "hist_gradient_boosting"
        second = M.fit_rows(frame, order=frame["closed_at"], kinds=(other,))
    return model, second


def bench_scoring(folder: Path, deals: int, models) -> None:
    path = folder / "open.duckdb"
    with store.connect(path) as con:
        # a short recent span leaves most deals open on TODAY
        write_synthetic_deals(con, int(deals * 1.6), seed=12, today=TODAY, years=0.2)
        probes = feat.open_probes(con, TODAY).iloc[:deals]
        print(f"  {len(probes):,} open deals")
        with Clock("features of the open deals") as build:
            rows = feat.snapshot_features(con, probes)
    for model in models:
        with Clock(f"{model.kind}: scores only (vectorised)") as scored:
            M.score_rows(model, rows, reasons=False)
        print(
            f"scoring total with features ({model.kind}): "
            f"{build.wall + scored.wall:.2f} s wall, "
            f"{build.cpu + scored.cpu:.2f} s cpu"
        )
        with Clock(f"{model.kind}: scores and reasons, 300 deals"):
            M.score_rows(model, rows.iloc[:300])
        with Clock(f"{model.kind}: scores and reasons, all deals"):
            M.score_rows(model, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        models = bench_training(Path(folder), args.rows)
        bench_scoring(Path(folder), args.rows, models)


if __name__ == "__main__":
    main()

"""Speed and memory of the forecast's fast path, and agreement with the
plain Monte Carlo.

Run by hand: ``.venv/bin/python benchmarks/bench_forecast.py``. Prints, for
10,000 open deals (a filter change on the Forecast page) and for 100,000 open
deals with 10,000 draws: wall time, peak memory traced by Python (numpy
allocations included) and the P10/P50/P90 of the fast path beside the
reference simulation.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dealcase.forecast import quarter_distribution  # noqa: E402
from dealcase.newbusiness import NewBusinessPart  # noqa: E402


def pipeline(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    amounts = rng.lognormal(10, 1.3, n)
    probabilities = rng.beta(1.2, 3, n)
    teams = rng.integers(0, 8, n)
    names = [f"team {i}" for i in range(8)]
    parts = [NewBusinessPart(name, 40.0, rng.lognormal(10, 1.3, 200)) for name in names]
    return amounts, probabilities, teams, names, parts


def measure(n: int, draws: int, exact_deals, repeats: int = 3):
    """Best wall time of ``repeats`` runs, then one traced run for memory."""
    amounts, probabilities, teams, names, parts = pipeline(n)

    def run():
        return quarter_distribution(
            amounts,
            probabilities,
            group_index=teams,
            group_names=names,
            new_business=parts,
            sigma=0.08,
            draws=draws,
            seed=0,
            exact_deals=exact_deals,
        )

    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        seconds.append(time.perf_counter() - started)
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    quantiles = np.quantile(result.company, [0.1, 0.5, 0.9])
    return min(seconds), peak / 2**20, quantiles


def main() -> None:
    print(f"{'case':42} {'seconds':>8} {'peak MiB':>9}   P10 / P50 / P90")
    for label, n, draws, exact, repeats in [
        ("10,000 deals, 10,000 draws, fast path", 10_000, 10_000, 256, 3),
        ("100,000 deals, 10,000 draws, fast path", 100_000, 10_000, 256, 3),
        ("100,000 deals, 10,000 draws, reference MC", 100_000, 10_000, None, 1),
    ]:
        seconds, peak, q = measure(n, draws, exact, repeats)
        print(
            f"{label:42} {seconds:8.3f} {peak:9.1f}   "
            f"{q[0]:,.0f} / {q[1]:,.0f} / {q[2]:,.0f}"
        )


if __name__ == "__main__":
    main()

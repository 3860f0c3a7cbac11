"""Time a team filter change on the Forecast page with about 10,000 open deals.

Run by hand: ``.venv/bin/python benchmarks/bench_forecast_page.py``. The target
is under 300 ms per filter change with 10,000 open deals.

The database is built in a temporary folder with the synthetic writer of
:mod:`dealcase.model_synthetic` (the demo company stops at about 8,300 open
deals at its largest scale): ``--deals`` deals over two years, of which those
not closed by ``today`` are open (73,000 deals give about 10,000 open), and a
close-likelihood model is trained and stored so the page loads it rather than
fit one. The real app (``app.py``) is then driven with Streamlit's
``AppTest``: one run on "All" teams fills the caches, then the sidebar's team
filter is changed to each team in turn (first view of that team) and back to
teams already shown. Each figure is the wall time of one ``AppTest.run()``:
the whole script rerun, including AppTest's own reading of the page's output,
so it is an upper bound of the server's work for that rerun.

Last, the library part alone: :func:`dealcase.forecast.forecast_inputs` once
(scoring, timing fit, new business: what the page caches per grouping), then
the fast path on those cached inputs, :func:`forecast_from_inputs` and the
page's extra :func:`quarter_distribution` for its histogram, several times.

Prints the number of open deals, each rerun's milliseconds and the median and
max per kind. Takes under two minutes, about half of it the model training.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dealcase import forecast as fc  # noqa: E402
from dealcase import store  # noqa: E402
from dealcase.model import load_model, train_model  # noqa: E402
from dealcase.model_synthetic import write_synthetic_deals  # noqa: E402
from dealcase.periods import quarter_of  # noqa: E402
from dealcase.timing import open_deal_state  # noqa: E402

TODAY = dt.date(2025, 11, 14)
LIBRARY_REPEATS = 5


def build(path: Path, deals: int, seed: int) -> None:
    """Write the synthetic deals and store a model trained as of ``TODAY``."""
    started = time.perf_counter()
    with store.connect(path) as con:
        write_synthetic_deals(con, deals, seed=seed, today=TODAY)
    print(f"database written: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    with store.connect(path) as con:
        report = train_model(con)
    print(
        f"model trained and stored ({report.doc['kind']}, "
        f"{report.doc['closed_deals']:,} closed deals): "
        f"{time.perf_counter() - started:.1f} s"
    )


def open_deal_counts(path: Path, quarter) -> tuple[int, int]:
    """Open deals at the end of ``TODAY``: all of them, and those dated in
    ``quarter`` (the rest enter the forecast with a small pull-in chance)."""
    with store.connect(path, read_only=True) as con:
        states = open_deal_state(con, TODAY)
    dates = pd.to_datetime(states["close_date"]).dt.date
    inside = ((dates >= quarter.start) & (dates <= quarter.end)).sum()
    return len(states), int(inside)


def check(at, team: str | None, quarter: str) -> None:
    """Stop when the page failed or does not show the team asked for."""
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    if problems:
        raise SystemExit(f"the Forecast page failed: {problems}")
    scope = f"team {team}" if team else "the company"
    wanted = f"{quarter} for {scope}"
    if wanted not in [s.value for s in at.subheader]:
        raise SystemExit(f"the page does not show '{wanted}'")


def page_timings(path: Path, quarter: str) -> list[tuple[str, str, float]]:
    """Drive the Forecast page; (team, kind, milliseconds) per rerun."""
    from streamlit.testing.v1 import AppTest

    # AppTest's setup warns once that no script is running yet; that is expected.
    logging.getLogger(
        "streamlit.runtime.scriptrunner_utils.script_run_context"
    ).setLevel(logging.ERROR)
    os.environ["DEALCASE_DB"] = str(path)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params.update({"quarter": quarter})
    started = time.perf_counter()
    at.run()
    warm_ms = (time.perf_counter() - started) * 1000
    check(at, None, quarter)
    print(f"first load (All teams, caches cold): {warm_ms:,.0f} ms")

    teams = [t for t in at.selectbox(key="sidebar_team").options if t != "All"]
    # Each team once (first view), then back to teams already shown and to All.
    plan = [(t, "first view of a team") for t in teams]
    plan += [(t, "team already seen") for t in teams[::-1]]
    plan += [("All", "team already seen"), (teams[0], "team already seen")]
    timings = []
    for team, kind in plan:
        at.selectbox(key="sidebar_team").select(team)
        started = time.perf_counter()
        at.run()
        ms = (time.perf_counter() - started) * 1000
        check(at, None if team == "All" else team, quarter)
        timings.append((team, kind, ms))
        print(f"  {team:<10} {kind:<22} {ms:8,.0f} ms")
    return timings


def library_timings(path: Path, quarter: str) -> None:
    """The forecast's inputs once per grouping, then the fast path on them."""
    with store.connect(path, read_only=True) as con:
        model = load_model(con, TODAY)
        for by in ("team", "owner"):
            started = time.perf_counter()
            inputs = fc.forecast_inputs(con, quarter, TODAY, by=by, model=model)
            seconds = time.perf_counter() - started
            print(
                f"  forecast_inputs by {by:<5} (once, cached by the page): "
                f"{seconds * 1000:8,.0f} ms"
            )
    open_deals = inputs.open_deals
    names = inputs.group_names
    index = {name: i for i, name in enumerate(names)}
    amounts = open_deals["amount"].to_numpy(dtype=float)
    draws = 10_000
    exact = None if len(amounts) * draws <= fc.FULL_SIMULATION_LIMIT else fc.EXACT_DEALS

    def histogram_draws():
        return fc.quarter_distribution(
            amounts,
            open_deals["p_in_quarter"].to_numpy(dtype=float),
            group_index=open_deals["group"].map(index).to_numpy(dtype=int),
            group_names=names,
            new_business=inputs.new_business,
            sigma=inputs.sigma,
            draws=draws,
            seed=0,
            exact_deals=exact,
        )

    for label, run in (
        ("forecast_from_inputs (by owner)", lambda: fc.forecast_from_inputs(inputs)),
        ("quarter_distribution alone", histogram_draws),
    ):
        seconds = []
        for _ in range(LIBRARY_REPEATS):
            started = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - started)
        print(
            f"  {label:<38} median {statistics.median(seconds) * 1000:6,.0f} ms, "
            f"max {max(seconds) * 1000:6,.0f} ms ({LIBRARY_REPEATS} runs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--deals", type=int, default=73_000, help="synthetic deals (all, not open)"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    quarter = quarter_of(TODAY, 1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "forecast_page.duckdb"
        build(path, args.deals, args.seed)
        total, inside = open_deal_counts(path, quarter)
        print(f"open deals at {TODAY}: {total:,} ({inside:,} dated in {quarter.name})")
        timings = page_timings(path, quarter.name)
        print("Forecast page, team filter changes (AppTest.run wall time):")
        for kind in ("first view of a team", "team already seen"):
            values = [ms for _, k, ms in timings if k == kind]
            print(
                f"  {kind:<22} median {statistics.median(values):7,.0f} ms, "
                f"max {max(values):7,.0f} ms ({len(values)} reruns)"
            )
        print("Library part alone:")
        library_timings(path, quarter.name)


if __name__ == "__main__":
    main()

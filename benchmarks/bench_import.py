"""Time a large Salesforce import against reading the same files with pandas.

Generates a Data Export of 1,000,000 opportunities (``Opportunity.csv``, every
value quoted, a few multi-line descriptions) and 3,000,000 history rows
(``OpportunityHistory.csv``) in a temporary folder, then, each in a fresh
process so that peak memory is the import's own:

1. ``pandas.read_csv(..., dtype=str)`` of both files (the baseline);
2. ``dealcase.importing.import_files(source="salesforce")`` into a new
   DuckDB file.

Prints wall time and peak resident memory of each, and their ratio. Targets:
the import under 20 s and 2 GB. Run by hand::

    .venv/bin/python benchmarks/bench_import.py [--deals 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

ROOT = Path(__file__).resolve().parent.parent
STAGES = [
    ("Prospecting", 10, "Pipeline"),
    ("Qualification", 20, "Pipeline"),
    ("Needs Analysis", 40, "Pipeline"),
    ("Proposal/Price Quote", 60, "BestCase"),
    ("Negotiation/Review", 80, "Commit"),
    ("Closed Won", 100, "Closed"),
    ("Closed Lost", 0, "Omitted"),
]


def _ids(prefix: str, numbers: np.ndarray) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), 15))


def _write(path: Path, columns: dict) -> None:
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    pa_csv.write_csv(
        table, path, write_options=pa_csv.WriteOptions(quoting_style="all_valid")
    )


def generate(folder: Path, n_deals: int, seed: int = 0) -> tuple[Path, Path]:
    """Write Opportunity.csv and OpportunityHistory.csv (3 rows per deal)."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2022-01-01")
    created = start + rng.integers(0, 3 * 365, n_deals).astype("timedelta64[D]")
    cycle = rng.integers(20, 200, n_deals).astype("timedelta64[D]")
    close = created + cycle
    final = rng.choice(len(STAGES), n_deals, p=[0.1, 0.1, 0.1, 0.1, 0.1, 0.25, 0.25])
    amounts = np.round(rng.lognormal(9.5, 1.0, n_deals), 2)
    stage_names = np.array([s[0] for s in STAGES])
    probabilities = np.array([s[1] for s in STAGES])
    categories = np.array([s[2] for s in STAGES])
    closed = final >= 5
    won = final == 5
    ids = _ids("006", np.arange(n_deals))
    description = np.full(n_deals, "Renewal of the yearly service contract", object)
    description[::5000] = "Multi-line note, with a comma\nsecond line\nthird line"
    timestamp = np.datetime_as_string(created.astype("datetime64[s]") + 36000)
    opportunity = {
        "Id": ids,
        "IsDeleted": np.full(n_deals, "0"),
        "AccountId": _ids("001", rng.integers(0, 50_000, n_deals)),
        "Name": np.char.add("Deal ", np.arange(n_deals).astype(str)),
        "Description": description,
        "StageName": stage_names[final],
        "Amount": amounts.astype(str),
        "Probability": probabilities[final].astype(str),
        "CloseDate": np.datetime_as_string(close),
        "Type": np.full(n_deals, "New Customer"),
        "NextStep": np.full(n_deals, ""),
        "LeadSource": np.full(n_deals, "Web"),
        "IsClosed": closed.astype(int).astype(str),
        "IsWon": won.astype(int).astype(str),
        "ForecastCategoryName": categories[final],
        "CurrencyIsoCode": np.full(n_deals, "USD"),
        "OwnerId": _ids("005", rng.integers(0, 400, n_deals)),
        "CreatedDate": np.char.replace(timestamp, "T", " "),
        "LastModifiedDate": np.char.replace(
            np.datetime_as_string(close.astype("datetime64[s]") + 3600), "T", " "
        ),
    }
    opportunity_path = folder / "Opportunity.csv"
    _write(opportunity_path, opportunity)
    del opportunity

    # Three versions per deal: created at an early stage, a middle stage,
    # then the final state on the close date.
    n_rows = 3 * n_deals
    deal = np.repeat(np.arange(n_deals), 3)
    step = np.tile(np.arange(3), n_deals)
    offsets = np.stack(
        [np.zeros(n_deals), cycle.astype(int) // 2, cycle.astype(int)], axis=1
    ).ravel()
    moment = (
        created[deal].astype("datetime64[s]")
        + 36000
        + (offsets * 86400).astype("timedelta64[s]")
        + step
    )
    stage_index = np.where(step == 0, 0, np.where(step == 1, 2, final[deal]))
    drift = np.where(step == 2, 1.0, rng.uniform(0.8, 1.2, n_rows))
    history = {
        "Id": _ids("008", np.arange(n_rows)),
        "OpportunityId": ids[deal],
        "CreatedById": np.full(n_rows, "005000000000001AAA"),
        "CreatedDate": np.char.replace(np.datetime_as_string(moment), "T", " "),
        "StageName": stage_names[stage_index],
        "Amount": np.round(amounts[deal] * drift, 2).astype(str),
        "CloseDate": np.datetime_as_string(close[deal]),
        "Probability": probabilities[stage_index].astype(str),
        "ForecastCategory": categories[stage_index],
        "IsDeleted": np.full(n_rows, "0"),
    }
    history_path = folder / "OpportunityHistory.csv"
    _write(history_path, history)
    return opportunity_path, history_path


def _peak_mb() -> float:
    """Peak resident memory of this process in MB.

    VmHWM starts afresh when a process runs a new program; ru_maxrss would
    carry over the peak of the parent that generated the files.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _cpu_seconds() -> float:
    """User and system CPU time of this process so far (the machine may be
    shared: wall time then overstates the import's own cost)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_pandas(opportunity: Path, history: Path) -> dict:
    started = time.perf_counter()
    frames = [
        pd.read_csv(p, dtype=str, keep_default_na=False) for p in (opportunity, history)
    ]
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds(),
        "rows": sum(len(f) for f in frames),
        "peak_mb": _peak_mb(),
    }


def run_readers(opportunity: Path, history: Path) -> dict:
    """read_table of both files plus the value parsers on their columns."""
    sys.path.insert(0, str(ROOT))
    from dealcase.importing import parsing
    from dealcase.importing.readers import read_table

    started = time.perf_counter()
    opportunities = read_table(opportunity)
    versions = read_table(history)
    read_seconds = time.perf_counter() - started
    for raw in (opportunities, versions):
        frame, where = raw.frame, {"line_numbers": raw.line_numbers}
        parsing.parse_money(frame["Amount"], column="Amount", **where)
        parsing.parse_dates(frame["CloseDate"], column="CloseDate", **where)
        parsing.parse_timestamps(frame["CreatedDate"], column="CreatedDate", **where)
        parsing.parse_probability(frame["Probability"], column="Probability", **where)
    parsing.clean_id(opportunities.frame["AccountId"])
    parsing.parse_bool(opportunities.frame["IsWon"], column="IsWon")
    parsing.normalise_forecast_category(opportunities.frame["ForecastCategoryName"])
    return {
        "seconds": time.perf_counter() - started,
        "read_seconds": read_seconds,
        "peak_mb": _peak_mb(),
    }


def run_import(opportunity: Path, history: Path, db: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from dealcase import store
    from dealcase.importing import import_files

    steps = []

    def progress(fraction: float, message: str) -> None:
        steps.append((round(time.perf_counter() - started, 2), fraction, message))

    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    with store.connect(db) as con:
        report = import_files(
            con,
            source="salesforce",
            files=[opportunity],
            history=history,
            progress=progress,
        )
        deals, versions = con.execute(
            "SELECT (SELECT count(*) FROM deals), (SELECT count(*) FROM deal_history)"
        ).fetchall()[0]
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu_started,
        "peak_mb": _peak_mb(),
        "deals": deals,
        "history_rows": versions,
        "deals_new": report.doc.get("deals_new"),
        "steps": steps,
    }


def _child(mode: str, folder: Path) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--keep", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="folder for the files (kept)")
    parser.add_argument(
        "--reuse", action="store_true", help="use the files already in --keep"
    )
    parser.add_argument(
        "--child", choices=["pandas", "readers", "import"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.child:
        opportunity = args.keep / "Opportunity.csv"
        history = args.keep / "OpportunityHistory.csv"
        if args.child == "pandas":
            result = run_pandas(opportunity, history)
        elif args.child == "readers":
            result = run_readers(opportunity, history)
        else:
            db = args.keep / "bench.duckdb"
            db.unlink(missing_ok=True)
            result = run_import(opportunity, history, db)
        print(json.dumps(result))
        return

    folder = args.keep or Path(tempfile.mkdtemp(prefix="dealcase-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        opportunity = folder / "Opportunity.csv"
        history = folder / "OpportunityHistory.csv"
        if not (args.reuse and opportunity.exists() and history.exists()):
            opportunity, history = generate(folder, args.deals)
        size = (opportunity.stat().st_size + history.stat().st_size) / 1e6
        print(
            f"files of {args.deals:,} deals and {3 * args.deals:,} history rows "
            f"({size:,.0f} MB) ready in {time.perf_counter() - started:.1f} s"
        )
        baseline = _child("pandas", folder)
        print(
            f"pandas.read_csv (both files, dtype=str): {baseline['seconds']:.1f} s "
            f"(CPU {baseline['cpu_seconds']:.1f} s), "
            f"peak {baseline['peak_mb']:,.0f} MB"
        )
        readers = _child("readers", folder)
        print(
            f"read_table of both files: {readers['read_seconds']:.1f} s; with the "
            f"value parsers: {readers['seconds']:.1f} s, peak "
            f"{readers['peak_mb']:,.0f} MB "
            f"({readers['read_seconds'] / baseline['seconds']:.2f}x pandas)"
        )
        result = _child("import", folder)
        print(
            f"import_files(source='salesforce'): {result['seconds']:.1f} s "
            f"(CPU {result['cpu_seconds']:.1f} s), peak "
            f"{result['peak_mb']:,.0f} MB; {result['deals']:,} deals, "
            f"{result['history_rows']:,} history rows"
        )
        for seconds, fraction, message in result["steps"]:
            print(f"  {seconds:7.2f} s  {fraction:4.2f}  {message}")
        ratio = result["seconds"] / baseline["seconds"]
        print(f"ratio import / pandas: {ratio:.1f}x")
        verdict = result["seconds"] < 20 and result["peak_mb"] < 2048
        print("target (< 20 s, < 2 GB):", "met" if verdict else "NOT met")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

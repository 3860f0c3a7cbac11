"""``python -m dealcase``: every number of the app, from the command line.

Reports go to standard output in the chosen ``--format``; progress and
warnings go to standard error; a failure exits non-zero with one line that
says what to fix.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from dealcase import store
from dealcase.errors import DealCaseError
from dealcase.periods import parse_date
from dealcase.report import emit

logger = logging.getLogger("dealcase")

FORMATS = ("table", "json", "csv")


def _date(text: str):
    try:
        return parse_date(text)
    except DealCaseError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _quarter_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line that says what to fix."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _at_least(minimum: int):
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError as error:
            message = f"'{text}' is not a whole number"
            raise argparse.ArgumentTypeError(message) from error
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return value

    return check


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m dealcase",
        description="Forecast ranges and slip analysis from deals and their cases.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    def add(name: str, help_text: str, reports: bool = True):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--db", type=Path, help="database file")
        if reports:
            sub.add_argument("--format", choices=FORMATS, default="table")
        return sub

    demo = add("demo", "build the demo database (synthetic company)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the full size"
    )
    demo.add_argument("--today", type=_date, help="the demo's present (ISO date)")

    imp = add("import", "import deals from CRM exports or any table")
    imp.add_argument(
        "--source", choices=("salesforce", "hubspot", "table"), required=True
    )
    imp.add_argument("--mapping", type=Path, help="TOML mapping for --source table")
    imp.add_argument("--history", type=Path, help="OpportunityHistory export")
    imp.add_argument("--rates", type=Path, help="currency rates (CSV)")
    imp.add_argument("--date-order", choices=("dmy", "mdy"))
    imp.add_argument(
        "--snapshot-date",
        type=_date,
        help="the day the export was taken (default: today)",
    )
    imp.add_argument("files", nargs="*", type=Path)

    train = add("train", "train the close-likelihood model")
    train.add_argument("--as-of", type=_date)

    evaluate = add("evaluate", "model quality against baselines")
    evaluate.add_argument(
        "--cv", type=_at_least(2), help="K-fold cross-validation (K >= 2)"
    )
    evaluate.add_argument(
        "--holdout-from", type=_date, help="train before this date, test after"
    )
    evaluate.add_argument(
        "--without-case",
        dest="case_features",
        action="store_false",
        help="leave the business-case features out (to measure what they add)",
    )

    forecast = add("forecast", "quarter-end forecast range")
    forecast.add_argument("--quarter", required=True)
    forecast.add_argument("--as-of", type=_date)
    forecast.add_argument("--by", choices=("team", "owner", "segment"))
    forecast.add_argument("--seed", type=int, default=0)
    forecast.add_argument("--draws", type=_at_least(100), default=10_000)

    backtest = add("backtest", "forecast past quarters as they stood, and score it")
    backtest.add_argument("--quarters", type=_quarter_list)
    backtest.add_argument("--seed", type=int, default=0)

    deals = add("deals", "open deals with likelihood, slip risk and red flags")
    deals.add_argument("--quarter", required=True)
    deals.add_argument("--as-of", type=_date)

    changes = add("changes", "what changed in the pipeline between two dates")
    changes.add_argument("--from", dest="start", type=_date, required=True)
    changes.add_argument("--to", dest="end", type=_date, required=True)
    changes.add_argument("--quarter")
    changes.add_argument("--team")

    slips = add("slips", "slipped deals and what drives slips")
    slips.add_argument("--quarter", required=True)
    slips.add_argument("--team")

    case = add("case", "export or import business-case answers as CSV")
    case.add_argument("action", choices=("export", "import"))
    case.add_argument("file", type=Path)
    return parser


# command -> (module, function, keyword arguments taken from the namespace)
COMMANDS = {
    "demo": ("dealcase.demo", "build_demo", ("seed", "scale", "today")),
    "import": (
        "dealcase.importing",
        "import_files",
        (
            "source",
            "files",
            "mapping",
            "history",
            "rates",
            "date_order",
            "snapshot_date",
        ),
    ),
    "train": ("dealcase.model", "train_model", ("as_of",)),
    "evaluate": (
        "dealcase.model",
        "evaluate_model",
        ("cv", "holdout_from", "case_features"),
    ),
    "forecast": (
        "dealcase.forecast",
        "forecast_report",
        ("quarter", "as_of", "by", "seed", "draws"),
    ),
    "backtest": ("dealcase.backtest", "backtest_report", ("quarters", "seed")),
    "deals": ("dealcase.deals", "deals_report", ("quarter", "as_of")),
    "changes": (
        "dealcase.slips",
        "changes_report",
        ("start", "end", "quarter", "team"),
    ),
    "slips": ("dealcase.slips", "slips_report", ("quarter", "team")),
}


def _run(args: argparse.Namespace):
    if args.command == "case":
        module = importlib.import_module("dealcase.case")
        function = getattr(module, f"{args.action}_case")
        _require_database(args.db)
        if args.action == "import":
            _require_files([args.file])
        with store.connect(args.db) as con:
            _refresh_questions(con)
            return function(con, args.file)

    module_name, function_name, names = COMMANDS[args.command]
    function = getattr(importlib.import_module(module_name), function_name)
    kwargs = {name: getattr(args, name) for name in names}
    if args.command not in CREATES_DATABASE:
        _require_database(args.db)
    if args.command == "import":
        _require_files([*args.files, args.mapping, args.history, args.rates])
    with store.new_file_removed_on_failure(args.db):
        with store.connect(args.db) as con:
            _require_known_dates(con, args)
            if args.command not in CREATES_DATABASE:
                _refresh_questions(con)
            return function(con, **kwargs)


def _refresh_questions(con) -> None:
    """Use the question set file (``DEALCASE_QUESTIONS`` or the shipped one),
    as the app does; a broken file is reported and the last valid set kept."""
    from dealcase.case_questions import questions_path, refresh_questions

    _, error = refresh_questions(con, questions_path())
    if error:
        print(
            f"warning: the question set was not loaded: {error}; the last valid "
            "set is used",
            file=sys.stderr,
        )


def _require_known_dates(con, args: argparse.Namespace) -> None:
    """Refuse an as-of (or end) date after the data's present: nothing is
    known after it, and a quarter would look ended that has not."""
    from dealcase.periods import resolve_as_of

    present = resolve_as_of(con, None)
    for option, flag in (("as_of", "--as-of"), ("end", "--to")):
        day = getattr(args, option, None)
        if day is not None and day > present:
            raise DealCaseError(
                f"{flag} {day.isoformat()} is after the data's present, "
                f"{present.isoformat()} (the latest day the data knows): nothing "
                "is known after it; give an earlier date or import a newer export"
            )


# Commands that may start a new database file; every other one needs data.
CREATES_DATABASE = {"demo", "import"}


def _require_database(path) -> None:
    db = store.database_path(path)
    if not db.exists():
        raise store.StoreError(
            f"no database at {db}; build one with 'python -m dealcase demo' "
            "or import your deals, or give the right --db"
        )


def _require_files(paths) -> None:
    for path in paths:
        if path is None:
            continue
        if not path.exists():
            raise DealCaseError(f"{path}: no such file")
        if path.is_dir():
            raise DealCaseError(f"{path} is a folder; name the files inside it")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        report = _run(args)
    except DealCaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except NotImplementedError as error:
        print(f"error: not supported: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: one line for the user, details in -v
        logger.debug("unexpected failure", exc_info=True)
        print(
            f"error: unexpected {type(error).__name__}: {error} "
            "(run with -v for details)",
            file=sys.stderr,
        )
        return 3
    try:
        emit(report, getattr(args, "format", "table"))
    except BrokenPipeError:  # the reader stopped early, as `| head` does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0

"""The DuckDB file: where it is, how to open it, and its versioned schema.

Every other module receives an open ``duckdb.DuckDBPyConnection`` from
:func:`connect` and never opens the file itself. Connections are meant to be
short-lived: DuckDB lets one process write a file at a time, so the app opens
the file for each rerun and closes it again, and a command-line import can run
while the app is open. :func:`data_version` tells caches when the file changed.

Schema changes are appended to ``MIGRATIONS``; a file is brought up to date on
open, inside one transaction per step, and never downgraded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from dealcase.errors import DealCaseError

logger = logging.getLogger(__name__)

DEFAULT_DB = Path(__file__).resolve().parent.parent / "data" / "dealcase.duckdb"

OUTCOMES = ("won", "lost", "open")
STATUSES = ("confirmed", "assumed", "unknown", "risk")
FORECAST_CATEGORIES = ("pipeline", "best_case", "commit", "closed", "omitted")


class StoreError(DealCaseError):
    """The database file cannot be opened or is not a DealCase database."""


class StoreBusyError(StoreError):
    """Another process holds the write lock for longer than we waited."""


MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "initial schema",
        [
            """
            CREATE TABLE meta (
                key VARCHAR PRIMARY KEY,
                value VARCHAR
            )
            """,
            # Current state of each deal. amount is in the reporting currency;
            # amount_original and currency keep what the source said.
            # attributes holds extra source columns as a JSON object of strings.
            """
            CREATE TABLE deals (
                deal_id VARCHAR PRIMARY KEY,
                name VARCHAR,
                account VARCHAR,
                owner VARCHAR,
                team VARCHAR,
                segment VARCHAR,
                stage VARCHAR,
                forecast_category VARCHAR,
                amount DOUBLE,
                amount_original DOUBLE,
                currency VARCHAR,
                amount_estimated BOOLEAN DEFAULT false,
                probability DOUBLE,
                created_on DATE,
                close_date DATE,
                closed_on DATE,
                outcome VARCHAR NOT NULL DEFAULT 'open',
                next_step VARCHAR,
                source VARCHAR,
                attributes VARCHAR DEFAULT '{}',
                updated_at TIMESTAMP DEFAULT current_localtimestamp()
            )
            """,
            # Every version of a deal's moving fields, with the moment it
            # became true. A row holds the whole state as of valid_from, so
            # an ASOF join on valid_from rebuilds the pipeline on any date.
            """
            CREATE TABLE deal_history (
                deal_id VARCHAR NOT NULL,
                valid_from TIMESTAMP NOT NULL,
                stage VARCHAR,
                amount DOUBLE,
                close_date DATE,
                forecast_category VARCHAR,
                probability DOUBLE,
                outcome VARCHAR NOT NULL DEFAULT 'open',
                next_step VARCHAR,
                source VARCHAR
                -- (deal_id, valid_from) is unique; the importers' writer
                -- checks it. No key index: maintaining one made inserting
                -- millions of versions five times slower.
            )
            """,
            """
            CREATE TABLE stages (
                stage VARCHAR PRIMARY KEY,
                sort_order INTEGER,
                default_probability DOUBLE,
                is_closed BOOLEAN DEFAULT false,
                is_won BOOLEAN DEFAULT false
            )
            """,
            """
            CREATE TABLE questions (
                question_id VARCHAR PRIMARY KEY,
                dimension VARCHAR NOT NULL,
                text VARCHAR NOT NULL,
                weight DOUBLE DEFAULT 1.0,
                sort_order INTEGER
            )
            """,
            "CREATE SEQUENCE case_answer_seq START 1",
            # Append-only: the latest row per (deal, question) recorded on or
            # before a date is the case as it stood then.
            """
            CREATE TABLE case_answers (
                answer_id BIGINT PRIMARY KEY DEFAULT nextval('case_answer_seq'),
                deal_id VARCHAR NOT NULL,
                question_id VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                evidence VARCHAR,
                learned_on DATE,
                answered_by VARCHAR,
                recorded_at TIMESTAMP NOT NULL
            )
            """,
            "CREATE SEQUENCE stakeholder_version_seq START 1",
            # Append-only versions of buying influences; removed marks the
            # version that takes a person off the deal.
            """
            CREATE TABLE stakeholders (
                version_id BIGINT PRIMARY KEY
                    DEFAULT nextval('stakeholder_version_seq'),
                stakeholder_id VARCHAR NOT NULL,
                deal_id VARCHAR NOT NULL,
                name VARCHAR,
                title VARCHAR,
                role VARCHAR,
                influence VARCHAR,
                attitude VARCHAR,
                last_contact DATE,
                removed BOOLEAN DEFAULT false,
                recorded_by VARCHAR,
                recorded_at TIMESTAMP NOT NULL
            )
            """,
            # Quota per quarter; team and owner empty means the whole company.
            """
            CREATE TABLE targets (
                quarter VARCHAR NOT NULL,
                team VARCHAR,
                owner VARCHAR,
                amount DOUBLE NOT NULL
            )
            """,
            "CREATE SEQUENCE run_seq START 1",
            """
            CREATE TABLE model_runs (
                run_id BIGINT PRIMARY KEY DEFAULT nextval('run_seq'),
                created_at TIMESTAMP DEFAULT current_localtimestamp(),
                as_of DATE,
                kind VARCHAR,
                metrics VARCHAR,
                params VARCHAR,
                model BLOB
            )
            """,
            """
            CREATE TABLE forecast_runs (
                run_id BIGINT PRIMARY KEY DEFAULT nextval('run_seq'),
                created_at TIMESTAMP DEFAULT current_localtimestamp(),
                quarter VARCHAR,
                as_of DATE,
                result VARCHAR
            )
            """,
            """
            CREATE TABLE imports (
                import_id BIGINT PRIMARY KEY DEFAULT nextval('run_seq'),
                started_at TIMESTAMP DEFAULT current_localtimestamp(),
                source VARCHAR,
                files VARCHAR,
                summary VARCHAR
            )
            """,
        ],
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]


def database_path(path: str | os.PathLike | None = None) -> Path:
    """Return the database file to use: ``path``, else ``$DEALCASE_DB``, else
    the default ``data/dealcase.duckdb``."""
    if path:
        return Path(path)
    if os.environ.get("DEALCASE_DB"):
        return Path(os.environ["DEALCASE_DB"])
    return DEFAULT_DB


def data_version(path: str | os.PathLike | None = None) -> tuple[int, int]:
    """A cheap key that changes whenever the file is written.

    Returns ``(mtime_ns, size)`` of the file and of its write-ahead log, so a
    cache keyed on it is invalidated by writes from any process.
    """
    db = database_path(path)
    parts = []
    for candidate in (db, Path(str(db) + ".wal")):
        try:
            info = candidate.stat()
            parts.append((info.st_mtime_ns, info.st_size))
        except FileNotFoundError:
            parts.append((0, 0))
    return (parts[0][0] ^ parts[1][0], parts[0][1] + parts[1][1])


def _open_with_retry(db: Path, read_only: bool, wait_seconds: float):
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(db), read_only=read_only)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                if "lock" in str(error).lower():
                    raise StoreBusyError(
                        f"{db} is being written by another process; "
                        "try again when it has finished"
                    ) from error
                raise StoreError(f"cannot open {db}: {error}") from error
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema of ``con`` up to :data:`SCHEMA_VERSION`.

    Returns the version the file had before. A file written by a newer
    DealCase (a higher version) is refused rather than changed.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER, description VARCHAR, applied_at TIMESTAMP)"
    )
    before = con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
    before = before or 0
    if before > SCHEMA_VERSION:
        raise StoreError(
            f"this database has schema version {before}, newer than this "
            f"DealCase ({SCHEMA_VERSION}); upgrade DealCase to open it"
        )
    for version, description, statements in MIGRATIONS:
        if version <= before:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, current_localtimestamp())",
                [version, description],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        logger.info("migrated schema to version %s (%s)", version, description)
    return before


@contextlib.contextmanager
def connect(
    path: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    wait_seconds: float = 30.0,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database, migrate it, and close it when the block ends.

    Parameters
    ----------
    path
        The file; see :func:`database_path` for the default.
    read_only
        Open without taking the write lock. A read-only open of a file that
        does not exist or has an older schema is refused.
    wait_seconds
        How long to wait while another process writes the file.
    """
    db = database_path(path)
    if read_only and not db.exists():
        raise StoreError(
            f"{db} does not exist; build it with 'python -m dealcase demo'"
        )
    db.parent.mkdir(parents=True, exist_ok=True)
    con = _open_with_retry(db, read_only, wait_seconds)
    _refuse_non_database(con, db)
    try:
        if read_only:
            _check_version(con, db)
        else:
            migrate(con)
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def new_file_removed_on_failure(
    path: str | os.PathLike | None = None,
) -> Iterator[None]:
    """Remove the database file (and its log) created inside the block when
    the block fails, so that a failed first import leaves no empty database
    behind. A file that existed before is never touched."""
    db = database_path(path)
    if db.exists():
        yield
        return
    try:
        yield
    except BaseException:
        for leftover in (db, Path(str(db) + ".wal")):
            leftover.unlink(missing_ok=True)
        raise


def _refuse_non_database(con: duckdb.DuckDBPyConnection, db: Path) -> None:
    # DuckDB opens an existing file of another kind (a CSV, say) as an
    # in-memory database: writes would vanish, so refuse it outright.
    rows = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    if not rows or rows[0][0] is None:
        con.close()
        raise StoreError(
            f"{db} is not a DuckDB database file; give --db a .duckdb file "
            "(a new name creates one)"
        )


def _check_version(con: duckdb.DuckDBPyConnection, db: Path) -> None:
    try:
        row = con.execute("SELECT max(version) FROM schema_version").fetchall()[0]
    except duckdb.CatalogException as error:
        raise StoreError(f"{db} is not a DealCase database") from error
    if (row[0] or 0) != SCHEMA_VERSION:
        raise StoreError(
            f"{db} has schema version {row[0]}, this DealCase expects "
            f"{SCHEMA_VERSION}; open it once for writing to migrate it"
        )


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: all of it is written, or none."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def get_meta(con: duckdb.DuckDBPyConnection, key: str, default: str | None = None):
    """Return a value of the ``meta`` table, or ``default`` when unset."""
    rows = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
    return default if not rows else rows[0][0]


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    """Set a value of the ``meta`` table."""
    con.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, str(value)]
    )


def is_empty(con: duckdb.DuckDBPyConnection) -> bool:
    """True when the database holds no deals yet."""
    return con.execute("SELECT count(*) FROM deals").fetchall()[0][0] == 0


COUNTED_TABLES = ("deals", "deal_history", "case_answers", "stakeholders", "targets")


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows in the main tables (deals, history versions, answers, ...)."""
    return {
        table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in COUNTED_TABLES
    }


def import_history(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every import, newest first: ``import_id, started_at, source, files``
    (list of paths) and ``summary`` (the import's summary document)."""
    rows = con.execute(
        "SELECT import_id, started_at, source, files, summary FROM imports "
        "ORDER BY started_at DESC, import_id DESC"
    ).fetchall()
    return [
        {
            "import_id": import_id,
            "started_at": started_at,
            "source": source,
            "files": json.loads(files) if files else [],
            "summary": json.loads(summary) if summary else {},
        }
        for import_id, started_at, source, files, summary in rows
    ]


def data_fingerprint(con: duckdb.DuckDBPyConnection) -> tuple:
    """A cheap fingerprint of what the model and forecast read: row counts
    and latest timestamps of deals, history, answers and stakeholders, and
    hashes of the question set and the settings (``meta``: fiscal year,
    currency, the data's present). An in-process cache keyed on it is
    dropped by any write to those tables."""
    return tuple(
        con.execute(
            """
            SELECT (SELECT count(*) FROM deals),
                   (SELECT count(*) FILTER (WHERE outcome <> 'open') FROM deals),
                   (SELECT max(updated_at) FROM deals),
                   (SELECT count(*) FROM deal_history),
                   (SELECT max(valid_from) FROM deal_history),
                   (SELECT count(*) FROM case_answers),
                   (SELECT max(recorded_at) FROM case_answers),
                   (SELECT count(*) FROM stakeholders),
                   (SELECT max(recorded_at) FROM stakeholders),
                   (SELECT md5(coalesce(string_agg(
                        concat_ws('|', question_id, dimension, weight, sort_order),
                        ';' ORDER BY question_id), '')) FROM questions),
                   (SELECT md5(coalesce(string_agg(concat_ws('=', key, value),
                        ';' ORDER BY key), '')) FROM meta)
            """
        ).fetchall()[0]
    )


class Remembered:
    """Results computed from the data, kept in memory while it is unchanged.

    Entries are keyed on :func:`data_fingerprint` and the caller's key, so
    any write to the tables it covers makes earlier entries unreachable;
    past ``size`` entries the oldest is dropped.
    """

    def __init__(self, size: int):
        self.size = size
        self._items: dict[tuple, object] = {}

    def get(self, con: duckdb.DuckDBPyConnection, key: tuple, compute):
        """The entry for ``key`` on this data, computed by ``compute()`` (no
        arguments) when missing."""
        full = (data_fingerprint(con), *key)
        if full not in self._items:
            if len(self._items) >= self.size:
                self._items.pop(next(iter(self._items)))
            self._items[full] = compute()
        return self._items[full]

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

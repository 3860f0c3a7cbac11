"""Shared fixtures: real DuckDB files built in temporary folders.

``demo_db`` is a small demo company (seed 7, 15% of the full size, present
fixed at 2025-11-14); ``maven_db`` holds the Maven CRM sample from
``../shared/data``. Both are built once per test session; tests that write
copy them first with ``copy_db``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from dealcase import store

ROOT = Path(__file__).resolve().parent.parent
# The public data files live beside the checkout (../shared/data); a checkout
# elsewhere names them with DEALCASE_SHARED_DATA.
SHARED_DATA = Path(
    os.environ.get("DEALCASE_SHARED_DATA") or ROOT.parent / "shared" / "data"
)
DEMO_TODAY = dt.date(2025, 11, 14)
DEMO_SEED = 7
DEMO_SCALE = 0.15


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(
            f"real data files are missing: expected {SHARED_DATA} (the shared "
            "data folder beside this checkout; elsewhere set DEALCASE_SHARED_DATA "
            "to its path)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    from dealcase.demo import build_demo

    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with store.connect(path) as con:
        build_demo(con, seed=DEMO_SEED, scale=DEMO_SCALE, today=DEMO_TODAY)
    return path


@pytest.fixture(scope="session")
def salesforce_db(tmp_path_factory, shared_data) -> tuple[Path, dict]:
    """The Salesforce sample (Opportunity.csv with OpportunityHistory.csv)
    imported once, with the import's summary; copy it before writing."""
    from dealcase.importing import import_files

    folder = shared_data / "salesforce-sample"
    path = tmp_path_factory.mktemp("salesforce") / "sf.duckdb"
    with store.connect(path) as con:
        report = import_files(
            con,
            source="salesforce",
            files=[folder / "Opportunity.csv"],
            history=folder / "OpportunityHistory.csv",
        )
    return path, report.doc


@pytest.fixture(scope="session")
def maven_db(tmp_path_factory, shared_data) -> Path:
    from dealcase.importing import import_files

    path = tmp_path_factory.mktemp("maven") / "maven.duckdb"
    with store.connect(path) as con:
        import_files(
            con,
            source="table",
            files=[shared_data / "maven-crm" / "sales_pipeline.csv"],
            mapping=ROOT / "data" / "mappings" / "maven.toml",
        )
    return path


@pytest.fixture
def copy_db(tmp_path):
    """Copy a session database so a test can write to it."""

    def _copy(path: Path) -> Path:
        target = tmp_path / path.name
        shutil.copy(path, target)
        return target

    return _copy

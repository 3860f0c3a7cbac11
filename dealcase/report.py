"""What a command reports, and how it is printed.

A command returns a :class:`Report`: ``doc`` is the JSON document (field names
fixed by the design), ``table`` the rows printed for ``--format table`` and
``--format csv``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class Report:
    doc: object
    table: pd.DataFrame | None = None
    title: str | None = None
    notes: list[str] = field(default_factory=list)


def to_jsonable(value):
    """Turn numpy, pandas and date values into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return [to_jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, dt.datetime | pd.Timestamp):
        if pd.isna(value):
            return None
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        number = float(value)
        return None if math.isnan(number) or math.isinf(number) else number
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def emit(report: Report, fmt: str, stream=None) -> None:
    """Print ``report`` as ``table``, ``json`` or ``csv`` on ``stream``."""
    stream = stream or sys.stdout
    if fmt == "json":
        json.dump(to_jsonable(report.doc), stream, indent=2)
        stream.write("\n")
        return
    table = report.table
    if table is None:
        table = _default_table(report.doc)
    if fmt == "csv":
        table.to_csv(stream, index=False)
        return
    if report.title:
        stream.write(report.title + "\n")
    if table.empty:
        stream.write("(nothing to show)\n")
    else:
        with pd.option_context(
            "display.max_rows", 200, "display.max_columns", 50, "display.width", 160
        ):
            stream.write(
                table.to_string(index=False, na_rep="", float_format=_number) + "\n"
            )
    for note in report.notes:
        stream.write(note + "\n")


def _number(value: float) -> str:
    """Numbers in a printed table: whole amounts with thousands separators,
    shares and rates with three decimals, never scientific notation."""
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3f}"


def _default_table(doc) -> pd.DataFrame:
    if isinstance(doc, list):
        return pd.DataFrame([to_jsonable(r) for r in doc])
    if isinstance(doc, dict):
        flat = {k: v for k, v in doc.items() if not isinstance(v, list | dict)}
        return pd.DataFrame([{"field": k, "value": v} for k, v in flat.items()])
    return pd.DataFrame({"value": [doc]})

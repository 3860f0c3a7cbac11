"""Store a :class:`~dealcase.importing.batch.DealBatch`: upsert deals, add
history versions, fill stages and meta.

The rules every source shares:

- A deal is new (inserted), updated (some field differs) or unchanged.
  Values are compared as values, so ``375000`` and ``375000.0`` are equal.
  Deals are never deleted, and their case answers and stakeholders are never
  touched.
- A version the source names is added unless the deal already has a version
  at that moment. An *authoritative* source (Salesforce OpportunityHistory)
  also corrects an existing version at that moment; versions derived from
  dates (a table's, or a creation version) only fill gaps, and never reach
  back before a deal's stored history. A new version that repeats the state already
  in effect before it is not a change and is not added.
- After that, a deal whose stored latest version differs from its state in
  the file gets one more version at the snapshot moment (the import time by
  default): this is how repeated snapshot exports build history.
- Sources without dates write deals only, no history.

Nothing here commits: the caller runs it inside one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import duckdb
import numpy as np
import pandas as pd

from dealcase.importing.batch import (
    DEAL_COLUMNS,
    STATE_FIELDS,
    VERSION_COLUMNS,
    DealBatch,
    conform_versions,
)
from dealcase.store import set_meta

logger = logging.getLogger(__name__)

_MONEY = {"amount", "amount_original"}
_DATES = {"created_on", "close_date", "closed_on"}
_PROBABILITY = {"probability"}


def value_keys(frame: pd.DataFrame, fields: list[str]) -> pd.Series:
    """One text key per row that is equal exactly when the values are.

    Amounts are compared to the cent, probabilities to four decimals, dates
    as days, text after trimming; missing values of any kind compare equal to
    each other.
    """
    parts = [_field_text(frame[name], name) for name in fields]
    if not parts:
        return pd.Series([""] * len(frame), index=frame.index, dtype="str")
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + "\x1f" + part
    return pd.Series(joined.to_numpy(), index=frame.index, dtype="str")


def _field_text(values: pd.Series, name: str) -> pd.Series:
    if name in _MONEY or name in _PROBABILITY:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        digits = 2 if name in _MONEY else 4
        rounded = numbers.round(digits) + 0.0  # no negative zero
        text = rounded.map(lambda v: "" if np.isnan(v) else f"{v:.{digits}f}")
        return text.astype("str")
    if name in _DATES:
        days = pd.to_datetime(values, errors="coerce")
        return days.dt.strftime("%Y-%m-%d").fillna("").astype("str")
    if name == "amount_estimated":
        return values.fillna(False).astype(bool).map({True: "1", False: "0"})
    if name == "attributes":
        # Written by attributes_json with sorted keys, so equal text is equal
        # content; other spellings of the same object count as a change.
        return pd.Series(values, dtype="str").fillna("{}").str.strip()
    text = pd.Series(values, dtype="str").fillna("").str.strip()
    return text


def write_batch(
    con: duckdb.DuckDBPyConnection,
    batch: DealBatch,
    *,
    snapshot_at: dt.datetime,
    authoritative_history: bool = False,
    progress=None,
) -> dict:
    """Write ``batch`` into the open transaction of ``con``.

    Parameters
    ----------
    snapshot_at
        The moment a change without a time of its own became true (naive
        local timestamp).
    authoritative_history
        True when ``batch.versions`` is the source's own history, which may
        correct versions stored by an earlier import.
    progress
        Optional ``callable(fraction, message)``, fraction 0..1 of this write.

    Returns
    -------
    dict
        ``deals_new, deals_updated, deals_unchanged, history_rows,
        history_rows_corrected, snapshot_versions, snapshot_moved``.
    """
    report = _report(progress)
    deals = batch.deals
    doubled = deals["deal_id"].duplicated()
    if doubled.any():
        raise ValueError(
            f"a batch must hold each deal once; {deals['deal_id'][doubled].iloc[0]} "
            "is repeated"
        )
    counts = {
        "deals_new": 0,
        "deals_updated": 0,
        "deals_unchanged": 0,
        "history_rows": 0,
        "history_rows_corrected": 0,
        "snapshot_versions": 0,
        "snapshot_moved": 0,
    }
    with _registered(con, deals[["deal_id"]]) as ids_view:
        report(0.1, "comparing with stored deals")
        existing = con.execute(
            f"SELECT d.* FROM deals d JOIN {ids_view} i USING (deal_id)"
        ).df()
        counts.update(_upsert_deals(con, deals, existing))

        if batch.has_dates:
            report(0.5, "adding history versions")
            stored = con.execute(
                f"SELECT h.deal_id, h.valid_from, h.stage, h.amount, h.close_date, "
                f"h.forecast_category, h.probability, h.outcome, h.source "
                f"FROM deal_history h JOIN {ids_view} i USING (deal_id)"
            ).df()
            counts.update(
                _merge_versions(
                    con,
                    batch,
                    conform_versions(stored),
                    snapshot_at=snapshot_at,
                    authoritative=authoritative_history,
                )
            )

    report(0.9, "updating stages and settings")
    _write_stages(con, batch.stages)
    for key, value in batch.meta.items():
        if value is not None:
            set_meta(con, key, value)
    return counts


def _report(progress):
    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    return report


class _registered:
    """Register a DataFrame as a uniquely named view for the block."""

    def __init__(self, con, frame: pd.DataFrame):
        self.con = con
        self.frame = frame
        self.name = "import_" + uuid.uuid4().hex[:12]

    def __enter__(self) -> str:
        self.con.register(self.name, self.frame)
        return self.name

    def __exit__(self, *exc) -> None:
        self.con.unregister(self.name)


def _upsert_deals(con, deals: pd.DataFrame, existing: pd.DataFrame) -> dict:
    compared = [c for c in DEAL_COLUMNS if c != "deal_id"]
    new_keys = pd.Series(
        value_keys(deals, compared).to_numpy(), index=deals["deal_id"].to_numpy()
    )
    if existing.empty:
        old_keys = pd.Series([], dtype="str")
    else:
        old_keys = pd.Series(
            value_keys(existing, compared).to_numpy(),
            index=existing["deal_id"].to_numpy(),
        )
    known = deals["deal_id"].isin(old_keys.index).to_numpy()
    aligned_old = old_keys.reindex(deals["deal_id"].to_numpy()).to_numpy()
    changed = known & (new_keys.to_numpy() != aligned_old)

    columns = ", ".join(DEAL_COLUMNS)
    selected = ", ".join(_cast(c) for c in DEAL_COLUMNS)
    inserts = deals.loc[~known]
    if len(inserts):
        with _registered(con, inserts) as view:
            con.execute(f"INSERT INTO deals ({columns}) SELECT {selected} FROM {view}")
    updates = deals.loc[changed]
    if len(updates):
        assignments = ", ".join(
            f"{c} = {_cast(c, 'u')}" for c in DEAL_COLUMNS if c != "deal_id"
        )
        with _registered(con, updates) as view:
            con.execute(
                f"UPDATE deals SET {assignments}, "
                f"updated_at = current_localtimestamp() "
                f"FROM {view} u WHERE deals.deal_id = u.deal_id"
            )
    return {
        "deals_new": int((~known).sum()),
        "deals_updated": int(changed.sum()),
        "deals_unchanged": int((known & ~changed).sum()),
    }


def _cast(column: str, alias: str | None = None) -> str:
    ref = f"{alias}.{column}" if alias else column
    if column in _DATES:
        return f"CAST({ref} AS DATE)"
    if column == "valid_from":
        return f"CAST({ref} AS TIMESTAMP)"
    return ref


def _merge_versions(
    con,
    batch: DealBatch,
    stored: pd.DataFrame,
    *,
    snapshot_at: dt.datetime,
    authoritative: bool,
) -> dict:
    incoming = conform_versions(batch.versions)
    incoming = incoming.loc[incoming["deal_id"].isin(batch.deals["deal_id"])]
    incoming = incoming.drop_duplicates(["deal_id", "valid_from"], keep="last")
    corrected = 0

    # Versions at a moment already stored: corrected or left alone.
    both = incoming.merge(
        stored,
        on=["deal_id", "valid_from"],
        how="left",
        suffixes=("", "_old"),
        indicator=True,
    )
    at_stored_moment = (both["_merge"] == "both").to_numpy()
    correcting = at_stored_moment & ~both["derived"].to_numpy()
    if authoritative and correcting.any():
        overlap = both.loc[correcting]
        old = overlap[[f"{f}_old" for f in STATE_FIELDS]].set_axis(STATE_FIELDS, axis=1)
        differs = (
            value_keys(overlap, STATE_FIELDS).to_numpy()
            != value_keys(old, STATE_FIELDS).to_numpy()
        )
        fixes = overlap.loc[differs, VERSION_COLUMNS]
        if len(fixes):
            _update_versions(con, fixes)
            stored = _replace_rows(stored, fixes)
            corrected = len(fixes)
    candidates = incoming.loc[~at_stored_moment].reset_index(drop=True)

    # A new version that repeats the stored state in effect before it is not
    # a change (a later export of a deal that did not move).
    if len(candidates) and len(stored):
        before = pd.merge_asof(
            candidates[["deal_id", "valid_from"]]
            .assign(row=np.arange(len(candidates)))
            .sort_values("valid_from"),
            stored.sort_values("valid_from"),
            on="valid_from",
            by="deal_id",
            allow_exact_matches=False,
        ).sort_values("row")
        had_before = before["outcome"].notna().to_numpy()
        same = had_before & (
            value_keys(before, STATE_FIELDS).to_numpy()
            == value_keys(candidates, STATE_FIELDS).to_numpy()
        )
        candidates = candidates.loc[~same].reset_index(drop=True)

    # Versions made up from dates do not reach back before a stored history.
    if len(candidates) and len(stored):
        first = stored.groupby("deal_id")["valid_from"].min()
        start = candidates["deal_id"].map(first)
        early = (
            candidates["derived"].to_numpy()
            & (start.notna() & (candidates["valid_from"] < start)).to_numpy()
        )
        candidates = candidates.loc[~early].reset_index(drop=True)
    _insert_versions(con, candidates)

    # A deal whose latest version is not its state in the file: one more
    # version at the snapshot moment.
    timeline = pd.concat([stored, candidates], ignore_index=True)
    latest = (
        timeline.sort_values(["deal_id", "valid_from"])
        .groupby("deal_id", sort=False)
        .tail(1)
        .set_index("deal_id")
    )
    current = batch.deals.set_index("deal_id")
    latest = latest.reindex(current.index)
    missing = latest["valid_from"].isna().to_numpy()
    differs = missing | (
        value_keys(latest, STATE_FIELDS).to_numpy()
        != value_keys(current, STATE_FIELDS).to_numpy()
    )
    snapshot = current.loc[differs, STATE_FIELDS].reset_index()
    moved = 0
    if len(snapshot):
        moment = pd.Timestamp(snapshot_at)
        last = latest.loc[differs, "valid_from"].to_numpy()
        valid_from = np.full(len(snapshot), moment.to_datetime64(), dtype="M8[us]")
        late = ~pd.isna(last) & (last.astype("M8[us]") >= valid_from)
        if late.any():
            valid_from[late] = last[late].astype("M8[us]") + np.timedelta64(1, "s")
            moved = int(late.sum())
        snapshot["valid_from"] = valid_from
        snapshot["source"] = batch.source
        _insert_versions(con, conform_versions(snapshot))
    return {
        "history_rows": len(candidates) + len(snapshot),
        "history_rows_corrected": corrected,
        "snapshot_versions": len(snapshot),
        "snapshot_moved": moved,
    }


def _replace_rows(stored: pd.DataFrame, fixes: pd.DataFrame) -> pd.DataFrame:
    keys = ["deal_id", "valid_from"]
    kept = stored.merge(fixes[keys], on=keys, how="left", indicator=True)
    kept = kept.loc[kept["_merge"] == "left_only", VERSION_COLUMNS]
    return pd.concat([kept, fixes[VERSION_COLUMNS]], ignore_index=True)


def _insert_versions(con, versions: pd.DataFrame) -> None:
    if versions.empty:
        return
    columns = ", ".join(VERSION_COLUMNS)
    selected = ", ".join(_cast(c) for c in VERSION_COLUMNS)
    with _registered(con, versions[VERSION_COLUMNS]) as view:
        con.execute(
            f"INSERT INTO deal_history ({columns}) SELECT {selected} FROM {view}"
        )


def _update_versions(con, versions: pd.DataFrame) -> None:
    assignments = ", ".join(f"{c} = {_cast(c, 'u')}" for c in STATE_FIELDS + ["source"])
    with _registered(con, versions[VERSION_COLUMNS]) as view:
        con.execute(
            f"UPDATE deal_history SET {assignments} FROM {view} u "
            "WHERE deal_history.deal_id = u.deal_id "
            "AND deal_history.valid_from = CAST(u.valid_from AS TIMESTAMP)"
        )


def _write_stages(con, stages: pd.DataFrame) -> None:
    if stages is None or stages.empty:
        return
    with _registered(con, stages) as view:
        con.execute(
            "INSERT OR REPLACE INTO stages "
            "(stage, sort_order, default_probability, is_closed, is_won) "
            f"SELECT stage, sort_order, default_probability, is_closed, is_won "
            f"FROM {view}"
        )

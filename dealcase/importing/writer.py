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
- A file older than a deal's stored history (its snapshot moment is before
  the deal's latest stored version, and the file has no version that
  recent: an earlier weekly export imported late, or again) is the deal's
  state at that moment: the deal's current row is kept, and a version is
  added at the snapshot moment only where the state then differs.
- The next step is part of a version's state. A source's version without
  one (an earlier OpportunityHistory row) does not blank the next step a
  stored version at that moment already has.
- Sources without dates write deals only, no history.
- Stakeholders a source names (Salesforce contact roles) are written as
  versions with ``recorded_by = 'import'``, and only for deals that have no
  stakeholder recorded in the app: once a person edits a deal's buying
  influences, imports leave them alone. A person unchanged since the last
  import gets no new version; one no longer in the file gets a ``removed``
  version.

Nothing here commits: the caller runs it inside one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dealcase.importing.batch import (
    DEAL_COLUMNS,
    STATE_FIELDS,
    VERSION_COLUMNS,
    DealBatch,
    arrow_text,
    conform_deals,
    conform_versions,
    duplicated_versions,
    latest_per_deal,
    may_have_padding,
    member,
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
        # Whole cents (or 1/10,000ths) as integers: equal text, equal value.
        scaled = np.round(numbers.to_numpy() * 10**digits)
        unknown = np.isnan(scaled)
        whole = pd.Series(np.where(unknown, 0, scaled).astype(np.int64), dtype="str")
        text = whole.where(~unknown, "")
        return pd.Series(text.to_numpy(), index=values.index, dtype="str")
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


def same_values(
    left: pd.DataFrame, right: pd.DataFrame, fields: list[str]
) -> np.ndarray:
    """Row by row (by position), whether ``left`` and ``right`` hold equal
    values in every one of ``fields``, by the rules of :func:`value_keys`.

    Compares column by column without building keys, so it costs a few
    vectorised operations per field.

    Returns
    -------
    numpy.ndarray of bool, one per row.
    """
    if len(left) != len(right):
        raise ValueError("same_values compares frames of the same length")
    same = np.ones(len(left), dtype=bool)
    for name in fields:
        same &= _equal_field(left[name], right[name], name)
    return same


def _equal_field(a: pd.Series, b: pd.Series, name: str) -> np.ndarray:
    if name in _MONEY or name in _PROBABILITY:
        digits = 2 if name in _MONEY else 4
        x = np.round(_numbers(a) * 10**digits)
        y = np.round(_numbers(b) * 10**digits)
        return (x == y) | (np.isnan(x) & np.isnan(y))
    if name in _DATES:
        x = _days(a)
        y = _days(b)
        return (x == y) | (np.isnat(x) & np.isnat(y))
    if name == "amount_estimated":
        x = pd.Series(a).fillna(False).astype(bool).to_numpy()
        y = pd.Series(b).fillna(False).astype(bool).to_numpy()
        return x == y
    blank = "{}" if name == "attributes" else ""
    x, y = (_trimmed(arrow_text(v), blank) for v in (a, b))
    return pc.equal(x, y).to_numpy(zero_copy_only=False)


def _trimmed(text: pa.Array, blank: str) -> pa.Array:
    """``text`` with missing values ``blank``, trimmed; shared, not copied,
    when that changes nothing."""
    if text.null_count:
        text = text.fill_null(blank)
    return pc.utf8_trim_whitespace(text) if may_have_padding(text) else text


def _numbers(values: pd.Series) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
        dtype="float64", na_value=np.nan
    )


def _days(values: pd.Series) -> np.ndarray:
    series = pd.Series(values)
    if series.dtype.kind != "M":
        series = pd.to_datetime(series, errors="coerce")
    if getattr(series.dt, "tz", None) is not None:
        series = series.dt.tz_localize(None)
    return series.to_numpy().astype("M8[D]")


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
        deals = _keep_stored_fields(batch, existing)
        stored = None
        older = set()
        if batch.has_dates:
            stored = conform_versions(
                con.execute(
                    f"SELECT h.deal_id, h.valid_from, h.stage, h.amount, "
                    f"h.close_date, h.forecast_category, h.probability, h.outcome, "
                    f"h.next_step, h.source "
                    f"FROM deal_history h JOIN {ids_view} i USING (deal_id)"
                ).df()
            )
            older = _older_snapshot(batch, stored, snapshot_at)
        current = ~member(deals["deal_id"], older)
        counts.update(
            _upsert_deals(con, deals if current.all() else deals.loc[current], existing)
        )
        counts["deals_older_snapshot"] = len(older)

        if batch.has_dates:
            report(0.5, "adding history versions")
            counts.update(
                _merge_versions(
                    con,
                    batch,
                    stored,
                    snapshot_at=snapshot_at,
                    authoritative=authoritative_history,
                    older=older,
                )
            )
            _check_unique_versions(con, ids_view)

    if batch.stakeholders is not None:
        report(0.85, "adding stakeholders")
        counts.update(_write_stakeholders(con, batch, snapshot_at=snapshot_at))
    report(0.9, "updating stages and settings")
    _write_stages(con, batch.stages, complete=batch.stages_complete)
    for key, value in batch.meta.items():
        if value is not None:
            set_meta(con, key, value)
    return counts


def _check_unique_versions(con, ids_view: str) -> None:
    """Raise if a deal of the batch has two versions at one moment.

    ``deal_history`` has no key index (it slowed bulk inserts several
    times over), so the one-version-per-moment rule is checked here, before
    the import's transaction commits.
    """
    doubled = con.execute(
        f"SELECT h.deal_id, h.valid_from FROM deal_history h "
        f"JOIN {ids_view} i USING (deal_id) "
        "GROUP BY h.deal_id, h.valid_from HAVING count(*) > 1 LIMIT 1"
    ).fetchall()
    if doubled:
        deal_id, moment = doubled[0]
        raise ValueError(f"deal {deal_id} would have two versions at {moment}")


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
    known = member(deals["deal_id"], existing["deal_id"])
    changed = np.zeros(len(deals), dtype=bool)
    if known.any():
        mine = deals.loc[known].reset_index(drop=True)
        theirs = existing.set_index("deal_id").reindex(mine["deal_id"]).reset_index()
        changed[known] = ~same_values(mine, theirs, compared)

    columns = ", ".join(DEAL_COLUMNS)
    selected = ", ".join(_cast(c) for c in DEAL_COLUMNS)
    inserts = deals.loc[~known] if known.any() else deals
    if len(inserts):
        # From Arrow: DuckDB reads its text columns without conversion.
        rows = pa.Table.from_pandas(inserts[DEAL_COLUMNS], preserve_index=False)
        with _registered(con, rows) as view:
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


def _keep_stored_fields(batch: DealBatch, existing: pd.DataFrame) -> pd.DataFrame:
    """Fill the fields the source does not carry with the stored values.

    Changes ``batch.deals`` (and null values of those fields in
    ``batch.versions``) in place, so a report without, say, a Probability
    column neither blanks the stored probability nor adds a version for it.
    """
    missing = [f for f in DEAL_COLUMNS if f in batch.missing_fields]
    if not missing or existing.empty:
        return batch.deals
    deals = batch.deals
    stored = existing.set_index("deal_id")
    known = member(deals["deal_id"], stored.index)
    for name in missing:
        values = deals["deal_id"].map(stored[name])
        deals[name] = deals[name].astype(object).where(~known, values.astype(object))
    batch.deals = conform_deals(deals)
    versions = batch.versions
    if len(versions):
        current = batch.deals.set_index("deal_id")
        for name in [f for f in missing if f in STATE_FIELDS]:
            fill = versions["deal_id"].map(current[name])
            versions[name] = (
                versions[name]
                .astype(object)
                .where(versions[name].notna(), fill.astype(object))
            )
        batch.versions = conform_versions(versions)
    return batch.deals


def _older_snapshot(
    batch: DealBatch, stored: pd.DataFrame, snapshot_at: dt.datetime
) -> set:
    """Deals for which the file is an older view than the stored history.

    A deal's stored history reaches past the snapshot moment, and nothing the
    batch says about the deal is that recent: the file shows the deal as it
    was at the snapshot (an earlier weekly export imported late, or again),
    not as it is now.
    """
    if stored is None or stored.empty:
        return set()
    moment = np.datetime64(pd.Timestamp(snapshot_at).to_datetime64(), "us")
    stored_last = stored.groupby("deal_id")["valid_from"].max()
    ahead = stored_last[stored_last.to_numpy().astype("M8[us]") > moment]
    if ahead.empty:
        return set()
    versions = batch.versions
    if len(versions):
        incoming_last = versions.groupby("deal_id")["valid_from"].max()
        reaches = incoming_last.reindex(ahead.index)
        newer = reaches.notna().to_numpy() & (
            reaches.to_numpy().astype("M8[us]") >= ahead.to_numpy().astype("M8[us]")
        )
        ahead = ahead.loc[~newer]
    return set(ahead.index) & set(batch.deals["deal_id"])


def _merge_versions(
    con,
    batch: DealBatch,
    stored: pd.DataFrame,
    *,
    snapshot_at: dt.datetime,
    authoritative: bool,
    older: set | None = None,
) -> dict:
    # Each step copies millions of rows only when it changes something.
    # Kept in the batch in place of the unconformed frame, not beside it.
    batch.versions = incoming = conform_versions(batch.versions)
    ours = member(incoming["deal_id"], batch.deals["deal_id"])
    if not ours.all():
        incoming = incoming.loc[ours]
    repeated = duplicated_versions(incoming, keep="last")
    if repeated.any():
        incoming = incoming.loc[~repeated]
    incoming = incoming.reset_index(drop=True)
    corrected = 0

    # Versions at a moment already stored: corrected or left alone.
    at_stored_moment = np.zeros(len(incoming), dtype=bool)
    if len(stored) and len(incoming):
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
            # The next step is known for a source's latest version of a deal
            # only; an earlier version without one keeps its stored next step.
            latest = np.zeros(len(incoming), dtype=bool)
            latest[latest_per_deal(incoming)] = True
            overlap = both.loc[correcting].reset_index(drop=True)
            keep_step = ~latest[correcting] & overlap["next_step"].isna().to_numpy()
            overlap["next_step"] = overlap["next_step"].where(
                ~keep_step, overlap["next_step_old"]
            )
            old = overlap[[f"{f}_old" for f in STATE_FIELDS]].set_axis(
                STATE_FIELDS, axis=1
            )
            differs = ~same_values(overlap, old, STATE_FIELDS)
            fixes = overlap.loc[differs, VERSION_COLUMNS]
            if len(fixes):
                _update_versions(con, fixes)
                stored = _replace_rows(stored, fixes)
                corrected = len(fixes)
    candidates = incoming
    if at_stored_moment.any():
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
        same = had_before & same_values(
            before.reset_index(drop=True), candidates, STATE_FIELDS
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
    timeline = (
        pd.concat([stored, candidates], ignore_index=True)
        if len(stored)
        else candidates
    )
    latest = timeline.iloc[latest_per_deal(timeline)].set_index("deal_id")
    current = batch.deals.set_index("deal_id")
    latest = latest.reindex(current.index)
    missing = latest["valid_from"].isna().to_numpy()
    past = member(current.index, older or ())
    differs = ~past & (missing | ~same_values(latest, current, STATE_FIELDS))
    past_rows = _past_snapshot(
        con, current.loc[past], timeline, snapshot_at, batch.source
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
        "history_rows": len(candidates) + len(snapshot) + past_rows["added"],
        "history_rows_corrected": corrected + past_rows["corrected"],
        "snapshot_versions": len(snapshot) + past_rows["added"],
        "snapshot_moved": moved,
    }


def _past_snapshot(
    con, current: pd.DataFrame, timeline, snapshot_at, source: str
) -> dict:
    """Record an older snapshot's state of ``current`` deals at its moment.

    Nothing is added where the state in effect at that moment is already the
    file's; a stored version at exactly that moment with another state (the
    same day's export, corrected) is updated in place.
    """
    if current.empty:
        return {"added": 0, "corrected": 0}
    moment = np.datetime64(pd.Timestamp(snapshot_at).to_datetime64(), "us")
    probe = pd.DataFrame(
        {
            "deal_id": current.index.to_numpy(),
            "valid_from": np.full(len(current), moment, dtype="M8[us]"),
            "row": np.arange(len(current)),
        }
    )
    known = timeline.assign(at=timeline["valid_from"]).sort_values("valid_from")
    effect = pd.merge_asof(
        probe, known, on="valid_from", by="deal_id", allow_exact_matches=True
    ).sort_values("row")
    state = current[STATE_FIELDS].reset_index()
    same = effect["outcome"].notna().to_numpy() & same_values(
        effect.reset_index(drop=True), state, STATE_FIELDS
    )
    at_moment = (effect["at"].to_numpy().astype("M8[us]") == moment) & ~same
    rows = conform_versions(
        state.assign(valid_from=probe["valid_from"].to_numpy(), source=source)
    )
    if at_moment.any():
        _update_versions(con, rows.loc[at_moment])
    added = ~same & ~at_moment
    _insert_versions(con, rows.loc[added])
    return {"added": int(added.sum()), "corrected": int(at_moment.sum())}


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
    rows = pa.Table.from_pandas(versions[VERSION_COLUMNS], preserve_index=False)
    with _registered(con, rows) as view:
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


def _write_stages(con, stages: pd.DataFrame, *, complete: bool = True) -> None:
    """Store the batch's stages.

    ``complete`` False (a report, which shows some stages in no reliable
    order) adds only stages not stored yet, after the stored ones. A stage
    without a default probability keeps the stored one.
    """
    if stages is None or stages.empty:
        return
    if not complete:
        known = {row[0] for row in con.execute("SELECT stage FROM stages").fetchall()}
        stages = stages.loc[~stages["stage"].isin(known)]
        if stages.empty:
            return
        start = con.execute(
            "SELECT coalesce(max(sort_order), 0) FROM stages"
        ).fetchall()[0][0]
        stages = stages.assign(
            sort_order=np.arange(start + 1, start + 1 + len(stages), dtype=np.int64)
        )
    with _registered(con, stages) as view:
        con.execute(
            "INSERT OR REPLACE INTO stages "
            "(stage, sort_order, default_probability, is_closed, is_won) "
            "SELECT v.stage, v.sort_order, "
            "coalesce(v.default_probability, s.default_probability), "
            f"v.is_closed, v.is_won FROM {view} v LEFT JOIN stages s USING (stage)"
        )


IMPORT_AUTHOR = "import"
_PERSON_FIELDS = ["name", "title", "role", "influence", "removed"]


def _write_stakeholders(con, batch: DealBatch, *, snapshot_at: dt.datetime) -> dict:
    """Append stakeholder versions from ``batch.stakeholders`` (see the
    module docstring); returns the counts for the summary."""
    incoming = batch.stakeholders.copy()
    incoming = incoming.loc[member(incoming["deal_id"], batch.deals["deal_id"])]
    incoming["removed"] = False
    with _registered(con, batch.deals[["deal_id"]]) as ids_view:
        stored = con.execute(
            f"""
            SELECT s.stakeholder_id, s.deal_id, s.name, s.title, s.role,
                   s.influence, s.removed, s.recorded_by, s.recorded_at
            FROM stakeholders s JOIN {ids_view} i USING (deal_id)
            ORDER BY s.recorded_at, s.version_id
            """
        ).df()
    by_app = stored["recorded_by"].fillna("") != IMPORT_AUTHOR
    app_deals = set(stored.loc[by_app, "deal_id"])
    kept = member(incoming["deal_id"], app_deals)
    incoming = incoming.loc[~kept].reset_index(drop=True)
    latest = (
        stored.loc[~by_app & ~member(stored["deal_id"], app_deals)]
        .groupby("stakeholder_id", sort=False)
        .tail(1)
        .set_index("stakeholder_id")
    )
    moment = pd.Timestamp(snapshot_at)

    def after_last(ids) -> np.ndarray:
        last = pd.to_datetime(latest["recorded_at"].reindex(ids)).to_numpy()
        at = np.full(len(ids), moment.to_datetime64(), dtype="M8[us]")
        late = ~pd.isna(last) & (last.astype("M8[us]") >= at)
        at[late] = last[late].astype("M8[us]") + np.timedelta64(1, "s")
        return at

    # New people and changed ones.
    previous = latest.reindex(incoming["stakeholder_id"])
    is_new = previous["name"].isna().to_numpy()
    differs = is_new | (
        value_keys(previous.reset_index(drop=True), _PERSON_FIELDS).to_numpy()
        != value_keys(incoming, _PERSON_FIELDS).to_numpy()
    )
    added = incoming.loc[differs].reset_index(drop=True)
    first_at = pd.to_datetime(added["recorded_at"]).to_numpy().astype("M8[us]")
    later_at = after_last(added["stakeholder_id"])
    new_rows = is_new[differs]
    use_file = new_rows & ~np.isnat(first_at)
    added["recorded_at"] = np.where(use_file, first_at, later_at)

    # People imported before who are no longer on the deal in the file.
    present = set(incoming["stakeholder_id"])
    gone = latest.loc[
        ~latest.index.isin(present) & ~latest["removed"].fillna(False).astype(bool)
    ].reset_index()
    gone = gone.assign(removed=True, recorded_at=after_last(gone["stakeholder_id"]))

    rows = pd.concat(
        [added.assign(removed=False), gone[added.columns.intersection(gone.columns)]],
        ignore_index=True,
    )
    if len(rows):
        rows = rows.assign(recorded_by=IMPORT_AUTHOR)
        frame = pd.DataFrame(
            {
                "stakeholder_id": rows["stakeholder_id"].astype("str"),
                "deal_id": rows["deal_id"].astype("str"),
                "name": rows["name"].astype("str"),
                "title": rows["title"].astype("str"),
                "role": rows["role"].astype("str"),
                "influence": rows["influence"].astype("str"),
                "removed": rows["removed"].astype(bool),
                "recorded_by": rows["recorded_by"].astype("str"),
                "recorded_at": pd.to_datetime(rows["recorded_at"]).astype(
                    "datetime64[us]"
                ),
            }
        )
        with _registered(con, frame) as view:
            con.execute(
                f"""
                INSERT INTO stakeholders (stakeholder_id, deal_id, name, title,
                    role, influence, removed, recorded_by, recorded_at)
                SELECT stakeholder_id, deal_id, name, title, role, influence,
                       removed, recorded_by, CAST(recorded_at AS TIMESTAMP)
                FROM {view}
                """
            )
    return {
        "stakeholders_added": int(len(added)),
        "stakeholders_removed": int(len(gone)),
        "stakeholder_deals_kept": len(set(batch.stakeholders["deal_id"]) & app_deals),
    }

"""Salesforce Data Export: ``Opportunity.csv``, ``OpportunityHistory.csv`` and
the companion files that resolve ids into names.

All files are passed together; :mod:`dealcase.importing.salesforce_files`
tells them apart and reads the companions (``User`` names the owners,
``Account`` the accounts and adds ``Account.<field>`` attributes,
``OpportunityContactRole`` with ``Contact`` gives stakeholders,
``CurrencyType`` the exchange rates). A report export instead of
``Opportunity.csv`` goes to :mod:`dealcase.importing.salesforce_report`.
One opportunity file per import: several are refused with an InputError.

Fields taken from Opportunity: ``Id`` (deal id), ``Name``, ``AccountId``
(``Account.Name`` when a report export carries it), ``OwnerId`` (or
``Owner.Name``), ``StageName``, ``Amount``, ``CurrencyIsoCode``,
``Probability`` (percent), ``CreatedDate``, ``CloseDate``, ``IsClosed`` and
``IsWon`` ("0"/"1": the outcome), ``ForecastCategoryName`` (else
``ForecastCategory``), ``NextStep``. ``Type``, ``LeadSource``, ``Description``
and every custom ``__c`` column are kept as attributes. The placeholder id
``000000000000000AAA`` counts as empty; rows with ``IsDeleted`` = 1 are
skipped.

History: each OpportunityHistory row becomes a version at its
``CreatedDate``, with the outcome of its stage (learned from the
opportunities' ``IsClosed``/``IsWon``, else from a stage named like
"Closed Won"/"Closed Lost"). Rows of one deal that share a timestamp (a demo
org loads all of them at once) are kept in the export's order, each one
microsecond after the previous, so none is lost. Besides those:

- a deal without any history row gets a creation version at its
  ``CreatedDate`` timestamp (open), and, if it is closed, a closing version at its
  close date (at least one second after the creation version);
- a deal whose state in ``Opportunity.csv`` differs from its last history
  row gets one more version with that state, at its close date when it
  closed after the last row, else at ``LastModifiedDate`` when that is
  later, else one second after the last row.

OpportunityHistory records no next step: the opportunity's ``NextStep`` is
written into each deal's latest version only, never into earlier ones, and
does not by itself make the state differ from the last history row.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dealcase.errors import InputError
from dealcase.importing import parsing
from dealcase.importing.batch import (
    STATE_FIELDS,
    DealBatch,
    SkippedRows,
    attributes_json,
    conform_deals,
    conform_versions,
    duplicated_versions,
    latest_per_deal,
    may_have_padding,
    member,
    release_memory,
    text_chunks,
)
from dealcase.importing.readers import read_table
from dealcase.importing.salesforce_files import (
    ACCOUNT_ATTRIBUTES,
    account_table,
    contact_roles,
    currency_rates,
    sort_files,
    user_names,
)
from dealcase.importing.writer import same_values

logger = logging.getLogger(__name__)

REQUIRED = ("Id", "StageName")
ATTRIBUTE_COLUMNS = ("Type", "LeadSource", "Description")
HISTORY_REQUIRED = ("OpportunityId", "CreatedDate", "StageName")
HISTORY_USED = (
    *HISTORY_REQUIRED,
    "IsDeleted",
    "Amount",
    "CloseDate",
    "Probability",
    "ForecastCategory",
)


def build_salesforce_batch(
    files, *, history=None, date_order: str | None = None
) -> DealBatch:
    """Read a Salesforce export (and its companions) into a batch.

    Parameters
    ----------
    files : list of path
        Every file of the export: ``Opportunity.csv`` (or one opportunity
        report export) and any of ``OpportunityHistory``, ``User``,
        ``Account``, ``Contact``, ``OpportunityContactRole`` and
        ``CurrencyType``, each recognised by its name or header (see
        :mod:`dealcase.importing.salesforce_files`).
    history : path, optional
        ``OpportunityHistory.csv`` (the same as passing it among ``files``).

    Raises
    ------
    InputError
        No opportunity file, several of them, a file of unknown kind, a
        required column missing, or a value that cannot be read.
    """
    found = sort_files(files, history, defer=("history",))
    reports = found.of("report")
    opportunities = found.of("opportunity")
    if len(opportunities) + len(reports) > 1:
        names = ", ".join(Path(t.path).name for t in opportunities + reports)
        raise InputError(
            f"several opportunity files were given ({names}): a Salesforce import "
            "takes one Opportunity export or one report; import the files one "
            "after another"
        )
    if reports:
        from dealcase.importing.salesforce_report import build_report_batch

        if found.paths("history"):
            raise InputError(
                "OpportunityHistory goes with a data export's Opportunity.csv, not "
                "with a report export",
                file=found.paths("history")[0],
            )
        batch = build_report_batch(reports[0], date_order=date_order)
        _add_companions(batch, found)
        return batch
    if not opportunities:
        ignored = f" (not read: {', '.join(found.ignored)})" if found.ignored else ""
        raise InputError(
            "no Opportunity export among the files: expected a CSV with columns "
            "Id, StageName, IsWon (Opportunity.csv) or an opportunity report with "
            f"Stage and Opportunity Name{ignored}",
            file=Path(files[0]) if files else None,
        )
    raw = opportunities[0]
    warnings = list(raw.warnings)
    skipped: list[SkippedRows] = []
    users = user_names(found.one("user"))
    accounts = account_table(found.one("account"))
    deals, lines = _opportunities(raw, skipped, warnings, date_order, users, accounts)
    rows_read = len(raw.frame)
    # The text of the rows is not needed any more.
    raw.frame, raw.line_numbers = raw.frame.iloc[:0], []
    release_memory()

    parts = []
    history_rows = 0
    for history_path in found.paths("history"):
        history_raw = read_table(history_path)
        release_memory()
        warnings += history_raw.warnings
        history_rows += len(history_raw.frame)
        parts.append(_history(history_raw, deals, skipped, warnings, date_order))
        del history_raw
        release_memory()
    versions = (
        pd.concat(parts, ignore_index=True)
        if len(parts) > 1
        else next(iter(parts), None)
    )
    del parts
    if versions is None:
        versions = pd.DataFrame()
    # Rebound at once, so that the unconformed rows are freed.
    versions = conform_versions(versions)
    stages = _stages(deals)
    seen = [
        deals["created_on"].max(),
        deals["closed_on"].max(),
        deals["modified_at"].max(),
    ]
    # Conformed once: the deals of the batch and the state history completes.
    current = current_state(deals)
    del deals
    release_memory()
    versions = _complete_history(current, versions)
    deals = current.drop(columns=["modified_at", "created_at"])
    del current
    release_memory()

    if len(versions):
        seen.append(versions["valid_from"].max())
    seen = [pd.Timestamp(s) for s in seen if not pd.isna(s)]
    today = max(seen).date() if seen else None

    notes = {"file": str(raw.path)}
    if users:
        notes["owners_resolved"] = int(
            member(deals["owner"], set(users.values())).sum()
        )
    if len(accounts):
        notes["accounts_resolved"] = int(
            member(deals["account"], accounts["Name"]).sum()
        )
    batch = DealBatch(
        source="salesforce",
        deals=deals,
        versions=versions,
        has_dates=True,
        today=today,
        stages=stages,
        meta={"dataset": "salesforce", "has_dates": "true"},
        rows_read=rows_read,
        history_rows_read=history_rows,
        skipped=skipped,
        warnings=warnings,
        notes=notes,
        missing_fields=frozenset({"team", "segment"}),
    )
    _add_companions(batch, found)
    return batch


def _add_companions(batch: DealBatch, found) -> None:
    """Stakeholders and exchange rates from the companion files."""
    if found.ignored:
        batch.notes["files_ignored"] = list(found.ignored)
        batch.warnings.append(
            f"{len(found.ignored)} file(s) are not objects this import reads and "
            f"were left unread: {', '.join(found.ignored[:10])}"
            + (" ..." if len(found.ignored) > 10 else "")
        )
    stakeholders, counts = contact_roles(
        found.one("contact_role"), found.one("contact"), batch.deals["deal_id"]
    )
    if found.one("contact_role") is not None:
        batch.stakeholders = stakeholders
        batch.notes.update(counts)
        if counts.get("contact_roles_without_role"):
            batch.warnings.append(
                f"{counts['contact_roles_without_role']} contact role(s) have a role "
                "with no buying-influence equivalent (such as Other) and were not "
                "made stakeholders"
            )
    rates, corporate = currency_rates(found.one("currency"))
    if rates is not None:
        batch.rates = rates
        if corporate and not batch.meta.get("currency"):
            batch.meta["currency"] = corporate


def _blank_placeholders(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells trimmed, placeholder ids blank. A column already clean (the
    usual case) is shared with ``frame``, not copied."""
    frame = frame.copy(deep=False)
    placeholders = pa.array(sorted(parsing.PLACEHOLDER_IDS), pa.large_string())
    for column in frame.columns:
        text = text_chunks(frame[column])
        placeholder = pc.is_in(text, value_set=placeholders)
        if not may_have_padding(text) and not pc.any(placeholder).as_py():
            continue
        padded = pc.not_equal(pc.utf8_trim_whitespace(text), text)
        if not pc.any(pc.or_(padded, placeholder)).as_py():
            continue
        values = pd.Series(frame[column], dtype="str").str.strip()
        frame[column] = values.where(~member(values, parsing.PLACEHOLDER_IDS), "")
    return frame


def _require(raw, names) -> None:
    missing = [n for n in names if n not in raw.columns]
    if missing:
        raise InputError(
            f"column(s) {', '.join(missing)} missing: this does not look like a "
            "Salesforce export (expected the API names of the fields)",
            file=raw.path,
            line=1,
        )


def _first_column(raw, *names) -> str | None:
    return next((n for n in names if n in raw.columns), None)


def _opportunities(raw, skipped, warnings, date_order, users=None, accounts=None):
    _require(raw, REQUIRED)
    file = str(raw.path)
    frame = _blank_placeholders(raw.frame)
    lines = np.asarray(raw.line_numbers, dtype=np.int64)

    keep = (frame["Id"] != "").to_numpy().copy()
    if not keep.all():
        skipped.append(SkippedRows("no opportunity Id", file, lines[~keep].tolist()))
    if "IsDeleted" in frame.columns:
        deleted = keep & frame["IsDeleted"].isin(["1", "true", "True"]).to_numpy()
        if deleted.any():
            skipped.append(
                SkippedRows("deleted in Salesforce", file, lines[deleted].tolist())
            )
        keep &= ~deleted
    if not keep.all():
        frame, lines = frame.loc[keep].reset_index(drop=True), lines[keep]
    repeated = frame["Id"].duplicated(keep="last").to_numpy()
    if repeated.any():
        skipped.append(
            SkippedRows(
                "Id repeated later in the file; the last row is kept",
                file,
                lines[repeated].tolist(),
            )
        )
        frame, lines = frame.loc[~repeated].reset_index(drop=True), lines[~repeated]
    where = {"file": file, "line_numbers": lines}

    def text(*names):
        column = _first_column(raw, *names)
        if column is None:
            return pd.Series([None] * len(frame), dtype="str")
        return frame[column]

    def dates(name, timestamps=False):
        if name not in frame.columns:
            return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[s]")
        parse = parsing.parse_timestamps if timestamps else parsing.parse_dates
        values = parse(
            frame[name], column=name, date_order=date_order, warnings=warnings, **where
        )
        return pd.Series(pd.to_datetime(pd.Series(values).to_numpy()))

    deals = pd.DataFrame({"deal_id": frame["Id"]})
    deals["name"] = text("Name").array
    deals["account"] = text("Account.Name", "AccountName", "AccountId").array
    deals["owner"] = text("Owner.Name", "OwnerName", "OwnerId").array
    if users and _first_column(raw, "Owner.Name", "OwnerName") is None:
        if "OwnerId" in frame.columns:
            named = frame["OwnerId"].map(users)
            deals["owner"] = named.where(named.notna(), frame["OwnerId"]).array
    account_names = {}
    if accounts is not None and len(accounts) and "AccountId" in frame.columns:
        account_names = dict(zip(accounts["Id"], accounts["Name"]))
        if _first_column(raw, "Account.Name", "AccountName") is None:
            named = frame["AccountId"].map(account_names)
            deals["account"] = named.where(named.notna(), frame["AccountId"]).array
        by_id = accounts.set_index("Id")
        for column in ACCOUNT_ATTRIBUTES:
            if column in by_id.columns:
                frame[f"Account.{column}"] = (
                    frame["AccountId"].map(by_id[column]).fillna("").array
                )
    deals["stage"] = frame["StageName"].array
    if "StageSortOrder" in frame.columns:
        deals["stage_order"] = pd.to_numeric(frame["StageSortOrder"], errors="coerce")
    deals["next_step"] = text("NextStep").array
    deals["created_on"] = dates("CreatedDate")
    deals["created_at"] = dates("CreatedDate", timestamps=True)
    deals["close_date"] = dates("CloseDate")
    deals["modified_at"] = dates("LastModifiedDate", timestamps=True)

    if "Amount" in frame.columns:
        amounts, codes = parsing.parse_money(
            frame["Amount"], column="Amount", warnings=warnings, **where
        )
        deals["amount"] = pd.Series(amounts, dtype="float64").to_numpy()
    else:
        codes = pd.Series([None] * len(frame))
    currency = text("CurrencyIsoCode").replace("", None)
    currency = currency.where(
        currency.notna(), pd.Series(codes, dtype="str").to_numpy()
    )
    deals["currency"] = currency.array
    deals["amount_original"] = deals.get("amount")
    if "Probability" in frame.columns:
        deals["probability"] = parsing.parse_probability(
            frame["Probability"], column="Probability", **where
        ).to_numpy()
    category = _first_column(raw, "ForecastCategoryName", "ForecastCategory")
    if category:
        deals["forecast_category"] = parsing.normalise_forecast_category(
            frame[category], file=file, column=category, warnings=warnings
        ).to_numpy()

    is_closed = _flags(frame, "IsClosed", where)
    is_won = _flags(frame, "IsWon", where)
    if is_closed is None:
        is_closed = _stage_outcomes(deals["stage"]).ne("open").to_numpy()
    if is_won is None:
        is_won = _stage_outcomes(deals["stage"]).eq("won").to_numpy()
    deals["outcome"] = np.where(is_won, "won", np.where(is_closed, "lost", "open"))
    deals["closed_on"] = deals["close_date"].where(deals["outcome"] != "open")

    custom = [c for c in raw.columns if c.endswith("__c")]
    names = {c: c for c in ATTRIBUTE_COLUMNS if c in frame.columns}
    names.update({c: c for c in custom})
    names.update({c: c for c in frame.columns if c.startswith("Account.")})
    names.pop("Account.Name", None)
    deals["attributes"] = attributes_json(frame, names).array
    deals["source"] = "salesforce"
    return deals, lines


def _flags(frame, name, where):
    if name not in frame.columns:
        return None
    values = parsing.parse_bool(frame[name], column=name, **where)
    return values.fillna(False).astype(bool).to_numpy()


def _stage_outcomes(stages: pd.Series) -> pd.Series:
    """:func:`_stage_outcome` of each stage, worked out once per stage name."""
    codes, names = pd.factorize(stages, use_na_sentinel=False)
    outcomes = np.array([_stage_outcome(name) for name in names], dtype=object)
    return pd.Series(outcomes[codes], index=stages.index, dtype="str")


def _stage_outcome(stage) -> str:
    name = str(stage or "").strip().lower()
    if "won" in name:
        return "won"
    if "lost" in name:
        return "lost"
    return "open"


def _history(raw, deals, skipped, warnings, date_order) -> pd.DataFrame:
    """The versions of an OpportunityHistory file.

    Takes over ``raw``: its frame and line numbers are emptied once read (the
    text of millions of rows is not kept beside the versions made from it).
    """
    _require(raw, HISTORY_REQUIRED)
    file = str(raw.path)
    frame = _blank_placeholders(
        raw.frame[[c for c in raw.columns if c in HISTORY_USED]]
    )
    lines = np.asarray(raw.line_numbers, dtype=np.int64)
    raw.frame, raw.line_numbers = raw.frame.iloc[:0], []
    keep = np.ones(len(frame), dtype=bool)
    if "IsDeleted" in frame.columns:
        deleted = frame["IsDeleted"].isin(["1", "true", "True"]).to_numpy()
        if deleted.any():
            skipped.append(
                SkippedRows("deleted in Salesforce", file, lines[deleted].tolist())
            )
        keep &= ~deleted
    unknown = keep & ~member(frame["OpportunityId"], deals["deal_id"])
    if unknown.any():
        skipped.append(
            SkippedRows(
                "history of an opportunity not in the export",
                file,
                lines[unknown].tolist(),
            )
        )
    keep &= ~unknown
    if not keep.all():
        frame, lines = frame.loc[keep].reset_index(drop=True), lines[keep]
    where = {"file": file, "line_numbers": lines}

    moments = pd.to_datetime(
        pd.Series(
            parsing.parse_timestamps(
                frame["CreatedDate"],
                column="CreatedDate",
                date_order=date_order,
                warnings=warnings,
                **where,
            )
        ).to_numpy()
    )
    versions = pd.DataFrame({"deal_id": frame["OpportunityId"], "valid_from": moments})
    undated = versions["valid_from"].isna().to_numpy()
    if undated.any():
        skipped.append(
            SkippedRows(
                "history row without CreatedDate", file, lines[undated].tolist()
            )
        )
    versions["stage"] = frame["StageName"].array
    if "Amount" in frame.columns:
        amounts, _ = parsing.parse_money(frame["Amount"], column="Amount", **where)
        versions["amount"] = pd.Series(amounts, dtype="float64").to_numpy()
    if "CloseDate" in frame.columns:
        versions["close_date"] = pd.to_datetime(
            pd.Series(
                parsing.parse_dates(
                    frame["CloseDate"],
                    column="CloseDate",
                    date_order=date_order,
                    **where,
                )
            ).to_numpy()
        )
    if "Probability" in frame.columns:
        versions["probability"] = parsing.parse_probability(
            frame["Probability"], column="Probability", **where
        ).to_numpy()
    if "ForecastCategory" in frame.columns:
        versions["forecast_category"] = parsing.normalise_forecast_category(
            frame["ForecastCategory"],
            file=file,
            column="ForecastCategory",
            warnings=warnings,
        ).to_numpy()

    # The text of the rows is read: freed before the steps below.
    del frame, where
    release_memory()

    # Outcome of each stage as the opportunities state it, worked out once
    # per stage name.
    known = deals.drop_duplicates("stage").set_index("stage")["outcome"]
    codes, names = pd.factorize(versions["stage"], use_na_sentinel=False)
    names = pd.Series(names, dtype="str")
    outcome = names.map(known)
    outcome = outcome.where(outcome.notna(), _stage_outcomes(names))
    outcome = pa.array(outcome.to_numpy(dtype=object), type=pa.large_string())
    versions["outcome"] = pd.array(pc.take(outcome, codes), dtype="str")

    # Keep rows that share a moment, in file order, a microsecond apart.
    versions["line"] = lines
    if undated.any():
        versions = versions.loc[~undated].reset_index(drop=True)
    shared = duplicated_versions(versions, keep=False)
    if shared.any():
        ties = versions.loc[shared].sort_values(
            ["deal_id", "valid_from", "line"], kind="stable"
        )
        step = ties.groupby(["deal_id", "valid_from"]).cumcount().to_numpy()
        versions.loc[ties.index, "valid_from"] = ties["valid_from"] + pd.to_timedelta(
            step, unit="us"
        )
    versions["source"] = "salesforce"
    return versions.drop(columns=["line"])


def current_state(deals: pd.DataFrame) -> pd.DataFrame:
    """The deals conformed (:func:`conform_deals`), with their ``created_at``
    and ``modified_at`` timestamps, as :func:`_complete_history` takes them."""
    return conform_deals(deals).assign(
        modified_at=deals["modified_at"].to_numpy(),
        created_at=pd.to_datetime(deals["created_at"]).to_numpy(),
    )


def _complete_history(current: pd.DataFrame, versions: pd.DataFrame) -> pd.DataFrame:
    """Add creation, closing and current-state versions where the history
    lacks them (see the module docstring).

    ``current`` is the conformed deals with their ``created_at`` and
    ``modified_at`` timestamps; ``versions`` the conformed history rows.
    """
    # The latest version of each deal names every deal the history has.
    latest = latest_per_deal(versions)
    has_history = member(current["deal_id"], versions["deal_id"].iloc[latest])
    added = []

    # Deals without history: creation and, when closed, closing.
    bare = current.loc[~has_history & current["created_on"].notna()]
    created = bare["created_at"].astype("datetime64[us]")
    opening = bare.assign(valid_from=created.to_numpy())
    closed = opening["outcome"] != "open"
    opening.loc[closed, "outcome"] = "open"
    opening.loc[closed, "forecast_category"] = None
    added.append(opening.assign(derived=True))
    ending = bare.loc[bare["outcome"] != "open"]
    if len(ending):
        start = ending["created_at"].astype("datetime64[us]")
        close = ending["closed_on"].astype("datetime64[us]")
        at = close.where(close > start, start + pd.Timedelta(seconds=1))
        added.append(ending.assign(valid_from=at.to_numpy(), derived=True))

    # Deals with history whose file state differs from their last row.
    # History rows have no next step: it does not make a version of its own.
    moving = [f for f in STATE_FIELDS if f != "next_step"]
    last = versions[["deal_id", "valid_from", *moving]].iloc[latest]
    last = last.set_index("deal_id")
    tracked = current if has_history.all() else current.loc[has_history]
    tracked = tracked.set_index("deal_id")
    if not last.index.equals(tracked.index):
        last = last.reindex(tracked.index)
    differs = ~same_values(last, tracked, moving)
    if differs.any():
        late = tracked.loc[differs].reset_index()
        previous = last.loc[differs, "valid_from"].to_numpy().astype("M8[us]")
        close = late["closed_on"].to_numpy().astype("M8[us]")
        modified = pd.to_datetime(late["modified_at"]).to_numpy().astype("M8[us]")
        at = previous + np.timedelta64(1, "s")
        at = np.where(~np.isnat(modified) & (modified > previous), modified, at)
        closing = (late["outcome"] != "open").to_numpy()
        use_close = closing & ~np.isnat(close) & (close > previous)
        at = np.where(use_close, close, at)
        added.append(late.assign(valid_from=at))
    del last, tracked

    added = [
        conform_versions(frame.assign(source="salesforce"))
        for frame in added
        if len(frame)
    ]
    if not added and not len(versions):
        return versions
    if added:
        # Every part is conformed already, so their concatenation is too.
        versions = pd.concat([versions, *added], ignore_index=True)
        latest = None
    return _latest_next_step(versions, current, latest)


def _latest_next_step(
    versions: pd.DataFrame, current: pd.DataFrame, latest: np.ndarray | None = None
) -> pd.DataFrame:
    """The deal's current next step in its latest version, none in the
    earlier ones (OpportunityHistory does not record the next step).

    ``latest`` is :func:`latest_per_deal` of ``versions`` when known.
    """
    if current["next_step"].isna().all():
        steps = pa.nulls(len(versions), pa.large_string())
        versions["next_step"] = pd.array(steps, dtype="str")
        return versions
    if latest is None:
        latest = latest_per_deal(versions)
    deals = versions["deal_id"].iloc[latest]
    step = deals.map(current.set_index("deal_id")["next_step"])
    # Each latest version takes its deal's step; the others none.
    where = np.full(len(versions), -1, dtype=np.int64)
    where[latest] = np.arange(len(latest))
    picks = pa.array(where, mask=where < 0)
    step = pa.array(step.to_numpy(dtype=object, na_value=None), pa.large_string())
    steps = pc.take(step, picks)
    versions["next_step"] = pd.array(steps, dtype="str")
    return versions


def _stages(deals: pd.DataFrame) -> pd.DataFrame:
    """Stages seen in the export, ordered like Salesforce orders them."""
    rows = deals.drop_duplicates("stage").copy()
    rows = rows.loc[rows["stage"].astype("str").str.strip() != ""]
    rows["is_closed"] = rows["outcome"] != "open"
    rows["is_won"] = rows["outcome"] == "won"
    probability = (
        deals.groupby("stage")["probability"].median()
        if ("probability" in deals.columns)
        else pd.Series(dtype="float64")
    )
    rows["default_probability"] = rows["stage"].map(probability).astype("float64")
    rows.loc[rows["is_won"], "default_probability"] = 1.0
    rows.loc[rows["is_closed"] & ~rows["is_won"], "default_probability"] = 0.0
    order = ["stage_order"] if "stage_order" in rows.columns else []
    rows = rows.sort_values(
        [*order, "is_closed", "default_probability"], na_position="first"
    )
    rows["sort_order"] = np.arange(1, len(rows) + 1)
    return rows[
        ["stage", "sort_order", "default_probability", "is_closed", "is_won"]
    ].reset_index(drop=True)

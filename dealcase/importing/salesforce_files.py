"""Tell the files of a Salesforce import apart, and read the companions.

A user passes every file of an export as positional arguments. Each one is
recognised by its file name (``Opportunity.csv``, ``OpportunityHistory.csv``,
``User.csv``, ``Account.csv``, ``Contact.csv``, ``OpportunityContactRole.csv``,
``CurrencyType.csv``; case, spaces and a trailing copy number such as
``Opportunity (2).csv`` do not matter) or, failing that, by its header. A
report export (columns labelled ``Opportunity Name``, ``Stage``, ...) is told
from a data export (API names ``Name``, ``StageName``, ...) by its header.
Only a file's first line is read to tell its kind; files of other objects
(Lead, Task, ...) are left unread and listed as ignored.

The companions resolve ids into names:

- ``User``: ``OwnerId`` -> ``Name`` (else ``FirstName LastName``, else
  ``Username``);
- ``Account``: ``AccountId`` -> ``Name``; ``Industry``, ``Type``,
  ``BillingCountry``, ``BillingState``, ``NumberOfEmployees``,
  ``AnnualRevenue``, ``Rating`` and ``AccountSource`` become deal attributes
  named ``Account.<field>``;
- ``Contact``: names and titles of the people in ``OpportunityContactRole``;
- ``OpportunityContactRole``: the deal's stakeholders (see :data:`ROLE_MAP`);
- ``CurrencyType``: exchange rates; the row with ``IsCorporate`` = 1 names
  the reporting currency.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dealcase.errors import InputError
from dealcase.importing import parsing
from dealcase.importing.readers import DELIMITERS, RawTable, read_table

KINDS = (
    "opportunity",
    "history",
    "user",
    "account",
    "contact",
    "contact_role",
    "currency",
    "report",
)

# File names (lower case, without punctuation) of each kind.
_NAMES = {
    "opportunity": {"opportunity", "opportunities"},
    "history": {"opportunityhistory", "opportunityfieldhistory"},
    "user": {"user", "users"},
    "account": {"account", "accounts"},
    "contact": {"contact", "contacts"},
    "contact_role": {"opportunitycontactrole", "opportunitycontactroles"},
    "currency": {"currencytype", "currencytypes"},
}

# Report columns, as a report labels them in English.
REPORT_MARKERS = (
    "Opportunity Name",
    "Opportunity ID",
    "Opportunity Owner",
    "Stage",
    "Close Date",
    "Amount (Converted)",
    "Forecast Category",
)

# OpportunityContactRole.Role -> buying-influence role. Roles not listed
# (Other, blank) give no stakeholder.
ROLE_MAP = {
    "decision maker": "economic",
    "economic decision maker": "economic",
    "economic buyer": "economic",
    "technical buyer": "technical",
    "technical decision maker": "technical",
    "evaluator": "technical",
    "business user": "user",
    "end user": "user",
    "user": "user",
    "influencer": "coach",
    "executive sponsor": "coach",
    "champion": "coach",
}

ACCOUNT_ATTRIBUTES = (
    "Industry",
    "Type",
    "BillingCountry",
    "BillingState",
    "NumberOfEmployees",
    "AnnualRevenue",
    "Rating",
    "AccountSource",
)


@dataclass
class SalesforceFiles:
    """The files of one import, read and sorted by kind."""

    tables: dict[str, list[RawTable]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    deferred: dict[str, list[Path]] = field(default_factory=dict)

    def of(self, kind: str) -> list[RawTable]:
        return self.tables.get(kind, [])

    def paths(self, kind: str) -> list[Path]:
        """Files of a kind left for the caller to read (see ``defer``)."""
        return self.deferred.get(kind, [])

    def one(self, kind: str) -> RawTable | None:
        found = self.of(kind)
        if len(found) > 1:
            names = ", ".join(Path(t.path).name for t in found)
            raise InputError(
                f"{len(found)} {kind.replace('_', ' ')} files were given ({names}); "
                "pass one of each kind per import"
            )
        return found[0] if found else None


def _name_key(path: Path) -> str:
    stem = re.sub(r"\s*\(\d+\)$", "", Path(path).stem)
    return re.sub(r"[^a-z]", "", stem.lower())


def file_kind(path, columns) -> str | None:
    """The kind of a Salesforce file (one of :data:`KINDS`), or None.

    The header decides between a report and a data export; the file name
    decides among the objects of a data export, then the header.
    """
    columns = {str(c).strip() for c in columns}
    if "StageName" not in columns and sum(m in columns for m in REPORT_MARKERS) >= 2:
        return "report"
    key = _name_key(path)
    for kind, names in _NAMES.items():
        if key in names:
            return kind
    if {"IsoCode", "ConversionRate"} <= columns:
        return "currency"
    if {"OpportunityId", "ContactId", "Role"} <= columns:
        return "contact_role"
    if {"OpportunityId", "StageName", "CreatedDate"} <= columns:
        return "history"
    if {"Id", "StageName"} <= columns:
        return "opportunity"
    if "Id" in columns and "Username" in columns:
        return "user"
    if "Id" in columns and {"LastName", "Email"} <= columns:
        return "contact"
    if {"Id", "Name"} <= columns and columns & {"Industry", "BillingCountry"}:
        return "account"
    return None


def peek_header(path: Path) -> list[str]:
    """The header cells of a file, read from its first bytes only (a full
    data export holds files this import never needs to read)."""
    if not path.exists() or path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        return read_table(path).columns
    data = path.read_bytes()[:65536]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="replace")
    else:
        text = data.decode("utf-8-sig", errors="replace")
    first = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    delimiter = max(DELIMITERS, key=first.count)
    try:
        cells = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    except (StopIteration, csv.Error):
        return []
    return [c.strip() for c in cells]


def sort_files(files, history=None, *, defer=()) -> SalesforceFiles:
    """Sort the files by kind and read the ones this import uses.

    A file of another kind (a full export holds many objects: Lead, Task,
    ...) is left unread and listed in ``ignored``. Files of a kind in
    ``defer`` are not read but listed in ``deferred`` (by
    :meth:`SalesforceFiles.paths`), so that a large history file need not be
    in memory while the opportunities are read.
    """
    found = SalesforceFiles()

    def add(kind: str, path: Path) -> None:
        if kind in defer:
            found.deferred.setdefault(kind, []).append(path)
        else:
            found.tables.setdefault(kind, []).append(read_table(path))

    for path in [Path(f) for f in files]:
        kind = file_kind(path, peek_header(path))
        if kind is None:
            found.ignored.append(path.name)
            continue
        add(kind, path)
    if history is not None:
        add("history", Path(history))
    return found


def require(raw: RawTable, names, what: str) -> None:
    missing = [n for n in names if n not in raw.columns]
    if missing:
        raise InputError(
            f"column(s) {', '.join(missing)} missing from this {what} export",
            file=raw.path,
            line=1,
        )


def _live(raw: RawTable) -> pd.DataFrame:
    """The rows not deleted in Salesforce, placeholder ids blanked."""
    frame = raw.frame.copy()
    for column in frame.columns:
        values = frame[column].astype("str").str.strip()
        frame[column] = values.where(~values.isin(parsing.PLACEHOLDER_IDS), "")
    frame["__line"] = raw.line_numbers
    if "IsDeleted" in frame.columns:
        deleted = frame["IsDeleted"].str.lower().isin(parsing.TRUE_WORDS)
        frame = frame.loc[~deleted]
    return frame.reset_index(drop=True)


def person_names(frame: pd.DataFrame) -> pd.Series:
    """Full names from ``Name``, else ``FirstName LastName``, else
    ``Username``/``Email``."""
    empty = pd.Series([""] * len(frame), index=frame.index, dtype="str")
    name = frame["Name"] if "Name" in frame.columns else empty
    first = frame["FirstName"] if "FirstName" in frame.columns else empty
    last = frame["LastName"] if "LastName" in frame.columns else empty
    joined = (first.str.strip() + " " + last.str.strip()).str.strip()
    name = name.where(name.str.strip() != "", joined)
    for fallback in ("Username", "Email"):
        if fallback in frame.columns:
            name = name.where(name.str.strip() != "", frame[fallback])
    return name.str.strip()


def user_names(raw: RawTable | None) -> dict[str, str]:
    """``User.Id`` -> the user's name."""
    if raw is None:
        return {}
    require(raw, ["Id"], "User")
    frame = _live(raw)
    names = person_names(frame)
    return {i: n for i, n in zip(frame["Id"], names) if i and n}


def account_table(raw: RawTable | None) -> pd.DataFrame:
    """One row per account: ``Id``, ``Name`` and :data:`ACCOUNT_ATTRIBUTES`
    present in the file."""
    if raw is None:
        return pd.DataFrame(columns=["Id", "Name"])
    require(raw, ["Id", "Name"], "Account")
    frame = _live(raw)
    keep = ["Id", "Name"] + [c for c in ACCOUNT_ATTRIBUTES if c in frame.columns]
    frame = frame.loc[frame["Id"] != "", keep]
    return frame.drop_duplicates("Id", keep="last").reset_index(drop=True)


def currency_rates(raw: RawTable | None) -> tuple[dict[str, float] | None, str | None]:
    """Rates (units per unit of the corporate currency) and the corporate
    currency of a ``CurrencyType`` export; ``(None, None)`` without one."""
    if raw is None:
        return None, None
    require(raw, ["IsoCode", "ConversionRate"], "CurrencyType")
    rates = parsing.read_rates(raw.path)
    corporate = None
    if "IsCorporate" in raw.columns:
        flags = parsing.parse_bool(
            raw.frame["IsCorporate"],
            file=raw.path,
            column="IsCorporate",
            line_numbers=raw.line_numbers,
        )
        chosen = raw.frame.loc[flags.fillna(False).astype(bool).to_numpy(), "IsoCode"]
        if len(chosen):
            corporate = chosen.iloc[0].strip().upper()
    return rates, corporate


def contact_roles(
    raw: RawTable | None,
    contacts: RawTable | None,
    deal_ids: pd.Series,
) -> tuple[pd.DataFrame, dict]:
    """Stakeholders from ``OpportunityContactRole`` (with ``Contact`` names).

    Returns
    -------
    stakeholders : pandas.DataFrame
        ``stakeholder_id`` (``<deal_id>-<ContactId>``), ``deal_id``, ``name``,
        ``title``, ``role``, ``influence`` (high for the primary contact),
        ``recorded_at`` (the role's ``CreatedDate``, NaT when absent).
    counts : dict
        ``contact_roles_read``, ``contact_roles_without_role`` (roles with no
        buying-influence equivalent, left out), ``contact_roles_unknown_deal``.
    """
    columns = ["stakeholder_id", "deal_id", "name", "title", "role", "influence"]
    empty = pd.DataFrame({c: pd.Series([], dtype="str") for c in columns})
    empty["recorded_at"] = pd.Series([], dtype="datetime64[us]")
    if raw is None:
        return empty, {}
    require(raw, ["OpportunityId", "ContactId", "Role"], "OpportunityContactRole")
    frame = _live(raw)
    counts = {"contact_roles_read": len(raw.frame)}
    known = frame["OpportunityId"].isin(set(deal_ids))
    counts["contact_roles_unknown_deal"] = int((~known).sum())
    frame = frame.loc[known & (frame["ContactId"] != "")]
    role = frame["Role"].str.strip().str.lower().map(ROLE_MAP)
    counts["contact_roles_without_role"] = int(role.isna().sum())
    frame = frame.assign(role=role).loc[role.notna()].reset_index(drop=True)

    names = pd.Series(frame["ContactId"].to_numpy(), dtype="str")
    titles = pd.Series([None] * len(frame), dtype="str")
    if contacts is not None:
        require(contacts, ["Id"], "Contact")
        people = _live(contacts)
        by_id = dict(zip(people["Id"], person_names(people)))
        found = names.map(by_id)
        names = found.where(found.notna() & (found != ""), names)
        if "Title" in people.columns:
            title_by_id = dict(zip(people["Id"], people["Title"].str.strip()))
            titles = pd.Series(
                [title_by_id.get(c) or None for c in frame["ContactId"]], dtype="str"
            )
    primary = pd.Series([False] * len(frame))
    if "IsPrimary" in frame.columns:
        primary = frame["IsPrimary"].str.lower().isin(parsing.TRUE_WORDS)
    recorded = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
    if "CreatedDate" in frame.columns and len(frame):
        recorded = pd.Series(
            parsing.parse_timestamps(
                frame["CreatedDate"],
                file=raw.path,
                column="CreatedDate",
                line_numbers=frame["__line"].tolist(),
            ).to_numpy()
        )
    result = pd.DataFrame(
        {
            "stakeholder_id": (frame["OpportunityId"] + "-" + frame["ContactId"])
            .astype("str")
            .to_numpy(),
            "deal_id": frame["OpportunityId"].astype("str").to_numpy(),
            "name": names.to_numpy(),
            "title": titles.to_numpy(),
            "role": frame["role"].astype("str").to_numpy(),
            "influence": pd.Series(
                ["high" if p else None for p in primary], dtype="str"
            ).to_numpy(),
            "recorded_at": pd.to_datetime(recorded).astype("datetime64[us]").to_numpy(),
        }
    )
    # A contact listed twice on one deal (two roles): the first role is kept.
    result = result.drop_duplicates("stakeholder_id", keep="first")
    return result.reset_index(drop=True), counts


_ID_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_OPPORTUNITY_ID_15 = re.compile(r"^006[A-Za-z0-9]{12}$")


def full_opportunity_ids(values: pd.Series) -> pd.Series:
    """Opportunity ids in their 18-character form.

    Reports show the 15-character, case-sensitive id (``0061a00000AbCdE``);
    a data export the 18-character one, which appends three characters that
    encode the case of the first fifteen. Completing the short ids lets a
    report and a data export of one org name the same deal the same way.
    Other values are returned unchanged.
    """

    def complete(value: str) -> str:
        if not _OPPORTUNITY_ID_15.match(value):
            return value
        suffix = ""
        for start in (0, 5, 10):
            bits = sum(
                1 << i for i, c in enumerate(value[start : start + 5]) if c.isupper()
            )
            suffix += _ID_SUFFIX[bits]
        return value + suffix

    text = values.astype("str").str.strip()
    return text.map(complete).astype("str")

"""What every DealCase page shares: the database, cached calls into ``dealcase``,
the sidebar filters and the way problems are told to the user.

The app never keeps a database connection between reruns. Each call opens the
file with :func:`dealcase.store.connect`, asks the library, and closes it, so
the command line can import while the app is open. Results are cached on
:func:`dealcase.store.data_version`, which changes whenever any process writes
the file: the next rerun after a write shows the new data.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from dealcase import store
from dealcase.deals import DEAL_FIELDS  # noqa: F401  (pages use ui.DEAL_FIELDS)
from dealcase.errors import DealCaseError
from dealcase.periods import Quarter, parse_date, parse_quarter, quarter_of

logger = logging.getLogger("dealcase.app")

ALL = "All"
DEAL_PAGE = "views/deal.py"
DEMO_SEED = 7
QUARTERS_BACK = 12
QUARTERS_AHEAD = 2


# The database ------------------------------------------------------------------


def db_path() -> str:
    """The database file this app reads and writes (``DEALCASE_DB`` or the
    default ``data/dealcase.duckdb``)."""
    return str(store.database_path())


def version() -> tuple[int, int]:
    """The key that changes whenever any process writes the database."""
    return store.data_version(db_path())


def ensure_database() -> None:
    """Build the synthetic demo company when no database file exists yet."""
    path = Path(db_path())
    if path.exists():
        return
    from dealcase.demo import build_demo

    with st.spinner(
        f"No database at {path} yet: building the synthetic demo company "
        "(a few seconds, once)..."
    ):
        scale = float(os.environ.get("DEALCASE_DEMO_SCALE", "1"))
        write(build_demo, seed=DEMO_SEED, scale=scale)
    from dealcase.model import train_model

    with st.spinner(
        "Training the close-likelihood model on the demo company's history "
        "(under a minute, once; later starts load the stored model)..."
    ):
        write(train_model)
    st.toast("Demo company built: synthetic data, not a real business.")


def _resolve(target: str):
    module_name, function_name = target.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function_name)


@st.cache_data(show_spinner=False, max_entries=512)
def _cached_call(
    path: str,
    data_version,
    target: str,
    args: tuple,
    kwargs: dict,
    model_as_of: dt.date | None = None,
    _model=None,
):
    function = _resolve(target)
    if _model is not None:
        kwargs = {**kwargs, "model": _model}
    with store.connect(path) as con:
        return function(con, *args, **kwargs)


def query(target: str, *args, model_as_of: dt.date | None = None, **kwargs):
    """Call a ``dealcase`` function with a fresh connection and cache the result.

    ``target`` names the function, e.g. ``"dealcase.forecast.forecast_quarter"``;
    the connection is passed as its first argument. The cache is keyed on the
    database's data version, so a write by any process shows on the next rerun.
    With ``model_as_of``, the close-likelihood model of that date kept in
    memory (:func:`fitted_model`) is passed as ``model``, so the call does not
    fit one again. A problem the user can fix is shown as a sentence and the
    page stops.
    """
    model = fitted_model(model_as_of) if model_as_of is not None else None
    return guarded(
        _cached_call, db_path(), version(), target, args, kwargs, model_as_of, model
    )


def write(function, *args, **kwargs):
    """Call a writing ``dealcase`` function with a fresh connection (no cache).

    Exceptions propagate so the caller can react (for instance to an edit
    conflict); callers wrap them with :func:`guarded` when they need not.
    """
    with store.connect(db_path()) as con:
        return function(con, *args, **kwargs)


def write_to(path: str, function, *args, **kwargs):
    """Like :func:`write`, on another database file (created when missing,
    and removed again when the write fails)."""
    with store.new_file_removed_on_failure(path):
        with store.connect(path) as con:
            return function(con, *args, **kwargs)


def guarded(function, *args, **kwargs):
    """Run ``function``; turn any failure into a sentence and stop the page."""
    try:
        return function(*args, **kwargs)
    except DealCaseError as error:
        st.error(f"{error}")
        st.stop()
    except ModuleNotFoundError as error:
        logger.exception("part of DealCase is missing")
        st.error(
            f"This view needs a part of DealCase that is not installed "
            f"({error.name}). Update DealCase and reload the page."
        )
        st.stop()
    except Exception as error:  # a bug: one sentence here, details in the log
        logger.exception("unexpected failure in %s", getattr(function, "__name__", ""))
        st.error(
            f"Something went wrong ({type(error).__name__}: {error}). "
            "Reload the page; if it happens again, report it with the server log."
        )
        st.stop()


@st.cache_resource(show_spinner=False, max_entries=4)
def _fitted_model(path: str, data_version, as_of: dt.date):
    from dealcase.errors import NotEnoughDataError
    from dealcase.model import model_for_date

    with store.connect(path) as con:
        try:
            return model_for_date(con, as_of)
        except NotEnoughDataError:
            return None  # each function then says what it does without one


def fitted_model(as_of: dt.date):
    """The close-likelihood model for ``as_of``
    (:func:`dealcase.model.model_for_date`: a stored one valid then, else one
    fitted at the present or, for a past date, at its quarter's first day),
    kept in memory until the database changes. None when too few deals have
    closed to fit one."""
    with st.spinner(f"Fitting the close-likelihood model as of {as_of}..."):
        return guarded(_fitted_model, db_path(), version(), as_of)


def _database_facts(con) -> dict:
    from dealcase.history import deals_as_of
    from dealcase.periods import fiscal_start_month, resolve_as_of

    today = resolve_as_of(con, None)
    states = deals_as_of(con, today)
    return {
        "dataset": store.get_meta(con, "dataset", "unknown"),
        "currency": store.get_meta(con, "currency", "USD"),
        "today": today,
        "start_month": fiscal_start_month(con),
        "teams": sorted(states["team"].dropna().astype(str).unique()),
        "owners": sorted(states["owner"].dropna().astype(str).unique()),
        "owners_by_team": {
            team: sorted(group["owner"].dropna().astype(str).unique())
            for team, group in states.groupby("team")
        },
    }


def facts() -> dict:
    """Dataset name, currency, the data's present, fiscal start, teams, owners."""
    return query("ui._database_facts")


# Filters -----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The view every page shares, as held in the URL query."""

    quarter: str
    as_of: dt.date
    team: str | None
    owner: str | None
    today: dt.date
    currency: str
    start_month: int = 1

    @property
    def period(self) -> Quarter:
        """The chosen quarter under the configured fiscal year."""
        return parse_quarter(self.quarter, self.start_month)


def quarter_options(today: dt.date, start_month: int) -> list[str]:
    """Quarter names from a few years back to two quarters ahead, newest first."""
    current = quarter_of(today, start_month)
    quarters = [current]
    for _ in range(QUARTERS_BACK):
        quarters.append(quarters[-1].previous())
    ahead = current
    for _ in range(QUARTERS_AHEAD):
        ahead = ahead.next()
        quarters.insert(0, ahead)
    return [q.name for q in quarters]


def _param(name: str) -> str | None:
    value = st.query_params.get(name)
    return value if value not in (None, "") else None


def sidebar() -> Filters:
    """Draw the shared sidebar and keep its filters in ``st.query_params``."""
    info = facts()
    today = info["today"]
    label = dataset_label(info["dataset"])

    with st.sidebar:
        st.caption(f"Database: `{db_path()}`")
        if info["dataset"] == "demo":
            st.warning(f"Dataset: {label}. Numbers are invented, not a real business.")
        else:
            st.caption(f"Dataset: {label}")

        options = quarter_options(today, info["start_month"])
        wanted = _param("quarter")
        if wanted:
            try:
                wanted = parse_quarter(wanted, info["start_month"]).name
                if wanted not in options:
                    options.append(wanted)
            except DealCaseError:
                st.warning(f"'{wanted}' in the link is not a quarter; showing today's.")
                wanted = None
        current = quarter_of(today, info["start_month"]).name
        quarter = st.selectbox(
            "Quarter",
            options,
            index=options.index(wanted or current),
            key="sidebar_quarter",
        )

        as_of_default = today
        if _param("as_of"):
            try:
                as_of_default = parse_date(_param("as_of"))
            except DealCaseError:
                st.warning("The as-of date in the link is not a date; using today's.")
        if as_of_default > today:
            st.warning(
                f"The as-of date in the link, {as_of_default.isoformat()}, is after "
                f"the data's present ({today.isoformat()}); nothing is known after "
                "it, so the data's present is shown."
            )
            as_of_default = today
        as_of = st.date_input(
            "As of",
            value=as_of_default,
            max_value=today,
            key="sidebar_as_of",
            help="The data as it stood at the end of this day.",
        )

        teams = [ALL, *info["teams"]]
        team = st.selectbox(
            "Team", teams, index=_index(teams, _param("team")), key="sidebar_team"
        )
        owner_choices = info["owners_by_team"].get(team, []) if team != ALL else []
        owners = [ALL, *(owner_choices or info["owners"])]
        owner = st.selectbox(
            "Owner", owners, index=_index(owners, _param("owner")), key="sidebar_owner"
        )
        st.caption(f"Data as of {today.isoformat()} · money in {info['currency']}")

    _store_params(quarter=quarter, as_of=as_of, team=team, owner=owner, today=today)
    return Filters(
        quarter=quarter,
        as_of=as_of,
        team=None if team == ALL else team,
        owner=None if owner == ALL else owner,
        today=today,
        currency=info["currency"],
        start_month=info["start_month"],
    )


def _index(options: list[str], wanted: str | None) -> int:
    return options.index(wanted) if wanted in options else 0


def _store_params(*, quarter, as_of, team, owner, today) -> None:
    wanted = {
        "quarter": quarter,
        "as_of": None if as_of == today else as_of.isoformat(),
        "team": None if team == ALL else team,
        "owner": None if owner == ALL else owner,
    }
    for name, value in wanted.items():
        if value is None:
            if name in st.query_params:
                del st.query_params[name]
        elif st.query_params.get(name) != value:
            st.query_params[name] = value


def dataset_label(dataset: str) -> str:
    """How a dataset is named in the interface; the demo is never called real."""
    if dataset == "demo":
        return "synthetic demo company"
    return f"{dataset} (imported)"


def view_params(filters: Filters, **extra) -> dict[str, str]:
    """Query parameters that reproduce the current view on another page."""
    params = {"quarter": filters.quarter}
    if filters.as_of != filters.today:
        params["as_of"] = filters.as_of.isoformat()
    if filters.team:
        params["team"] = filters.team
    if filters.owner:
        params["owner"] = filters.owner
    params.update({k: str(v) for k, v in extra.items()})
    return params


def select(table: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """Rows of a deal table that belong to the chosen team and owner."""
    if filters.team and "team" in table:
        table = table[table["team"] == filters.team]
    if filters.owner and "owner" in table:
        table = table[table["owner"] == filters.owner]
    return table.reset_index(drop=True)


# Drawing -----------------------------------------------------------------------


def header(title: str, question: str) -> None:
    """Every page opens the same way: its title and what it answers."""
    st.title(title)
    st.markdown(question)


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
_COLUMN_FORMATS = {"USD": "dollar", "EUR": "euro", "JPY": "yen"}


def _with_currency(text: str, currency: str, negative: bool) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    sign = "-" if negative else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{currency} {text}"


def money(amount, currency: str = "USD") -> str:
    """Money in full, as in tables and captions: ``$19,512,300``
    (``CHF 19,512,300`` for a currency without a symbol here)."""
    if amount is None or pd.isna(amount):
        return "n/a"
    return _with_currency(f"{abs(amount):,.0f}", currency, amount < 0)


def money_short(amount, currency: str = "USD") -> str:
    """Money in three significant figures, for headline numbers: ``$1.23M``,
    ``$912K``, ``$19.5M``; amounts under a thousand in full."""
    if amount is None or pd.isna(amount):
        return "n/a"
    size = abs(float(amount))
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if size >= limit * 0.9995:
            scaled = size / limit
            digits = 2 if scaled < 10 else 1 if scaled < 100 else 0
            text = f"{scaled:.{digits}f}{suffix}"
            break
    else:
        text = f"{size:,.0f}"
    return _with_currency(text, currency, amount < 0)


def money_column(label: str, currency: str = "USD", **kwargs):
    """A table column of money in whole units: ``$19,512,300``."""
    preset = _COLUMN_FORMATS.get(currency)
    if preset is None:
        return st.column_config.NumberColumn(
            f"{label} ({currency})", format="localized", step=1, **kwargs
        )
    return st.column_config.NumberColumn(label, format=preset, step=1, **kwargs)


def percent_column(label: str, **kwargs):
    """A table column of a probability (0..1) as a bar with ``42%``."""
    return st.column_config.ProgressColumn(
        label, min_value=0.0, max_value=1.0, format="percent", step=0.01, **kwargs
    )


def error_column(label: str, **kwargs):
    """A table column of a percentage error given in percent (``5.7%``):
    multiply the shares by 100 before showing them."""
    return st.column_config.NumberColumn(label, format="%.1f%%", **kwargs)


def error_percent(share) -> str:
    """A relative error (0.057) as ``5.7%``."""
    if share is None or pd.isna(share):
        return "n/a"
    return f"{share * 100:.1f}%"


def label(name: str) -> str:
    """A column name as people read it: ``close_likelihood`` -> ``Close
    likelihood``."""
    words = str(name).replace("_", " ").strip()
    for code, text in (("id", "ID"), ("p10", "P10"), ("p50", "P50"), ("p90", "P90")):
        words = " ".join(text if w == code else w for w in words.split(" "))
    return words[:1].upper() + words[1:]


def labelled(table: pd.DataFrame, config: dict | None = None) -> dict:
    """Column configuration that names every column of ``table`` readably,
    keeping the entries given in ``config``."""
    config = dict(config or {})
    for column in table.columns:
        config.setdefault(column, label(column))
    return config


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 deal``, ``6,539 deals``."""
    n = int(n)
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def percent(share) -> str:
    """A probability (0..1) as ``42%``."""
    if share is None or pd.isna(share):
        return "n/a"
    return f"{share * 100:.0f}%"


def deal_url(deal_id: str, filters: Filters | None = None) -> str:
    """The link that opens a deal's page (in the current view when given)."""
    params = view_params(filters, deal=deal_id) if filters else {"deal": deal_id}
    return "/deal?" + urlencode(params)


def deal_table(
    table: pd.DataFrame,
    *,
    key: str,
    column_config: dict | None = None,
    filters: Filters | None = None,
    height="auto",
) -> None:
    """Show deals; each row links to its Deal page and a clicked row opens it."""
    if table.empty:
        st.info("No deals here.")
        return
    shown = table.copy()
    shown.insert(0, "open", [deal_url(d, filters) for d in shown["deal_id"]])
    currency = filters.currency if filters else "USD"
    defaults = {
        "deal_id": "ID",
        "name": "Deal",
        "amount": money_column("Amount", currency),
        "close_date": st.column_config.DateColumn("Expected close"),
        "close_likelihood": percent_column("Close likelihood"),
        "p_in_quarter": percent_column("Chance won this quarter"),
        "slip_risk": percent_column("Slip risk"),
    }
    config = labelled(
        shown,
        {
            "open": st.column_config.LinkColumn(
                "Deal page", display_text="open", help="Opens the deal's page"
            ),
            **defaults,
            **(column_config or {}),
        },
    )
    event = st.dataframe(
        shown,
        key=key,
        hide_index=True,
        column_config=config,
        on_select="rerun",
        selection_mode="single-row",
        width="stretch",
        height=height,
    )
    rows = event.selection.rows if event is not None else []
    if rows:
        deal_id = str(shown.iloc[rows[0]]["deal_id"])
        open_deal(deal_id, filters)


def open_deal(deal_id: str, filters: Filters | None = None) -> None:
    """Switch to the Deal page of ``deal_id``."""
    params = view_params(filters, deal=deal_id) if filters else {"deal": deal_id}
    st.switch_page(DEAL_PAGE, query_params=params)


def stop_with(kind: str, sentence: str) -> None:
    """Tell the user a condition they can fix, then stop the page."""
    getattr(st, kind)(sentence)
    st.stop()


def filters() -> Filters:
    """Draw the shared sidebar and return its filters; every page starts here.

    The pages live in ``views/`` rather than ``pages/``: Streamlit runs a file
    of a ``pages/`` folder directly on a server's first request (before
    ``app.py`` has called ``st.navigation``), which showed a menu of file names
    and skipped ``app.py``.
    """
    guarded(ensure_database)
    refresh_questions()
    return sidebar()


def _author_default(owner: str | None) -> str:
    """Who a case form says is editing: the name last saved with in this
    browser session, else the deal's owner (a rep on their own deal)."""
    return st.session_state.get("case_author") or owner or ""


def refresh_questions() -> None:
    """Bring the database's question set in line with the file, so a team's
    change takes effect on the next rerun; a broken file is reported with
    its line and the last valid set stays in effect. Checked again only when
    the file or the database changes."""
    from dealcase.case_questions import questions_path

    path = questions_path()
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        stamp = None
    error = guarded(_refreshed_questions, db_path(), version(), str(path), stamp)
    if error:
        st.sidebar.error(
            f"The question set was not loaded: {error}. Scores, red flags and "
            "coaching use the last valid set until the file is mended."
        )


@st.cache_data(show_spinner=False, max_entries=8)
def _refreshed_questions(db: str, data_version, path: str, stamp) -> str | None:
    from dealcase.case_questions import refresh_questions as refresh

    with store.connect(db) as con:
        _, error = refresh(con, path)
    return error


def top_reason(reasons) -> str:
    """The reason with the largest effect, as ``text (+5 pts)``; effects of
    close-likelihood reasons are in points of probability."""
    if not isinstance(reasons, list) or not reasons:
        return ""
    top = max(reasons, key=lambda r: abs(r.get("effect") or 0.0))
    return f"{top['text']} ({points(top.get('effect') or 0.0)})"


def points(effect: float) -> str:
    """An effect in points of probability: ``+5 pts``, ``-12 pts``, and
    ``under 1 pt`` rather than ``-0 pts``."""
    if abs(effect) < 0.5:
        return "under 1 pt"
    return f"{effect:+.0f} pts"


def number(value, digits: int = 3) -> str:
    """A plain number with ``digits`` decimals, or ``n/a``."""
    if value is None or pd.isna(value):
        return "n/a"
    return f"{value:.{digits}f}"


def scores(as_of: dt.date, deal_ids: list[str]) -> pd.DataFrame:
    """Close likelihood and reasons of ``deal_ids`` at end of ``as_of``, from the
    model kept in memory."""
    return query("dealcase.model.score_deals", as_of, list(deal_ids), model_as_of=as_of)


def _forecast_with_histogram(
    con,
    quarter: str,
    as_of: dt.date,
    by: str | None,
    overrides: dict | None,
    model=None,
) -> tuple[dict, dict]:
    from dealcase import forecast as fc

    doc = fc.forecast_quarter(
        con, quarter, as_of, by=by, overrides=overrides, model=model
    )
    histogram = {
        **doc["histogram"],
        "draws": doc["draws"],
        "groups": {
            group["name"]: (group["histogram"]["counts"], group["histogram"]["edges"])
            for group in doc["groups"]
        },
    }
    return doc, histogram


def forecast(
    quarter: str, as_of: dt.date, by: str | None = None, overrides: dict | None = None
) -> tuple[dict, dict]:
    """The forecast document of :func:`dealcase.forecast.forecast_quarter` and
    a histogram of its simulated quarters (``counts``, ``edges``; per group
    under ``groups`` when ``by`` is given)."""
    with st.spinner(f"Simulating {quarter} as of {as_of.isoformat()}..."):
        return _forecast_query(quarter, as_of, by, overrides)


def _forecast_query(quarter, as_of, by, overrides):
    return query(
        "ui._forecast_with_histogram",
        quarter,
        as_of,
        by,
        overrides or None,
        model_as_of=as_of,
    )


# The business case -------------------------------------------------------------

STATUS_ICONS = {"confirmed": "🟢", "assumed": "🟡", "unknown": "⚪", "risk": "🔴"}


def case_view(deal_id: str, as_of: dt.date, *, key: str) -> None:
    """The deal's case as it stood at the end of ``as_of``: every question with
    status, evidence and when it was learned; stale answers marked; and the
    buying influences."""
    case = query("dealcase.case.case_as_of", deal_id, as_of)
    shown = case.assign(
        status=[
            f"{STATUS_ICONS.get(s, '')} {s}" + (" (stale)" if stale else "")
            for s, stale in zip(case["status"], case["stale"])
        ],
        dimension=[dimension_labels().get(d, d) for d in case["dimension"]],
    )[
        [
            "dimension",
            "text",
            "status",
            "evidence",
            "learned_on",
            "answered_by",
            "recorded_at",
        ]
    ]
    stale = int(case["stale"].sum())
    st.caption(
        f"Case as of {as_of.isoformat()}: {int(case['answered'].sum())} of "
        f"{len(case)} questions answered, {stale} stale (not re-checked for "
        f"{_stale_days()} days)."
    )
    st.dataframe(
        shown,
        hide_index=True,
        key=f"{key}_answers",
        column_config={
            "dimension": "Dimension",
            "text": st.column_config.TextColumn("Question", width="large"),
            "status": "Status",
            "evidence": st.column_config.TextColumn("Evidence", width="large"),
            "learned_on": st.column_config.DateColumn("Learned on"),
            "answered_by": "By",
            "recorded_at": st.column_config.DatetimeColumn("Recorded"),
        },
    )
    people = query("dealcase.case.stakeholders_as_of", deal_id, as_of)
    st.markdown("**Buying influences**")
    if people.empty:
        st.info("No buying influences recorded by this date.")
    else:
        st.dataframe(
            people.drop(columns=["deal_id"]),
            hide_index=True,
            key=f"{key}_people",
            column_config={
                "stakeholder_id": None,
                "last_contact": st.column_config.DateColumn("Last contact"),
                "recorded_at": st.column_config.DatetimeColumn("Recorded"),
            },
        )


def dimension_labels() -> dict:
    """Dimension codes as managers read them (``compelling_event`` ->
    ``Compelling event``)."""
    from dealcase.case import DIMENSION_LABELS

    return DIMENSION_LABELS


def _stale_days() -> int:
    from dealcase.case import STALE_DAYS

    return STALE_DAYS


def case_editor(deal_id: str, *, key: str, owner: str | None = None) -> None:
    """The form in which a rep records the case of ``deal_id``.

    Saving appends answers with the version token read when the form was
    loaded. When someone saved the deal meanwhile, the error says what changed
    and the form keeps what was typed, to check and save again.
    """
    from dealcase import case

    prefix = f"{key}_{deal_id}"
    today = facts()["today"]
    current = query("dealcase.case.case_as_of", deal_id, today)
    if f"{prefix}_author" not in st.session_state:
        # The form is drawn afresh: fill it from the case and keep its token.
        st.session_state[f"{prefix}_author"] = _author_default(owner)
        st.session_state[f"{prefix}_baseline"] = {}
        _hold_version(prefix, deal_id, "answers")
    _follow_case(prefix, current)

    conflict = st.session_state.pop(f"{prefix}_conflict", None)
    if conflict:
        _show_conflict(conflict)
    saved = st.session_state.pop(f"{prefix}_saved", None)
    if saved:
        st.success(saved)

    with st.form(f"{prefix}_form", border=True):
        st.markdown(
            "Record what you have learned. Only changed questions are saved; "
            "tick *re-checked* to confirm an answer is still true."
        )
        author = st.text_input("Your name", key=f"{prefix}_author", max_chars=80)
        labels = dimension_labels()
        for row in current.itertuples():
            st.markdown(
                f"**{labels.get(row.dimension, row.dimension)}**: {row.text}"
                + (" · *stale*" if row.stale else "")
            )
            left, middle, right, far = st.columns([2, 5, 2, 1.6])
            left.selectbox(
                "Status",
                list(store.STATUSES),
                key=f"{prefix}_{row.question_id}_status",
                label_visibility="collapsed",
            )
            middle.text_input(
                "Evidence",
                key=f"{prefix}_{row.question_id}_evidence",
                placeholder="What did you hear or see, from whom?",
                label_visibility="collapsed",
            )
            right.date_input(
                "Learned on",
                max_value=max(today, dt.date.today()),
                key=f"{prefix}_{row.question_id}_learned",
                label_visibility="collapsed",
                format="YYYY-MM-DD",
            )
            far.checkbox(
                "re-checked",
                key=f"{prefix}_{row.question_id}_recheck",
                help="Record this answer again, unchanged, as still true.",
            )
        submitted = st.form_submit_button("Save answers", type="primary")

    if not submitted:
        return
    if not author.strip():
        st.error("Enter your name before saving; it is stored with the answers.")
        return
    st.session_state["case_author"] = author.strip()
    answers = _changed_answers(prefix, current)
    if not answers:
        st.info("Nothing changed, so nothing was saved.")
        return
    try:
        version = write(
            case.record_answers,
            deal_id,
            answers,
            author=author.strip(),
            expected_version=st.session_state[f"{prefix}_answers_version"],
        )
    except case.EditConflict as error:
        # Keep the form as typed; the next save goes against the current case.
        st.session_state[f"{prefix}_answers_version"] = error.current_version
        st.session_state[f"{prefix}_conflict"] = {
            "message": str(error),
            "changes": error.changes,
        }
        st.rerun()
    except DealCaseError as error:
        st.error(f"Not saved: {error}")
        return
    st.session_state[f"{prefix}_answers_version"] = version
    for answer in answers:
        st.session_state.pop(f"{prefix}_{answer['question_id']}_recheck", None)
    st.session_state[f"{prefix}_saved"] = (
        f"Saved {count(len(answers), 'answer')} for {deal_id}; score, red flags and "
        "coaching now include them."
    )
    st.rerun()


def _answer_fields(row) -> tuple[str, str, dt.date | None]:
    evidence = row.evidence.strip() if isinstance(row.evidence, str) else ""
    return row.status, evidence, _as_date(row.learned_on)


def _follow_case(prefix: str, current: pd.DataFrame) -> None:
    """Fill the form from the case, field by field, where the user has not
    typed anything: those fields follow what is saved (also what others saved
    meanwhile); fields the user changed keep the user's input."""
    baseline = st.session_state[f"{prefix}_baseline"]
    for row in current.itertuples():
        saved = _answer_fields(row)
        loaded = baseline.get(row.question_id)
        shown = []
        for i, field in enumerate(_ANSWER_WIDGETS):
            name = f"{prefix}_{row.question_id}_{field}"
            typed = st.session_state.get(name)
            if loaded is None or name not in st.session_state or typed == loaded[i]:
                st.session_state[name] = saved[i]  # untouched: follow the case
                shown.append(saved[i])
            elif typed == saved[i]:
                shown.append(saved[i])  # the user's edit is what is saved now
            else:
                shown.append(loaded[i])  # the user's edit, not saved yet
        baseline[row.question_id] = tuple(shown)


_ANSWER_WIDGETS = ("status", "evidence", "learned")


def _hold_version(prefix: str, deal_id: str, part: str) -> None:
    """Keep the version token of the case as the form was loaded."""
    st.session_state[f"{prefix}_{part}_version"] = guarded(_read_version, deal_id, part)


def _read_version(deal_id: str, part: str) -> int:
    from dealcase.case import case_version

    with store.connect(db_path()) as con:
        return case_version(con, deal_id, part)


def _as_date(value) -> dt.date | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).date()


def _changed_answers(prefix: str, current: pd.DataFrame) -> list[dict]:
    """The answers the user changed (against the case the form showed), and
    the ones ticked as re-checked."""
    baseline = st.session_state[f"{prefix}_baseline"]
    answers = []
    for row in current.itertuples():
        names = [f"{prefix}_{row.question_id}_{f}" for f in _ANSWER_WIDGETS]
        status, evidence, learned = (st.session_state[n] for n in names)
        evidence = (evidence or "").strip()
        recheck = st.session_state.get(f"{prefix}_{row.question_id}_recheck", False)
        changed = (status, evidence, learned) != baseline[row.question_id]
        if changed or (recheck and row.answered):
            answers.append(
                {
                    "question_id": row.question_id,
                    "status": status,
                    "evidence": evidence or None,
                    "learned_on": learned,
                }
            )
    return answers


def _show_conflict(conflict: dict) -> None:
    st.error(conflict["message"])
    changes = pd.DataFrame(conflict["changes"])
    if not changes.empty:
        st.dataframe(
            changes,
            hide_index=True,
            column_config={
                "item": "Question or person",
                "old": "Before",
                "new": "Now",
                "by": "By",
                "at": st.column_config.DatetimeColumn("At"),
            },
        )


def stakeholder_editor(deal_id: str, *, key: str, owner: str | None = None) -> None:
    """Add a buying influence, change one, or take one off the deal."""
    from dealcase import case

    prefix = f"{key}_{deal_id}"
    today = facts()["today"]
    people = query("dealcase.case.stakeholders_as_of", deal_id, today)
    if f"{prefix}_person" not in st.session_state:
        _hold_version(prefix, deal_id, "stakeholders")
    saved = st.session_state.pop(f"{prefix}_people_saved", None)
    if saved:
        st.success(saved)

    names = {row.stakeholder_id: row.name for row in people.itertuples()}
    choice = st.selectbox(
        "Person",
        [None, *names],
        format_func=lambda s: "Add a new person" if s is None else names[s],
        key=f"{prefix}_person",
    )
    chosen = people[people["stakeholder_id"] == choice].iloc[0] if choice else None
    form = f"{prefix}_{choice or 'new'}"
    if f"{form}_name" not in st.session_state:
        # Drawn afresh for this person: fill the form from their latest version.
        def field(name, fallback=None):
            if chosen is None or pd.isna(chosen[name]):
                return fallback
            return chosen[name]

        st.session_state[f"{form}_name"] = field("name", "")
        st.session_state[f"{form}_title"] = field("title", "")
        st.session_state[f"{form}_role"] = field("role", case.ROLES[0])
        st.session_state[f"{form}_influence"] = field("influence", case.INFLUENCES[1])
        st.session_state[f"{form}_attitude"] = field("attitude", "even_keel")
        st.session_state[f"{form}_last_contact"] = _as_date(field("last_contact"))
        st.session_state[f"{form}_author"] = _author_default(owner)

    with st.form(f"{form}_form", border=True):
        left, right = st.columns(2)
        name = left.text_input("Name", key=f"{form}_name")
        title = right.text_input("Title", key=f"{form}_title")
        role = left.selectbox("Role", case.ROLES, key=f"{form}_role")
        influence = right.selectbox(
            "Influence", case.INFLUENCES, key=f"{form}_influence"
        )
        attitude = left.selectbox(
            "Attitude",
            case.ATTITUDES,
            format_func=lambda a: a.replace("_", " "),
            key=f"{form}_attitude",
        )
        last_contact = right.date_input(
            "Last contact",
            max_value=max(today, dt.date.today()),
            format="YYYY-MM-DD",
            key=f"{form}_last_contact",
        )
        author = st.text_input("Your name", key=f"{form}_author")
        remove = (
            st.checkbox("Take this person off the deal", key=f"{form}_remove")
            if chosen is not None
            else False
        )
        submitted = st.form_submit_button("Save person", type="primary")

    if not submitted:
        return
    if not author.strip():
        st.error("Enter your name before saving; it is stored with the change.")
        return
    st.session_state["case_author"] = author.strip()
    person = case.Stakeholder(
        name=name,
        role=role,
        title=title or None,
        influence=influence,
        attitude=attitude,
        last_contact=last_contact,
        stakeholder_id=choice,
        removed=bool(remove),
    )
    try:
        saved_person = write(
            case.record_stakeholder,
            deal_id,
            person,
            author=author.strip(),
            expected_version=st.session_state[f"{prefix}_stakeholders_version"],
        )
    except case.EditConflict as error:
        st.session_state[f"{prefix}_stakeholders_version"] = error.current_version
        _show_conflict({"message": str(error), "changes": error.changes})
        return
    except DealCaseError as error:
        st.error(f"Not saved: {error}")
        return
    st.session_state[f"{prefix}_stakeholders_version"] = saved_person.version
    if choice is None:
        for suffix in ("name", "title", "last_contact"):
            st.session_state.pop(f"{form}_{suffix}", None)
    st.session_state[f"{prefix}_people_saved"] = (
        f"{'Removed' if remove else 'Saved'} {name}."
    )
    st.rerun()


def score_definition() -> str:
    """How the case score is computed, as the library defines it."""
    from dealcase.case import SCORE_DEFINITION

    return SCORE_DEFINITION.replace("\n", " ")


def deals_report(quarter: str, as_of: dt.date):
    """:func:`dealcase.deals.deals_report` scored with the model kept in memory."""
    with st.spinner(
        f"Scoring the open deals of {quarter} as of {as_of.isoformat()}: close "
        "likelihood, slip risk, case score and red flags..."
    ):
        return query(
            "dealcase.deals.deals_report",
            quarter=quarter,
            as_of=as_of,
            model_as_of=as_of,
        )

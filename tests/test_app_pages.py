"""Every page of the app, run with AppTest on the small demo database.

Each test checks that the page runs without an exception and that the numbers
it shows are the library's numbers for the same view. The close-likelihood
model is fitted once per database and kept in memory (as the app keeps it), so
the library side of a test and the page use the same model.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import ui
from dealcase import store
from dealcase.case import case_as_of, case_scores, case_version, record_answers
from dealcase.deals import deals_report
from dealcase.forecast import forecast_quarter
from tests.conftest import DEMO_TODAY, ROOT

APP = str(ROOT / "app.py")
QUARTER = "2025Q4"
TIMEOUT = 60


def open_page(monkeypatch, db, page: str | None = None, **query) -> AppTest:
    """Run the app on ``db`` and show ``page`` (a file under pages/; default
    the home page, through app.py's navigation).

    Before its first run AppTest finds a page by its file name; Streamlit then
    runs that file of pages/ directly, and the page draws the shared sidebar
    itself, as it does under ``streamlit run``.
    """
    monkeypatch.setenv("DEALCASE_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"quarter": QUARTER, **query})
    if page:
        at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return values[0]


def table(at: AppTest, key: str | None = None, *, columns=()) -> pd.DataFrame:
    """A table found by its key (tables whose rows open a deal carry it) or
    by columns only it has."""
    if key:
        frames = [d.value for d in at.dataframe if key in (d.proto.id or "")]
    else:
        frames = [d.value for d in at.dataframe if set(columns) <= set(d.value)]
    assert frames, f"no table {key or columns!r}"
    return frames[0]


def submit(at: AppTest, label: str) -> AppTest:
    buttons = [b for b in at.button if b.label == label]
    assert buttons, f"no button {label!r}"
    return buttons[0].click().run()


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


QUARTER_START = dt.date(2025, 10, 1)


@pytest.fixture(scope="session")
def trained_db(demo_db, tmp_path_factory):
    """The small demo with a model stored as of the quarter's first day, so
    pages load it rather than fit one: it is the latest model valid for every
    week of the quarter's trend and for the demo's present."""
    from dealcase.model import train_model

    path = tmp_path_factory.mktemp("trained") / "demo.duckdb"
    shutil.copy(demo_db, path)
    with store.connect(path) as con:
        train_model(con, as_of=QUARTER_START)
    return path


@pytest.fixture(scope="module")
def model(trained_db):
    """The model the app keeps in memory for the demo's present: the stored one."""
    return ui._fitted_model(str(trained_db), store.data_version(trained_db), DEMO_TODAY)


def cached(db, target: str, *args, **kwargs):
    """A library call computed once through the app's cache, with the very
    arguments a page passes (:func:`ui.query`), so the page finds it there."""
    return ui._cached_call(
        str(db), store.data_version(db), target, args, kwargs, None, None
    )


def library(db, function, *args, **kwargs):
    with store.connect(db) as con:
        return function(con, *args, **kwargs)


# Start and sidebar --------------------------------------------------------------


def test_first_start_builds_the_demo_company(monkeypatch, tmp_path):
    db = tmp_path / "new.duckdb"
    monkeypatch.setenv("DEALCASE_DEMO_SCALE", "0.05")
    at = open_page(monkeypatch, db, "data")
    no_errors(at)

    assert db.exists()
    counts = library(db, store.table_counts)
    assert counts["deals"] > 0
    assert metric(at, "Deals") == f"{counts['deals']:,}"
    assert library(db, store.get_meta, "dataset") == "demo"
    assert "synthetic demo company" in " ".join(w.value for w in at.sidebar.warning)
    # the model is trained and stored once, so later starts need not fit one
    assert counts["deals"] == 550
    with store.connect(db) as con:
        assert con.execute("SELECT count(*) FROM model_runs").fetchall()[0][0] == 1


def test_sidebar_labels_demo_and_keeps_filters_in_url(monkeypatch, trained_db):
    at = open_page(monkeypatch, trained_db, "data")
    no_errors(at)

    warnings = " ".join(w.value for w in at.sidebar.warning)
    assert "synthetic demo company" in warnings
    assert str(trained_db) in " ".join(c.value for c in at.sidebar.caption)
    assert at.selectbox(key="sidebar_quarter").value == QUARTER
    assert at.date_input(key="sidebar_as_of").value == DEMO_TODAY

    teams = at.selectbox(key="sidebar_team").options
    at.selectbox(key="sidebar_team").select(teams[1]).run()
    assert at.query_params["team"] == teams[1]
    assert at.query_params["quarter"] == QUARTER

    at.date_input(key="sidebar_as_of").set_value(dt.date(2025, 11, 1)).run()
    assert at.query_params["as_of"] == "2025-11-01"


def test_a_link_reproduces_the_view(monkeypatch, trained_db):
    at = open_page(
        monkeypatch,
        trained_db,
        "data",
        quarter="2025Q3",
        as_of="2025-09-30",
        team="East",
    )
    teams = at.selectbox(key="sidebar_team").options
    assert at.selectbox(key="sidebar_quarter").value == "2025Q3"
    assert at.date_input(key="sidebar_as_of").value == dt.date(2025, 9, 30)
    assert at.selectbox(key="sidebar_team").value == (
        "East" if "East" in teams else "All"
    )


def test_a_link_after_the_data_present_shows_the_present(monkeypatch, trained_db):
    """A link dated after the data's present (2025-11-14) cannot show a
    quarter as ended that has not: the present is shown, and said so."""
    at = open_page(monkeypatch, trained_db, quarter="2025Q4", as_of="2026-02-01")
    no_errors(at)
    assert at.date_input(key="sidebar_as_of").value == DEMO_TODAY
    assert "after the data's present (2025-11-14)" in " ".join(
        w.value for w in at.sidebar.warning
    )
    assert not [i.value for i in at.info if "ended on" in i.value]
    assert [c for c in at.get("plotly_chart") if "distribution" in c.proto.id]


# Forecast -----------------------------------------------------------------------


def test_forecast_page_shows_the_library_forecast(monkeypatch, trained_db, model):
    at = open_page(monkeypatch, trained_db)
    no_errors(at)
    doc = library(
        trained_db, forecast_quarter, QUARTER, DEMO_TODAY, by="team", model=model
    )

    assert metric(at, "P10") == ui.money_short(doc["p10"])
    assert metric(at, "P50") == ui.money_short(doc["p50"])
    assert metric(at, "P90") == ui.money_short(doc["p90"])
    assert metric(at, "Booked") == ui.money_short(doc["booked"])
    assert metric(at, "Target") == ui.money_short(doc["target"])
    assert metric(at, "Chance to reach target") == ui.percent(doc["p_reach_target"])
    assert metric(at, "Commit") == ui.money_short(doc["reps_call"]["commit"])
    assert len(table(at, columns=("name", "p_reach_target", "new_business"))) == len(
        doc["groups"]
    )
    assert len(table(at, "forecast_swing")) == len(doc["swing_deals"])
    assert [c for c in at.get("plotly_chart") if "distribution" in c.proto.id]

    # what-if: dropping the deal that swings most gives the library's range
    dropped = doc["swing_deals"][0]["deal_id"]
    at.multiselect(key="forecast_whatif_drop").select(dropped).run()
    no_errors(at)
    scenario = library(
        trained_db,
        forecast_quarter,
        QUARTER,
        DEMO_TODAY,
        by="team",
        model=model,
        overrides={dropped: "drop"},
    )
    assert metric(at, "P50 (what-if)") == ui.money_short(scenario["p50"])
    assert scenario["p50"] != doc["p50"]


def test_a_team_sees_the_deals_that_swing_its_own_range(monkeypatch, trained_db, model):
    doc = library(
        trained_db, forecast_quarter, QUARTER, DEMO_TODAY, by="team", model=model
    )
    team = max(doc["groups"], key=lambda g: len(g["swing_deals"]))
    at = open_page(monkeypatch, trained_db, team=team["name"])
    no_errors(at)

    assert metric(at, "P50") == ui.money_short(team["p50"])
    shown = table(at, "forecast_swing")
    assert list(shown["deal_id"]) == [r["deal_id"] for r in team["swing_deals"]]
    assert set(shown["team"]) == {team["name"]}


def test_an_ended_quarter_shows_its_result_not_a_range(monkeypatch, trained_db, model):
    at = open_page(monkeypatch, trained_db, quarter="2025Q3")
    no_errors(at)
    doc = library(
        trained_db, forecast_quarter, "2025Q3", DEMO_TODAY, by="team", model=model
    )

    ended = [i.value for i in at.info if "2025Q3 ended on 2025-09-30" in i.value]
    assert ended and ui.money(doc["booked"]) in ended[0]
    assert metric(at, "Booked") == ui.money_short(doc["booked"])
    assert not [c for c in at.get("plotly_chart") if "distribution" in c.proto.id]


def test_forecast_of_a_quarter_not_begun_says_what_to_do(monkeypatch, trained_db):
    at = open_page(monkeypatch, trained_db, quarter="2026Q1")
    no_errors(at)
    assert "2026Q1 starts on 2026-01-01" in at.info[0].value
    assert not at.metric


# Pipeline -----------------------------------------------------------------------


def test_pipeline_lists_every_open_deal_of_the_quarter(monkeypatch, trained_db, model):
    at = open_page(monkeypatch, trained_db, "pipeline")
    no_errors(at)
    report = library(
        trained_db, deals_report, quarter=QUARTER, as_of=DEMO_TODAY, model=model
    )

    shown = table(at, "pipeline_deals")
    assert len(shown) == len(report.doc)
    assert metric(at, "Open deals") == f"{len(report.doc):,}"
    first_id = shown["deal_id"].iloc[0]
    assert shown["open"].iloc[0] == f"/deal?quarter={QUARTER}&deal={first_id}"
    first = report.doc[0]
    row = shown[shown["deal_id"] == first["deal_id"]].iloc[0]
    assert row["close_likelihood"] == pytest.approx(first["close_likelihood"])

    at.checkbox(key="pipeline_flagged").check().run()
    flagged = sum(1 for d in report.doc if d["red_flags"])
    assert len(table(at, "pipeline_deals")) == flagged


# Deal ---------------------------------------------------------------------------


def test_deal_page_shows_the_deal_and_its_likelihood(monkeypatch, trained_db, model):
    report = library(
        trained_db, deals_report, quarter=QUARTER, as_of=DEMO_TODAY, model=model
    )
    deal = report.doc[0]
    at = open_page(monkeypatch, trained_db, "deal", deal=deal["deal_id"])
    no_errors(at)

    assert at.subheader[0].value == deal["name"]
    assert metric(at, "Amount") == ui.money(deal["amount"])
    assert metric(at, "Close likelihood") == ui.percent(deal["close_likelihood"])
    assert metric(at, "Slip risk") == ui.percent(deal["slip_risk"])
    assert metric(at, "Case score") == f"{deal['case_score']:.0f}"
    case = library(trained_db, case_as_of, deal["deal_id"], DEMO_TODAY)
    assert len(table(at, columns=("text", "status", "evidence"))) == len(case)


def test_deal_page_asks_for_a_deal_when_none_is_given(monkeypatch, trained_db):
    at = open_page(monkeypatch, trained_db, "deal")
    no_errors(at)
    assert at.selectbox(key="deal_pick").value is None
    assert "Pick a deal" in at.info[0].value


# Why deals slip -------------------------------------------------------------------


def test_slips_page_opens_the_deals_of_each_step(monkeypatch, trained_db):
    at = open_page(monkeypatch, trained_db, "slips")
    no_errors(at)
    start = DEMO_TODAY - dt.timedelta(days=7)
    with store.connect(trained_db) as con:
        from dealcase.slips import pipeline_changes, slips_report

        changes = pipeline_changes(con, start, DEMO_TODAY, quarter=QUARTER)
        slips = slips_report(con, quarter="2025Q3")

    moving = [s for s in changes["steps"] if s["count"]]
    assert at.selectbox(key="slips_step").options == [
        s["kind"].replace("_", " ").capitalize() for s in moving
    ]
    for step in moving[:2]:
        at.selectbox(key="slips_step").set_value(step["kind"]).run()
        assert len(table(at, "slips_step_deals")) == step["count"]
    assert len(table(at, "slips_slipped")) == len(slips.doc["slipped"])
    assert len(table(at, columns=("factor", "lift", "ci_low"))) == len(
        slips.doc["drivers"]
    )


# Model ------------------------------------------------------------------------


def test_model_page_shows_the_evaluation(monkeypatch, trained_db):
    # evaluate_model takes seconds: computed once, through the app's cache, so
    # the page below finds it there (a page asking anything else would not)
    doc = cached(trained_db, "dealcase.model.evaluate_model").doc
    at = open_page(monkeypatch, trained_db, "model")
    no_errors(at)

    assert metric(at, "AUC") == f"{doc['auc']:.3f}"
    assert metric(at, "Brier score") == f"{doc['brier']:.3f}"
    assert metric(at, "Calibration error (ECE)") == f"{doc['ece']:.3f}"
    assert len(table(at, columns=("model", "auc", "brier"))) == 1 + len(
        doc["baselines"]
    )
    assert at.button(key="model_backtest_run")


@pytest.mark.slow
def test_model_page_backtest_on_one_quarter(monkeypatch, trained_db):
    at = open_page(monkeypatch, trained_db, "model")
    quarters = at.multiselect(key="model_backtest_quarters").value
    assert len(quarters) == 1  # the default: the latest finished quarter
    # the backtest refits the model three times per quarter: computed once
    # through the app's cache with the page's arguments, then drawn by the page
    doc = cached(
        trained_db, "dealcase.backtest.backtest_report", quarters=sorted(quarters)
    ).doc
    at.button(key="model_backtest_run").click().run(timeout=120)
    no_errors(at)

    shown = table(at, columns=("abs_pct_error", "covered"))
    assert list(shown["quarter"]) == [q["quarter"] for q in doc["quarters"]]
    assert list(shown["p50"]) == pytest.approx([q["p50"] for q in doc["quarters"]])
    assert list(shown["actual"]) == pytest.approx(
        [q["actual"] for q in doc["quarters"]]
    )
    assert metric(at, "Coverage of P10-P90") == ui.percent(doc["summary"]["coverage"])
    # the note and the metric round the error alike (5.7%, not 5% or 6%)
    mape = f"{doc['summary']['mape']:.1%}"
    assert metric(at, "Mean absolute % error (P50)") == mape
    assert any(f"MAPE {mape}" in i.value for i in at.info)
    assert list(shown["abs_pct_error"]) == pytest.approx(
        [100 * q["abs_pct_error"] for q in doc["quarters"]]
    )


# Data -------------------------------------------------------------------------


def test_data_page_counts_what_the_file_holds(monkeypatch, trained_db):
    at = open_page(monkeypatch, trained_db, "data")
    no_errors(at)
    counts = library(trained_db, store.table_counts)
    assert metric(at, "Deals") == f"{counts['deals']:,}"
    assert metric(at, "Case answers") == f"{counts['case_answers']:,}"


SMALL_TABLE = (
    "opportunity_id,sales_agent,product,account,deal_stage,engage_date,"
    "close_date,close_value\n"
    "AAA1,Ann Example,GTXPro,Acme,Won,2017-01-05,2017-02-01,4000\n"
    "AAA2,Ann Example,GTXPro,Brightly,Lost,2017-01-10,2017-03-01,0\n"
    "AAA3,Bo Sample,MG Special,Cobalt,Engaging,2017-02-01,,\n"
)


def test_data_page_previews_then_imports_a_file(monkeypatch, maven_db, copy_db):
    # The demo company refuses other data, so the import goes into a real one.
    db = copy_db(maven_db)
    before = library(db, store.table_counts)["deals"]
    at = open_page(monkeypatch, db, "data")
    at.file_uploader(key="data_file").upload(
        "deals.csv", SMALL_TABLE.encode(), "text/csv"
    )
    at.run()
    no_errors(at)
    assert len(table(at, columns=("deal_id", "account", "owner"))) == 3
    assert library(db, store.table_counts)["deals"] == before  # nothing written

    at.button(key="data_import").click().run()
    no_errors(at)
    assert library(db, store.table_counts)["deals"] == before + 3
    assert "3 new deals" in at.success[0].value


def test_data_page_on_the_demo_imports_into_a_new_file(
    monkeypatch, trained_db, copy_db, tmp_path
):
    db = copy_db(trained_db)
    demo_before = library(db, store.table_counts)
    target = tmp_path / "mine.duckdb"
    at = open_page(monkeypatch, db, "data")
    at.text_input(key="data_target_db").set_value(str(target))
    at.file_uploader(key="data_file").upload(
        "deals.csv", SMALL_TABLE.encode(), "text/csv"
    )
    at.run()
    at.button(key="data_import").click().run()
    no_errors(at)

    assert library(db, store.table_counts) == demo_before
    assert library(target, store.table_counts)["deals"] == 3
    assert f"DEALCASE_DB={target}" in at.success[0].value


def test_data_page_imports_a_salesforce_export_with_its_companions(
    monkeypatch, shared_data, trained_db, copy_db, tmp_path
):
    """The sample's Opportunity.csv with its OpportunityHistory.csv and an
    invented User.csv among the export's other files: 31 deals, 62 history
    versions, and the one owner id of the sample resolved to a name."""
    folder = shared_data / "salesforce-sample"
    users = "Id,Name,Username\n00546000001l1cJAAQ,Avery Example,avery@example.test\n"
    target = tmp_path / "sf.duckdb"
    at = open_page(monkeypatch, copy_db(trained_db), "data")
    at.selectbox(key="data_source").set_value("salesforce").run()
    at.text_input(key="data_target_db").set_value(str(target))
    at.file_uploader(key="data_file").upload(
        "Opportunity.csv", (folder / "Opportunity.csv").read_bytes(), "text/csv"
    )
    at.file_uploader(key="data_export_files").upload(
        "OpportunityHistory.csv",
        (folder / "OpportunityHistory.csv").read_bytes(),
        "text/csv",
    ).upload("User.csv", users.encode(), "text/csv")
    at.run()
    no_errors(at)
    at.button(key="data_import").click().run()
    no_errors(at)

    counts = library(target, store.table_counts)
    assert (counts["deals"], counts["deal_history"]) == (31, 62)
    with store.connect(target) as con:
        owners = con.execute("SELECT DISTINCT owner FROM deals").fetchall()
    assert owners == [("Avery Example",)]


HUBSPOT = (
    "Record ID,Deal Name,Deal Stage,Pipeline,Close Date,Deal owner,Amount,"
    "Create Date\n"
    "101,Harbor Tools,appointmentscheduled,default,{close},Ines Ruiz,12000,"
    "2025-03-02 09:15\n"
    "102,Kestrel Labs,contractsent,default,2025-04-17,Omar Hale,8000,"
    "2025-02-11 14:00\n"
)


def test_data_page_dates_hubspot_snapshots_on_the_day_they_were_taken(
    monkeypatch, trained_db, copy_db, tmp_path
):
    """Two exports of the same deals, taken on 2025-03-25 and 2025-04-08:
    deal 101's close date moved from April to June, so it gains one version
    dated the day of the second export; deal 102 is unchanged."""
    target = tmp_path / "hubspot.duckdb"
    db = copy_db(trained_db)
    for taken, close in [
        (dt.date(2025, 3, 25), "2025-04-30"),
        (dt.date(2025, 4, 8), "2025-06-30"),
    ]:
        at = open_page(monkeypatch, db, "data")
        at.selectbox(key="data_source").set_value("hubspot").run()
        at.text_input(key="data_target_db").set_value(str(target))
        at.date_input(key="data_snapshot_date").set_value(taken)
        at.file_uploader(key="data_file").upload(
            f"deals-{taken}.csv", HUBSPOT.format(close=close).encode(), "text/csv"
        )
        at.run()
        at.button(key="data_import").click().run()
        no_errors(at)

    with store.connect(target) as con:
        versions = con.execute(
            "SELECT deal_id, CAST(valid_from AS DATE), close_date FROM deal_history "
            "WHERE valid_from >= DATE '2025-04-01' ORDER BY deal_id, valid_from"
        ).fetchall()
    assert versions == [("101", dt.date(2025, 4, 8), dt.date(2025, 6, 30))]


def test_data_page_reports_a_bad_file_with_its_line(monkeypatch, trained_db):
    bad = SMALL_TABLE.replace("2017-02-01,4000", "2017-02-01,lots")
    at = open_page(monkeypatch, trained_db, "data")
    at.file_uploader(key="data_file").upload("bad.csv", bad.encode(), "text/csv")
    at.run()
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert "bad.csv" in message
    assert "line 2, column close_value" in message
    assert "dealcase-uploads" not in message  # the user's name, not where it is kept


# Business case ------------------------------------------------------------------


def test_the_app_reads_the_question_set_and_reports_a_broken_one(
    monkeypatch, trained_db, copy_db, tmp_path
):
    """A team edits the question set: the next page uses it (the metrics
    question dropped, 13 questions left). A broken file is reported with its
    line and the last valid set stays in effect."""
    db = copy_db(trained_db)
    shipped = (ROOT / "data" / "questions.toml").read_text(encoding="utf-8")
    edited = tmp_path / "questions.toml"
    start = shipped.index('[[question]]\nid = "metrics"')
    end = shipped.index("[[question]]", start + 1)
    edited.write_text(shipped[:start] + shipped[end:], encoding="utf-8")
    monkeypatch.setenv("DEALCASE_QUESTIONS", str(edited))
    no_errors(open_page(monkeypatch, db, "business_case"))
    with store.connect(db) as con:
        ids = [
            r[0] for r in con.execute("SELECT question_id FROM questions").fetchall()
        ]
    assert len(ids) == 13 and "metrics" not in ids

    broken = tmp_path / "broken.toml"
    broken.write_text(
        shipped.replace('dimension = "budget"', 'dimension = "money"'), encoding="utf-8"
    )
    monkeypatch.setenv("DEALCASE_QUESTIONS", str(broken))
    at = open_page(monkeypatch, db, "business_case")
    assert not at.exception
    message = " ".join(e.value for e in at.sidebar.error)
    assert "broken.toml, line" in message and "unknown dimension 'money'" in message
    with store.connect(db) as con:
        assert con.execute("SELECT count(*) FROM questions").fetchone()[0] == 13


def _open_case(monkeypatch, db):
    at = open_page(monkeypatch, db, "business_case")
    no_errors(at)
    deal_id = at.selectbox(key="business_case_deal").value
    return at, deal_id, f"business_case_editor_{deal_id}"


def test_saving_an_answer_changes_the_score(monkeypatch, trained_db, copy_db):
    db = copy_db(trained_db)
    at, deal_id, prefix = _open_case(monkeypatch, db)
    before = library(db, case_scores, DEMO_TODAY, [deal_id]).iloc[0]["case_score"]
    assert metric(at, "Case score") == f"{before:.0f}"
    case = library(db, case_as_of, deal_id, DEMO_TODAY).set_index("question_id")
    question = next(q for q in case.index if case.loc[q, "status"] != "confirmed")

    at.selectbox(key=f"{prefix}_{question}_status").select("confirmed")
    at.text_input(key=f"{prefix}_{question}_evidence").input("CFO said so on a call")
    at.text_input(key=f"{prefix}_author").input("Mara Quinn")
    submit(at, "Save answers")
    no_errors(at)

    after = library(db, case_scores, DEMO_TODAY, [deal_id]).iloc[0]["case_score"]
    assert after > before
    assert metric(at, "Case score") == f"{after:.0f}"
    saved = library(db, case_as_of, deal_id, DEMO_TODAY).set_index("question_id")
    assert saved.loc[question, "status"] == "confirmed"
    assert saved.loc[question, "evidence"] == "CFO said so on a call"
    assert saved.loc[question, "answered_by"] == "Mara Quinn"

    # the next deal's form says who is editing: the name just saved with
    labels = at.selectbox(key="business_case_deal").options
    other = next(
        label.rsplit("(", 1)[1].split(",")[0]
        for label in labels
        if deal_id not in label
    )
    at.selectbox(key="business_case_deal").set_value(other).run()
    no_errors(at)
    assert at.text_input(key=f"business_case_editor_{other}_author").value == (
        "Mara Quinn"
    )


def test_an_edit_conflict_keeps_what_was_typed(monkeypatch, trained_db, copy_db):
    db = copy_db(trained_db)
    at, deal_id, prefix = _open_case(monkeypatch, db)
    at.text_input(key=f"{prefix}_budget_evidence").input("Budget signed off by VP")

    # meanwhile someone else records the champion question
    with store.connect(db) as con:
        record_answers(
            con,
            deal_id,
            [("champion", "risk", "Our coach left", None)],
            author="Another Rep",
            expected_version=case_version(con, deal_id),
            recorded_at=dt.datetime.combine(DEMO_TODAY, dt.time(9)),
        )
    submit(at, "Save answers")

    assert not at.exception
    assert any("changed while you were editing" in e.value for e in at.error)
    assert at.text_input(key=f"{prefix}_budget_evidence").value == (
        "Budget signed off by VP"
    )
    saved = library(db, case_as_of, deal_id, DEMO_TODAY).set_index("question_id")
    assert saved.loc["budget", "evidence"] != "Budget signed off by VP"

    # saving again goes through against the current case
    submit(at, "Save answers")
    no_errors(at)
    saved = library(db, case_as_of, deal_id, DEMO_TODAY).set_index("question_id")
    assert saved.loc["budget", "evidence"] == "Budget signed off by VP"
    assert saved.loc["champion", "status"] == "risk"


@pytest.mark.slow
def test_forecast_trend_replays_the_quarter(monkeypatch, trained_db):
    # one forecast per week of the quarter so far (7 weeks up to the demo's
    # present), each loading the model stored as of the quarter's first day;
    # computed once through the app's cache, then drawn by the page
    trend = cached(trained_db, "dealcase.forecast.forecast_trend", QUARTER)
    assert list(trend["as_of"]) == [
        QUARTER_START + dt.timedelta(days=7 * week) for week in range(7)
    ]
    at = open_page(monkeypatch, trained_db)
    at.toggle(key="forecast_trend_show").set_value(True).run(timeout=120)
    no_errors(at)

    charts = [c for c in at.get("plotly_chart") if "forecast_trend" in c.proto.id]
    assert len(charts) == 1
    traces = {t.get("name"): t for t in json.loads(charts[0].proto.spec)["data"]}
    assert traces["P50"]["y"] == pytest.approx(list(trend["p50"]))
    assert traces["target"]["y"] == pytest.approx(list(trend["target"]))
    band = traces["P10 to P90"]["y"]
    assert band == pytest.approx(list(trend["p90"]) + list(trend["p10"])[::-1])


def test_adding_a_buying_influence(monkeypatch, trained_db, copy_db):
    from dealcase.case import stakeholders_as_of

    db = copy_db(trained_db)
    at, deal_id, _ = _open_case(monkeypatch, db)
    before = len(library(db, stakeholders_as_of, deal_id, DEMO_TODAY))
    form = f"business_case_people_{deal_id}_new"
    at.text_input(key=f"{form}_name").input("Mira Testfield")
    at.text_input(key=f"{form}_title").input("Head of Finance")
    at.selectbox(key=f"{form}_role").select("economic")
    at.selectbox(key=f"{form}_attitude").select("growth")
    submit(at, "Save person")
    no_errors(at)

    people = library(db, stakeholders_as_of, deal_id, DEMO_TODAY)
    assert len(people) == before + 1
    added = people[people["name"] == "Mira Testfield"].iloc[0]
    assert (added["role"], added["attitude"]) == ("economic", "growth")
    assert len(table(at, columns=("name", "title", "role", "influence"))) == before + 1


@pytest.mark.slow
def test_training_stores_a_model_the_pages_then_use(monkeypatch, trained_db, copy_db):
    from dealcase.model import load_model

    db = copy_db(trained_db)
    at = open_page(monkeypatch, db, "model")
    assert library(db, load_model, DEMO_TODAY).as_of == QUARTER_START
    assert any(f"end of {QUARTER_START}" in c.value for c in at.caption)
    at.button(key="model_train").click().run(timeout=120)
    no_errors(at)

    stored = library(db, load_model, DEMO_TODAY)
    assert stored.as_of == DEMO_TODAY
    assert any(f"end of {DEMO_TODAY}" in c.value for c in at.caption)

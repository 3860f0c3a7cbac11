"""DealCase: where the quarter will land, how sure that is, and why deals slip.

Run with ``streamlit run app.py`` (or ``python3 run.py app``). The database is
``$DEALCASE_DB`` or ``data/dealcase.duckdb``; when it does not exist the
synthetic demo company is built first.
"""

from __future__ import annotations

import logging

import streamlit as st

import ui

logger = logging.getLogger("dealcase.app")

st.set_page_config(page_title="DealCase", layout="wide")

PAGES = [
    st.Page("views/forecast.py", title="Forecast", url_path="forecast", default=True),
    st.Page("views/pipeline.py", title="Pipeline", url_path="pipeline"),
    st.Page("views/deal.py", title="Deal", url_path="deal"),
    st.Page("views/slips.py", title="Why deals slip", url_path="slips"),
    st.Page("views/business_case.py", title="Business case", url_path="business_case"),
    st.Page("views/model.py", title="Model", url_path="model"),
    st.Page("views/data.py", title="Data", url_path="data"),
]

page = st.navigation(PAGES)
ui.guarded(ui.ensure_database)
try:
    page.run()  # the page draws the shared sidebar with ui.filters()
except Exception:  # a bug in a page: a sentence here, the traceback in the log
    logger.exception("page %s failed", page.title)
    st.error(
        f"The {page.title} page failed to draw. Reload it; if it happens again, "
        "report it with the server log."
    )

"""DealCase: quarter-end forecast ranges from deal mechanics and the business case.

The library behind the app and the command line; it never imports Streamlit.
"""

__version__ = "0.1.0"

"""Exceptions a user can act on. Their message is one sentence saying what is
wrong, where, and what to do; the command line prints it as is."""

from __future__ import annotations


class DealCaseError(Exception):
    """Base of every error DealCase reports to a user."""


class InputError(DealCaseError):
    """Bad input in a file, with where it was found.

    ``line`` counts from 1 as an editor shows it (the header is line 1);
    ``column`` is the column's header name or its 1-based position.
    """

    def __init__(self, message: str, *, file=None, line=None, column=None):
        self.reason = message
        self.file = None if file is None else str(file)
        self.line = line
        self.column = column
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class NotEnoughDataError(DealCaseError):
    """The database holds too little to answer (no closed deals, no quarter)."""

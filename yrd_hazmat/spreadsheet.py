"""Text bound for a CSV file that a spreadsheet opens: a cell that starts like a formula
(= + - @, a tab or a carriage return) is quoted with ', so it is shown, never run."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(text: str) -> str:
    return "'" + text if text[:1] in FORMULA_STARTS else text

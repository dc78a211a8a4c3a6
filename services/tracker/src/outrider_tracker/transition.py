"""One rule for the one-way moves of a row (resolve, decide, accept, hold, cancel): repeating a move that already
holds changes nothing and answers the row as it is; a move that would turn a final state into another is refused."""

from collections.abc import Mapping
from typing import Any


class FinalState(ValueError):
    """The row is in a final state that the request would change (answered 409 with this message)."""


def already_done(row: Mapping[str, Any], *, what: str, start: str, done: str, fields: Mapping[str, Any]) -> bool:
    """False while `row` is still at `start` (make the move); True when it is at `done` with these `fields` already
    (a repeat: answer the row as it is, record nothing). FinalState otherwise, saying where the row is."""
    if row["status"] == start:
        return False
    differing = [field for field, value in fields.items() if row[field] != value]
    if row["status"] == done and not differing:
        return True
    cannot = f" (its {', '.join(differing)} cannot change)" if row["status"] == done else ""
    raise FinalState(f"{what} is already {row['status']}{cannot}")

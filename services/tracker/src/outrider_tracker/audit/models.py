"""Audit trail schemas."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntry(BaseModel):
    """One change: who, when, what, why."""

    at: datetime
    actor: str
    action: str
    reason: str | None
    details: dict[str, Any]

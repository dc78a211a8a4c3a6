"""Who is making a change (recorded in the audit trail): the owner of the request's API token."""

from typing import Annotated

from fastapi import Depends

from outrider_tracker.auth.api import authorize
from outrider_tracker.auth.models import Principal


async def get_actor(principal: Annotated[Principal, Depends(authorize)]) -> str:
    """The name of the authenticated caller."""
    return principal.name

"""Who is making a change (recorded in the audit trail)."""

from typing import Annotated

from fastapi import Header


async def get_actor(
    x_outrider_actor: Annotated[
        str, Header(min_length=1, max_length=200, description="Name of the person or system making the change")
    ] = "anonymous",
) -> str:
    """The actor named by the `X-Outrider-Actor` header."""
    return x_outrider_actor

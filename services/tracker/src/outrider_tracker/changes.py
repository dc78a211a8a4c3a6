"""How an endpoint answers a change: 404 when nothing matched, 409 when the service refuses it, else wake the relay."""

from collections.abc import Awaitable
from typing import TypeVar

from fastapi import HTTPException, Request

T = TypeVar("T")


async def changed(
    request: Request, change: Awaitable[T | None], *, missing: str, conflict: type[Exception] | None = None
) -> T:
    """Await a service call that changed something and wrote its events to the outbox.

    `None` from the service means no such row: 404 with `missing`. A `conflict` it raises becomes 409 with its
    message. On success the outbox relay is woken, so the events go out now rather than at its next poll.
    """
    refusals = (conflict,) if conflict else ()  # an empty tuple catches nothing
    try:
        result = await change
    except refusals as exc:
        raise HTTPException(409, str(exc)) from exc
    if result is None:
        raise HTTPException(404, missing)
    request.app.state.outbox_wake.set()
    return result

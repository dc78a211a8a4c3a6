"""The API's request bodies: fields a model does not know are refused (422), and so is a body past the size limit
(413)."""

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Body(BaseModel):
    """A request body that refuses fields it does not know (422 naming them): a typo (`stgae`) or a field changed
    elsewhere (`stage`, which only /advance moves) would otherwise be dropped under a 200 that changed nothing."""

    model_config = ConfigDict(extra="forbid")


class SizeLimit:
    """ASGI middleware answering 413 to a request whose body is over `max_bytes`, before anything reads it whole:
    on a Content-Length over the limit without reading a byte, on a chunked body as soon as it passes the limit
    (whatever Content-Length comes with it).
    The answer closes the connection, so the rest of the body is never read."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        # With Transfer-Encoding the server frames the body by it and ignores Content-Length (RFC 9112 §6.1), so a
        # length sent beside it says nothing of the body's size: count that body too.
        if length is None or "transfer-encoding" in headers:  # chunked, or no body: read it here, up to the limit
            messages = await self._read(receive)
            if messages is not None:
                await self.app(scope, _replay(iter(messages), receive), send)
                return
        elif int(length) <= self.max_bytes:  # the server itself ends the body at the declared length
            await self.app(scope, receive, send)
            return
        refusal = JSONResponse({"detail": f"request body is larger than the limit of {self.max_bytes} bytes"}, 413,
                               headers={"Connection": "close"})  # fmt: skip
        await refusal(scope, receive, send)

    async def _read(self, receive: Receive) -> list[Message] | None:
        """The request's messages up to the end of its body; None as soon as the body passes the limit."""
        messages: list[Message] = []
        size = 0
        while not messages or messages[-1].get("more_body", False):
            messages.append(await receive())
            size += len(messages[-1].get("body", b""))
            if size > self.max_bytes:
                return None
        return messages


def document_limit(app: FastAPI, max_bytes: int) -> None:
    """Name the 413 in the OpenAPI document of every operation that takes a body: the middleware answers it, so
    FastAPI cannot see it (FastAPI's "extending OpenAPI" way: the generated document, amended once)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for operations in generate()["paths"].values():
                for operation in operations.values():
                    if "requestBody" in operation:
                        refusal = {"description": f"The request body is over {max_bytes} bytes"}
                        operation.setdefault("responses", {}).setdefault("413", refusal)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _replay(messages: Iterator[Message], receive: Receive) -> Receive:
    """A `receive` that hands out the messages already read, then whatever the server sends next."""

    async def replayed() -> Message:
        return next(messages, None) or await receive()

    return replayed

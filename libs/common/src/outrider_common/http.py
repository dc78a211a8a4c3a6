"""The HTTP surface every service shares: liveness, readiness and Prometheus metrics."""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram
from pydantic import BaseModel

from outrider_common.telemetry import metrics_payload

ReadyCheck = Callable[[], Awaitable[object]]
# PostgreSQL's integer and bigint: larger numbers are refused as input (422), not at the database (500).
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class Readiness(BaseModel):
    """`/readyz`'s answer, 200 when ready and 503 when not."""

    ready: bool
    checks: dict[str, str]  # each dependency: "ok", or why it failed


def ops_router(
    checks: Mapping[str, ReadyCheck], *, reported: Mapping[str, ReadyCheck] | None = None, timeout: float = 3.0
) -> APIRouter:
    """`/healthz` (the process answers), `/readyz` (every dependency in `checks` answers) and `/metrics`.

    `reported` dependencies are checked and shown in `/readyz` but do not make it 503: a service that keeps serving
    without them (the tracker's outbox holds its events while Kafka is away) must not be taken out of its Service's
    endpoints meanwhile.
    """
    both = {**checks, **(reported or {})}
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="Liveness: the process serves HTTP")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: the connections the service cannot serve without work",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready: a dependency in `checks` failed"}},
    )
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in both.items():
            try:
                await asyncio.wait_for(check(), timeout)
                results[name] = "ok"
            except Exception as exc:  # any failure means not ready; the reason is reported, not raised
                results[name] = f"{type(exc).__name__}: {exc}"[:300]
        ready = all(results[name] == "ok" for name in checks)
        return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = metrics_payload()
        return Response(body, media_type=content_type)

    return router


async def check_broker(broker: object) -> None:
    """Raise unless the Kafka broker answers a metadata request."""
    if not await broker.ping(timeout=2.0):  # type: ignore[attr-defined]
        raise ConnectionError("Kafka broker does not answer")


_HTTP_METRICS: dict[str, tuple[Counter, Histogram]] = {}


def instrument_http(app: FastAPI, service: str) -> None:
    """RED metrics per route template: `outrider_<service>_http_requests_total` and `…_request_duration_seconds`,
    an unhandled exception counted as the 500 it is answered with.

    (FastAPI itself opens a server span per request once a tracer provider is set.)"""
    if service not in _HTTP_METRICS:  # one registration per process, however many apps a test builds
        _HTTP_METRICS[service] = (
            Counter(
                f"outrider_{service}_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
            ),
            Histogram(
                f"outrider_{service}_http_request_duration_seconds",
                "Time to answer an HTTP request.",
                ["method", "route"],
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            ),
        )
    requests, duration = _HTTP_METRICS[service]

    def record(request: Request, status: int, start: float) -> None:
        # The route template (`/v1/engagements/{engagement_id}`), never the raw path: labels stay bounded.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        requests.labels(request.method, route, str(status)).inc()
        duration.labels(request.method, route).observe(time.perf_counter() - start)

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:
            # Unhandled: Starlette's outermost middleware answers 500, past this one; count it here or no 5xx
            # alert or dashboard ever sees a crash. (Not BaseException: a cancelled request was not answered.)
            record(request, 500, start)
            raise
        record(request, response.status_code, start)
        return response


def refuse_nul(app: FastAPI) -> None:
    """Answer 422 to any request whose path, query or JSON body carries a NUL character, naming which.

    PostgreSQL text cannot hold U+0000, so such input would otherwise fail deep in a query as a 500.
    """

    @app.middleware("http")
    async def no_nul(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        raw_path, query = request.scope.get("raw_path", b""), request.scope.get("query_string", b"")
        body = await request.body() if request.method in ("POST", "PUT", "PATCH") else b""
        if b"%00" in raw_path or b"\x00" in raw_path:
            where = "path"
        elif b"%00" in query or b"\x00" in query:
            where = "query"
        elif b"\\u0000" in body.lower() or b"\x00" in body:
            where = "body"
        else:
            return await call_next(request)
        # The shape of every other 422 (FastAPI's HTTPValidationError): clients read one kind of refusal.
        error = {"type": "string_nul", "loc": [where], "msg": f"NUL characters are not accepted in the {where}"}
        return JSONResponse({"detail": [error]}, 422)


def _json_safe(value: object) -> object:
    """`value` with every NaN or infinity spelled as the string JavaScript would use ("NaN", "Infinity")."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def refuse_invalid(app: FastAPI) -> None:
    """Answer invalid input with FastAPI's 422, also when it holds NaN, Infinity or a number past a float (1e400).

    Python's JSON reads those as non-finite floats, which FastAPI's own handler echoes back in the error and then
    cannot encode: a 500 instead of the 422. Here they come back as strings, in the same shape.
    """

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, 422)

"""The HTTP surface every service shares: liveness, readiness and Prometheus metrics."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from outrider_common.telemetry import metrics_payload

ReadyCheck = Callable[[], Awaitable[object]]


def ops_router(checks: Mapping[str, ReadyCheck], *, timeout: float = 3.0) -> APIRouter:
    """`/healthz` (the process answers), `/readyz` (every dependency in `checks` answers) and `/metrics`."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", summary="Liveness: the process serves HTTP")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: the broker and database connections work")
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), timeout)
                results[name] = "ok"
            except Exception as exc:  # any failure means not ready; the reason is reported, not raised
                results[name] = f"{type(exc).__name__}: {exc}"[:300]
        ready = all(v == "ok" for v in results.values())
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

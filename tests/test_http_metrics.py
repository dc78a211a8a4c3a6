"""The HTTP RED metrics count every answer, a crash (500) included: the 5xx alert and dashboards read them."""

import uuid

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from outrider_ingest.app import create_app
from outrider_ingest.settings import IngestSettings

UPLOAD = "/v1/engagements/{engagement_id}/logs"


def observed(method: str, route: str) -> tuple[float, float]:
    """(requests answered 500, requests timed) under `route`, as Prometheus would scrape them."""
    labels = {"method": method, "route": route}
    return (
        REGISTRY.get_sample_value("outrider_ingest_http_requests_total", {**labels, "status": "500"}) or 0.0,
        REGISTRY.get_sample_value("outrider_ingest_http_request_duration_seconds_count", labels) or 0.0,
    )


async def test_an_unhandled_exception_is_counted_as_a_500() -> None:
    # Ingest's own app (its middleware stack), not started: no Kafka, and its database pool is not open.
    app: FastAPI = create_app(IngestSettings())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    class BrokenDatabase:
        @property
        def pool(self) -> None:
            raise RuntimeError("a bug in the token check")  # not PostgreSQL away (that is a 503): a crash

    app.state.db = BrokenDatabase()

    routes = (("GET", "/boom"), ("POST", UPLOAD))
    before = {route: observed(method, route) for method, route in routes}
    # As uvicorn would: Starlette answers 500 and then re-raises for the server to log, which the transport swallows.
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        assert (await client.get("/boom")).status_code == 500
        # A real route that crashes: the upload's token check hits a bug (RuntimeError, unhandled).
        upload = await client.post(
            f"/v1/engagements/{uuid.uuid4()}/logs",
            params={"source": "h", "file_id": "f"},
            content=b"{}\n",
            headers={"Authorization": "Bearer otr_x"},
        )
        assert upload.status_code == 500
        exposition = (await client.get("/metrics")).text
    for method, route in routes:
        answered, timed = before[route]
        assert observed(method, route) == (answered + 1, timed + 1), route
    # Labels as before: method, route template and status; no exception type, no raw path.
    assert 'outrider_ingest_http_requests_total{method="GET",route="/boom",status="500"} 1.0' in exposition

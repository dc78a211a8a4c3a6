"""Logging, tracing from the standard `OTEL_*` variables, and Prometheus exposition on the default registry."""

import logging
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


def setup_logging(level: str) -> None:
    """key=value log lines on stderr, one per event."""
    logging.basicConfig(
        level=level.upper(), format="time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"
    )


def setup_tracing(service_name: str) -> TracerProvider:
    """The process's tracer provider for `service_name`; it exports over OTLP/HTTP only when an OTLP endpoint is
    configured (`OTEL_EXPORTER_OTLP_ENDPOINT`); the SDK flushes it at exit."""
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", f"outrider-{service_name}")})
    provider = TracerProvider(resource=resource)
    wants_export = any(os.environ.get(v) for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    if wants_export and os.environ.get("OTEL_SDK_DISABLED", "").lower() != "true":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)  # one service per process: our own spans use the same provider
    return provider


def metrics_payload() -> tuple[bytes, str]:
    """The Prometheus text exposition of this process and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

"""Logging, tracing from the standard `OTEL_*` variables, and Prometheus exposition on the default registry."""

import logging
import os
import time

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


def setup_logging(level: str) -> None:
    """key=value log lines on stderr, one per event; aiokafka's repeats thinned out (see `Repeats`)."""
    logging.basicConfig(
        level=level.upper(), format="time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"
    )
    for handler in logging.getLogger().handlers:  # on the handlers: a logger's filter misses its children's records
        if not any(isinstance(f, Repeats) for f in handler.filters):
            handler.addFilter(Repeats("aiokafka"))


class Repeats(logging.Filter):
    """Lets one message (its format and logger) of the loggers under `name` through at most once per `every_s`; the
    next one that goes through says how many were held back. With Kafka away aiokafka logs "Unable connect to node"
    ~60 times a second."""

    def __init__(self, name: str, every_s: float = 10) -> None:
        super().__init__(name)
        self._every_s = every_s
        self._seen: dict[tuple[str, object], tuple[float, int]] = {}  # (logger, format) -> (last let through, held)

    def filter(self, record: logging.LogRecord) -> bool:
        if not super().filter(record):
            return True  # not one of `name`'s loggers: let it through
        key = (record.name, record.msg)
        now = time.monotonic()
        last, held = self._seen.get(key, (float("-inf"), 0))
        if now - last < self._every_s:
            self._seen[key] = (last, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.getMessage()} (and {held} more like it in the last {now - last:.0f} s)"
            record.args = None
        return True


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

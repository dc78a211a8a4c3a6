"""The services' tracing setup: no exporter unless an OTLP endpoint is configured, one that sends there when it is."""

import os
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from outrider_common.telemetry import setup_tracing
from tests.test_traces import OtlpSink


@pytest.fixture(autouse=True)
def no_otel_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* variable, whatever the environment the tests run in; the test process's tracer provider untouched."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(trace, "set_tracer_provider", lambda provider: None)


@pytest.fixture
def collector() -> Iterator[OtlpSink]:
    sink = OtlpSink()
    yield sink
    sink.server.shutdown()
    sink.server.server_close()


def processors(provider: TracerProvider) -> tuple[SpanProcessor, ...]:
    return tuple(provider._active_span_processor._span_processors)  # the SDK lists them nowhere public


def test_without_an_otlp_endpoint_no_exporter_is_installed() -> None:
    provider = setup_tracing("ingest")
    assert processors(provider) == ()
    assert provider.resource.attributes["service.name"] == "outrider-ingest"


@pytest.mark.parametrize(
    ("variable", "path"), [("OTEL_EXPORTER_OTLP_ENDPOINT", ""), ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces")]
)
def test_an_otlp_endpoint_installs_one_exporter_that_sends_there(
    monkeypatch: pytest.MonkeyPatch, collector: OtlpSink, variable: str, path: str
) -> None:
    monkeypatch.setenv(variable, collector.url + path)
    provider = setup_tracing("analyzer")
    try:
        (processor,) = processors(provider)
        assert isinstance(processor, BatchSpanProcessor)
        with provider.get_tracer(__name__).start_as_current_span("checked"):
            pass
        assert provider.force_flush(10_000)
        assert [(service, span.name) for service, span in collector.spans] == [("outrider-analyzer", "checked")]
    finally:
        provider.shutdown()


def test_otel_sdk_disabled_installs_no_exporter_even_with_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert processors(setup_tracing("notifier")) == ()

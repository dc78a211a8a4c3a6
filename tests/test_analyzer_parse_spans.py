"""An "analyzer parse chunk" span ends, and so is exported, also when the parse fails or is cancelled."""

import asyncio
import threading
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import ConsumerRecord
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from outrider_analyzer import handlers
from outrider_common.events import LogChunk

LINE = b'{"controller":"A","action":"b","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n'


def record(offset: int) -> ConsumerRecord:
    chunk = LogChunk(engagement_id=uuid.uuid4(), source="h", file_id="f", offset=offset, lines=1)
    headers = [(k, v.encode()) for k, v in chunk.to_headers().items()]
    return ConsumerRecord("logs.raw", 0, offset, 0, 0, b"k", LINE, None, 1, len(LINE), headers)


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The spans the handler ends, as an exporter receives them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(handlers, "tracer", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


async def test_parsed_chunks_export_their_spans(exported: InMemorySpanExporter) -> None:
    done = await handlers._handle((record(0), record(100)), 60)
    assert len(done) == 2
    assert [s.name for s in exported.get_finished_spans()] == ["analyzer parse chunk"] * 2


async def test_a_parse_that_fails_still_exports_its_spans_with_the_error(
    exported: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(items: object, bucket_seconds: int) -> list[object]:
        raise MemoryError("no room")

    monkeypatch.setattr(handlers.logparse, "parse_chunks", fails)
    with pytest.raises(MemoryError):
        await handlers._handle((record(0), record(100)), 60)
    spans = exported.get_finished_spans()
    assert len(spans) == 2
    assert all(s.status.status_code is StatusCode.ERROR for s in spans)
    assert all(e.name == "exception" and e.attributes and e.attributes["exception.type"] == "MemoryError"
               for s in spans for e in s.events)  # fmt: skip


async def test_a_cancelled_parse_still_exports_its_spans(
    exported: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(items: object, bucket_seconds: int) -> list[object]:
        started.set()
        release.wait(10)
        return []

    monkeypatch.setattr(handlers.logparse, "parse_chunks", slow)
    handling = asyncio.ensure_future(handlers._handle((record(0),), 60))
    try:
        await asyncio.to_thread(started.wait, 10)
        handling.cancel()  # a rebalance or shutdown while the batch is parsed
        with pytest.raises(asyncio.CancelledError):
            await handling
    finally:
        release.set()
    (span,) = exported.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR

"""One trace from an upload through Kafka to the analyzer, collected over real OTLP/HTTP from the service processes."""

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from outrider.slack_local import LocalSlack
from tests.stack import as_admin, open_engagement, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
LINE = b'{"controller":"A","action":"b","status":200,"duration_s":0.1,"time":"2024-05-01T10:00:00Z"}\n'


class OtlpSink:
    """Receives `POST /v1/traces` (OTLP/HTTP protobuf) like a collector would, and keeps every span."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []  # (service.name, span)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                request = ExportTraceServiceRequest()
                request.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
                for resource_spans in request.resource_spans:
                    service = next(a.value.string_value for a in resource_spans.resource.attributes
                                   if a.key == "service.name")  # fmt: skip
                    for scope in resource_spans.scope_spans:
                        sink.spans += [(service, s) for s in scope.spans]
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def named(self, name: str) -> list[tuple[str, Span]]:
        return [(svc, s) for svc, s in self.spans if s.name == name]


@pytest.fixture
def otlp() -> Iterator[OtlpSink]:
    sink = OtlpSink()
    yield sink
    sink.server.shutdown()
    sink.server.server_close()


def test_upload_publish_parse_and_flush_are_one_causal_chain(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, otlp: OtlpSink
) -> None:
    settings = {"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"), settings=settings,
    ) as svc:  # fmt: skip
        engagement, auth = open_engagement(svc["tracker"].url)
        answer = httpx.post(f"{svc['ingest'].url}/v1/engagements/{engagement}/logs",
                            params={"source": "h", "file_id": "f"}, content=LINE * 3, headers=auth)  # fmt: skip
        assert answer.status_code == 202
        deadline = time.monotonic() + 30
        while not otlp.named("analyzer flush"):
            assert time.monotonic() < deadline, f"no flush span; got {[s.name for _, s in otlp.spans]}"
            time.sleep(0.2)

    (_, upload), = otlp.named("ingest upload")  # fmt: skip
    publishes = [s for svc, s in otlp.spans if svc == "outrider-ingest" and s.parent_span_id == upload.span_id]
    assert len(publishes) == 1  # one ~1 MiB record for three lines, published inside the upload's span
    (_, chunk), = otlp.named("analyzer parse chunk")  # fmt: skip
    assert chunk.trace_id == upload.trace_id  # the same trace crossed Kafka in the record headers
    assert chunk.parent_span_id == publishes[0].span_id
    flushes = [s for _, s in otlp.named("analyzer flush") if any(link.span_id == chunk.span_id for link in s.links)]
    assert len(flushes) == 1


def test_a_stage_change_is_traced_through_the_outbox_kafka_and_the_notifier_to_slack(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, otlp: OtlpSink
) -> None:
    slack = LocalSlack().start()
    settings = {"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OUTRIDER_SLACK_TOKEN": "xoxb-test", "OUTRIDER_SLACK_API_URL": slack.api_url,
                "OUTRIDER_DISPATCH_INTERVAL_S": "0.2"}  # fmt: skip
    try:
        with running_services(
            kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
            names=("tracker", "notifier"), settings=settings,
        ) as svc:  # fmt: skip
            tracker = svc["tracker"].url
            engagement = as_admin.post(f"{tracker}/v1/engagements", json={"name": "t", "customer": "c"}).json()["id"]
            moved = as_admin.post(f"{tracker}/v1/engagements/{engagement}/advance", json={"force": True, "reason": "r"})
            assert moved.status_code == 200
            deadline = time.monotonic() + 30
            while not otlp.named("notifier post to Slack"):
                assert time.monotonic() < deadline, f"no Slack span; got {sorted({s.name for _, s in otlp.spans})}"
                time.sleep(0.2)
    finally:
        slack.stop()
    assert len(slack.messages) == 1
    (_, request), = otlp.named("POST /v1/engagements/{engagement_id}/advance")  # fmt: skip
    by_id = {s.span_id: s for _, s in otlp.spans}
    (_, post), = otlp.named("notifier post to Slack")  # fmt: skip
    assert post.trace_id == request.trace_id  # one trace from the API call to the Slack message
    chain, span = [], post
    while span.parent_span_id:
        span = by_id[span.parent_span_id]
        chain.append(span.name)
    # post ← the notifier's consume of the event ← the relay's publish ← the outbox relay ← the API request
    assert chain[-1] == "POST /v1/engagements/{engagement_id}/advance"
    assert "outbox relay" in chain
    assert any("engagement.events" in name for name in chain)

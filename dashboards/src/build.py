"""The dashboards, built with grafana-foundation-sdk from the metric names the services export."""

import json
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from dashboards.src.customer_logs import customer_logs_json

DS = DataSourceRef(type_val="prometheus", uid="$datasource")
SERVICES = ("ingest", "analyzer", "tracker", "notifier")
API_SERVICES = ("ingest", "tracker")  # the services with routes under /v1/; the others serve only ops endpoints


def panel(title: str, unit: str, *queries: tuple[str, str], width: int = 12) -> timeseries.Panel:
    """A time series of PromQL `queries` given as (expression, legend)."""
    built = timeseries.Panel().title(title).datasource(DS).unit(unit).height(8).span(width)
    for expr, legend in queries:
        built = built.with_target(prometheus.Dataquery().expr(expr).legend_format(legend))
    return built


def board(uid: str, title: str, rows: list[tuple[str, list[timeseries.Panel]]]) -> dashboard.Dashboard:
    """A dashboard with a `$datasource` variable (never `${DS_*}`: file provisioning cannot resolve those)."""
    built = (
        dashboard.Dashboard(title).uid(uid).tags(["outrider"]).refresh("30s").time("now-1h", "now")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )  # fmt: skip
    for row, panels in rows:
        built = built.with_row(dashboard.Row(row))
        for p in panels:
            built = built.with_panel(p)
    return built


def rate(metric: str, by: str = "") -> str:
    return f"sum{f' by ({by})' if by else ''} (rate({metric}[$__rate_interval]))"


def p99(metric: str, by: str = "") -> str:
    group = f"le{', ' + by if by else ''}"
    return f"histogram_quantile(0.99, sum by ({group}) (rate({metric}_bucket[$__rate_interval])))"


def error_ratio(service: str) -> str:
    """5xx share of the API's answers (every API route is under /v1/): not /readyz's 503 while a dependency is away."""
    requests = f"outrider_{service}_http_requests_total"
    api, failed = requests + '{route=~"/v1/.*"}', requests + '{route=~"/v1/.*", status=~"5.."}'
    return f"{rate(failed)} / clamp_min({rate(api)}, 1e-9)"


def shared(gauge: str, by: str = "") -> str:
    """A gauge every replica sets from the shared database, counted once: the replicas' max."""
    return f"max{f' by ({by})' if by else ''} ({gauge})"


def red_row(service: str) -> list[timeseries.Panel]:
    """Rate, errors and duration of one service; the 5xx ratio only where there is an API to fail."""
    api = service in API_SERVICES
    width = 8 if api else 12
    requests = panel(
        "Requests / s by route",
        "reqps",
        (rate(f"outrider_{service}_http_requests_total", "route, status"), "{{route}} {{status}}"),
        width=width,
    )
    latency = panel(
        "Latency p99 by route",
        "s",
        (p99(f"outrider_{service}_http_request_duration_seconds", "route"), "{{route}}"),
        width=width,
    )
    if not api:
        return [requests, latency]
    return [requests, panel("5xx ratio", "percentunit", (error_ratio(service), "5xx"), width=width), latency]


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard as Grafana JSON, by file name."""
    pipeline = board("outrider-pipeline", "Outrider / Pipeline", [
        ("Ingest", [
            panel("Bytes accepted / s", "Bps", (rate("outrider_ingest_bytes_total", "outcome"), "{{outcome}}")),
            panel("Lines and Kafka records / s", "short", (rate("outrider_ingest_lines_total"), "lines"),
                  (rate("outrider_ingest_records_total", "outcome"), "records {{outcome}}")),
            panel("Produce latency p99", "s", (p99("outrider_ingest_produce_seconds"), "p99")),
            panel("Uploads refused / s", "short", (rate("outrider_ingest_requests_rejected_total", "reason"),
                                                   "{{reason}}")),
        ]),
        ("Analyzer", [
            panel("Lines parsed / s", "short", (rate("outrider_analyzer_lines_total", "log_type"), "{{log_type}}")),
            panel("Consumer lag", "short", ("sum by (partition) (outrider_analyzer_consumer_lag_records)",
                                            "partition {{partition}}")),
            panel("Bad lines / s", "short", (rate("outrider_analyzer_bad_lines_total", "reason"), "{{reason}}")),
            panel("Chunks by outcome / s", "short", (rate("outrider_analyzer_chunks_total", "outcome"),
                                                     "{{outcome}}")),
            panel("Flush latency p99", "s", (p99("outrider_analyzer_flush_seconds"), "p99")),
            panel("Flush time by step (share of wall time)", "percentunit",
                  (rate("outrider_analyzer_flush_step_seconds_sum", "step"), "{{step}}")),
            panel("Flush failures / s", "short", (rate("outrider_analyzer_flush_failures_total"), "failures")),
        ]),
    ])  # fmt: skip
    red = board("outrider-services", "Outrider / Services (RED)", [(service, red_row(service)) for service in SERVICES])
    engagements = board("outrider-engagements", "Outrider / Engagements and notifications", [
        ("Engagements", [
            panel("Active engagements by stage", "short",
                  (shared("outrider_tracker_engagements", "playbook, stage"), "{{playbook}} / {{stage}}")),
            panel("Overdue touchpoints and stalled engagements", "short",
                  (shared("outrider_tracker_overdue_touchpoints"), "overdue touchpoints"),
                  (shared("outrider_tracker_stalled_engagements"), "stalled engagements")),
            panel("Outbox backlog", "short", (shared("outrider_tracker_outbox_pending"), "tracker"),
                  (shared("outrider_analyzer_outbox_pending"), "analyzer")),
            panel("Least healthy engagements (health score 0-100)", "short",
                  (f"bottomk(10, {shared('outrider_tracker_engagement_health', 'engagement_id')})",
                   "{{engagement_id}}")),
        ]),
        ("Notifier", [
            panel("Reminders by outcome / s", "short",
                  (rate("outrider_notifier_reminders_total", "outcome"), "{{outcome}}")),
            panel("Slack errors / s", "short", (rate("outrider_notifier_slack_errors_total", "kind"), "{{kind}}")),
            panel("Delivery latency p99 (due → posted)", "s",
                  (p99("outrider_notifier_delivery_latency_seconds"), "p99")),
            panel("Events consumed / s", "short", (rate("outrider_notifier_events_total", "type"), "{{type}}")),
        ]),
    ])  # fmt: skip
    encoder = JSONEncoder(sort_keys=True, indent=2)
    built = {f"{b.build().uid}.json": json.loads(encoder.encode(b.build())) for b in (pipeline, red, engagements)}
    return {**built, "outrider-customer-logs.json": customer_logs_json()}

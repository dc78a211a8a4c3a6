"""The generated dashboards: committed JSON equals the code's output, panels are complete, queries parse."""

import json
import re
from pathlib import Path

import promql_parser
import yaml

from dashboards.src.build import dashboards

DASHBOARDS = Path(__file__).parents[2] / "dashboards"
METRIC = re.compile(r"\b((?:outrider|faststream)_[a-z_]+)\b")


def panels() -> list[dict]:
    return [p for d in dashboards().values() for p in d["panels"] if p["type"] != "row"]


def queries() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"] if "expr" in t]


def metric_names() -> set[str]:
    """Metric families the panels query (histogram series map to their family)."""
    return {re.sub(r"_(bucket|sum|count)$", "", m) for q in queries() for m in METRIC.findall(q)}


def test_committed_json_is_what_the_code_builds() -> None:
    built = dashboards()
    assert sorted(p.name for p in DASHBOARDS.glob("*.json")) == sorted(built)
    for name, body in built.items():
        assert json.loads((DASHBOARDS / name).read_text()) == body, f"{name} is stale: run make dashboards"


def test_every_panel_has_targets_and_a_datasource_variable() -> None:
    uids = [d["uid"] for d in dashboards().values()]
    assert len(set(uids)) == len(uids) == 4
    for d in dashboards().values():
        variables = {v["name"] for v in d["templating"]["list"]}
        assert variables & {"datasource", "postgres"}, d["title"]
        for p in (p for p in d["panels"] if p["type"] != "row"):
            assert p["datasource"]["uid"].removeprefix("$") in variables, p["title"]
            assert p["targets"], p["title"]
    assert "${DS_" not in json.dumps(dashboards())


def test_sql_panels_only_use_log_stats_columns() -> None:
    migration = Path(__file__).parents[2] / "libs/common/src/outrider_common/migrations/common-0001.log-stats.sql"
    table = migration.read_text().split("CREATE TABLE log_stats (")[1].split(");")[0]
    columns = set(re.findall(r"^\s+([a-z_0-9]+)\s", table, re.M)) - {"primary"}
    sql = [t["rawSql"] for p in panels() for t in p["targets"] if "rawSql" in t]
    assert len(sql) == 4
    for query in sql:
        used = set(re.findall(r"\b(count|failed|duration_[a-z_]+|key|bucket_start|engagement_id|log_type)\b", query))
        assert used <= columns, used - columns


def test_every_query_parses_as_promql() -> None:
    for q in queries():
        promql_parser.parse(q.replace("$__rate_interval", "5m"))
    assert len(metric_names()) >= 20


# Gauges every replica sets from the shared database: the same number once per replica, so panels take the max.
DATABASE_GAUGES = (
    "outrider_tracker_engagements",
    "outrider_tracker_overdue_touchpoints",
    "outrider_tracker_stalled_engagements",
    "outrider_tracker_engagement_health",
    "outrider_tracker_outbox_pending",
    "outrider_analyzer_outbox_pending",
)


def test_gauges_of_the_shared_database_count_once_however_many_replicas() -> None:
    uses = [(q, g) for q in queries() for g in DATABASE_GAUGES if re.search(rf"\b{g}\b", q)]
    assert {g for _, g in uses} == set(DATABASE_GAUGES)
    for query, gauge in uses:
        assert re.search(rf"\bmax(?: by \([a-z_, ]+\))? \({gauge}\)", query), query
    (health,) = [q for q, g in uses if g == "outrider_tracker_engagement_health"]
    assert health == "bottomk(10, max by (engagement_id) (outrider_tracker_engagement_health))"


def test_red_error_ratios_count_only_api_routes() -> None:
    # /readyz answers 503 while Kafka or PostgreSQL is away: that is the readiness probe's business, not an error rate.
    ratios = [q for p in panels() if p["title"] == "5xx ratio" for q in (t["expr"] for t in p["targets"])]
    # Only services with routes under /v1/ get one: another's would show "No data" for ever.
    services = Path(__file__).parents[2] / "services"
    with_api = {d.name for d in services.iterdir() if any("/v1" in f.read_text() for f in d.glob("src/**/*.py"))}
    assert with_api == {"ingest", "tracker"}
    assert {re.search(r"outrider_([a-z]+)_http", q)[1] for q in ratios} == with_api
    assert len(ratios) == 2
    for ratio in ratios:
        selectors = re.findall(r"outrider_[a-z]+_http_requests_total(\{[^}]*\})?", ratio)
        assert len(selectors) == 2, ratio
        assert all('route=~"/v1/.*"' in s for s in selectors), ratio


def test_provisioning_has_a_data_source_for_every_variable_of_every_dashboard() -> None:
    provisioned = [
        ds
        for f in sorted((DASHBOARDS / "provisioning" / "datasources").glob("*.yaml"))
        for ds in yaml.safe_load(f.read_text())["datasources"]
    ]
    wanted = {v["query"] for d in dashboards().values() for v in d["templating"]["list"] if v["type"] == "datasource"}
    assert wanted == {"prometheus", "grafana-postgresql-datasource"}
    assert wanted <= {ds["type"] for ds in provisioned}
    (postgres,) = [ds for ds in provisioned if ds["type"] == "grafana-postgresql-datasource"]
    assert postgres["uid"] == "outrider-postgres"  # as `make up` provisions it (src/outrider/up.py)
    # Where the database is and who reads it come from Grafana's environment, never a password in the repository.
    parts = [postgres["url"], postgres["user"], *postgres["jsonData"].values(), postgres["secureJsonData"]["password"]]
    assert all(re.fullmatch(r"(\$[A-Z_]+:?)+", part) for part in parts), parts

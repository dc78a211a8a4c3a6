"""Customer logs per engagement: the analyzer's per-minute `log_stats` rows in PostgreSQL, for one engagement.

grafana-foundation-sdk 10.1 has no SQL query builder, so a small one writes the target JSON Grafana's PostgreSQL
datasource expects (raw SQL, code mode).
"""

import json
from typing import Any, Self

from grafana_foundation_sdk.builders import dashboard, timeseries
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models.dashboard import DataSourceRef


class SqlQuery(cogvariants.Dataquery):
    """The JSON Grafana's SQL datasources expect in a panel's `targets` (code mode, raw SQL)."""

    def __init__(self, ref_id: str, raw_sql: str, fmt: str, datasource: DataSourceRef) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.fmt = fmt
        self.datasource = datasource

    def to_json(self) -> dict[str, Any]:
        return {
            "refId": self.ref_id,
            "datasource": self.datasource.to_json(),
            "editorMode": "code",
            "format": self.fmt,
            "rawQuery": True,
            "rawSql": self.raw_sql,
        }


class Sql:
    """Builder for `SqlQuery` (what `Panel.with_target` accepts)."""

    def __init__(self, raw_sql: str, *, ref_id: str = "A", fmt: str = "time_series") -> None:
        self._sql = raw_sql
        self._ref_id = ref_id
        self._fmt = fmt
        self._ds = DataSourceRef(type_val="grafana-postgresql-datasource", uid="$postgres")

    def ref_id(self, ref_id: str) -> Self:
        self._ref_id = ref_id
        return self

    def build(self) -> SqlQuery:
        return SqlQuery(self._ref_id, self._sql, self._fmt, self._ds)


_WHERE = "engagement_id = '$engagement'::uuid AND log_type IN ($log_type) AND $__timeFilter(bucket_start)"


def _by_key(value: str) -> str:
    return (
        f"SELECT bucket_start AS time, key AS metric, {value} AS value FROM log_stats "
        f"WHERE {_WHERE} GROUP BY bucket_start, key ORDER BY bucket_start"
    )


def customer_logs() -> dashboard.Dashboard:
    """Per-minute aggregates the analyzer wrote to PostgreSQL `log_stats`, for one engagement.

    No p99: the quantile lives in `sketch` (logparse's binary sketch), which SQL cannot read — mean and max instead.
    """
    pg = DataSourceRef(type_val="grafana-postgresql-datasource", uid="$postgres")

    def panel(title: str, unit: str, value: str) -> timeseries.Panel:
        return (
            timeseries.Panel()
            .title(title)
            .unit(unit)
            .height(8)
            .span(12)
            .datasource(pg)
            .with_target(
                Sql(_by_key(value))  # type: ignore[arg-type]
            )
        )

    return (
        dashboard.Dashboard("Outrider / Customer logs")
        .uid("outrider-customer-logs")
        .description("Per-minute log statistics of one engagement, from PostgreSQL log_stats.")
        .tags(["outrider", "customer"])
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("utc")
        .editable()
        .with_variable(
            dashboard.DatasourceVariable("postgres").label("PostgreSQL").type("grafana-postgresql-datasource")
        )
        .with_variable(
            dashboard.QueryVariable("engagement")
            .label("Engagement")
            .datasource(pg)
            .query("SELECT DISTINCT engagement_id::text FROM log_stats ORDER BY 1")
            .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        )
        .with_variable(
            dashboard.QueryVariable("log_type")
            .label("Log type")
            .datasource(pg)
            .query("SELECT DISTINCT log_type FROM log_stats WHERE engagement_id = '$engagement'::uuid ORDER BY 1")
            .multi(True)
            .include_all(True)
            .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        )
        .with_panel(panel("Requests / min by key", "short", "sum(count)"))
        .with_panel(panel("% failed by key", "percent", "100.0 * sum(failed) / NULLIF(sum(count), 0)"))
        .with_panel(panel("Mean duration by key", "ms", "sum(duration_sum_ms) / NULLIF(sum(count), 0)"))
        .with_panel(panel("Max duration by key", "ms", "max(duration_max_ms)"))
    )


def customer_logs_json() -> dict[str, Any]:
    return json.loads(JSONEncoder(sort_keys=True, indent=2).encode(customer_logs().build()))  # type: ignore[no-any-return]

"""The generated dashboards: committed JSON equals the code's output, panels are complete, queries parse."""

import json
import re
from pathlib import Path

import promql_parser

from dashboards.src.build import dashboards

DASHBOARDS = Path(__file__).parents[2] / "dashboards"
METRIC = re.compile(r"\b((?:outrider|faststream)_[a-z_]+)\b")


def queries() -> list[str]:
    return [t["expr"] for d in dashboards().values() for p in d["panels"] if p["type"] != "row" for t in p["targets"]]


def metric_names() -> set[str]:
    """Metric families the panels query (histogram series map to their family)."""
    return {re.sub(r"_bucket$", "", m) for q in queries() for m in METRIC.findall(q)}


def test_committed_json_is_what_the_code_builds() -> None:
    built = dashboards()
    assert sorted(p.name for p in DASHBOARDS.glob("*.json")) == sorted(built)
    for name, body in built.items():
        assert json.loads((DASHBOARDS / name).read_text()) == body, f"{name} is stale: run make dashboards"


def test_every_panel_has_targets_and_the_datasource_variable() -> None:
    uids = [d["uid"] for d in dashboards().values()]
    assert len(set(uids)) == len(uids) == 3
    for d in dashboards().values():
        assert [v["name"] for v in d["templating"]["list"]] == ["datasource"]
        panels = [p for p in d["panels"] if p["type"] != "row"]
        assert panels
        for p in panels:
            assert p["datasource"] == {"type": "prometheus", "uid": "$datasource"}, p["title"]
            assert p["targets"], p["title"]
    assert "${DS_" not in json.dumps(dashboards())


def test_every_query_parses_as_promql() -> None:
    for q in queries():
        promql_parser.parse(q.replace("$__rate_interval", "5m"))
    assert len(metric_names()) >= 20

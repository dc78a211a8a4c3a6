"""Engagements walk their playbooks through the tracker API: refusals, forcing, data-driven items, audit, status."""

import time
import tomllib
from pathlib import Path

import httpx
import pytest

from tests.stack import as_admin, open_engagement, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
PLAYBOOKS = Path(__file__).parents[1] / "services/tracker/src/outrider_tracker/playbook/data"
LOGS = Path(__file__).parent / "fixtures" / "logs"


def test_every_playbook_is_walked_to_its_last_stage(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path,
        names=("tracker", "ingest", "analyzer"),
    ) as svc:  # fmt: skip
        tracker, ingest = svc["tracker"].url, svc["ingest"].url
        assert {p["id"] for p in as_admin.get(f"{tracker}/v1/playbooks").json()} == {
            "gitlab-reference-architecture", "joint-implementation", "ai-assistant-rollout"
        }  # fmt: skip
        bad = as_admin.post(f"{tracker}/v1/engagements", json={"name": "x", "customer": "y", "playbook_id": "nope"})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "playbook_id"]

        # Every change below is made with an editor's token: the audit trail names its owner.
        sa = as_admin.post(f"{tracker}/v1/api-tokens", json={"name": "sa@example.com", "role": "editor"}).json()
        actor = {"Authorization": f"Bearer {sa['token']}"}
        for path in sorted(PLAYBOOKS.glob("*.toml")):
            book = tomllib.loads(path.read_text())
            engagement = as_admin.post(
                f"{tracker}/v1/engagements", json={"name": book["name"], "customer": "ACME", "playbook_id": book["id"]},
                headers=actor,
            ).json()  # fmt: skip
            eid = engagement["id"]
            assert engagement["stage"] == book["stages"][0]["id"]
            for stage, following in zip(book["stages"], book["stages"][1:], strict=False):
                titles = {i["id"]: i["title"] for i in stage["checklist"]}
                refused = as_admin.post(f"{tracker}/v1/engagements/{eid}/advance", headers=actor)
                assert refused.status_code == 409
                assert refused.json()["missing"] == [titles[c] for c in stage["exit_criteria"]]
                for item in stage["checklist"]:
                    if item.get("auto"):
                        tick = as_admin.put(
                            f"{tracker}/v1/engagements/{eid}/checklist/{item['id']}", json={"done": True}
                        )
                        assert tick.status_code == 409  # the data decides, not a person
                    else:
                        tick = as_admin.put(
                            f"{tracker}/v1/engagements/{eid}/checklist/{item['id']}",
                            json={"done": True, "note": "done in the call"}, headers=actor,
                        )  # fmt: skip
                        assert tick.status_code == 200
                if any(i.get("auto") for i in stage["checklist"]):
                    still = as_admin.post(f"{tracker}/v1/engagements/{eid}/advance", headers=actor).json()
                    assert still["missing"] == ["Logs received", "Logs analysed"]
                    ship_every_log_type(ingest, tracker, eid, actor)
                moved = as_admin.post(f"{tracker}/v1/engagements/{eid}/advance", headers=actor)
                assert moved.status_code == 200, moved.text
                assert moved.json() == {
                    "engagement_id": eid, "from_stage": stage["id"], "to_stage": following["id"], "forced": False,
                    "missing": [],
                }  # fmt: skip
            last = as_admin.post(f"{tracker}/v1/engagements/{eid}/advance", headers=actor)
            assert last.status_code == 409
            assert "last stage" in last.json()["detail"]
            status = as_admin.get(f"{tracker}/v1/engagements/{eid}/status").json()
            assert status["stage"]["id"] == book["stages"][-1]["id"]
            assert status["stage"]["next_stage"] is None
            trail = as_admin.get(f"{tracker}/v1/engagements/{eid}/audit").json()
            assert [e["action"] for e in trail].count("stage.advanced") == len(book["stages"]) - 1
            assert {e["actor"] for e in trail} == {"sa@example.com"}

        # Forcing past unmet criteria needs a reason, and the trail keeps it with what was skipped.
        eid, _ = open_engagement(tracker, "forced")
        no_reason = as_admin.post(f"{tracker}/v1/engagements/{eid}/advance", json={"force": True})
        assert no_reason.status_code == 409
        assert "needs a reason" in no_reason.json()["detail"]
        forced = as_admin.post(
            f"{tracker}/v1/engagements/{eid}/advance", json={"force": True, "reason": "exec sponsor"}
        )
        assert forced.json()["forced"] is True
        entry = as_admin.get(f"{tracker}/v1/engagements/{eid}/audit").json()[-1]
        assert (entry["action"], entry["reason"], entry["details"]["forced"]) == (
            "stage.advanced",
            "exec sponsor",
            True,
        )
        assert len(entry["details"]["missing"]) == 4


def ship_every_log_type(ingest: str, tracker: str, engagement_id: str, actor: dict[str, str]) -> None:
    """Upload one fixture of each GitLab log type with a token `actor` mints, then wait until the status shows the
    data-driven items done."""
    token = as_admin.post(f"{tracker}/v1/engagements/{engagement_id}/tokens", headers=actor).json()["token"]
    for path in sorted(LOGS.glob("*.log")):
        answer = httpx.post(
            f"{ingest}/v1/engagements/{engagement_id}/logs", params={"source": "h", "file_id": path.name},
            content=path.read_bytes(), headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        assert answer.status_code == 202
    deadline = time.monotonic() + 60
    while True:
        status = as_admin.get(f"{tracker}/v1/engagements/{engagement_id}/status").json()
        auto = {i["id"]: i for i in status["checklist"] if i["auto"]}
        if all(i["done"] for i in auto.values()):
            assert auto["logs_analysed"]["satisfied_by"] == "stats computed: production_json, api_json, gitaly, sidekiq"
            assert status["requests_counted"] > 0
            assert status["top_keys"]
            return
        assert time.monotonic() < deadline, f"data-driven items never completed: {auto}"
        time.sleep(0.3)

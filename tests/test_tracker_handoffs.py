"""Deployment profile, hand-offs with the receiving team's required fields, and tech-review requests; the audit trail
says what each change changed."""

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.stack import as_admin, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]
ADVISOR_NEEDS = ["deployment_type", "hosting_provider", "total_cpu", "total_memory_gb", "total_disk_gb", "code_hosts",
                 "repositories", "largest_repo_gb"]  # fmt: skip


def test_profile_handoffs_and_tech_reviews(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker",)
    ) as svc:
        tracker = svc["tracker"].url
        body = {"name": "Impl", "customer": "Umbrella", "playbook_id": "joint-implementation",
                "owners": {"technical_advisor": "Ana Lima"}, "links": {"crm": "https://crm.example.com/acct/42"},
                "anticipated_users": 4000, "target_destination": "gcp"}  # fmt: skip
        base = f"{tracker}/v1/engagements/{as_admin.post(f'{tracker}/v1/engagements', json=body).json()['id']}"
        created = as_admin.get(base).json()
        assert (created["owners"], created["links"]["crm"], created["target_destination"]) == (
            {"technical_advisor": "Ana Lima"}, "https://crm.example.com/acct/42", "gcp"
        )  # fmt: skip
        owners = {"technical_advisor": "Ana Lima", "project_manager": "Bo"}
        edited = as_admin.patch(base, json={"version": 1, "slack_channel": "#umbrella", "owners": owners})
        assert (edited.json()["version"], edited.json()["slack_channel"]) == (2, "#umbrella")
        assert edited.json()["owners"]["project_manager"] == "Bo"
        plain = as_admin.post(f"{tracker}/v1/engagements", json={"name": "p", "customer": "Initech"}).json()["id"]
        engagements = f"{tracker}/v1/engagements"
        filters = [{"owner": "Bo"}, {"owner": "Ana Lima", "target": "gcp"}, {"target": "aws"}, {"limit": 1},
                   {"offset": 1}]  # fmt: skip
        found = [[e["id"] for e in as_admin.get(engagements, params=f).json()] for f in filters]  # newest first
        assert found == [[created["id"]], [created["id"]], [], [plain], [created["id"]]]
        assert as_admin.get(engagements, params={"limit": 0}).status_code == 422
        assert as_admin.get(engagements, params={"target": "moon"}).status_code == 422
        assert as_admin.post(f"{tracker}/v1/engagements", json={**body, "owners": {"ceo": "x"}}).status_code == 422
        stale = as_admin.patch(base, json={"version": 1, "status": "paused"})  # someone else's edit came first
        assert stale.status_code == 409
        assert "version 2" in stale.json()["detail"]
        assert as_admin.patch(f"{tracker}/v1/engagements/{uuid.uuid4()}", json={"version": 1}).status_code == 404
        nulled = as_admin.patch(
            base, json={"version": 2, "name": None, "slack_channel": None}
        )  # only the channel may go
        assert [e["loc"] for e in nulled.json()["detail"]] == [["body", "name"]]
        to_advisor = {"from_team": "implementation", "to_team": "technical_advisor", "notes": "handing over"}

        refused = as_admin.post(f"{base}/handoffs", json=to_advisor)
        assert refused.status_code == 409
        assert refused.json()["missing"] == ADVISOR_NEEDS
        partial = {"deployment_type": "helm", "hosting_provider": "GCP", "total_cpu": 96, "code_hosts": ["GitLab"]}
        assert as_admin.put(f"{base}/profile", json=partial).status_code == 200
        assert as_admin.post(f"{base}/handoffs", json=to_advisor).json()["missing"] == [
            "total_memory_gb", "total_disk_gb", "repositories", "largest_repo_gb"
        ]  # fmt: skip
        complete = {**partial, "total_memory_gb": 384, "total_disk_gb": 4000, "repositories": 12000,
                    "largest_repo_gb": "38.5", "monorepos": 2}  # fmt: skip
        profile = as_admin.put(f"{base}/profile", json=complete).json()
        assert (profile["largest_repo_gb"], profile["monorepos"]) == ("38.5", 2)
        assert as_admin.put(f"{base}/profile", json={"total_cpu": -1}).status_code == 422

        handoff = as_admin.post(f"{base}/handoffs", json=to_advisor)
        assert handoff.status_code == 201
        ta = as_admin.post(f"{tracker}/v1/api-tokens", json={"name": "ta@example.com", "role": "editor"}).json()
        as_ta = {"Authorization": f"Bearer {ta['token']}"}
        accepted = as_admin.post(f"{base}/handoffs/{handoff.json()['id']}/accept", headers=as_ta)
        assert accepted.json()["status"] == "accepted"
        assert as_admin.post(f"{base}/handoffs/{uuid.uuid4()}/accept").status_code == 404
        assert as_admin.post(f"{base}/handoffs", json={**to_advisor, "to_team": "marketing"}).status_code == 422

        review = {"gap": "No SAML group sync for nested groups", "decision_needed_by": "2026-12-15",
                  "requirement": "new", "customer_expectation": "Nested groups map to projects",
                  "consequence_if_unmet": "Manual access management for 4,000 users"}  # fmt: skip
        created = as_admin.post(f"{base}/tech-reviews", json=review)
        assert created.status_code == 201
        assert as_admin.post(f"{base}/tech-reviews", json={**review, "decision_needed_by": "soon"}).status_code == 422
        decided = as_admin.post(
            f"{base}/tech-reviews/{created.json()['id']}/decision", json={"decision": "On roadmap 17.2"}
        )
        assert (decided.json()["status"], decided.json()["decision"]) == ("decided", "On roadmap 17.2")

        issue = as_admin.post(
            f"{base}/issues", json={"title": "Gitaly OOM on monorepo clone", "severity": "high"}
        ).json()
        other = as_admin.post(f"{base}/issues", json={"title": "Slow MR diffs", "severity": "medium"}).json()
        assert as_admin.post(f"{base}/issues", json={"title": "x", "severity": "urgent"}).status_code == 422
        resolved = as_admin.post(f"{base}/issues/{issue['id']}/resolve", json={"resolution": "pack-objects cache on"})
        assert resolved.json()["status"] == "resolved"
        assert [i["id"] for i in as_admin.get(f"{base}/issues").json()] == [other["id"], issue["id"]]  # open first
        expansion = as_admin.post(f"{base}/expansions", json={"title": "Duo for 800 devs", "potential_users": 800})
        assert expansion.status_code == 201
        won = as_admin.patch(
            f"{base}/expansions/{expansion.json()['id']}", json={"status": "won", "potential_users": 900}
        )
        assert (won.json()["status"], won.json()["potential_users"], won.json()["title"]) == (
            "won",
            900,
            "Duo for 800 devs",
        )
        assert (
            as_admin.patch(f"{base}/expansions/{expansion.json()['id']}", json={"status": "maybe"}).status_code == 422
        )
        raised = as_admin.patch(f"{base}/issues/{other['id']}", json={"severity": "critical", "owner": "TA"})
        assert (raised.json()["severity"], raised.json()["owner"], raised.json()["status"]) == (
            "critical",
            "TA",
            "open",
        )
        assert as_admin.patch(f"{base}/issues/{uuid.uuid4()}", json={"owner": "x"}).status_code == 404

        status = as_admin.get(f"{base}/status").json()
        assert [i["title"] for i in status["open_issues"]] == ["Slow MR diffs"]
        assert (status["open_risks"], status["next_touchpoint"], status["overdue_touchpoints"]) == ([], None, [])

        audit = as_admin.get(f"{base}/audit").json()
        assert {e["actor"] for e in audit if e["action"] == "handoff.accepted"} == {"ta@example.com"}
        trail = [e["action"] for e in audit]
        assert trail == [
            "engagement.created", "engagement.updated", "profile.updated", "profile.updated", "handoff.requested",
            "handoff.accepted", "tech_review.requested", "tech_review.decided", "issue.opened", "issue.opened",
            "issue.resolved", "expansion.opened", "expansion.updated", "issue.updated",
        ]  # fmt: skip


def test_the_audit_trail_says_what_changed(tracker: str) -> None:
    eid = as_admin.post(f"{tracker}/v1/engagements", json={"name": "a", "customer": "c"}).json()["id"]
    base = f"{tracker}/v1/engagements/{eid}"

    def last(action: str) -> dict[str, object]:
        details: dict[str, object] = [e for e in as_admin.get(f"{base}/audit").json() if e["action"] == action][-1][
            "details"
        ]
        return details

    first, moved = (datetime.now(UTC).replace(microsecond=0) + timedelta(days=d) for d in (3, 4))
    call = as_admin.post(f"{base}/touchpoints", json={"title": "Kickoff", "scheduled_at": first.isoformat()}).json()
    url = f"{base}/touchpoints/{call['id']}"
    as_admin.patch(url, json={"attendees": ["ana@example.com"]}).raise_for_status()
    assert last("touchpoint.updated")["attendees"] == ["ana@example.com"]
    assert "moved_from" not in last("touchpoint.updated")
    as_admin.patch(url, json={"scheduled_at": moved.isoformat()}).raise_for_status()
    entry = last("touchpoint.updated")
    assert (datetime.fromisoformat(str(entry["scheduled_at"])), datetime.fromisoformat(str(entry["moved_from"]))) == (
        moved,
        first,
    )
    assert "attendees" not in entry  # only what this change changed

    review = {"gap": "Geo", "decision_needed_by": str(date.today() + timedelta(days=30)), "requirement": "new",
              "customer_expectation": "DR", "consequence_if_unmet": "No DR"}  # fmt: skip
    created = as_admin.post(f"{base}/tech-reviews", json=review).json()
    as_admin.post(f"{base}/tech-reviews/{created['id']}/decision", json={"decision": "On roadmap 17.2"})
    assert last("tech_review.decided") == {"review_id": created["id"], "decision": "On roadmap 17.2"}

    issue = as_admin.post(f"{base}/issues", json={"title": "OOM", "severity": "high"}).json()
    as_admin.post(f"{base}/issues/{issue['id']}/resolve", json={"resolution": "pack-objects cache on"})
    assert last("issue.resolved") == {"issue_id": issue["id"], "resolution": "pack-objects cache on"}

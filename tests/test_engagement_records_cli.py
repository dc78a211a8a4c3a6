"""`outrider engagements open|set|tick|profile` and the record commands (touchpoints, risks, issues, hand-offs,
tech reviews, upload tokens): times and options read before the tracker is asked, then a whole engagement kept
through the CLI against a real tracker, each change checked in what the API then returns."""

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from outrider import engagements, records
from outrider.cli import app
from outrider.tracker_api import Conflict, when
from tests.stack import ADMIN_TOKEN, as_admin, running_services, write_findings

EID = "3f2b6c1e-8d4a-4f7e-9a51-0c6e2d9b7a10"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
runner = CliRunner()


@pytest.fixture
def utc_plus_2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's local zone is two hours east of UTC."""
    monkeypatch.setenv("TZ", "Etc/GMT-2")  # POSIX sign: GMT-2 is UTC+2
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_time_without_a_zone_is_this_machines_and_one_with_a_zone_is_kept(utc_plus_2: None) -> None:
    assert when("2026-05-04 15:00").astimezone(UTC) == datetime(2026, 5, 4, 13, 0, tzinfo=UTC)
    assert when("2026-05-04T15:00Z") == datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
    assert when("2026-05-04T15:00-05:00").astimezone(UTC) == datetime(2026, 5, 4, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "ahead"), [("+30m", timedelta(minutes=30)), ("+2h", timedelta(hours=2)), ("+3d", timedelta(days=3))]
)
def test_a_time_from_now(text: str, ahead: timedelta) -> None:
    before = datetime.now(UTC)
    at = when(text)
    assert before + ahead <= at <= datetime.now(UTC) + ahead
    assert at.tzinfo is not None  # sent with its offset: the tracker refuses a time without one


@pytest.mark.parametrize("text", ["tomorrow", "+2w", "2026-13-01", ""])
def test_a_time_that_is_none_of_these_is_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(typer.BadParameter, match=r"is not a time: ISO 8601 .* \+30m, \+2h, \+3d"):
        when(text)


@pytest.fixture
def no_tracker(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any tracker call: these commands must be refused before one."""
    made: list[str] = []

    def call(method: str, url: str, token: str | None, **kwargs: Any) -> Any:
        made.append(f"{method} {url}")
        raise AssertionError(f"unexpected tracker call {method} {url}")

    monkeypatch.setattr(engagements, "call", call)
    monkeypatch.setattr(records, "call", call)
    return made


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["set", EID], "nothing to change: give at least one option"),
        (["set", EID, "--owner", "architect=Ana"], "'architect=Ana' is not ROLE=WHO with ROLE one of solutions_arc"),
        (["open", "ACME", "RA", "--owner", "solutions_architect"], "is not ROLE=WHO"),
        (["set", EID, "--status", "archived"], "'archived' is not one of 'active', 'paused', 'closed'"),
        (["touchpoints", "add", EID, "Kickoff", "next week"], "'next week' is not a time"),
        (["touchpoints", "move", EID, EID], "nothing to change: give --to, --title or both"),
        (["touchpoints", "held", EID, EID, "--next", "soon"], "'soon' is not a time"),
        (["risks", "add", EID, "NFS", "--likelihood", "huge", "--impact", "high"], "'huge' is not one of 'low'"),
        (["risks", "set", EID, EID], "nothing to change: give --status"),
        (
            ["issues", "add", EID, "SSO", "--severity", "blocker"],
            "'blocker' is not one of 'low', 'medium', 'high', 'critical'",
        ),
        (["handoffs", "add", EID, "sales", "implementation"], "'sales' is not one of 'pre_sales'"),
        (
            [
                "tech-reviews",
                "add",
                EID,
                "FIPS",
                "--needed-by",
                "soon",
                "--requirement",
                "new",
                "--expectation",
                "x",
                "--consequence",
                "y",
            ],
            "'soon' does not match the formats '%Y-%m-%d'",
        ),
    ],
)
def test_options_refused_before_the_tracker_is_asked(no_tracker: list[str], args: list[str], says: str) -> None:
    result = runner.invoke(app, ["engagements", *args], terminal_width=400)
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.replace("│", " ").split())
    assert no_tracker == []


def test_set_reads_again_and_reapplies_when_someone_changed_the_engagement_in_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = iter(
        [
            {"version": 4, "owners": {"solutions_architect": "Ana"}},
            {"version": 5, "owners": {"solutions_architect": "Ana", "project_manager": "Raj"}},
        ]
    )
    patches: list[dict[str, Any]] = []

    def call(method: str, url: str, token: str | None, **kwargs: Any) -> Any:
        if method == "GET":
            return next(reads)
        patches.append(kwargs["json"])
        if len(patches) == 1:
            raise Conflict("changed since read")
        return {"customer": "ACME", "name": "RA", "status": "paused", "version": 6}

    monkeypatch.setattr(engagements, "call", call)
    result = runner.invoke(
        app,
        [
            "engagements",
            "set",
            EID,
            "--status",
            "paused",
            "--owner",
            "technical_advisor=Lee",
            "--owner",
            "solutions_architect=",
        ],
    )
    assert result.exit_code == 0, result.output
    assert patches == [
        {"version": 4, "status": "paused", "owners": {"technical_advisor": "Lee"}},
        # the second try starts from what the other change left: its project manager stays
        {"version": 5, "status": "paused", "owners": {"project_manager": "Raj", "technical_advisor": "Lee"}},
    ]
    assert "ACME · RA: paused, version 6" in result.output


def ids(output: str) -> list[str]:
    return UUID.findall(output)


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.slow
def test_an_engagement_kept_through_the_cli(
    kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker",)
    ) as svc:
        tracker = svc["tracker"].url
        monkeypatch.setenv("OUTRIDER_TRACKER_URL", tracker)
        monkeypatch.setenv("OUTRIDER_API_TOKEN", ADMIN_TOKEN)

        def cli(*args: str, code: int = 0) -> str:
            result = runner.invoke(app, ["engagements", *args], terminal_width=400)
            assert result.exit_code == code, result.output
            return result.output

        def api(*path: str) -> Any:
            response = as_admin.get("/".join([tracker, "v1/engagements", *path]))
            assert response.status_code == 200, response.text
            return response.json()

        opened = cli(
            "open",
            "ACME Corp",
            "GitLab 10k RA",
            "--channel",
            "#acme",
            "--target",
            "aws",
            "--users",
            "800",
            "--owner",
            "solutions_architect=U024BE7LH",
            "--owner",
            "technical_advisor=Ana Lima",
        )
        eid = ids(opened)[0]
        e = api(eid)
        assert (e["customer"], e["name"], e["stage"], e["slack_channel"]) == (
            "ACME Corp",
            "GitLab 10k RA",
            "discovery",
            "#acme",
        )
        assert (e["target_destination"], e["current_users"]) == ("aws", 800)
        assert e["owners"] == {"solutions_architect": "U024BE7LH", "technical_advisor": "Ana Lima"}

        cli("set", eid, "--status", "paused", "--owner", "solutions_architect=", "--owner", "project_manager=Raj")
        e = api(eid)
        assert e["status"] == "paused"
        assert e["owners"] == {"technical_advisor": "Ana Lima", "project_manager": "Raj"}
        assert "PAUSED" in cli("status", eid).splitlines()[0]
        cli("set", eid, "--status", "active", "--name", "GitLab 10k reference architecture")
        assert (api(eid)["status"], api(eid)["name"]) == ("active", "GitLab 10k reference architecture")

        status = cli("status", eid)
        assert re.search(r"Request production_json.*│\s+request_logs", status), status
        assert re.search(r"Logs received .*│ \(from data\)", status), status
        assert f"No requests counted yet: ship logs with a token from `tokens mint {eid}`" in status
        ticked = cli("tick", eid, "request_logs", "--note", "asked on the call")
        assert "✓ Request production_json" in ticked
        assert "Still open in this stage: Logs received; Logs analysed" in ticked
        item = next(i for i in api(eid, "status")["checklist"] if i["id"] == "request_logs")
        assert (item["done"], item["note"]) == (True, "asked on the call")
        assert "409: 'Logs received' completes itself" in cli("tick", eid, "logs_received", code=1)
        assert "· Request production_json" in cli("tick", eid, "request_logs", "--undo")
        assert not next(i for i in api(eid, "status")["checklist"] if i["id"] == "request_logs")["done"]

        # Touchpoints: scheduled, held (with the next one), moved, cancelled.
        kickoff = ids(
            cli("touchpoints", "add", eid, "Kickoff", "2026-03-02T09:00Z", "--attendee", "ana", "--attendee", "raj")
        )[0]
        review = ids(cli("touchpoints", "add", eid, "Findings review", "+2d"))[0]
        by_id = {t["id"]: t for t in api(eid, "touchpoints")}
        assert by_id[kickoff]["scheduled_at"] == "2026-03-02T09:00:00Z"
        assert by_id[kickoff]["attendees"] == ["ana", "raj"]
        in_two_days = datetime.fromisoformat(by_id[review]["scheduled_at"]) - datetime.now(UTC)
        assert timedelta(days=2) - timedelta(minutes=5) < in_two_days <= timedelta(days=2)
        status = cli("status", eid)
        assert f"Overdue touchpoint: Kickoff, 2026-03-02 09:00 UTC ({kickoff})" in status
        assert "Next touchpoint: Findings review" in status

        held = cli(
            "touchpoints",
            "held",
            eid,
            kickoff,
            "--notes",
            "agreed log shipping",
            "--at",
            "2026-03-02T09:40Z",
            "--next",
            "+7d",
        )
        assert f"Held {kickoff}: Kickoff, 2026-03-02 09:40 UTC" in held
        after = api(eid, "touchpoints")
        follow_up = next(t for t in after if t["status"] == "scheduled" and t["title"] == "Kickoff")
        assert f"Scheduled {follow_up['id']}: Kickoff, {follow_up['scheduled_at'][:10]}" in held
        assert {(t["title"], t["status"]) for t in after} == {
            ("Kickoff", "held"),
            ("Kickoff", "scheduled"),
            ("Findings review", "scheduled"),
        }
        assert next(t for t in after if t["id"] == kickoff)["notes"] == "agreed log shipping"
        assert "409: touchpoint is already held" in cli("touchpoints", "held", eid, kickoff, code=1)

        cli("touchpoints", "move", eid, review, "--to", "2027-01-05T14:30Z", "--title", "Findings review (moved)")
        moved = next(t for t in api(eid, "touchpoints") if t["id"] == review)
        assert (moved["title"], moved["scheduled_at"]) == ("Findings review (moved)", "2027-01-05T14:30:00Z")
        cli("touchpoints", "cancel", eid, review, "--reason", "customer holiday")
        assert next(t for t in api(eid, "touchpoints") if t["id"] == review)["status"] == "cancelled"
        listed = cli("touchpoints", "list", eid)
        assert re.search(rf"{kickoff} │ 2026-03-02 09:40 UTC │ Kickoff\s+│ held\s+│ ana, raj\s+│ agreed log", listed)

        # Risks: opened, one promoted from a finding (twice: the same risk), mitigated.
        risk = ids(
            cli("risks", "add", eid, "Gitaly on NFS", "--likelihood", "high", "--impact", "high", "--owner", "Ana")
        )[0]
        assert "Open risk: Gitaly on NFS (high likelihood, high impact)" in cli("status", eid)
        write_findings(
            database_dsn,
            eid,
            [
                (
                    "slow_endpoint",
                    "Projects::IssuesController#index",
                    datetime(2024, 5, 1, 10, 7, tzinfo=UTC),
                    {"p99_ms": 8123},
                )
            ],
        )
        promoted = cli("risks", "promote", eid, "slow_endpoint", "Projects::IssuesController#index")
        assert ids(promoted) == ids(cli("risks", "promote", eid, "slow_endpoint", "Projects::IssuesController#index"))
        assert "404" in cli("risks", "promote", eid, "slow_endpoint", "NoSuchController#show", code=1)
        cli("risks", "set", eid, risk, "--status", "mitigated", "--mitigation", "moved to Gitaly Cluster")
        stored = {r["id"]: r for r in api(eid, "risks")}
        assert (stored[risk]["status"], stored[risk]["mitigation"]) == ("mitigated", "moved to Gitaly Cluster")
        assert stored[ids(promoted)[0]]["source_key"] == "Projects::IssuesController#index"
        assert "Gitaly on NFS" not in cli("status", eid)  # off the open list

        # Issues: logged, resolved.
        issue = ids(cli("issues", "add", eid, "SSO broken for contractors", "--severity", "critical"))[0]
        assert "Open issue: SSO broken for contractors (critical)" in cli("status", eid)
        cli("issues", "resolve", eid, issue, "IdP group fixed")
        resolved = next(i for i in api(eid, "issues") if i["id"] == issue)
        assert (resolved["status"], resolved["resolution"]) == ("resolved", "IdP group fixed")

        # Hand-offs: the advisor's is refused until the profile has what they need.
        refused = cli("handoffs", "add", eid, "implementation", "technical_advisor", code=1)
        assert refused.startswith("409: the technical advisor needs a complete deployment profile"), refused
        assert "missing: total_cpu" in refused
        sizes = ["deployment_type=helm", "hosting_provider=AWS", "total_cpu=96", "total_memory_gb=384",
                 "total_disk_gb=4000", "code_hosts=GitLab 16.11, GitHub Enterprise", "repositories=12000",
                 "largest_repo_gb=38.5"]  # fmt: skip
        cli("profile", eid, *(arg for size in sizes for arg in ("--set", size)))
        profile = api(eid, "profile")
        assert profile["code_hosts"] == ["GitLab 16.11", "GitHub Enterprise"]
        assert (profile["total_cpu"], profile["largest_repo_gb"]) == (96, "38.5")
        assert "422: body.total_cpu: Input should be a valid integer" in cli(
            "profile", eid, "--set", "total_cpu=lots", code=1
        )
        cli("profile", eid, "--set", "code_hosts=")  # clears a list
        assert api(eid, "profile")["code_hosts"] == []
        assert "missing: code_hosts" in cli("handoffs", "add", eid, "implementation", "technical_advisor", code=1)
        cli("profile", eid, "--set", "code_hosts=GitLab 16.11")
        handed = cli("handoffs", "add", eid, "implementation", "technical_advisor", "--notes", "sized")
        assert "implementation → technical_advisor, waiting for technical_advisor to accept" in handed
        handoff = ids(handed)[0]
        assert next(h for h in api(eid, "handoffs") if h["id"] == handoff)["status"] == "pending"
        cli("handoffs", "accept", eid, handoff)
        assert next(h for h in api(eid, "handoffs") if h["id"] == handoff)["status"] == "accepted"

        # Tech reviews.
        review_id = ids(
            cli(
                "tech-reviews",
                "add",
                eid,
                "No FIPS mode",
                "--needed-by",
                "2027-01-15",
                "--requirement",
                "new",
                "--expectation",
                "FIPS 140-2",
                "--consequence",
                "no go-live",
            )
        )[0]
        cli("tech-reviews", "decide", eid, review_id, "on the roadmap")
        decided = next(r for r in api(eid, "tech-reviews") if r["id"] == review_id)
        assert (decided["decision_needed_by"], decided["status"], decided["decision"]) == (
            "2027-01-15",
            "decided",
            "on the roadmap",
        )

        # Upload tokens: minted (shown once), listed, revoked.
        minted = cli("tokens", "mint", eid, "--name", "gitlab-rails-1")
        token_id, token = re.search(
            r"Upload token (\w+) \(gitlab-rails-1\), shown this once:\n(otr_\S+)", minted
        ).groups()  # type: ignore[union-attr]
        assert f"OUTRIDER_SHIP_TOKEN=<token> outrider ship --engagement {eid}" in minted
        assert token not in cli("tokens", "list", eid)
        cli("tokens", "revoke", eid, token_id)
        assert next(t for t in api(eid, "tokens") if t["id"] == token_id)["revoked_at"] is not None

        # The refusals name the cause: another editor's token is not needed to read, a viewer cannot change.
        viewer = as_admin.post(f"{tracker}/v1/api-tokens", json={"name": "v", "role": "viewer"}).json()["token"]
        monkeypatch.setenv("OUTRIDER_API_TOKEN", viewer)
        assert "403: v has role viewer" in cli("issues", "add", eid, "x", "--severity", "low", code=1)
        assert "Gitaly on NFS" in cli("risks", "list", eid)

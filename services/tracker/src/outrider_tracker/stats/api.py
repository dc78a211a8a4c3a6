"""`GET /v1/engagements/{id}/stats` and `/findings`: what the customer's logs say."""

from typing import Annotated

from fastapi import APIRouter, Query, Request

from outrider_common.events import FindingRule, LogType
from outrider_common.http import INT32_MAX
from outrider_tracker.stage.api import NOT_FOUND, Engagement
from outrider_tracker.stats import service
from outrider_tracker.stats.models import EngagementFindings, EngagementStats, SortField
from outrider_tracker.timestamps import TIMESTAMP_RULE, Timestamp

router = APIRouter(prefix="/v1/engagements", tags=["stats"])


@router.get(
    "/{engagement_id}/stats",
    summary="Log statistics per key, sorted by score (count * p99), like `outrider stats`",
    description="Statistics are kept per minute: `since` is rounded down and `until` up to a minute's start, so a "
    "minute is counted whole or not at all. The answer's `counted_since` and `counted_until` give the range counted, "
    "and `rps` is the count over the time span of its log type's logs within it. Requests logged without a time "
    "are counted only when neither `since` nor `until` is given (`untimed_count` says how many there are).",
    responses=NOT_FOUND,
)
async def get_stats(
    engagement: Engagement,
    request: Request,
    log_type: Annotated[LogType | None, Query(description="production_json, api_json, gitaly or sidekiq")] = None,
    since: Annotated[
        Timestamp | None, Query(description=f"Start of the range (inclusive), down to the minute. {TIMESTAMP_RULE}")
    ] = None,
    until: Annotated[
        Timestamp | None, Query(description=f"End of the range (exclusive), up to the minute. {TIMESTAMP_RULE}")
    ] = None,
    sort_by: Annotated[SortField, Query(description="`key` ascending, a figure largest first")] = "score",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, description="Keys to skip, for the next page")] = 0,
) -> EngagementStats:
    figures = await service.get_key_stats(
        request.app.state.db.pool, engagement_id=engagement.id, log_type=log_type, since=since, until=until
    )
    keys = figures.keys  # by score
    if sort_by == "key":
        keys = sorted(keys, key=lambda k: k.key)
    elif sort_by != "score":
        keys = sorted(keys, key=lambda k: (-getattr(k, sort_by), k.key))
    return EngagementStats(
        engagement_id=engagement.id, since=since, until=until, counted_since=figures.since,
        counted_until=figures.until, span_seconds=figures.span_seconds,
        total_count=sum(t.count for t in figures.totals), untimed_count=figures.untimed, key_count=len(keys),
        keys=keys[offset : offset + limit],
        totals=figures.totals,
    )  # fmt: skip


@router.get(
    "/{engagement_id}/findings",
    summary="Findings the analyzer raised on the engagement's logs, newest window first, a page at a time",
    responses=NOT_FOUND,
)
async def get_findings(
    engagement: Engagement,
    request: Request,
    rule: Annotated[FindingRule | None, Query(description="Only findings of this rule")] = None,
    log_type: Annotated[LogType | None, Query(description="production_json, api_json, gitaly or sidekiq")] = None,
    since: Annotated[
        Timestamp | None, Query(description=f"Windows starting at or after this. {TIMESTAMP_RULE}")
    ] = None,
    until: Annotated[Timestamp | None, Query(description=f"Windows starting before this. {TIMESTAMP_RULE}")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX, description="Findings to skip, for the next page")] = 0,
) -> EngagementFindings:
    total, findings = await service.get_findings(
        request.app.state.db.pool, engagement_id=engagement.id, rule=rule, log_type=log_type, since=since,
        until=until, limit=limit, offset=offset,
    )  # fmt: skip
    return EngagementFindings(engagement_id=engagement.id, total=total, findings=findings)

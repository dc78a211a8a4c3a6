"""The engagement health score: 100 minus what a reviewer would worry about (pure)."""

from dataclasses import dataclass

from outrider_tracker.touchpoint.service import overdue_sql


def health_counts(overdue_grace: str) -> str:
    """The counts behind the score, as columns of a query over `engagements e` (the status API and the gauge share
    it); `overdue_grace` names the query's parameter holding the overdue grace (a timedelta)."""
    return f"""
    (SELECT count(*) FROM touchpoints t WHERE t.engagement_id = e.id AND {overdue_sql(overdue_grace)}) AS overdue,
    (SELECT count(*) FROM risks r WHERE r.engagement_id = e.id AND r.status = 'open' AND r.impact = 'high') AS risks,
    (SELECT count(*) FROM findings f WHERE f.engagement_id = e.id AND f.created_at > now() - interval '7 days')
        AS findings,
    extract(epoch FROM now() - e.stage_entered_at) / 86400 AS days"""


@dataclass(frozen=True)
class HealthInputs:
    """What the score looks at."""

    overdue_touchpoints: int
    open_high_risks: int
    severe_findings_7d: int
    days_in_stage: float
    expected_days: int


def health(inputs: HealthInputs) -> tuple[int, list[str]]:
    """A 0-100 score and the reasons it is not 100 (each reason costs points, capped per kind)."""
    score, reasons = 100, []
    penalties = (  # the noun takes the plural, not whatever ends the reason
        (inputs.overdue_touchpoints, 15, 30, "overdue touchpoint", ""),
        (inputs.open_high_risks, 10, 30, "open high-impact risk", ""),
        (inputs.severe_findings_7d, 5, 20, "finding", " in the last 7 days"),
    )
    for count, each, cap, noun, rest in penalties:
        if count:
            cost = min(count * each, cap)
            score -= cost
            reasons.append(f"{count} {noun}{'s' if count > 1 else ''}{rest} (-{cost})")
    if inputs.days_in_stage > inputs.expected_days:
        over = inputs.days_in_stage / inputs.expected_days
        cost = 20 if over >= 2 else 10
        score -= cost
        reasons.append(f"{inputs.days_in_stage:.0f} days in a stage expected to take {inputs.expected_days} (-{cost})")
    return max(score, 0), reasons

"""The topic registry: every Kafka topic, its key, who writes it and who reads it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    """A Kafka topic contract."""

    name: str
    key: str
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    dead_letter: str

    def __str__(self) -> str:
        return self.name


LOGS_RAW = Topic(
    name="logs.raw",
    key="engagement/source",
    producers=("ingest",),
    consumers=("analyzer",),
    dead_letter="logs.raw.dead",
)
ENGAGEMENT_EVENTS = Topic(
    name="engagement.events",
    key="engagement",
    producers=("tracker",),
    consumers=("notifier",),
    dead_letter="engagement.events.dead",
)
ANALYSIS_FINDINGS = Topic(
    name="analysis.findings",
    key="engagement",
    producers=("analyzer",),
    consumers=("notifier", "tracker"),
    dead_letter="analysis.findings.dead",
)

ALL_TOPICS = (LOGS_RAW, ENGAGEMENT_EVENTS, ANALYSIS_FINDINGS)

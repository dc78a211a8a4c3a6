"""The topic registry: every Kafka topic, its key, who writes it and who reads it."""

from dataclasses import dataclass

# A dead letter is the record as it was (key, value, headers) plus these headers; `outrider dead-letters replay`
# strips them to send it back where it came from.
DEAD_LETTER_REASON = "dead-letter-reason"
DEAD_LETTER_SOURCE = "dead-letter-source"  # topic/partition/offset the record was read from
# On a dead letter sent without its value (too large for the producer, or gone from Kafka by retention before it was
# dead-lettered): why; nothing to replay, so `replay` skips and counts it.
DEAD_LETTER_VALUE = "dead-letter-value"


def dead_letter_headers(headers: dict[str, str], *, reason: str, source: str) -> dict[str, str]:
    """A record's headers with the reason (cut to 1,000 characters) and source of its dead-lettering added."""
    return {**headers, DEAD_LETTER_REASON: reason[:1000], DEAD_LETTER_SOURCE: source}


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

"""Settings of the notifier service."""

from pydantic import Field

from outrider_common.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    """`OUTRIDER_*` environment variables read by the notifier."""

    http_port: int = Field(8004, description="Port of the notifier's ops endpoints.")
    consumer_group: str = Field("notifier", description="Kafka consumer group shared by notifier replicas.")

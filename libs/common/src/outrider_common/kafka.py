"""Kafka helpers every service uses: topic provisioning from the registry."""

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


async def ensure_topics(bootstrap_servers: str, names: list[str], *, partitions: int = 4) -> None:
    """Create the topics in `names` that do not exist yet (idempotent, safe for concurrent callers)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another replica won the race
                await admin.create_topics(
                    [NewTopic(name=n, num_partitions=partitions, replication_factor=1) for n in missing]
                )
    finally:
        await admin.close()

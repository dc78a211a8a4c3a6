"""Property test of the tracker API from its own OpenAPI schema: whatever schemathesis sends, never a 5xx."""

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.stack import ADMIN_TOKEN, as_admin, running_services

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def test_no_operation_answers_5xx(kafka_bootstrap: str, database_dsn: str, topic_prefix: str, tmp_path: Path) -> None:
    with running_services(
        kafka=kafka_bootstrap, dsn=database_dsn, topic_prefix=topic_prefix, logs=tmp_path, names=("tracker",)
    ) as svc:
        url = svc["tracker"].url
        # A real engagement too, so generated ids sometimes hit existing rows rather than only 404s.
        as_admin.post(f"{url}/v1/engagements", json={"name": "fuzz", "customer": "fuzz"}).raise_for_status()
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        failures: list[str] = []
        tried = 0
        for result in schema.get_all_operations():
            operation = result.ok()

            @given(case=operation.as_strategy())
            @settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
                    )

            check()
            tried += 1
    assert tried >= 25  # every operation of the API was exercised
    assert failures == []

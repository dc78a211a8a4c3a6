"""Fixtures of the shipper tests."""

from collections.abc import Iterator

import pytest

from tests.ship.stub import Ingest


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    """A local stand-in for ingest that answers 202 unless told otherwise."""
    stub = Ingest()
    yield stub
    stub.close()

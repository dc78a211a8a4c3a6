"""The notifier's settings refuse combinations that would silently never post."""

import pytest
from pydantic import ValidationError

from outrider_notifier.settings import NotifierSettings


@pytest.mark.parametrize(("digest_hour", "quiet"), [(23, (22, 7)), (3, (22, 7)), (22, (22, 7)), (12, (9, 17))])
def test_a_digest_hour_inside_quiet_hours_is_refused(digest_hour: int, quiet: tuple[int, int]) -> None:
    with pytest.raises(ValidationError, match=f"digest_hour_utc {digest_hour} is inside quiet_hours_utc"):
        NotifierSettings(digest_hour_utc=digest_hour, quiet_hours_utc=quiet)


@pytest.mark.parametrize(("digest_hour", "quiet"), [(7, (22, 7)), (21, (22, 7)), (17, (9, 17)), (8, None)])
def test_a_digest_hour_outside_quiet_hours_is_kept(digest_hour: int, quiet: tuple[int, int] | None) -> None:
    assert NotifierSettings(digest_hour_utc=digest_hour, quiet_hours_utc=quiet).digest_hour_utc == digest_hour

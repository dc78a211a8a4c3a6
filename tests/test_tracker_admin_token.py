"""The tracker's bootstrap admin token as a Secret made from a file holds (`kubectl create secret --from-file` of an
`echo`ed file, a CRLF file): the line break around it is not part of the token, or no request could ever match it."""

import pytest

from outrider_tracker.settings import TrackerSettings


@pytest.mark.parametrize("value", ["otr_admin_x\n", "otr_admin_x\r\n", " otr_admin_x "])
def test_the_admin_token_is_read_without_the_whitespace_around_it(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OUTRIDER_ADMIN_TOKEN", value)
    token = TrackerSettings().admin_token
    assert token is not None
    assert token.get_secret_value() == "otr_admin_x"


@pytest.mark.parametrize("value", ["", "\n", "  "])
def test_a_blank_admin_token_is_no_admin_token(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OUTRIDER_ADMIN_TOKEN", value)
    assert TrackerSettings().admin_token is None

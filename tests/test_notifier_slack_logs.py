"""An incoming-webhook URL is a secret (whoever holds it posts to the channel): the notifier's logs never show it,
whatever OUTRIDER_LOG_LEVEL is, on a post that lands or one slack_sdk retries."""

import logging
from collections.abc import Iterator

import pytest

from outrider.devstack import free_port
from outrider.slack_local import LocalSlack
from outrider_notifier.slack import MaybePosted, RetryLater, SlackWebhook


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    local = LocalSlack().start()
    yield local
    local.stop()


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
async def test_a_webhook_post_logs_no_webhook_url(
    slack: LocalSlack, caplog: pytest.LogCaptureFixture, level: int
) -> None:
    url = slack.webhook_url + "SECRETPART"
    caplog.set_level(level)  # the root logger's, as setup_logging(OUTRIDER_LOG_LEVEL) sets it
    await SlackWebhook(url).post(channel="#c", text="hi", blocks=[])
    assert slack.messages  # it did post
    assert "SECRETPART" not in caplog.text


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
async def test_a_retried_webhook_post_logs_no_webhook_url(caplog: pytest.LogCaptureFixture, level: int) -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T0/B0/SECRETPART"  # nothing listens: slack_sdk retries
    caplog.set_level(level)
    with pytest.raises((RetryLater, MaybePosted)):
        await SlackWebhook(url).post(channel="#c", text="hi", blocks=[])
    assert "SECRETPART" not in caplog.text

"""Fixtures of the notification tests: real receivers, targets, and a real Celery worker."""

import pytest

from instances.notifications.models import NotificationTarget
from instances.notifications.services import notification_target_save
from tests.testbed.tenant_fixtures import celery_worker_thread  # noqa: F401 - a pytest fixture

from .receivers import SMTPServer, Webhook, free_port


@pytest.fixture
def webhook():
    hook = Webhook(port=free_port()).start()
    yield hook
    hook.stop()


@pytest.fixture
def smtp_server():
    server = SMTPServer(port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def make_target(db):
    def make(url: str, events: list[str] | None = None, name: str = "", **fields) -> NotificationTarget:
        target = NotificationTarget(name=name or f"target-{NotificationTarget.objects.count() + 1}", **fields)
        if events is not None:
            target.events = events
        return notification_target_save(target=target, url=url)

    return make


@pytest.fixture
def quick_retries(settings):
    settings.CCP_NOTIFY_MAX_ATTEMPTS = 2
    settings.CCP_NOTIFY_RETRY_SECONDS = 0.2
